//! The command line's arguments (clap): the commands and their options. `--dry-run` is declared
//! once ([`RunModeArgs`]) and flattened into every command that can act.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use wdiv_checks::Date;

use crate::settings::{RunMode, Settings};

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
    Replay(ReplayArgs),
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
    pub fn apply(&self, settings: &mut Settings) -> RunMode {
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

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The upload: s3://TEMP_BUCKET/COUNCIL_ID/YYYY-MM-DD/TIMESTAMP (or that prefix alone).
    #[arg(
        value_name = "s3://TEMP/PREFIX",
        required_unless_present = "from_queue",
        conflicts_with = "from_queue"
    )]
    pub upload: Option<String>,
    /// Replay the failed invocations in this OnFailure queue (its URL), deleting each message
    /// once its replay succeeded.
    #[arg(long, value_name = "QUEUE_URL")]
    pub from_queue: Option<String>,
    /// Send the event(s) to this deployed function (name or ARN), asynchronously, instead of
    /// running them here.
    #[arg(long, value_name = "FUNCTION")]
    pub invoke: Option<String>,
    #[command(flatten)]
    pub mode: RunModeArgs,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
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
