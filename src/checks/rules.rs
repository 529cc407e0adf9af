//! Domain rules that warn without failing a file: they catch the smells a person would notice
//! (an old export, garbled postcodes) but that the import can still cope with.

use crate::report::Problem;
use crate::text::quote;
use crate::vocab::Date;

/// How many example rows a warning names.
const EXAMPLES: usize = 5;

/// Whether a value is a well-formed UK postcode (`SW1A 1AA`, `M1 1AE`, `GIR 0AA`), with or
/// without the one space, in any case. Raw bytes, no allocation: it runs on every row.
pub fn is_uk_postcode(value: &[u8]) -> bool {
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
    // Outward codes: A9, A99, A9A, AA9, AA99, AA9A; and the odd one out, GIR 0AA.
    let usual = match *outward {
        [x, y] => a(x) && d(y),
        [x, y, z] => a(x) && ((d(y) && (d(z) || a(z))) || (a(y) && d(z))),
        [w, x, y, z] => a(w) && a(x) && d(y) && (d(z) || a(z)),
        _ => false,
    };
    usual || (outward.eq_ignore_ascii_case(b"GIR") && inward.eq_ignore_ascii_case(b"0AA"))
}

/// Counts the rows where a column's value breaks a rule, keeping the first few as examples.
#[derive(Debug)]
struct Tally {
    /// The header's name for the column. Safe to show as it is: it equals one of the profile's
    /// column names but for ASCII case (see [`RowRules::bind`]), so it is short and visible.
    column: String,
    count: u64,
    /// The row and the value as a message quotes it ([`quote`]: bounded, hidden characters escaped).
    examples: Vec<(u64, String)>,
}

impl Tally {
    fn new(column: &str) -> Self {
        Tally {
            column: column.to_owned(),
            count: 0,
            examples: Vec::new(),
        }
    }

    fn add(&mut self, row: u64, value: &str) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push((row, quote(value)));
        }
    }

    fn examples(&self) -> String {
        self.examples
            .iter()
            .map(|(row, v)| format!("row {row}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn rows(&self) -> &'static str {
        if self.count == 1 {
            "row has"
        } else {
            "rows have"
        }
    }
}

/// A rule bound to a column of this file's header.
#[derive(Debug)]
enum Bound {
    Postcode(Tally),
    ElectionDate { expected: Date, tally: Tally },
}

/// The domain rules of one file, bound to its header's column positions.
#[derive(Debug, Default)]
pub struct RowRules {
    bound: Vec<(usize, Bound)>,
}

impl RowRules {
    /// Binds a profile's rules to the columns of `header`; rules whose column is absent are
    /// dropped. The election-date rule needs the upload's date.
    pub fn bind(
        rules: &crate::checks::profiles::Rules,
        header: &[String],
        election_date: Option<Date>,
    ) -> RowRules {
        let find = |name: &str| {
            header
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
        };
        let mut bound = Vec::new();
        for col in &rules.postcode_columns {
            if let Some(i) = find(col) {
                bound.push((i, Bound::Postcode(Tally::new(header[i].trim()))));
            }
        }
        if let (Some(col), Some(expected)) = (&rules.election_date_column, election_date) {
            if let Some(i) = find(col) {
                bound.push((
                    i,
                    Bound::ElectionDate {
                        expected,
                        tally: Tally::new(header[i].trim()),
                    },
                ));
            }
        }
        RowRules { bound }
    }

    /// Which columns the rules read, for the record walker to capture.
    pub fn columns(&self) -> Vec<usize> {
        self.bound.iter().map(|(i, _)| *i).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.bound.is_empty()
    }

    /// Applies the rules to one row's captured values (raw bytes, by column).
    pub fn check_row<'v>(
        &mut self,
        row: u64,
        value_of: impl Fn(usize) -> Option<std::borrow::Cow<'v, [u8]>>,
    ) {
        for (col, rule) in &mut self.bound {
            let Some(value) = value_of(*col) else {
                continue;
            };
            let value = value.trim_ascii();
            let broken = match rule {
                Bound::Postcode(_) => !value.is_empty() && !is_uk_postcode(value),
                Bound::ElectionDate { expected, .. } => {
                    std::str::from_utf8(value).ok().and_then(Date::parse_loose) != Some(*expected)
                }
            };
            if broken {
                let (Bound::Postcode(tally) | Bound::ElectionDate { tally, .. }) = rule;
                tally.add(row, &String::from_utf8_lossy(value));
            }
        }
    }

    /// The warnings, once every row has been seen.
    pub fn finish(self) -> Vec<Problem> {
        self.bound
            .into_iter()
            .filter_map(|(_, rule)| match rule {
                Bound::Postcode(t) if t.count > 0 => Some(
                    Problem::warning(
                        "malformed-postcode",
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
                    .in_column(t.column),
                ),
                Bound::ElectionDate { expected, tally: t } if t.count > 0 => Some(
                    Problem::warning(
                        "election-date-mismatch",
                        format!(
                            "{} {} an {} other than the upload's election date {} (first: {}). \
                             This file may be an export for another election.",
                            t.count,
                            t.rows(),
                            t.column,
                            expected,
                            t.examples()
                        ),
                    )
                    .at_row(t.examples[0].0)
                    .in_column(t.column),
                ),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn dates() {
        let d = Date {
            year: 2019,
            month: 5,
            day: 23,
        };
        assert_eq!("2019-05-23".parse::<Date>(), Ok(d));
        assert!("2019-5-23".parse::<Date>().is_err());
        assert!("2019-02-30".parse::<Date>().is_err());
        for loose in [
            "23/05/2019",
            "23-05-2019",
            "2019-05-23",
            "23/05/2019 00:00:00",
        ] {
            assert_eq!(Date::parse_loose(loose), Some(d), "{loose}");
        }
        assert_eq!(Date::parse_loose("05/23/2019"), None);
        assert_eq!(Date::parse_loose("soon"), None);
        assert!("2024-02-29".parse::<Date>().is_ok());
        assert!("2023-02-29".parse::<Date>().is_err());
    }

    #[test]
    fn rules_tally_and_name_the_first_rows() {
        let rules = crate::checks::profiles::Rules {
            postcode_columns: vec!["Post_Code".into()],
            election_date_column: Some("ElectionDate".into()),
            ..Default::default()
        };
        let header: Vec<String> = ["ElectionDate", "Post_Code", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut r = RowRules::bind(&rules, &header, "2019-05-23".parse().ok());
        assert_eq!(r.columns(), vec![1, 0]);
        let rows = [
            ("23/05/2019", "HA8 6NB"),
            ("02/05/2019", "HA8"),
            ("23/05/2019", ""),
        ];
        for (i, (date, pc)) in rows.iter().enumerate() {
            let values = [date.as_bytes(), pc.as_bytes()];
            r.check_row(i as u64 + 2, |c| values.get(c).map(|v| (*v).into()));
        }
        let warnings = r.finish();
        assert_eq!(warnings.len(), 2);
        assert!(
            warnings[0].message.starts_with(
                "1 row has a malformed postcode in column Post_Code (first: row 3: \"HA8\")"
            ),
            "{}",
            warnings[0].message
        );
        assert!(warnings[1]
            .message
            .contains("ElectionDate other than the upload's election date 2019-05-23"));
        assert_eq!(warnings[1].row, Some(3));
    }

    #[test]
    fn no_election_date_rule_without_the_uploads_date() {
        let rules = crate::checks::profiles::Rules {
            election_date_column: Some("ElectionDate".into()),
            ..Default::default()
        };
        let r = RowRules::bind(&rules, &["ElectionDate".to_string()], None);
        assert!(r.is_empty());
    }
}
