//! From an S3 key to the upload it belongs to: who uploaded, for which election, when.
//!
//! The website writes `{council_id}/{YYYY-MM-DD}/{timestamp}/{file name}`. Anything else is refused
//! before any work is done: a key is attacker-influenced text (it holds a council's file name),
//! and it becomes paths in other buckets and on disk.

use wdiv_checks::Date;

/// One upload: the prefix that all its files share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub council_id: String,
    pub election_date: Date,
    pub timestamp: String,
    /// `{council_id}/{election_date}/{timestamp}`, without a trailing slash.
    pub prefix: String,
}

/// An upload's prefix: `{council_id}/{election_date}/{timestamp}`, without a trailing slash. The
/// one definition: keys, reports and records all use it.
pub fn prefix(council_id: &str, election_date: &str, timestamp: &str) -> String {
    format!("{council_id}/{election_date}/{timestamp}")
}

/// A key of the upload and the file name it ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadKey {
    pub upload: Upload,
    pub key: String,
    pub file_name: String,
}

/// Why a key is refused; every message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("S3 key {key:?} is not URL-encoded text: {why}")]
    Encoding { key: String, why: String },
    #[error("S3 key {key:?} does not have the form council_id/YYYY-MM-DD/timestamp/file")]
    Shape { key: String },
    #[error("S3 key {key:?} has an empty, '.' or '..' part, or starts with '/'")]
    Traversal { key: String },
    #[error("S3 key {key:?} contains control characters")]
    Control { key: String },
    #[error("S3 key {key:?}: {why}")]
    Part { key: String, why: String },
}

/// What stays as it is when a key is URL-encoded into a path (an S3 copy source, a CloudFront path,
/// an event): RFC 3986's unreserved characters and `/`. Each use adds what its format allows.
pub const KEY_PATH_SAFE: percent_encoding::AsciiSet = percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Decodes a key as S3 event notifications encode it: URL-encoded, with `+` for a space.
pub fn decode_event_key(raw: &str) -> Result<String, KeyError> {
    let plus_as_space = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|e| KeyError::Encoding {
            key: raw.to_owned(),
            why: e.to_string(),
        })
}

impl UploadKey {
    /// Parses a decoded key.
    pub fn parse(key: &str) -> Result<UploadKey, KeyError> {
        let owned = || key.to_owned();
        if key.chars().any(char::is_control) {
            return Err(KeyError::Control { key: owned() });
        }
        let parts: Vec<&str> = key.split('/').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
        {
            return Err(KeyError::Traversal { key: owned() });
        }
        let [council_id, date, timestamp, file_name] = parts[..] else {
            return Err(KeyError::Shape { key: owned() });
        };
        if !council_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(KeyError::Part {
                key: owned(),
                why: format!("council id {council_id:?} is not letters and digits"),
            });
        }
        // The timestamp is the website's (ISO 8601); it is shown in issues and emails.
        if !timestamp
            .chars()
            .all(|c| (c.is_ascii_graphic() || c == ' ') && c != '`' && c != '\\')
        {
            return Err(KeyError::Part {
                key: owned(),
                why: format!(
                    "timestamp {:?} is not a website timestamp",
                    wdiv_checks::text::truncate_chars(timestamp, 40)
                ),
            });
        }
        let election_date: Date = date
            .parse()
            .map_err(|why| KeyError::Part { key: owned(), why })?;
        if file_name.contains('\\') {
            return Err(KeyError::Traversal { key: owned() });
        }
        Ok(UploadKey {
            upload: Upload {
                council_id: council_id.to_owned(),
                election_date,
                timestamp: timestamp.to_owned(),
                prefix: prefix(council_id, date, timestamp),
            },
            key: key.to_owned(),
            file_name: file_name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_website_key_parses() {
        let k =
            UploadKey::parse("E07000223/2019-05-02/2019-04-01T09:10:11.123/Polling Stations.csv")
                .unwrap();
        assert_eq!(k.upload.council_id, "E07000223");
        assert_eq!(k.upload.election_date.to_string(), "2019-05-02");
        assert_eq!(k.upload.timestamp, "2019-04-01T09:10:11.123");
        assert_eq!(
            k.upload.prefix,
            "E07000223/2019-05-02/2019-04-01T09:10:11.123"
        );
        assert_eq!(k.file_name, "Polling Stations.csv");
    }

    #[test]
    fn event_keys_are_url_decoded_with_plus_as_space() {
        assert_eq!(
            decode_event_key("IOS/2024-05-02/t/Polling+Stations%2B%C3%A9.csv").unwrap(),
            "IOS/2024-05-02/t/Polling Stations+\u{e9}.csv"
        );
        assert!(decode_event_key("IOS/%FF.csv").is_err());
    }

    #[test]
    fn bad_keys_are_refused_with_the_key_named() {
        for (key, what) in [
            ("IOS/2024-05-02/t/../../etc/passwd", "'..'"),
            ("/IOS/2024-05-02/t/f.csv", "starts with '/'"),
            ("IOS/2024-05-02/t/./f.csv", "'.'"),
            ("IOS/2024-05-02/f.csv", "form"),
            ("IOS/2024-05-02/t/x/f.csv", "form"),
            ("IOS/2024-13-02/t/f.csv", "not a date"),
            ("IOS/2024-05-02/t/f\u{0}.csv", "control"),
            ("IOS/2024-05-02/t/f\n.csv", "control"),
            ("I OS/2024-05-02/t/f.csv", "council id"),
            ("IOS/2024-05-02/t/..\\f.csv", "'..'"),
            ("IOS/2024-05-02/t`x/f.csv", "timestamp"),
            ("IOS/2024-05-02/t\u{202e}/f.csv", "timestamp"),
        ] {
            let err = UploadKey::parse(key).unwrap_err().to_string();
            assert!(err.contains(what), "{key}: {err}");
            assert!(err.contains("S3 key"), "{err}");
        }
    }
}
