//! The `wdiv-s3-trigger` binary: a Lambda when the Lambda runtime is there
//! (`AWS_LAMBDA_RUNTIME_API` is set), the command line otherwise.

// The Lambda future nests the AWS, GitHub and HTTP clients deeply enough to need a higher limit.
#![recursion_limit = "256"]

use std::process::ExitCode;

fn main() -> ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return wdiv_s3_trigger::lambda_main();
    }
    wdiv_s3_trigger::cli_main()
}
