//! The shared vocabulary: names and small value types that several stages use (the checks, the
//! report, the upload's key, the settings, the effects). It depends on nothing but `text`, so
//! the modules that use it never depend on each other through it.

use std::fmt;

/// The EMS of a file no profile recognises.
pub const UNKNOWN_EMS: &str = "unknown";

/// The EMS name WhereDoIVote's upload API compares literally (its lone-file rule), as the
/// embedded profile `checks/democracy-counts.toml` names it.
pub const DEMOCRACY_COUNTS: &str = "Democracy Counts";

/// The most characters of a key WhereDoIVote stores (`File.key`, a `CharField(max_length=255)`):
/// it refuses a whole report holding a longer one.
pub const WDIV_MAX_KEY_CHARS: usize = 255;

/// The problem code of the upload rule that waits for a partner file (no email for it).
pub const MISSING_FILES: &str = "missing-files";

/// A calendar date, as the upload's key and the Xpress DC `ElectionDate` column carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl std::str::FromStr for Date {
    type Err = String;

    /// Strict `YYYY-MM-DD`, the form the upload's key uses.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("'{s}' is not a date of the form YYYY-MM-DD");
        let parts: Vec<&str> = s.split('-').collect();
        if parts.len() != 3 || parts[0].len() != 4 || parts[1].len() != 2 || parts[2].len() != 2 {
            return Err(bad());
        }
        let date = Date {
            year: parts[0].parse().map_err(|_| bad())?,
            month: parts[1].parse().map_err(|_| bad())?,
            day: parts[2].parse().map_err(|_| bad())?,
        };
        date.is_valid().then_some(date).ok_or_else(bad)
    }
}

impl Date {
    fn is_valid(&self) -> bool {
        let leap = (self.year.is_multiple_of(4) && !self.year.is_multiple_of(100))
            || self.year.is_multiple_of(400);
        let days = match self.month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return false,
        };
        (1..=days).contains(&self.day)
    }

    /// Reads the date forms EMS exports use: `DD/MM/YYYY`, `DD-MM-YYYY`, `YYYY-MM-DD`, each maybe
    /// followed by a time.
    pub fn parse_loose(value: &str) -> Option<Date> {
        let value = value.trim();
        let date_part = value.split([' ', 'T']).next()?;
        let parts: Vec<&str> = date_part.split(['/', '-', '.']).collect();
        if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || p.len() > 4) {
            return None;
        }
        let nums: Vec<u16> = parts
            .iter()
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        let (year, month, day) = if parts[0].len() == 4 {
            (nums[0], nums[1], nums[2])
        } else if parts[2].len() == 4 {
            (nums[2], nums[1], nums[0])
        } else {
            return None;
        };
        let date = Date {
            year,
            month: u8::try_from(month).ok()?,
            day: u8::try_from(day).ok()?,
        };
        date.is_valid().then_some(date)
    }
}

/// A value that must never be shown: `Debug` and `Display` print a mask.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value itself, for the one place that sends it (a header, a client).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Defines a validated text newtype: built only by the settings' checks.
macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// Made only by the settings, once they have checked the value.
            pub(crate) fn new(value: impl Into<String>) -> Self {
                $name(value.into())
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_newtype!(
    /// `owner/name` of a GitHub repository.
    RepoName
);
text_newtype!(
    /// An email address (`local@domain.tld`).
    EmailAddress
);
text_newtype!(
    /// A CloudFront distribution's id.
    DistributionId
);
text_newtype!(
    /// An http(s) URL with a host. Shown with its user-info and query masked.
    HttpUrl
);

impl fmt::Debug for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Debug for DistributionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Debug for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", crate::http::redact_url(&self.0))
    }
}
