//! From an S3 event to the uploads it asks about.
//!
//! S3 sends one record per new object, URL-encoded. Records about objects this program writes
//! itself, other event types and other buckets are ignored (so its own writes never start work);
//! a record whose key is not an upload's is refused with a message naming it.

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};

use crate::upload::{decode_event_key, KeyError, Upload, UploadKey, KEY_PATH_SAFE};

/// The name of the report this program writes next to an upload's files.
pub const REPORT_FILE: &str = "report.json";
/// Where this program keeps its own records in a bucket; never an upload.
pub const INTERNAL_PREFIX: &str = ".wdiv-s3-trigger/";

/// Why an event cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the event is not an S3 event: {0} (expected JSON with a \"Records\" list)")]
    NotS3(#[source] serde_json::Error),
    #[error("the event has no records: nothing to do")]
    NoRecords,
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

/// Parses an S3 event: a file given to `run`.
pub fn parse(bytes: &[u8]) -> Result<S3Event, EventError> {
    with_records(serde_json::from_slice(bytes))
}

/// Reads an S3 event from JSON already parsed: a Lambda payload, or an event `simulate` made.
pub fn from_value(value: serde_json::Value) -> Result<S3Event, EventError> {
    with_records(serde_json::from_value(value))
}

fn with_records(parsed: Result<S3Event, serde_json::Error>) -> Result<S3Event, EventError> {
    let event = parsed.map_err(EventError::NotS3)?;
    if event.records.is_empty() {
        return Err(EventError::NoRecords);
    }
    Ok(event)
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
pub fn triage(event: &S3Event, temp_bucket: &str) -> Triage {
    let mut triage = Triage::default();
    for record in &event.records {
        let raw_key = record.s3.object.key.clone().unwrap_or_default();
        match classify(record, temp_bucket) {
            Ok(Some(created)) => {
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
            Ok(None) => {}
            Err(Classified::Ignored(why)) => triage.ignored.push((raw_key, why)),
            Err(Classified::Refused(e)) => triage.refused.push(e),
        }
    }
    triage
}

enum Classified {
    Ignored(String),
    Refused(KeyError),
}

fn classify(record: &S3EventRecord, temp_bucket: &str) -> Result<Option<Created>, Classified> {
    let name = record.event_name.as_deref().unwrap_or("");
    if !name.starts_with("ObjectCreated:") {
        return Err(Classified::Ignored(format!(
            "not an ObjectCreated event ({})",
            if name.is_empty() {
                "no event name"
            } else {
                name
            }
        )));
    }
    let bucket = record.s3.bucket.name.clone().unwrap_or_default();
    if bucket != temp_bucket {
        return Err(Classified::Ignored(format!(
            "bucket {bucket:?} is not the temp bucket {temp_bucket:?}"
        )));
    }
    let raw = record.s3.object.key.as_deref().unwrap_or("");
    let key = decode_event_key(raw).map_err(Classified::Refused)?;
    if let Some(why) = own_key(&key) {
        return Err(Classified::Ignored(why.into()));
    }
    let key = UploadKey::parse(&key).map_err(Classified::Refused)?;
    Ok(Some(Created { bucket, key }))
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

    fn event_with(records: Vec<serde_json::Value>) -> S3Event {
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
        assert!(matches!(parse(b"not json"), Err(EventError::NotS3(_))));
        assert!(matches!(
            parse(br#"{"Records": []}"#),
            Err(EventError::NoRecords)
        ));
        assert!(parse(br#"{"foo": 1}"#).is_err());
    }
}
