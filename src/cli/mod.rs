//! The command line: `check` runs the checks on local files; `run` and `simulate` drive the whole
//! pipeline, as the Lambda does, from an event or from files; `override` and `replay` are the
//! operator's. One file per command, beside the arguments (`args`), the printing (`output`), the
//! start-up every acting command shares (`start`) and how a command ends (`exit`).

use std::process::ExitCode;

use clap::Parser;

mod args;
mod check;
mod exit;
mod output;
mod override_upload;
mod replay;
mod run;
mod simulate;
mod start;

use args::{Cli, Command};
use exit::EXIT_ERROR;
use output::shown;
use start::block_on;

/// The command line's `main`: parses the arguments, runs the command, and turns its result into
/// the exit code of the contract (0 all pass, 1 any fails, 2 usage or I/O error).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init_cli(cli.verbose);
    let settings_file = cli.settings.clone();
    let result = match cli.command {
        Command::Check(args) => check::check(&args),
        Command::Run(args) => block_on(run::run(settings_file.as_deref(), &args)),
        Command::Simulate(args) => block_on(simulate::simulate(settings_file.as_deref(), &args)),
        Command::Override(args) => block_on(override_upload::override_upload(
            settings_file.as_deref(),
            &args,
        )),
        Command::Replay(args) => block_on(replay::run(settings_file.as_deref(), &args)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", shown(&e.to_string()));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
