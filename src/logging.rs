//! Logs: JSON lines on stdout in Lambda mode (CloudWatch reads them, with the request id from the
//! invocation's span), readable lines on stderr from the command line. `RUST_LOG` filters both.

use tracing_subscriber::EnvFilter;

fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

/// For Lambda: one JSON object per line, with the fields of the enclosing spans (the request id).
pub fn init_lambda() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter("info"))
        .with_current_span(true)
        .with_span_list(true)
        .with_target(false)
        .without_time()
        .try_init();
}

/// For the command line: short readable lines on stderr, warnings and up unless `-v`. Field
/// values can hold text from an upload (a key, a council name): control and format characters
/// in them are escaped, so a log line shows them and cannot be driven by them (a terminal escape,
/// a forged line). JSON logs escape control characters themselves.
pub fn init_cli(verbose: bool) {
    use tracing_subscriber::field::MakeExt;
    let fields = tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let shown = crate::text::escape_control(&format!("{value:?}"));
        match field.name() {
            "message" => write!(writer, "{shown}"),
            name => write!(writer, "{name}={shown}"),
        }
    })
    .delimited(" ");
    let _ = tracing_subscriber::fmt()
        .fmt_fields(fields)
        .with_env_filter(filter(if verbose { "info" } else { "warn" }))
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(console::colors_enabled_stderr())
        .try_init();
}
