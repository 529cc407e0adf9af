//! Copy each checked file to the final bucket, on the condition that it is still the bytes that
//! were checked, with metadata of our own (never the uploader's).

use async_trait::async_trait;
use serde_json::json;

use super::{Effect, EffectError, Names, Planned, Planning, Run};

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
                content_type: crate::upload::served_type(&file.key)
                    .unwrap_or("application/octet-stream")
                    .to_owned(),
            };
            Planned::new(copy, p.unless_valid())
        })
        .collect()
}

#[async_trait]
impl Effect for CopyFile {
    fn verb(&self) -> &'static str {
        "copy"
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
