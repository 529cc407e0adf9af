//! Where the settings come from: a TOML file, then environment variables on top, with the
//! original's names, and `ssm:NAME` values read from SSM at start-up. Every known setting's value
//! comes out as text with where it came from ([`Raw`]); [`super::validate`] makes them settings.
//!
//! Settings come from whoever deploys, and a value can be anything. Reading never panics, and no
//! message shows a value or a line of a settings file: a line may hold a secret.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use wdiv_checks::text;

use super::model::{Context, Settings, SettingsError};
use super::schema::{DEFAULT_SETTINGS_FILE, NAMES};
use super::validate::{validate, Raw, MAX_SHOWN_CHARS};

/// The environment variables of [`NAMES`], as strings exactly as set (figment's own `Env`
/// provider would read `0123` as the number 123, which would corrupt a token).
struct RawEnv {
    vars: Vec<(String, String)>,
}

impl Provider for RawEnv {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let dict: Dict = self
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        Ok(Profile::Default.collect(dict))
    }
}

/// The environment, as a list of variables (tests pass their own).
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Reads the settings: `file` (or [`DEFAULT_SETTINGS_FILE`] when it exists), then `env` on top.
/// Three steps, each listing every problem it finds: the sources, their raw values, then the
/// validated settings (with one configuration per effect).
pub fn load(
    file: Option<&Path>,
    env: &[(String, String)],
    context: Context,
) -> Result<Settings, SettingsError> {
    let (figment, problems) = sources(file, env)?;
    let mut raw = raw_values(&figment, problems)?;
    for (name, value) in &raw.values {
        if crate::secrets::parameter_name(value).is_some() {
            raw.problems.push(format!(
                "{name} (from {}) names an SSM parameter, which only start-up reads \
                 (settings::load_resolved)",
                raw.sources
                    .get(name)
                    .map(String::as_str)
                    .unwrap_or("the settings")
            ));
        }
    }
    validate(raw, env, context)
}

/// [`load`], with every `ssm:NAME` value first replaced by the SSM parameter NAME's value
/// (decrypted; [`crate::secrets`]). What start-up calls, in both the CLI and Lambda.
pub async fn load_resolved(
    file: Option<&Path>,
    env: &[(String, String)],
    context: Context,
) -> Result<Settings, SettingsError> {
    let (figment, problems) = sources(file, env)?;
    let mut raw = raw_values(&figment, problems)?;
    let resolved = crate::secrets::resolve(&mut raw.values, &raw.sources).await;
    raw.sources.extend(resolved.sources);
    raw.secure = resolved.secure;
    raw.problems.extend(resolved.problems);
    validate(raw, env, context)
}

/// The settings file and the environment, merged (the environment wins).
fn sources(
    file: Option<&Path>,
    env: &[(String, String)],
) -> Result<(Figment, Vec<String>), SettingsError> {
    let mut figment = Figment::new();
    let mut problems = Vec::new();
    let file = match file {
        Some(path) if !path.is_file() => {
            problems.push(format!(
                "the settings file {} does not exist (copy a template from settings/)",
                shown_path(path)
            ));
            None
        }
        Some(path) => Some(path),
        None => Some(Path::new(DEFAULT_SETTINGS_FILE)).filter(|path| path.is_file()),
    };
    if let Some(path) = file {
        // Our own parse first, for an error that shows no line of the file (figment's would quote
        // the line, and it may hold a secret); figment then reads the same file for the merge.
        if let Err(problem) = check_toml(path) {
            problems.push(problem);
            return Err(SettingsError { problems });
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    let vars: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| NAMES.contains(&k.as_str()))
        .cloned()
        .collect();
    Ok((figment.merge(RawEnv { vars }), problems))
}

fn raw_values(figment: &Figment, mut problems: Vec<String>) -> Result<Raw, SettingsError> {
    let raw: BTreeMap<String, Value> = match figment.extract() {
        Ok(map) => map,
        Err(e) => {
            // Not expected once the file has parsed; figment's own text may quote a value or a
            // line of the file, so only where it happened is shown.
            let from = e
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(source) => source.to_string(),
                    None => m.name.to_string(),
                })
                .unwrap_or_else(|| "the settings".into());
            problems.push(format!(
                "cannot read the settings from {}: a value cannot be read",
                text::escape_control(&from)
            ));
            return Err(SettingsError { problems });
        }
    };

    let mut values = BTreeMap::new();
    let mut sources = BTreeMap::new();
    for (key, value) in &raw {
        if !NAMES.contains(&key.as_str()) {
            let hint = if NAMES.contains(&key.to_ascii_uppercase().as_str()) {
                format!(" (settings are upper case: {})", key.to_ascii_uppercase())
            } else {
                String::new()
            };
            problems.push(format!(
                "{} in {} is not a known setting{hint}",
                text::escape_control(&text::truncate_chars(key, MAX_SHOWN_CHARS)),
                source_of(figment, key)
            ));
            continue;
        }
        match scalar_text(value) {
            Some(text) if text.trim().is_empty() => {}
            Some(text) => {
                values.insert(key.clone(), text.trim().to_owned());
                sources.insert(key.clone(), source_of(figment, key));
            }
            None => problems.push(format!(
                "{key} in {} must be text, a number or true/false",
                source_of(figment, key)
            )),
        }
    }
    Ok(Raw {
        secure: BTreeSet::new(),
        values,
        sources,
        problems,
    })
}

/// A path as a message shows it: one line.
fn shown_path(path: &Path) -> String {
    text::escape_control(&path.display().to_string())
}

/// Parses the settings file as TOML. On a syntax error, the problem names the file, the line and
/// column, and the parser's message, but never shows a line of the file: a line may hold a
/// secret (`GITHUB_API_KEY = "ghp_…` with its closing quote missing).
fn check_toml(path: &Path) -> Result<(), String> {
    let contents = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the settings file {}: {e}", shown_path(path)))?;
    let error = match contents.parse::<toml::Table>() {
        Ok(_) => return Ok(()),
        Err(error) => error,
    };
    let at = match error.span() {
        Some(span) => {
            let start = span.start.min(contents.len());
            let start = (0..=start)
                .rev()
                .find(|i| contents.is_char_boundary(*i))
                .unwrap_or(0);
            let before = &contents[..start];
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before[line_start..].chars().count() + 1;
            format!(", line {line}, column {column}")
        }
        None => String::new(),
    };
    Err(format!(
        "the settings file {}{at} is not valid TOML: {} (the line is not shown: it may hold a \
         secret)",
        shown_path(path),
        toml_message(error.message())
    ))
}

/// The TOML parser's message on one line. The parser names keys in backquotes (a duplicate key):
/// a setting's name is kept, anything else (a quoted key could be a pasted secret) is not.
fn toml_message(message: &str) -> String {
    let kept: Vec<&str> = message
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            let quoted = i % 2 == 1;
            if quoted && part.chars().count() > 2 && !NAMES.contains(&part) {
                "…"
            } else {
                part
            }
        })
        .collect();
    let kept = kept.join("`");
    let lines: Vec<&str> = kept
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    text::one_line(&lines.join("; "))
}

/// Where `key` came from, for messages: "environment variable", or the file's path (one line).
fn source_of(figment: &Figment, key: &str) -> String {
    let source = match figment.find_metadata(key) {
        Some(meta) => match &meta.source {
            Some(source) => source.to_string(),
            None => meta.name.to_string(),
        },
        None => "the settings".into(),
    };
    text::escape_control(&source)
}

/// A scalar as text; lists (of council ids) are joined with commas.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(_, s) => Some(s.clone()),
        Value::Char(_, c) => Some(c.to_string()),
        Value::Bool(_, b) => Some(b.to_string()),
        Value::Num(_, n) => n
            .to_i128()
            .map(|i| i.to_string())
            .or_else(|| n.to_f64().map(|f| f.to_string())),
        Value::Empty(..) => Some(String::new()),
        Value::Array(_, items) => items
            .iter()
            .map(scalar_text)
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        Value::Dict(..) => None,
    }
}
