//! The `wdiv-s3-trigger` binary: a Lambda when the Lambda runtime is there
//! (`AWS_LAMBDA_RUNTIME_API` is set), the command line otherwise.

// The Lambda future nests the AWS, GitHub and HTTP clients deeply enough to need a higher limit.
#![recursion_limit = "256"]

use std::process::ExitCode;

fn main() -> ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return lambda();
    }
    wdiv_s3_trigger::cli::main()
}

fn lambda() -> ExitCode {
    use wdiv_s3_trigger::{lambda, logging, pipeline::Services, settings};
    logging::init_lambda();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        // `ssm:` values are read here, once: a parameter that cannot be read fails the init.
        let env = settings::process_env();
        let settings = match settings::load_resolved(None, &env, settings::Context::Lambda).await {
            Ok(settings) => settings,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        for gap in settings.production_gaps() {
            tracing::warn!("{gap}");
        }
        let _sentry = wdiv_s3_trigger::telemetry::init(&settings);
        let services = match Services::new(settings).await {
            Ok(services) => services,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        match lambda::serve(services).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("the Lambda runtime stopped: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
