//! From an S3 event to the uploads it asks about.
//!
//! Two shapes arrive, with the same meaning:
//! - an S3 event notification (`{"Records": [{"eventName": "ObjectCreated:Put", "s3": {...}}]}`),
//!   one record per new object, the key URL-encoded with `+` for a space;
//! - an EventBridge event from S3 (`{"detail-type": "Object Created", "source": "aws.s3",
//!   "detail": {"bucket": {"name": ...}, "object": {"key": ...}}}`), one object per event. AWS
//!   documents the notification key as URL-encoded
//!   (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html>)
//!   but says no such thing of the EventBridge key
//!   (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html>), whose examples
//!   are plain: it is taken as the key itself, so a `+` stays a `+`. Were that wrong, the key
//!   would name no object and the upload would fail with "not in the bucket", never act on
//!   another object.
//!
//! Only what the program uses is read: a record needs its bucket's name and its object's key,
//! nothing else (a hand-written event has no `eventTime` or `userIdentity`); a record without
//! `eventName` is taken as `ObjectCreated:Put`. Records about objects this program writes
//! itself, other event types and other buckets are ignored (so its own writes never start
//! work); a record whose key is not an upload's is refused with a message naming it.

use serde::Deserialize;
use serde_json::Value;

use crate::upload::{decode_event_key, KeyError, Upload, UploadKey, KEY_PATH_SAFE};

/// The name of the report this program writes next to an upload's files.
pub const REPORT_FILE: &str = "report.json";
/// Where this program keeps its own records in a bucket; never an upload.
pub const INTERNAL_PREFIX: &str = ".wdiv-s3-trigger/";
/// The event name a notification record without `eventName` is taken to have.
pub const DEFAULT_EVENT_NAME: &str = "ObjectCreated:Put";

/// Why an event cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the event is not an S3 event: it is not JSON ({0})")]
    NotJson(#[source] serde_json::Error),
    #[error(
        "the event is not an S3 event: expected an S3 notification ({{\"Records\": [...]}}) \
         or an EventBridge event from S3 ({{\"detail-type\": \"Object Created\", \
         \"source\": \"aws.s3\", \"detail\": {{...}}}}), found {found}"
    )]
    NotS3 { found: String },
    #[error("the event has no records: nothing to do")]
    NoRecords,
    #[error("{at} cannot be read: {why} (a record needs s3.bucket.name and s3.object.key)")]
    BadRecord { at: String, why: String },
    #[error(
        "the EventBridge event cannot be read: {why} (an S3 event has detail.bucket.name and \
         detail.object.key)"
    )]
    BadDetail { why: String },
}

/// How a record's key is written in the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEncoding {
    /// URL-encoded, `+` for a space: S3 event notifications.
    Url,
    /// The key itself: EventBridge events.
    Plain,
}

/// One record of an event, in either shape: only what the program uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `ObjectCreated:Put`, `ObjectRemoved:Delete`, or for EventBridge `Object Created`.
    pub name: String,
    /// Whether the record says an object was created.
    pub created: bool,
    pub bucket: String,
    /// The key as the event writes it (see `encoding`).
    pub raw_key: String,
    pub encoding: KeyEncoding,
}

impl Record {
    /// The key itself.
    pub fn key(&self) -> Result<String, KeyError> {
        match self.encoding {
            KeyEncoding::Url => decode_event_key(&self.raw_key),
            KeyEncoding::Plain => Ok(self.raw_key.clone()),
        }
    }
}

/// An event: its records, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub records: Vec<Record>,
}

/// One object an event says was created, and the upload it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub bucket: String,
    pub key: UploadKey,
}

/// What became of each record.
#[derive(Debug, Default)]
pub struct Triage {
    /// The distinct uploads to process, in the order their first record came.
    pub uploads: Vec<(Upload, Vec<Created>)>,
    /// Records that are not work, and why (logged, not an error).
    pub ignored: Vec<(String, String)>,
    /// Records that are refused: bad keys. An error, with no side effect for them.
    pub refused: Vec<KeyError>,
}

/// Parses an event: a file given to `run`.
pub fn parse(bytes: &[u8]) -> Result<Event, EventError> {
    from_value(serde_json::from_slice(bytes).map_err(EventError::NotJson)?)
}

/// Reads an event from JSON already parsed: a Lambda payload, or an event `simulate` made.
pub fn from_value(value: Value) -> Result<Event, EventError> {
    let Value::Object(map) = &value else {
        return Err(EventError::NotS3 {
            found: json_kind(&value).into(),
        });
    };
    if let Some(records) = map.get("Records") {
        return notification(records);
    }
    if map.contains_key("detail-type") || map.contains_key("detail") {
        return eventbridge(&value);
    }
    let mut fields: Vec<&str> = map.keys().map(String::as_str).take(5).collect();
    if map.len() > fields.len() {
        fields.push("…");
    }
    Err(EventError::NotS3 {
        found: if fields.is_empty() {
            "an empty object".into()
        } else {
            format!("an object with {}", shown_fields(&fields))
        },
    })
}

fn shown_fields(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| wdiv_checks::text::escape_control(&wdiv_checks::text::truncate_chars(f, 40)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A notification record: only the fields the program reads. Every other field is optional.
#[derive(Deserialize)]
struct RawRecord {
    #[serde(rename = "eventName", default)]
    event_name: Option<String>,
    s3: RawS3,
}

#[derive(Deserialize)]
struct RawS3 {
    bucket: RawBucket,
    object: RawObject,
}

#[derive(Deserialize)]
struct RawBucket {
    name: String,
}

#[derive(Deserialize)]
struct RawObject {
    key: String,
}

fn notification(records: &Value) -> Result<Event, EventError> {
    let Value::Array(records) = records else {
        return Err(EventError::NotS3 {
            found: format!("\"Records\" as {}, not a list", json_kind(records)),
        });
    };
    if records.is_empty() {
        return Err(EventError::NoRecords);
    }
    let records = records
        .iter()
        .enumerate()
        .map(|(i, record)| {
            let raw = RawRecord::deserialize(record).map_err(|e| EventError::BadRecord {
                at: format!("record {} of {}", i + 1, records.len()),
                why: e.to_string(),
            })?;
            let name = raw
                .event_name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| DEFAULT_EVENT_NAME.into());
            Ok(Record {
                created: name.starts_with("ObjectCreated:"),
                name,
                bucket: raw.s3.bucket.name,
                raw_key: raw.s3.object.key,
                encoding: KeyEncoding::Url,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Event { records })
}

/// An EventBridge event from S3: only the fields the program reads.
#[derive(Deserialize)]
struct RawBridge {
    #[serde(rename = "detail-type")]
    detail_type: String,
    source: String,
    detail: RawDetail,
}

#[derive(Deserialize)]
struct RawDetail {
    bucket: RawBucket,
    object: RawObject,
}

fn eventbridge(value: &Value) -> Result<Event, EventError> {
    let raw =
        RawBridge::deserialize(value).map_err(|e| EventError::BadDetail { why: e.to_string() })?;
    if raw.source != "aws.s3" {
        return Err(EventError::NotS3 {
            found: format!(
                "an EventBridge event from {:?}",
                wdiv_checks::text::truncate_chars(&raw.source, 60)
            ),
        });
    }
    Ok(Event {
        records: vec![Record {
            created: raw.detail_type == "Object Created",
            name: raw.detail_type,
            bucket: raw.detail.bucket.name,
            raw_key: raw.detail.object.key,
            encoding: KeyEncoding::Plain,
        }],
    })
}

/// Why `key` is an object this program wrote itself (and so never an upload's file), if it is.
pub fn own_key(key: &str) -> Option<&'static str> {
    if key.starts_with(INTERNAL_PREFIX) {
        Some("a record of this program's own")
    } else if key.rsplit('/').next() == Some(REPORT_FILE) {
        Some("a report written by this program")
    } else {
        None
    }
}

/// Sorts the records of `event` into uploads to check, records to ignore and keys to refuse.
pub fn triage(event: &Event, temp_bucket: &str) -> Triage {
    let mut triage = Triage::default();
    for record in &event.records {
        match classify(record, temp_bucket) {
            Ok(created) => {
                match triage
                    .uploads
                    .iter_mut()
                    .find(|(u, _)| u.prefix == created.key.upload.prefix)
                {
                    Some((_, objects)) => objects.push(created),
                    None => triage
                        .uploads
                        .push((created.key.upload.clone(), vec![created])),
                }
            }
            Err(Classified::Ignored(why)) => triage.ignored.push((record.raw_key.clone(), why)),
            Err(Classified::Refused(e)) => triage.refused.push(e),
        }
    }
    triage
}

enum Classified {
    Ignored(String),
    Refused(KeyError),
}

fn classify(record: &Record, temp_bucket: &str) -> Result<Created, Classified> {
    if !record.created {
        return Err(Classified::Ignored(format!(
            "not an ObjectCreated event ({})",
            wdiv_checks::text::truncate_chars(&record.name, 60)
        )));
    }
    if record.bucket != temp_bucket {
        return Err(Classified::Ignored(format!(
            "bucket {:?} is not the temp bucket {temp_bucket:?}",
            record.bucket
        )));
    }
    let key = record.key().map_err(Classified::Refused)?;
    if let Some(why) = own_key(&key) {
        return Err(Classified::Ignored(why.into()));
    }
    let key = UploadKey::parse(&key).map_err(Classified::Refused)?;
    Ok(Created {
        bucket: record.bucket.clone(),
        key,
    })
}

/// The event S3 sends when `key` is created in `bucket` (what `simulate` fires).
pub fn object_created(bucket: &str, key: &str, size: u64, etag: &str) -> serde_json::Value {
    let encoded = encode_event_key(key);
    serde_json::json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "eu-west-2",
            "eventTime": "1970-01-01T00:00:00.000Z",
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "wdiv-s3-trigger-simulate"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "simulate",
                "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
                "object": {"key": encoded, "size": size, "eTag": etag.trim_matches('"')}
            }
        }]
    })
}

/// The EventBridge event S3 sends when `key` is created in `bucket` (through a rule on the
/// bucket's `Object Created` events). The key is written as it is.
pub fn eventbridge_object_created(bucket: &str, key: &str, size: u64, etag: &str) -> Value {
    serde_json::json!({
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "000000000000",
        "time": "1970-01-01T00:00:00Z",
        "region": "eu-west-2",
        "resources": [format!("arn:aws:s3:::{bucket}")],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "etag": etag.trim_matches('"'), "sequencer": "0"},
            "request-id": "wdiv-s3-trigger",
            "requester": "wdiv-s3-trigger",
            "reason": "PutObject"
        }
    })
}

/// Encodes a key as S3 events do: URL-encoded, a space as `+`.
pub fn encode_event_key(key: &str) -> String {
    // Spaces are kept here to become `+`.
    const KEEP: &percent_encoding::AsciiSet = &KEY_PATH_SAFE.remove(b' ');
    percent_encoding::utf8_percent_encode(key, KEEP)
        .to_string()
        .replace(' ', "+")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_with(records: Vec<serde_json::Value>) -> Event {
        let json = serde_json::json!({ "Records": records });
        parse(json.to_string().as_bytes()).unwrap()
    }

    fn record(name: &str, bucket: &str, key: &str) -> serde_json::Value {
        let mut r = object_created(bucket, key, 10, "e")["Records"][0].clone();
        r["eventName"] = name.into();
        r
    }

    #[test]
    fn keys_round_trip_through_event_encoding() {
        let key = "E07000223/2024-05-02/2024-04-01T10:11:12.123/Polling Stations+café.csv";
        let event = event_with(vec![record("ObjectCreated:Put", "temp", key)]);
        let triage = triage(&event, "temp");
        assert_eq!(triage.uploads.len(), 1);
        assert_eq!(triage.uploads[0].1[0].key.key, key);
    }

    #[test]
    fn own_writes_other_events_and_buckets_are_ignored() {
        let event = event_with(vec![
            record("ObjectCreated:Put", "temp", "X/2024-05-02/t/report.json"),
            record("ObjectRemoved:Delete", "temp", "X/2024-05-02/t/a.csv"),
            record("ObjectCreated:Put", "final", "X/2024-05-02/t/a.csv"),
            record("ObjectCreated:Put", "temp", ".wdiv-s3-trigger/x/y/z"),
        ]);
        let triage = triage(&event, "temp");
        assert!(triage.uploads.is_empty());
        assert!(triage.refused.is_empty());
        assert_eq!(triage.ignored.len(), 4);
        assert!(triage.ignored[1].1.contains("ObjectRemoved:Delete"));
        assert_eq!(triage.ignored[0].1, "a report written by this program");
        assert_eq!(triage.ignored[3].1, "a record of this program's own");
    }

    #[test]
    fn two_records_of_one_upload_make_one_upload_and_bad_keys_are_refused() {
        let event = event_with(vec![
            record("ObjectCreated:Put", "temp", "X/2024-05-02/t/a.csv"),
            record("ObjectCreated:Put", "temp", "X/2024-05-02/t/b.csv"),
            record("ObjectCreated:Put", "temp", "X/2024-05-02/../../etc/passwd"),
            record("ObjectCreated:Put", "temp", "just-a-file.csv"),
        ]);
        let triage = triage(&event, "temp");
        assert_eq!(triage.uploads.len(), 1);
        assert_eq!(triage.uploads[0].1.len(), 2);
        assert_eq!(triage.refused.len(), 2);
    }

    #[test]
    fn malformed_events_are_named() {
        let err = |json: &str| parse(json.as_bytes()).unwrap_err().to_string();
        assert!(err("not json").starts_with("the event is not an S3 event: it is not JSON"));
        assert_eq!(
            err(r#"{"Records": []}"#),
            "the event has no records: nothing to do"
        );
        assert!(err(r#"{"foo": 1}"#).ends_with("found an object with foo"));
        assert!(err("[1]").ends_with("found a list"));
        assert!(err(r#"{"Records": {}}"#).ends_with("found \"Records\" as an object, not a list"));
        let no_key = err(r#"{"Records": [{"s3": {"bucket": {"name": "b"}, "object": {}}}]}"#);
        assert!(
            no_key.starts_with("record 1 of 1 cannot be read: missing field `key`"),
            "{no_key}"
        );
        let other = err(
            r#"{"detail-type": "Object Created", "source": "aws.ec2", "detail": {"bucket": {"name": "b"}, "object": {"key": "k"}}}"#,
        );
        assert!(
            other.ends_with("found an EventBridge event from \"aws.ec2\""),
            "{other}"
        );
        let no_detail = err(r#"{"detail-type": "Object Created", "source": "aws.s3"}"#);
        assert!(no_detail.contains("missing field `detail`"), "{no_detail}");
    }

    #[test]
    fn a_hand_written_record_needs_only_its_bucket_and_key() {
        let event = parse(
            br#"{"Records": [{"s3": {"bucket": {"name": "temp"}, "object": {"key": "X/2024-05-02/t/a+b.csv"}}}]}"#,
        )
        .unwrap();
        assert_eq!(event.records[0].name, DEFAULT_EVENT_NAME);
        let triage = triage(&event, "temp");
        assert_eq!(triage.uploads[0].1[0].key.key, "X/2024-05-02/t/a b.csv");
    }

    #[test]
    fn eventbridge_keys_are_taken_as_they_are() {
        let key = "E07000223/2024-05-02/2024-04-01T10:11:12.123/Polling Stations+50%café.csv";
        let event = from_value(eventbridge_object_created("temp", key, 10, "\"e\"")).unwrap();
        let triage = triage(&event, "temp");
        assert_eq!(triage.uploads.len(), 1);
        assert_eq!(triage.uploads[0].1[0].key.key, key);
    }

    #[test]
    fn eventbridge_deletions_and_own_writes_are_ignored() {
        let mut deleted = eventbridge_object_created("temp", "X/2024-05-02/t/a.csv", 0, "e");
        deleted["detail-type"] = "Object Deleted".into();
        let triage_of = |v| triage(&from_value(v).unwrap(), "temp");
        let t = triage_of(deleted);
        assert!(t.uploads.is_empty() && t.refused.is_empty());
        assert!(t.ignored[0].1.contains("Object Deleted"));
        let t = triage_of(eventbridge_object_created(
            "temp",
            "X/2024-05-02/t/report.json",
            0,
            "e",
        ));
        assert_eq!(t.ignored[0].1, "a report written by this program");
        let t = triage_of(eventbridge_object_created(
            "temp",
            "X/2024-05-02/../../etc/passwd",
            0,
            "e",
        ));
        assert_eq!(t.refused.len(), 1);
    }
}
