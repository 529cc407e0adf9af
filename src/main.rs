//! The `wdiv-s3-trigger` binary: the command line (the Lambda entry point joins it later).

fn main() -> std::process::ExitCode {
    wdiv_s3_trigger::cli::main()
}
