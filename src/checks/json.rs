//! The JSON check, streamed with a push parser (actson) so that a 150 MB snapshot is never built
//! as one tree: only the first element's keys and running counts are kept.

use actson::feeder::PushJsonFeeder;
use actson::{JsonEvent, JsonParser};

use super::profiles::{Profile, Profiles};
use crate::report::Problem;
use crate::text::{quote, truncate_chars, MAX_QUOTED_CHARS};

/// How many offending elements an error names.
const NAMED: usize = 5;

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
    first_keys: Vec<String>,
    element: Element,
    bytes: u64,
    /// Newlines before the current chunk, and where the last line began, to place an error.
    lines: u64,
    line_start: u64,
    error: Option<Problem>,
    ended: bool,
}

impl<'p> JsonCheck<'p> {
    pub fn new(profiles: &'p Profiles) -> Self {
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
            element: Element::default(),
            bytes: 0,
            lines: 0,
            line_start: 0,
            error: None,
            ended: false,
        }
    }

    pub fn is_done(&self) -> bool {
        self.error.is_some()
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let mut pushed = 0;
        loop {
            match self.parser.next_event() {
                Ok(Some(JsonEvent::NeedMoreInput)) => {
                    if pushed == chunk.len() {
                        break;
                    }
                    pushed += self.parser.feeder.push_bytes(&chunk[pushed..]);
                }
                Ok(Some(event)) => self.on_event(event),
                Ok(None) => {
                    self.ended = true;
                    if pushed == chunk.len() {
                        break;
                    }
                }
                Err(e) => {
                    self.fail(&e, chunk);
                    return;
                }
            }
        }
        self.count_lines(chunk);
    }

    fn count_lines(&mut self, chunk: &[u8]) {
        for nl in memchr::memchr_iter(b'\n', chunk) {
            self.lines += 1;
            self.line_start = self.bytes + nl as u64 + 1;
        }
        self.bytes += chunk.len() as u64;
    }

    /// Places a parse error at a line and column, as people count them.
    fn fail(&mut self, error: &actson::parser::ParserError, chunk: &[u8]) {
        let at = self.parser.parsed_bytes() as u64;
        let within = at.saturating_sub(self.bytes).min(chunk.len() as u64) as usize;
        let (mut line, mut line_start) = (self.lines + 1, self.line_start);
        for nl in memchr::memchr_iter(b'\n', &chunk[..within.saturating_sub(1)]) {
            line += 1;
            line_start = self.bytes + nl as u64 + 1;
        }
        let column = at.saturating_sub(line_start).max(1);
        use actson::parser::ParserError as E;
        let what = match error {
            E::NoMoreInput => "the file ends before the JSON is complete".to_owned(),
            E::IllegalInput(b) => format!("unexpected byte 0x{b:02X}"),
            E::SyntaxError => "syntax error".to_owned(),
        };
        self.error = Some(
            Problem::error(
                "invalid-json",
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
                    let name = self.parser.current_str().unwrap_or_default().to_owned();
                    if self.element.index == 0 {
                        self.first_keys.push(name.clone());
                    }
                    self.element.key = Some(name);
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
            return (None, 0, vec![Problem::error("empty", "File is empty")]);
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
            problems.push(Problem::error("missing-row-list", message));
        }
        (Some(tally.profile.name.clone()), tally.rows, problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let input = "[".repeat(100_000);
        let (_, _, problems) = check(&input, 4096);
        assert_eq!(problems.len(), 1);
    }
}
