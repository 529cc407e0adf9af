//! Every setting's validated value, held by its kind: what the effect modules read their
//! configuration from, and what `Settings`' `Debug` shows (a secret masked, a URL redacted).

use std::collections::BTreeMap;
use std::fmt;

use super::key::Key;
use crate::vocab::{HttpUrl, Secret};

/// One setting's validated value.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Secret(Secret),
    Url(HttpUrl),
    Number(u64),
    Flag(bool),
}

/// `Debug` is the rule that secrets are never shown, by kind: a secret prints a mask, a URL its
/// redacted form.
impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(text) => write!(f, "{text:?}"),
            Value::Secret(secret) => write!(f, "{secret:?}"),
            Value::Url(url) => write!(f, "{url:?}"),
            Value::Number(n) => write!(f, "{n}"),
            Value::Flag(b) => write!(f, "{b}"),
        }
    }
}

/// The values by setting name; a setting that is unset (and has no default) is absent.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Values(pub(crate) BTreeMap<&'static str, Value>);

impl Values {
    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.0.get(key.name)
    }

    /// A plain setting's text (or a URL's, a number's, a flag's, as written).
    pub fn text(&self, key: &Key) -> Option<String> {
        self.get(key).map(|v| match v {
            Value::Text(text) => text.clone(),
            Value::Url(url) => url.as_str().to_owned(),
            Value::Number(n) => n.to_string(),
            Value::Flag(b) => b.to_string(),
            Value::Secret(_) => String::new(),
        })
    }

    pub fn secret(&self, key: &Key) -> Option<&Secret> {
        match self.get(key) {
            Some(Value::Secret(secret)) => Some(secret),
            _ => None,
        }
    }

    pub fn url(&self, key: &Key) -> Option<&HttpUrl> {
        match self.get(key) {
            Some(Value::Url(url)) => Some(url),
            _ => None,
        }
    }

    /// A number setting's value; its default always applies, so it is always there once the
    /// settings are validated (0 only for a key that is not a number).
    pub fn number(&self, key: &Key) -> u64 {
        match self.get(key) {
            Some(Value::Number(n)) => *n,
            _ => 0,
        }
    }

    pub fn flag(&self, key: &Key) -> Option<bool> {
        match self.get(key) {
            Some(Value::Flag(b)) => Some(*b),
            _ => None,
        }
    }

    /// The setting `name`'s value as `Debug` shows it (a secret masked), `(unset)` when unset.
    pub fn shown(&self, name: &str) -> String {
        match self.0.get(name) {
            Some(value) => format!("{value:?}"),
            None => "(unset)".to_owned(),
        }
    }
}

impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}
