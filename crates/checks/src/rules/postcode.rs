//! The postcode rule: a value that is not a well-formed UK postcode is counted, and warned about.

use super::tally::Tally;
use crate::report::Problem;
use crate::vocab::Code;

/// Whether a value is a well-formed UK postcode (`SW1A 1AA`, `M1 1AE`, `GIR 0AA`), with or
/// without the one space, in any case. Raw bytes, no allocation: it runs on every row.
fn is_uk_postcode(value: &[u8]) -> bool {
    let v = value.trim_ascii();
    let len = v.len();
    if !(5..=8).contains(&len) {
        return false;
    }
    // The value's bytes in one word, zero past its end: its first four and its last four, which
    // overlap for fewer than eight (a byte OR itself is itself). No branch on the length, which
    // varies from row to row.
    let four = |at: usize| u64::from(u32::from_le_bytes(v[at..at + 4].try_into().expect("4")));
    let word = four(0) | four(len - 4) << (8 * (len - 4));
    // Each byte's class, two bits a byte, the first byte lowest: the value's shape as a number,
    // compared with the twelve shapes of a postcode at once. A zero byte past the end is of no
    // class, so a shape with a byte of no class inside the value is told by the count.
    let (mut shape, mut classed) = (0u32, 0usize);
    for i in 0..8 {
        let class = u32::from(POSTCODE_CLASSES[(word >> (8 * i)) as usize & 0xFF]);
        shape |= class << (2 * i);
        classed += usize::from(class != 0);
    }
    let usual = POSTCODE_SHAPES
        .iter()
        .fold(false, |found, &s| found | (s == shape));
    (usual && classed == len)
        // And the odd one out, GIR 0AA.
        || is_gir(v)
}

/// `GIR 0AA` (or `GIR0AA`), in any case.
#[cold]
fn is_gir(v: &[u8]) -> bool {
    let (outward, inward) = v.split_at(v.len().saturating_sub(3));
    let outward = outward.strip_suffix(b" ").unwrap_or(outward);
    outward.eq_ignore_ascii_case(b"GIR") && inward.eq_ignore_ascii_case(b"0AA")
}

const A: u32 = POSTCODE_LETTER as u32;
const D: u32 = POSTCODE_DIGIT as u32;
const S: u32 = POSTCODE_SPACE as u32;

/// The shapes of a postcode, as [`pattern`]s: the outward code (A9, A99, A9A, AA9, AA99 or
/// AA9A), the one space or none, and the inward code, 9AA.
static POSTCODE_SHAPES: [u32; 12] = {
    const OUTWARD: [&[u32]; 6] = [
        &[A, D],
        &[A, D, D],
        &[A, D, A],
        &[A, A, D],
        &[A, A, D, D],
        &[A, A, D, A],
    ];
    let mut shapes = [0; 12];
    let mut i = 0;
    while i < 12 {
        let outward = OUTWARD[i / 2];
        let mut shape = [0; 8];
        let mut n = 0;
        while n < outward.len() {
            shape[n] = outward[n];
            n += 1;
        }
        if i % 2 == 1 {
            shape[n] = S;
            n += 1;
        }
        shape[n] = D;
        shape[n + 1] = A;
        shape[n + 2] = A;
        shapes[i] = pattern(&shape);
        i += 1;
    }
    shapes
};

const POSTCODE_LETTER: u8 = 1;
const POSTCODE_DIGIT: u8 = 2;
const POSTCODE_SPACE: u8 = 3;

/// Each byte's class in a postcode: an ASCII letter, an ASCII digit, a space, or none (0).
static POSTCODE_CLASSES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = if byte.is_ascii_alphabetic() {
            POSTCODE_LETTER
        } else if byte.is_ascii_digit() {
            POSTCODE_DIGIT
        } else if byte == b' ' {
            POSTCODE_SPACE
        } else {
            0
        };
        b += 1;
    }
    table
};

/// The classes `of` a postcode's bytes, two bits each, the first byte lowest.
const fn pattern(of: &[u32]) -> u32 {
    let (mut p, mut i) = (0, of.len());
    while i > 0 {
        i -= 1;
        p = p << 2 | of[i];
    }
    p
}

/// The postcode rule on one column.
#[derive(Debug)]
pub(super) struct PostcodeColumn(Tally);

impl PostcodeColumn {
    /// The rule for the column the header calls `column`.
    pub(super) fn new(column: &str) -> Self {
        PostcodeColumn(Tally::new(column))
    }

    /// Reads one value (unquoted); counts it if it is not a postcode. An empty cell is not
    /// checked.
    #[inline(always)]
    pub(super) fn check(&mut self, row: u64, value: &[u8]) {
        let value = value.trim_ascii();
        if !value.is_empty() && !is_uk_postcode(value) {
            self.0.add(row, &String::from_utf8_lossy(value));
        }
    }

    /// Adds the rows of `later`, read after these; `before` rows came before its first.
    pub(super) fn absorb(&mut self, later: PostcodeColumn, before: u64) {
        self.0.absorb(later.0, before);
    }

    /// The warning, when some row holds a malformed postcode.
    pub(super) fn finish(self) -> Option<Problem> {
        let t = self.0;
        (t.count > 0).then(|| {
            Problem::warning(
                Code::MalformedPostcode,
                format!(
                    "{} {} a malformed postcode in column {} (first: {}). Check the \
                         export; addresses with a bad postcode may not be found by voters.",
                    t.count,
                    t.rows(),
                    t.column,
                    t.examples()
                ),
            )
            .at_row(t.examples[0].0)
            .in_column(t.column)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::strategies::byte;
    use proptest::prelude::*;

    /// The reader as first written, one byte at a time: the model the faster one must match.
    fn postcode_model(value: &[u8]) -> bool {
        let v = value.trim_ascii();
        if v.len() < 5 || v.len() > 8 {
            return false;
        }
        let (outward, inward) = v.split_at(v.len() - 3);
        let outward = outward.strip_suffix(b" ").unwrap_or(outward);
        let a = |b: u8| b.is_ascii_alphabetic();
        let d = |b: u8| b.is_ascii_digit();
        if !(d(inward[0]) && a(inward[1]) && a(inward[2])) {
            return false;
        }
        let usual = match *outward {
            [x, y] => a(x) && d(y),
            [x, y, z] => a(x) && ((d(y) && (d(z) || a(z))) || (a(y) && d(z))),
            [w, x, y, z] => a(w) && a(x) && d(y) && (d(z) || a(z)),
            _ => false,
        };
        usual || (outward.eq_ignore_ascii_case(b"GIR") && inward.eq_ignore_ascii_case(b"0AA"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::testing::cases(4000)))]

        #[test]
        fn postcodes_read_as_the_model_reads_them(
            value in proptest::collection::vec(byte(), 0..10),
        ) {
            prop_assert_eq!(is_uk_postcode(&value), postcode_model(&value));
        }

        #[test]
        fn postcode_shapes_read_as_the_model_reads_them(
            outward in proptest::collection::vec(prop_oneof![b'A'..=b'Z', b'0'..=b'9', b'a'..=b'z'], 1..6),
            space in any::<bool>(),
            inward in proptest::collection::vec(prop_oneof![b'A'..=b'Z', b'0'..=b'9', Just(b' ')], 3),
        ) {
            let mut value = outward;
            if space {
                value.push(b' ');
            }
            value.extend(inward);
            prop_assert_eq!(is_uk_postcode(&value), postcode_model(&value));
        }
    }

    #[test]
    fn postcodes() {
        for ok in [
            "HA8 6NB",
            "ha86nb",
            "EN5 4PR",
            "M1 1AE",
            "B33 8TH",
            "CR2 6XH",
            "DN55 1PT",
            "W1A 0AX",
            "EC1A 1BB",
            "GIR 0AA",
            " SW1A 1AA ",
        ] {
            assert!(is_uk_postcode(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "HA8", "12345", "HA8 6N", "HA8 66B", "AAA 1AA", "HA8-6NB", "N/A", "Ä1 1AA",
        ] {
            assert!(!is_uk_postcode(bad.as_bytes()), "{bad}");
        }
    }
}
