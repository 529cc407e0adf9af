//! Which text encoding a file is in, decided from a stream of chunks.
//!
//! Parity with the original: it decoded the whole body as UTF-8, else windows-1252, else latin-1,
//! with Python's strict codecs. Python's cp1252 leaves 0x81, 0x8D, 0x8F, 0x90 and 0x9D undefined,
//! so a file holding one of them (and not valid UTF-8) is latin-1. Beyond the original: byte order
//! marks, and UTF-16 with or without a BOM, which some Democracy Counts exports are.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    Windows1252,
    Latin1,
}

impl Encoding {
    /// The name the report uses.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf16Le => "utf-16le",
            Encoding::Utf16Be => "utf-16be",
            Encoding::Windows1252 => "windows-1252",
            Encoding::Latin1 => "latin-1",
        }
    }

    /// The label the report gives (`csv_encoding`): a codec name that Python's `open(…,
    /// encoding=label)` reads the file with, as WhereDoIVote's import script does. A file that
    /// starts with a byte order mark gets the codec that strips it (`utf-8-sig`, `utf-16`);
    /// with the plain name, the mark would become part of the first header name.
    pub fn label(self, bom: bool) -> &'static str {
        match (self, bom) {
            (Encoding::Utf8, true) => "utf-8-sig",
            (Encoding::Utf16Le | Encoding::Utf16Be, true) => "utf-16",
            _ => self.name(),
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the first bytes say about the encoding: a byte order mark, or UTF-16 by its zero bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// Encoding fixed by the start of the file; `None` means "8-bit: decide at the end".
    pub fixed: Option<Encoding>,
    /// Length of the byte order mark to skip.
    pub bom_len: usize,
}

/// Looks at the first bytes (a few KB) of a file.
pub fn sniff_start(head: &[u8]) -> Start {
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Start {
            fixed: Some(Encoding::Utf8),
            bom_len: 3,
        };
    }
    if head.starts_with(&[0xFF, 0xFE]) {
        return Start {
            fixed: Some(Encoding::Utf16Le),
            bom_len: 2,
        };
    }
    if head.starts_with(&[0xFE, 0xFF]) {
        return Start {
            fixed: Some(Encoding::Utf16Be),
            bom_len: 2,
        };
    }
    Start {
        fixed: utf16_without_bom(head),
        bom_len: 0,
    }
}

/// Text in UTF-16 is mostly ASCII here, so every other byte is zero: at odd offsets for
/// little-endian, even ones for big-endian. 8-bit text has no zero bytes at all.
fn utf16_without_bom(head: &[u8]) -> Option<Encoding> {
    let pairs = head.len() / 2;
    if pairs < 2 {
        return None;
    }
    let (mut even_zeros, mut odd_zeros) = (0usize, 0usize);
    for pair in head.chunks_exact(2) {
        even_zeros += usize::from(pair[0] == 0);
        odd_zeros += usize::from(pair[1] == 0);
    }
    let mostly = |zeros: usize| zeros * 10 >= pairs * 4;
    let hardly = |zeros: usize| zeros * 20 <= pairs;
    if mostly(odd_zeros) && hardly(even_zeros) {
        Some(Encoding::Utf16Le)
    } else if mostly(even_zeros) && hardly(odd_zeros) {
        Some(Encoding::Utf16Be)
    } else {
        None
    }
}

/// Decides between UTF-8, windows-1252 and latin-1 as chunks go by.
#[derive(Debug)]
pub struct EightBitTracker {
    utf8_valid: bool,
    /// Bytes of a UTF-8 sequence cut by the end of the previous chunk.
    carry: Vec<u8>,
    cp1252_undefined: bool,
}

/// Bytes that Python's strict cp1252 codec refuses.
fn cp1252_undefined(b: u8) -> bool {
    matches!(b, 0x81 | 0x8D | 0x8F | 0x90 | 0x9D)
}

impl Default for EightBitTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl EightBitTracker {
    pub fn new() -> Self {
        EightBitTracker {
            utf8_valid: true,
            carry: Vec::new(),
            cp1252_undefined: false,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if chunk.is_ascii() {
            if !self.carry.is_empty() {
                // An incomplete sequence followed by ASCII is invalid.
                self.utf8_valid = false;
                self.carry.clear();
            }
            return;
        }
        if !self.cp1252_undefined {
            self.cp1252_undefined = chunk.iter().any(|&b| cp1252_undefined(b));
        }
        if self.utf8_valid {
            self.check_utf8(chunk);
        }
    }

    fn check_utf8(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        if !self.carry.is_empty() {
            // Complete the cut sequence with up to 3 bytes of this chunk.
            let take = rest.len().min(4 - self.carry.len());
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(&rest[..take]);
            match std::str::from_utf8(&joined) {
                Ok(_) => {
                    rest = &rest[take..];
                }
                Err(e) if e.valid_up_to() > 0 => {
                    // The cut sequence is complete within valid_up_to; the rest starts afresh.
                    let consumed = e.valid_up_to() - (joined.len() - take);
                    rest = &rest[consumed..];
                }
                Err(e) if e.error_len().is_none() => {
                    // Still incomplete (a tiny chunk).
                    self.carry = joined;
                    return;
                }
                Err(_) => {
                    self.utf8_valid = false;
                    return;
                }
            }
        }
        match std::str::from_utf8(rest) {
            Ok(_) => {}
            Err(e) => match e.error_len() {
                None => self.carry = rest[e.valid_up_to()..].to_vec(),
                Some(_) => self.utf8_valid = false,
            },
        }
    }

    /// Whether the bytes fed so far end between two characters, so that a tracker of the bytes
    /// after them, started afresh, can be [`Self::absorb`]ed.
    pub fn at_char_boundary(&self) -> bool {
        self.carry.is_empty()
    }

    /// Takes in a tracker of the bytes after these (fed from a character boundary on): as if
    /// this one had been fed them too.
    pub fn absorb(&mut self, later: EightBitTracker) {
        debug_assert!(self.at_char_boundary());
        self.utf8_valid &= later.utf8_valid;
        self.cp1252_undefined |= later.cp1252_undefined;
        self.carry = later.carry;
    }

    /// The encoding, once every chunk has been fed.
    pub fn finish(&self) -> Encoding {
        if self.utf8_valid && self.carry.is_empty() {
            Encoding::Utf8
        } else if self.cp1252_undefined {
            Encoding::Latin1
        } else {
            Encoding::Windows1252
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(bytes: &[u8], chunk: usize) -> Encoding {
        let mut t = EightBitTracker::new();
        for piece in bytes.chunks(chunk) {
            t.feed(piece);
        }
        t.finish()
    }

    #[test]
    fn utf8_even_when_sequences_are_cut_between_chunks() {
        let text = "Caf\u{e9} \u{2019}Ysgol Gymraeg\u{2019} \u{1F5F3} Llan\u{175}".as_bytes();
        for chunk in 1..8 {
            assert_eq!(track(text, chunk), Encoding::Utf8, "chunk {chunk}");
        }
    }

    #[test]
    fn windows_1252_when_not_utf8() {
        // 0x92 is a right single quote in windows-1252 and invalid as UTF-8 here.
        assert_eq!(track(b"St Mary\x92s Hall,\xe9", 4), Encoding::Windows1252);
    }

    #[test]
    fn latin_1_when_a_byte_is_undefined_in_cp1252() {
        for b in [0x81u8, 0x8D, 0x8F, 0x90, 0x9D] {
            assert_eq!(track(&[b'a', 0xe9, b, b'b'], 2), Encoding::Latin1);
        }
    }

    #[test]
    fn an_undefined_cp1252_byte_inside_valid_utf8_is_still_utf8() {
        // U+00C1 is C3 81 in UTF-8.
        assert_eq!(track("\u{c1}".as_bytes(), 1), Encoding::Utf8);
    }

    #[test]
    fn a_sequence_cut_off_at_the_end_is_not_utf8() {
        assert_eq!(track(b"abc\xe2\x80", 2), Encoding::Windows1252);
        assert_eq!(track(b"abc\xe2\x80xyz", 5), Encoding::Windows1252);
    }

    #[test]
    fn boms_and_utf16_without_bom() {
        assert_eq!(sniff_start(b"\xef\xbb\xbfa,b").fixed, Some(Encoding::Utf8));
        assert_eq!(sniff_start(b"\xff\xfea\0").bom_len, 2);
        assert_eq!(sniff_start(b"\xfe\xff\0a").fixed, Some(Encoding::Utf16Be));
        let le: Vec<u8> = "\"Add1\",\"Add2\"\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(sniff_start(&le).fixed, Some(Encoding::Utf16Le));
        let be: Vec<u8> = "Add1,Add2\r\n"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(sniff_start(&be).fixed, Some(Encoding::Utf16Be));
        assert_eq!(sniff_start(b"HouseID,HouseName").fixed, None);
        assert_eq!(sniff_start(b"a,\0b,c,d,e,f,g").fixed, None);
    }
}
