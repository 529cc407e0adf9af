//! Buckets as folders: `{root}/{bucket}/{key}`. The embedded default for local runs.
//!
//! It behaves as S3 does for what the pipeline uses: a missing bucket or key is an error of the same
//! kind, writes are all-or-nothing (a temporary file renamed into place), and conditions hold.

use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;

use super::{Body, ObjectInfo, PutCondition, Storage, StorageError};

/// Temporary files of unfinished writes start with this; listings skip them.
const PARTIAL: &str = ".partial-";
const CHUNK: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(root: impl Into<PathBuf>) -> LocalStorage {
        LocalStorage { root: root.into() }
    }

    /// Creates a bucket's folder (local runs start with none).
    pub fn create_bucket(&self, bucket: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(self.root.join(bucket))
    }

    fn bucket_dir(&self, bucket: &str) -> Result<PathBuf, StorageError> {
        let dir = self.root.join(bucket);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(StorageError::NoSuchBucket {
                bucket: bucket.to_owned(),
                location: dir.display().to_string(),
            })
        }
    }

    /// The file for a key; keys that would leave the bucket's folder are refused.
    fn path(&self, bucket: &str, key: &str) -> Result<PathBuf, StorageError> {
        let bad = |why| StorageError::BadKey {
            key: key.to_owned(),
            why,
        };
        if key.is_empty() || key.ends_with('/') {
            return Err(bad("it is empty or ends with '/'"));
        }
        if key.contains('\\') || key.contains('\0') {
            return Err(bad("it contains '\\' or NUL"));
        }
        let relative = Path::new(key);
        if !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(bad("it has an absolute, '.' or '..' part"));
        }
        if relative
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(PARTIAL))
        {
            return Err(bad("its name is reserved for unfinished writes"));
        }
        Ok(self.bucket_dir(bucket)?.join(relative))
    }

    fn io_error(
        &self,
        op: &'static str,
        bucket: &str,
        key: &str,
        e: std::io::Error,
    ) -> StorageError {
        let location = self.location(bucket, key);
        match e.kind() {
            std::io::ErrorKind::NotFound => StorageError::NoSuchKey { location },
            std::io::ErrorKind::PermissionDenied => StorageError::AccessDenied { op, location },
            _ => StorageError::Other {
                op,
                location,
                detail: e.to_string(),
            },
        }
    }

    /// A new temporary file's path beside `dest` (its folder created), for a write that is
    /// renamed into place when complete.
    async fn partial_beside(&self, dest: &Path) -> std::io::Result<PathBuf> {
        let dir = dest.parent().expect("a key's file has a folder");
        tokio::fs::create_dir_all(dir).await?;
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        let unique = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Ok(dir.join(format!("{PARTIAL}{unique}-{}-{name}", std::process::id())))
    }
}

/// A stand-in for S3's ETag: it changes when the file is rewritten.
fn etag(meta: &std::fs::Metadata) -> String {
    let modified = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default()
        .as_nanos();
    format!("\"{:x}-{modified:x}\"", meta.len())
}

struct FileBody {
    file: tokio::fs::File,
    location: String,
}

#[async_trait]
impl Body for FileBody {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, StorageError> {
        let mut buf = BytesMut::with_capacity(CHUNK);
        match self.file.read_buf(&mut buf).await {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(buf.freeze())),
            Err(e) => Err(StorageError::Other {
                op: "GetObject",
                location: self.location.clone(),
                detail: e.to_string(),
            }),
        }
    }
}

#[async_trait]
impl Storage for LocalStorage {
    fn location(&self, bucket: &str, key: &str) -> String {
        self.root.join(bucket).join(key).display().to_string()
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<ObjectInfo>, StorageError> {
        let dir = self.bucket_dir(bucket)?;
        // Walk only the folder the prefix names, not the whole bucket.
        let start = match prefix.rfind('/') {
            Some(i) => {
                let folder = &prefix[..i];
                if Path::new(folder)
                    .components()
                    .any(|c| !matches!(c, Component::Normal(_)))
                {
                    return Err(StorageError::BadKey {
                        key: prefix.to_owned(),
                        why: "it has an absolute, '.' or '..' part",
                    });
                }
                dir.join(folder)
            }
            None => dir.clone(),
        };
        let mut objects = Vec::new();
        let mut folders = vec![start];
        while let Some(folder) = folders.pop() {
            let mut entries = match tokio::fs::read_dir(&folder).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.io_error("ListObjectsV2", bucket, prefix, e)),
            };
            while let Some(entry) = entries
                .next_entry()
                .await
                .map_err(|e| self.io_error("ListObjectsV2", bucket, prefix, e))?
            {
                let path = entry.path();
                let meta = entry
                    .metadata()
                    .await
                    .map_err(|e| self.io_error("ListObjectsV2", bucket, prefix, e))?;
                if meta.is_dir() {
                    folders.push(path);
                    continue;
                }
                if entry.file_name().to_string_lossy().starts_with(PARTIAL) {
                    continue;
                }
                let Ok(relative) = path.strip_prefix(&dir) else {
                    continue;
                };
                let key = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if key.starts_with(prefix) {
                    objects.push(ObjectInfo {
                        key,
                        size: meta.len(),
                        etag: etag(&meta),
                    });
                    // More than `max`: which ones no longer matters, only that there are more.
                    if objects.len() > max {
                        objects.truncate(max);
                        return Ok(objects);
                    }
                }
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        let path = self.path(bucket, key)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => Ok(Some(ObjectInfo {
                key: key.to_owned(),
                size: meta.len(),
                etag: etag(&meta),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error("HeadObject", bucket, key, e)),
        }
    }

    async fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectInfo, Box<dyn Body>), StorageError> {
        let path = self.path(bucket, key)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| self.io_error("GetObject", bucket, key, e))?;
        let meta = file
            .metadata()
            .await
            .map_err(|e| self.io_error("GetObject", bucket, key, e))?;
        if !meta.is_file() {
            return Err(StorageError::NoSuchKey {
                location: self.location(bucket, key),
            });
        }
        let info = ObjectInfo {
            key: key.to_owned(),
            size: meta.len(),
            etag: etag(&meta),
        };
        let body = FileBody {
            file,
            location: self.location(bucket, key),
        };
        Ok((info, Box::new(body)))
    }

    async fn copy(
        &self,
        from_bucket: &str,
        key: &str,
        to_bucket: &str,
        if_etag: &str,
        // Folders keep no metadata; a local bucket is never served.
        _content_type: &str,
    ) -> Result<(), StorageError> {
        let source = self.path(from_bucket, key)?;
        let dest = self.path(to_bucket, key)?;
        // The condition first, so a changed file is not read at all; then a streamed copy.
        let meta = tokio::fs::metadata(&source)
            .await
            .map_err(|e| self.io_error("CopyObject", from_bucket, key, e))?;
        if etag(&meta) != if_etag {
            return Err(StorageError::changed_since_check(
                self.location(from_bucket, key),
                if_etag,
            ));
        }
        let tmp = self
            .partial_beside(&dest)
            .await
            .map_err(|e| self.io_error("CopyObject", to_bucket, key, e))?;
        if let Err(e) = tokio::fs::copy(&source, &tmp).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(self.io_error("CopyObject", from_bucket, key, e));
        }
        tokio::fs::rename(&tmp, &dest)
            .await
            .map_err(|e| self.io_error("CopyObject", to_bucket, key, e))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        _content_type: &str,
        condition: PutCondition,
    ) -> Result<String, StorageError> {
        let dest = self.path(bucket, key)?;
        let failed = |why: &str| StorageError::ConditionFailed {
            op: "PutObject",
            location: self.location(bucket, key),
            why: why.to_owned(),
        };
        let tmp = self
            .partial_beside(&dest)
            .await
            .map_err(|e| self.io_error("PutObject", bucket, key, e))?;
        if let Err(e) = tokio::fs::write(&tmp, &body).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(self.io_error("PutObject", bucket, key, e));
        }
        let placed = match &condition {
            // A hard link fails when the name exists: an atomic "create if absent".
            PutCondition::IfAbsent => match tokio::fs::hard_link(&tmp, &dest).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    Err(failed("it already exists"))
                }
                Err(e) => Err(self.io_error("PutObject", bucket, key, e)),
            },
            PutCondition::IfMatch(expected) => match self.head(bucket, key).await? {
                Some(info) if &info.etag == expected => tokio::fs::rename(&tmp, &dest)
                    .await
                    .map_err(|e| self.io_error("PutObject", bucket, key, e)),
                _ => Err(failed("it changed since it was read")),
            },
            PutCondition::Always => tokio::fs::rename(&tmp, &dest)
                .await
                .map_err(|e| self.io_error("PutObject", bucket, key, e)),
        };
        let _ = tokio::fs::remove_file(&tmp).await;
        placed?;
        match self.head(bucket, key).await? {
            Some(info) => Ok(info.etag),
            None => Err(StorageError::NoSuchKey {
                location: self.location(bucket, key),
            }),
        }
    }
}
