//! A rule's count of the rows that break it, with the first few as examples: what every rule's
//! warning quotes.

use crate::text::quote;

/// How many example rows a warning names.
pub(super) const EXAMPLES: usize = 5;

/// Counts the rows where a column's value breaks a rule, keeping the first few as examples.
#[derive(Debug)]
pub(super) struct Tally {
    /// The header's name for the column. Safe to show as it is: it equals one of the profile's
    /// column names but for ASCII case (see [`super::RowRules::bind`]), so it is short and
    /// visible.
    pub(super) column: String,
    /// How many rows broke the rule.
    pub(super) count: u64,
    /// The row and the value as a message quotes it ([`quote`]: bounded, hidden characters escaped).
    pub(super) examples: Vec<(u64, String)>,
}

impl Tally {
    /// No row yet, for the column the header calls `column`.
    pub(super) fn new(column: &str) -> Self {
        Tally {
            column: column.to_owned(),
            count: 0,
            examples: Vec::new(),
        }
    }

    /// Counts `row`, whose `value` broke the rule.
    pub(super) fn add(&mut self, row: u64, value: &str) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push((row, quote(value)));
        }
    }

    /// Adds the rows of `later`, which came after this tally's and are numbered from 1 again,
    /// `before` rows on.
    pub(super) fn absorb(&mut self, later: Tally, before: u64) {
        self.count += later.count;
        let room = EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(
            later
                .examples
                .into_iter()
                .take(room)
                .map(|(row, value)| (row + before, value)),
        );
    }

    /// The examples as a warning lists them: `row 3: "HA8", row 9: …`.
    pub(super) fn examples(&self) -> String {
        self.examples
            .iter()
            .map(|(row, v)| format!("row {row}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `row has` or `rows have`, as the count says.
    pub(super) fn rows(&self) -> &'static str {
        if self.count == 1 {
            "row has"
        } else {
            "rows have"
        }
    }
}
