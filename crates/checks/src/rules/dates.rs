//! The election-date rule: a row whose date is not the upload's election date is counted, and
//! warned about (the file may be an export for another election).

use super::tally::Tally;
use crate::report::Problem;
use crate::vocab::{Code, Date};
/// The election-date rule on one column.
#[derive(Debug)]
pub(super) struct DateColumn {
    expected: Date,
    tally: Tally,
    /// The last value read and whether it differed from `expected`: every row of a file
    /// usually holds the same date, so it is parsed once.
    last: Option<(Vec<u8>, bool)>,
}

impl DateColumn {
    /// The rule for the column the header calls `column`, expecting the upload's date.
    pub(super) fn new(column: &str, expected: Date) -> Self {
        DateColumn {
            expected,
            tally: Tally::new(column),
            last: None,
        }
    }

    /// Reads one value (unquoted); counts it if it is not the upload's date.
    #[inline(always)]
    pub(super) fn check(&mut self, row: u64, value: &[u8]) {
        let value = value.trim_ascii();
        let differs = match &mut self.last {
            Some((seen, differs)) if seen.as_slice() == value => *differs,
            last => {
                let differs = std::str::from_utf8(value).ok().and_then(Date::parse_loose)
                    != Some(self.expected);
                let (seen, seen_differs) = last.get_or_insert_with(Default::default);
                seen.clear();
                seen.extend_from_slice(value);
                *seen_differs = differs;
                differs
            }
        };
        if differs {
            self.tally.add(row, &String::from_utf8_lossy(value));
        }
    }

    /// Whether `later` expects the same date, so its rows can be added to these.
    pub(super) fn can_absorb(&self, later: &DateColumn) -> bool {
        self.expected == later.expected
    }

    /// Adds the rows of `later`, read after these; `before` rows came before its first.
    pub(super) fn absorb(&mut self, later: DateColumn, before: u64) {
        self.tally.absorb(later.tally, before);
    }

    /// The warning, when some row holds another date.
    pub(super) fn finish(self) -> Option<Problem> {
        let t = self.tally;
        (t.count > 0).then(|| {
            Problem::warning(
                Code::ElectionDateMismatch,
                format!(
                    "{} {} an {} other than the upload's election date {} (first: {}). \
                         This file may be an export for another election.",
                    t.count,
                    t.rows(),
                    t.column,
                    self.expected,
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
    use crate::rules::RowRules;

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
    fn a_date_read_once_is_judged_the_same_on_every_row_that_repeats_it() {
        let rules = crate::profiles::Rules {
            election_date_column: Some("ElectionDate".into()),
            ..Default::default()
        };
        let header = ["ElectionDate".to_string()];
        let mut r = RowRules::bind(&rules, &header, "2019-05-23".parse().ok());
        let dates = [
            "23/05/2019",
            "23/05/2019",
            "02/05/2019",
            "02/05/2019",
            "23/05/2019",
            "2019-05-23",
            "02/05/2019",
            "not a date",
        ];
        for (i, date) in dates.iter().enumerate() {
            r.check_row(i as u64 + 2, |_| Some(date.as_bytes().into()));
        }
        let warnings = r.finish();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].message.starts_with(
                "4 rows have an ElectionDate other than the upload's election date 2019-05-23 \
                 (first: row 4: \"02/05/2019\", row 5: \"02/05/2019\", row 8: \"02/05/2019\", \
                 row 9: \"not a date\")"
            ),
            "{}",
            warnings[0].message
        );
    }

    #[test]
    fn no_election_date_rule_without_the_uploads_date() {
        let rules = crate::profiles::Rules {
            election_date_column: Some("ElectionDate".into()),
            ..Default::default()
        };
        let r = RowRules::bind(&rules, &["ElectionDate".to_string()], None);
        assert!(r.is_empty());
    }
}
