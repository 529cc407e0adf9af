//! The UPRNs of a column whose UPRNs should be unique, kept to count repeats at the end, and
//! joined across the parts of a file read by several threads.

use super::tally::EXAMPLES;

/// The most UPRNs of one column kept to find repeats: 8 bytes each, so at most 16 MB (a Vec
/// grows by doubling, to 2,097,152). The largest council has about half a million properties;
/// past this a hostile file's values are no longer kept, and a warning says so.
pub(super) const MAX_TRACKED_UPRNS: usize = 2_000_000;

/// The UPRNs seen in a column whose UPRNs should be unique, to count repeats at the end.
///
/// Sorted vectors rather than a hash set: 8 bytes a UPRN instead of about 18 (a set's spare
/// room and control bytes), and pushing is sequential; sorting at the end finds the repeats.
/// A file read in parts ([`crate::parts`]) keeps each part's values as its thread
/// sorted them, and the repeats are counted over all of them merged, without one vector of all.
#[derive(Debug, Default)]
pub(super) struct UprnSet {
    /// The values of the rows read here.
    values: Vec<u64>,
    /// Those of the parts joined to these ([`Self::absorb`]), each sorted ([`Self::settle`]).
    joined: Vec<Vec<u64>>,
    /// How many values are kept in all.
    kept: usize,
    /// The row whose UPRN was the first not kept, once [`MAX_TRACKED_UPRNS`] were.
    full_at: Option<u64>,
}

impl UprnSet {
    /// Keeps `row`'s UPRN `n`, or notes the row once [`MAX_TRACKED_UPRNS`] are kept.
    pub(super) fn add(&mut self, row: u64, n: u64) {
        if self.kept < MAX_TRACKED_UPRNS {
            self.values.push(n);
            self.kept += 1;
        } else if self.full_at.is_none() {
            self.full_at = Some(row);
        }
    }

    /// Makes room for `more` values (up to the limit).
    pub(super) fn expect(&mut self, more: usize) {
        self.values
            .reserve(more.min(MAX_TRACKED_UPRNS.saturating_sub(self.kept)));
    }

    /// Sorts the values read here, on the thread that read them, before they are joined.
    pub(super) fn settle(&mut self) {
        self.values.sort_unstable();
    }

    /// Whether [`Self::absorb`] can add `later`'s UPRNs exactly: they still fit under the limit
    /// (past it, the row of the first UPRN not kept is not known), or none are kept any more.
    pub(super) fn can_absorb(&self, later: &UprnSet) -> bool {
        self.full_at.is_some() || self.kept + later.kept <= MAX_TRACKED_UPRNS
    }

    /// The row whose UPRN was the first not kept, if any.
    pub(super) fn full_at(&self) -> Option<u64> {
        self.full_at
    }

    /// Adds the UPRNs of `later`, read after these; `before` rows came before its first.
    pub(super) fn absorb(&mut self, later: UprnSet, before: u64) {
        if self.full_at.is_some() {
            return;
        }
        debug_assert!(self.kept + later.kept <= MAX_TRACKED_UPRNS);
        self.kept += later.kept;
        self.joined.push(later.values);
        self.joined.extend(later.joined);
        self.full_at = later.full_at.map(|row| row + before);
    }

    /// How many values repeat an earlier one, how many distinct values repeat, and the first
    /// few (smallest) of those.
    pub(super) fn repeats(mut self) -> (u64, u64, Vec<u64>) {
        self.values.sort_unstable();
        if self.joined.is_empty() {
            return count_repeats_in_runs(std::slice::from_ref(&self.values));
        }
        let mut runs = self.joined;
        runs.push(self.values);
        runs.retain(|run| !run.is_empty());
        // Each joined run was sorted by the thread that read it (`settle`).
        debug_assert!(runs.iter().all(|run| run.is_sorted()));
        runs.sort_by_key(|run| run[0]);
        if runs.windows(2).all(|w| w[0][w[0].len() - 1] <= w[1][0]) {
            // Runs that follow one another (a file in UPRN order): merged by going through them.
            return count_repeats_in_runs(&runs);
        }
        count_repeats(merged(runs))
    }
}

/// [`UprnSet::repeats`] of values in ascending order.
fn count_repeats(sorted: impl IntoIterator<Item = u64>) -> (u64, u64, Vec<u64>) {
    let (mut extra, mut distinct, mut examples) = (0u64, 0u64, Vec::new());
    let mut last = None;
    let mut repeated = false;
    for n in sorted {
        if last == Some(n) {
            extra += 1;
            if !repeated {
                repeated = true;
                distinct += 1;
                if examples.len() < EXAMPLES {
                    examples.push(n);
                }
            }
        } else {
            last = Some(n);
            repeated = false;
        }
    }
    (extra, distinct, examples)
}

/// [`count_repeats`] of `runs` that follow one another (each ascending, and none starting below
/// the last value of the one before): a run at a time, with no branch on a value's fate but
/// the rare one that keeps an example. This runs after both threads have ended, on every value.
fn count_repeats_in_runs(runs: &[Vec<u64>]) -> (u64, u64, Vec<u64>) {
    let (mut extra, mut distinct, mut examples) = (0u64, 0u64, Vec::new());
    // The last value seen, and whether it repeated the one before it.
    let mut last: Option<(u64, bool)> = None;
    for run in runs.iter().filter(|run| !run.is_empty()) {
        let mut repeating = false;
        if let Some((n, was_repeating)) = last {
            if n == run[0] {
                repeating = true;
                extra += 1;
                if !was_repeating {
                    distinct += 1;
                    if examples.len() < EXAMPLES {
                        examples.push(n);
                    }
                }
            }
        }
        // Most runs repeat nothing: one pass that only compares neighbours tells.
        if run[1..].iter().zip(run).filter(|(b, a)| a == b).count() > 0 {
            for w in run.windows(2) {
                let repeats = w[0] == w[1];
                let first_repeat = repeats && !repeating;
                extra += u64::from(repeats);
                distinct += u64::from(first_repeat);
                if first_repeat && examples.len() < EXAMPLES {
                    examples.push(w[1]);
                }
                repeating = repeats;
            }
        } else if run.len() > 1 {
            repeating = false;
        }
        last = Some((run[run.len() - 1], repeating));
    }
    (extra, distinct, examples)
}

/// The values of sorted `runs`, in ascending order.
fn merged(runs: Vec<Vec<u64>>) -> impl Iterator<Item = u64> {
    use std::cmp::Reverse;
    let mut iters: Vec<std::vec::IntoIter<u64>> = runs.into_iter().map(Vec::into_iter).collect();
    let mut heads: std::collections::BinaryHeap<Reverse<(u64, usize)>> = iters
        .iter_mut()
        .enumerate()
        .filter_map(|(i, it)| it.next().map(|n| Reverse((n, i))))
        .collect();
    std::iter::from_fn(move || {
        let Reverse((n, i)) = heads.pop()?;
        if let Some(next) = iters[i].next() {
            heads.push(Reverse((next, i)));
        }
        Some(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::testing::cases(256)))]

        /// UPRNs read in parts and joined count the same repeats as read in one go, whether
        /// the parts' values interleave or follow one another.
        #[test]
        fn joined_parts_count_the_same_repeats(
            values in proptest::collection::vec(0u64..300, 0..400),
            cuts in proptest::collection::vec(0usize..400, 0..6),
            in_order in proptest::bool::ANY,
        ) {
            let mut values = values;
            if in_order {
                values.sort_unstable();
            }
            let mut one = UprnSet::default();
            for (row, &n) in values.iter().enumerate() {
                one.add(row as u64 + 2, n);
            }
            let mut parts = Vec::new();
            for (from, run) in cut_at(&values, cuts) {
                let mut part = UprnSet::default();
                for (row, &n) in run.iter().enumerate() {
                    part.add(row as u64 + 1, n);
                }
                part.settle();
                parts.push((from as u64 + 1, part));
            }
            let mut parts = parts.into_iter();
            let (_, mut joined) = parts.next().expect("one part at least");
            for (before, part) in parts {
                joined.absorb(part, before);
            }
            proptest::prop_assert_eq!(joined.repeats(), one.repeats());
        }
    }

    /// `values` cut at `cuts` (any order, clamped to its length): each piece with where it starts.
    fn cut_at(values: &[u64], cuts: Vec<usize>) -> Vec<(usize, &[u64])> {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(values.len())).collect();
        cuts.sort_unstable();
        cuts.push(values.len());
        let mut from = 0;
        cuts.into_iter()
            .map(|cut| {
                let piece = (from, &values[from..cut]);
                from = cut;
                piece
            })
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::testing::cases(256)))]

        /// Counting run by run gives what counting the values one by one does.
        #[test]
        fn repeats_counted_in_runs_are_those_counted_one_by_one(
            values in proptest::collection::vec(0u64..60, 0..300),
            cuts in proptest::collection::vec(0usize..300, 0..8),
        ) {
            let mut values = values;
            values.sort_unstable();
            let runs: Vec<Vec<u64>> =
                cut_at(&values, cuts).into_iter().map(|(_, run)| run.to_vec()).collect();
            proptest::prop_assert_eq!(
                count_repeats_in_runs(&runs),
                count_repeats(values.iter().copied())
            );
        }
    }

    #[test]
    fn past_the_limit_uprns_are_no_longer_kept() {
        let mut set = UprnSet::default();
        for n in 0..MAX_TRACKED_UPRNS as u64 + 3 {
            set.add(n + 2, n % 1_000_000);
        }
        assert_eq!(set.values.len(), MAX_TRACKED_UPRNS);
        assert_eq!(set.full_at, Some(MAX_TRACKED_UPRNS as u64 + 2));
        assert!(set.values.capacity() * 8 <= 17 * 1024 * 1024);
        let (extra, distinct, examples) = set.repeats();
        assert_eq!((extra, distinct), (1_000_000, 1_000_000));
        assert_eq!(examples, vec![0, 1, 2, 3, 4]);
    }
}
