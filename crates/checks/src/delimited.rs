//! The CSV/TSV check: delimiter, header, EMS, every record's length, and the profile's rules.

use crate::profiles::{Profile, Profiles};
use crate::records::{Capture, Flow, RecordEvent, RecordWalker};
use crate::report::{Problem, Problems};
use crate::rules::{RowRules, RulesRunner};
use crate::spare::Spare;
use crate::text::quote;
use crate::vocab::{Code, Date};

/// How much of the file's start is kept to find the header line for delimiter sniffing.
const MAX_SNIFF: usize = 64 * 1024;

/// The longest header row read, line break included. Real exports' headers are under 10 KB and
/// a header of 100,000 columns is about 690 KB; a longer first row is not a table of rows (140 MB
/// with no line break), and reading on would only delay the verdict.
pub const MAX_HEADER_BYTES: u64 = 1024 * 1024;

/// How much is walked at once while the header row has not ended ([`DelimitedCheck::walk`]).
const HEADER_PART: usize = 4096;

/// The exact message the original used; staff and WDIV know it word for word.
pub fn too_few_columns(n: usize) -> String {
    format!("File has only {n} columns. We might have failed to detect the delimiter")
}

/// The exact message the original used for a short row.
pub fn incomplete(expected: usize, row: u64, found: usize) -> String {
    format!("Incomplete file: Expected {expected} columns on row {row} found {found}")
}

/// Rows longer than the header: they pass, but often mean shifted data.
#[derive(Debug, Default)]
struct LongRows {
    count: u64,
    first: Option<(u64, usize)>,
}

/// What the delimited check found, for the file report.
#[derive(Debug)]
pub struct Findings {
    pub rows: u64,
    pub ems: Option<String>,
    pub delimiter: Option<u8>,
    pub columns: Option<usize>,
    /// Bounded as they are found: a file with a million bad rows keeps fifty.
    pub problems: Problems,
}

pub struct DelimitedCheck<'p> {
    profiles: &'p Profiles,
    election_date: Option<Date>,
    fallback_delimiter: u8,
    /// The start of the input, kept until the header line is complete.
    head: Vec<u8>,
    /// Decides the delimiter from the header line as its bytes arrive.
    sniffer: Sniffer,
    walker: Option<RecordWalker>,
    state: Walk<'p>,
    /// Bytes walked while the header row has not ended, up to [`MAX_HEADER_BYTES`].
    header_bytes: u64,
    /// Whether a line break was seen among them.
    header_line_break: bool,
    /// The header row did not end within [`MAX_HEADER_BYTES`]: the verdict is in.
    header_too_long: bool,
}

/// What the walk has learnt so far; separate from the walker so the record callback can borrow it.
struct Walk<'p> {
    header_len: Option<usize>,
    header: Vec<String>,
    profile: Option<&'p Profile>,
    rules: RulesRunner,
    /// Where the rules may run besides here ([`RulesRunner`]).
    spare: Option<Spare>,
    rows: u64,
    long_rows: LongRows,
    problems: Problems,
}

impl<'p> DelimitedCheck<'p> {
    /// `fallback_delimiter` is used when the header line does not tell (the file's extension).
    pub fn new(
        profiles: &'p Profiles,
        election_date: Option<Date>,
        fallback_delimiter: u8,
    ) -> Self {
        DelimitedCheck {
            profiles,
            election_date,
            fallback_delimiter,
            head: Vec::new(),
            sniffer: Sniffer::default(),
            walker: None,
            state: Walk {
                header_len: None,
                header: Vec::new(),
                profile: None,
                rules: RulesRunner::default(),
                spare: None,
                rows: 0,
                long_rows: LongRows::default(),
                problems: Problems::new(),
            },
            header_bytes: 0,
            header_line_break: false,
            header_too_long: false,
        }
    }

    /// Lets the profile's row rules run on the `spare` thread, so a machine with two cores
    /// checks faster; the findings are the same.
    pub fn with_spare(mut self, spare: Option<Spare>) -> Self {
        self.state.spare = spare;
        self
    }

    /// Says that about `bytes` more bytes are to come, so the rules can make room for as many
    /// rows as they can hold (a row as wide as the header takes at least one byte a column).
    pub fn expect_bytes(&mut self, bytes: u64) {
        if let (RulesRunner::Inline(rules), Some(columns)) =
            (&mut self.state.rules, self.state.header_len)
        {
            let rows = bytes / columns.max(1) as u64 + 1;
            rules.expect_rows(usize::try_from(rows).unwrap_or(usize::MAX));
        }
    }

    /// A check of the rows after a line end, to be walked on another thread and then
    /// [`Self::absorb`]ed: once the header is read, with the same columns and rules, run here.
    /// `None` before that, or once the check has stopped.
    pub fn fork(&self) -> Option<DelimitedCheck<'p>> {
        let walker = self.walker.as_ref()?;
        if self.header_too_long
            || self.is_done()
            || !matches!(self.state.header_len, Some(n) if n >= 3)
        {
            return None;
        }
        let rules = match self.state.profile {
            Some(profile) => RowRules::bind(&profile.rules, &self.state.header, self.election_date),
            None => RowRules::default(),
        };
        Some(DelimitedCheck {
            profiles: self.profiles,
            election_date: self.election_date,
            fallback_delimiter: self.fallback_delimiter,
            head: Vec::new(),
            sniffer: Sniffer::default(),
            walker: Some(walker.fork()),
            state: Walk {
                header_len: self.state.header_len,
                header: Vec::new(),
                profile: self.state.profile,
                rules: RulesRunner::Inline(rules),
                spare: None,
                rows: 0,
                long_rows: LongRows::default(),
                problems: Problems::new(),
            },
            header_bytes: self.header_bytes,
            header_line_break: self.header_line_break,
            header_too_long: false,
        })
    }

    /// Readies this fork's findings to be [`Self::absorb`]ed, on the thread that walked it.
    pub fn settle(&mut self) {
        self.state.rules.settle();
    }

    /// Whether the rows read so far end with a line end, outside quotes, with the check still
    /// going: where a [`Self::fork`] can take over.
    pub fn at_record_start(&self) -> bool {
        !self.header_too_long
            && !self.is_done()
            && self.state.header_len.is_some()
            && self
                .walker
                .as_ref()
                .is_some_and(RecordWalker::at_record_start)
    }

    /// Takes in `fork`, which walked the rows after these ([`Self::fork`], fed from where
    /// [`Self::at_record_start`] held): the findings are then those of one check fed every
    /// byte. False, with nothing taken in, when that cannot be exact: the fork stopped (its
    /// verdict would need the rows before it), the rules keep what cannot be joined, or this
    /// check is not at a record's start.
    pub fn absorb(&mut self, fork: DelimitedCheck<'p>) -> bool {
        let joinable = self.at_record_start()
            && !fork.is_done()
            && fork.state.problems.is_empty()
            && fork.walker.is_some()
            && fork.state.header_len == self.state.header_len
            && self.state.rules.can_absorb(&fork.state.rules);
        if !joinable {
            return false;
        }
        let walker = self.walker.as_mut().expect("at a record start");
        let before = walker.rows_before();
        walker.follow(fork.walker.expect("checked above"));
        let later = fork.state;
        if later.rows > 0 {
            self.state.rows = before + later.rows;
        }
        self.state.long_rows.count += later.long_rows.count;
        if self.state.long_rows.first.is_none() {
            self.state.long_rows.first = later.long_rows.first.map(|(row, n)| (row + before, n));
        }
        self.state.rules.absorb(later.rules, before);
        true
    }

    /// Whether the check has stopped reading (a failing row, a NUL byte, a bad header).
    pub fn is_done(&self) -> bool {
        self.header_too_long || self.walker.as_ref().is_some_and(RecordWalker::is_stopped)
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if self.header_too_long {
            return;
        }
        if self.walker.is_none() {
            // Only the first MAX_SNIFF bytes are sniffed, whatever the size of the chunks.
            let room = MAX_SNIFF.saturating_sub(self.head.len());
            self.sniffer.feed(&chunk[..room.min(chunk.len())]);
            self.head.extend_from_slice(chunk);
            if !self.sniffer.ended && self.head.len() < MAX_SNIFF {
                return;
            }
            let head = std::mem::take(&mut self.head);
            self.start_walk(&head);
            return;
        }
        self.walk(chunk);
    }

    fn start_walk(&mut self, head: &[u8]) {
        let delimiter = self.sniffer.delimiter().unwrap_or(self.fallback_delimiter);
        self.walker = Some(RecordWalker::new(delimiter));
        self.walk(head);
    }

    /// Walks `chunk`, but at most [`MAX_HEADER_BYTES`] of it while the header row has not ended,
    /// so the verdict on a header too long is the same however the file is cut into chunks.
    /// Until then it goes [`HEADER_PART`] bytes at a time: every field is captured while the
    /// header is read, and the rows after it should not be.
    fn walk(&mut self, mut chunk: &[u8]) {
        while self.state.header_len.is_none() && !chunk.is_empty() && !self.is_done() {
            let room = (MAX_HEADER_BYTES - self.header_bytes) as usize;
            let (part, rest) = chunk.split_at(room.min(chunk.len()).min(HEADER_PART));
            self.header_bytes += part.len() as u64;
            self.header_line_break |= memchr::memchr2(b'\n', b'\r', part).is_some();
            self.walk_part(part);
            chunk = rest;
            if self.state.header_len.is_none()
                && self.header_bytes == MAX_HEADER_BYTES
                && !self.is_done()
            {
                self.header_too_long = true;
            }
        }
        if !self.header_too_long && !chunk.is_empty() {
            self.walk_part(chunk);
        }
    }

    fn walk_part(&mut self, chunk: &[u8]) {
        let walker = self.walker.as_mut().expect("walk starts after sniffing");
        let state = &mut self.state;
        let (profiles, election_date) = (self.profiles, self.election_date);
        let mut capture = None;
        walker.feed(chunk, &mut |event| {
            state.on_event(event, profiles, election_date, &mut capture)
        });
        if let Some(c) = capture {
            walker.set_capture(c);
            if state.rules.keep_captures() {
                walker.keep_captures();
            }
        }
    }

    pub fn finish(mut self) -> Findings {
        if self.walker.is_none() {
            let head = std::mem::take(&mut self.head);
            if head.is_empty() {
                return Findings {
                    rows: 0,
                    ems: None,
                    delimiter: None,
                    columns: None,
                    problems: [Problem::error(Code::Empty, "File is empty")]
                        .into_iter()
                        .collect(),
                };
            }
            self.start_walk(&head);
        }
        if self.header_too_long {
            return self.header_too_long_findings();
        }
        let mut walker = self.walker.take().expect("started above");
        let state = &mut self.state;
        let (profiles, election_date) = (self.profiles, self.election_date);
        let mut capture = None;
        let mut sink =
            |event: RecordEvent<'_>| state.on_event(event, profiles, election_date, &mut capture);
        walker.finish(&mut sink);
        // The rules' helper takes the captured fields of the last rows.
        walker.hand_over(&mut sink);
        if let Some(row) = walker.unclosed_quote_row() {
            state.problems.push(
                Problem::warning(
                    Code::UnclosedQuote,
                    format!(
                        "A quoted value that starts on row {row} is never closed, so the rest of \
                         the file was read as part of it. Look for a stray double quote (\") on \
                         that row."
                    ),
                )
                .at_row(row),
            );
        }
        let mut state = self.state;
        if state.header_len.is_some_and(|n| n >= 3) {
            state.add_file_warnings();
        }
        Findings {
            rows: state.rows,
            ems: state.header_len.map(|_| {
                state
                    .profile
                    .map_or(crate::vocab::UNKNOWN_EMS.to_owned(), |p| p.name.clone())
            }),
            delimiter: Some(walker.delimiter()),
            columns: state.header_len,
            problems: state.problems,
        }
    }
}

impl DelimitedCheck<'_> {
    fn header_too_long_findings(self) -> Findings {
        let limit = MAX_HEADER_BYTES / (1024 * 1024);
        let message = if self.header_line_break {
            format!(
                "The first row (the header) runs past {limit} MB without ending: a double quote \
                 mark in it is probably never closed. Headers are a few KB; please export the \
                 file from your EMS again as CSV."
            )
        } else {
            format!(
                "The file has no line break in its first {limit} MB, so it is not a table of \
                 rows. Please export the file from your EMS again as CSV."
            )
        };
        Findings {
            rows: 0,
            ems: None,
            delimiter: self.walker.as_ref().map(RecordWalker::delimiter),
            columns: None,
            problems: [Problem::error(Code::HeaderTooLong, message).at_row(1)]
                .into_iter()
                .collect(),
        }
    }
}

impl<'p> Walk<'p> {
    /// One event of the walk. The usual one, a row as long as the header, is handled here,
    /// inlined into the walk; the rest in [`Self::on_other_event`].
    #[inline(always)]
    fn on_event(
        &mut self,
        event: RecordEvent<'_>,
        profiles: &'p Profiles,
        election_date: Option<Date>,
        capture: &mut Option<Capture>,
    ) -> Flow {
        if let RecordEvent::Record {
            row,
            fields,
            captured,
        } = &event
        {
            if self.header_len == Some(*fields) {
                self.rows = *row;
                if !self.rules.is_empty() {
                    self.rules.check_row(*row, captured);
                }
                return Flow::Continue;
            }
        }
        self.on_other_event(event, profiles, election_date, capture)
    }

    #[inline(never)]
    fn on_other_event(
        &mut self,
        event: RecordEvent<'_>,
        profiles: &'p Profiles,
        election_date: Option<Date>,
        capture: &mut Option<Capture>,
    ) -> Flow {
        match event {
            RecordEvent::Captures { bytes, spans } => {
                self.rules.take_captures(bytes, spans);
                Flow::Continue
            }
            RecordEvent::Nul { row } => {
                self.rows = row;
                self.problems.push(
                    Problem::error(
                        Code::NulByte,
                        format!(
                            "File contains a NUL (zero) byte on row {row}. EMS exports never do: \
                             the file may be damaged or saved in another format. Please export it \
                             from your EMS again as CSV."
                        ),
                    )
                    .at_row(row),
                );
                Flow::Stop
            }
            RecordEvent::Record {
                row,
                fields,
                captured,
            } => {
                self.rows = row;
                let Some(expected) = self.header_len else {
                    let header: Vec<String> = captured
                        .iter()
                        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
                        .collect();
                    return self.on_header(header, fields, profiles, election_date, capture);
                };
                if fields < expected {
                    self.problems.push(
                        Problem::error(Code::IncompleteRow, incomplete(expected, row, fields))
                            .at_row(row),
                    );
                    return Flow::Stop;
                }
                if fields > expected {
                    self.long_rows.count += 1;
                    self.long_rows.first.get_or_insert((row, fields));
                }
                if !self.rules.is_empty() {
                    self.rules.check_row(row, &captured);
                }
                Flow::Continue
            }
        }
    }

    fn on_header(
        &mut self,
        header: Vec<String>,
        fields: usize,
        profiles: &'p Profiles,
        election_date: Option<Date>,
        capture: &mut Option<Capture>,
    ) -> Flow {
        self.header_len = Some(fields);
        if fields < 3 {
            // As the original: no rows are counted when the header cannot be read.
            self.rows = 0;
            self.problems
                .push(Problem::error(Code::TooFewColumns, too_few_columns(fields)).at_row(1));
            if let Some(other) = other_separator(&header) {
                self.problems.push(
                    Problem::error(
                        Code::UnsupportedDelimiter,
                        format!(
                            "The header looks {other}-separated. Only commas (CSV) and tabs (TSV) \
                             can be read: please export the file again with one of those as the \
                             separator."
                        ),
                    )
                    .at_row(1),
                );
            }
            return Flow::Stop;
        }
        self.profile = profiles.detect_csv(&header);
        let rules = match self.profile {
            Some(profile) => RowRules::bind(&profile.rules, &header, election_date),
            None => RowRules::default(),
        };
        let cols = rules.columns();
        self.rules = RulesRunner::new(rules, self.spare.take());
        *capture = Some(if cols.is_empty() {
            Capture::None
        } else {
            let mut wanted = vec![false; fields];
            for c in cols {
                wanted[c] = true;
            }
            Capture::Columns(wanted)
        });
        self.header = header;
        Flow::Continue
    }

    /// Warnings about the file as a whole, once every row is read.
    fn add_file_warnings(&mut self) {
        if self.profile.is_none() {
            let first = self.header.first().map(|s| s.trim()).unwrap_or("");
            self.problems.push(Problem::warning(
                Code::UnknownEms,
                format!(
                    "We could not tell which EMS produced this file from its header (first column \
                     {}). It passes these checks, but staff will import it by hand; if it \
                     came from Idox Eros, Xpress or Democracy Counts, upload the export exactly as \
                     the system produced it.",
                    quote(first)
                ),
            ));
        }
        // Each name with the columns it heads, in the order names first appear; a map finds a
        // name again, so a header of a million columns is one pass, not a million squared.
        let mut seen: Vec<(&str, Vec<usize>)> = Vec::new();
        let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (i, name) in self.header.iter().enumerate() {
            let name = name.trim();
            match index.get(name) {
                Some(&at) => seen[at].1.push(i + 1),
                None => {
                    index.insert(name, seen.len());
                    seen.push((name, vec![i + 1]));
                }
            }
        }
        // Blank names are warned about below, each with its position.
        for (name, cols) in seen
            .into_iter()
            .filter(|(name, c)| c.len() > 1 && !name.is_empty())
        {
            let shown = quote(name);
            let positions = list_positions(&cols);
            self.problems.push(
                Problem::warning(
                    Code::DuplicateColumn,
                    format!(
                        "Duplicate column name {shown} appears {} times in the header (columns \
                         {positions}); only one of them may be imported.",
                        cols.len(),
                    ),
                )
                .at_row(1)
                .in_column(name),
            );
        }
        if let Some(blank) = blank_names(&self.header) {
            self.problems.push(blank);
        }
        self.problems
            .extend(std::mem::take(&mut self.rules).finish());
        if let Some((row, fields)) = self.long_rows.first {
            let n = self.long_rows.count;
            let expected = self.header_len.unwrap_or(0);
            self.problems.push(
                Problem::warning(
                    Code::LongRows,
                    format!(
                        "{n} {} more columns than the header's {expected} (first: row {row} with \
                         {fields}). The extra values are ignored; check those rows are not \
                         shifted.",
                        if n == 1 { "row has" } else { "rows have" }
                    ),
                )
                .at_row(row),
            );
        }
    }
}

/// The warning for header columns with an empty or blank name, each by its 1-based position and
/// its nearest named neighbours. Real exports end the header with a delimiter (one blank column
/// at the end), so this only ever warns; the import needs every column named.
fn blank_names(header: &[String]) -> Option<Problem> {
    const LISTED: usize = 5;
    let blank = |i: &usize| header[*i].trim().is_empty();
    let positions: Vec<usize> = (0..header.len()).filter(blank).collect();
    positions.first()?;
    let named = |i: Option<usize>| i.map(|i| quote(header[i].trim()));
    let described: Vec<String> = positions
        .iter()
        .take(LISTED)
        .map(|&i| {
            let before = named((0..i).rev().find(|j| !blank(j)));
            let after = named((i + 1..header.len()).find(|j| !blank(j)));
            let place = match (before, after) {
                (Some(b), Some(a)) => format!("between {b} and {a}"),
                (Some(b), None) => format!("after {b}, at the end"),
                (None, Some(a)) => format!("before {a}, at the start"),
                (None, None) => "no column has a name".to_owned(),
            };
            format!("column {} ({place})", i + 1)
        })
        .collect();
    let mut listed = described.join(", ");
    if positions.len() > LISTED {
        listed.push_str(&format!(" and {} more", positions.len() - LISTED));
    }
    let n = positions.len();
    Some(
        Problem::warning(
            Code::HeaderBlankName,
            format!(
                "The header has {n} {} with no name: {listed}. The import needs every column \
                 named; a delimiter at the end of the header line is the usual cause. Staff may \
                 have to remove {} before importing.",
                if n == 1 { "column" } else { "columns" },
                if n == 1 { "it" } else { "them" },
            ),
        )
        .at_row(1),
    )
}

/// Column positions as a message lists them: the first few, then how many more.
fn list_positions(cols: &[usize]) -> String {
    const LISTED: usize = 10;
    let listed: Vec<String> = cols.iter().take(LISTED).map(|c| c.to_string()).collect();
    let mut text = listed.join(", ");
    if cols.len() > LISTED {
        text.push_str(&format!(" and {} more", cols.len() - LISTED));
    }
    text
}

/// The delimiter of the header line: the more frequent of comma and tab outside quotes, or none
/// when they tie (the caller falls back on the file's extension).
#[cfg(test)]
fn sniff_delimiter(head: &[u8]) -> Option<u8> {
    let mut sniffer = Sniffer::default();
    sniffer.feed(head);
    sniffer.delimiter()
}

/// Counts commas and tabs outside quotes up to the first line break outside quotes, fed as the
/// bytes arrive, so the delimiter is decided on the same bytes however the file is cut.
#[derive(Debug, Default)]
struct Sniffer {
    commas: usize,
    tabs: usize,
    quoted: bool,
    ended: bool,
}

impl Sniffer {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.ended {
                return;
            }
            match b {
                b'"' => self.quoted = !self.quoted,
                b'\n' | b'\r' if !self.quoted => self.ended = true,
                b',' if !self.quoted => self.commas += 1,
                b'\t' if !self.quoted => self.tabs += 1,
                _ => {}
            }
        }
    }

    fn delimiter(&self) -> Option<u8> {
        match self.commas.cmp(&self.tabs) {
            std::cmp::Ordering::Greater => Some(b','),
            std::cmp::Ordering::Less => Some(b'\t'),
            std::cmp::Ordering::Equal => None,
        }
    }
}

/// A separator we cannot read, when the header is clearly split by it.
fn other_separator(header: &[String]) -> Option<&'static str> {
    let text = header.join(",");
    [(';', "semicolon"), ('|', "pipe")]
        .into_iter()
        .map(|(c, name)| (text.matches(c).count(), name))
        .filter(|(n, _)| *n >= 2)
        .max_by_key(|(n, _)| *n)
        .map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[u8], chunk: usize, fallback: u8) -> Findings {
        let mut c = DelimitedCheck::new(Profiles::embedded(), "2019-05-23".parse().ok(), fallback);
        for piece in input.chunks(chunk) {
            c.feed(piece);
        }
        c.finish()
    }

    fn messages(f: &Findings) -> Vec<String> {
        f.problems
            .clone()
            .into_vec()
            .into_iter()
            .filter(|p| p.severity == crate::report::Severity::Error)
            .map(|p| p.message)
            .collect()
    }

    #[test]
    fn sniffing_prefers_the_header_then_the_extension() {
        assert_eq!(sniff_delimiter(b"a\tb\tc\n1,2"), Some(b'\t'));
        assert_eq!(sniff_delimiter(b"\"a,x\"\tb\tc"), Some(b'\t'));
        assert_eq!(sniff_delimiter(b"a,b,c"), Some(b','));
        assert_eq!(sniff_delimiter(b"abc\n1,2,3"), None);
        let f = check(b"abc\n1\t2\t3\n", 100, b'\t');
        assert_eq!(f.delimiter, Some(b'\t'));
    }

    #[test]
    fn a_valid_xpress_dc_file() {
        let input = b"ElectionDate,Post_Code,Polling_Place_Postcode\r\n23/05/2019,HA8 6NB,HA8 6EZ\r\n23/05/2019,,HA8 6EZ\r\n";
        for chunk in [1, 2, 7, 1000] {
            let f = check(input, chunk, b',');
            assert_eq!(f.rows, 3);
            assert_eq!(f.ems.as_deref(), Some("Xpress DC"));
            assert!(f.problems.is_empty(), "{:?}", messages(&f));
        }
    }

    #[test]
    fn short_row_stops_the_check_with_the_originals_message() {
        let f = check(b"a,b,c\n1,2,3\n1,2\n1,2,3\n", 3, b',');
        assert_eq!(f.rows, 3);
        assert_eq!(
            messages(&f),
            vec!["Incomplete file: Expected 3 columns on row 3 found 2"]
        );
    }

    #[test]
    fn two_columns_and_a_semicolon_header() {
        let f = check(b"a;b;c;d,e\n1;2;3;4,5\n", 4, b',');
        assert_eq!(
            messages(&f)[0],
            "File has only 2 columns. We might have failed to detect the delimiter"
        );
        assert!(messages(&f)[1].contains("semicolon-separated"));
        assert_eq!(f.ems, Some("unknown".into()));
    }

    #[test]
    fn empty_input() {
        let f = check(b"", 4, b',');
        assert_eq!(messages(&f), vec!["File is empty"]);
    }

    #[test]
    fn warnings_do_not_fail() {
        let f = check(
            b"ElectionDate,Post_Code,Post_Code,Polling_Place_Postcode\n02/05/2019,HA8,x,HA8 6EZ\n23/05/2019,HA8 6NB,x,HA8 6EZ,extra\n",
            5,
            b',',
        );
        let problems = f.problems.clone().into_vec();
        let codes: Vec<&str> = problems.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(
            codes,
            vec![
                "duplicate-column",
                "malformed-postcode",
                "election-date-mismatch",
                "long-rows"
            ]
        );
        assert!(problems
            .iter()
            .all(|p| p.severity == crate::report::Severity::Warning));
    }

    #[test]
    fn header_names_are_quoted_and_duplicates_bounded() {
        // 300 names each twice, the first with a line break and an escape sequence in it.
        let mut header = String::from("\"ev\nil\u{1b}[2J\",\"ev\nil\u{1b}[2J\"");
        for i in 0..300 {
            header.push_str(&format!(",c{i},c{i}"));
        }
        header.push_str(",x\n");
        let f = check(header.as_bytes(), 100, b',');
        let problems = f.problems.into_vec();
        let warnings: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            warnings.len(),
            crate::report::MAX_WARNINGS + 1,
            "{warnings:?}"
        );
        assert!(
            warnings[0].starts_with(
                "We could not tell which EMS produced this file from its header (first column \
                 \"ev\\nil\\u{1b}[2J\")."
            ),
            "{}",
            warnings[0]
        );
        assert!(
            warnings[1].starts_with(
                "Duplicate column name \"ev\\nil\\u{1b}[2J\" appears 2 times in the header \
                 (columns 1, 2)"
            ),
            "{}",
            warnings[1]
        );
        assert_eq!(problems[1].column.as_deref(), Some("ev\\nil\\u{1b}[2J"));
        assert_eq!(warnings[50], "and 252 more warnings");
        let f = check(b"a,b,a,a,a,a,a,a,a,a,a,a,a,a\n", 100, b',');
        let problems = f.problems.into_vec();
        assert!(
            problems[1]
                .message
                .contains("appears 13 times in the header (columns 1, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 3 more)"),
            "{}",
            problems[1].message
        );
    }

    fn warnings(f: &Findings) -> Vec<(String, String)> {
        f.problems
            .clone()
            .into_vec()
            .into_iter()
            .filter(|p| p.severity == crate::report::Severity::Warning)
            .map(|p| (p.code, p.message))
            .collect()
    }

    #[test]
    fn a_blank_header_name_warns_with_its_position_and_neighbours() {
        // A trailing delimiter, as real exports have: the file still passes.
        let f = check(
            b"HouseID,UPRN,Town,
1,100021243352,Wexley,
",
            3,
            b',',
        );
        assert!(messages(&f).is_empty(), "{:?}", messages(&f));
        assert_eq!(
            warnings(&f),
            vec![(
                "header-blank-name".to_owned(),
                "The header has 1 column with no name: column 4 (after \"Town\", at the end). The \
                 import needs every column named; a delimiter at the end of the header line is the \
                 usual cause. Staff may have to remove it before importing."
                    .to_owned()
            )]
        );
        // Blank and spaces-only names anywhere, the neighbours being the nearest named columns;
        // no duplicate-name warning for the blanks as well.
        let f = check(b" ,HouseID,\"\",\"  \",Town,,x,,,,,,\n", 100, b',');
        let w = warnings(&f);
        // The first column is blank, so the EMS is unknown too.
        let codes: Vec<&str> = w.iter().map(|w| w.0.as_str()).collect();
        assert_eq!(codes, vec!["unknown-ems", "header-blank-name"]);
        assert_eq!(
            w[1].1,
            "The header has 10 columns with no name: column 1 (before \"HouseID\", at the start), \
             column 3 (between \"HouseID\" and \"Town\"), column 4 (between \"HouseID\" and \
             \"Town\"), column 6 (between \"Town\" and \"x\"), column 8 (after \"x\", at the end) \
             and 5 more. The import needs every column named; a delimiter at the end of the \
             header line is the usual cause. Staff may have to remove them before importing."
        );
        assert_eq!(f.problems.clone().into_vec()[1].row, Some(1));
        // Two columns of the same name are still a duplicate.
        let f = check(b"HouseID,Town,Town,\n", 100, b',');
        let codes: Vec<String> = warnings(&f).into_iter().map(|w| w.0).collect();
        assert_eq!(codes, vec!["duplicate-column", "header-blank-name"]);
    }

    #[test]
    fn uprn_checks_read_the_profiles_columns_whatever_the_quoting() {
        let input = b"ElectionDate,Property_URN,Polling_Place_UPRN\r\n\
            23/05/2019,\"1.00021E+11\",800200000101\r\n\
            23/05/2019, 100021243352 ,800200000101\r\n\
            23/05/2019,100021243352,1E+11\r\n";
        for chunk in [1, 5, 1000] {
            let f = check(input, chunk, b',');
            let problems = f.problems.clone().into_vec();
            let found: Vec<(&str, Option<u64>, Option<&str>)> = problems
                .iter()
                .map(|p| (p.code.as_str(), p.row, p.column.as_deref()))
                .collect();
            assert_eq!(
                found,
                vec![
                    ("uprn-scientific-notation", Some(2), Some("Property_URN")),
                    ("uprn-duplicate", None, Some("Property_URN")),
                    (
                        "uprn-scientific-notation",
                        Some(4),
                        Some("Polling_Place_UPRN")
                    ),
                ],
                "chunk {chunk}"
            );
        }
    }

    mod uprn_model {
        use super::*;
        use proptest::prelude::*;

        /// A UPRN cell of a known kind, as a file would hold it.
        #[derive(Debug, Clone)]
        enum Cell {
            Empty,
            Number { n: u64, padded: bool },
            Scientific(&'static str),
            Bad(&'static str),
        }

        fn cell() -> impl Strategy<Value = Cell> {
            prop_oneof![
                2 => Just(Cell::Empty),
                6 => (1u64..40, any::<bool>()).prop_map(|(n, padded)| Cell::Number { n, padded }),
                2 => (1u64..4).prop_map(|n| Cell::Number { n: n * 100_000_000, padded: false }),
                3 => (1u64..1_000_000_000_000).prop_map(|n| Cell::Number { n, padded: true }),
                1 => proptest::sample::select(vec!["1.00021E+11", "1E+11", "1.0E11", "-2e5", "3,5E+11"])
                    .prop_map(Cell::Scientific),
                1 => proptest::sample::select(vec!["N/A", "1234567890123", "12.0", "E11"])
                    .prop_map(Cell::Bad),
            ]
        }

        fn text(c: &Cell) -> String {
            match c {
                Cell::Empty => String::new(),
                Cell::Number { n, padded: true } => format!("{n:012}"),
                Cell::Number { n, .. } => n.to_string(),
                Cell::Scientific(s) | Cell::Bad(s) => s.to_string(),
            }
        }

        /// What the UPRN rules must say about one column, derived from the cells' kinds.
        fn expected(column: &str, cells: &[Cell], unique: bool) -> Vec<(String, String)> {
            let rows = |pred: &dyn Fn(&Cell) -> bool| -> Vec<u64> {
                (0..cells.len())
                    .filter(|&i| pred(&cells[i]))
                    .map(|i| i as u64 + 2)
                    .collect()
            };
            let plural = |n: usize| if n == 1 { "row has" } else { "rows have" };
            let mut out = Vec::new();
            let sci = rows(&|c| matches!(c, Cell::Scientific(_)));
            if !sci.is_empty() {
                out.push((
                    "uprn-scientific-notation".to_owned(),
                    format!(
                        "{} {} a UPRN in scientific notation in column {column}",
                        sci.len(),
                        plural(sci.len())
                    ),
                ));
            }
            let non_empty = rows(&|c| !matches!(c, Cell::Empty)).len();
            let rounded = rows(&|c| matches!(c, Cell::Number { n, .. } if n % 100_000 == 0));
            if rounded.len() * 100 > 20 * non_empty {
                out.push((
                    "uprn-rounded".to_owned(),
                    format!(
                        "{} of the {non_empty} UPRNs in column {column}",
                        rounded.len()
                    ),
                ));
            }
            let bad = rows(&|c| matches!(c, Cell::Bad(_)));
            if !bad.is_empty() {
                out.push((
                    "uprn-not-digits".to_owned(),
                    format!(
                        "{} {} a UPRN in column {column}",
                        bad.len(),
                        plural(bad.len())
                    ),
                ));
            }
            if unique {
                let mut seen = std::collections::HashSet::new();
                let extra = cells
                    .iter()
                    .filter_map(|c| match c {
                        Cell::Number { n, .. } => Some(*n),
                        _ => None,
                    })
                    .filter(|n| !seen.insert(*n))
                    .count();
                if extra > 0 {
                    out.push((
                        "uprn-duplicate".to_owned(),
                        format!(
                            "{extra} {} a UPRN already given on an earlier row in column {column}",
                            if extra == 1 {
                                "row repeats"
                            } else {
                                "rows repeat"
                            }
                        ),
                    ));
                }
            }
            out
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(crate::testing::cases(300)))]

            /// Every chunking gives the report the cells' kinds call for.
            #[test]
            fn uprn_findings_match_the_model_for_any_chunking(
                rows in proptest::collection::vec((cell(), cell(), any::<bool>()), 0..60),
                chunk in prop_oneof![1usize..9, 30usize..200, Just(1 << 20)],
            ) {
                let mut input = String::from("ElectionDate,Property_URN,Polling_Place_UPRN\r\n");
                for (property, station, quoted) in &rows {
                    let (p, s) = (text(property), text(station));
                    if *quoted {
                        input.push_str(&format!("23/05/2019,\"{p}\",\"{s}\"\r\n"));
                    } else {
                        // Unquoted but where a comma needs quotes (a European spreadsheet's).
                        let q = |v: String| if v.contains(',') { format!("\"{v}\"") } else { v };
                        input.push_str(&format!("23/05/2019,{},{}\n", q(p), q(s)));
                    }
                }
                let property: Vec<Cell> = rows.iter().map(|r| r.0.clone()).collect();
                let station: Vec<Cell> = rows.iter().map(|r| r.1.clone()).collect();
                let mut want = expected("Property_URN", &property, true);
                want.extend(expected("Polling_Place_UPRN", &station, false));
                let f = check(input.as_bytes(), chunk, b',');
                prop_assert_eq!(f.rows, rows.len() as u64 + 1);
                let got: Vec<(String, String)> = f.problems.into_vec().into_iter()
                    .map(|p| (p.code, p.message)).collect();
                prop_assert_eq!(got.len(), want.len(), "{:?} vs {:?}", got, want);
                for ((code, message), (want_code, want_start)) in got.iter().zip(&want) {
                    prop_assert_eq!(code, want_code);
                    prop_assert!(message.starts_with(want_start.as_str()), "{} vs {}", message, want_start);
                }
            }
        }
    }

    #[test]
    fn a_header_longer_than_the_sniff_window_still_works() {
        let mut input: Vec<u8> = (0..20_000)
            .map(|i| format!("col{i},"))
            .collect::<String>()
            .into();
        input.extend_from_slice(b"last\n");
        let f = check(&input, 4096, b',');
        assert_eq!(f.columns, Some(20_001));
    }
}
