//! From an upload's listing to its file set: which objects are checked, and which are refused
//! before a byte of them is read.
//!
//! Every key under the upload's prefix was written by the uploader, not only the one the event
//! names, so each is held to the same rules: the upload's exact shape (no folders inside it), a
//! file name that shows as it is (no control, format or separator characters, no backticks), a
//! type the site may serve, and the upload's limits on files and bytes. A refused file fails the
//! upload with an error that says what to do; it is never copied.

use crate::report::{FileReport, Problem};
use crate::storage::ObjectInfo;
use crate::text;
use crate::upload::{served_type, Upload, ACCEPTED_TYPES};
use crate::vocab::{Code, WDIV_MAX_KEY_CHARS};

/// The codes of the problems that refuse a file unread.
pub const REFUSED_CODES: [Code; 6] = [
    Code::BadFileName,
    Code::FileTypeNotAccepted,
    Code::FileInFolder,
    Code::TooManyFiles,
    Code::UploadTooLarge,
    Code::FileNameTooLong,
];

/// Whether `file` was refused unread here (so no bytes of it were checked).
pub fn was_refused(file: &FileReport) -> bool {
    file.errors()
        .any(|p| REFUSED_CODES.into_iter().any(|code| p.is(code)))
}

/// The most characters of a file name a message shows.
const NAME_CHARS: usize = 100;

/// An upload's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_files: usize,
    pub max_bytes: u64,
}

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
    let refuse_all = |code: Code, message: String| -> Vec<Entry> {
        listing
            .iter()
            .map(|o| refused(&o.key, Problem::error(code, message.clone())))
            .collect()
    };
    if listing.len() > limits.max_files {
        return refuse_all(
            Code::TooManyFiles,
            format!(
                "This upload has more than {max} files, and at most {max} can be uploaded at \
                 once. Upload only the polling-station export from the EMS (one file, or two \
                 for Democracy Counts).",
                max = limits.max_files
            ),
        );
    }
    let total: u64 = listing.iter().map(|o| o.size).sum();
    if total > limits.max_bytes {
        return refuse_all(
            Code::UploadTooLarge,
            format!(
                "The files of this upload hold {} in all, over the limit of {} for one upload. \
                 Upload only the polling-station export from the EMS.",
                megabytes(total),
                megabytes(limits.max_bytes)
            ),
        );
    }
    let folder = format!("{}/", upload.prefix);
    listing
        .into_iter()
        .map(|object| {
            let name = object.key.strip_prefix(&folder).unwrap_or(&object.key);
            match name_problem(name).or_else(|| length_problem(&folder, name)) {
                Some(problem) => refused(&object.key, problem),
                None => Entry::Check(object),
            }
        })
        .collect()
}

/// What is wrong with a file name of the upload (what follows its prefix), if anything.
pub fn name_problem(name: &str) -> Option<Problem> {
    let shown = || {
        format!(
            "\"{}\"",
            text::escape_control(&text::truncate_chars(name, NAME_CHARS))
        )
    };
    let rename = "Rename the file, using only letters, digits, spaces and ordinary punctuation, \
                  and upload it again.";
    let what = if name.chars().any(char::is_control) {
        Some("a control character or a line break")
    } else if name.chars().any(text::is_hidden) {
        Some("an invisible formatting character (such as a right-to-left override)")
    } else if name.contains('`') {
        Some("a backtick (`)")
    } else if name.contains('\\') {
        Some("a backslash (\\)")
    } else {
        None
    };
    if let Some(what) = what {
        return Some(Problem::error(
            Code::BadFileName,
            format!("The file name {} contains {what}. {rename}", shown()),
        ));
    }
    if let Some((folder, _)) = name.split_once('/') {
        return Some(Problem::error(
            Code::FileInFolder,
            format!(
                "The file {} is in a folder ({}) inside the upload. Upload the file itself, not \
                 a folder.",
                shown(),
                text::escape_control(&text::truncate_chars(folder, NAME_CHARS))
            ),
        ));
    }
    if served_type(name).is_none() {
        let accepted: Vec<String> = ACCEPTED_TYPES
            .iter()
            .map(|(ext, _)| format!(".{ext}"))
            .collect();
        let kind = match name.rsplit_once('.') {
            Some((_, ext)) if !ext.is_empty() => format!(
                "Files of type .{} are not accepted",
                text::escape_control(&text::truncate_chars(ext, 20))
            ),
            _ => "Files without an extension are not accepted".to_owned(),
        };
        return Some(Problem::error(
            Code::FileTypeNotAccepted,
            format!(
                "{kind} ({}). Upload the polling-station export from the EMS as a {} file.",
                shown(),
                accepted.join(", ")
            ),
        ));
    }
    None
}

/// A file name too long for WhereDoIVote to store its key (`{folder}{name}`): the site would
/// refuse the whole report, and the upload would stay pending with no word to the officer.
fn length_problem(folder: &str, name: &str) -> Option<Problem> {
    let allowed = WDIV_MAX_KEY_CHARS.saturating_sub(folder.chars().count());
    let length = name.chars().count();
    (length > allowed).then(|| {
        Problem::error(
            Code::FileNameTooLong,
            format!(
                "The file name \"{}\" is {length} characters long; names of files in this \
                 upload can be at most {allowed} characters. Rename the file to a shorter name \
                 and upload it again.",
                text::escape_control(&text::truncate_chars(name, NAME_CHARS))
            ),
        )
    })
}

fn refused(key: &str, problem: Problem) -> Entry {
    // The report names the file as people can read it: hidden characters escaped.
    let mut report = FileReport::new(text::escape_control(key));
    report.problems.push(problem);
    Entry::Refused(report)
}

fn megabytes(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} bytes"),
        1_000..1_000_000 => format!("{:.1} KB", bytes as f64 / 1_000.0),
        _ => format!("{:.1} MB", bytes as f64 / 1_000_000.0),
    }
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
