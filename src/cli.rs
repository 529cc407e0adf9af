//! The command line: `check` runs the checks on local files; `run` and `simulate` drive the whole
//! pipeline, as the Lambda does, from an event or from files.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use wdiv_checks::{CheckOptions, Date, FileChecker, Profiles};
use crate::event::{self, EventError};
use crate::execute::StepResult;
use crate::pipeline::{self, EventOutcome, Services};
use wdiv_checks::{FileReport, UploadVerdict};
use crate::settings::{self, Context, RunMode, SettingsError, StorageMode};
use crate::storage::{LocalStorage, Overlay, StorageError};
use crate::upload::{KeyError, UploadKey};

/// Exit codes of the contract: 0 all pass, 1 any fails, 2 usage or I/O error.
pub const EXIT_PASS: u8 = 0;
pub const EXIT_FAIL: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// Files at least this big get a progress bar when stderr is a terminal.
const PROGRESS_FROM_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, Parser)]
#[command(
    name = "wdiv-s3-trigger",
    version,
    about = "Checks polling-station files uploaded to WhereDoIVote and acts on the verdict"
)]
pub struct Cli {
    /// A TOML settings file (environment variables win over it). Default: settings/local.toml
    /// when it exists.
    #[arg(long, global = true, value_name = "FILE", env = "WDIV_SETTINGS")]
    pub settings: Option<PathBuf>,
    /// Log what happens (info level) on stderr; RUST_LOG overrides.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the files of one upload, as the Lambda would, and print the verdict.
    Check(CheckArgs),
    /// Handle one S3 event as one Lambda invocation would.
    Run(RunArgs),
    /// Put files in the temp bucket as the website does, then fire one event per object as S3 does.
    Simulate(SimulateArgs),
    /// Accept an upload that fails its checks, as staff judge it: its errors are kept but
    /// overridden, and it takes the success path (issue, copies, report.json, webhook).
    Override(OverrideArgs),
    /// Run an upload's events again: from its prefix in the temp bucket, or from the OnFailure
    /// queue; locally, or on the deployed function (--invoke).
    Replay(crate::replay::ReplayArgs),
}

/// `--dry-run`, declared once and flattened into every command that can act: `run`,
/// `simulate`, `override` and `replay`.
#[derive(Debug, Args)]
pub struct RunModeArgs {
    /// Print the plan and do nothing (also DRY_RUN=true): no file put in the temp bucket, no
    /// effect, no invocation, no message deleted.
    #[arg(long)]
    dry_run: bool,
}

impl RunModeArgs {
    /// The run mode the settings decided, with `--dry-run` taken into it.
    pub fn apply(&self, settings: &mut settings::Settings) -> RunMode {
        if self.dry_run {
            settings.dry_run_requested();
        }
        settings.mode
    }
}

#[derive(Debug, Args)]
pub struct OverrideArgs {
    #[command(flatten)]
    pub mode: RunModeArgs,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
    /// Why the upload may go through although it fails the checks (required).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Who decides it (required).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// The upload, as its prefix in the temp bucket.
    #[arg(value_name = "s3://TEMP/PREFIX")]
    pub prefix: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub mode: RunModeArgs,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the metrics as CloudWatch EMF lines on stderr, as Lambda mode does on stdout.
    #[arg(long)]
    pub metrics: bool,
    /// The S3 event, as JSON; `-` reads it from stdin.
    #[arg(value_name = "EVENT.json|-")]
    pub event: PathBuf,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub mode: RunModeArgs,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the metrics as CloudWatch EMF lines on stderr, as Lambda mode does on stdout.
    #[arg(long)]
    pub metrics: bool,
    /// The council the upload is for, as its id (the first part of the key).
    #[arg(long, value_name = "ID")]
    pub council: String,
    /// The election the upload is for.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub election_date: Date,
    /// The files of the upload.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print the report as JSON (`{"file_set": [...], ...}`) instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// The council the upload is for (its id, as in the S3 key, e.g. E07000223 or IOS).
    #[arg(long, value_name = "ID")]
    pub council: Option<String>,
    /// The election the upload is for; Xpress DC rows with another ElectionDate are warned about.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub election_date: Option<Date>,
    /// Councils exempt from the 1 KB minimum size (comma-separated).
    #[arg(
        long,
        value_name = "IDS",
        env = "SIZE_FLOOR_EXEMPT_COUNCILS",
        value_delimiter = ',',
        default_value = "IOS"
    )]
    pub size_floor_exempt: Vec<String>,
    /// The files of the upload; `-` reads one file from stdin.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

fn parse_date(s: &str) -> Result<Date, String> {
    s.parse()
}

/// A failure of the command itself, not a verdict on a file.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is a directory; give the files of the upload instead")]
    IsDirectory { path: String },
    #[error("stdin (-) can be given only once")]
    StdinTwice,
    #[error("cannot write the output: {0}")]
    Write(#[source] std::io::Error),
    #[error("{0}")]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Client(#[from] crate::effects::ClientError),
    #[error("{path} has no file name")]
    NoFileName { path: String },
    #[error(transparent)]
    Override(#[from] crate::staff_override::OverrideError),
    #[error(transparent)]
    Replay(#[from] crate::replay::ReplayError),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init_cli(cli.verbose);
    let settings_file = cli.settings.clone();
    let result = match cli.command {
        Command::Check(args) => check(&args),
        Command::Run(args) => block_on(run(settings_file.as_deref(), &args)),
        Command::Simulate(args) => block_on(simulate(settings_file.as_deref(), &args)),
        Command::Override(args) => block_on(override_upload(settings_file.as_deref(), &args)),
        Command::Replay(args) => block_on(crate::replay::run(settings_file.as_deref(), &args)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", shown(&e.to_string()));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// An input of `check`: a file, or stdin.
enum Input {
    File {
        key: String,
        path: PathBuf,
        file: File,
        len: u64,
    },
    Stdin,
}

fn open_inputs(paths: &[PathBuf]) -> Result<Vec<Input>, CliError> {
    let mut stdin_seen = false;
    paths
        .iter()
        .map(|path| {
            let key = path.display().to_string();
            if key == "-" {
                if std::mem::replace(&mut stdin_seen, true) {
                    return Err(CliError::StdinTwice);
                }
                return Ok(Input::Stdin);
            }
            // The name may come with the file (a download): shown escaped, as in the table.
            let read_err = |source| CliError::Read {
                path: wdiv_checks::text::escape_control(&key),
                source,
            };
            let file = File::open(path).map_err(read_err)?;
            let meta = file.metadata().map_err(read_err)?;
            if meta.is_dir() {
                return Err(CliError::IsDirectory {
                    path: wdiv_checks::text::escape_control(&key),
                });
            }
            Ok(Input::File {
                key,
                path: path.clone(),
                file,
                len: meta.len(),
            })
        })
        .collect()
}

/// `check`: every file is opened first, so a typo is reported before any work is done.
pub fn check(args: &CheckArgs) -> Result<u8, CliError> {
    let inputs = open_inputs(&args.files)?;
    let options = CheckOptions {
        profiles: Profiles::embedded(),
        council: args.council.clone(),
        election_date: args.election_date,
        size_floor_exempt: args.size_floor_exempt.clone(),
        rules_thread: std::thread::available_parallelism().is_ok_and(|n| n.get() > 1),
    };
    let mut reports = Vec::with_capacity(inputs.len());
    for input in inputs {
        let report = match input {
            Input::File {
                key,
                path,
                file,
                len,
            } => {
                let progress = progress_bar(&key, Some(len));
                let report =
                    wdiv_checks::check_file(&key, &path, &file, len, options.clone(), |n| {
                        progress.inc(n)
                    })
                    .map_err(|source| CliError::Read {
                        path: wdiv_checks::text::escape_control(&key),
                        source,
                    })?;
                progress.finish_and_clear();
                report
            }
            Input::Stdin => {
                let progress = progress_bar("stdin", None);
                let stdin = std::io::stdin();
                let report = FileChecker::check_reader("-", None, stdin, options.clone(), |n| {
                    progress.inc(n)
                })
                .map_err(|source| CliError::Read {
                    path: "stdin".into(),
                    source,
                })?;
                progress.finish_and_clear();
                report
            }
        };
        reports.push(report);
    }
    let verdict = wdiv_checks::check_upload(reports, options.profiles);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &verdict).map_err(|e| CliError::Write(e.into()))?;
        writeln!(out).map_err(CliError::Write)?;
    } else {
        write_summary(&mut out, &verdict).map_err(CliError::Write)?;
    }
    out.flush().map_err(CliError::Write)?;
    Ok(if verdict.all_valid() {
        EXIT_PASS
    } else {
        EXIT_FAIL
    })
}

fn progress_bar(name: &str, len: Option<u64>) -> indicatif::ProgressBar {
    let big = len.is_none_or(|l| l >= PROGRESS_FROM_BYTES);
    if !big || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match len {
        Some(l) => indicatif::ProgressBar::new(l).with_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        ),
        None => indicatif::ProgressBar::new_spinner().with_style(
            indicatif::ProgressStyle::with_template("{msg} {spinner} {bytes} ({bytes_per_sec})")
                .expect("a valid template"),
        ),
    };
    bar.set_message(format!("checking {}", wdiv_checks::text::escape_control(name)));
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar
}

/// The readable verdict: one small table per file, then a line for the upload.
pub fn write_summary(out: &mut impl Write, verdict: &UploadVerdict) -> std::io::Result<()> {
    write_files(out, &verdict.file_set)
}

fn write_files(out: &mut impl Write, file_set: &[FileReport]) -> std::io::Result<()> {
    use wdiv_checks::text::escape_control;
    use console::style;
    for file in file_set {
        let status = if file.csv_valid() {
            style("PASS").green().bold()
        } else {
            style("FAIL").red().bold()
        };
        // Every string below came from the upload (its name, its cells) or depends on it: none
        // may reach the terminal with a control character in it (`ESC[2J`, a forged "PASS").
        writeln!(out, "{status}  {}", style(escape_control(&file.key)).bold())?;
        let field = |out: &mut dyn Write, name: &str, value: &str| {
            writeln!(out, "      {:<9} {value}", style(name).dim())
        };
        field(out, "EMS", &escape_control(&file.ems))?;
        field(out, "Rows", &escape_control(&rows_text(file)))?;
        let encoding = if file.csv_encoding.is_empty() {
            "-"
        } else {
            &file.csv_encoding
        };
        field(out, "Encoding", &escape_control(encoding))?;
        for (label, problems, colour) in [
            (
                "Errors",
                file.errors().collect::<Vec<_>>(),
                console::Color::Red,
            ),
            (
                "Warnings",
                file.warnings().collect(),
                console::Color::Yellow,
            ),
        ] {
            for (i, p) in problems.iter().enumerate() {
                let name = if i == 0 { label } else { "" };
                let overridden = if p.overridden { "[overridden] " } else { "" };
                let text = format!(
                    "{} {overridden}{}",
                    style("•").fg(colour),
                    message_text(&p.message)
                );
                field(out, name, &text)?;
            }
        }
        writeln!(out)?;
    }
    let total = file_set.len();
    let failed = file_set.iter().filter(|f| !f.csv_valid()).count();
    let files = if total == 1 { "file" } else { "files" };
    if failed == 0 {
        writeln!(
            out,
            "{} {total} {files} checked, all passed.",
            style("✔").green()
        )
    } else {
        writeln!(
            out,
            "{} {total} {files} checked: {} passed, {failed} failed.",
            style("✘").red(),
            total - failed
        )
    }
}

/// A message as the terminal shows it. Messages are made one line, with hidden characters
/// escaped, when they are made ([`wdiv_checks::Problem::error`]); escaping them again would
/// double the backslashes of those escapes, so only a hidden character that still got in is
/// escaped here.
fn message_text(message: &str) -> std::borrow::Cow<'_, str> {
    if message.chars().any(wdiv_checks::text::is_hidden) {
        wdiv_checks::text::escape_control(message).into()
    } else {
        message.into()
    }
}

fn rows_text(file: &FileReport) -> String {
    let mut text = file.csv_rows.to_string();
    let mut extra = Vec::new();
    if let Some(cols) = file.details.columns {
        extra.push(format!("{cols} columns"));
    }
    match file.details.delimiter.as_deref() {
        Some("tab") => extra.push("tab-separated".into()),
        Some(",") => extra.push("comma-separated".into()),
        Some(other) => extra.push(format!("'{other}'-separated")),
        None => {}
    }
    if !extra.is_empty() {
        text.push_str(&format!(" ({})", extra.join(", ")));
    }
    text
}

fn block_on(work: impl std::future::Future<Output = Result<u8, CliError>>) -> Result<u8, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::Write)?
        .block_on(work)
}

/// The settings, with `ssm:` values read from SSM.
pub(crate) async fn load_settings(
    file: Option<&std::path::Path>,
) -> Result<settings::Settings, CliError> {
    let settings = settings::load_resolved(file, &settings::process_env(), Context::Cli).await?;
    tracing::info!(?settings, "settings");
    Ok(settings)
}

/// What every acting command starts with: the clients, the run mode (the settings' own, with
/// `--dry-run` taken into it), and Sentry's guard, to keep until the end.
pub(crate) async fn start(
    mut settings: settings::Settings,
    mode: &RunModeArgs,
) -> Result<(Services, RunMode, Option<sentry::ClientInitGuard>), CliError> {
    let mode = mode.apply(&mut settings);
    let sentry = crate::telemetry::init(&settings);
    Ok((Services::new(settings).await?, mode, sentry))
}

/// `--metrics`: EMF lines on stderr, so that stdout keeps the command's output.
fn metrics_sink(on: bool) -> crate::metrics::Sink {
    match on {
        true => crate::metrics::Sink::Stderr,
        false => crate::metrics::Sink::Off,
    }
}

/// `run`: one invocation, from an event file or stdin.
pub async fn run(settings_file: Option<&std::path::Path>, args: &RunArgs) -> Result<u8, CliError> {
    let settings = load_settings(settings_file).await?;
    let raw = if args.event.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(|source| {
            CliError::Read {
                path: "stdin".into(),
                source,
            }
        })?;
        buf
    } else {
        std::fs::read(&args.event).map_err(|source| CliError::Read {
            path: args.event.display().to_string(),
            source,
        })?
    };
    let event = event::parse(&raw)?;
    let (mut services, mode, _sentry) = start(settings, &args.mode).await?;
    services.metrics.sink = metrics_sink(args.metrics);
    let outcome = pipeline::handle_event(&services, &event, services.deadline()).await;
    report_outcome(&[outcome], mode, args.json)
}

/// `simulate`: the website's upload, then S3's events, one per object.
pub async fn simulate(
    settings_file: Option<&std::path::Path>,
    args: &SimulateArgs,
) -> Result<u8, CliError> {
    let settings = load_settings(settings_file).await?;
    // The key's timestamp, as the website writes it.
    let timestamp = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string();
    let mut staged = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| CliError::NoFileName {
                path: path.display().to_string(),
            })?;
        let key = format!("{}/{}/{timestamp}/{name}", args.council, args.election_date);
        UploadKey::parse(&key)?;
        let bytes = std::fs::read(path).map_err(|source| CliError::Read {
            path: path.display().to_string(),
            source,
        })?;
        staged.push((key, bytes::Bytes::from(bytes)));
    }
    let temp_bucket = settings.temp_bucket.clone();
    let (mut services, mode, _sentry) = start(settings, &args.mode).await?;
    services.metrics.sink = metrics_sink(args.metrics);
    if let StorageMode::Local(root) = &services.settings.storage {
        if !mode.is_dry_run() {
            let local = LocalStorage::new(root);
            for bucket in [
                &services.settings.temp_bucket,
                &services.settings.final_bucket,
            ] {
                local
                    .create_bucket(bucket)
                    .map_err(|source| CliError::Read {
                        path: root.join(bucket).display().to_string(),
                        source,
                    })?;
            }
        }
    }
    if mode.is_dry_run() {
        services.clients.storage = std::sync::Arc::new(Overlay::new(
            services.clients.storage.clone(),
            &temp_bucket,
            staged.clone(),
        ));
    } else {
        for (key, bytes) in &staged {
            services
                .storage()
                .put(
                    &temp_bucket,
                    key,
                    bytes.clone(),
                    "application/octet-stream",
                    crate::storage::PutCondition::Always,
                )
                .await?;
            tracing::info!(key, "put in the temp bucket");
        }
    }
    let mut outcomes = Vec::with_capacity(staged.len());
    for (key, _) in &staged {
        let info = services
            .storage()
            .head(&temp_bucket, key)
            .await?
            .ok_or_else(|| StorageError::NoSuchKey {
                location: services.storage().location(&temp_bucket, key),
            })?;
        let event = event::from_value(event::object_created(
            &temp_bucket,
            key,
            info.size,
            &info.etag,
        ))?;
        outcomes.push(pipeline::handle_event(&services, &event, services.deadline()).await);
    }
    report_outcome(&outcomes, mode, args.json)
}

/// `override`: staff accept a failing upload. A refusal exits 2 with its reason; a failure to
/// read the upload or to carry out an action exits 1 (run it again: it does only what is left).
pub async fn override_upload(
    settings_file: Option<&std::path::Path>,
    args: &OverrideArgs,
) -> Result<u8, CliError> {
    use crate::staff_override::{handle, OverrideRequest};
    let request = OverrideRequest {
        prefix: args.prefix.clone(),
        reason: args.reason.clone().unwrap_or_default(),
        by: args.by.clone().unwrap_or_default(),
    };
    let settings = load_settings(settings_file).await?;
    let (services, mode, _sentry) = start(settings, &args.mode).await?;
    let outcome = match handle(&services, &request, services.deadline()).await {
        Ok(outcome) => outcome,
        Err(e) if e.is_refusal() => return Err(e.into()),
        Err(e) => {
            eprintln!("error: {}", shown(&e.to_string()));
            return Ok(EXIT_FAIL);
        }
    };
    let event = EventOutcome {
        uploads: vec![outcome],
        ..EventOutcome::default()
    };
    report_outcome(&[event], mode, args.json)
}

/// Prints what happened (or, on a dry run, what would) and picks the exit code: 0 when every
/// upload was handled and every action succeeded, whatever the verdict; 1 otherwise.
pub(crate) fn report_outcome(
    outcomes: &[EventOutcome],
    mode: RunMode,
    json: bool,
) -> Result<u8, CliError> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, outcomes).map_err(|e| CliError::Write(e.into()))?;
        writeln!(out).map_err(CliError::Write)?;
    } else {
        write_outcomes(&mut out, outcomes, mode).map_err(CliError::Write)?;
    }
    out.flush().map_err(CliError::Write)?;
    let failures: Vec<String> = outcomes.iter().flat_map(EventOutcome::failures).collect();
    for failure in &failures {
        eprintln!("error: {}", shown(failure));
    }
    Ok(if failures.is_empty() {
        EXIT_PASS
    } else {
        EXIT_FAIL
    })
}

/// Text from an upload or a bucket, as a terminal may show it: control and format characters
/// escaped, so it cannot move the cursor, clear the screen or forge a line.
fn shown(text: &str) -> String {
    wdiv_checks::text::escape_control(text)
}

fn write_outcomes(
    out: &mut impl Write,
    outcomes: &[EventOutcome],
    mode: RunMode,
) -> std::io::Result<()> {
    use console::style;
    for (n, outcome) in outcomes.iter().enumerate() {
        if outcomes.len() > 1 {
            writeln!(
                out,
                "{}",
                style(format!("Event {} of {}", n + 1, outcomes.len())).bold()
            )?;
        }
        for (key, why) in &outcome.ignored {
            writeln!(out, "ignored {}: {}", shown(key), shown(why))?;
        }
        for refused in &outcome.refused {
            writeln!(out, "{} {}", style("refused").red(), shown(refused))?;
        }
        for upload in &outcome.uploads {
            let Some(report) = &upload.report else {
                writeln!(
                    out,
                    "{} {}: {}",
                    style("error").red(),
                    shown(&upload.prefix),
                    shown(upload.error.as_deref().unwrap_or(""))
                )?;
                continue;
            };
            writeln!(
                out,
                "Upload {} for {} ({})\n",
                style(shown(&upload.prefix)).bold(),
                shown(&report.council_name),
                shown(&report.gss)
            )?;
            if let Some(over) = &report.extra.staff_override {
                writeln!(
                    out,
                    "{} by {} at {}: {}\n",
                    style("Accepted by staff override").yellow().bold(),
                    shown(&over.by),
                    shown(&over.at),
                    shown(&over.reason)
                )?;
            }
            write_files(out, &report.file_set)?;
            let Some(plan) = &upload.plan else { continue };
            writeln!(out)?;
            if mode.is_dry_run() {
                writeln!(
                    out,
                    "{}",
                    style("Dry run: nothing is written anywhere.").yellow()
                )?;
                write!(out, "{plan}")?;
                continue;
            }
            writeln!(out, "Actions:")?;
            for (step, result) in plan.steps.iter().zip(&upload.results) {
                let (mark, note) = match result {
                    StepResult::Done(d) => (style("✔").green(), d.clone()),
                    StepResult::AlreadyDone(d) => {
                        (style("✔").green(), format!("done earlier: {d}"))
                    }
                    StepResult::Previewed(why) => {
                        (style("~").yellow(), format!("would do ({why})"))
                    }
                    StepResult::Skipped(why) => (style("-").dim(), format!("skipped: {why}")),
                    StepResult::NotAttempted(why) => {
                        (style("-").dim(), format!("not attempted: {why}"))
                    }
                    StepResult::Failed(why) => (style("✘").red(), format!("FAILED: {why}")),
                };
                writeln!(
                    out,
                    "  {mark} {:<13} {}  [{}]",
                    step.effect.verb(),
                    plan.target(step),
                    shown(&note)
                )?;
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{load, Context};

    /// `--dry-run`, declared once, is taken by every acting command and turns its run mode
    /// into a dry run; without it, the settings' own mode stands.
    #[test]
    fn dry_run_is_one_flag_for_every_acting_command() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let mode_of = |argv: &[&str]| {
            let cli = Cli::try_parse_from(argv).unwrap();
            let args = match &cli.command {
                Command::Run(a) => &a.mode,
                Command::Simulate(a) => &a.mode,
                Command::Override(a) => &a.mode,
                Command::Replay(a) => &a.mode,
                Command::Check(_) => panic!("check takes no run mode"),
            };
            let env = [
                ("TEMP_BUCKET_NAME", "temp-bucket"),
                ("FINAL_BUCKET_NAME", "final-bucket"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
            let mut settings = load(None, &env, Context::Lambda).unwrap();
            args.apply(&mut settings)
        };
        let sim = [
            "simulate",
            "--council",
            "X01",
            "--election-date",
            "2024-05-02",
            "a.csv",
        ];
        let commands: [&[&str]; 4] = [
            &["run", "e.json"],
            &sim,
            &[
                "override",
                "s3://t/X01/2024-05-02/t",
                "--reason",
                "r",
                "--by",
                "b",
            ],
            &["replay", "s3://t/X01/2024-05-02/t"],
        ];
        for command in commands {
            let plain: Vec<&str> = std::iter::once("wdiv")
                .chain(command.iter().copied())
                .collect();
            let mut dry = plain.clone();
            dry.insert(2, "--dry-run");
            assert_eq!(mode_of(&plain), RunMode::Live, "{plain:?}");
            assert_eq!(mode_of(&dry), RunMode::DryRun, "{dry:?}");
        }
        assert!(Cli::try_parse_from(["wdiv", "check", "--dry-run", "a.csv"]).is_err());
    }
}
