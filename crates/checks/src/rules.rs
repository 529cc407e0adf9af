//! Domain rules, read from the columns a profile names: they catch the smells a person would
//! notice (an old export, garbled postcodes, UPRNs a spreadsheet has damaged). All warn without
//! failing a file, but for UPRNs in scientific notation: those cannot be imported.

use crate::records::{unquote, Captured};
use crate::report::Problem;
use crate::spare::{Spare, Task, Work};
use crate::text::quote;
use crate::vocab::{Code, Date};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

/// How many example rows a warning names.
const EXAMPLES: usize = 5;

/// Whether a value is a well-formed UK postcode (`SW1A 1AA`, `M1 1AE`, `GIR 0AA`), with or
/// without the one space, in any case. Raw bytes, no allocation: it runs on every row.
pub fn is_uk_postcode(value: &[u8]) -> bool {
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

    /// Adds the rows of `later`, which came after this tally's and are numbered from 1 again,
    /// `before` rows on.
    fn absorb(&mut self, later: Tally, before: u64) {
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
    ElectionDate {
        expected: Date,
        tally: Tally,
        /// The last value read and whether it differed from `expected`: every row of a file
        /// usually holds the same date, so it is parsed once.
        last: Option<(Vec<u8>, bool)>,
    },
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
                bound.push((i, Bound::Postcode(Tally::new(header[i].trim()))));
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
                    Bound::ElectionDate {
                        expected,
                        tally: Tally::new(header[i].trim()),
                        last: None,
                    },
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
                if let Some(seen) = &mut uprns.seen {
                    seen.expect(rows);
                }
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
            .map(|(place, (_, rule))| {
                let problems = match rule {
                    Bound::Uprn(uprns) => uprns.finish(),
                    other => other.finish().into_iter().collect(),
                };
                (place, problems)
            })
            .collect();
        found.sort_by_key(|(place, _)| *place);
        found
            .into_iter()
            .flat_map(|(_, problems)| problems)
            .collect()
    }
}

/// The postcode rule on one value: an empty cell is not checked.
#[inline(always)]
fn check_postcode(tally: &mut Tally, row: u64, value: &[u8]) {
    let value = value.trim_ascii();
    if !value.is_empty() && !is_uk_postcode(value) {
        tally.add(row, &String::from_utf8_lossy(value));
    }
}

/// The election-date rule on one value. `last` is the last value read and whether it differed
/// from `expected`: every row of a file usually holds the same date, so it is parsed once.
#[inline(always)]
fn check_election_date(
    expected: Date,
    tally: &mut Tally,
    last: &mut Option<(Vec<u8>, bool)>,
    row: u64,
    value: &[u8],
) {
    let value = value.trim_ascii();
    let differs = match last {
        Some((seen, differs)) if seen.as_slice() == value => *differs,
        _ => {
            let differs =
                std::str::from_utf8(value).ok().and_then(Date::parse_loose) != Some(expected);
            let (seen, seen_differs) = last.get_or_insert_with(Default::default);
            seen.clear();
            seen.extend_from_slice(value);
            *seen_differs = differs;
            differs
        }
    };
    if differs {
        tally.add(row, &String::from_utf8_lossy(value));
    }
}

impl Bound {
    /// Reads one row's value of the rule's column (unquoted); counts it if it breaks the rule.
    #[inline(always)]
    fn check(&mut self, row: u64, value: &[u8]) {
        match self {
            Bound::Postcode(tally) => check_postcode(tally, row, value),
            Bound::ElectionDate {
                expected,
                tally,
                last,
            } => check_election_date(*expected, tally, last, row, value),
            Bound::Uprn(uprns) => uprns.check(row, value),
        }
    }

    fn can_absorb(&self, later: &Bound) -> bool {
        match (self, later) {
            (Bound::Postcode(_), Bound::Postcode(_)) => true,
            (Bound::ElectionDate { expected: a, .. }, Bound::ElectionDate { expected: b, .. }) => {
                a == b
            }
            (Bound::Uprn(a), Bound::Uprn(b)) => match (&a.seen, &b.seen) {
                (None, None) => true,
                (Some(a), Some(b)) => a.full_at.is_some() || a.kept + b.kept <= MAX_TRACKED_UPRNS,
                _ => false,
            },
            _ => false,
        }
    }

    fn absorb(&mut self, later: Bound, before: u64) {
        match (self, later) {
            (Bound::Postcode(a), Bound::Postcode(b)) => a.absorb(b, before),
            (Bound::ElectionDate { tally: a, .. }, Bound::ElectionDate { tally: b, .. }) => {
                a.absorb(b, before)
            }
            (Bound::Uprn(a), Bound::Uprn(b)) => a.absorb(*b, before),
            _ => unreachable!("can_absorb pairs the same rules"),
        }
    }

    /// The warning of a postcode or election-date rule, when some row broke it.
    fn finish(self) -> Option<Problem> {
        match self {
            Bound::Postcode(t) if t.count > 0 => Some(
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
                .in_column(t.column),
            ),
            Bound::ElectionDate {
                expected, tally: t, ..
            } if t.count > 0 => Some(
                Problem::warning(
                    Code::ElectionDateMismatch,
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
        }
    }
}

/// Where the rows' rules run: here, or on a helper thread that the rows' captured values reach
/// in batches, so that on a machine with two cores the rules cost the walk no time. The
/// warnings are the same either way: one thread applies the rules, in row order.
pub enum RulesRunner {
    Inline(RowRules),
    Helper(Helper),
}

impl Default for RulesRunner {
    fn default() -> Self {
        RulesRunner::Inline(RowRules::default())
    }
}

impl RulesRunner {
    /// Runs `rules` on the `spare` thread when there is one, there are rules, and the thread
    /// can be started; here otherwise.
    pub fn new(rules: RowRules, spare: Option<Spare>) -> RulesRunner {
        match spare {
            Some(spare) if !rules.is_empty() => {
                Helper::start(rules, spare).unwrap_or_else(RulesRunner::Inline)
            }
            _ => RulesRunner::Inline(rules),
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        match self {
            RulesRunner::Inline(rules) => rules.is_empty(),
            RulesRunner::Helper(_) => false,
        }
    }

    /// Whether the record walker should keep the captured fields of many records and hand
    /// them over at once ([`crate::records::RecordWalker::keep_captures`]): on the
    /// helper thread they are then passed on without a copy. From now on, every row's captured
    /// fields must come that way.
    pub fn keep_captures(&mut self) -> bool {
        match self {
            RulesRunner::Inline(_) => false,
            RulesRunner::Helper(helper) => {
                helper.keep();
                true
            }
        }
    }

    /// The captured fields of the rows passed since the last hand-over
    /// ([`crate::records::RecordEvent::Captures`]): taken, and left empty.
    pub fn take_captures(&mut self, bytes: &mut Vec<u8>, spans: &mut Vec<(usize, usize, usize)>) {
        if let RulesRunner::Helper(helper) = self {
            helper.take(bytes, spans);
        }
    }

    /// Applies the rules to one record's captured fields (here, or later on the helper).
    #[inline]
    pub fn check_row(&mut self, row: u64, captured: &Captured<'_>) {
        match self {
            RulesRunner::Inline(rules) => {
                let (bytes, cells) = captured.raw();
                rules.check_cells(row, bytes, cells);
            }
            RulesRunner::Helper(helper) => helper.push(row, captured),
        }
    }

    /// Whether [`Self::absorb`] can add `later`'s findings exactly: both run here
    /// ([`RulesRunner::Inline`]) and [`RowRules::can_absorb`] says so.
    pub fn can_absorb(&self, later: &RulesRunner) -> bool {
        match (self, later) {
            (RulesRunner::Inline(a), RulesRunner::Inline(b)) => a.can_absorb(b),
            _ => false,
        }
    }

    /// [`RowRules::settle`], for rules run here.
    pub fn settle(&mut self) {
        if let RulesRunner::Inline(rules) = self {
            rules.settle();
        }
    }

    /// [`RowRules::absorb`], for rules run here.
    pub fn absorb(&mut self, later: RulesRunner, before: u64) {
        if let (RulesRunner::Inline(a), RulesRunner::Inline(b)) = (self, later) {
            a.absorb(b, before);
        }
    }

    /// The warnings, once every row has been seen (waits for the helper to finish them).
    pub fn finish(self) -> Vec<Problem> {
        match self {
            RulesRunner::Inline(rules) => rules.finish(),
            RulesRunner::Helper(helper) => helper.finish().finish(),
        }
    }
}

/// Rows per batch sent to the helper (fewer when their values pass
/// [`crate::records::KEPT_BYTES`]), and two batches in flight, so memory stays flat
/// whatever the file's size.
const BATCH_ROWS: usize = 2048;

/// Captured values of consecutive rows, raw (the helper unquotes them), laid end to end.
#[derive(Default)]
struct Batch {
    /// Each row's number and where its cells lie in `cells`.
    rows: Vec<(u64, (usize, usize))>,
    /// Each cell's column and where its raw (still quoted) value lies in `bytes`.
    cells: Vec<(usize, usize, usize)>,
    bytes: Vec<u8>,
}

impl Batch {
    fn clear(&mut self) {
        self.rows.clear();
        self.cells.clear();
        self.bytes.clear();
    }

    /// Applies `rules` to every row of the batch, in order.
    fn apply(&self, rules: &mut RowRules) {
        // The batch was written on the other core: its cells and values are asked for a few
        // rows ahead, so they are here by the time the rules read them.
        const AHEAD: usize = 8;
        for (i, &(row, (from, to))) in self.rows.iter().enumerate() {
            if let Some(&(_, (ahead, _))) = self.rows.get(i + AHEAD) {
                if let Some(cell) = self.cells.get(ahead) {
                    prefetch(cell);
                    prefetch(self.cells.get(ahead + 2).unwrap_or(cell));
                    if let Some(byte) = self.bytes.get(cell.1) {
                        prefetch(byte);
                    }
                }
            }
            rules.check_cells(row, &self.bytes, &self.cells[from..to]);
        }
    }
}

/// Batches out at once (sent, not yet back empty): when the rules fall behind, the walk waits
/// for one, so memory stays flat whatever the file's size.
const BATCHES_OUT: usize = 3;

/// Asks for the cache line holding `value`, without waiting for it.
#[inline(always)]
fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints at a cache line; `value` is a valid reference anyway.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// The rules on the spare thread ([`Spare`]). Batches go round: filled here, applied there as
/// tasks, in order, and sent back empty.
pub struct Helper {
    batch: Batch,
    /// Whether the walker keeps the captured fields and hands them over ([`Helper::take`]).
    kept: bool,
    spare: Sender<Work>,
    shared: Arc<Shared>,
    back_tx: Sender<Batch>,
    back: Receiver<Batch>,
    /// Batches sent and not yet back.
    out: usize,
}

/// The rules, between the tasks that apply them in turn.
struct Shared {
    rules: Mutex<RowRules>,
    /// A task's panic, raised again by [`Helper::finish`] as it would have been inline.
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

impl Shared {
    fn apply(&self, batch: &Batch) {
        let mut panic = self.panic.lock().unwrap_or_else(PoisonError::into_inner);
        if panic.is_some() {
            return;
        }
        let mut rules = self.rules.lock().unwrap_or_else(PoisonError::into_inner);
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            batch.apply(&mut rules);
        }));
        if let Err(payload) = applied {
            *panic = Some(payload);
        }
    }
}

impl Helper {
    /// Hands the rules to the spare thread; gives them back if it cannot be started.
    fn start(rules: RowRules, spare: Spare) -> Result<RulesRunner, RowRules> {
        let Some(spare) = spare.start() else {
            return Err(rules);
        };
        let (back_tx, back) = std::sync::mpsc::channel::<Batch>();
        Ok(RulesRunner::Helper(Helper {
            batch: Batch::default(),
            kept: false,
            spare,
            shared: Arc::new(Shared {
                rules: Mutex::new(rules),
                panic: Mutex::default(),
            }),
            back_tx,
            back,
            out: 0,
        }))
    }

    #[inline]
    fn push(&mut self, row: u64, captured: &Captured<'_>) {
        if self.kept {
            // The bytes come with the hand-over (`take`).
            self.batch.rows.push((row, captured.cells()));
            return;
        }
        self.push_copy(row, captured);
    }

    fn push_copy(&mut self, row: u64, captured: &Captured<'_>) {
        // One copy of the record's captured bytes; the helper unquotes them.
        let (bytes, spans) = captured.raw();
        let base = self.batch.bytes.len();
        self.batch.bytes.extend_from_slice(bytes);
        let cells_from = self.batch.cells.len();
        self.batch.cells.extend(
            spans
                .iter()
                .map(|&(col, start, end)| (col, base + start, base + end)),
        );
        self.batch
            .rows
            .push((row, (cells_from, self.batch.cells.len())));
        if self.batch.rows.len() >= BATCH_ROWS
            || self.batch.bytes.len() >= crate::records::KEPT_BYTES
        {
            self.send();
        }
    }

    /// Rows come by reference from now on: what was copied so far goes first.
    fn keep(&mut self) {
        if !self.batch.rows.is_empty() {
            self.send();
        }
        self.kept = true;
    }

    /// Takes the walker's kept fields for the rows pushed since the last hand-over, and sends
    /// them; the walker gets the spare batch's vectors (emptied by the helper) to fill next.
    fn take(&mut self, bytes: &mut Vec<u8>, spans: &mut Vec<(usize, usize, usize)>) {
        std::mem::swap(&mut self.batch.bytes, bytes);
        std::mem::swap(&mut self.batch.cells, spans);
        if !self.batch.rows.is_empty() {
            self.send();
        }
    }

    fn send(&mut self) {
        let next = if self.out >= BATCHES_OUT {
            self.back.recv().ok()
        } else {
            self.back.try_recv().ok()
        };
        if next.is_some() {
            self.out -= 1;
        }
        let batch = std::mem::replace(&mut self.batch, next.unwrap_or_default());
        let (shared, back) = (Arc::clone(&self.shared), self.back_tx.clone());
        let task: Task = Box::new(move || {
            let mut batch = batch;
            shared.apply(&batch);
            batch.clear();
            // The walk may have ended already; then no one needs the batch back.
            let _ = back.send(batch);
        });
        match self.spare.send(Work::Run(task)) {
            Ok(()) => self.out += 1,
            // The thread has gone (it never does while we hold a sender): apply them here.
            Err(std::sync::mpsc::SendError(work)) => {
                if let Work::Run(task) = work {
                    task();
                }
            }
        }
    }

    /// Sends the last rows, waits for every batch to be applied, and gives back the rules with
    /// every row seen.
    fn finish(mut self) -> RowRules {
        if !self.batch.rows.is_empty() {
            self.send();
        }
        // Tasks run in order and each sends its batch back once applied.
        while self.out > 0 && self.back.recv().is_ok() {
            self.out -= 1;
        }
        let panic = self
            .shared
            .panic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(panic) = panic {
            // A panic in the rules is a bug: raise it here, as it would have been inline.
            std::panic::resume_unwind(panic);
        }
        std::mem::take(
            &mut *self
                .shared
                .rules
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

/// The most UPRNs of one column kept to find repeats: 8 bytes each, so at most 16 MB (a Vec
/// grows by doubling, to 2,097,152). The largest council has about half a million properties;
/// past this a hostile file's values are no longer kept, and a warning says so.
pub const MAX_TRACKED_UPRNS: usize = 2_000_000;

/// What a UPRN cell holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uprn {
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
    pub fn parse(value: &[u8]) -> Uprn {
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

/// The UPRNs seen in a column whose UPRNs should be unique, to count repeats at the end.
///
/// Sorted vectors rather than a hash set: 8 bytes a UPRN instead of about 18 (a set's spare
/// room and control bytes), and pushing is sequential; sorting at the end finds the repeats.
/// A file read in parts ([`crate::parts`]) keeps each part's values as its thread
/// sorted them, and the repeats are counted over all of them merged, without one vector of all.
#[derive(Debug, Default)]
struct UprnSet {
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
    fn add(&mut self, row: u64, n: u64) {
        if self.kept < MAX_TRACKED_UPRNS {
            self.values.push(n);
            self.kept += 1;
        } else if self.full_at.is_none() {
            self.full_at = Some(row);
        }
    }

    /// Makes room for `more` values (up to the limit).
    fn expect(&mut self, more: usize) {
        self.values
            .reserve(more.min(MAX_TRACKED_UPRNS.saturating_sub(self.kept)));
    }

    /// Sorts the values read here, on the thread that read them, before they are joined.
    fn settle(&mut self) {
        self.values.sort_unstable();
    }

    /// Adds the UPRNs of `later`, read after these; `before` rows came before its first.
    fn absorb(&mut self, later: UprnSet, before: u64) {
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
    fn repeats(mut self) -> (u64, u64, Vec<u64>) {
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

/// The UPRN checks of one column.
#[derive(Debug)]
struct UprnColumn {
    rounded_percent: u8,
    non_empty: u64,
    scientific: Tally,
    malformed: Tally,
    rounded: Tally,
    seen: Option<UprnSet>,
}

impl UprnColumn {
    fn new(column: &str, unique: bool, rounded_percent: u8) -> Self {
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
    fn check(&mut self, row: u64, value: &[u8]) {
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

    fn settle(&mut self) {
        if let Some(seen) = &mut self.seen {
            seen.settle();
        }
    }

    fn absorb(&mut self, later: UprnColumn, before: u64) {
        self.non_empty += later.non_empty;
        self.scientific.absorb(later.scientific, before);
        self.malformed.absorb(later.malformed, before);
        self.rounded.absorb(later.rounded, before);
        if let (Some(a), Some(b)) = (&mut self.seen, later.seen) {
            a.absorb(b, before);
        }
    }

    fn finish(self) -> Vec<Problem> {
        let mut found = Vec::new();
        let s = &self.scientific;
        if s.count > 0 {
            found.push(
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
                .in_column(&s.column),
            );
        }
        let r = &self.rounded;
        if r.count > 0 && r.count * 100 > u64::from(self.rounded_percent) * self.non_empty {
            found.push(
                Problem::warning(
                    Code::RoundedUprn,
                    format!(
                        "{} of the {} UPRNs in column {} end in five or more zeros (first: {}). \
                         They look rounded by a spreadsheet; if the file was opened and saved in \
                         one, please export it again straight from your EMS.",
                        r.count,
                        self.non_empty,
                        r.column,
                        r.examples()
                    ),
                )
                .at_row(r.examples[0].0)
                .in_column(&r.column),
            );
        }
        let m = &self.malformed;
        if m.count > 0 {
            found.push(
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
                .in_column(&m.column),
            );
        }
        if let Some(seen) = self.seen {
            let full_at = seen.full_at;
            let (extra, distinct, examples) = seen.repeats();
            let column = &self.scientific.column;
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
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The readers as first written, one byte at a time: the models the faster ones must match.
    mod models {
        use super::*;
        use proptest::prelude::*;

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

        /// Bytes near the edges the fast readers work at: digits, letters, space, the bytes
        /// either side of `0`-`9` and of the letters, and some past ASCII.
        fn byte() -> impl Strategy<Value = u8> {
            prop_oneof![
                6 => b'0'..=b'9',
                3 => proptest::sample::select(b"AZaz GIRgir".to_vec()),
                2 => proptest::sample::select(vec![b'/', b':', b'@', b'[', b'`', b'{', b'.', b'e', b'E', b'+', b'-', 0x06, 0xB0, 0xB9, 0xF9, 0xFA, 0xFF]),
                1 => any::<u8>(),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]

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

    proptest::proptest! {
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
