//! Logs: JSON lines on stdout in Lambda mode (CloudWatch reads them, with the request id from the
//! invocation's span), readable lines on stderr from the command line. `RUST_LOG` filters both.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is unset (or not a filter): `level` for every crate, at most info.
/// Dependencies log request details at debug and trace: octocrab's `HTTP` span shows each
/// request's whole URL, and hyper the connection pool's key (user-info included). Settings
/// refuse credentials in the URLs those clients are given, and tokens travel in headers that no
/// dependency prints, even at trace (`tests/scenarios/settings_hostile.rs` runs a full run at `trace`);
/// still, debug and trace are only ever shown when `RUST_LOG` asks for them.
fn default_filter(level: LevelFilter) -> EnvFilter {
    EnvFilter::default().add_directive(level.min(LevelFilter::INFO).into())
}

fn filter(level: LevelFilter) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter(level))
}

/// For Lambda: one JSON object per line, with the fields of the enclosing spans (the request id).
pub fn init_lambda() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter(LevelFilter::INFO))
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
        let shown = wdiv_checks::text::escape_control(&format!("{value:?}"));
        match field.name() {
            "message" => write!(writer, "{shown}"),
            name => write!(writer, "{name}={shown}"),
        }
    })
    .delimited(" ");
    let _ = tracing_subscriber::fmt()
        .fmt_fields(fields)
        .with_env_filter(filter(if verbose {
            LevelFilter::INFO
        } else {
            LevelFilter::WARN
        }))
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(console::colors_enabled_stderr())
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_rust_log_nothing_below_info_is_shown() {
        for (level, expected) in [
            (LevelFilter::WARN, LevelFilter::WARN),
            (LevelFilter::INFO, LevelFilter::INFO),
            (LevelFilter::TRACE, LevelFilter::INFO),
        ] {
            assert_eq!(default_filter(level).max_level_hint(), Some(expected));
        }
    }
}
