//! The JSON check, streamed with a push parser (actson) so that a 150 MB snapshot is never built
//! as one tree: only the first element's keys and running counts are kept.

use actson::feeder::PushJsonFeeder;
use actson::{JsonEvent, JsonParser};

use crate::profiles::{Profile, Profiles};
use crate::report::Problem;
use crate::text::{quote, truncate_chars, MAX_QUOTED_CHARS};
use crate::vocab::Code;

/// How deep the JSON parser (actson) lets lists and objects nest.
const MAX_DEPTH: usize = 2048;

/// How many offending elements an error names.
const NAMED: usize = 5;

/// The most bytes of one JSON string the parser is given; the rest is checked here and skipped.
/// Far more than any key a profile names and than the start of a name a message quotes.
const MAX_STRING_BYTES: usize = 64 * 1024;

/// The longest number a file may hold. The parser keeps a number whole in memory (a file can be
/// one 140 MB number), and a snapshot's numbers (ids, UPRNs, coordinates) are under 30
/// characters: a longer one fails the file.
pub const MAX_NUMBER_BYTES: usize = 1024;

/// What to do with the next bytes of the input, as [`LongTokens::next`] says.
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    /// Give them to the parser.
    Parse,
    /// Give the parser these bytes, held back from earlier (an escape that turned out invalid),
    /// before the input that follows. No input is used.
    Held(Vec<u8>),
    /// Skip them: the inside of a long string, valid JSON string content. An escape still
    /// incomplete at their end is held, and counted as skipped until it is given back.
    Skip,
    /// A number longer than the limit starts `max_number` bytes before here: the file fails.
    /// No input is used.
    LongNumber,
}

/// The parser (actson) keeps every string whole in memory, and a JSON file can be one 150 MB
/// string, or a million 10 KB names. This reads the bytes ahead of the parser, knows where
/// strings are, and past the first `max` bytes of a string skips what is valid inside a string
/// (visible bytes, escapes such as `\n` and `\u00e9`). Anything else there (the closing quote, a
/// control character, a broken escape) goes to the parser, so it still ends the string or reports
/// the error, at the same place. A string's start is kept, so a name is shown as before; the
/// pairing of `\u` surrogates is not checked past the first `max` bytes of a string.
///
/// The parser keeps numbers whole too. Outside strings, a run of the bytes a number is written
/// with longer than `max_number` is reported as [`Piece::LongNumber`], once the parser has been
/// given the bytes before it (so a syntax error there is still reported first).
#[derive(Debug)]
struct LongTokens {
    max: usize,
    max_number: usize,
    /// Bytes of number text just before this point, outside strings.
    number_len: usize,
    /// The limit is passed: the next call says [`Piece::LongNumber`].
    long_number: bool,
    in_string: bool,
    /// Bytes of the current string so far (as written, escapes included).
    len: usize,
    /// Given to the parser: just after a backslash, and `\u` hex digits still to come.
    after_backslash: bool,
    hex_left: u8,
    /// Skipping the rest of the current string.
    skipping: bool,
    /// While skipping, an escape not yet complete, held until it proves valid.
    held: Vec<u8>,
}

/// The bytes JSON writes a number with (`-12.5e+3`).
fn is_number_byte(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
}

impl LongTokens {
    fn new(max: usize, max_number: usize) -> Self {
        LongTokens {
            max,
            max_number,
            number_len: 0,
            long_number: false,
            in_string: false,
            len: 0,
            after_backslash: false,
            hex_left: 0,
            skipping: false,
            held: Vec::with_capacity(6),
        }
    }

    /// What to do with the start of `input`, and how many of its bytes that covers (none when
    /// the state changed before the first byte: the next call goes on from there).
    fn next(&mut self, input: &[u8]) -> (Piece, usize) {
        if self.long_number {
            return (Piece::LongNumber, 0);
        }
        if self.skipping {
            return self.skip(input);
        }
        if !self.in_string {
            // Outside strings a quote opens one, and the length of numbers is bounded.
            let quote = memchr::memchr(b'"', input);
            let end = quote.unwrap_or(input.len());
            for (i, &b) in input[..end].iter().enumerate() {
                if !is_number_byte(b) {
                    self.number_len = 0;
                } else if self.number_len < self.max_number {
                    self.number_len += 1;
                } else {
                    // The parser gets what comes before; then the file fails.
                    self.long_number = true;
                    return (Piece::Parse, i);
                }
            }
            return match quote {
                Some(i) => {
                    self.number_len = 0;
                    self.in_string = true;
                    self.len = 0;
                    (Piece::Parse, i + 1)
                }
                None => (Piece::Parse, input.len()),
            };
        }
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            if self.after_backslash {
                self.after_backslash = false;
                self.hex_left = if b == b'u' { 4 } else { 0 };
            } else if self.hex_left > 0 {
                self.hex_left -= 1;
            } else if b == b'"' {
                self.in_string = false;
                return (Piece::Parse, i + 1);
            } else if self.len >= self.max && b & 0xC0 != 0x80 && b >= 0x20 {
                // Past the limit, at the start of a character: skip from here.
                self.skipping = true;
                return (Piece::Parse, i);
            } else if b == b'\\' {
                self.after_backslash = true;
            }
            self.len += 1;
            i += 1;
        }
        (Piece::Parse, input.len())
    }

    fn skip(&mut self, input: &[u8]) -> (Piece, usize) {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.held.first() {
                None if b == b'\\' => self.held.push(b),
                None if b == b'"' || b < 0x20 => {
                    // The end of the string, or an error for the parser to report: skip what
                    // came before, and the parser reads from here on.
                    self.skipping = false;
                    return (Piece::Skip, i);
                }
                None => {}
                Some(_) if self.held.len() == 1 => {
                    if b == b'u' {
                        self.held.push(b);
                    } else if matches!(b, b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') {
                        self.held.clear();
                    } else {
                        return self.give_back_held(i, 0);
                    }
                }
                Some(_) => {
                    if !b.is_ascii_hexdigit() {
                        let left = 6 - self.held.len() as u8;
                        return self.give_back_held(i, left);
                    }
                    self.held.push(b);
                    if self.held.len() == 6 {
                        self.held.clear();
                    }
                }
            }
            i += 1;
        }
        (Piece::Skip, input.len())
    }

    /// A broken escape at `i`: skip what came before it, then give the parser the escape's start,
    /// so that it reports the error itself, where it is.
    fn give_back_held(&mut self, i: usize, hex_left: u8) -> (Piece, usize) {
        if i > 0 {
            // Skip first; the held bytes come back on the next call, at `i`.
            return (Piece::Skip, i);
        }
        self.skipping = false;
        self.after_backslash = self.held.len() == 1;
        self.hex_left = hex_left;
        (Piece::Held(std::mem::take(&mut self.held)), 0)
    }
}

/// Per JSON profile: its row count and the elements lacking the row list, gathered for every
/// profile until the first element says which one (if any) the file is.
#[derive(Debug)]
struct Tally<'p> {
    profile: &'p Profile,
    rows: u64,
    missing: Vec<String>,
    missing_count: u64,
}

/// What kind of value starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Array,
    Scalar,
}

/// State of the top-level list element being read.
#[derive(Debug, Default)]
struct Element {
    index: u64,
    is_object: bool,
    key: Option<String>,
    /// The row list of the profile whose list is open, if any.
    open_list: Option<usize>,
    has_list: Vec<bool>,
    label: Option<String>,
    label_rank: usize,
}

pub struct JsonCheck<'p> {
    parser: JsonParser<PushJsonFeeder>,
    tallies: Vec<Tally<'p>>,
    depth: usize,
    top_is_list: bool,
    /// The keys of the first element that some profile requires (each once).
    first_keys: Vec<String>,
    /// The longest key any profile names: longer keys are never copied.
    longest_key: usize,
    element: Element,
    bytes: u64,
    /// Newlines before the current chunk, and where the last line began, to place an error.
    lines: u64,
    line_start: u64,
    error: Option<Problem>,
    ended: bool,
    /// Long strings are cut before the parser, which would otherwise hold each string whole, and
    /// long numbers fail the file.
    strings: LongTokens,
    /// Bytes of long strings the parser was not given, to place an error in the file.
    skipped: u64,
}

impl<'p> JsonCheck<'p> {
    pub fn new(profiles: &'p Profiles) -> Self {
        Self::with_limits(profiles, MAX_STRING_BYTES, MAX_NUMBER_BYTES)
    }

    /// A check that gives the parser at most `max_string` bytes of each string, and fails a
    /// number longer than `max_number` bytes.
    fn with_limits(profiles: &'p Profiles, max_string: usize, max_number: usize) -> Self {
        let longest_key = profiles
            .json_profiles()
            .flat_map(|p| {
                p.detect
                    .required_keys
                    .iter()
                    .chain(&p.rules.label_keys)
                    .chain(&p.rules.row_list)
            })
            .map(String::len)
            .max()
            .unwrap_or(0);
        JsonCheck {
            parser: JsonParser::new(PushJsonFeeder::new()),
            tallies: profiles
                .json_profiles()
                .map(|profile| Tally {
                    profile,
                    rows: 0,
                    missing: Vec::new(),
                    missing_count: 0,
                })
                .collect(),
            depth: 0,
            top_is_list: false,
            first_keys: Vec::new(),
            longest_key,
            element: Element::default(),
            bytes: 0,
            lines: 0,
            line_start: 0,
            error: None,
            ended: false,
            strings: LongTokens::new(max_string, max_number),
            skipped: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.error.is_some()
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let mut at = 0;
        while at < chunk.len() {
            let (piece, used) = self.strings.next(&chunk[at..]);
            let parsed = match piece {
                Piece::Parse => self.parse(&chunk[at..at + used]),
                Piece::Held(held) => {
                    // They were counted as skipped when they were read.
                    self.skipped -= held.len() as u64;
                    self.parse(&held)
                }
                Piece::Skip => {
                    self.skipped += used as u64;
                    Ok(())
                }
                Piece::LongNumber => {
                    self.fail_long_number(at, chunk);
                    return;
                }
            };
            if let Err(e) = parsed {
                self.fail(&e, chunk);
                return;
            }
            at += used;
        }
        self.count_lines(chunk);
    }

    /// Gives bytes to the parser and handles every event they complete.
    fn parse(&mut self, bytes: &[u8]) -> Result<(), actson::parser::ParserError> {
        let mut pushed = 0;
        loop {
            match self.parser.next_event()? {
                Some(JsonEvent::NeedMoreInput) => {
                    if pushed == bytes.len() {
                        return Ok(());
                    }
                    pushed += self.parser.feeder.push_bytes(&bytes[pushed..]);
                }
                Some(event) => self.on_event(event),
                None => {
                    self.ended = true;
                    if pushed == bytes.len() {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn count_lines(&mut self, chunk: &[u8]) {
        for nl in memchr::memchr_iter(b'\n', chunk) {
            self.lines += 1;
            self.line_start = self.bytes + nl as u64 + 1;
        }
        self.bytes += chunk.len() as u64;
    }

    /// The line and column (as people count them) of the byte before file offset `at`, which
    /// is in `chunk` or before it.
    fn place(&self, at: u64, chunk: &[u8]) -> (u64, u64) {
        let within = at.saturating_sub(self.bytes).min(chunk.len() as u64) as usize;
        let (mut line, mut line_start) = (self.lines + 1, self.line_start);
        for nl in memchr::memchr_iter(b'\n', &chunk[..within.saturating_sub(1)]) {
            line += 1;
            line_start = self.bytes + nl as u64 + 1;
        }
        (line, at.saturating_sub(line_start).max(1))
    }

    /// A number longer than the limit: `at` in `chunk` is its first byte past the limit. The
    /// message places the number's start (a number holds no line break).
    fn fail_long_number(&mut self, at: usize, chunk: &[u8]) {
        let start = (self.bytes + at as u64).saturating_sub(self.strings.max_number as u64);
        let (line, column) = self.place(start + 1, chunk);
        self.error = Some(
            Problem::error(
                Code::NumberTooLong,
                format!(
                    "The file is not a snapshot: the number at line {line}, column {column} is \
                     more than {} characters long. Please upload the snapshot exactly as it was \
                     exported.",
                    self.strings.max_number
                ),
            )
            .at_row(line),
        );
    }

    /// Places a parse error at a line and column, as people count them, saying why when it can.
    fn fail(&mut self, error: &actson::parser::ParserError, chunk: &[u8]) {
        // Where the parser is in the file: what it read, and what was skipped before that.
        let at = self.parser.parsed_bytes() as u64 + self.skipped;
        let (line, column) = self.place(at, chunk);
        use actson::parser::ParserError as E;
        let what = match error {
            E::NoMoreInput => "the file ends before the JSON is complete".to_owned(),
            E::IllegalInput(b) => format!("unexpected byte 0x{b:02X}"),
            // The parser refuses to go deeper than its limit, with a plain syntax error.
            E::SyntaxError if self.depth + 1 >= MAX_DEPTH => format!(
                "lists or objects nested too deeply (more than {} levels)",
                MAX_DEPTH - 1
            ),
            E::SyntaxError => "syntax error".to_owned(),
        };
        self.error = Some(
            Problem::error(
                Code::InvalidJson,
                format!(
                    "The file is not valid JSON: {what} at line {line}, column {column}. Please \
                     upload the snapshot exactly as it was exported."
                ),
            )
            .at_row(line),
        );
    }

    fn on_event(&mut self, event: JsonEvent) {
        let depth = self.depth;
        match event {
            JsonEvent::StartObject => {
                self.on_value_start(depth, Kind::Object);
                self.depth += 1;
            }
            JsonEvent::StartArray => {
                self.on_value_start(depth, Kind::Array);
                self.depth += 1;
            }
            JsonEvent::EndObject | JsonEvent::EndArray => {
                self.depth -= 1;
                self.on_container_end(self.depth);
            }
            JsonEvent::FieldName => {
                if depth == 2 && self.top_is_list {
                    let name = self.parser.current_str().unwrap_or_default();
                    // Only keys a profile names are kept: an element of a million keys, or one
                    // key as long as the file, costs nothing. The longest key a profile names
                    // bounds what is worth copying.
                    let key = (name.len() <= self.longest_key).then(|| name.to_owned());
                    if let Some(k) = &key {
                        if self.element.index == 0
                            && !self.first_keys.contains(k)
                            && self
                                .tallies
                                .iter()
                                .any(|t| t.profile.detect.required_keys.contains(k))
                        {
                            self.first_keys.push(k.clone());
                        }
                    }
                    self.element.key = key;
                }
            }
            JsonEvent::ValueString
            | JsonEvent::ValueInt
            | JsonEvent::ValueFloat
            | JsonEvent::ValueTrue
            | JsonEvent::ValueFalse
            | JsonEvent::ValueNull => {
                if depth == 2 && self.top_is_list && self.element.is_object {
                    self.maybe_label(event);
                }
                self.on_value_start(depth, Kind::Scalar);
                if depth == 1 && self.top_is_list {
                    // A scalar in the top-level list is a whole element.
                    self.on_container_end(1);
                }
            }
            JsonEvent::NeedMoreInput => {}
        }
    }

    /// A value starts at `depth` (0 = the top-level value).
    fn on_value_start(&mut self, depth: usize, kind: Kind) {
        match depth {
            0 => self.top_is_list = kind == Kind::Array,
            1 if self.top_is_list => {
                let index = self.element.index;
                self.element = Element {
                    index,
                    is_object: kind == Kind::Object,
                    has_list: vec![false; self.tallies.len()],
                    ..Element::default()
                };
            }
            2 if self.top_is_list && self.element.is_object && kind == Kind::Array => {
                // A list under one of the profiles' row-list keys opens that row list.
                let key = self.element.key.as_deref();
                if let Some(i) = self
                    .tallies
                    .iter()
                    .position(|t| key.is_some() && t.profile.rules.row_list.as_deref() == key)
                {
                    self.element.open_list = Some(i);
                    self.element.has_list[i] = true;
                }
            }
            3 => {
                if let Some(i) = self.element.open_list {
                    self.tallies[i].rows += 1;
                }
            }
            _ => {}
        }
    }

    /// A container (or top-level-list scalar) that started at `depth` has ended.
    fn on_container_end(&mut self, depth: usize) {
        match depth {
            1 if self.top_is_list => self.end_element(),
            2 => self.element.open_list = None,
            _ => {}
        }
    }

    fn maybe_label(&mut self, event: JsonEvent) {
        let Some(key) = self.element.key.as_deref() else {
            return;
        };
        for t in &self.tallies {
            if let Some(rank) = t.profile.rules.label_keys.iter().position(|k| k == key) {
                if self.element.label.is_none() || rank < self.element.label_rank {
                    let value = match event {
                        // A name comes from the uploader: bounded and escaped, as every quoted value.
                        JsonEvent::ValueString => self.parser.current_str().map(quote).ok(),
                        // A number is visible text, but can be as long as the file.
                        JsonEvent::ValueInt | JsonEvent::ValueFloat => self
                            .parser
                            .current_str()
                            .map(|s| truncate_chars(s, MAX_QUOTED_CHARS))
                            .ok(),
                        _ => None,
                    };
                    if let Some(v) = value.filter(|v| v != "\"\"") {
                        self.element.label = Some(format!("{key} {v}"));
                        self.element.label_rank = rank;
                    }
                }
            }
        }
    }

    fn end_element(&mut self) {
        let element = std::mem::take(&mut self.element);
        for (i, t) in self.tallies.iter_mut().enumerate() {
            if !element.has_list.get(i).copied().unwrap_or(false) {
                t.missing_count += 1;
                if t.missing.len() < NAMED {
                    let n = element.index + 1;
                    t.missing.push(match &element.label {
                        Some(label) => format!("{label} (element {n})"),
                        None => format!("element {n}"),
                    });
                }
            }
        }
        self.element.index = element.index + 1;
    }

    /// The verdict: `(ems, rows, problems)`.
    pub fn finish(mut self) -> (Option<String>, u64, Vec<Problem>) {
        if self.error.is_none() && self.bytes == 0 {
            return (None, 0, vec![Problem::error(Code::Empty, "File is empty")]);
        }
        if self.error.is_none() {
            self.parser.feeder.done();
            loop {
                match self.parser.next_event() {
                    Ok(Some(JsonEvent::NeedMoreInput)) => break,
                    Ok(Some(event)) => self.on_event(event),
                    Ok(None) => {
                        self.ended = true;
                        break;
                    }
                    Err(e) => {
                        self.fail(&e, &[]);
                        break;
                    }
                }
            }
        }
        if let Some(error) = self.error {
            return (None, 0, vec![error]);
        }
        let first_keys = &self.first_keys;
        let matched = self.tallies.iter().find(|t| {
            self.top_is_list
                && !t.profile.detect.required_keys.is_empty()
                && t.profile
                    .detect
                    .required_keys
                    .iter()
                    .all(|k| first_keys.contains(k))
        });
        let Some(tally) = matched else {
            return (None, 0, Vec::new());
        };
        let mut problems = Vec::new();
        if tally.missing_count > 0 {
            let list = tally.profile.rules.row_list.as_deref().unwrap_or("rows");
            let more = tally
                .missing_count
                .saturating_sub(tally.missing.len() as u64);
            let named = tally.missing.join("; ");
            let message = if tally.missing_count == 1 {
                format!(
                    "Station {named} has no list of {list}, so its addresses cannot be imported. \
                     Please export the snapshot again."
                )
            } else {
                let and_more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                format!(
                    "{} stations have no list of {list}, so their addresses cannot be imported: \
                     {named}{and_more}. Please export the snapshot again.",
                    tally.missing_count
                )
            };
            problems.push(Problem::error(Code::MissingRowList, message));
        }
        (Some(tally.profile.name.clone()), tally.rows, problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn station(name: &str, properties: &str) -> String {
        format!(
            r#"{{"id": 1, "stationId": 2, "name": "{name}", "addressLine1": "", "addressLine2": "",
            "addressLine3": "", "addressLine4": "", "addressLine5": "", "addressPostCode": "E15 2AU",
            "addressUprn": 0, "latitude": 0.0, "longitude": 0.0, "defaultStationId": 65,
            {properties} "pollingDistricts": [{{"x": [1, 2]}}]}}"#
        )
    }

    fn check(input: &str, chunk: usize) -> (Option<String>, u64, Vec<Problem>) {
        let profiles = Profiles::embedded();
        let mut c = JsonCheck::new(profiles);
        for piece in input.as_bytes().chunks(chunk) {
            c.feed(piece);
        }
        c.finish()
    }

    #[test]
    fn an_fcs_snapshot_counts_all_properties() {
        let input = format!(
            "[{}, {}]",
            station("Hall", r#""properties": [{"a": [1]}, {"b": {"c": 2}}, 3],"#),
            station("School", r#""properties": [{}],"#)
        );
        for chunk in [1, 3, 64, 100_000] {
            let (ems, rows, problems) = check(&input, chunk);
            assert_eq!(ems.as_deref(), Some("FCS"), "chunk {chunk}");
            assert_eq!(rows, 4);
            assert!(problems.is_empty(), "{problems:?}");
        }
    }

    #[test]
    fn a_station_without_properties_is_named() {
        let input = format!(
            "[{}, {}]",
            station("Hall", r#""properties": [],"#),
            station("Old School", r#""properties": null,"#)
        );
        let (ems, _, problems) = check(&input, 7);
        assert_eq!(ems.as_deref(), Some("FCS"));
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0]
                .message
                .contains("name \"Old School\" (element 2)"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn a_hostile_station_name_is_quoted_short_and_on_one_line() {
        let name = "File: x.csv\\nErrors: none\\n\\u001b[2J".repeat(500);
        let stations: Vec<String> = (0..1000)
            .map(|i| {
                if i == 0 {
                    station("Hall", r#""properties": [{}],"#)
                } else {
                    station(&name, "")
                }
            })
            .collect();
        let input = format!("[{}]", stations.join(", "));
        let (ems, rows, problems) = check(&input, 4096);
        assert_eq!((ems.as_deref(), rows), (Some("FCS"), 1));
        assert_eq!(problems.len(), 1);
        let message = &problems[0].message;
        assert!(message.len() <= crate::text::MAX_MESSAGE_BYTES, "{message}");
        assert!(
            !message.contains('\n') && !message.contains('\u{1b}'),
            "{message}"
        );
        assert!(
            message.starts_with(
                "999 stations have no list of properties, so their addresses cannot be \
                 imported: name \"File: x.csv\\nErrors: none\\n\\u{1b}[2JFile: x.cs…\" \
                 (element 2);"
            ),
            "{message}"
        );
        assert!(message.ends_with(" and 994 more. Please export the snapshot again."));
    }

    /// Checks `input` giving the parser at most `max_string` bytes of a string.
    fn check_cut(
        input: &[u8],
        chunk: usize,
        max_string: usize,
    ) -> (Option<String>, u64, Vec<Problem>) {
        let mut c = JsonCheck::with_limits(Profiles::embedded(), max_string, MAX_NUMBER_BYTES);
        for piece in input.chunks(chunk) {
            c.feed(piece);
        }
        c.finish()
    }

    #[test]
    fn long_strings_are_cut_with_the_same_verdict_and_error_places() {
        let long = "é\\n\\u00e9\\\"\\\\\\/x ".repeat(2000);
        let cases: Vec<String> = vec![
            format!("[{}]", station(&long, r#""properties": [{"a": 1}],"#)),
            format!("[\"{long}\", \"{long}\"]"),
            format!("[\"{long}\\uD83D\\uDE00{long}\"]"),
            format!("[\"{long}\u{1}{long}\"]"),
            format!("[\n\"{long}\n{long}\"]"),
            format!("[\"{long}\\x{long}\"]"),
            format!("[\"{long}\\u12G4\"]"),
            format!("[\"{long}\\u123\"]"),
            format!("[\"{long}\\u12"),
            format!("[\"{long}"),
            format!("[\"{long}\" {long}]"),
            format!("[\"{long}\"] \"x\""),
        ];
        for input in &cases {
            let whole = check_cut(input.as_bytes(), 1 << 20, usize::MAX);
            // A station's keys and the start of its name are read whole when the cut is far
            // enough (as MAX_STRING_BYTES is); other strings can be cut anywhere.
            let maxes: &[usize] = if input.starts_with("[{") {
                &[200, 1000]
            } else {
                &[0, 5, 1000]
            };
            for chunk in [1, 7, 4096, 1 << 20] {
                for &max in maxes {
                    let cut = check_cut(input.as_bytes(), chunk, max);
                    assert_eq!(
                        (&cut.0, cut.1, &cut.2),
                        (&whole.0, whole.1, &whole.2),
                        "chunk {chunk}, max {max}, input {}",
                        &input[..80]
                    );
                }
            }
        }
    }

    #[test]
    fn a_string_as_long_as_the_file_is_not_held() {
        let mut c = JsonCheck::new(Profiles::embedded());
        c.feed(b"[\"");
        for _ in 0..100 {
            c.feed(&[b'a'; 100_000]);
        }
        c.feed(b"\"]");
        assert!(c.skipped >= 10_000_000 - MAX_STRING_BYTES as u64);
        assert!(c.parser.current_str().unwrap().len() <= MAX_STRING_BYTES);
        assert_eq!(c.finish(), (None, 0, vec![]));
    }

    #[test]
    fn a_number_past_the_limit_fails_the_file_where_it_starts() {
        let at_limit = "7".repeat(MAX_NUMBER_BYTES);
        for chunk in [1, 7, 1000, 1 << 20] {
            let (ems, rows, problems) = check(&format!("[1, {at_limit}, -1.5e+3]"), chunk);
            assert_eq!((ems, rows), (None, 0));
            assert!(problems.is_empty(), "chunk {chunk}: {problems:?}");
            for (input, line, column) in [
                (format!("[1,\n  {at_limit}1]"), 2, 3),
                (format!("[{{\"a\": -1e{at_limit}}}]"), 1, 8),
                (format!("[\"12\",\n\n\"x\", 0.{at_limit}"), 3, 6),
            ] {
                let (ems, rows, problems) = check(&input, chunk);
                assert_eq!((ems, rows), (None, 0));
                assert_eq!(problems.len(), 1, "{problems:?}");
                assert_eq!(problems[0].code, "number-too-long");
                assert_eq!(
                    problems[0].message,
                    format!(
                        "The file is not a snapshot: the number at line {line}, column {column} \
                         is more than {MAX_NUMBER_BYTES} characters long. Please upload the \
                         snapshot exactly as it was exported."
                    ),
                    "chunk {chunk}"
                );
            }
        }
        // Digits in strings are not a number; a syntax error before the limit comes first.
        let (_, _, problems) = check(&format!("[\"{at_limit}{at_limit}\"]"), 100);
        assert!(problems.is_empty(), "{problems:?}");
        let (_, _, problems) = check(&format!("[1-{at_limit}]"), 100);
        assert_eq!(problems[0].code, "invalid-json", "{problems:?}");
    }

    #[test]
    fn a_number_as_long_as_the_file_is_not_held() {
        let mut c = JsonCheck::new(Profiles::embedded());
        c.feed(b"[");
        for _ in 0..100 {
            c.feed(&[b'1'; 100_000]);
        }
        c.feed(b"]");
        assert!(c.is_done());
        assert!(c.parser.parsed_bytes() <= MAX_NUMBER_BYTES + 1);
        let (_, _, problems) = c.finish();
        assert_eq!(problems[0].code, "number-too-long");
    }

    fn token() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            4 => Just("a"),
            1 => Just("é"),
            1 => Just("\\n"),
            1 => Just("\\u00e9"),
            1 => Just("\\u00"),
            1 => Just("\\\""),
            1 => Just("\\"),
            1 => Just("\""),
            1 => Just("\n"),
            1 => Just("\u{1}"),
            1 => Just("u"),
            1 => Just("0"),
            1 => Just("G"),
            1 => Just(", "),
            1 => Just("]"),
            1 => Just("["),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::testing::cases(1000)))]

        /// Whatever the bytes (but surrogates), cutting strings changes neither the verdict nor
        /// where an error is reported.
        #[test]
        fn cutting_strings_changes_nothing_visible(
            tokens in proptest::collection::vec(token(), 0..200),
            chunk in prop_oneof![1usize..9, Just(1 << 20)],
            max in 0usize..12,
        ) {
            let input = format!("[\"{}\"]", tokens.concat());
            let whole = check_cut(input.as_bytes(), 1 << 20, usize::MAX);
            let cut = check_cut(input.as_bytes(), chunk, max);
            prop_assert_eq!(cut, whole, "{:?}", input);
        }
    }

    #[test]
    fn other_json_passes_as_unknown() {
        for input in [
            r#"{"a": [1, 2]}"#,
            "[]",
            "[1, 2]",
            r#"[{"id": 1}]"#,
            "\"text\"",
            "3",
        ] {
            let (ems, rows, problems) = check(input, 2);
            assert_eq!((ems, rows), (None, 0), "{input}");
            assert!(problems.is_empty(), "{input}: {problems:?}");
        }
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let (_, _, problems) = check("[\n  {\"a\": 1},\n  {\"b\" 2}\n]", 4);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].message.contains("line 3, column"),
            "{}",
            problems[0].message
        );
        let (_, _, problems) = check("not json", 100);
        assert!(
            problems[0].message.contains("line 1"),
            "{}",
            problems[0].message
        );
        let (_, _, problems) = check("[1, 2", 100);
        assert!(
            problems[0].message.contains("ends before"),
            "{}",
            problems[0].message
        );
        let (_, _, problems) = check("[1] [2]", 100);
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn empty_file() {
        let (_, _, problems) = check("", 1);
        assert_eq!(problems[0].message, "File is empty");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        let (_, _, problems) = check(&deep, 64 * 1024);
        assert!(
            problems[0].message.contains("nested too deeply"),
            "{}",
            problems[0].message
        );
        let (_, _, fine) = check(&format!("{}{}", "[".repeat(1000), "]".repeat(1000)), 7);
        assert!(
            fine.iter().all(|p| !p.message.contains("nested")),
            "{fine:?}"
        );
        let input = "[".repeat(100_000);
        let (_, _, problems) = check(&input, 4096);
        assert_eq!(problems.len(), 1);
    }
}
