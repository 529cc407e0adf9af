//! Where a file's row rules run: inline, or on the spare thread in batches.

use super::row_rules::RowRules;
use crate::records::Captured;
use crate::report::Problem;
use crate::spare::{Spare, Task, Work};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

/// Where the rows' rules run: here, or on a helper thread that the rows' captured values reach
/// in batches, so that on a machine with two cores the rules cost the walk no time. The
/// warnings are the same either way: one thread applies the rules, in row order.
pub enum RulesRunner {
    /// On the walking thread.
    Inline(RowRules),
    /// On the spare thread, in batches.
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
