//! What the commands print: the checks' verdict as small tables, an event's outcome (or, on a
//! dry run, its plan), and text from outside made safe for a terminal.

use std::io::Write;

use wdiv_checks::{FileReport, UploadVerdict};

use crate::execute::StepResult;
use crate::outcome::{EventOutcome, UploadOutcome};
use crate::settings::RunMode;

use super::exit::{CliError, EXIT_FAIL, EXIT_PASS};

/// The readable verdict: one small table per file, then a line for the upload.
pub fn write_summary(out: &mut impl Write, verdict: &UploadVerdict) -> std::io::Result<()> {
    write_files(out, &verdict.file_set)
}

fn write_files(out: &mut impl Write, file_set: &[FileReport]) -> std::io::Result<()> {
    use console::style;
    use wdiv_checks::text::escape_control;
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

/// Prints what happened (or, on a dry run, what would) and picks the exit code: 0 when every
/// upload was handled and every action succeeded, whatever the verdict; 1 otherwise.
pub fn report_outcome(
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
pub fn shown(text: &str) -> String {
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
            write_upload(out, upload, mode)?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// One upload: its files, then its plan (a dry run) or what became of each step.
fn write_upload(
    out: &mut impl Write,
    upload: &UploadOutcome,
    mode: RunMode,
) -> std::io::Result<()> {
    use console::style;
    let Some(report) = &upload.report else {
        return writeln!(
            out,
            "{} {}: {}",
            style("error").red(),
            shown(&upload.prefix),
            shown(upload.error.as_deref().unwrap_or(""))
        );
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
    let Some(plan) = &upload.plan else {
        return Ok(());
    };
    writeln!(out)?;
    if mode.is_dry_run() {
        writeln!(
            out,
            "{}",
            style("Dry run: nothing is written anywhere.").yellow()
        )?;
        return write!(out, "{plan}");
    }
    writeln!(out, "Actions:")?;
    for (step, result) in plan.steps.iter().zip(&upload.results) {
        let (mark, note) = step_mark(result);
        writeln!(
            out,
            "  {mark} {:<13} {}  [{}]",
            step.effect.verb(),
            plan.target(step),
            shown(&note)
        )?;
    }
    Ok(())
}

/// A step's mark and note in the list of actions.
fn step_mark(result: &StepResult) -> (console::StyledObject<&'static str>, String) {
    use console::style;
    match result {
        StepResult::Done(d) => (style("✔").green(), d.clone()),
        StepResult::AlreadyDone(d) => (style("✔").green(), format!("done earlier: {d}")),
        StepResult::Previewed(why) => (style("~").yellow(), format!("would do ({why})")),
        StepResult::Skipped(why) => (style("-").dim(), format!("skipped: {why}")),
        StepResult::NotAttempted(why) => (style("-").dim(), format!("not attempted: {why}")),
        StepResult::Failed(why) => (style("✘").red(), format!("FAILED: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the terminal is shown of an event: its ignored and refused records, each on its own
    /// line, with any control character from outside escaped.
    #[test]
    fn an_event_prints_its_ignored_and_refused_records_escaped() {
        let outcome = EventOutcome {
            uploads: Vec::new(),
            ignored: vec![("X01/report.json".into(), "our own write".into())],
            refused: vec!["bad key \u{1b}[2J".into()],
        };
        let mut out = Vec::new();
        console::set_colors_enabled(false);
        write_outcomes(&mut out, &[outcome.clone(), outcome], RunMode::Live).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Event 1 of 2"), "{text}");
        assert!(
            text.contains("ignored X01/report.json: our own write"),
            "{text}"
        );
        assert!(text.contains("refused bad key "), "{text}");
        assert!(!text.contains('\u{1b}'), "{text:?}");
    }

    #[test]
    fn each_step_result_has_its_mark() {
        console::set_colors_enabled(false);
        let marks: Vec<String> = [
            StepResult::Done("ok".into()),
            StepResult::AlreadyDone("ok".into()),
            StepResult::Previewed("dry".into()),
            StepResult::Skipped("off".into()),
            StepResult::NotAttempted("late".into()),
        ]
        .iter()
        .map(|r| {
            let (mark, note) = step_mark(r);
            format!("{mark} {note}")
        })
        .collect();
        assert_eq!(
            marks,
            [
                "✔ ok",
                "✔ done earlier: ok",
                "~ would do (dry)",
                "- skipped: off",
                "- not attempted: late",
            ]
        );
    }
}
