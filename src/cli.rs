//! The command line: `check` today; `run` and `simulate` drive the pipeline.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::checks::{self, CheckOptions, Date, FileChecker, Profiles};
use crate::report::{FileReport, UploadVerdict};

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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the files of one upload, as the Lambda would, and print the verdict.
    Check(CheckArgs),
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
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// An input of `check`: a file, or stdin.
enum Input {
    File { key: String, file: File, len: u64 },
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
            let read_err = |source| CliError::Read {
                path: key.clone(),
                source,
            };
            let file = File::open(path).map_err(read_err)?;
            let meta = file.metadata().map_err(read_err)?;
            if meta.is_dir() {
                return Err(CliError::IsDirectory { path: key });
            }
            Ok(Input::File {
                key,
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
    };
    let mut reports = Vec::with_capacity(inputs.len());
    for input in inputs {
        let report = match input {
            Input::File { key, file, len } => {
                let progress = progress_bar(&key, Some(len));
                let report =
                    FileChecker::check_reader(&key, Some(len), file, options.clone(), |n| {
                        progress.inc(n)
                    })
                    .map_err(|source| CliError::Read {
                        path: key.clone(),
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
    let verdict = checks::check_upload(reports, options.profiles);
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
    bar.set_message(format!("checking {name}"));
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar
}

/// The readable verdict: one small table per file, then a line for the upload.
pub fn write_summary(out: &mut impl Write, verdict: &UploadVerdict) -> std::io::Result<()> {
    use console::style;
    for file in &verdict.file_set {
        let status = if file.csv_valid() {
            style("PASS").green().bold()
        } else {
            style("FAIL").red().bold()
        };
        writeln!(out, "{status}  {}", style(&file.key).bold())?;
        let field = |out: &mut dyn Write, name: &str, value: &str| {
            writeln!(out, "      {:<9} {value}", style(name).dim())
        };
        field(out, "EMS", &file.ems)?;
        field(out, "Rows", &rows_text(file))?;
        let encoding = if file.csv_encoding.is_empty() {
            "-"
        } else {
            &file.csv_encoding
        };
        field(out, "Encoding", encoding)?;
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
                let text = format!("{} {}", style("•").fg(colour), p.message);
                field(out, name, &text)?;
            }
        }
        writeln!(out)?;
    }
    let total = verdict.file_set.len();
    let failed = verdict.file_set.iter().filter(|f| !f.csv_valid()).count();
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
