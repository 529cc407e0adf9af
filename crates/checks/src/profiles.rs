//! EMS profiles: how to recognise each Election Management System's export and which of its
//! columns the domain rules read. One TOML file per format in `profiles/`, embedded at build time.

use serde::Deserialize;

include!(concat!(env!("OUT_DIR"), "/profiles.rs"));

/// Why an EMS profile cannot be used; each names the profile's file.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file is not TOML of a profile's shape.
    #[error("EMS profile {file} is not valid: {source}")]
    Parse {
        /// The profile's file name.
        file: String,
        /// What the TOML reader refused.
        #[source]
        source: toml::de::Error,
    },
    /// The profile gives no way to recognise its format.
    #[error("EMS profile {file} must say how to recognise the format: set one of detect.first_column, detect.any_column (csv) or detect.required_keys (json)")]
    NoDetection {
        /// The profile's file name.
        file: String,
    },
    /// `files_per_upload` is 0.
    #[error("EMS profile {file}: files_per_upload must be at least 1")]
    NoFiles {
        /// The profile's file name.
        file: String,
    },
    /// A column of `unique_uprn_columns` is missing from `uprn_columns`.
    #[error("EMS profile {file}: unique_uprn_columns names {column}, which is not in uprn_columns; add it there too")]
    UniqueNotUprn {
        /// The profile's file name.
        file: String,
        /// The column named only in `unique_uprn_columns`.
        column: String,
    },
    /// `rounded_uprn_percent` is over 100.
    #[error("EMS profile {file}: rounded_uprn_percent is {percent}; it must be from 0 to 100")]
    RoundedPercent {
        /// The profile's file name.
        file: String,
        /// The percentage given.
        percent: u8,
    },
}

/// The kind of file a profile describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Delimited text with a header row (the default).
    #[default]
    Csv,
    /// A JSON list of elements.
    Json,
}

/// One EMS export format: how to recognise it and which of its columns the rules read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The EMS's name, as the report gives it.
    pub name: String,
    /// CSV (the default) or JSON.
    #[serde(default)]
    pub format: Format,
    /// How many files one upload of this EMS has (Democracy Counts: 2); 1 when unset.
    #[serde(default = "one")]
    pub files_per_upload: usize,
    /// How a file of this format is recognised.
    pub detect: Detect,
    /// The columns the domain rules read.
    #[serde(default)]
    pub rules: Rules,
}

fn one() -> usize {
    1
}

/// How a profile's files are recognised: at least one of these is set.
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

/// The columns a profile's domain rules read; a column absent from a file is skipped.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Columns holding UK postcodes; malformed values are warned about.
    #[serde(default)]
    pub postcode_columns: Vec<String>,
    /// A column holding the election date on every row.
    pub election_date_column: Option<String>,
    /// Columns holding UPRNs (Unique Property Reference Numbers, 1 to 12 digits): values in
    /// scientific notation fail the file; rounded-looking and malformed values are warned about.
    #[serde(default)]
    pub uprn_columns: Vec<String>,
    /// Of `uprn_columns`, those in which a UPRN should appear once (a property's own UPRN, not its
    /// polling station's, which repeats for every address voting there): repeats are warned about.
    #[serde(default)]
    pub unique_uprn_columns: Vec<String>,
    /// Warn when more than this percentage of a UPRN column's non-empty values end in five or
    /// more zeros (a spreadsheet's rounding); [`DEFAULT_ROUNDED_UPRN_PERCENT`] when unset.
    pub rounded_uprn_percent: Option<u8>,
    /// JSON: the list in each element whose items are the file's rows.
    pub row_list: Option<String>,
    /// JSON: keys that name an element in messages, first present wins.
    #[serde(default)]
    pub label_keys: Vec<String>,
}

/// The share of rounded-looking UPRNs (in percent of a column's non-empty values) above which
/// a warning is given, unless a profile sets `rounded_uprn_percent`.
pub const DEFAULT_ROUNDED_UPRN_PERCENT: u8 = 20;

/// All known profiles, in the order detection tries them.
#[derive(Debug, Clone)]
pub struct Profiles {
    profiles: Vec<Profile>,
}

impl Profiles {
    /// The profiles built into the binary from `profiles/`.
    pub fn embedded() -> &'static Profiles {
        static EMBEDDED: std::sync::OnceLock<Profiles> = std::sync::OnceLock::new();
        EMBEDDED.get_or_init(|| {
            Profiles::parse(EMBEDDED_PROFILES.iter().copied())
                .expect("the profiles in profiles/ are checked by the test suite")
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
            let rules = &profile.rules;
            if let Some(column) = rules
                .unique_uprn_columns
                .iter()
                .find(|u| !rules.uprn_columns.iter().any(|c| c.eq_ignore_ascii_case(u)))
            {
                return Err(ProfileError::UniqueNotUprn {
                    file: file.to_owned(),
                    column: column.clone(),
                });
            }
            if let Some(percent) = rules.rounded_uprn_percent.filter(|p| *p > 100) {
                return Err(ProfileError::RoundedPercent {
                    file: file.to_owned(),
                    percent,
                });
            }
            profiles.push(profile);
        }
        // A first-column match is more specific than a column anywhere: try those first.
        profiles.sort_by_key(|p| p.detect.first_column.is_none());
        Ok(Profiles { profiles })
    }

    /// Every profile, in the order detection tries them.
    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.iter()
    }

    /// The profile of this name, if any.
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
    fn uprn_columns_per_profile() {
        let p = Profiles::embedded();
        let uprns = |name: &str| {
            let r = &p.by_name(name).unwrap().rules;
            (r.uprn_columns.clone(), r.unique_uprn_columns.clone())
        };
        let s = |v: &[&str]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        assert_eq!(
            uprns("Xpress DC"),
            (
                s(&["Property_URN", "Polling_Place_UPRN"]),
                s(&["Property_URN"])
            )
        );
        for name in [
            "Xpress WebLookup",
            "Idox Eros (Halarose)",
            "Democracy Counts",
        ] {
            assert_eq!(uprns(name), (s(&["UPRN"]), s(&["UPRN"])), "{name}");
        }
    }

    #[test]
    fn a_unique_uprn_column_must_be_a_uprn_column_and_the_share_a_percentage() {
        let err = Profiles::parse([(
            "u.toml",
            "name = \"X\"\n[detect]\nfirst_column = \"a\"\n[rules]\nuprn_columns = [\"UPRN\"]\n\
             unique_uprn_columns = [\"Property_URN\"]\n",
        )])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "EMS profile u.toml: unique_uprn_columns names Property_URN, which is not in \
             uprn_columns; add it there too"
        );
        let err = Profiles::parse([(
            "p.toml",
            "name = \"X\"\n[detect]\nfirst_column = \"a\"\n[rules]\nrounded_uprn_percent = 120\n",
        )])
        .unwrap_err();
        assert!(err.to_string().contains("from 0 to 100"), "{err}");
    }

    #[test]
    fn a_misspelt_key_is_refused() {
        let err = Profiles::parse([("typo.toml", "name = \"X\"\n[detect]\nfirst_colum = \"a\"\n")])
            .unwrap_err();
        assert!(err.to_string().contains("typo.toml"), "{err}");
    }
}
