//! The UPRN rules of one column: a UPRN in scientific notation fails the file; rounded-looking
//! and malformed UPRNs warn, and so do repeats in a column whose UPRNs should be unique.

use super::tally::Tally;
use super::uprn_set::{UprnSet, MAX_TRACKED_UPRNS};
use crate::report::Problem;
use crate::vocab::Code;

/// What a UPRN cell holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Uprn {
    /// An empty cell.
    Empty,
    /// 1 to 12 digits once leading zeros are set aside (WebLookup pads to 12 with zeros).
    Number(u64),
    /// `1.00021E+11`, `1E+11`, `-1.0e11`: what a spreadsheet writes for a long number.
    Scientific,
    /// Anything else: letters, a decimal point, more than 12 digits.
    Malformed,
}

impl Uprn {
    /// Reads a cell (surrounding spaces already trimmed). Raw bytes, no allocation.
    fn parse(value: &[u8]) -> Uprn {
        if value.is_empty() {
            return Uprn::Empty;
        }
        // The usual cell: a dozen digits at most, read eight at a time.
        if let Some(n) = digits_value(value) {
            // More than 12 digits once leading zeros are set aside.
            return if n < 1_000_000_000_000 {
                Uprn::Number(n)
            } else {
                Uprn::Malformed
            };
        }
        let start = value.iter().position(|&b| b != b'0').unwrap_or(value.len());
        let digits = &value[start..];
        if digits.len() <= 12 {
            // It runs on every row: no branch per digit, a non-digit is noticed at the end.
            let (mut n, mut bad) = (0u64, false);
            for &b in digits {
                let d = b.wrapping_sub(b'0');
                bad |= d > 9;
                n = n.wrapping_mul(10).wrapping_add(u64::from(d));
            }
            if !bad {
                return Uprn::Number(n);
            }
        } else if digits.iter().all(u8::is_ascii_digit) {
            return Uprn::Malformed;
        }
        if is_scientific(value) {
            Uprn::Scientific
        } else {
            Uprn::Malformed
        }
    }
}

/// The value of a cell of 8 to 16 ASCII digits (a UPRN's usual 12), eight at a time with no
/// branch per digit; `None` for anything shorter, longer or holding another byte.
#[inline(always)]
fn digits_value(value: &[u8]) -> Option<u64> {
    const ZEROS: u64 = u64::from_le_bytes(*b"00000000");
    let len = value.len();
    if !(8..=16).contains(&len) {
        return None;
    }
    let eight = |at: usize| u64::from_le_bytes(value[at..at + 8].try_into().expect("8 bytes"));
    // As if padded to 16 digits with leading zeros, which do not change the value: the low
    // half is the last eight digits, the high half the digits before them after the zeros.
    let (first, low) = (eight(0), eight(len - 8));
    let pad = 8 * (16 - len) as u32;
    let high = if pad < 64 {
        first << pad | (ZEROS & ((1u64 << pad) - 1))
    } else {
        ZEROS
    };
    (eight_digits(high) && eight_digits(low))
        .then(|| eight_digits_value(high) * 100_000_000 + eight_digits_value(low))
}

/// Whether each of the eight bytes of `x` is an ASCII digit: its high nibble is 3, and still
/// is once 6 is added (so it is at most `9`). A carry out of a byte happens only above 0xF9,
/// whose high nibble already fails.
#[inline(always)]
fn eight_digits(x: u64) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    (x & HIGH) | ((x.wrapping_add(0x0606_0606_0606_0606) & HIGH) >> 4) == 0x3333_3333_3333_3333
}

/// The number written by eight ASCII digits, the first in the lowest byte of `x`: pairs of
/// digits, then pairs of pairs, combined by multiplication.
#[inline(always)]
fn eight_digits_value(x: u64) -> u64 {
    const PAIRS: u64 = 0x0000_00FF_0000_00FF;
    let x = x.wrapping_sub(0x3030_3030_3030_3030);
    let x = x.wrapping_mul(10).wrapping_add(x >> 8);
    let x = (x & PAIRS)
        .wrapping_mul(100 + (1_000_000 << 32))
        .wrapping_add((x >> 16 & PAIRS).wrapping_mul(1 + (10_000 << 32)));
    x >> 32
}

/// `[+-]? mantissa [eE] [+-]? digits`, the mantissa digits with at most one decimal point or
/// comma (a spreadsheet in a European locale), and at least one digit on each side of the `e`.
fn is_scientific(value: &[u8]) -> bool {
    let sign = |v: &[u8]| -> usize { usize::from(matches!(v.first(), Some(b'+' | b'-'))) };
    let Some(e) = value.iter().position(|b| b.eq_ignore_ascii_case(&b'e')) else {
        return false;
    };
    let (mantissa, exponent) = (&value[..e], &value[e + 1..]);
    let mantissa = &mantissa[sign(mantissa)..];
    let exponent = &exponent[sign(exponent)..];
    let mut points = 0;
    let mut digits = 0;
    for &b in mantissa {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' | b',' => points += 1,
            _ => return false,
        }
    }
    digits > 0 && points <= 1 && !exponent.is_empty() && exponent.iter().all(u8::is_ascii_digit)
}
/// The UPRN checks of one column.
#[derive(Debug)]
pub(super) struct UprnColumn {
    rounded_percent: u8,
    non_empty: u64,
    scientific: Tally,
    malformed: Tally,
    rounded: Tally,
    seen: Option<UprnSet>,
}

impl UprnColumn {
    /// The rules for the column the header calls `column`: repeats are counted when `unique`,
    /// rounded values warned about past `rounded_percent` of the non-empty ones.
    pub(super) fn new(column: &str, unique: bool, rounded_percent: u8) -> Self {
        UprnColumn {
            rounded_percent,
            non_empty: 0,
            scientific: Tally::new(column),
            malformed: Tally::new(column),
            rounded: Tally::new(column),
            seen: unique.then(UprnSet::default),
        }
    }

    /// Reads one value (unquoted); counts it if it breaks a rule.
    #[inline(always)]
    pub(super) fn check(&mut self, row: u64, value: &[u8]) {
        let value = value.trim_ascii();
        let uprn = Uprn::parse(value);
        if uprn != Uprn::Empty {
            self.non_empty += 1;
        }
        let tally = match uprn {
            Uprn::Empty => None,
            Uprn::Scientific => Some(&mut self.scientific),
            Uprn::Malformed => Some(&mut self.malformed),
            Uprn::Number(n) => {
                if let Some(seen) = &mut self.seen {
                    seen.add(row, n);
                }
                (n != 0 && n % 100_000 == 0).then_some(&mut self.rounded)
            }
        };
        if let Some(tally) = tally {
            tally.add(row, &String::from_utf8_lossy(value));
        }
    }

    /// Makes room for the UPRNs of `rows` rows at most, when repeats are counted.
    pub(super) fn expect_rows(&mut self, rows: usize) {
        if let Some(seen) = &mut self.seen {
            seen.expect(rows);
        }
    }

    /// Readies the kept UPRNs to be absorbed, on the thread that read them.
    pub(super) fn settle(&mut self) {
        if let Some(seen) = &mut self.seen {
            seen.settle();
        }
    }

    /// Whether [`Self::absorb`] can add `later`'s rows exactly: both count repeats or neither,
    /// and their UPRNs still fit under the limit ([`UprnSet::can_absorb`]).
    pub(super) fn can_absorb(&self, later: &UprnColumn) -> bool {
        match (&self.seen, &later.seen) {
            (None, None) => true,
            (Some(a), Some(b)) => a.can_absorb(b),
            _ => false,
        }
    }

    /// Adds the rows of `later`, read after these; `before` rows came before its first.
    pub(super) fn absorb(&mut self, later: UprnColumn, before: u64) {
        self.non_empty += later.non_empty;
        self.scientific.absorb(later.scientific, before);
        self.malformed.absorb(later.malformed, before);
        self.rounded.absorb(later.rounded, before);
        if let (Some(a), Some(b)) = (&mut self.seen, later.seen) {
            a.absorb(b, before);
        }
    }

    /// The error and warnings, once every row has been seen.
    pub(super) fn finish(self) -> Vec<Problem> {
        let column = self.scientific.column.clone();
        let mut found: Vec<Problem> = [
            scientific(&self.scientific),
            rounded(&self.rounded, self.non_empty, self.rounded_percent),
            malformed(&self.malformed),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some(seen) = self.seen {
            found.extend(repeats(seen, &column));
        }
        found
    }
}

/// The error for UPRNs in scientific notation, if any.
fn scientific(s: &Tally) -> Option<Problem> {
    (s.count > 0).then(|| {
        Problem::error(
            Code::ScientificUprn,
            format!(
                "{} {} a UPRN in scientific notation in column {} (first: {}). The file \
                 was probably opened and saved in a spreadsheet, which writes long numbers \
                 this way and loses their last digits. Please export the file again \
                 straight from your EMS and upload it without opening it in a spreadsheet.",
                s.count,
                s.rows(),
                s.column,
                s.examples()
            ),
        )
        .at_row(s.examples[0].0)
        .in_column(&s.column)
    })
}

/// The warning for rounded-looking UPRNs, when more than `percent` of the `non_empty` are.
fn rounded(r: &Tally, non_empty: u64, percent: u8) -> Option<Problem> {
    (r.count > 0 && r.count * 100 > u64::from(percent) * non_empty).then(|| {
        Problem::warning(
            Code::RoundedUprn,
            format!(
                "{} of the {} UPRNs in column {} end in five or more zeros (first: {}). \
                 They look rounded by a spreadsheet; if the file was opened and saved in \
                 one, please export it again straight from your EMS.",
                r.count,
                non_empty,
                r.column,
                r.examples()
            ),
        )
        .at_row(r.examples[0].0)
        .in_column(&r.column)
    })
}

/// The warning for UPRNs that are not 1 to 12 digits, if any.
fn malformed(m: &Tally) -> Option<Problem> {
    (m.count > 0).then(|| {
        Problem::warning(
            Code::UprnNotDigits,
            format!(
                "{} {} a UPRN in column {} that is not 1 to 12 digits (first: {}). Those \
                 addresses may not be matched to their property.",
                m.count,
                m.rows(),
                m.column,
                m.examples()
            ),
        )
        .at_row(m.examples[0].0)
        .in_column(&m.column)
    })
}

/// The warnings of a unique column: its repeats, and the row past which UPRNs were no longer
/// kept to find them.
fn repeats(seen: UprnSet, column: &str) -> Vec<Problem> {
    let mut found = Vec::new();
    let full_at = seen.full_at();
    let (extra, distinct, examples) = seen.repeats();
    if extra > 0 {
        let listed: Vec<String> = examples.iter().map(u64::to_string).collect();
        found.push(
            Problem::warning(
                Code::DuplicateUprn,
                format!(
                    "{extra} {} a UPRN already given on an earlier row in column {column} \
                     ({distinct} {} more than once; for example {}). Each property should \
                     appear once: check the export.",
                    if extra == 1 {
                        "row repeats"
                    } else {
                        "rows repeat"
                    },
                    if distinct == 1 {
                        "UPRN appears"
                    } else {
                        "UPRNs appear"
                    },
                    listed.join(", ")
                ),
            )
            .in_column(column),
        );
    }
    if let Some(row) = full_at {
        found.push(
            Problem::warning(
                Code::DuplicateUprnLimit,
                format!(
                    "Column {column} has more than {MAX_TRACKED_UPRNS} UPRNs: repeats were \
                     looked for only before row {row}."
                ),
            )
            .at_row(row)
            .in_column(column),
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::strategies::byte;
    use crate::rules::RowRules;
    use proptest::prelude::*;

    /// The reader as first written, one byte at a time: the model the faster one must match.
    fn uprn_model(value: &[u8]) -> Uprn {
        if value.is_empty() {
            return Uprn::Empty;
        }
        let start = value.iter().position(|&b| b != b'0').unwrap_or(value.len());
        let digits = &value[start..];
        if digits.len() <= 12 && digits.iter().all(u8::is_ascii_digit) {
            return Uprn::Number(digits.iter().fold(0, |n, &b| n * 10 + u64::from(b - b'0')));
        }
        if digits.iter().all(u8::is_ascii_digit) {
            Uprn::Malformed
        } else if is_scientific(value) {
            Uprn::Scientific
        } else {
            Uprn::Malformed
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::testing::cases(4000)))]

        #[test]
        fn uprns_read_as_the_model_reads_them(
            value in proptest::collection::vec(byte(), 0..20),
        ) {
            prop_assert_eq!(Uprn::parse(&value), uprn_model(&value));
        }

        #[test]
        fn digit_strings_read_as_the_model_reads_them(
            value in proptest::collection::vec(b'0'..=b'9', 0..20),
        ) {
            prop_assert_eq!(Uprn::parse(&value), uprn_model(&value));
        }
    }

    #[test]
    fn uprn_values() {
        use Uprn::*;
        for (value, want) in [
            ("", Empty),
            ("100021243352", Number(100_021_243_352)),
            ("000072771509", Number(72_771_509)),
            ("7", Number(7)),
            ("0", Number(0)),
            ("0000000000000000100021243352", Number(100_021_243_352)),
            ("1000212433521", Malformed),
            ("1.00021E+11", Scientific),
            ("1E+11", Scientific),
            ("1.0E11", Scientific),
            ("1e11", Scientific),
            ("+1.00021e+011", Scientific),
            ("-1.2E-3", Scientific),
            ("1,00021E+11", Scientific),
            (".5E3", Scientific),
            ("E+11", Malformed),
            ("1E", Malformed),
            ("1.2.3E4", Malformed),
            ("1E+1+1", Malformed),
            ("12 345", Malformed),
            ("100021243352.0", Malformed),
            ("N/A", Malformed),
            ("-100", Malformed),
            ("0000000000000", Number(0)),
            ("00E5", Scientific),
            ("1234567890123e5", Scientific),
            ("12345678901234", Malformed),
            ("000123456789012x", Malformed),
        ] {
            assert_eq!(Uprn::parse(value.as_bytes()), want, "{value:?}");
        }
    }

    /// Runs UPRN rules over one column's values (row 2 onwards) and returns the problems.
    fn uprn_problems(values: &[&str], unique: bool, percent: Option<u8>) -> Vec<Problem> {
        let rules = crate::profiles::Rules {
            uprn_columns: vec!["UPRN".into()],
            unique_uprn_columns: if unique { vec!["uprn".into()] } else { vec![] },
            rounded_uprn_percent: percent,
            ..Default::default()
        };
        let mut r = RowRules::bind(&rules, &["Name".into(), " Uprn ".into()], None);
        assert_eq!(r.columns(), vec![1]);
        for (i, v) in values.iter().enumerate() {
            let row = [b"x".as_slice(), v.as_bytes()];
            r.check_row(i as u64 + 2, |c| row.get(c).map(|v| (*v).into()));
        }
        r.finish()
    }

    #[test]
    fn one_uprn_in_scientific_notation_fails_the_file() {
        let p = uprn_problems(&["100021243352", "1.00021E+11", "", "1e+11"], true, None);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].severity, crate::report::Severity::Error);
        assert_eq!(p[0].code, "uprn-scientific-notation");
        assert_eq!(
            p[0].message,
            "2 rows have a UPRN in scientific notation in column Uprn (first: row 3: \
             \"1.00021E+11\", row 5: \"1e+11\"). The file was probably opened and saved in a \
             spreadsheet, which writes long numbers this way and loses their last digits. Please \
             export the file again straight from your EMS and upload it without opening it in a \
             spreadsheet."
        );
        assert_eq!((p[0].row, p[0].column.as_deref()), (Some(3), Some("Uprn")));
    }

    #[test]
    fn rounded_uprns_warn_only_above_the_share() {
        // 2 of 10 non-empty values is 20%: not more than the default share.
        let mut values = vec!["100021000000", "200000000000"];
        values.extend(["100021243352"; 8]);
        values.push("");
        assert!(uprn_problems(&values, false, None).is_empty());
        values.push("300000");
        let p = uprn_problems(&values, false, None);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].code, "uprn-rounded");
        assert_eq!(p[0].severity, crate::report::Severity::Warning);
        assert_eq!(
            p[0].message,
            "3 of the 11 UPRNs in column Uprn end in five or more zeros (first: row 2: \
             \"100021000000\", row 3: \"200000000000\", row 13: \"300000\"). They look rounded \
             by a spreadsheet; if the file was opened and saved in one, please export it again \
             straight from your EMS."
        );
        // The share is the profile's to set; four zeros are not rounded, nor is a zero.
        assert!(uprn_problems(&values, false, Some(30)).is_empty());
        let p = uprn_problems(&["10000", "0", "100021243352"], false, Some(0));
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn uprns_that_are_not_1_to_12_digits_warn() {
        let p = uprn_problems(
            &[
                "000072771509",
                "ABC123",
                "1000212433521",
                "",
                "7",
                "100021243352.0",
            ],
            false,
            None,
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].code, "uprn-not-digits");
        assert_eq!(
            p[0].message,
            "3 rows have a UPRN in column Uprn that is not 1 to 12 digits (first: row 3: \
             \"ABC123\", row 4: \"1000212433521\", row 7: \"100021243352.0\"). Those addresses \
             may not be matched to their property."
        );
    }

    #[test]
    fn repeated_uprns_warn_only_in_a_unique_column() {
        let values = [
            "300",
            "100021243352",
            "000000000300",
            "5",
            "300",
            "",
            "",
            "5",
            "100021243353",
        ];
        assert!(uprn_problems(&values, false, None).is_empty());
        let p = uprn_problems(&values, true, None);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].code, "uprn-duplicate");
        assert_eq!(
            p[0].message,
            "3 rows repeat a UPRN already given on an earlier row in column Uprn (2 UPRNs appear \
             more than once; for example 5, 300). Each property should appear once: check the \
             export."
        );
        let p = uprn_problems(&["1", "2", "1"], true, None);
        assert!(
            p[0].message.starts_with("1 row repeats a UPRN"),
            "{}",
            p[0].message
        );
        assert!(p[0]
            .message
            .contains("(1 UPRN appears more than once; for example 1)"));
    }
}
