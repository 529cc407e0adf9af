//! Copy each checked file to the final bucket, on the condition that it is still the bytes that
//! were checked, with metadata of our own (never the uploader's).

use async_trait::async_trait;
use serde_json::json;

use super::{Effect, EffectError, Entry, Names, Planned, Planning, Run, StepKind};

/// Its step, one per file.
pub const COPY: StepKind = StepKind::new("copy");

/// The copies, in the registry: no settings or client of their own (the buckets are the core's).
pub const EFFECT: Entry = Entry {
    keys: &[],
    plan,
    client: None,
    production: None,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFile {
    pub from_bucket: String,
    pub to_bucket: String,
    pub key: String,
    /// The ETag of the bytes that were checked.
    pub etag: String,
    /// The copy's own `Content-Type`, from the file's extension.
    pub content_type: String,
}

pub fn plan(p: &Planning<'_>) -> Vec<Planned> {
    p.report
        .file_set
        .iter()
        .map(|file| {
            let copy = CopyFile {
                from_bucket: p.settings.temp_bucket.clone(),
                to_bucket: p.settings.final_bucket.clone(),
                key: file.key.clone(),
                etag: file.details.etag.clone().unwrap_or_default(),
                content_type: wdiv_checks::served_type(&file.key)
                    .unwrap_or("application/octet-stream")
                    .to_owned(),
            };
            Planned::new(copy, p.unless_valid())
        })
        .collect()
}

#[async_trait]
impl Effect for CopyFile {
    fn kind(&self) -> StepKind {
        COPY
    }

    fn id(&self) -> String {
        format!("copy:{}", self.key)
    }

    fn target(&self, names: &Names) -> String {
        format!(
            "{} -> {}",
            names.object(&self.from_bucket, &self.key),
            names.object(&self.to_bucket, &self.key)
        )
    }

    fn external(&self) -> bool {
        false
    }

    fn data(&self) -> serde_json::Value {
        json!({
            "from_bucket": self.from_bucket, "to_bucket": self.to_bucket, "key": self.key,
            "etag": self.etag, "content_type": self.content_type,
        })
    }

    async fn perform(&self, run: &Run<'_>) -> Result<String, EffectError> {
        run.clients
            .storage
            .copy(
                &self.from_bucket,
                &self.key,
                &self.to_bucket,
                &self.etag,
                &self.content_type,
            )
            .await?;
        Ok("copied".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::tests_support::{clients, planning, report, settings};
    use crate::effects::{Planning, EFFECTS};
    use bytes::Bytes;

    #[test]
    fn each_file_is_copied_only_from_a_valid_upload_with_a_type_from_its_name() {
        let plan_fn: fn(&Planning<'_>) -> Vec<Planned> = plan;
        assert!(EFFECTS
            .iter()
            .any(|e| std::ptr::fn_addr_eq(e.plan, plan_fn)));
        let s = settings(&[]);
        let valid = report(true);
        let steps = plan(&planning(&valid, &s));
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].skip, None);
        assert_eq!(steps[0].effect.id(), "copy:X01/2024-05-02/t/a.csv");
        assert_eq!(steps[0].effect.data()["content_type"], "text/csv");
        assert!(!steps[0].effect.external());
        let invalid = report(false);
        let steps = plan(&planning(&invalid, &s));
        assert_eq!(
            steps[0].skip.as_deref(),
            Some("the upload failed its checks")
        );
    }

    #[tokio::test]
    async fn a_file_is_copied_only_while_it_is_the_bytes_that_were_checked() {
        let (_dir, clients) = clients();
        let key = "X01/2024-05-02/t/a.csv";
        let etag = clients
            .storage
            .put(
                "temp",
                key,
                Bytes::from_static(b"a,b,c\n"),
                "text/csv",
                crate::storage::PutCondition::Always,
            )
            .await
            .unwrap();
        let run = Run {
            clients: &clients,
            report: report(true),
        };
        let copy = |etag: &str| CopyFile {
            from_bucket: "temp".into(),
            to_bucket: "final".into(),
            key: key.into(),
            etag: etag.into(),
            content_type: "text/csv".into(),
        };
        let stale = copy("\"not-the-checked-bytes\"")
            .perform(&run)
            .await
            .unwrap_err();
        assert_eq!(stale.kind, crate::effects::FailureKind::Refused);
        assert!(clients.storage.head("final", key).await.unwrap().is_none());
        assert_eq!(copy(&etag).perform(&run).await.unwrap(), "copied");
        assert!(clients.storage.head("final", key).await.unwrap().is_some());
    }
}
