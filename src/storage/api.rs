//! What every storage keeps: the [`Storage`] trait, the types it speaks in, and what is built
//! on it alone ([`read_small`], [`object_name`]). Both implementations and every caller import
//! it; it imports neither.

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;

/// How an object is named for people: `s3://bucket/key`, or its path under `local_root` when the
/// buckets are folders. The one definition: storage messages and plan previews both use it.
pub fn object_name(local_root: Option<&std::path::Path>, bucket: &str, key: &str) -> String {
    match local_root {
        Some(root) => root.join(bucket).join(key).display().to_string(),
        None => format!("s3://{bucket}/{key}"),
    }
}

/// What a listing or a read says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// The entity tag, quoted as S3 sends it; it changes when the bytes change.
    pub etag: String,
}

/// A write's condition, so a concurrent writer cannot be overwritten by accident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutCondition {
    Always,
    /// Only if no object has the key (`If-None-Match: *`).
    IfAbsent,
    /// Only if the object is still the one with this ETag (`If-Match`).
    IfMatch(String),
}

/// Why a storage operation failed; every message names the bucket and key.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("bucket {bucket:?} does not exist ({location})")]
    NoSuchBucket { bucket: String, location: String },
    #[error("{location} does not exist (was it deleted after the event?)")]
    NoSuchKey { location: String },
    #[error("access to {location} was denied ({op}): check the role's permissions")]
    AccessDenied { op: &'static str, location: String },
    #[error("{location} is not as expected ({op}): {why}")]
    ConditionFailed {
        op: &'static str,
        location: String,
        why: String,
    },
    #[error("{op} on {location} failed after retries: {detail}")]
    Unavailable {
        op: &'static str,
        location: String,
        detail: String,
    },
    #[error("{op} on {location} failed: {detail}")]
    Other {
        op: &'static str,
        location: String,
        detail: String,
    },
    #[error("key {key:?} cannot be stored: {why}")]
    BadKey { key: String, why: &'static str },
    /// A copy or write that should be conditional on an ETag was given none: a bug (S3 may take
    /// an empty condition as no condition), so nothing is sent.
    #[error(
        "{op} on {location} refused: it must be conditional on the object's ETag, and none was \
         known (a bug; nothing was written)"
    )]
    NoEtag { op: &'static str, location: String },
}

impl StorageError {
    /// Refuses `op` on `location` when `etag`, its condition, is empty.
    pub fn require_etag(
        op: &'static str,
        location: impl FnOnce() -> String,
        etag: &str,
    ) -> Result<(), StorageError> {
        if etag.trim_matches('"').trim().is_empty() {
            let location = location();
            tracing::error!(op, location, "a conditional write without an ETag: refused");
            return Err(StorageError::NoEtag { op, location });
        }
        Ok(())
    }

    /// A copy refused because its source is no longer the bytes that were checked.
    pub fn changed_since_check(location: String, checked_etag: &str) -> StorageError {
        StorageError::ConditionFailed {
            op: "CopyObject",
            location,
            why: format!(
                "it changed after it was checked (ETag is no longer {checked_etag}); not copied"
            ),
        }
    }
}

/// A body being read, chunk by chunk, as it arrives.
#[async_trait]
pub trait Body: Send {
    /// The next chunk, or `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, StorageError>;
}

/// Buckets of objects.
#[async_trait]
pub trait Storage: Send + Sync + fmt::Debug {
    /// How an object is named in messages and previews (`s3://b/k`, or a path).
    fn location(&self, bucket: &str, key: &str) -> String;
    /// The objects whose key starts with `prefix`, in key order, but at most `max` of them: a
    /// listing never reads more than it needs into memory. When there are more than `max`, which
    /// `max` are returned is up to the storage (S3 gives the first in key order); a caller that
    /// asks for one more than its limit learns that the limit is passed.
    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<ObjectInfo>, StorageError>;
    /// The object, or `None` when it does not exist.
    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>, StorageError>;
    /// Starts reading an object.
    async fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectInfo, Box<dyn Body>), StorageError>;
    /// Copies an object, only if its ETag is still `if_etag` (the bytes that were checked). The
    /// copy gets its own metadata, never the uploader's: `content_type`, and
    /// `Content-Disposition: attachment` so that a browser downloads it rather than showing it.
    async fn copy(
        &self,
        from_bucket: &str,
        key: &str,
        to_bucket: &str,
        if_etag: &str,
        content_type: &str,
    ) -> Result<(), StorageError>;
    /// Writes a small object whole; returns its new ETag.
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
        condition: PutCondition,
    ) -> Result<String, StorageError>;
}

/// A small object read whole, or what stands in its place.
#[derive(Debug)]
pub enum Small {
    Absent,
    Read(ObjectInfo, Vec<u8>),
    /// Larger than the limit: not read past it. Its ETag lets a caller replace it.
    TooLarge(ObjectInfo),
}

impl Small {
    /// The bytes, when the object was read whole.
    pub fn bytes(self) -> Option<Vec<u8>> {
        match self {
            Small::Read(_, bytes) => Some(bytes),
            Small::Absent | Small::TooLarge(_) => None,
        }
    }
}

/// Reads a small object (a record, `report.json`) whole, never more than `limit` bytes of it.
/// Objects in a bucket can be written by others: one too large is reported as such, not read.
pub async fn read_small(
    storage: &dyn Storage,
    bucket: &str,
    key: &str,
    limit: usize,
) -> Result<Small, StorageError> {
    let (info, mut body) = match storage.get(bucket, key).await {
        Ok(found) => found,
        Err(StorageError::NoSuchKey { .. }) => return Ok(Small::Absent),
        Err(e) => return Err(e),
    };
    if info.size > limit as u64 {
        return Ok(Small::TooLarge(info));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next_chunk().await? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > limit {
            return Ok(Small::TooLarge(info));
        }
    }
    Ok(Small::Read(info, bytes))
}
