//! What a file really is, from its first bytes, whatever its name says. Councils sometimes upload
//! the spreadsheet itself, or a zip of the export; telling them so beats "Incomplete file".

use crate::vocab::Code;

/// A kind of file that is not delimited text or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrongType {
    Xlsx,
    Xls,
    Zip,
    Pdf,
    Gzip,
}

impl WrongType {
    pub fn code(self) -> Code {
        match self {
            WrongType::Xlsx => Code::ExcelXlsx,
            WrongType::Xls => Code::ExcelXls,
            WrongType::Zip => Code::Zip,
            WrongType::Pdf => Code::Pdf,
            WrongType::Gzip => Code::Gzip,
        }
    }

    fn what(self) -> &'static str {
        match self {
            WrongType::Xlsx => "an Excel workbook (.xlsx)",
            WrongType::Xls => "an Excel 97-2003 workbook (.xls)",
            WrongType::Zip => "a zip archive",
            WrongType::Pdf => "a PDF document",
            WrongType::Gzip => "a gzip-compressed file",
        }
    }

    /// What a council officer reads: what we received and what to send instead.
    pub fn message(self) -> String {
        let instead = match self {
            WrongType::Zip | WrongType::Gzip => {
                "Please extract the file and upload the CSV export from your Election Management \
                 System (EMS) itself."
            }
            _ => {
                "Please export the polling station data from your Election Management System (EMS) \
                 as a CSV file and upload that file as it is, without opening and re-saving it."
            }
        };
        format!(
            "This file is {}, not a CSV or TSV file. {instead}",
            self.what()
        )
    }
}

/// Recognises a file by its magic bytes. `head` is the first few KB.
pub fn sniff(head: &[u8]) -> Option<WrongType> {
    const OLE2: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        // An xlsx is a zip whose first entries are `[Content_Types].xml` and `xl/...`.
        let office = memchr::memmem::find(head, b"xl/").is_some()
            || memchr::memmem::find(head, b"[Content_Types].xml").is_some();
        return Some(if office {
            WrongType::Xlsx
        } else {
            WrongType::Zip
        });
    }
    if head.starts_with(OLE2) {
        return Some(WrongType::Xls);
    }
    if head.starts_with(b"%PDF-") {
        return Some(WrongType::Pdf);
    }
    if head.starts_with(&[0x1F, 0x8B]) {
        return Some(WrongType::Gzip);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes() {
        assert_eq!(
            sniff(b"PK\x03\x04....[Content_Types].xml"),
            Some(WrongType::Xlsx)
        );
        assert_eq!(sniff(b"PK\x03\x04....data.csv"), Some(WrongType::Zip));
        assert_eq!(
            sniff(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0]),
            Some(WrongType::Xls)
        );
        assert_eq!(sniff(b"%PDF-1.7\n"), Some(WrongType::Pdf));
        assert_eq!(sniff(&[0x1F, 0x8B, 8, 0]), Some(WrongType::Gzip));
        assert_eq!(sniff(b"HouseID,HouseName"), None);
        assert_eq!(sniff(b"PK"), None);
    }

    #[test]
    fn messages_say_what_to_send_instead() {
        let m = WrongType::Xlsx.message();
        assert!(
            m.contains("Excel workbook (.xlsx)") && m.contains("as a CSV file"),
            "{m}"
        );
        assert!(WrongType::Zip.message().contains("extract"));
    }
}
