//! `check`: the checks on local files (or stdin), with no settings, bucket or effect.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use wdiv_checks::{CheckOptions, FileChecker, Profiles};

use super::args::CheckArgs;
use super::exit::{CliError, EXIT_FAIL, EXIT_PASS};
use super::output::write_summary;

/// Files at least this big get a progress bar when stderr is a terminal.
const PROGRESS_FROM_BYTES: u64 = 16 * 1024 * 1024;

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
    bar.set_message(format!(
        "checking {}",
        wdiv_checks::text::escape_control(name)
    ));
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar
}
