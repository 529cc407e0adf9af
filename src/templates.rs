//! The words people read — the GitHub issue, the emails — live in `templates/` (minijinja), so
//! they can be changed without reading Rust. They are embedded at build time.
//!
//! Every value a template shows is escaped for where the text goes, by the template's extension,
//! in one place (`format_value`): `.md` (GitHub) as markdown that cannot open a heading, a link,
//! a mention or code, `.txt` (email) as plain text with no line breaks inside a value. A template
//! cannot forget to: there is no unescaped output but a key shown with the `code` filter, a code
//! span its text cannot close.

use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment, Error, Output, State, Value};
use serde::Serialize;

use wdiv_checks::text;

/// The most an email body holds; a longer one is cut at a line, with a note.
pub const MAX_EMAIL_BYTES: usize = 64 * 1024;

const TEMPLATES: &[(&str, &str)] = &[
    ("issue_body.md", include_str!("../templates/issue_body.md")),
    (
        "issue_comment.md",
        include_str!("../templates/issue_comment.md"),
    ),
    (
        "email_failure_subject.txt",
        include_str!("../templates/email_failure_subject.txt"),
    ),
    (
        "email_failure_body.txt",
        include_str!("../templates/email_failure_body.txt"),
    ),
    (
        "email_success_subject.txt",
        include_str!("../templates/email_success_subject.txt"),
    ),
    (
        "email_success_body.txt",
        include_str!("../templates/email_success_body.txt"),
    ),
];

/// The templates, parsed once per process (a plan renders several for every upload).
fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_auto_escape_callback(|name| match name.rsplit('.').next() {
            Some("md") => AutoEscape::Custom("markdown"),
            _ => AutoEscape::Custom("text"),
        });
        env.set_formatter(format_value);
        env.add_filter("code", |value: String| {
            Value::from_safe_string(crate::markdown::markdown_code(&value))
        });
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .expect("the embedded templates parse (a unit test renders each)");
        }
        env
    })
}

/// Writes a value into a template's output, escaped for the template's format.
fn format_value(out: &mut Output<'_>, state: &State<'_, '_>, value: &Value) -> Result<(), Error> {
    if value.is_undefined() || value.is_none() {
        return Ok(());
    }
    let shown = value.to_string();
    let escaped = match state.auto_escape() {
        _ if value.is_safe() => shown,
        AutoEscape::Custom("markdown") => crate::markdown::markdown_inline(&shown),
        _ => text::one_line(&shown),
    };
    out.write_str(&escaped).map_err(Error::from)
}

/// An email body of at most [`MAX_EMAIL_BYTES`], cut at a line when longer.
pub fn bounded_email(body: String) -> String {
    if body.len() <= MAX_EMAIL_BYTES {
        return body;
    }
    const NOTE: &str = "\n[This email was cut short: the rest is in the upload's report.]\n";
    let mut end = MAX_EMAIL_BYTES - NOTE.len();
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    let cut = body[..end].rfind('\n').map_or(end, |i| i + 1);
    format!("{}{NOTE}", &body[..cut])
}

/// Renders the template `name` with `context`. The templates are embedded and tested, so a
/// failure here is a bug in them, not in the data.
pub fn render(name: &str, context: impl Serialize) -> String {
    environment()
        .get_template(name)
        .and_then(|t| t.render(context))
        .unwrap_or_else(|e| panic!("template {name} does not render: {e:#}"))
}

/// A one-line text (a subject), rendered.
pub fn render_line(name: &str, context: impl Serialize) -> String {
    render(name, context)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_issue_body_is_the_contract() {
        let body = render(
            "issue_body.md",
            json!({"ems": "Xpress DC", "files": ["a/b/c/one.csv", "a/b/c/two.csv"]}),
        );
        assert_eq!(
            body,
            "EMS: Xpress DC\nFiles:\n- `a/b/c/one.csv`\n- `a/b/c/two.csv`\n"
        );
    }

    #[test]
    fn an_override_and_a_comparison_follow_the_contract_body() {
        let ctx = json!({
            "ems": "Xpress DC", "files": ["a/b/c/one.csv"], "timestamp": "c", "warn_percent": 30,
            "gss": "X01", "council_name": "Somewhere", "election_date": "2024-05-02",
            "override": {"by": "Jane *Staff*", "reason": "header typo; data checked by hand",
                         "at": "2024-04-02T09:00:00Z"},
            "overridden": [{"key": "a/b/c/one.csv", "errors": ["File is empty"]}],
            "history": {"earlier": "a/b/x", "earlier_date": "2024-03-01",
                        "warnings": [{"key": "a/b/c/one.csv", "message": "Row count changed"}]},
        });
        assert_eq!(
            render("issue_body.md", &ctx),
            "EMS: Xpress DC\nFiles:\n- `a/b/c/one.csv`\n\n\
             **Accepted by staff override**: Jane \\*Staff\\*, 2024-04-02T09:00:00Z\n\
             Reason: header typo; data checked by hand\n\
             Errors overridden:\n- `a/b/c/one.csv`: File is empty\n\n\
             Compared with the last import, uploaded 2024-03-01 (`a/b/x`):\n\
             - `a/b/c/one.csv`: Row count changed\n"
        );
        assert!(render("issue_comment.md", &ctx)
            .starts_with("Updated: the upload c was accepted by staff override.\n\nEMS: "));
        let mut quiet = ctx.clone();
        quiet["override"] = serde_json::Value::Null;
        quiet["history"]["warnings"] = json!([]);
        assert!(render("issue_body.md", &quiet).ends_with(
            "(`a/b/x`):\n- no file is the same as then, and no row count changed by more than 30%\n"
        ));
        let mail = render("email_success_body.txt", &ctx);
        assert!(mail.contains("It failed\nthe checks, and staff accepted it: Jane *Staff*, 2024-04-02T09:00:00Z.\nReason: header typo; data checked by hand\n"), "{mail}");
        assert!(mail.ends_with("Errors overridden:\n  - a/b/c/one.csv: File is empty\n\nCompared with the last import, uploaded 2024-03-01 (a/b/x):\n  - a/b/c/one.csv: Row count changed\n"), "{mail}");
    }

    #[test]
    fn the_failure_email_lists_each_error_on_its_own_line() {
        let body = render(
            "email_failure_body.txt",
            json!({
                "gss": "X01", "council_name": "Somewhere", "election_date": "2024-05-02",
                "prefix": "X01/2024-05-02/t", "test_instance": false,
                "failing": [{"key": "X01/2024-05-02/t/a.csv", "ems": "Xpress DC", "rows": 7,
                             "errors": ["first problem", "second problem"]}],
            }),
        );
        assert!(body.starts_with("Somewhere (X01) uploaded data"), "{body}");
        assert!(
            body.contains(
                "\n\nFile: X01/2024-05-02/t/a.csv\nEMS: Xpress DC, 7 rows read\nErrors:\n  \
                 - first problem\n  - second problem\n\nWhat to do next:\n"
            ),
            "{body}"
        );
    }

    #[test]
    fn the_success_email_lists_each_file() {
        let body = render(
            "email_success_body.txt",
            json!({"gss": "X01", "council_name": "Somewhere", "election_date": "2024-05-02",
                   "ems": "Democracy Counts", "files": ["k1", "k2"]}),
        );
        assert!(
            body.ends_with("EMS: Democracy Counts\nFiles:\n  - k1\n  - k2\n"),
            "{body:?}"
        );
    }

    #[test]
    fn values_are_escaped_for_each_sink() {
        let hostile = "b`x\n## Injected heading\n@octocat.csv";
        let body = render(
            "issue_body.md",
            json!({"ems": "X *bold* [a](b)", "files": [format!("X01/2024-05-02/t/{hostile}")]}),
        );
        assert_eq!(body.lines().count(), 3, "{body}");
        assert!(!body.contains("\n## "), "{body}");
        assert!(body.contains("X \\*bold\\* \\[a\\](b)"), "{body}");
        assert!(
            body.contains("- `` X01/2024-05-02/t/b`x\\n## Injected heading\\n@octocat.csv ``"),
            "{body}"
        );
        let mail = render(
            "email_failure_body.txt",
            json!({
                "gss": "X01", "council_name": "Some\nwhere", "election_date": "2024-05-02",
                "prefix": "X01/2024-05-02/t", "test_instance": false,
                "failing": [{"key": "k", "ems": "Xpress DC", "rows": 7,
                             "errors": ["bad\nFile: forged\nErrors: none"]}],
            }),
        );
        assert!(!mail.contains("\nFile: forged"), "{mail}");
        assert!(
            mail.contains("  - bad\\nFile: forged\\nErrors: none\n"),
            "{mail}"
        );
        assert!(mail.starts_with("Some\\nwhere (X01)"), "{mail}");
    }

    #[test]
    fn a_long_email_is_cut_at_a_line() {
        let body = "line of text\n".repeat(10_000);
        let cut = bounded_email(body);
        assert!(cut.len() <= MAX_EMAIL_BYTES);
        assert!(cut.ends_with("the rest is in the upload's report.]\n"));
        assert!(cut.contains("line of text\n\n[This email"));
    }

    #[test]
    fn every_template_renders() {
        let ctx = json!({
            "ems": "Xpress DC", "files": ["k"], "timestamp": "t", "gss": "X01",
            "council_name": "Somewhere", "election_date": "2024-05-02", "prefix": "X01/2024-05-02/t",
            "test_instance": true, "environment": "staging",
            "failing": [{"key": "k", "ems": "Xpress DC", "rows": 3, "errors": ["bad row 3"]}],
        });
        for (name, _) in TEMPLATES {
            assert!(!render(name, &ctx).trim().is_empty(), "{name}");
        }
        assert_eq!(
            render_line("email_failure_subject.txt", &ctx),
            "**NB triggered from staging instance** Error with data for council X01-Somewhere"
        );
        assert!(render("issue_comment.md", &ctx).starts_with("Updated"));
    }
}
