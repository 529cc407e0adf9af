//! The words people read — the GitHub issue, the emails — live in `templates/` (minijinja), so
//! they can be changed without reading Rust. They are embedded at build time.

use std::sync::OnceLock;

use minijinja::Environment;
use serde::Serialize;

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
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .expect("the embedded templates parse (a unit test renders each)");
        }
        env
    })
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
