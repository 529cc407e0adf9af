//! From an upload's listing to its file set: which objects are checked, and which are refused
//! before a byte of them is read (by the engine's upload rules, [`wdiv_checks::refusals`]).

use wdiv_checks::{refusals, FileReport, Limits};

use crate::storage::ObjectInfo;
use crate::upload::Upload;

/// What becomes of one listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// To be read and checked.
    Check(ObjectInfo),
    /// Refused unread: its report, which fails the upload.
    Refused(FileReport),
}

/// Sorts `listing` (the objects under the upload's prefix, at most `limits.max_files + 1` of
/// them, the program's own records left out) into files to check and files refused.
pub fn admit(upload: &Upload, listing: Vec<ObjectInfo>, limits: Limits) -> Vec<Entry> {
    let folder = format!("{}/", upload.prefix);
    let files: Vec<(&str, u64)> = listing.iter().map(|o| (o.key.as_str(), o.size)).collect();
    let verdicts = refusals(&folder, &files, limits);
    listing
        .into_iter()
        .zip(verdicts)
        .map(|(object, refusal)| match refusal {
            Some(problem) => Entry::Refused(FileReport::refused(&object.key, problem)),
            None => Entry::Check(object),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::UploadKey;

    const PREFIX: &str = "X01/2024-05-02/2024-04-01T10:11:12.123";

    fn upload() -> Upload {
        UploadKey::parse(&format!("{PREFIX}/a.csv")).unwrap().upload
    }

    fn object(name: &str, size: u64) -> ObjectInfo {
        ObjectInfo {
            key: format!("{PREFIX}/{name}"),
            size,
            etag: "\"e\"".into(),
        }
    }

    const LIMITS: Limits = Limits {
        max_files: 10,
        max_bytes: 300_000_000,
    };

    fn codes(entries: &[Entry]) -> Vec<&str> {
        entries
            .iter()
            .map(|e| match e {
                Entry::Check(_) => "check",
                Entry::Refused(r) => r.problems[0].code.as_str(),
            })
            .collect()
    }

    #[test]
    fn a_name_whose_key_the_site_cannot_store_is_refused_naming_the_longest_allowed() {
        // The prefix and its slash take 39 characters of the site's 255.
        assert_eq!(PREFIX.len() + 1, 39);
        let fits = format!("{}.csv", "a".repeat(212));
        let long = format!("{}.csv", "a".repeat(213));
        let entries = admit(
            &upload(),
            vec![object(&fits, 5000), object(&long, 5000)],
            LIMITS,
        );
        assert_eq!(codes(&entries), ["check", "file-name-too-long"]);
        let Entry::Refused(report) = &entries[1] else {
            unreachable!()
        };
        let message = &report.problems[0].message;
        assert!(message.contains("is 217 characters long"), "{message}");
        assert!(message.contains("at most 216 characters"), "{message}");
        // Characters, as the site counts them, not bytes.
        let welsh = format!("{}.csv", "ŵ".repeat(212));
        assert_eq!(
            codes(&admit(&upload(), vec![object(&welsh, 5000)], LIMITS)),
            ["check"]
        );
    }

    #[test]
    fn ordinary_files_are_checked_whatever_the_extension_case() {
        let names = [
            "Polling Stations.CSV",
            "a.tsv",
            "b.txt",
            "c.Json",
            "d+e (1).csv",
        ];
        let listing = names.iter().map(|n| object(n, 10)).collect();
        let entries = admit(&upload(), listing, LIMITS);
        assert_eq!(codes(&entries), ["check"; 5]);
    }

    #[test]
    fn hostile_names_folders_and_types_are_refused_with_the_name_escaped() {
        let listing = vec![
            object("b`x\n## Injected heading\n@octocat.csv", 10),
            object("evil\u{202e}vsc.csv", 10),
            object("line\u{2028}break.csv", 10),
            object("sub/nested.csv", 10),
            object("page.html", 10),
            object("noextension", 10),
            object("back\\slash.csv", 10),
        ];
        let entries = admit(&upload(), listing, LIMITS);
        assert_eq!(
            codes(&entries),
            [
                "bad-file-name",
                "bad-file-name",
                "bad-file-name",
                "file-in-folder",
                "file-type-not-accepted",
                "file-type-not-accepted",
                "bad-file-name"
            ]
        );
        let Entry::Refused(first) = &entries[0] else {
            unreachable!()
        };
        assert!(!first.key.contains('\n'), "{}", first.key);
        assert!(first
            .key
            .ends_with("b`x\\n## Injected heading\\n@octocat.csv"));
        let message = &first.problems[0].message;
        assert!(message.contains("control character"), "{message}");
        assert!(message.contains("Rename the file"), "{message}");
        assert!(!message.contains('\n'));
        let Entry::Refused(rtl) = &entries[1] else {
            unreachable!()
        };
        assert!(rtl.key.ends_with("evil\\u{202e}vsc.csv"));
        assert!(rtl.problems[0].message.contains("right-to-left"));
        let Entry::Refused(html) = &entries[4] else {
            unreachable!()
        };
        assert!(html.problems[0]
            .message
            .starts_with("Files of type .html are not accepted"));
        assert!(!first.csv_valid());
    }

    #[test]
    fn an_upload_over_its_limits_is_refused_unread() {
        let many: Vec<_> = (0..11).map(|i| object(&format!("f{i}.csv"), 10)).collect();
        let entries = admit(&upload(), many, LIMITS);
        assert_eq!(codes(&entries), ["too-many-files"; 11]);
        let Entry::Refused(r) = &entries[0] else {
            unreachable!()
        };
        assert!(r.problems[0].message.contains("more than 10 files"));

        let big = vec![object("a.csv", 200_000_000), object("b.csv", 150_000_000)];
        let entries = admit(&upload(), big, LIMITS);
        assert_eq!(codes(&entries), ["upload-too-large"; 2]);
        let Entry::Refused(r) = &entries[1] else {
            unreachable!()
        };
        assert!(
            r.problems[0].message.contains("350.0 MB in all"),
            "{}",
            r.problems[0].message
        );
        assert!(r.problems[0].message.contains("limit of 300.0 MB"));
    }
}
