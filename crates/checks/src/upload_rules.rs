//! The upload's rules that need no byte of a file: which names, types, counts and sizes are
//! refused before anything is read. The Lambda applies them to the bucket's listing, and a browser
//! to the files an officer chooses, so both refuse exactly the same.
//!
//! Every key under the upload's prefix was written by the uploader, not only the one the event
//! names, so each is held to the same rules: the upload's exact shape (no folders inside it), a
//! file name that shows as it is (no control, format or separator characters, no backticks), a
//! type the site may serve, and the upload's limits on files and bytes. A refused file fails the
//! upload with an error that says what to do; it is never copied.

use crate::report::{FileReport, Problem};
use crate::text;
use crate::vocab::{Code, WDIV_MAX_KEY_CHARS};

/// The file types an upload may hold, by extension (any case), and the `Content-Type` its copy
/// is served with. Anything else is refused: the final bucket is served by the site's CDN.
pub const ACCEPTED_TYPES: &[(&str, &str)] = &[
    ("csv", "text/csv"),
    ("tsv", "text/tab-separated-values"),
    ("txt", "text/plain"),
    ("json", "application/json"),
];

/// The `Content-Type` a copy of `file_name` is served with, or `None` when its extension is not
/// one an upload may hold.
pub fn served_type(file_name: &str) -> Option<&'static str> {
    let (_, extension) = file_name.rsplit_once('.')?;
    ACCEPTED_TYPES
        .iter()
        .find(|(ext, _)| extension.eq_ignore_ascii_case(ext))
        .map(|(_, content_type)| *content_type)
}

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
    /// The most files an upload may have.
    pub max_files: usize,
    /// The most bytes all its files may hold together.
    pub max_bytes: u64,
}

impl Default for Limits {
    /// The service's defaults (its settings `MAX_FILES_PER_UPLOAD` and `MAX_UPLOAD_BYTES`), which
    /// a check before the upload (the browser's) assumes.
    fn default() -> Self {
        Limits {
            max_files: 10,
            max_bytes: 300_000_000,
        }
    }
}

/// Why each of an upload's files is refused unread, if it is: `files` are the objects under the
/// upload's `folder` (`{council_id}/{election_date}/{timestamp}/`) as (key, size), at most
/// `limits.max_files + 1` of them. Too many files or too many bytes refuse every file; otherwise
/// each file is held to [`name_problem`] and the length WhereDoIVote stores.
pub fn refusals(folder: &str, files: &[(&str, u64)], limits: Limits) -> Vec<Option<Problem>> {
    let refuse_all = |code: Code, message: String| -> Vec<Option<Problem>> {
        files
            .iter()
            .map(|_| Some(Problem::error(code, message.clone())))
            .collect()
    };
    if files.len() > limits.max_files {
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
    let total: u64 = files.iter().map(|(_, size)| size).sum();
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
    files
        .iter()
        .map(|(key, _)| {
            let name = key.strip_prefix(folder).unwrap_or(key);
            name_problem(name).or_else(|| length_problem(folder, name))
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
pub fn length_problem(folder: &str, name: &str) -> Option<Problem> {
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

fn megabytes(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} bytes"),
        1_000..1_000_000 => format!("{:.1} KB", bytes as f64 / 1_000.0),
        _ => format!("{:.1} MB", bytes as f64 / 1_000_000.0),
    }
}
