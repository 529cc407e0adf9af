//! The engine's vocabulary: the problem codes, the date type and the names the report and the
//! site share. It depends on nothing, so every module of the engine may use it.

use std::fmt;

/// The EMS of a file no profile recognises.
pub const UNKNOWN_EMS: &str = "unknown";

/// The EMS name WhereDoIVote's upload API compares literally (its lone-file rule), as the
/// embedded profile `profiles/democracy-counts.toml` names it.
pub const DEMOCRACY_COUNTS: &str = "Democracy Counts";

/// The most characters of a key WhereDoIVote stores (`File.key`, a `CharField(max_length=255)`):
/// it refuses a whole report holding a longer one.
pub const WDIV_MAX_KEY_CHARS: usize = 255;

/// Every problem code the program writes, each with the string the report carries on the wire
/// (`problems[].code`), which tools read and must not change. A report read back may carry any
/// string (an older program's, or a forged one), so [`crate::report::Problem`] keeps the code as
/// text; only the program's own problems are made from this list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// A file with no bytes of data.
    Empty,
    /// A file under the smallest size an export can have.
    TooSmall,
    /// A file over the largest size read.
    TooLarge,
    /// An Excel workbook (.xlsx) instead of its export.
    ExcelXlsx,
    /// An Excel 97-2003 workbook (.xls) instead of its export.
    ExcelXls,
    /// A zip archive.
    Zip,
    /// A PDF document.
    Pdf,
    /// A gzip-compressed file.
    Gzip,
    /// Text declared UTF-16 that does not decode.
    InvalidUtf16,
    /// A JSON file in an encoding other than UTF-8.
    JsonNotUtf8,
    /// A JSON file that does not parse.
    InvalidJson,
    /// A JSON number too long to read.
    NumberTooLong,
    /// A JSON file without the list of rows its profile expects.
    MissingRowList,
    /// A quoted field that never closes.
    UnclosedQuote,
    /// A header line too long to be one.
    HeaderTooLong,
    /// A NUL byte in delimited text.
    NulByte,
    /// A row with fewer fields than the header.
    IncompleteRow,
    /// A header with too few columns.
    TooFewColumns,
    /// A file separated by something other than commas.
    UnsupportedDelimiter,
    /// A header no profile recognises.
    UnknownEms,
    /// A column name the header repeats.
    DuplicateColumn,
    /// Rows with more fields than the header.
    LongRows,
    /// A header column without a name.
    HeaderBlankName,
    /// Postcodes that are not of the UK form.
    MalformedPostcode,
    /// An election date other than the upload's.
    ElectionDateMismatch,
    /// UPRNs in scientific notation (a spreadsheet's doing).
    ScientificUprn,
    /// UPRNs that look rounded by a spreadsheet.
    RoundedUprn,
    /// UPRNs that are not digits.
    UprnNotDigits,
    /// A UPRN on more than one row.
    DuplicateUprn,
    /// Too many UPRNs to look for duplicates among.
    DuplicateUprnLimit,
    /// An upload waiting for its partner file (no email for it).
    MissingFiles,
    /// The two files of a pair in different encodings.
    PairEncodingsDiffer,
    /// A file name with characters refused (the file is refused unread).
    BadFileName,
    /// A file type not accepted (refused unread).
    FileTypeNotAccepted,
    /// A file inside a folder of the upload (refused unread).
    FileInFolder,
    /// An upload of more files than allowed (each refused unread).
    TooManyFiles,
    /// An upload of more bytes than allowed (each refused unread).
    UploadTooLarge,
    /// A file name longer than WhereDoIVote stores (refused unread).
    FileNameTooLong,
    /// A row count far from the last import's.
    RowsChanged,
    /// A file identical to the last import's.
    SameAsEarlier,
    /// The last error of a full list: how many more there were.
    MoreErrors,
    /// The last warning of a full list: how many more there were.
    MoreWarnings,
    /// A line of the `errors` text of a report written without `problems`.
    Legacy,
}

impl Code {
    /// Every code, in the order above.
    pub const ALL: [Code; 43] = [
        Code::Empty,
        Code::TooSmall,
        Code::TooLarge,
        Code::ExcelXlsx,
        Code::ExcelXls,
        Code::Zip,
        Code::Pdf,
        Code::Gzip,
        Code::InvalidUtf16,
        Code::JsonNotUtf8,
        Code::InvalidJson,
        Code::NumberTooLong,
        Code::MissingRowList,
        Code::UnclosedQuote,
        Code::HeaderTooLong,
        Code::NulByte,
        Code::IncompleteRow,
        Code::TooFewColumns,
        Code::UnsupportedDelimiter,
        Code::UnknownEms,
        Code::DuplicateColumn,
        Code::LongRows,
        Code::HeaderBlankName,
        Code::MalformedPostcode,
        Code::ElectionDateMismatch,
        Code::ScientificUprn,
        Code::RoundedUprn,
        Code::UprnNotDigits,
        Code::DuplicateUprn,
        Code::DuplicateUprnLimit,
        Code::MissingFiles,
        Code::PairEncodingsDiffer,
        Code::BadFileName,
        Code::FileTypeNotAccepted,
        Code::FileInFolder,
        Code::TooManyFiles,
        Code::UploadTooLarge,
        Code::FileNameTooLong,
        Code::RowsChanged,
        Code::SameAsEarlier,
        Code::MoreErrors,
        Code::MoreWarnings,
        Code::Legacy,
    ];

    /// The code's string in a report.
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::Empty => "empty",
            Code::TooSmall => "too-small",
            Code::TooLarge => "too-large",
            Code::ExcelXlsx => "excel-xlsx",
            Code::ExcelXls => "excel-xls",
            Code::Zip => "zip",
            Code::Pdf => "pdf",
            Code::Gzip => "gzip",
            Code::InvalidUtf16 => "invalid-utf16",
            Code::JsonNotUtf8 => "json-not-utf8",
            Code::InvalidJson => "invalid-json",
            Code::NumberTooLong => "number-too-long",
            Code::MissingRowList => "missing-row-list",
            Code::UnclosedQuote => "unclosed-quote",
            Code::HeaderTooLong => "header-too-long",
            Code::NulByte => "nul-byte",
            Code::IncompleteRow => "incomplete-row",
            Code::TooFewColumns => "too-few-columns",
            Code::UnsupportedDelimiter => "unsupported-delimiter",
            Code::UnknownEms => "unknown-ems",
            Code::DuplicateColumn => "duplicate-column",
            Code::LongRows => "long-rows",
            Code::HeaderBlankName => "header-blank-name",
            Code::MalformedPostcode => "malformed-postcode",
            Code::ElectionDateMismatch => "election-date-mismatch",
            Code::ScientificUprn => "uprn-scientific-notation",
            Code::RoundedUprn => "uprn-rounded",
            Code::UprnNotDigits => "uprn-not-digits",
            Code::DuplicateUprn => "uprn-duplicate",
            Code::DuplicateUprnLimit => "uprn-duplicate-limit",
            Code::MissingFiles => "missing-files",
            Code::PairEncodingsDiffer => "pair-encodings-differ",
            Code::BadFileName => "bad-file-name",
            Code::FileTypeNotAccepted => "file-type-not-accepted",
            Code::FileInFolder => "file-in-folder",
            Code::TooManyFiles => "too-many-files",
            Code::UploadTooLarge => "upload-too-large",
            Code::FileNameTooLong => "file-name-too-long",
            Code::RowsChanged => "rows-changed",
            Code::SameAsEarlier => "same-as-earlier",
            Code::MoreErrors => "more-errors",
            Code::MoreWarnings => "more-warnings",
            Code::Legacy => "legacy",
        }
    }

    /// The code a report's string names, if it is one of ours: for the test that holds each
    /// code to its wire string (nothing else reads a code back).
    #[cfg(test)]
    fn from_wire(code: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A calendar date, as the upload's key and the Xpress DC `ElectionDate` column carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// The year, as written (`2019`).
    pub year: u16,
    /// The month, 1 to 12.
    pub month: u8,
    /// The day of the month, from 1.
    pub day: u8,
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl std::str::FromStr for Date {
    type Err = String;

    /// Strict `YYYY-MM-DD`, the form the upload's key uses.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("'{s}' is not a date of the form YYYY-MM-DD");
        let parts: Vec<&str> = s.split('-').collect();
        if parts.len() != 3 || parts[0].len() != 4 || parts[1].len() != 2 || parts[2].len() != 2 {
            return Err(bad());
        }
        let date = Date {
            year: parts[0].parse().map_err(|_| bad())?,
            month: parts[1].parse().map_err(|_| bad())?,
            day: parts[2].parse().map_err(|_| bad())?,
        };
        date.is_valid().then_some(date).ok_or_else(bad)
    }
}

impl Date {
    fn is_valid(&self) -> bool {
        let leap = (self.year.is_multiple_of(4) && !self.year.is_multiple_of(100))
            || self.year.is_multiple_of(400);
        let days = match self.month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return false,
        };
        (1..=days).contains(&self.day)
    }

    /// Reads the date forms EMS exports use: `DD/MM/YYYY`, `DD-MM-YYYY`, `YYYY-MM-DD`, each maybe
    /// followed by a time.
    pub fn parse_loose(value: &str) -> Option<Date> {
        let value = value.trim();
        let date_part = value.split([' ', 'T']).next()?;
        let parts: Vec<&str> = date_part.split(['/', '-', '.']).collect();
        if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || p.len() > 4) {
            return None;
        }
        let nums: Vec<u16> = parts
            .iter()
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        let (year, month, day) = if parts[0].len() == 4 {
            (nums[0], nums[1], nums[2])
        } else if parts[2].len() == 4 {
            (nums[2], nums[1], nums[0])
        } else {
            return None;
        };
        let date = Date {
            year,
            month: u8::try_from(month).ok()?,
            day: u8::try_from(day).ok()?,
        };
        date.is_valid().then_some(date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_code_keeps_its_wire_string() {
        let wire: [(Code, &str); 43] = [
            (Code::Empty, "empty"),
            (Code::TooSmall, "too-small"),
            (Code::TooLarge, "too-large"),
            (Code::ExcelXlsx, "excel-xlsx"),
            (Code::ExcelXls, "excel-xls"),
            (Code::Zip, "zip"),
            (Code::Pdf, "pdf"),
            (Code::Gzip, "gzip"),
            (Code::InvalidUtf16, "invalid-utf16"),
            (Code::JsonNotUtf8, "json-not-utf8"),
            (Code::InvalidJson, "invalid-json"),
            (Code::NumberTooLong, "number-too-long"),
            (Code::MissingRowList, "missing-row-list"),
            (Code::UnclosedQuote, "unclosed-quote"),
            (Code::HeaderTooLong, "header-too-long"),
            (Code::NulByte, "nul-byte"),
            (Code::IncompleteRow, "incomplete-row"),
            (Code::TooFewColumns, "too-few-columns"),
            (Code::UnsupportedDelimiter, "unsupported-delimiter"),
            (Code::UnknownEms, "unknown-ems"),
            (Code::DuplicateColumn, "duplicate-column"),
            (Code::LongRows, "long-rows"),
            (Code::HeaderBlankName, "header-blank-name"),
            (Code::MalformedPostcode, "malformed-postcode"),
            (Code::ElectionDateMismatch, "election-date-mismatch"),
            (Code::ScientificUprn, "uprn-scientific-notation"),
            (Code::RoundedUprn, "uprn-rounded"),
            (Code::UprnNotDigits, "uprn-not-digits"),
            (Code::DuplicateUprn, "uprn-duplicate"),
            (Code::DuplicateUprnLimit, "uprn-duplicate-limit"),
            (Code::MissingFiles, "missing-files"),
            (Code::PairEncodingsDiffer, "pair-encodings-differ"),
            (Code::BadFileName, "bad-file-name"),
            (Code::FileTypeNotAccepted, "file-type-not-accepted"),
            (Code::FileInFolder, "file-in-folder"),
            (Code::TooManyFiles, "too-many-files"),
            (Code::UploadTooLarge, "upload-too-large"),
            (Code::FileNameTooLong, "file-name-too-long"),
            (Code::RowsChanged, "rows-changed"),
            (Code::SameAsEarlier, "same-as-earlier"),
            (Code::MoreErrors, "more-errors"),
            (Code::MoreWarnings, "more-warnings"),
            (Code::Legacy, "legacy"),
        ];
        assert_eq!(Code::ALL.len(), wire.len());
        for (i, (code, string)) in wire.into_iter().enumerate() {
            assert_eq!(Code::ALL[i], code, "ALL lists every code once, in order");
            assert_eq!(code.as_str(), string);
            assert_eq!(code.to_string(), string);
            assert_eq!(Code::from_wire(string), Some(code));
        }
        let unique: std::collections::HashSet<&str> =
            Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(unique.len(), Code::ALL.len(), "no two codes share a string");
        assert_eq!(Code::from_wire("other"), None);
    }
}
