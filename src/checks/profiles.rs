//! EMS profiles: how to recognise each Election Management System's export and which of its
//! columns the domain rules read. One TOML file per format in `checks/`, embedded at build time.

use serde::Deserialize;

include!(concat!(env!("OUT_DIR"), "/profiles.rs"));

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("EMS profile {file} is not valid: {source}")]
    Parse {
        file: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("EMS profile {file} must say how to recognise the format: set one of detect.first_column, detect.any_column (csv) or detect.required_keys (json)")]
    NoDetection { file: String },
    #[error("EMS profile {file}: files_per_upload must be at least 1")]
    NoFiles { file: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Csv,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    #[serde(default)]
    pub format: Format,
    #[serde(default = "one")]
    pub files_per_upload: usize,
    pub detect: Detect,
    #[serde(default)]
    pub rules: Rules,
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detect {
    /// The header's first column, compared case-insensitively.
    pub first_column: Option<String>,
    /// A column anywhere in the header, compared case-insensitively.
    pub any_column: Option<String>,
    /// JSON: keys the first element of the top-level list must all have.
    #[serde(default)]
    pub required_keys: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Columns holding UK postcodes; malformed values are warned about.
    #[serde(default)]
    pub postcode_columns: Vec<String>,
    /// A column holding the election date on every row.
    pub election_date_column: Option<String>,
    /// JSON: the list in each element whose items are the file's rows.
    pub row_list: Option<String>,
    /// JSON: keys that name an element in messages, first present wins.
    #[serde(default)]
    pub label_keys: Vec<String>,
}

/// All known profiles, in the order detection tries them.
#[derive(Debug, Clone)]
pub struct Profiles {
    profiles: Vec<Profile>,
}

impl Profiles {
    /// The profiles built into the binary from `checks/`.
    pub fn embedded() -> &'static Profiles {
        static EMBEDDED: std::sync::OnceLock<Profiles> = std::sync::OnceLock::new();
        EMBEDDED.get_or_init(|| {
            Profiles::parse(EMBEDDED_PROFILES.iter().copied())
                .expect("the profiles in checks/ are checked by the test suite")
        })
    }

    /// Parses `(file name, TOML text)` pairs.
    pub fn parse<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Profiles, ProfileError> {
        let mut profiles = Vec::new();
        for (file, text) in files {
            let profile: Profile = toml::from_str(text).map_err(|source| ProfileError::Parse {
                file: file.to_owned(),
                source,
            })?;
            let d = &profile.detect;
            if d.first_column.is_none() && d.any_column.is_none() && d.required_keys.is_empty() {
                return Err(ProfileError::NoDetection {
                    file: file.to_owned(),
                });
            }
            if profile.files_per_upload == 0 {
                return Err(ProfileError::NoFiles {
                    file: file.to_owned(),
                });
            }
            profiles.push(profile);
        }
        // A first-column match is more specific than a column anywhere: try those first.
        profiles.sort_by_key(|p| p.detect.first_column.is_none());
        Ok(Profiles { profiles })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.iter()
    }

    pub fn by_name(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// The CSV profile whose detection matches this header (names as decoded text).
    pub fn detect_csv(&self, header: &[String]) -> Option<&Profile> {
        let first = header.first().map(|h| h.trim());
        self.profiles
            .iter()
            .filter(|p| p.format == Format::Csv)
            .find(|p| {
                let d = &p.detect;
                if let Some(col) = &d.first_column {
                    return first.is_some_and(|f| f.eq_ignore_ascii_case(col));
                }
                if let Some(col) = &d.any_column {
                    return header.iter().any(|h| h.trim().eq_ignore_ascii_case(col));
                }
                false
            })
    }

    /// JSON profiles, for the JSON check to match against the first element's keys.
    pub fn json_profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.iter().filter(|p| p.format == Format::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(cols: &[&str]) -> Vec<String> {
        cols.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn the_embedded_profiles_parse() {
        let profiles = Profiles::embedded();
        for name in [
            "Idox Eros (Halarose)",
            "Xpress WebLookup",
            "Xpress DC",
            "Democracy Counts",
            "FCS",
        ] {
            assert!(profiles.by_name(name).is_some(), "{name}");
        }
    }

    #[test]
    fn detection_is_case_insensitive_and_first_column_wins() {
        let p = Profiles::embedded();
        let name = |h: &[&str]| p.detect_csv(&header(h)).map(|p| p.name.clone());
        assert_eq!(
            name(&["houseid", "x", "y"]).unwrap(),
            "Idox Eros (Halarose)"
        );
        assert_eq!(
            name(&["AUTHORITYCODE", "x", "y"]).unwrap(),
            "Xpress WebLookup"
        );
        assert_eq!(name(&["ElectionDate", "Xordinate"]).unwrap(), "Xpress DC");
        assert_eq!(
            name(&["Add1", "XORDINATE", "y"]).unwrap(),
            "Democracy Counts"
        );
        assert_eq!(name(&["a", "b", "c"]), None);
    }

    #[test]
    fn a_profile_without_detection_is_refused() {
        let err = Profiles::parse([("bad.toml", "name = \"X\"\n[detect]\n")]).unwrap_err();
        assert!(err.to_string().contains("bad.toml"));
    }

    #[test]
    fn a_misspelt_key_is_refused() {
        let err = Profiles::parse([("typo.toml", "name = \"X\"\n[detect]\nfirst_colum = \"a\"\n")])
            .unwrap_err();
        assert!(err.to_string().contains("typo.toml"), "{err}");
    }
}
