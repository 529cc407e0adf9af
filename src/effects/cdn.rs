//! Invalidate the CDN's cache for the upload's paths, once `report.json` is written (and so every
//! file is in place). One invalidation per upload content: its `CallerReference` is the content
//! id, so CloudFront itself refuses a repeat.

use async_trait::async_trait;
use serde_json::json;

use super::{
    not_configured, ClientMaker, Effect, EffectError, Entry, FailureKind, Names, Optional, Planned,
    Planning, Run, StepKind,
};
use crate::cdn::{cdn_path, cdn_wildcard, Cdn, CdnError};
use crate::event::REPORT_FILE;
use crate::settings::{Key, Kind, Settings};
use crate::vocab::DistributionId;

/// Its step.
pub const INVALIDATE: StepKind = StepKind::new("invalidate");

pub const CLOUDFRONT_DISTRIBUTION_ID: Key = Key::new(
    "CLOUDFRONT_DISTRIBUTION_ID",
    Kind::Plain,
    "the distribution whose cache is invalidated",
);
pub const CLOUDFRONT_PATHS: Key = Key::new(
    "CLOUDFRONT_PATHS",
    Kind::Plain,
    "prefix (one wildcard path) or files (a path per file)",
)
.default("prefix")
.rule(|paths| match paths {
    "prefix" | "files" => Ok(()),
    _ => Err("must be prefix or files".to_owned()),
});

/// The invalidation, in the registry.
pub const EFFECT: Entry = Entry {
    keys: &[CLOUDFRONT_DISTRIBUTION_ID, CLOUDFRONT_PATHS],
    plan,
    client: Some(ClientMaker {
        wanted: |s| config(s).get().is_some(),
        aws: true,
        make: |_, shared| Ok(std::sync::Arc::new(Cdn::new(shared.sdk()?))),
    }),
    production: None,
};

/// What a CloudFront invalidation covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CdnPaths {
    /// One wildcard path for the upload's prefix: one billable path.
    Prefix,
    /// One path per file (and the report).
    Files,
}

/// The most paths one invalidation lists with `CLOUDFRONT_PATHS=files`; beyond, the prefix's
/// wildcard stands for them (each path is billed).
pub const MAX_CDN_PATHS: usize = 15;

/// `CLOUDFRONT_DISTRIBUTION_ID` and `CLOUDFRONT_PATHS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdnConfig {
    pub distribution_id: DistributionId,
    pub paths: CdnPaths,
}

/// The one place that decides whether CloudFront is configured: a distribution.
pub fn config(s: &Settings) -> Optional<CdnConfig> {
    let paths = match s.values.text(&CLOUDFRONT_PATHS).as_deref() {
        Some("files") => CdnPaths::Files,
        _ => CdnPaths::Prefix,
    };
    match s.values.text(&CLOUDFRONT_DISTRIBUTION_ID) {
        Some(id) => Optional::On(CdnConfig {
            distribution_id: DistributionId::new(id),
            paths,
        }),
        None => Optional::Off {
            missing: CLOUDFRONT_DISTRIBUTION_ID.name,
        },
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalidate {
    /// Absent when CloudFront is not configured (the step is then skipped).
    pub distribution_id: Option<DistributionId>,
    pub paths: Vec<String>,
    pub caller_reference: String,
}

pub fn plan(p: &Planning<'_>) -> Vec<Planned> {
    let cdn = config(p.settings);
    let files: Vec<&str> = p.report.file_set.iter().map(|f| f.key.as_str()).collect();
    let report_key = format!("{}/{REPORT_FILE}", p.prefix);
    let wildcard = || vec![cdn_wildcard(&p.prefix)];
    let by = cdn.get().map_or(CdnPaths::Prefix, |c| c.paths);
    let paths = match by {
        CdnPaths::Prefix => wildcard(),
        CdnPaths::Files if files.len() + 1 > MAX_CDN_PATHS => wildcard(),
        CdnPaths::Files => files
            .iter()
            .copied()
            .chain([report_key.as_str()])
            .map(cdn_path)
            .collect(),
    };
    let effect = Invalidate {
        distribution_id: cdn.get().map(|c| c.distribution_id.clone()),
        paths,
        caller_reference: format!("wdiv-s3-trigger-{}", p.content_id),
    };
    let skip = p.unless_valid().or_else(|| cdn.why_off());
    vec![Planned::new(effect, skip).after(
        super::report::WRITE_REPORT,
        "the files or the report were not written",
    )]
}

/// Throttling and a busy distribution pass; a refused request does not.
fn kind_of(e: &CdnError) -> FailureKind {
    match e {
        CdnError::Service { code, .. }
            if code.contains("Throttl") || code == "TooManyInvalidationsInProgress" =>
        {
            FailureKind::Transient
        }
        CdnError::Service { .. } => FailureKind::Permanent,
        CdnError::Other { .. } => FailureKind::Transient,
    }
}

#[async_trait]
impl Effect for Invalidate {
    fn kind(&self) -> StepKind {
        INVALIDATE
    }

    fn target(&self, _: &Names) -> String {
        let id = self
            .distribution_id
            .as_ref()
            .map_or("(not set)", DistributionId::as_str);
        format!("distribution {id}: {}", self.paths.join(" "))
    }

    fn data(&self) -> serde_json::Value {
        json!({
            "distribution_id": self.distribution_id.as_ref().map(DistributionId::as_str), "paths": self.paths,
            "caller_reference": self.caller_reference,
        })
    }

    async fn perform(&self, run: &Run<'_>) -> Result<String, EffectError> {
        let (Some(cdn), Some(distribution)) = (run.clients.get::<Cdn>(), &self.distribution_id)
        else {
            return Err(not_configured("CloudFront"));
        };
        let id = cdn
            .invalidate(distribution.as_str(), &self.paths, &self.caller_reference)
            .await
            .map_err(|e| EffectError::new(kind_of(&e), e))?;
        Ok(format!("invalidation {id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::tests_support::{planning, report, settings};

    #[test]
    fn it_waits_for_the_report_and_is_skipped_without_a_distribution() {
        let r = report(true);
        let off = plan(&planning(&r, &settings(&[])));
        assert_eq!(
            off[0].skip.as_deref(),
            Some("CLOUDFRONT_DISTRIBUTION_ID not set")
        );
        assert_eq!(
            off[0].after,
            [(
                crate::effects::report::WRITE_REPORT,
                "the files or the report were not written"
            )]
        );
        let on = plan(&planning(
            &r,
            &settings(&[("CLOUDFRONT_DISTRIBUTION_ID", "E2DIST")]),
        ));
        assert_eq!(on[0].skip, None);
        assert_eq!(
            on[0].effect.target(&Names::default()),
            "distribution E2DIST: /X01/2024-05-02/t/*"
        );
    }

    #[test]
    fn a_star_in_a_file_name_is_encoded_and_only_the_prefix_wildcard_stays() {
        let mut r = report(true);
        r.file_set[0].key = "X01/2024-05-02/t/a*.csv".into();
        let files = plan(&planning(
            &r,
            &settings(&[
                ("CLOUDFRONT_DISTRIBUTION_ID", "E2DIST"),
                ("CLOUDFRONT_PATHS", "files"),
            ]),
        ));
        assert_eq!(
            files[0].effect.data()["paths"],
            json!([
                "/X01/2024-05-02/t/a%2A.csv",
                "/X01/2024-05-02/t/report.json"
            ])
        );
    }

    #[test]
    fn a_busy_or_throttled_distribution_is_transient_a_refusal_is_not() {
        let service = |code: &str| CdnError::Service {
            distribution: "E2DIST".into(),
            code: code.into(),
            message: "m".into(),
        };
        assert_eq!(
            kind_of(&service("TooManyInvalidationsInProgress")),
            FailureKind::Transient
        );
        assert_eq!(kind_of(&service("Throttling")), FailureKind::Transient);
        assert_eq!(kind_of(&service("AccessDenied")), FailureKind::Permanent);
    }
}
