//! Every setting: the core's keys here, the council names' in [`crate::councils`], and each
//! effect's in its own module, gathered through the one registry of effects
//! ([`crate::effects::EFFECTS`]). The keys are the one source of the settings' names, kinds and
//! defaults: the names lists below, validation, `Debug`, the templates' test and the docs table's
//! test all read them.

use std::sync::LazyLock;

use super::key::{Key, Kind};

/// The settings file read when `--settings` is not given, if it exists.
pub const DEFAULT_SETTINGS_FILE: &str = "settings/local.toml";
/// Where local runs keep their buckets when nothing else is said.
pub const DEFAULT_LOCAL_BUCKETS_DIR: &str = "local-buckets";
/// Bucket names for local runs, where the buckets are only folders.
pub const DEFAULT_LOCAL_TEMP_BUCKET: &str = "wdiv-temp";
pub const DEFAULT_LOCAL_FINAL_BUCKET: &str = "wdiv-final";

pub const TEMP_BUCKET_NAME: Key = Key::new(
    "TEMP_BUCKET_NAME",
    Kind::Plain,
    "the bucket uploads arrive in; required in S3, `wdiv-temp` on local runs",
)
.rule(bucket_name);
pub const FINAL_BUCKET_NAME: Key = Key::new(
    "FINAL_BUCKET_NAME",
    Kind::Plain,
    "the bucket checked files are copied to; required in S3, `wdiv-final` on local runs",
)
.rule(bucket_name);
pub const SENTRY_DSN: Key =
    Key::new("SENTRY_DSN", Kind::Secret, "errors and panics to Sentry").rule(sentry_dsn);
pub const SERVER_ENVIRONMENT: Key = Key::new(
    "SERVER_ENVIRONMENT",
    Kind::Plain,
    "staging, development, test mark side effects as a test's; production warns of effects left off",
);
pub const AWS_REGION: Key = Key::new("AWS_REGION", Kind::Plain, "the AWS clients' region");
pub const AWS_ENDPOINT_URL: Key = Key::new(
    "AWS_ENDPOINT_URL",
    Kind::Url,
    "an S3-compatible endpoint (path-style addressing), for tests",
);
pub const LEASE_SECONDS: Key = Key::new(
    "LEASE_SECONDS",
    Kind::Number { min: 1, max: 3600 },
    "how long a run holds an upload's effects",
)
.default("300")
.rule(lease_seconds);
pub const DRY_RUN: Key = Key::new(
    "DRY_RUN",
    Kind::Flag,
    "true: write nothing; false: every effect, even locally",
);
pub const LOCAL_BUCKETS_DIR: Key = Key::new(
    "LOCAL_BUCKETS_DIR",
    Kind::Plain,
    "buckets as folders, `{dir}/{bucket}/{key}`",
);
pub const SIZE_FLOOR_EXEMPT_COUNCILS: Key = Key::new(
    "SIZE_FLOOR_EXEMPT_COUNCILS",
    Kind::Plain,
    "councils exempt from the 1 KB floor, comma-separated",
)
.default("IOS");
pub const MAX_FILES_PER_UPLOAD: Key = Key::new(
    "MAX_FILES_PER_UPLOAD",
    Kind::Number { min: 1, max: 1000 },
    "an upload with more files fails unread",
)
.default("10");
pub const MAX_UPLOAD_BYTES: Key = Key::new(
    "MAX_UPLOAD_BYTES",
    Kind::Number {
        min: 1,
        max: 50_000_000_000,
    },
    "an upload whose files hold more in all fails unread",
)
.default("300000000");
pub const ROW_CHANGE_WARN_PERCENT: Key = Key::new(
    "ROW_CHANGE_WARN_PERCENT",
    Kind::Number {
        min: 1,
        max: 10_000,
    },
    "a file whose rows changed by more than this since the last import is warned about",
)
.default("30");
pub const RUN_DEADLINE_SECONDS: Key = Key::new(
    "RUN_DEADLINE_SECONDS",
    Kind::Number { min: 1, max: 3600 },
    "outside Lambda, the time one event may take",
)
.default("110");

/// The core's settings: the buckets, the run, the limits.
const CORE: &[Key] = &[
    TEMP_BUCKET_NAME,
    FINAL_BUCKET_NAME,
    SENTRY_DSN,
    SERVER_ENVIRONMENT,
    AWS_REGION,
    AWS_ENDPOINT_URL,
    LEASE_SECONDS,
    DRY_RUN,
    LOCAL_BUCKETS_DIR,
    SIZE_FLOOR_EXEMPT_COUNCILS,
    MAX_FILES_PER_UPLOAD,
    MAX_UPLOAD_BYTES,
    ROW_CHANGE_WARN_PERCENT,
    RUN_DEADLINE_SECONDS,
];

/// Every setting: the core's, each effect's (in the registry's order), the council names'.
pub static KEYS: LazyLock<Vec<&'static Key>> = LazyLock::new(|| {
    CORE.iter()
        .chain(crate::effects::EFFECTS.iter().flat_map(|e| e.keys.iter()))
        .chain(crate::councils::KEYS.iter())
        .collect()
});

/// Every setting, by the name it has in the environment and in TOML files.
pub static NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| names(|_| true));
/// The settings whose values are secrets: no message, log or `Debug` output shows them.
pub static SECRET_NAMES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| names(|k| k == Kind::Secret));

fn names(kind: impl Fn(Kind) -> bool) -> Vec<&'static str> {
    KEYS.iter()
        .filter(|k| kind(k.kind))
        .map(|k| k.name)
        .collect()
}

/// Bucket names become folder names on a local run: only S3's own alphabet is allowed.
fn bucket_name(value: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !value.starts_with(['.', '-'])
        && !value.contains("..");
    match ok {
        true => Ok(()),
        false => {
            Err("is not a valid S3 bucket name (3-63 characters: a-z, 0-9, '-', '.')".to_owned())
        }
    }
}

fn lease_seconds(value: &str) -> Result<(), String> {
    match value.parse::<u64>() {
        Ok(n) if (1..=3600).contains(&n) => Ok(()),
        _ => Err("must be a number of seconds, 1 to 3600".to_owned()),
    }
}

/// `SENTRY_DSN` must parse as Sentry's `sentry::init` parses it (which panics otherwise).
fn sentry_dsn(value: &str) -> Result<(), String> {
    use sentry::types::ParseDsnError;
    let why = if !value.chars().all(|c| c.is_ascii_graphic()) {
        "holds a character a URL cannot"
    } else {
        match value.parse::<sentry::types::Dsn>() {
            Ok(_) => return Ok(()),
            Err(ParseDsnError::InvalidUrl) => "is not a URL",
            Err(ParseDsnError::InvalidScheme) => "is not an http(s) URL",
            Err(ParseDsnError::NoUsername) => "has no public key before the @",
            Err(ParseDsnError::NoProjectId | ParseDsnError::InvalidProjectId(_)) => {
                "has no project id at the end of its path"
            }
        }
    };
    Err(format!(
        "is not a valid Sentry DSN: it {why}; expected https://PUBLIC_KEY@HOST/PROJECT_ID, as \
         the Sentry project's Client Keys page shows it (the value is a secret and is not shown)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_name_is_unique_and_every_default_is_valid() {
        let names: BTreeSet<&str> = NAMES.iter().copied().collect();
        assert_eq!(names.len(), NAMES.len(), "a setting is declared twice");
        for key in KEYS.iter() {
            if let Some(default) = key.default {
                assert!(
                    key.rule.is_none_or(|rule| rule(default).is_ok()),
                    "{}",
                    key.name
                );
            }
        }
        // What the check engine uses when the setting is unset.
        assert_eq!(
            SIZE_FLOOR_EXEMPT_COUNCILS.default,
            Some(wdiv_checks::DEFAULT_SIZE_FLOOR_EXEMPT.join(",").as_str())
        );
    }

    /// docs/contracts.md's settings table names every setting, and only those, and a row gives
    /// each of its settings' defaults.
    #[test]
    fn the_docs_table_agrees_with_the_keys() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/contracts.md");
        let text = std::fs::read_to_string(path).unwrap();
        let section = text
            .split("### Settings")
            .nth(1)
            .and_then(|s| s.split("\n### ").next())
            .expect("docs/contracts.md has a Settings section");
        let mut documented = BTreeSet::new();
        for row in section.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = row.split(" | ").collect();
            let names: Vec<&str> = cells[0]
                .trim_start_matches("| ")
                .split(", ")
                .map(|n| n.trim_matches('`'))
                .collect();
            for name in names {
                let key = KEYS
                    .iter()
                    .find(|k| k.name == name)
                    .unwrap_or_else(|| panic!("{name} in the docs is no setting"));
                if let Some(default) = key.default {
                    assert!(
                        cells[1].contains(default),
                        "{name}: its row does not give the default {default}: {row}"
                    );
                }
                documented.insert(name);
            }
        }
        let all: BTreeSet<&str> = NAMES.iter().copied().collect();
        assert_eq!(documented, all, "the docs table names every setting");
    }
}
