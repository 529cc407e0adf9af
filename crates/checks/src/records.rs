//! Splits a delimited byte stream into records, as Python's `csv.reader` over `splitlines(True)`
//! does, without holding more than one chunk.
//!
//! Why not the `csv` crates: the original checker's verdicts depend on details they do differently
//! (a blank line is a record of 0 fields; a bare CR ends a record; a quote in the middle of an
//! unquoted field is literal; a NUL byte must be reported with its row), and the checks must be
//! fed chunk by chunk as an S3 body arrives. Only field *counts* and a few captured fields are
//! needed, so this is a small state machine with a byte-class table for the hot loop.
//!
//! Structural bytes (delimiter, quote, CR, LF, NUL) are ASCII, so the walk is the same for UTF-8,
//! windows-1252 and latin-1 input; UTF-16 input is transcoded to UTF-8 before it gets here.

use crate::simd::{bit_range, Baseline, Classify, Masks, Simd, BLOCK};
#[cfg(target_arch = "x86_64")]
use crate::simd::{Avx2, Avx512};
use memchr::memchr2;

/// Whether the caller wants more records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on to the next record.
    Continue,
    /// Stop the walk: the caller has seen enough.
    Stop,
}

/// Longest prefix of a captured field that is kept; rules only read short values.
pub const MAX_CAPTURED_FIELD: usize = 4096;
/// How many of the header's columns are captured (by name): an EMS header has a few dozen. The
/// columns past these are still counted, so a header of a million columns costs no more memory
/// than one of a thousand.
pub const MAX_HEADER_COLUMNS: usize = 1024;

/// Something found while walking the records.
#[derive(Debug)]
pub enum RecordEvent<'a> {
    /// A complete record: its number (the header is row 1), how many fields it has, and the
    /// fields the caller asked to capture.
    Record {
        /// The record's row number.
        row: u64,
        /// How many fields the record has (a blank line has 0).
        fields: usize,
        /// The fields the caller asked to capture.
        captured: Captured<'a>,
    },
    /// A NUL byte, which no EMS export contains: the file is corrupt or not text.
    Nul {
        /// The row the NUL byte is on.
        row: u64,
    },
    /// With [`RecordWalker::keep_captures`]: the captured fields of the records passed since
    /// the last hand-over, end to end, for the sink to take (swap them out). Every
    /// `Captured::cells` range given in those records indexes `spans`.
    Captures {
        /// The captured fields' raw bytes, end to end.
        bytes: &'a mut Vec<u8>,
        /// Each captured field's column and where its bytes lie in `bytes`.
        spans: &'a mut Vec<(usize, usize, usize)>,
    },
}

/// The captured fields of one record, in column order, raw (quotes not yet removed).
#[derive(Debug, Clone, Copy)]
pub struct Captured<'a> {
    buf: &'a [u8],
    spans: &'a [(usize, usize, usize)],
    /// Where `spans` lies among every span kept since the last hand-over.
    cells: (usize, usize),
}

impl<'a> Captured<'a> {
    /// `(column index, field value)` with the CSV quoting removed.
    pub fn iter(&self) -> impl Iterator<Item = (usize, std::borrow::Cow<'a, [u8]>)> + 'a {
        let buf = self.buf;
        self.spans
            .iter()
            .map(move |&(col, start, end)| (col, unquote(&buf[start..end])))
    }

    /// The raw bytes of every captured field, end to end, and each field's `(column, start,
    /// end)` in them: to hand the values on with one copy, unquoting them later.
    pub fn raw(&self) -> (&'a [u8], &'a [(usize, usize, usize)]) {
        (self.buf, self.spans)
    }

    /// With [`RecordWalker::keep_captures`]: this record's spans among those the next
    /// [`RecordEvent::Captures`] hands over.
    #[inline]
    pub fn cells(&self) -> (usize, usize) {
        self.cells
    }

    pub fn get(&self, col: usize) -> Option<std::borrow::Cow<'a, [u8]>> {
        self.iter().find(|(c, _)| *c == col).map(|(_, v)| v)
    }
}

/// Removes the quoting of a raw field the way Python reads it: an opening quote starts a quoted
/// section in which `""` is one quote; text after the closing quote is kept as is.
#[inline]
pub fn unquote(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if raw.first() != Some(&b'"') {
        // Most values: inlined where they are read, so they cost one comparison.
        return std::borrow::Cow::Borrowed(raw);
    }
    unquote_quoted(raw)
}

/// [`unquote`] of a value that starts with a quote.
fn unquote_quoted(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 1;
    while i < raw.len() {
        if raw[i] == b'"' {
            if raw.get(i + 1) == Some(&b'"') {
                out.push(b'"');
                i += 2;
                continue;
            }
            out.extend_from_slice(&raw[i + 1..]);
            break;
        }
        out.push(raw[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    QuoteInQuoted,
    /// A record just ended at a CR: a following LF belongs to the same line ending.
    AfterCr,
}

impl State {
    /// States the fast path can start a block in.
    fn is_simple(self) -> bool {
        matches!(
            self,
            State::StartRecord | State::StartField | State::InField | State::InQuoted
        )
    }
}

/// What the fast path did with a block.
enum Fast {
    Done(Flow),
    /// Something the bit masks cannot model exactly (a NUL, a quote in the middle of an unquoted
    /// field): the block goes through the scalar walker instead.
    Unusual,
}

/// The scalar walker's byte classes ([`RecordWalker`]'s table): all but these are ordinary.
const ORDINARY: u8 = 0;
const DELIM: u8 = 1;
const QUOTE: u8 = 2;
const LF: u8 = 3;
const CR: u8 = 4;
const NUL: u8 = 5;

/// Which columns to capture in the records to come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capture {
    /// No field.
    None,
    /// Every field (used for the header).
    All,
    /// These columns, by index.
    Columns(Vec<bool>),
}

/// The push-based record walker. Feed it chunks; it calls back once per record.
pub struct RecordWalker {
    delimiter: u8,
    /// The vector instructions the walk uses.
    simd: Simd,
    classes: [u8; 256],
    state: State,
    /// Number of the record being read (1-based; the header is row 1).
    row: u64,
    /// Fields completed in the current record.
    fields: usize,
    capture: Capture,
    /// Columns from this index on are never captured (lets the fast path count them in bulk).
    capture_until: usize,
    /// Which of the first 64 columns are captured, as bits.
    capture_mask: u64,
    /// Where the current captured field started in the current chunk, when it is captured.
    field_start: Option<usize>,
    buf: Vec<u8>,
    spans: Vec<(usize, usize, usize)>,
    /// Row on which a still-open quoted field started.
    quote_opened_on: u64,
    stopped: bool,
    /// Whether input ended inside a quoted field (the rest of the file was one value).
    unclosed_quote_row: Option<u64>,
    /// Keep the captured fields of this many records before handing them over (0: clear
    /// them after each record).
    keep_records: usize,
    /// Records whose captured fields are kept, and where the current record's spans begin.
    kept_records: usize,
    record_spans_from: usize,
}

/// Records whose captured fields [`RecordWalker::keep_captures`] keeps at most, and how many of
/// their bytes (a hostile file's captured values can be 4 KB each): so memory stays flat
/// whatever the file's size.
pub const KEPT_RECORDS: usize = 2048;
/// See [`KEPT_RECORDS`].
pub const KEPT_BYTES: usize = 512 * 1024;

impl RecordWalker {
    /// A walker for records whose fields are split by `delimiter`, capturing nothing yet.
    pub fn new(delimiter: u8) -> Self {
        let mut classes = [ORDINARY; 256];
        classes[delimiter as usize] = DELIM;
        classes[b'"' as usize] = QUOTE;
        classes[b'\n' as usize] = LF;
        classes[b'\r' as usize] = CR;
        classes[0] = NUL;
        RecordWalker {
            delimiter,
            simd: Simd::detect(),
            classes,
            state: State::StartRecord,
            row: 1,
            fields: 0,
            capture: Capture::All,
            capture_until: MAX_HEADER_COLUMNS,
            capture_mask: !0,
            field_start: None,
            buf: Vec::new(),
            spans: Vec::new(),
            quote_opened_on: 0,
            stopped: false,
            unclosed_quote_row: None,
            keep_records: 0,
            kept_records: 0,
            record_spans_from: 0,
        }
    }

    /// From the next record on, keeps the captured fields of `KEPT_RECORDS` records end to
    /// end and hands them to the sink in one [`RecordEvent::Captures`], instead of clearing them
    /// after each record: the sink can pass them on without copying them. Call
    /// [`Self::hand_over`] once the input has ended for the last ones.
    pub fn keep_captures(&mut self) {
        self.keep_records = KEPT_RECORDS;
    }

    /// Hands the kept captured fields to the sink now (between records).
    pub fn hand_over<F>(&mut self, sink: &mut F)
    where
        F: FnMut(RecordEvent<'_>) -> Flow,
    {
        if self.kept_records > 0 {
            sink(RecordEvent::Captures {
                bytes: &mut self.buf,
                spans: &mut self.spans,
            });
            self.buf.clear();
            self.spans.clear();
            self.kept_records = 0;
            self.record_spans_from = 0;
        }
    }

    /// Sets which columns of the next records to capture (takes effect at the next record).
    pub fn set_capture(&mut self, capture: Capture) {
        self.capture_until = match &capture {
            Capture::None => 0,
            Capture::All => usize::MAX,
            Capture::Columns(cols) => cols.iter().rposition(|&w| w).map_or(0, |last| last + 1),
        };
        self.capture_mask = match &capture {
            Capture::None => 0,
            Capture::All => !0,
            Capture::Columns(cols) => cols
                .iter()
                .take(64)
                .enumerate()
                .fold(0, |m, (i, &w)| m | (u64::from(w) << i)),
        };
        self.capture = capture;
    }

    /// The byte that splits fields.
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// A walker for the records that follow a line end, read on another thread: the same
    /// delimiter and captured columns, at the start of a record, numbering rows from 1 again
    /// (see [`Self::follow`]).
    pub fn fork(&self) -> RecordWalker {
        let mut fork = RecordWalker::new(self.delimiter);
        fork.simd = self.simd;
        fork.set_capture(self.capture.clone());
        fork
    }

    /// Whether the walk stands between two records: a line ended last (outside quotes), no
    /// field has begun, and nothing is kept for a hand-over.
    pub fn at_record_start(&self) -> bool {
        self.state == State::StartRecord
            && !self.stopped
            && self.fields == 0
            && self.field_start.is_none()
            && self.kept_records == 0
            && self.spans.is_empty()
    }

    /// Takes over from `fork`, which walked the records after this walker's last (it was
    /// [`Self::fork`]ed, and this walker is [`Self::at_record_start`]): the walk goes on from
    /// where the fork stopped, its rows renumbered to follow this walker's.
    pub fn follow(&mut self, mut fork: RecordWalker) {
        let before = self.row - 1;
        fork.row += before;
        fork.quote_opened_on += before;
        fork.unclosed_quote_row = fork.unclosed_quote_row.map(|row| row + before);
        *self = fork;
    }

    /// How many records were walked before the one being read.
    pub fn rows_before(&self) -> u64 {
        self.row - 1
    }

    /// Whether the walk has stopped (the sink said [`Flow::Stop`], or a NUL byte was read).
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Row where an unterminated quoted field began, once input has ended inside it.
    pub fn unclosed_quote_row(&self) -> Option<u64> {
        self.unclosed_quote_row
    }

    #[inline]
    fn wants(&self, col: usize) -> bool {
        if col >= self.capture_until {
            return false;
        }
        if col < 64 {
            return self.capture_mask >> col & 1 == 1;
        }
        match &self.capture {
            Capture::None => false,
            Capture::All => true,
            Capture::Columns(cols) => cols.get(col).copied().unwrap_or(false),
        }
    }

    #[inline]
    fn begin_field(&mut self, at: usize) {
        self.field_start = if self.wants(self.fields) {
            Some(at)
        } else {
            None
        };
    }

    /// Keeps `chunk[start..end]`, the (rest of the) current captured field, up to the limit.
    #[inline(always)]
    fn keep(&mut self, chunk: &[u8], start: usize, end: usize) {
        let span_start = self.spans_end();
        let room = MAX_CAPTURED_FIELD.saturating_sub(self.buf.len() - span_start);
        let n = (end - start).min(room);
        if n <= 16 && start + 16 <= chunk.len() {
            // Most captured values (postcodes, UPRNs, dates) are short: one copy of a fixed 16
            // bytes, of which `n` are kept, costs less than a call to memcpy.
            let src: &[u8; 16] = chunk[start..start + 16].try_into().expect("16 bytes");
            self.buf.reserve(16);
            let len = self.buf.len();
            // SAFETY: `reserve` left room for 16 more bytes after `len`, so the copy writes
            // inside the allocation; `src` is 16 readable bytes. Only `n` <= 16 of them, copies
            // of `chunk[start..start + n]`, are then counted as initialised.
            unsafe {
                std::ptr::copy_nonoverlapping(src.as_ptr(), self.buf.as_mut_ptr().add(len), 16);
                self.buf.set_len(len + n);
            }
        } else {
            self.buf.extend_from_slice(&chunk[start..start + n]);
        }
    }

    fn spans_end(&self) -> usize {
        self.spans.last().map_or(0, |s| s.2)
    }

    /// Ends the current field at `at` (exclusive) in `chunk`.
    #[inline(always)]
    fn end_field(&mut self, chunk: &[u8], at: usize) {
        if let Some(start) = self.field_start.take() {
            let span_start = self.spans_end();
            self.keep(chunk, start, at);
            let end = self.buf.len();
            self.spans.push((self.fields, span_start, end));
        }
        self.fields += 1;
    }

    fn end_record<F>(&mut self, sink: &mut F) -> Flow
    where
        F: FnMut(RecordEvent<'_>) -> Flow,
    {
        let from = self.record_spans_from;
        let flow = sink(RecordEvent::Record {
            row: self.row,
            fields: self.fields,
            captured: Captured {
                buf: &self.buf,
                spans: &self.spans[from..],
                cells: (from, self.spans.len()),
            },
        });
        if self.keep_records == 0 {
            self.buf.clear();
            self.spans.clear();
        } else {
            self.kept_records += 1;
            self.record_spans_from = self.spans.len();
            if self.kept_records >= self.keep_records || self.buf.len() >= KEPT_BYTES {
                self.hand_over(sink);
            }
        }
        self.fields = 0;
        self.row += 1;
        if flow == Flow::Stop {
            self.stopped = true;
        }
        flow
    }

    fn nul<F>(&mut self, sink: &mut F) -> Flow
    where
        F: FnMut(RecordEvent<'_>) -> Flow,
    {
        sink(RecordEvent::Nul { row: self.row });
        self.stopped = true;
        Flow::Stop
    }

    /// Walks one chunk. Records that end in it are passed to `sink`.
    pub fn feed<F>(&mut self, chunk: &[u8], sink: &mut F)
    where
        F: FnMut(RecordEvent<'_>) -> Flow,
    {
        match self.simd {
            // SAFETY: `Simd::detect` chose these only when the CPU has what they enable.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => unsafe { self.feed_avx512(chunk, sink) },
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { self.feed_avx2(chunk, sink) },
            _ => self.feed_with::<Baseline, F>(chunk, sink),
        }
    }

    /// [`Self::feed`] compiled for AVX2 (and the POPCNT, BMI1, BMI2 and PCLMULQDQ that come with
    /// it on every such CPU), so the whole walk is inlined with them.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,popcnt,bmi1,bmi2,pclmulqdq")]
    unsafe fn feed_avx2<F>(&mut self, chunk: &[u8], sink: &mut F)
    where
        F: FnMut(RecordEvent<'_>) -> Flow,
    {
        self.feed_with::<Avx2, F>(chunk, sink)
    }

    /// [`Self::feed`] with AVX-512 F and BW masks, and the rest of AVX2's set as above.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx2,popcnt,bmi1,bmi2,pclmulqdq")]
    unsafe fn feed_avx512<F>(&mut self, chunk: &[u8], sink: &mut F)
    where
        F: FnMut(RecordEvent<'_>) -> Flow,
    {
        self.feed_with::<Avx512, F>(chunk, sink)
    }

    #[inline(always)]
    fn feed_with<C: Classify, F>(&mut self, chunk: &[u8], sink: &mut F)
    where
        F: FnMut(RecordEvent<'_>) -> Flow,
    {
        if self.stopped {
            return;
        }
        let n = chunk.len();
        let mut i = 0;
        // A captured field that began in an earlier chunk continues at the start of this one.
        if self.field_start.is_some() {
            self.field_start = Some(0);
        }
        'blocks: while i < n {
            let (flow, next) = if n - i >= BLOCK && self.state.is_simple() {
                let mut m = C::masks(&chunk[i..i + BLOCK], self.delimiter);
                // Most blocks lie inside one record and hold no quote, line end or NUL: only
                // their delimiters count. They are walked here, one after another.
                if matches!(self.state, State::StartField | State::InField) {
                    let mut state = self.state;
                    while (m.quote | m.lf | m.cr | m.nul) == 0 {
                        let d = m.delim;
                        if d != 0 {
                            self.fields_ended_by::<C>(chunk, i, d);
                        }
                        state = if d >> 63 != 0 {
                            State::StartField
                        } else {
                            State::InField
                        };
                        i += BLOCK;
                        if n - i < BLOCK {
                            self.state = state;
                            continue 'blocks;
                        }
                        m = C::masks(&chunk[i..i + BLOCK], self.delimiter);
                    }
                    self.state = state;
                }
                let flow = match self.fast_block::<C, F>(chunk, i, &m, sink) {
                    Fast::Done(flow) => flow,
                    Fast::Unusual => self.scalar(chunk, i, i + BLOCK, sink),
                };
                (flow, i + BLOCK)
            } else {
                // One byte to get back to a simple state, or the tail of the chunk.
                let end = if n - i >= BLOCK { i + 1 } else { n };
                (self.scalar(chunk, i, end, sink), end)
            };
            if flow == Flow::Stop {
                return;
            }
            i = next;
        }
        if let Some(start) = self.field_start {
            self.keep(chunk, start, chunk.len());
        }
    }

    /// Walks the 64 bytes at `chunk[base..]`, whose masks are `m`, with bit masks: quotes,
    /// delimiters and line ends are found for the whole block at once, and only structural
    /// bytes outside quotes are visited. Declines (returns [`Fast::Unusual`]) whatever it cannot
    /// model exactly.
    // One function, not split: the hot loop of every file, whose masks and cursor stay in
    // registers across the whole block.
    #[inline(always)]
    fn fast_block<C: Classify, F>(
        &mut self,
        chunk: &[u8],
        base: usize,
        m: &Masks,
        sink: &mut F,
    ) -> Fast
    where
        F: FnMut(RecordEvent<'_>) -> Flow,
    {
        if m.nul != 0 {
            return Fast::Unusual;
        }
        let starts_inside = self.state == State::InQuoted;
        let inside = C::prefix_xor(m.quote) ^ if starts_inside { !0 } else { 0 };
        let outside = !inside;
        let open = m.quote & inside;
        let close = m.quote & outside;
        let delim = m.delim & outside;
        let lf = m.lf & outside;
        let cr = m.cr & outside;
        // A quote opens a quoted field only at a field's start (or as the second of a doubled
        // quote); anywhere else Python reads it as a literal, which the masks cannot express.
        let at_field_start = matches!(self.state, State::StartRecord | State::StartField) as u64;
        let may_open = ((delim | lf | cr) << 1) | at_field_start | (close << 1);
        if open & !may_open != 0 {
            return Fast::Unusual;
        }
        // The LF of a CRLF belongs to the CR's line ending.
        let absorbed = lf & (cr << 1);
        let eol = (lf & !absorbed) | cr;
        // Where the current record started, while it has no content yet (a blank line ends there).
        let mut empty_from: Option<u32> = None;
        if self.state == State::StartRecord {
            empty_from = Some(0);
            self.begin_field(base);
        }
        // Segment by segment: each ends at a line end (or the block's end). A segment's
        // delimiters are counted at once; only the captured fields among them are visited.
        let mut ends = eol;
        let mut from = 0u32;
        loop {
            let p = if ends == 0 {
                BLOCK as u32
            } else {
                ends.trailing_zeros()
            };
            let d = delim & bit_range(from, p);
            if d != 0 {
                empty_from = None;
                self.fields_ended_by::<C>(chunk, base, d);
            }
            if p == BLOCK as u32 {
                break;
            }
            ends &= ends - 1;
            if empty_from == Some(p) {
                self.field_start = None;
            } else {
                self.end_field(chunk, base + p as usize);
            }
            if self.end_record(sink) == Flow::Stop {
                return Fast::Done(Flow::Stop);
            }
            let next = p + 1 + (absorbed.checked_shr(p + 1).unwrap_or(0) & 1) as u32;
            if next >= BLOCK as u32 {
                break;
            }
            empty_from = Some(next);
            self.begin_field(base + next as usize);
            from = next;
        }
        let last = 1u64 << 63;
        if (inside | close) & last != 0 {
            // The block ends in a quoted field (perhaps just after a quote that a doubled quote
            // may continue). No record ends inside quotes, so the field began on this row.
            self.quote_opened_on = self.row;
        }
        self.state = if inside & last != 0 {
            State::InQuoted
        } else if close & last != 0 {
            State::QuoteInQuoted
        } else if cr & last != 0 {
            State::AfterCr
        } else if lf & last != 0 {
            State::StartRecord
        } else if delim & last != 0 {
            State::StartField
        } else {
            State::InField
        };
        if matches!(self.state, State::AfterCr | State::StartRecord) {
            self.field_start = None;
        }
        Fast::Done(Flow::Continue)
    }

    /// The delimiters `d` (bit positions in the block at `base`, all in one record) end the
    /// current field and the ones after it.
    #[inline(always)]
    fn fields_ended_by<C: Classify>(&mut self, chunk: &[u8], base: usize, d: u64) {
        if self.capture_until <= 64 {
            self.fields_by_mask::<C>(chunk, base, d);
        } else {
            self.fields_one_by_one(chunk, base, d);
        }
    }

    /// As [`Self::fields_ended_by`], when every captured column is among the first 64
    /// (`capture_mask`), so the captured fields are found by selecting their delimiters, and
    /// the others are only counted.
    #[inline(always)]
    fn fields_by_mask<C: Classify>(&mut self, chunk: &[u8], base: usize, d: u64) {
        let n = d.count_ones() as usize;
        let first = self.fields;
        // The field open at the segment's start ends at its first delimiter.
        if self.field_start.is_some() {
            self.end_field(chunk, base + C::select(d, 0) as usize);
        }
        // Bit j: column `first + 1 + j`, which starts after delimiter j, is captured.
        let after = if first + 1 < 64 {
            self.capture_mask >> (first + 1)
        } else {
            0
        };
        let mut wanted = C::low_bits(after, n as u32);
        while wanted != 0 {
            let j = wanted.trailing_zeros();
            wanted &= wanted - 1;
            self.fields = first + 1 + j as usize;
            self.field_start = Some(base + C::select(d, j) as usize + 1);
            if (j as usize) + 1 < n {
                self.end_field(chunk, base + C::select(d, j + 1) as usize);
            }
        }
        self.fields = first + n;
    }

    /// As [`Self::fields_by_mask`], for captures reaching past column 64 (the header): visits
    /// each delimiter while a captured column may still come.
    fn fields_one_by_one(&mut self, chunk: &[u8], base: usize, mut d: u64) {
        while d != 0 {
            if self.fields >= self.capture_until {
                self.fields += d.count_ones() as usize;
                return;
            }
            let p = d.trailing_zeros() as usize;
            d &= d - 1;
            if self.field_start.is_none() && !self.wants(self.fields + 1) {
                self.fields += 1;
                continue;
            }
            self.end_field(chunk, base + p);
            self.begin_field(base + p + 1);
        }
    }

    /// Walks `chunk[from..end]` byte by byte (with a byte-class table for the hot loop): the
    /// reference semantics, used for the tail of a chunk and for blocks the fast path declines.
    // One function, not split: a state machine is read best as one `match` on the state, all
    // its transitions in view, and it is a hot loop.
    fn scalar<F>(&mut self, chunk: &[u8], from: usize, end: usize, sink: &mut F) -> Flow
    where
        F: FnMut(RecordEvent<'_>) -> Flow,
    {
        let n = end;
        let mut i = from;
        while i < n {
            match self.state {
                State::InField => {
                    // Hot loop: most bytes are ordinary field content.
                    while i < n && self.classes[chunk[i] as usize] == ORDINARY {
                        i += 1;
                    }
                    if i == n {
                        break;
                    }
                    match self.classes[chunk[i] as usize] {
                        DELIM => {
                            self.end_field(chunk, i);
                            i += 1;
                            self.state = State::StartField;
                            self.begin_field(i);
                        }
                        QUOTE => i += 1, // a quote inside an unquoted field is literal
                        LF | CR => {
                            if self.line_end(chunk, &mut i, sink) == Flow::Stop {
                                return Flow::Stop;
                            }
                        }
                        _ => return self.nul(sink),
                    }
                }
                State::StartRecord => match self.classes[chunk[i] as usize] {
                    LF | CR => {
                        // A blank line: a record of 0 fields, as Python's csv module sees it.
                        let is_cr = chunk[i] == b'\r';
                        i += 1;
                        if self.end_record(sink) == Flow::Stop {
                            return Flow::Stop;
                        }
                        self.state = if is_cr {
                            State::AfterCr
                        } else {
                            State::StartRecord
                        };
                    }
                    _ => {
                        self.state = State::StartField;
                        self.begin_field(i);
                    }
                },
                State::StartField => match self.classes[chunk[i] as usize] {
                    DELIM => {
                        self.end_field(chunk, i);
                        i += 1;
                        self.begin_field(i);
                    }
                    QUOTE => {
                        self.quote_opened_on = self.row;
                        self.state = State::InQuoted;
                        i += 1;
                    }
                    LF | CR => {
                        if self.line_end(chunk, &mut i, sink) == Flow::Stop {
                            return Flow::Stop;
                        }
                    }
                    NUL => return self.nul(sink),
                    _ => {
                        self.state = State::InField;
                        i += 1;
                    }
                },
                State::InQuoted => match memchr2(b'"', 0, &chunk[i..n]) {
                    None => i = n,
                    Some(off) => {
                        i += off;
                        if chunk[i] == 0 {
                            return self.nul(sink);
                        }
                        self.state = State::QuoteInQuoted;
                        i += 1;
                    }
                },
                State::QuoteInQuoted => match self.classes[chunk[i] as usize] {
                    QUOTE => {
                        self.state = State::InQuoted;
                        i += 1;
                    }
                    DELIM => {
                        self.end_field(chunk, i);
                        i += 1;
                        self.state = State::StartField;
                        self.begin_field(i);
                    }
                    LF | CR => {
                        if self.line_end(chunk, &mut i, sink) == Flow::Stop {
                            return Flow::Stop;
                        }
                    }
                    NUL => return self.nul(sink),
                    _ => {
                        self.state = State::InField;
                        i += 1;
                    }
                },
                State::AfterCr => {
                    if chunk[i] == b'\n' {
                        i += 1;
                    }
                    self.state = State::StartRecord;
                }
            }
        }
        Flow::Continue
    }

    /// A CR or LF at `*i` ends the current field and record.
    fn line_end<F>(&mut self, chunk: &[u8], i: &mut usize, sink: &mut F) -> Flow
    where
        F: FnMut(RecordEvent<'_>) -> Flow,
    {
        let is_cr = chunk[*i] == b'\r';
        self.end_field(chunk, *i);
        *i += 1;
        self.state = if is_cr {
            State::AfterCr
        } else {
            State::StartRecord
        };
        self.end_record(sink)
    }

    /// Ends the input: a last record without a line ending still counts.
    pub fn finish<F>(&mut self, sink: &mut F)
    where
        F: FnMut(RecordEvent<'_>) -> Flow,
    {
        if self.stopped {
            return;
        }
        // A captured field's bytes were kept at the end of the last chunk.
        if self.field_start.is_some() {
            self.field_start = Some(0);
        }
        match self.state {
            State::StartRecord | State::AfterCr => {}
            State::InQuoted => {
                self.unclosed_quote_row = Some(self.quote_opened_on);
                self.end_field(&[], 0);
                self.end_record(sink);
            }
            State::StartField | State::InField | State::QuoteInQuoted => {
                self.end_field(&[], 0);
                self.end_record(sink);
            }
        }
        self.state = State::StartRecord;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (row, field count, captured values) for every record; NUL shows as fields = usize::MAX.
    /// Walks with every vector set the CPU has, each with and without kept captures, and insists
    /// all agree.
    fn walk(input: &[u8], delimiter: u8, chunk: usize) -> Vec<(u64, usize, Vec<Vec<u8>>)> {
        let plain = on_every_path(|simd| walk_on(input, delimiter, chunk, simd, false));
        let kept = on_every_path(|simd| walk_on(input, delimiter, chunk, simd, true));
        assert_eq!(plain, kept, "keeping the captures changes the walk");
        plain
    }

    /// What `walk` gives with AVX-512 and AVX2 (where the CPU has them) and with the baseline,
    /// once all agree.
    fn on_every_path<T: PartialEq + std::fmt::Debug>(walk: impl Fn(Simd) -> T) -> T {
        let baseline = walk(Simd::Baseline);
        #[cfg(target_arch = "x86_64")]
        for simd in [Simd::Avx2, Simd::Avx512] {
            if simd <= Simd::detect() {
                assert_eq!(
                    walk(simd),
                    baseline,
                    "the {simd:?} and baseline walks differ"
                );
            }
        }
        baseline
    }

    fn walk_on(
        input: &[u8],
        delimiter: u8,
        chunk: usize,
        simd: Simd,
        keep: bool,
    ) -> Vec<(u64, usize, Vec<Vec<u8>>)> {
        let mut walker = RecordWalker::new(delimiter);
        walker.simd = walker.simd.min(simd);
        if keep {
            walker.keep_captures();
            // Hand over often, so that hand-overs fall between records of every kind.
            walker.keep_records = 3;
        }
        let mut out = Vec::new();
        let mut sink = |event: RecordEvent<'_>| {
            match event {
                RecordEvent::Record {
                    row,
                    fields,
                    captured,
                } => out.push((
                    row,
                    fields,
                    captured.iter().map(|(_, v)| v.into_owned()).collect(),
                )),
                RecordEvent::Nul { row } => out.push((row, usize::MAX, vec![])),
                RecordEvent::Captures { bytes, spans } => {
                    // Taken, as the rules' helper takes them.
                    bytes.clear();
                    spans.clear();
                }
            }
            Flow::Continue
        };
        for piece in input.chunks(chunk.max(1)) {
            walker.feed(piece, &mut sink);
        }
        walker.finish(&mut sink);
        out
    }

    fn counts(input: &str) -> Vec<usize> {
        walk(input.as_bytes(), b',', 1 << 16)
            .into_iter()
            .map(|r| r.1)
            .collect()
    }

    #[test]
    fn line_endings_lf_crlf_and_cr_all_end_records() {
        assert_eq!(counts("a,b,c\nd,e,f\n"), vec![3, 3]);
        assert_eq!(counts("a,b,c\r\nd,e,f\r\n"), vec![3, 3]);
        assert_eq!(counts("a,b,c\rd,e,f\r"), vec![3, 3]);
        assert_eq!(counts("a,b,c\nd,e,f"), vec![3, 3]);
    }

    #[test]
    fn a_blank_line_is_a_record_of_no_fields() {
        assert_eq!(counts("a,b\n\nc,d\n"), vec![2, 0, 2]);
        assert_eq!(counts("a,b\r\n\r\nc,d\r\n"), vec![2, 0, 2]);
        assert_eq!(counts("a,b\r\r\nc,d"), vec![2, 0, 2]);
    }

    #[test]
    fn quoted_fields_may_hold_delimiters_quotes_and_line_breaks() {
        let rows = walk(
            b"h1,h2,h3\n\"a,1\",\"say \"\"hi\"\"\",\"two\r\nlines\"\nx,y,z\n",
            b',',
            3,
        );
        assert_eq!(rows.iter().map(|r| r.1).collect::<Vec<_>>(), vec![3, 3, 3]);
        assert_eq!(rows[1].0, 2);
        assert_eq!(rows[2].0, 3);
        assert_eq!(
            rows[1].2,
            vec![
                b"a,1".to_vec(),
                b"say \"hi\"".to_vec(),
                b"two\r\nlines".to_vec()
            ]
        );
    }

    #[test]
    fn a_quote_inside_an_unquoted_field_is_literal() {
        let rows = walk(b"a,b\"c,d\n", b',', 100);
        assert_eq!(rows[0].1, 3);
        assert_eq!(rows[0].2[1], b"b\"c".to_vec());
    }

    #[test]
    fn trailing_delimiter_makes_an_empty_last_field() {
        assert_eq!(counts("a,b,\n"), vec![3]);
        assert_eq!(counts("a,b,"), vec![3]);
    }

    #[test]
    fn tab_delimited() {
        let rows = walk(b"a\tb,c\td\n", b'\t', 2);
        assert_eq!(rows[0].1, 3);
        assert_eq!(rows[0].2[1], b"b,c".to_vec());
    }

    #[test]
    fn kept_captures_are_handed_over_before_their_bytes_grow_past_the_bound() {
        // 1,000 records of a 4,000-byte captured value: 4 MB if the 2048-record bound alone held.
        let big = "x".repeat(4000);
        let input: String = (0..1000).map(|_| format!("{big},y\n")).collect();
        let mut walker = RecordWalker::new(b',');
        walker.set_capture(Capture::Columns(vec![true, false]));
        walker.keep_captures();
        let (mut records, mut hand_overs, mut most) = (0, 0, 0);
        let mut sink = |event: RecordEvent<'_>| {
            match event {
                RecordEvent::Record { .. } => records += 1,
                RecordEvent::Captures { bytes, spans } => {
                    hand_overs += 1;
                    most = most.max(bytes.len());
                    assert_eq!(spans.last().map(|s| s.2), Some(bytes.len()));
                }
                RecordEvent::Nul { .. } => unreachable!("no NUL in the input"),
            }
            Flow::Continue
        };
        for piece in input.as_bytes().chunks(64 * 1024) {
            walker.feed(piece, &mut sink);
        }
        walker.finish(&mut sink);
        walker.hand_over(&mut sink);
        assert_eq!(records, 1000);
        assert!(hand_overs >= 7, "{hand_overs} hand-overs");
        assert!(most < KEPT_BYTES + 4096, "{most} bytes kept at once");
    }

    #[test]
    fn nul_is_reported_with_its_row() {
        let rows = walk(b"a,b\nc,d\ne,\0f\ng,h\n", b',', 100);
        assert_eq!(rows.last().unwrap(), &(3, usize::MAX, vec![]));
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn an_unclosed_quote_swallows_the_rest() {
        let mut walker = RecordWalker::new(b',');
        let mut n = Vec::new();
        let mut sink = |e: RecordEvent<'_>| {
            if let RecordEvent::Record { fields, .. } = e {
                n.push(fields)
            }
            Flow::Continue
        };
        walker.feed(b"a,b,c\n1,\"2,3\n4,5,6\n", &mut sink);
        walker.finish(&mut sink);
        assert_eq!(n, vec![3, 2]);
        assert_eq!(walker.unclosed_quote_row(), Some(2));
    }

    #[test]
    fn stop_means_no_more_records() {
        let mut walker = RecordWalker::new(b',');
        let mut seen = 0;
        let mut sink = |_e: RecordEvent<'_>| {
            seen += 1;
            Flow::Stop
        };
        walker.feed(b"a\nb\nc\n", &mut sink);
        walker.finish(&mut sink);
        assert_eq!(seen, 1);
    }

    #[test]
    fn capture_selected_columns_only() {
        let mut walker = RecordWalker::new(b',');
        walker.set_capture(Capture::Columns(vec![false, true]));
        let mut got = Vec::new();
        let mut sink = |e: RecordEvent<'_>| {
            if let RecordEvent::Record { captured, .. } = e {
                got.push(captured.get(1).map(|v| v.into_owned()));
            }
            Flow::Continue
        };
        for piece in b"1,\"EN5 4PR\",x\n2,N3 2PU,y\n3\n".chunks(2) {
            walker.feed(piece, &mut sink);
        }
        walker.finish(&mut sink);
        assert_eq!(
            got,
            vec![Some(b"EN5 4PR".to_vec()), Some(b"N3 2PU".to_vec()), None]
        );
    }

    #[test]
    fn very_long_captured_fields_are_cut_not_grown() {
        let mut input = b"h\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_CAPTURED_FIELD * 3));
        input.push(b'\n');
        let rows = walk(&input, b',', 1000);
        assert_eq!(rows[1].2[0].len(), MAX_CAPTURED_FIELD);
    }

    /// A slow reference with Python's csv semantics, byte by byte over whole input, to check the
    /// fast walker against on random input.
    // One function, not split: a model reads best as one state machine, like the C reader of
    // Python's csv module that it follows.
    fn reference(input: &[u8], d: u8) -> Vec<(usize, Vec<Vec<u8>>)> {
        #[derive(PartialEq)]
        enum S {
            Rec,
            Fld,
            In,
            Q,
            QQ,
            Cr,
        }
        let mut out = Vec::new();
        let mut fields: Vec<Vec<u8>> = Vec::new();
        let mut cur = Vec::new();
        let mut s = S::Rec;
        let mut i = 0;
        while i < input.len() {
            let c = input[i];
            match s {
                S::Cr => {
                    s = S::Rec;
                    if c == b'\n' {
                        i += 1;
                    }
                    continue;
                }
                S::Rec if c == b'\n' || c == b'\r' => {
                    out.push((0, vec![]));
                    s = if c == b'\r' { S::Cr } else { S::Rec };
                }
                S::Rec | S::Fld => {
                    if c == d {
                        fields.push(std::mem::take(&mut cur));
                        s = S::Fld;
                    } else if c == b'\n' || c == b'\r' {
                        fields.push(std::mem::take(&mut cur));
                        out.push((fields.len(), std::mem::take(&mut fields)));
                        s = if c == b'\r' { S::Cr } else { S::Rec };
                    } else if c == b'"' {
                        s = S::Q;
                    } else {
                        cur.push(c);
                        s = S::In;
                    }
                }
                S::In => {
                    if c == d {
                        fields.push(std::mem::take(&mut cur));
                        s = S::Fld;
                    } else if c == b'\n' || c == b'\r' {
                        fields.push(std::mem::take(&mut cur));
                        out.push((fields.len(), std::mem::take(&mut fields)));
                        s = if c == b'\r' { S::Cr } else { S::Rec };
                    } else {
                        cur.push(c);
                    }
                }
                S::Q => {
                    if c == b'"' {
                        s = S::QQ;
                    } else {
                        cur.push(c);
                    }
                }
                S::QQ => {
                    if c == b'"' {
                        cur.push(c);
                        s = S::Q;
                    } else if c == d {
                        fields.push(std::mem::take(&mut cur));
                        s = S::Fld;
                    } else if c == b'\n' || c == b'\r' {
                        fields.push(std::mem::take(&mut cur));
                        out.push((fields.len(), std::mem::take(&mut fields)));
                        s = if c == b'\r' { S::Cr } else { S::Rec };
                    } else {
                        cur.push(c);
                        s = S::In;
                    }
                }
            }
            i += 1;
        }
        if !matches!(s, S::Rec | S::Cr) {
            fields.push(cur);
            out.push((fields.len(), fields));
        }
        out
    }

    /// Walks a header, switches the capture to `cols`, then walks `body` in chunks; on every
    /// path the CPU has, insisting all agree.
    fn walk_capturing(body: &[u8], chunk: usize, cols: &[bool]) -> Vec<(usize, Vec<Vec<u8>>)> {
        let plain = on_every_path(|simd| walk_capturing_on(body, chunk, cols, simd, false));
        let kept = on_every_path(|simd| walk_capturing_on(body, chunk, cols, simd, true));
        assert_eq!(plain, kept, "keeping the captures changes the walk");
        plain
    }

    fn walk_capturing_on(
        body: &[u8],
        chunk: usize,
        cols: &[bool],
        simd: Simd,
        keep: bool,
    ) -> Vec<(usize, Vec<Vec<u8>>)> {
        let mut walker = RecordWalker::new(b',');
        walker.simd = walker.simd.min(simd);
        let mut out = Vec::new();
        let mut sink = |event: RecordEvent<'_>| {
            if let RecordEvent::Record {
                fields, captured, ..
            } = event
            {
                out.push((
                    fields,
                    captured.iter().map(|(_, v)| v.into_owned()).collect(),
                ));
            }
            Flow::Continue
        };
        walker.feed(b"h0,h1,h2,h3,h4,h5\n", &mut sink);
        walker.set_capture(Capture::Columns(cols.to_vec()));
        if keep {
            walker.keep_captures();
            walker.keep_records = 3;
        }
        for piece in body.chunks(chunk.max(1)) {
            walker.feed(piece, &mut sink);
        }
        walker.finish(&mut sink);
        out.remove(0);
        out
    }

    fn byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            8 => Just(b'a'),
            3 => Just(b','),
            2 => Just(b'"'),
            1 => Just(b'\n'),
            1 => Just(b'\r'),
            1 => Just(b' '),
        ]
    }

    /// Mostly delimiters, so records have dozens of fields and captures reach past column 64.
    fn wide_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            6 => Just(b','),
            4 => Just(b'a'),
            1 => Just(b'"'),
            1 => Just(b'\n'),
            1 => Just(b'\r'),
        ]
    }

    fn chunking() -> impl Strategy<Value = usize> {
        prop_oneof![1usize..17, 60usize..300, Just(1 << 20)]
    }

    /// A quoted field opens and closes at the end of a 64-byte block (bytes 62 and 63), and a
    /// doubled quote at byte 64 carries it on to the end of the input: the warning must name the
    /// row it opened on, as the byte-at-a-time walk does.
    #[test]
    fn a_quote_reopened_across_blocks_names_its_row() {
        let mut input = b"x,y\n\"q\",z\n".to_vec();
        input.extend_from_slice(&[b'a'; 51]);
        input.extend_from_slice(b",\"\"\"zzz");
        assert_eq!(&input[61..65], b",\"\"\"");
        for chunk in [1, 7, 64, 1 << 20] {
            assert_eq!(
                on_every_path(|simd| unclosed_quote_row(&input, chunk, simd)),
                Some(3),
                "{chunk}-byte chunks"
            );
        }
    }

    /// Where the walk says an unclosed quoted field began, walking `input` in `chunk`-byte pieces.
    fn unclosed_quote_row(input: &[u8], chunk: usize, simd: Simd) -> Option<u64> {
        let mut walker = RecordWalker::new(b',');
        walker.simd = walker.simd.min(simd);
        let mut sink = |_: RecordEvent<'_>| Flow::Continue;
        for piece in input.chunks(chunk) {
            walker.feed(piece, &mut sink);
        }
        walker.finish(&mut sink);
        walker.unclosed_quote_row()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::testing::cases(2000)))]

        #[test]
        fn matches_the_reference_for_any_chunking(
            input in proptest::collection::vec(byte(), 0..900),
            chunk in chunking(),
        ) {
            let fast = walk(&input, b',', chunk);
            let slow = reference(&input, b',');
            prop_assert_eq!(fast.len(), slow.len());
            for (k, ((row, n, vals), (rn, rvals))) in fast.iter().zip(slow.iter()).enumerate() {
                prop_assert_eq!(*row, k as u64 + 1);
                prop_assert_eq!(n, rn);
                prop_assert_eq!(vals, rvals);
            }
        }

        /// The row an unclosed quote is said to start on does not depend on the chunking. The
        /// case cargo-fuzz found (a block ending just after a closing quote that a doubled quote
        /// reopens) is rare in these inputs; `a_quote_reopened_across_blocks_names_its_row`
        /// builds it.
        #[test]
        fn an_unclosed_quote_names_the_same_row_for_any_chunking(
            input in proptest::collection::vec(byte(), 0..900),
            chunk in chunking(),
        ) {
            // One byte at a time never takes the fast path: the reference.
            let reference = unclosed_quote_row(&input, 1, Simd::Baseline);
            prop_assert_eq!(
                on_every_path(|simd| unclosed_quote_row(&input, chunk, simd)),
                reference
            );
        }

        #[test]
        fn captures_only_the_wanted_columns(
            body in proptest::collection::vec(byte(), 0..900),
            chunk in chunking(),
            cols in proptest::collection::vec(any::<bool>(), 0..6),
        ) {
            captures_match_the_reference(&body, chunk, &cols)?;
        }

        #[test]
        fn captures_wide_records_on_either_side_of_column_64(
            body in proptest::collection::vec(wide_byte(), 0..1500),
            chunk in chunking(),
            cols in proptest::collection::vec(proptest::bool::weighted(0.2), 0..90),
        ) {
            captures_match_the_reference(&body, chunk, &cols)?;
        }
    }

    fn captures_match_the_reference(
        body: &[u8],
        chunk: usize,
        cols: &[bool],
    ) -> Result<(), TestCaseError> {
        let fast = walk_capturing(body, chunk, cols);
        let slow = reference(body, b',');
        prop_assert_eq!(fast.len(), slow.len());
        for ((n, vals), (rn, rvals)) in fast.iter().zip(slow.iter()) {
            prop_assert_eq!(n, rn);
            let wanted: Vec<Vec<u8>> = rvals
                .iter()
                .enumerate()
                .filter(|(c, _)| cols.get(*c).copied().unwrap_or(false))
                .map(|(_, v)| v.clone())
                .collect();
            prop_assert_eq!(vals, &wanted);
        }
        Ok(())
    }
}
