//! A setting's key: its name, its kind, its default and what it is for. The lowest module of the
//! settings: the effect modules declare their own keys with it, and the schema lists them all.
//!
//! The kind says how a value is read and how it may be shown: a secret never, a URL only
//! redacted. A key may add a rule of its own ([`Key::rule`]); the shared rules are here.

use wdiv_checks::text;

/// How a setting's value is read, and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text, shown as it is (quoted, bounded, on one line).
    Plain,
    /// Text that is never shown: not in a message, a log or `Debug`.
    Secret,
    /// An http(s) URL with a host, shown only through [`crate::http::redact_url`].
    Url,
    /// A whole number in `min..=max` (`_` between digits allowed).
    Number { min: u64, max: u64 },
    /// `true`/`false` (or `1`/`0`, `yes`/`no`).
    Flag,
}

/// A rule a value must meet beyond its kind: `Err(why)` becomes the problem
/// `NAME "value" (from …) why` (the value hidden for a secret, redacted for a URL).
pub type Rule = fn(&str) -> Result<(), String>;

/// One setting, by the name it has in the environment and in TOML files.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
    /// Its value when unset, as it would be written; `None`: unset.
    pub default: Option<&'static str>,
    /// What it is for, in a line.
    pub doc: &'static str,
    /// Checked first when the value is set (its message, not the kind's, names a problem);
    /// the value is then read by its kind.
    pub rule: Option<Rule>,
}

impl Key {
    /// A key of `kind`, unset by default, with no rule of its own.
    pub const fn new(name: &'static str, kind: Kind, doc: &'static str) -> Key {
        Key {
            name,
            kind,
            default: None,
            doc,
            rule: None,
        }
    }

    /// With this default.
    pub const fn default(mut self, default: &'static str) -> Key {
        self.default = Some(default);
        self
    }

    /// With this rule, checked before the value is read by its kind.
    pub const fn rule(mut self, rule: Rule) -> Key {
        self.rule = Some(rule);
        self
    }
}

/// The kind's own check of a URL: http(s), with a host, and no hidden character (the URL parser
/// drops tabs and line breaks where a client given the raw text might not).
pub fn http_url(value: &str) -> Result<reqwest::Url, String> {
    let plain = !value
        .chars()
        .any(|c| c.is_whitespace() || text::is_hidden(c));
    match reqwest::Url::parse(value) {
        Ok(url) if plain && matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(url)
        }
        _ => Err("must be an http(s) URL".to_owned()),
    }
}

/// An API's base URL: the request URLs are built on it, and a client may log those whole
/// (octocrab's span shows `http.url`), so it holds no credentials: no user-info, no query, no
/// fragment. The API's token has its own setting, `token_name`.
pub fn api_url(value: &str, token_name: &str) -> Result<(), String> {
    let url = http_url(value)?;
    let mut held = Vec::new();
    if !url.username().is_empty() || url.password().is_some() {
        held.push("a user name or password (user:pass@)");
    }
    if url.query().is_some() {
        held.push("a query (?…)");
    }
    if url.fragment().is_some() {
        held.push("a fragment (#…)");
    }
    match held.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "must not hold {}: the URLs built on it are logged; put the token in {token_name}",
            held.join(" or ")
        )),
    }
}

/// A token goes into an HTTP header (`Authorization: …`): a character a header cannot hold would
/// make the request fail, or the client panic (octocrab). Only visible ASCII passes.
pub fn header_token(token: &str) -> Result<(), String> {
    match token.chars().find(|c| !c.is_ascii_graphic()) {
        None => Ok(()),
        Some(bad) => {
            let what = match bad {
                '\n' | '\r' => "a line break",
                ' ' => "a space",
                c if c.is_control() => "a control character",
                _ => "a character outside visible ASCII",
            };
            Err(format!(
                "holds {what}: a token is sent in an HTTP header, and may hold only visible \
                 ASCII characters (the value is a secret and is not shown)"
            ))
        }
    }
}

/// `local@domain.tld`.
pub fn email_address(value: &str) -> Result<(), String> {
    let ok = value
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    match ok {
        true => Ok(()),
        false => Err("must be an email address".to_owned()),
    }
}
