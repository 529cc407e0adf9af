//! Settings: a TOML file, then environment variables on top, with the original's names.
//!
//! Everything is read and validated once, at start-up, and every problem is listed at once: an
//! operator fixing a deploy should not have to redeploy once per missing key. An empty value means
//! unset, because the original's templates write `""` for a key that is not used.
//!
//! - `key`: a setting's [`Key`] (name, kind, default, doc, rule), the lowest module;
//! - `schema`: every key, the core's there and the effects' through their registry;
//! - `sources`: the file, the environment and SSM, as raw text;
//! - `validate`: raw text to [`Settings`], every problem at once;
//! - `model`, `values`: the validated settings.
//!
//! No message shows a secret's value ([`SECRET_NAMES`]), a URL's user-info or query
//! ([`URL_NAMES`], through [`crate::http::redact_url`]), or a line of a settings file.

mod key;
mod model;
mod schema;
mod sources;
mod validate;
mod values;

#[cfg(test)]
mod tests;

pub use key::{api_url, email_address, header_token, Key, Kind};
pub use model::{Context, RunMode, Settings, SettingsError, StorageMode};
pub use schema::{DEFAULT_SETTINGS_FILE, NAMES, SECRET_NAMES};
pub use sources::{load, load_resolved, process_env};
