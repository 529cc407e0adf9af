//! The checks: pure, streaming, and the same for a local file, stdin and an S3 body.
//!
//! A file is checked by [`FileChecker`]: give it the size when known ([`FileChecker::begin`] may
//! decide at once, as the original did from S3's ContentLength), feed it chunks as they arrive,
//! then [`FileChecker::finish`] it. [`check_upload`] applies the rules about an upload's files
//! together (a Democracy Counts upload has two files).

use crate::delimited::DelimitedCheck;
use crate::encoding::{EightBitTracker, Encoding};
use crate::json::JsonCheck;
use crate::profiles::Profiles;
use crate::records::Flow;
use crate::vocab::{Date, UNKNOWN_EMS};

use crate::report::{FileReport, Problem, Problems, UploadVerdict};
use crate::spare::Spare;
use crate::vocab::Code;

/// Smallest file the original accepted, in bytes.
pub const MIN_BYTES: u64 = 1024;
/// Largest file the original accepted, in bytes.
pub const MAX_BYTES: u64 = 150_000_000;
/// Councils whose genuine exports are under 1 KB (the Isles of Scilly has very few addresses).
pub const DEFAULT_SIZE_FLOOR_EXEMPT: &[&str] = &["IOS"];

/// How many bytes of a file's start are looked at before deciding what it is.
const HEAD_BYTES: usize = 8 * 1024;

/// The original's exact messages.
pub const TOO_SMALL: &str = "Expected file to be at least 1KB";
pub const TOO_LARGE: &str = "Expected file to be under 150MB";

/// How much [`FileChecker::check_reader`] reads at a time.
const READ_BUFFER_BYTES: usize = 512 * 1024;

/// What the checks need to know beyond the file itself.
#[derive(Debug, Clone)]
pub struct CheckOptions<'p> {
    /// The EMS profiles a file is recognised by.
    pub profiles: &'p Profiles,
    /// The council the upload is for (the first part of the S3 key).
    pub council: Option<String>,
    /// The election the upload is for.
    pub election_date: Option<Date>,
    /// Councils exempt from the 1 KB floor.
    pub size_floor_exempt: Vec<String>,
    /// Use a second thread: for `check` on a machine with two cores or more. A large local
    /// file is then checked in parts, one walk per thread ([`check_file`](crate::check_file)); otherwise
    /// the row rules run on a helper thread (see `rules::RulesRunner`):
    /// [`FileChecker::check_reader`] lends its reading thread for them (`spare`), and other
    /// inputs start a thread of the rules' own. The report is the same either way.
    pub rules_thread: bool,
}

impl Default for CheckOptions<'static> {
    fn default() -> Self {
        CheckOptions {
            profiles: Profiles::embedded(),
            council: None,
            election_date: None,
            size_floor_exempt: DEFAULT_SIZE_FLOOR_EXEMPT
                .iter()
                .map(|s| s.to_string())
                .collect(),
            rules_thread: false,
        }
    }
}

impl CheckOptions<'_> {
    fn floor_applies(&self) -> bool {
        !self.council.as_ref().is_some_and(|c| {
            self.size_floor_exempt
                .iter()
                .any(|e| e.eq_ignore_ascii_case(c))
        })
    }
}

/// What kind of content the file's name announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Named {
    Json,
    Tsv,
    Other,
}

fn named(key: &str) -> Named {
    let lower = key.to_ascii_lowercase();
    if lower.ends_with(".json") {
        Named::Json
    } else if lower.ends_with(".tsv") {
        Named::Tsv
    } else {
        Named::Other
    }
}

/// The result of [`FileChecker::begin`].
pub enum Begin<'p> {
    /// The verdict is known without reading the body (its declared size is out of bounds).
    Done(FileReport),
    /// Feed the body to this checker.
    Checking(Box<FileChecker<'p>>),
}

/// Which check the body goes to, once its start has been seen.
enum Body<'p> {
    /// Still collecting the first bytes.
    Head(Vec<u8>),
    /// Not something the checks can read (a spreadsheet, an archive): only the size is left.
    Refused(Problem),
    Delimited {
        text: Text,
        check: Box<DelimitedCheck<'p>>,
    },
    Json {
        tracker: EightBitTracker,
        check: Box<JsonCheck<'p>>,
    },
}

/// How the body's bytes become the text the delimited check reads.
enum Text {
    /// 8-bit text (UTF-8, windows-1252 or latin-1): passed through, encoding decided at the end.
    EightBit(EightBitTracker),
    /// UTF-8 with a byte order mark.
    Utf8,
    /// UTF-16, transcoded to UTF-8.
    Utf16 {
        encoding: Encoding,
        decoder: Box<encoding_rs::Decoder>,
        out: Vec<u8>,
        malformed_at: Option<u64>,
        read: u64,
    },
}

impl Text {
    /// The text's encoding once the body has ended, and the error of UTF-16 that does not
    /// decode: the decoder's last bytes go to `check` first.
    fn finish(self, check: &mut DelimitedCheck<'_>) -> (Encoding, Option<Problem>) {
        match self {
            Text::EightBit(tracker) => (tracker.finish(), None),
            Text::Utf8 => (Encoding::Utf8, None),
            Text::Utf16 {
                encoding,
                mut decoder,
                mut out,
                mut malformed_at,
                mut read,
            } => {
                if malformed_at.is_none() && !check.is_done() {
                    transcode(
                        &mut decoder,
                        &[],
                        true,
                        &mut out,
                        &mut malformed_at,
                        &mut read,
                        check,
                    );
                }
                let invalid = malformed_at.map(|at| {
                    Problem::error(
                        Code::InvalidUtf16,
                        format!(
                            "The file is {encoding} text but has invalid data near byte \
                             {at}. It may be damaged: please export it from your EMS again."
                        ),
                    )
                });
                (encoding, invalid)
            }
        }
    }
}

/// Checks one file, fed chunk by chunk.
pub struct FileChecker<'p> {
    report: FileReport,
    options: CheckOptions<'p>,
    named: Named,
    bytes: u64,
    /// Bytes still to skip (a byte order mark).
    skip: usize,
    /// Whether the file starts with a byte order mark (its label says so: [`Encoding::label`]).
    bom: bool,
    body: Body<'p>,
    /// The thread reading the file, lent for the rules when `options.rules_thread` asks for
    /// a helper thread ([`spare`]).
    spare: Option<Spare>,
}

impl<'p> FileChecker<'p> {
    /// Starts checking the file `key`, whose size may be known in advance (S3's ContentLength,
    /// a local file's metadata).
    pub fn begin(key: &str, declared_len: Option<u64>, options: CheckOptions<'p>) -> Begin<'p> {
        let mut report = FileReport::new(key);
        report.details.bytes = declared_len;
        if let Some(len) = declared_len {
            if let Some(problem) = size_problem(len, &options) {
                report.problems.push(problem);
                return Begin::Done(report);
            }
        }
        Begin::Checking(Box::new(FileChecker {
            report,
            options,
            named: named(key),
            bytes: 0,
            skip: 0,
            bom: false,
            body: Body::Head(Vec::with_capacity(HEAD_BYTES)),
            spare: None,
        }))
    }

    /// Feeds the next chunk. [`Flow::Stop`] means the verdict is known: stop reading.
    pub fn feed(&mut self, chunk: &[u8]) -> Flow {
        self.bytes += chunk.len() as u64;
        if self.bytes > MAX_BYTES {
            return Flow::Stop;
        }
        if let Body::Head(head) = &mut self.body {
            head.extend_from_slice(chunk);
            if head.len() < HEAD_BYTES {
                return Flow::Continue;
            }
            let head = std::mem::take(head);
            self.start(&head);
            return self.feed_body(&head);
        }
        self.feed_body(chunk)
    }

    /// Decides from the first bytes which check reads the body.
    fn start(&mut self, head: &[u8]) {
        if let Some(wrong) = crate::filetype::sniff(head) {
            self.body = Body::Refused(Problem::error(wrong.code(), wrong.message()));
            return;
        }
        let start = crate::encoding::sniff_start(head);
        self.skip = start.bom_len;
        self.bom = start.bom_len > 0;
        let looks_json = matches!(
            head.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[')
        );
        let is_json = self.named == Named::Json || (self.report.key == "-" && looks_json);
        if is_json {
            self.body = match start.fixed.filter(|e| *e != Encoding::Utf8) {
                Some(enc) => {
                    self.report.csv_encoding = enc.label(self.bom).to_owned();
                    Body::Refused(json_not_utf8(enc))
                }
                None => Body::Json {
                    tracker: EightBitTracker::new(),
                    check: Box::new(JsonCheck::new(self.options.profiles)),
                },
            };
            return;
        }
        let text = match start.fixed {
            None => Text::EightBit(EightBitTracker::new()),
            Some(Encoding::Utf8) => Text::Utf8,
            Some(enc) => {
                let decoder = if enc == Encoding::Utf16Le {
                    encoding_rs::UTF_16LE.new_decoder_without_bom_handling()
                } else {
                    encoding_rs::UTF_16BE.new_decoder_without_bom_handling()
                };
                Text::Utf16 {
                    encoding: enc,
                    decoder: Box::new(decoder),
                    out: vec![0; 64 * 1024],
                    malformed_at: None,
                    read: 0,
                }
            }
        };
        let fallback = if self.named == Named::Tsv {
            b'\t'
        } else {
            b','
        };
        self.body = Body::Delimited {
            text,
            check: Box::new(
                DelimitedCheck::new(self.options.profiles, self.options.election_date, fallback)
                    .with_spare(
                        self.options
                            .rules_thread
                            .then(|| self.spare.take().unwrap_or(Spare::Own)),
                    ),
            ),
        };
    }

    fn feed_body(&mut self, chunk: &[u8]) -> Flow {
        let chunk = if self.skip > 0 {
            let n = self.skip.min(chunk.len());
            self.skip -= n;
            &chunk[n..]
        } else {
            chunk
        };
        match &mut self.body {
            Body::Head(_) => unreachable!("the head is consumed before the body is fed"),
            // The size is all that is left to learn.
            Body::Refused(_) => Flow::Continue,
            Body::Json { tracker, check } => {
                tracker.feed(chunk);
                check.feed(chunk);
                Flow::Continue
            }
            Body::Delimited { text, check } => match text {
                Text::EightBit(tracker) => {
                    tracker.feed(chunk);
                    if !check.is_done() {
                        check.feed(chunk);
                    }
                    // Keep reading after a verdict: the encoding is decided over the whole file.
                    Flow::Continue
                }
                Text::Utf8 => {
                    check.feed(chunk);
                    Flow::Continue
                }
                Text::Utf16 {
                    decoder,
                    out,
                    malformed_at,
                    read,
                    ..
                } => {
                    transcode(decoder, chunk, false, out, malformed_at, read, check);
                    if check.is_done() || malformed_at.is_some() {
                        Flow::Stop
                    } else {
                        Flow::Continue
                    }
                }
            },
        }
    }

    /// Says that about `bytes` more bytes are to come ([`DelimitedCheck::expect_bytes`]).
    pub(crate) fn expect_bytes(&mut self, bytes: u64) {
        if let Body::Delimited { check, .. } = &mut self.body {
            check.expect_bytes(bytes);
        }
    }

    /// A check of the rows after a line end, to run on another thread while this one reads
    /// the rows before it, and then be [`Self::absorb`]ed ([`parts`]). Only 8-bit and UTF-8
    /// text can be cut: `None` for other bodies, and until the header has been read.
    pub(crate) fn fork(&self) -> Option<Fork<'p>> {
        let Body::Delimited { text, check } = &self.body else {
            return None;
        };
        let tracker = match text {
            Text::EightBit(_) => Some(EightBitTracker::new()),
            Text::Utf8 => None,
            Text::Utf16 { .. } => return None,
        };
        if self.skip > 0 {
            return None;
        }
        Some(Fork {
            tracker,
            check: Box::new(check.fork()?),
            bytes: 0,
        })
    }

    /// Whether the bytes fed so far end between two rows (and two characters), with the
    /// check still going: where a [`Fork`] of the rest can be joined.
    pub(crate) fn at_record_start(&self) -> bool {
        let Body::Delimited { text, check } = &self.body else {
            return false;
        };
        let text_ends = match text {
            Text::EightBit(tracker) => tracker.at_char_boundary(),
            Text::Utf8 => true,
            Text::Utf16 { .. } => false,
        };
        text_ends && self.skip == 0 && self.bytes <= MAX_BYTES && check.at_record_start()
    }

    /// Takes in `fork`, fed every byte after those fed here: the report is then the one a
    /// single checker fed every byte gives. False, with nothing taken in, when that cannot be
    /// exact.
    pub(crate) fn absorb(&mut self, fork: Fork<'p>) -> bool {
        if !self.at_record_start() {
            return false;
        }
        let Body::Delimited { text, check } = &mut self.body else {
            unreachable!("at_record_start holds only for delimited bodies");
        };
        // A fork tracks the encoding exactly when this checker does.
        let same_text = matches!(
            (&*text, &fork.tracker),
            (Text::EightBit(_), Some(_)) | (Text::Utf8, None)
        );
        if !same_text || !check.absorb(*fork.check) {
            return false;
        }
        if let (Text::EightBit(tracker), Some(later)) = (text, fork.tracker) {
            tracker.absorb(later);
        }
        self.bytes += fork.bytes;
        true
    }

    /// The verdict, once the body has ended (or [`Flow::Stop`] was returned).
    pub fn finish(mut self) -> FileReport {
        if let Body::Head(head) = &mut self.body {
            let head = std::mem::take(head);
            if self.bytes <= MAX_BYTES {
                self.start(&head);
                self.feed_body(&head);
            }
        }
        let mut report = self.report;
        report.details.bytes = Some(self.bytes);
        if let Some(problem) = size_problem(self.bytes, &self.options) {
            report.problems = vec![problem];
            return report;
        }
        // Every problem of the body goes through one bounded collector.
        let mut problems = Problems::new();
        match self.body {
            Body::Head(_) => unreachable!("started above"),
            Body::Refused(problem) => problems.push(problem),
            Body::Json { tracker, check } => {
                let (ems, rows, found) = check.finish();
                let encoding = tracker.finish();
                report.csv_encoding = encoding.label(self.bom).to_owned();
                report.ems = ems.unwrap_or_else(|| UNKNOWN_EMS.to_owned());
                report.csv_rows = rows;
                problems.extend(found);
                if encoding != Encoding::Utf8 && !problems.has_errors() {
                    problems.push(json_not_utf8(encoding));
                }
            }
            Body::Delimited { text, mut check } => {
                let (encoding, invalid) = text.finish(&mut check);
                problems.extend(invalid);
                let findings = check.finish();
                report.csv_encoding = encoding.label(self.bom).to_owned();
                report.csv_rows = findings.rows;
                if let Some(ems) = findings.ems {
                    report.ems = ems;
                }
                report.details.delimiter = findings.delimiter.map(|d| {
                    if d == b'\t' {
                        "tab".to_owned()
                    } else {
                        (d as char).to_string()
                    }
                });
                report.details.columns = findings.columns.map(|c| c as u64);
                problems.append(findings.problems);
            }
        }
        report.problems = problems.into_vec();
        report
    }

    /// Counts `len` more bytes of the file without checking them, once [`FileChecker::feed`] has
    /// returned [`Flow::Stop`]: the verdict is known, but the size rule and the report's size
    /// are about the whole file. A reader that knows the size (a browser's `File`) counts the
    /// rest at once instead of reading it. [`Flow::Stop`]: past the size limit, stop counting.
    pub fn count(&mut self, len: u64) -> Flow {
        self.bytes = self.bytes.saturating_add(len);
        if self.bytes > MAX_BYTES {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    /// Takes the next chunk of a file read to its end: fed while `checking` (which a verdict
    /// turns off), only counted after, so the size rule sees the real size. [`Flow::Stop`]:
    /// stop reading, the file is past the size limit. Start with `checking` true; once it is
    /// false, a reader that knows the file's size may [`FileChecker::count`] the rest instead.
    pub fn take(&mut self, chunk: &[u8], checking: &mut bool) -> Flow {
        if *checking {
            *checking = self.feed(chunk) == Flow::Continue;
            self.count(0)
        } else {
            self.count(chunk.len() as u64)
        }
    }

    /// Checks a whole file from a reader, in chunks; for local files and stdin.
    ///
    /// A second thread reads while this one checks, so the copy from the kernel overlaps the
    /// walk; three buffers go round between them, so memory stays flat whatever the file size.
    /// When the rules may run on a helper thread, they run on that one, between its reads
    /// (`spare`). Where there are no threads (WebAssembly), it reads on this thread.
    pub fn check_reader(
        key: &str,
        declared_len: Option<u64>,
        reader: impl std::io::Read + Send,
        options: CheckOptions<'p>,
        progress: impl FnMut(u64),
    ) -> std::io::Result<FileReport> {
        let checker = match FileChecker::begin(key, declared_len, options) {
            Begin::Done(report) => return Ok(report),
            Begin::Checking(checker) => checker,
        };
        if cfg!(target_family = "wasm") {
            checker.read_here(reader, progress)
        } else {
            checker.read_on_two_threads(reader, progress)
        }
    }

    /// [`FileChecker::check_reader`] on one thread: read a buffer, check it, read the next.
    fn read_here(
        mut self: Box<Self>,
        mut reader: impl std::io::Read,
        mut progress: impl FnMut(u64),
    ) -> std::io::Result<FileReport> {
        let mut buf = vec![0; READ_BUFFER_BYTES];
        let mut checking = true;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            progress(n as u64);
            if self.take(&buf[..n], &mut checking) == Flow::Stop {
                break;
            }
        }
        Ok(self.finish())
    }

    /// [`FileChecker::check_reader`] with a second thread reading ahead.
    fn read_on_two_threads(
        self: Box<Self>,
        mut reader: impl std::io::Read + Send,
        mut progress: impl FnMut(u64),
    ) -> std::io::Result<FileReport> {
        const BUFFERS: usize = 3;
        let mut checker = self;
        // Buffers travel with how much of them was filled, so they are never cleared or resized.
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<crate::spare::Filled>(BUFFERS);
        let (work_tx, work_rx) = std::sync::mpsc::channel::<crate::spare::Work>();
        for _ in 0..BUFFERS {
            work_tx
                .send(crate::spare::Work::Fill(vec![0; READ_BUFFER_BYTES]))
                .expect("the receiver is alive");
        }
        if checker.options.rules_thread {
            checker.spare = Some(Spare::Reader(work_tx.clone()));
        }
        std::thread::scope(|scope| {
            scope.spawn(move || crate::spare::read_and_serve(&mut reader, work_rx, full_tx));
            // Owned here, so that leaving early (an error, the size limit) drops both channel
            // ends and the checker with its rules: the reader, blocked on either, then stops
            // instead of waiting forever.
            let (full_rx, work_tx, mut checker) = (full_rx, work_tx, checker);
            let mut checking = true;
            for message in full_rx.iter() {
                let (buf, n) = message?;
                if n == 0 {
                    break;
                }
                progress(n as u64);
                if checker.take(&buf[..n], &mut checking) == Flow::Stop {
                    break;
                }
                // The reader may have stopped already (end of input): then no one needs it back.
                let _ = work_tx.send(crate::spare::Work::Fill(buf));
            }
            drop((full_rx, work_tx));
            Ok(checker.finish())
        })
    }
}

/// The rows after a line end of a file being checked, fed on another thread
/// ([`FileChecker::fork`]).
pub(crate) struct Fork<'p> {
    /// The encoding of the bytes fed here (none for UTF-8 with a byte order mark).
    tracker: Option<EightBitTracker>,
    check: Box<DelimitedCheck<'p>>,
    pub(crate) bytes: u64,
}

impl Fork<'_> {
    /// Readies the fork, once fed, to be joined (on the thread that fed it).
    pub(crate) fn settle(&mut self) {
        self.check.settle();
    }

    /// Says that about `bytes` bytes are to come ([`DelimitedCheck::expect_bytes`]).
    pub(crate) fn expect_bytes(&mut self, bytes: u64) {
        self.check.expect_bytes(bytes);
    }

    /// Feeds the next chunk. [`Flow::Stop`] means this fork cannot be joined (its check
    /// stopped: that verdict needs the rows before it): the rest is for the first checker.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Flow {
        self.bytes += chunk.len() as u64;
        if let Some(tracker) = &mut self.tracker {
            tracker.feed(chunk);
        }
        self.check.feed(chunk);
        if self.check.is_done() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}

fn json_not_utf8(encoding: Encoding) -> Problem {
    Problem::error(
        Code::JsonNotUtf8,
        format!(
            "This JSON file reads as {encoding}, but JSON must be UTF-8. Please upload the \
             snapshot exactly as it was exported."
        ),
    )
}

fn size_problem(len: u64, options: &CheckOptions<'_>) -> Option<Problem> {
    if len < MIN_BYTES && options.floor_applies() {
        Some(Problem::error(Code::TooSmall, TOO_SMALL))
    } else if len > MAX_BYTES {
        Some(Problem::error(Code::TooLarge, TOO_LARGE))
    } else {
        None
    }
}

fn transcode(
    decoder: &mut encoding_rs::Decoder,
    mut input: &[u8],
    last: bool,
    out: &mut [u8],
    malformed_at: &mut Option<u64>,
    read: &mut u64,
    check: &mut DelimitedCheck<'_>,
) {
    use encoding_rs::DecoderResult;
    loop {
        let (result, consumed, written) =
            decoder.decode_to_utf8_without_replacement(input, out, last);
        *read += consumed as u64;
        check.feed(&out[..written]);
        input = &input[consumed..];
        match result {
            DecoderResult::InputEmpty => return,
            DecoderResult::OutputFull => continue,
            DecoderResult::Malformed(_, _) => {
                *malformed_at = Some(*read);
                return;
            }
        }
    }
}

/// The message for an upload that lacks files its EMS sends together.
pub fn missing_files(expected: usize, found: usize) -> String {
    format!("Expected {expected} files, found {found}")
}

/// Applies the rules about an upload's files together, and decides whether staff need an email.
pub fn check_upload(mut file_set: Vec<FileReport>, profiles: &Profiles) -> UploadVerdict {
    let found = file_set.len();
    for file in &mut file_set {
        let expected = profiles
            .by_name(&file.ems)
            .map_or(1, |p| p.files_per_upload);
        if found < expected {
            // Through the collector, so a file already at its limit of errors stays there.
            let mut problems: Problems = std::mem::take(&mut file.problems).into_iter().collect();
            problems.push(Problem::error(
                Code::MissingFiles,
                missing_files(expected, found),
            ));
            file.problems = problems.into_vec();
        }
    }
    one_label_for_a_pair(&mut file_set, profiles);
    UploadVerdict {
        email_due: crate::report::email_due(&file_set),
        file_set,
    }
}

/// WhereDoIVote's import script reads both files of a two-file upload (Democracy Counts) with
/// one encoding: the stations file's, the one with fewer rows. When the pair is UTF-8 and only
/// one file has a byte order mark, both get `utf-8-sig`, which reads UTF-8 with or without it.
/// Otherwise the file the import would misread gets a warning: no Python codec reads UTF-16 both
/// with and without a mark (`utf-16` refuses a stream without one, `utf-16le` keeps the mark in
/// the first header name), and an 8-bit label misreads text in another.
fn one_label_for_a_pair(file_set: &mut [FileReport], profiles: &Profiles) {
    let [a, b] = file_set else { return };
    let pair = a.ems == b.ems
        && profiles
            .by_name(&a.ems)
            .is_some_and(|p| p.files_per_upload == 2);
    if !pair
        || a.csv_encoding == b.csv_encoding
        || a.csv_encoding.is_empty()
        || b.csv_encoding.is_empty()
    {
        return;
    }
    let shared = match (a.csv_encoding.as_str(), b.csv_encoding.as_str()) {
        ("utf-8", "utf-8-sig") | ("utf-8-sig", "utf-8") => Some("utf-8-sig"),
        _ => None,
    };
    if let Some(label) = shared {
        a.csv_encoding = label.to_owned();
        b.csv_encoding = label.to_owned();
        return;
    }
    let (stations, other) = if b.csv_rows < a.csv_rows {
        (b, a)
    } else {
        (a, b)
    };
    let mut problems: Problems = std::mem::take(&mut other.problems).into_iter().collect();
    problems.push(Problem::warning(
        Code::PairEncodingsDiffer,
        format!(
            "This file is {} text, but {} is {}, and WhereDoIVote imports both files of the \
             pair as {}: please export both files from your EMS with the same settings.",
            other.csv_encoding,
            crate::text::quote(key_name(&stations.key)),
            stations.csv_encoding,
            stations.csv_encoding,
        ),
    ));
    other.problems = problems.into_vec();
}

/// The file name at the end of a key.
fn key_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_bytes(key: &str, bytes: &[u8], chunk: usize, council: Option<&str>) -> FileReport {
        let options = CheckOptions {
            council: council.map(str::to_owned),
            ..CheckOptions::default()
        };
        check_bytes_with(key, bytes, chunk, options)
    }

    fn check_bytes_with(
        key: &str,
        bytes: &[u8],
        chunk: usize,
        options: CheckOptions<'_>,
    ) -> FileReport {
        let mut checker = match FileChecker::begin(key, None, options) {
            Begin::Done(r) => return r,
            Begin::Checking(c) => c,
        };
        for piece in bytes.chunks(chunk) {
            if checker.feed(piece) == Flow::Stop {
                break;
            }
        }
        checker.finish()
    }

    /// A file's report with the rules inline, then on the helper thread fed in `chunk`-byte
    /// pieces, through the stream reader, and read on one thread; the upload's date and
    /// council, so every rule binds.
    fn with_and_without_rules_thread(key: &str, bytes: &[u8], chunk: usize) -> Vec<FileReport> {
        let options = |rules_thread| CheckOptions {
            election_date: "2024-05-02".parse().ok(),
            // Exempt from the size floor, so small files are checked too.
            council: Some("IOS".to_owned()),
            rules_thread,
            ..CheckOptions::default()
        };
        let chunked = |rules_thread| check_bytes_with(key, bytes, chunk, options(rules_thread));
        let read = FileChecker::check_reader(key, None, bytes, options(true), |_| {}).unwrap();
        // As WebAssembly reads it: on one thread.
        let here = match FileChecker::begin(key, None, options(false)) {
            Begin::Done(report) => report,
            Begin::Checking(checker) => checker.read_here(bytes, |_| {}).unwrap(),
        };
        vec![chunked(false), chunked(true), read, here]
    }

    /// `bytes` with the rows after its first line repeated until it is `at_least` bytes long.
    fn repeat_rows(bytes: &[u8], at_least: usize) -> Vec<u8> {
        let body_from = memchr::memchr(b'\n', bytes).map_or(bytes.len(), |i| i + 1);
        let mut long = bytes.to_vec();
        while !bytes[body_from..].is_empty() && long.len() < at_least {
            long.extend_from_slice(&bytes[body_from..]);
        }
        long
    }

    /// A file's reports checked in parts ([`parts`]), once for each list of cut offsets in
    /// `plans`, read `buffer` bytes at a time; and how many parts were joined, of how many.
    fn in_parts(
        key: &str,
        bytes: &[u8],
        plans: &[Vec<u64>],
        buffer: usize,
    ) -> (Vec<FileReport>, usize, usize) {
        crate::parts::testing::reports_in_parts(key, bytes, plans, buffer, || CheckOptions {
            election_date: "2024-05-02".parse().ok(),
            council: Some("IOS".to_owned()),
            rules_thread: true,
            ..CheckOptions::default()
        })
    }

    fn assert_all_equal(reports: &[FileReport], what: &str) {
        for other in &reports[1..] {
            assert_eq!(other, &reports[0], "{what}");
        }
    }

    #[test]
    fn every_fixture_gets_the_same_report_with_the_rules_on_a_helper_thread() {
        let mut files = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/uploads"
        ))];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        assert!(files.len() > 40, "the fixtures are found");
        let (mut warned, mut joined) = (0, 0);
        for path in files {
            let key = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap();
            // In parts, as the fixture's rows repeated past the first 8 KB: only then is the
            // header read before the first cut. Cut once at each eighth, and every 3 KB past
            // the first 9 KB.
            let long = repeat_rows(&bytes, 40_000);
            let len = long.len() as u64;
            let mut plans: Vec<Vec<u64>> = (1..8).map(|i| vec![len * i / 8]).collect();
            plans.push((3..).map(|k| k * 3000).take_while(|&o| o < len).collect());
            let whole = with_and_without_rules_thread(&key, &long, 4096);
            let (mut in_parts, n, _) = in_parts(&key, &long, &plans, 1024);
            joined += n;
            in_parts.insert(0, whole[2].clone());
            assert_all_equal(&in_parts, &format!("{} repeated, in parts", path.display()));
            for chunk in [7, 4096] {
                let reports = with_and_without_rules_thread(&key, &bytes, chunk);
                assert_all_equal(
                    &reports,
                    &format!("{} in {chunk}-byte pieces", path.display()),
                );
                warned += usize::from(reports[0].problems.iter().any(|p| {
                    [
                        "malformed-postcode",
                        "uprn-duplicate",
                        "uprn-rounded",
                        "uprn-scientific-notation",
                    ]
                    .contains(&p.code.as_str())
                }));
            }
        }
        assert!(
            warned > 0,
            "some fixture has a rule's warning, so the rules are compared"
        );
        assert!(
            joined > 20,
            "parts were joined {joined} times, so joining is compared"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::testing::cases(200)))]

        /// An Xpress DC file with arbitrary damage (quoted line breaks, short rows, NULs, bad
        /// postcodes and UPRNs, non-UTF-8 bytes) gets the same report whether its rules run
        /// inline or on the helper thread, in batches that end anywhere. Damage is rare (one row
        /// in a thousand), so most files run past the first batch before a NUL or a stray quote
        /// ends the walk; repeated UPRNs make every row count in a warning.
        #[test]
        fn a_damaged_file_gets_the_same_report_with_the_rules_on_a_helper_thread(
            rows in proptest::collection::vec(
                (0usize..6, proptest::option::weighted(0.001, proptest::sample::select(vec![
                    "x", "\"a\nb\"", "\"q\"\"\"", "\r", "\0", "caf\u{e9}", "\u{81}",
                    "N3 2PU", "bad", ",", "\"", "=\"a\nb\"", "=1E+11", "=100000", "=",
                ]))),
                0..5000,
            ),
            chunk in proptest::prop_oneof![1usize..64, 64usize..70000],
            middles in proptest::collection::vec(0.0f64..1.0, 1..4),
            buffer in proptest::prop_oneof![64usize..4096, 4096usize..300_000],
        ) {
            let mut text = String::from(
                "ElectionDate,Property_URN,AddressLine1,Post_Code,Polling_Place_Postcode,\
                 Polling_Place_UPRN\n",
            );
            for (k, (col, damage)) in rows.iter().enumerate() {
                let mut cells = [
                    "02/05/2024".to_owned(),
                    // Repeats in a unique column: the warning counts them, so every row shows.
                    format!("{}", 100_001 + k % 1000),
                    format!("\"{k} Buttercup Row, Marlfield\""),
                    "HA8 6NB".to_owned(),
                    "HA8 6EZ".to_owned(),
                    "800200000101".to_owned(),
                ];
                // Damage is added to a cell, or replaces it (`=`).
                if let (Some(cell), Some(damage)) = (cells.get_mut(*col), damage) {
                    match damage.strip_prefix('=') {
                        Some(value) => *cell = value.to_owned(),
                        None => cell.push_str(damage),
                    }
                }
                text.push_str(&cells.join(","));
                text.push('\n');
            }
            // Latin-1 bytes, written as such.
            let bytes: Vec<u8> = text
                .chars()
                .map(|c| match c {
                    '\u{e9}' => 0xe9,
                    '\u{81}' => 0x81,
                    c => c as u8,
                })
                .collect();
            let mut reports = with_and_without_rules_thread("damaged.csv", &bytes, chunk);
            let len = bytes.len() as f64;
            // Cut once, and into parts of any size.
            let mut plans: Vec<Vec<u64>> = middles.iter().map(|m| vec![(m * len) as u64]).collect();
            plans.push(crate::parts::testing::every(len as u64, (middles[0] * len / 4.0) as u64 + 100));
            reports.extend(in_parts("damaged.csv", &bytes, &plans, buffer).0);
            assert_all_equal(&reports, "a damaged file, whole and in parts");
        }
    }

    fn padded_csv(header: &str, row: &str, rows: usize) -> String {
        let mut s = format!("{header}\r\n");
        for _ in 0..rows {
            s.push_str(row);
            s.push_str("\r\n");
        }
        s
    }

    #[test]
    fn declared_size_out_of_bounds_needs_no_body() {
        for (len, msg) in [(10, TOO_SMALL), (MAX_BYTES + 1, TOO_LARGE)] {
            let Begin::Done(r) = FileChecker::begin("a.csv", Some(len), CheckOptions::default())
            else {
                panic!("expected a verdict from the size alone");
            };
            assert_eq!(r.errors_text(), msg);
            assert_eq!(r.csv_encoding, "");
            assert_eq!(r.ems, "unknown");
        }
    }

    #[test]
    fn the_size_floor_spares_exempt_councils() {
        let small = "HouseID,a,b\r\n1,2,3\r\n";
        let r = check_bytes("x.csv", small.as_bytes(), 3, None);
        assert_eq!(r.errors_text(), TOO_SMALL);
        let r = check_bytes("x.csv", small.as_bytes(), 3, Some("ios"));
        assert!(r.csv_valid(), "{:?}", r.problems);
        assert_eq!(r.csv_rows, 2);
        assert_eq!(r.ems, "Idox Eros (Halarose)");
    }

    #[test]
    fn utf16_with_and_without_bom_is_read() {
        let text = padded_csv(
            "\"Add1\",\"PostCode\",\"Xordinate\"",
            "\"1 Beaumont Place\",\"EN5 4PR\",\"524755.48\"",
            40,
        );
        let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut be = vec![0xFE, 0xFF];
        be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        // Without a byte order mark the label names the byte order; with one, `utf-16`, the
        // codec that reads the mark and strips it.
        for (bytes, enc) in [(le, "utf-16le"), (be, "utf-16")] {
            for chunk in [1, 3, 4096] {
                let r = check_bytes("dc.csv", &bytes, chunk, None);
                assert_eq!(r.csv_encoding, enc);
                assert_eq!(r.ems, "Democracy Counts");
                assert_eq!(r.csv_rows, 41);
                assert!(r.csv_valid(), "{:?}", r.problems);
            }
        }
    }

    #[test]
    fn a_utf8_bom_is_stripped_before_the_header() {
        let mut bytes = vec![0xEF, 0xBB, 0xBF];
        bytes.extend(padded_csv("ElectionDate,b,c", "23/05/2019,2,3", 100).bytes());
        let r = check_bytes("x.csv", &bytes, 2, None);
        assert_eq!(r.ems, "Xpress DC");
        // The label WhereDoIVote's import script opens the file with: `utf-8` would keep the
        // mark in the first header name.
        assert_eq!(r.csv_encoding, "utf-8-sig");
    }

    #[test]
    fn a_democracy_counts_pair_gets_one_label_that_reads_both_files() {
        let dc = |key: &str, rows: u64, encoding: &str| {
            let mut r = FileReport::new(key);
            r.ems = "Democracy Counts".into();
            r.csv_rows = rows;
            r.csv_encoding = encoding.into();
            r
        };
        let p = Profiles::embedded();
        let labels = |v: &UploadVerdict| -> Vec<String> {
            v.file_set.iter().map(|f| f.csv_encoding.clone()).collect()
        };
        for (a, b) in [("utf-8-sig", "utf-8"), ("utf-8", "utf-8-sig")] {
            let v = check_upload(vec![dc("u/s.csv", 10, a), dc("u/d.csv", 20, b)], p);
            assert_eq!(labels(&v), ["utf-8-sig", "utf-8-sig"]);
            assert!(v.file_set.iter().all(|f| f.problems.is_empty()));
        }
        // No label reads both: the file the import would misread is warned, labels kept.
        let v = check_upload(
            vec![dc("u/d.csv", 20, "utf-16le"), dc("u/s.csv", 10, "utf-16")],
            p,
        );
        assert_eq!(labels(&v), ["utf-16le", "utf-16"]);
        assert!(v.file_set[1].problems.is_empty());
        let warning = &v.file_set[0].problems[0];
        assert_eq!(warning.code, "pair-encodings-differ");
        assert_eq!(
            warning.message,
            "This file is utf-16le text, but \"s.csv\" is utf-16, and WhereDoIVote imports \
             both files of the pair as utf-16: please export both files from your EMS with the \
             same settings."
        );
        assert!(v.all_valid());
        // One-file uploads keep their label.
        let mut one = dc("u/x.csv", 10, "utf-8-sig");
        one.ems = "Xpress DC".into();
        assert_eq!(labels(&check_upload(vec![one], p)), ["utf-8-sig"]);
    }

    #[test]
    fn an_excel_file_named_csv_is_called_what_it_is() {
        let mut bytes = b"PK\x03\x04\x14\x00[Content_Types].xml".to_vec();
        bytes.resize(5000, 7);
        let r = check_bytes("stations.csv", &bytes, 1000, None);
        assert!(
            r.errors_text().contains("Excel workbook"),
            "{}",
            r.errors_text()
        );
    }

    #[test]
    fn the_encoding_is_judged_on_the_whole_file_even_after_a_failing_row() {
        let mut text = padded_csv("a,b,c", "1,2,3", 200).into_bytes();
        text.extend_from_slice(b"1,2\r\n");
        text.extend_from_slice(b"caf\xe9,2,3\r\n");
        let r = check_bytes("x.csv", &text, 64, None);
        assert_eq!(r.csv_encoding, "windows-1252");
        assert_eq!(
            r.errors_text(),
            "Incomplete file: Expected 3 columns on row 202 found 2"
        );
        assert_eq!(r.csv_rows, 202);
    }

    #[test]
    fn the_lone_democracy_counts_file() {
        let dc = |key: &str, valid: bool| {
            let mut r = FileReport::new(key);
            r.ems = "Democracy Counts".into();
            if !valid {
                r.problems
                    .push(Problem::error(Code::IncompleteRow, "broken"));
            }
            r
        };
        let p = Profiles::embedded();
        let v = check_upload(vec![dc("a", true)], p);
        assert_eq!(v.file_set[0].errors_text(), "Expected 2 files, found 1");
        assert!(!v.email_due);
        let v = check_upload(vec![dc("a", false)], p);
        assert_eq!(
            v.file_set[0].errors_text(),
            "broken\nExpected 2 files, found 1"
        );
        assert!(v.email_due);
        let v = check_upload(vec![dc("a", true), dc("b", true)], p);
        assert!(v.all_valid() && !v.email_due);
        let v = check_upload(vec![dc("a", true), dc("b", false)], p);
        assert!(v.email_due);
    }
}
