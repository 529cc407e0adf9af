//! The rules of one file, bound to its header's columns: each row's captured values go to the
//! rule of their column.

use super::dates::DateColumn;
use super::postcode::PostcodeColumn;
use super::uprn::UprnColumn;
use crate::records::unquote;
use crate::report::Problem;
use crate::vocab::Date;

/// A rule bound to a column of this file's header.
#[derive(Debug)]
enum Bound {
    Postcode(PostcodeColumn),
    ElectionDate(DateColumn),
    Uprn(Box<UprnColumn>),
}

/// The domain rules of one file, bound to its header's column positions.
#[derive(Debug, Default)]
pub struct RowRules {
    /// Each rule's column and the rule, in column order (the order of a row's cells); a rule's
    /// place in the profile's order is kept to give the warnings in that order.
    bound: Vec<(usize, Bound)>,
    order: Vec<usize>,
}

impl RowRules {
    /// Binds a profile's rules to the columns of `header`; rules whose column is absent are
    /// dropped. The election-date rule needs the upload's date.
    pub fn bind(
        rules: &crate::profiles::Rules,
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
                bound.push((i, Bound::Postcode(PostcodeColumn::new(header[i].trim()))));
            }
        }
        let percent = rules
            .rounded_uprn_percent
            .unwrap_or(crate::profiles::DEFAULT_ROUNDED_UPRN_PERCENT);
        for col in &rules.uprn_columns {
            if let Some(i) = find(col) {
                let unique = rules
                    .unique_uprn_columns
                    .iter()
                    .any(|u| u.eq_ignore_ascii_case(col));
                bound.push((
                    i,
                    Bound::Uprn(Box::new(UprnColumn::new(header[i].trim(), unique, percent))),
                ));
            }
        }
        if let (Some(col), Some(expected)) = (&rules.election_date_column, election_date) {
            if let Some(i) = find(col) {
                bound.push((
                    i,
                    Bound::ElectionDate(DateColumn::new(header[i].trim(), expected)),
                ));
            }
        }
        // Stable: rules on one column keep their order.
        let mut numbered: Vec<(usize, (usize, Bound))> = bound.into_iter().enumerate().collect();
        numbered.sort_by_key(|(_, (col, _))| *col);
        let (order, bound) = numbered.into_iter().unzip();
        RowRules { bound, order }
    }

    /// Whether [`Self::absorb`] can add `later`'s rows to these exactly: the same rules, and
    /// UPRNs that still fit under the limit (past it, the row of the first UPRN not kept is
    /// not known).
    pub fn can_absorb(&self, later: &RowRules) -> bool {
        self.order == later.order
            && self.bound.len() == later.bound.len()
            && self
                .bound
                .iter()
                .zip(&later.bound)
                .all(|((a_col, a), (b_col, b))| a_col == b_col && a.can_absorb(b))
    }

    /// Adds the findings of `later`, the same rules applied to the rows after these, numbered
    /// from 1 again, `before` rows on: as if this one had read those rows too. Call only when
    /// [`Self::can_absorb`] says so.
    pub fn absorb(&mut self, later: RowRules, before: u64) {
        debug_assert!(self.can_absorb(&later));
        for ((_, a), (_, b)) in self.bound.iter_mut().zip(later.bound) {
            a.absorb(b, before);
        }
    }

    /// Makes room for the UPRNs of `rows` rows at most, so a part's values are not copied as
    /// they grow: room not used is only reserved, never touched.
    pub fn expect_rows(&mut self, rows: usize) {
        for (_, rule) in &mut self.bound {
            if let Bound::Uprn(uprns) = rule {
                uprns.expect_rows(rows);
            }
        }
    }

    /// Readies these findings to be [`Self::absorb`]ed, on the thread that made them, so the
    /// thread that joins them has less to do.
    pub fn settle(&mut self) {
        for (_, rule) in &mut self.bound {
            if let Bound::Uprn(uprns) = rule {
                uprns.settle();
            }
        }
    }

    /// Which columns the rules read, in column order, for the record walker to capture.
    pub fn columns(&self) -> Vec<usize> {
        self.bound.iter().map(|(i, _)| *i).collect()
    }

    /// Whether no rule is bound (the profile has none, or the header lacks their columns).
    pub fn is_empty(&self) -> bool {
        self.bound.is_empty()
    }

    /// Applies the rules to one row's captured cells: each cell's column and where its raw
    /// (still quoted) value lies in `bytes`, in column order, as the record walker keeps them.
    #[inline]
    pub fn check_cells(&mut self, row: u64, bytes: &[u8], cells: &[(usize, usize, usize)]) {
        // Rules and cells are both in column order: one pass over each pairs them.
        let mut at = 0;
        for (col, rule) in &mut self.bound {
            while cells.get(at).is_some_and(|cell| cell.0 < *col) {
                at += 1;
            }
            if let Some(&(_, start, end)) = cells.get(at).filter(|cell| cell.0 == *col) {
                rule.check(row, &unquote(&bytes[start..end]));
            }
        }
    }

    /// Applies the rules to one row's values, looked up by column (unquoted bytes): for tests
    /// that give a row's values without laying them out as the walker does.
    #[cfg(test)]
    pub fn check_row<'v>(
        &mut self,
        row: u64,
        value_of: impl Fn(usize) -> Option<std::borrow::Cow<'v, [u8]>>,
    ) {
        for (col, rule) in &mut self.bound {
            if let Some(value) = value_of(*col) {
                rule.check(row, &value);
            }
        }
    }

    /// The warnings, once every row has been seen.
    pub fn finish(self) -> Vec<Problem> {
        let mut found: Vec<(usize, Vec<Problem>)> = self
            .order
            .into_iter()
            .zip(self.bound)
            .map(|(place, (_, rule))| (place, rule.finish()))
            .collect();
        found.sort_by_key(|(place, _)| *place);
        found
            .into_iter()
            .flat_map(|(_, problems)| problems)
            .collect()
    }
}

impl Bound {
    /// Reads one row's value of the rule's column (unquoted); counts it if it breaks the rule.
    #[inline(always)]
    fn check(&mut self, row: u64, value: &[u8]) {
        match self {
            Bound::Postcode(rule) => rule.check(row, value),
            Bound::ElectionDate(rule) => rule.check(row, value),
            Bound::Uprn(rule) => rule.check(row, value),
        }
    }

    /// Whether `later` is the same rule, whose rows can be added to these exactly.
    fn can_absorb(&self, later: &Bound) -> bool {
        match (self, later) {
            (Bound::Postcode(_), Bound::Postcode(_)) => true,
            (Bound::ElectionDate(a), Bound::ElectionDate(b)) => a.can_absorb(b),
            (Bound::Uprn(a), Bound::Uprn(b)) => a.can_absorb(b),
            _ => false,
        }
    }

    /// Adds the rows of `later`, read after these; `before` rows came before its first.
    fn absorb(&mut self, later: Bound, before: u64) {
        match (self, later) {
            (Bound::Postcode(a), Bound::Postcode(b)) => a.absorb(b, before),
            (Bound::ElectionDate(a), Bound::ElectionDate(b)) => a.absorb(b, before),
            (Bound::Uprn(a), Bound::Uprn(b)) => a.absorb(*b, before),
            _ => unreachable!("can_absorb pairs the same rules"),
        }
    }

    /// The rule's warnings (and error), once every row has been seen.
    fn finish(self) -> Vec<Problem> {
        match self {
            Bound::Postcode(rule) => rule.finish().into_iter().collect(),
            Bound::ElectionDate(rule) => rule.finish().into_iter().collect(),
            Bound::Uprn(rule) => rule.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_tally_and_name_the_first_rows() {
        let rules = crate::profiles::Rules {
            postcode_columns: vec!["Post_Code".into()],
            election_date_column: Some("ElectionDate".into()),
            ..Default::default()
        };
        let header: Vec<String> = ["ElectionDate", "Post_Code", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut r = RowRules::bind(&rules, &header, "2019-05-23".parse().ok());
        assert_eq!(r.columns(), vec![0, 1]);
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
}
