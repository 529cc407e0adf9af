//! Files staged on top of a bucket without writing them: what `simulate --dry-run` checks, so a
//! preview sees the upload exactly as the real run would, and nothing is written anywhere.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::api::{Body, ObjectInfo, PutCondition, Storage, StorageError};

#[derive(Debug)]
pub struct Overlay {
    inner: Arc<dyn Storage>,
    bucket: String,
    objects: Vec<(String, Bytes)>,
}

impl Overlay {
    /// `objects` appear in `bucket` as if they had been written there.
    pub fn new(inner: Arc<dyn Storage>, bucket: &str, objects: Vec<(String, Bytes)>) -> Overlay {
        Overlay {
            inner,
            bucket: bucket.to_owned(),
            objects,
        }
    }

    fn staged(&self, bucket: &str, key: &str) -> Option<&Bytes> {
        (bucket == self.bucket)
            .then(|| self.objects.iter().find(|(k, _)| k == key).map(|(_, b)| b))
            .flatten()
    }
}

/// An ETag for staged bytes: changes when they do.
pub fn staged_etag(bytes: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    format!("\"staged-{:016x}\"", h.finish())
}

struct Once(Option<Bytes>);

#[async_trait]
impl Body for Once {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, StorageError> {
        Ok(self.0.take())
    }
}

#[async_trait]
impl Storage for Overlay {
    fn location(&self, bucket: &str, key: &str) -> String {
        self.inner.location(bucket, key)
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<ObjectInfo>, StorageError> {
        let mut objects = match self.inner.list(bucket, prefix, max).await {
            Ok(objects) => objects,
            // The staged files are the upload; a bucket that does not exist yet holds nothing else.
            Err(StorageError::NoSuchBucket { .. }) if bucket == self.bucket => Vec::new(),
            Err(e) => return Err(e),
        };
        if bucket == self.bucket {
            for (key, bytes) in &self.objects {
                if key.starts_with(prefix) {
                    objects.retain(|o| &o.key != key);
                    objects.push(ObjectInfo {
                        key: key.clone(),
                        size: bytes.len() as u64,
                        etag: staged_etag(bytes),
                    });
                }
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        objects.truncate(max);
        Ok(objects)
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        match self.staged(bucket, key) {
            Some(bytes) => Ok(Some(ObjectInfo {
                key: key.to_owned(),
                size: bytes.len() as u64,
                etag: staged_etag(bytes),
            })),
            None => self.inner.head(bucket, key).await,
        }
    }

    async fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectInfo, Box<dyn Body>), StorageError> {
        match self.staged(bucket, key) {
            Some(bytes) => Ok((
                ObjectInfo {
                    key: key.to_owned(),
                    size: bytes.len() as u64,
                    etag: staged_etag(bytes),
                },
                Box::new(Once(Some(bytes.clone()))),
            )),
            None => self.inner.get(bucket, key).await,
        }
    }

    async fn copy(
        &self,
        from_bucket: &str,
        key: &str,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<(), StorageError> {
        Err(StorageError::Other {
            op: "CopyObject",
            location: self.location(from_bucket, key),
            detail: "a preview never writes".into(),
        })
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        _: Bytes,
        _: &str,
        _: PutCondition,
    ) -> Result<String, StorageError> {
        Err(StorageError::Other {
            op: "PutObject",
            location: self.location(bucket, key),
            detail: "a preview never writes".into(),
        })
    }
}
