//! The check engine ([`wdiv_checks`]) for the browser and Node, through `wasm-bindgen`.
//!
//! JavaScript drives it a file at a time, as the Lambda does: a [`FileCheck`] is made with the
//! file's name, its size and the upload's options, fed the file's bytes in chunks as they are
//! read (so a 150 MB file is never held whole), and finished for the file's report. Then
//! [`check_upload`] applies the rules about the upload's files together and gives the upload's
//! report, the JSON that the native `check --json` prints.
//!
//! Values cross the boundary as JSON text (options in, reports out), parsed and written by the
//! engine's own serde types, so the wire is the engine's and nothing is translated twice.
//! `web/checks.mjs` (the module the site imports), `web/worker.mjs` and `web/cli.mjs` are the
//! JavaScript side; `docs/browser.md` describes both.

use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wdiv_checks::{
    refusals, Begin, CheckOptions, Date, FileChecker, FileReport, Flow, Limits, Profiles,
    UploadVerdict, ACCEPTED_TYPES, DEFAULT_SIZE_FLOOR_EXEMPT,
};

/// The options of a check, as JSON from JavaScript (every field may be left out).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Options {
    /// The council the upload is for (its id, e.g. `E07000223`, or `IOS`).
    council: Option<String>,
    /// The election the upload is for, `YYYY-MM-DD`.
    election_date: Option<String>,
    /// Councils exempt from the 1 KB floor; the service's default (`IOS`) when left out.
    size_floor_exempt: Option<Vec<String>>,
    /// Every file of the upload (this one among them), by name and size: given, the Lambda's
    /// file-set rules are applied before a byte is read (refused names and types, the count and
    /// size limits, the length of the name WhereDoIVote stores). Left out, they are not (as the
    /// native `check`, which judges files, not an upload).
    upload_files: Option<Vec<UploadFile>>,
}

/// One file of the upload, for the file-set rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadFile {
    name: String,
    size: f64,
}

/// WhereDoIVote's timestamp in an upload's folder (`datetime.now().strftime(
/// "%Y-%m-%dT%H:%M:%S.%f")` in its `file_uploads/views.py`): only its length matters here, for
/// the longest file name the site can store.
const SITE_TIMESTAMP: &str = "2000-01-01T00:00:00.000000";

/// A council id as long as a GSS code, for the length rule when no council is given.
const GSS_LIKE: &str = "E00000000";

impl Options {
    fn parse(json: &str) -> Result<Options, JsError> {
        if json.trim().is_empty() {
            return Ok(Options::default());
        }
        serde_json::from_str(json).map_err(|e| JsError::new(&format!("bad options: {e}")))
    }

    fn election_date(&self) -> Result<Option<Date>, JsError> {
        self.election_date
            .as_deref()
            .map(|d| d.parse::<Date>().map_err(|e| JsError::new(&e)))
            .transpose()
    }

    fn engine_options(&self) -> Result<CheckOptions<'static>, JsError> {
        Ok(CheckOptions {
            profiles: Profiles::embedded(),
            council: self.council.clone(),
            election_date: self.election_date()?,
            size_floor_exempt: self.size_floor_exempt.clone().unwrap_or_else(|| {
                DEFAULT_SIZE_FLOOR_EXEMPT
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            }),
            // No threads here: the engine reads, walks and applies the rules on this one.
            rules_thread: false,
        })
    }

    /// The upload's folder as WhereDoIVote will name it: `{council}/{date}/{timestamp}/`.
    fn folder(&self) -> String {
        format!(
            "{}/{}/{SITE_TIMESTAMP}/",
            self.council.as_deref().unwrap_or(GSS_LIKE),
            self.election_date.as_deref().unwrap_or("2000-01-01"),
        )
    }

    /// Why the file `name` is refused unread by the upload's file-set rules, if it is.
    fn refusal(&self, name: &str) -> Option<wdiv_checks::Problem> {
        let files = self.upload_files.as_ref()?;
        let folder = self.folder();
        let keys: Vec<String> = files
            .iter()
            .map(|f| format!("{folder}{}", f.name))
            .collect();
        let listing: Vec<(&str, u64)> = keys
            .iter()
            .zip(files)
            .map(|(key, f)| (key.as_str(), bytes(f.size)))
            .collect();
        let verdicts = refusals(&folder, &listing, Limits::default());
        files
            .iter()
            .zip(verdicts)
            .find(|(f, _)| f.name == name)
            .and_then(|(_, refusal)| refusal)
    }
}

/// A size from JavaScript (a `Number`): negative or not a number reads as 0.
fn bytes(size: f64) -> u64 {
    if size.is_finite() && size > 0.0 {
        size as u64
    } else {
        0
    }
}

/// The check of one file, fed its bytes in chunks.
#[wasm_bindgen]
pub struct FileCheck {
    state: State,
}

enum State {
    /// Reading the body.
    Checking {
        checker: Box<FileChecker<'static>>,
        /// False once the verdict is known: the rest is only counted.
        checking: bool,
    },
    /// The verdict was known before a byte was read (refused, or its size out of bounds).
    Known(FileReport),
    /// `finish` was called.
    Finished,
}

#[wasm_bindgen]
impl FileCheck {
    /// Starts checking the file `name` of `size` bytes (`undefined` when unknown, as for a
    /// stream), with `options` as JSON: `{"council", "electionDate", "sizeFloorExempt",
    /// "uploadFiles": [{"name", "size"}]}`, each optional.
    #[wasm_bindgen(constructor)]
    pub fn new(name: &str, size: Option<f64>, options: &str) -> Result<FileCheck, JsError> {
        let options = Options::parse(options)?;
        if let Some(problem) = options.refusal(name) {
            return Ok(FileCheck {
                state: State::Known(FileReport::refused(name, problem)),
            });
        }
        let state = match FileChecker::begin(name, size.map(bytes), options.engine_options()?) {
            Begin::Done(report) => State::Known(report),
            Begin::Checking(checker) => State::Checking {
                checker,
                checking: true,
            },
        };
        Ok(FileCheck { state })
    }

    /// Whether the bytes are wanted: false when the verdict was known without them, so the
    /// file need not be read at all.
    #[wasm_bindgen(js_name = wantsBytes)]
    pub fn wants_bytes(&self) -> bool {
        matches!(self.state, State::Checking { checking: true, .. })
    }

    /// Feeds the next chunk of the file. Returns whether to go on feeding: false once the
    /// verdict is known (then [`FileCheck::count`] the rest, or read it and count it) or the
    /// file is past the size limit.
    pub fn feed(&mut self, chunk: &[u8]) -> bool {
        let State::Checking { checker, checking } = &mut self.state else {
            return false;
        };
        // Past the size limit, nothing more is wanted, not even counted.
        let within = checker.take(chunk, checking) == Flow::Continue;
        *checking && within
    }

    /// Counts `len` more bytes of the file without checking them, once the verdict is known,
    /// so the size rule and the report's size are about the whole file. Returns whether more
    /// may be counted (false past the size limit).
    pub fn count(&mut self, len: f64) -> bool {
        match &mut self.state {
            State::Checking { checker, .. } => checker.count(bytes(len)) == Flow::Continue,
            _ => false,
        }
    }

    /// The file's report, as JSON (the wire format, with its problems); call once, after the
    /// last chunk.
    pub fn finish(&mut self) -> Result<String, JsError> {
        let report = match std::mem::replace(&mut self.state, State::Finished) {
            State::Checking { checker, .. } => checker.finish(),
            State::Known(report) => report,
            State::Finished => return Err(JsError::new("this file's check has already finished")),
        };
        serde_json::to_string(&report).map_err(|e| JsError::new(&e.to_string()))
    }
}

/// The upload's report from its files' reports (a JSON array of what [`FileCheck::finish`]
/// gave, in the upload's order), as the native `check --json` prints it.
#[wasm_bindgen(js_name = checkUpload)]
pub fn check_upload(reports: &str) -> Result<String, JsError> {
    let file_set: Vec<FileReport> = serde_json::from_str(reports)
        .map_err(|e| JsError::new(&format!("bad file reports: {e}")))?;
    let verdict: UploadVerdict = wdiv_checks::check_upload(file_set, Profiles::embedded());
    serde_json::to_string_pretty(&verdict).map_err(|e| JsError::new(&e.to_string()))
}

/// The engine's version (the `wdiv-checks` crate's), to show beside a verdict.
#[wasm_bindgen(js_name = engineVersion)]
pub fn engine_version() -> String {
    wdiv_checks::VERSION.to_owned()
}

/// The file-set rules the checks assume, as JSON: `{"maxFiles", "maxBytes", "accepted"}`, the
/// service's default limits and the accepted extensions (without their dot), for a page to say
/// what it accepts.
#[wasm_bindgen(js_name = uploadLimits)]
pub fn upload_limits() -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Rules {
        max_files: usize,
        max_bytes: u64,
        accepted: Vec<&'static str>,
    }
    let limits = Limits::default();
    let rules = Rules {
        max_files: limits.max_files,
        max_bytes: limits.max_bytes,
        accepted: ACCEPTED_TYPES.iter().map(|(ext, _)| *ext).collect(),
    };
    serde_json::to_string(&rules).expect("plain numbers and strings serialise")
}

/// Checks `options` (JSON, as for [`FileCheck::new`]) before any file is read, with the
/// engine's own message for a value it refuses (an election date that is not a real
/// `YYYY-MM-DD`, an unknown field).
#[wasm_bindgen(js_name = checkOptions)]
pub fn check_options(options: &str) -> Result<(), JsError> {
    Options::parse(options)?.engine_options().map(|_| ())
}

/// The message of the last panic, if the engine panicked (a bug): WebAssembly's trap says only
/// "unreachable", so `web/engine.mjs` asks for this and shows it instead.
#[wasm_bindgen(js_name = lastPanic)]
pub fn last_panic() -> Option<String> {
    PANIC.with(|p| p.borrow().clone())
}

thread_local! {
    static PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Keeps a panic's message for [`last_panic`]; called once when the module starts.
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string();
        PANIC.with(|p| *p.borrow_mut() = Some(message));
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(json: &str) -> Options {
        Options::parse(json).unwrap()
    }

    #[test]
    fn the_folder_is_as_long_as_the_sites() {
        let o = options(r#"{"council":"E07000223","electionDate":"2024-05-02"}"#);
        // Council, date and the site's microsecond timestamp, each with its slash.
        assert_eq!(o.folder().len(), 10 + 11 + 27);
        assert_eq!(options("").folder().len(), o.folder().len());
    }

    #[test]
    fn a_refused_name_is_refused_and_the_others_of_the_upload_are_not() {
        let o = options(
            r#"{"uploadFiles":[{"name":"stations.csv","size":5000},{"name":"book.xlsx","size":5000}]}"#,
        );
        assert!(o.refusal("stations.csv").is_none());
        let problem = o.refusal("book.xlsx").unwrap();
        assert_eq!(problem.code, "file-type-not-accepted");
    }

    #[test]
    fn too_many_files_refuse_every_file() {
        let files: Vec<String> = (0..11)
            .map(|i| format!(r#"{{"name":"f{i}.csv","size":2000}}"#))
            .collect();
        let o = options(&format!(r#"{{"uploadFiles":[{}]}}"#, files.join(",")));
        assert_eq!(o.refusal("f0.csv").unwrap().code, "too-many-files");
    }

    #[test]
    fn no_upload_files_means_no_file_set_rules() {
        assert!(options("{}").refusal("book.xlsx").is_none());
    }
}
