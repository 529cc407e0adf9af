//! Buckets as folders: `{root}/{bucket}/{key}`. The embedded default for local runs.
//!
//! It behaves as S3 does for what the pipeline uses: a missing bucket or key is an error of the same
//! kind, writes are all-or-nothing (a temporary file renamed into place), and conditions hold.
//!
//! A bucket's folder holds what councils uploaded, so nothing inside it is trusted to point
//! elsewhere: symlinks are never followed. Listings skip them; a read, copy or write whose key
//! passes through one is refused (`head` says such a file is absent). Every file is opened with
//! `O_NOFOLLOW`, every folder between the bucket's folder and the file is checked with
//! `symlink_metadata` (and created one at a time, never with `create_dir_all`, which follows
//! them), and, in depth, the folder a file is opened or created in must resolve inside the
//! bucket's folder. Only the bucket's folder itself may be reached through a symlink (the local
//! buckets may live on another disk).
//!
//! Conditional writes are real compare-and-swaps: every write to a key holds that key's lock
//! (an `flock(2)` on a lock file beside it) while it compares and renames. The kernel drops the
//! lock when its holder dies, so a crashed writer never blocks the next one. `IfAbsent` also places
//! the file with a hard link, which fails if the name exists, so it holds even against a writer
//! that takes no lock.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;

use super::api::{Body, ObjectInfo, PutCondition, Storage, StorageError};

/// Temporary files of unfinished writes, and the keys' lock files, start with this; listings
/// skip them and keys cannot end in such a name.
const PARTIAL: &str = ".partial-";
/// A key's lock file is `{PARTIAL}lock-{file name}`, beside the key's file.
const LOCK: &str = "lock-";
const CHUNK: usize = 256 * 1024;
/// How long a write waits for another writer of the same key. The lock is held only to compare
/// and rename, so a holder this slow is stuck; its lock is not broken (it may still rename), the
/// waiting write fails instead. A holder that crashed has already lost its lock.
const LOCK_WAIT: Duration = Duration::from_secs(30);
const LOCK_POLL: Duration = Duration::from_millis(2);

#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

/// A key's file: its bucket's folder, the key as a relative path, and the two joined.
struct Target {
    dir: PathBuf,
    relative: PathBuf,
    path: PathBuf,
}

impl Target {
    /// The key's folders, relative to the bucket's folder (empty for a key with no '/').
    fn folders(&self) -> &Path {
        self.relative.parent().unwrap_or(Path::new(""))
    }

    /// The folder the key's file is in.
    fn folder(&self) -> &Path {
        self.path.parent().unwrap_or(&self.dir)
    }
}

/// Why a path in a bucket is not used.
enum Refusal {
    /// This part of the path is a symlink, and symlinks are not followed.
    Symlink(PathBuf),
    /// This folder resolves outside the bucket's folder.
    Outside(PathBuf),
    /// This part of the path, which should be a folder, is something else.
    NotAFolder(PathBuf),
    Io(io::Error),
}

impl From<io::Error> for Refusal {
    fn from(e: io::Error) -> Refusal {
        Refusal::Io(e)
    }
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
        // The bucket's folder itself may be a symlink: only what is inside it is checked.
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
    fn target(&self, bucket: &str, key: &str) -> Result<Target, StorageError> {
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
        let dir = self.bucket_dir(bucket)?;
        Ok(Target {
            path: dir.join(relative),
            relative: relative.to_path_buf(),
            dir,
        })
    }

    fn io_error(&self, op: &'static str, bucket: &str, key: &str, e: io::Error) -> StorageError {
        let location = self.location(bucket, key);
        match e.kind() {
            io::ErrorKind::NotFound => StorageError::NoSuchKey { location },
            io::ErrorKind::PermissionDenied => StorageError::AccessDenied { op, location },
            _ => StorageError::Other {
                op,
                location,
                detail: e.to_string(),
            },
        }
    }

    fn refused(&self, op: &'static str, bucket: &str, key: &str, r: Refusal) -> StorageError {
        let location = self.location(bucket, key);
        let detail = match r {
            Refusal::Symlink(p) => format!(
                "{} is a symlink, and a local bucket's symlinks are not followed",
                p.display()
            ),
            Refusal::Outside(p) => format!(
                "the folder {} resolves outside the bucket's folder, so it is not used",
                p.display()
            ),
            Refusal::NotAFolder(p) => format!("{} is not a folder", p.display()),
            Refusal::Io(e) => return self.io_error(op, bucket, key, e),
        };
        StorageError::Other {
            op,
            location,
            detail,
        }
    }

    /// Opens a key's file for reading, refusing symlinks, and says what it is.
    fn open_object(
        &self,
        op: &'static str,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectInfo, File), StorageError> {
        let t = self.target(bucket, key)?;
        let refused = |r| self.refused(op, bucket, key, r);
        check_folders(&t.dir, t.folders(), false).map_err(refused)?;
        check_inside(&t.dir, t.folder()).map_err(refused)?;
        let file = open_no_follow(&t.path).map_err(|e| refused(no_follow_error(e, &t.path)))?;
        let meta = file.metadata().map_err(|e| refused(e.into()))?;
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
        Ok((info, file))
    }

    /// A key's file, its folders made (one at a time, each checked), ready for a write.
    fn target_for_write(
        &self,
        op: &'static str,
        bucket: &str,
        key: &str,
    ) -> Result<Target, StorageError> {
        let t = self.target(bucket, key)?;
        let refused = |r| self.refused(op, bucket, key, r);
        check_folders(&t.dir, t.folders(), true).map_err(refused)?;
        check_inside(&t.dir, t.folder()).map_err(refused)?;
        Ok(t)
    }

    /// Puts a complete temporary file (`partial`, open as `file`) in place of the key's file,
    /// under the key's lock and on `condition`, and returns the new version's ETag. The file
    /// already there is compared only while the lock is held, so two writers on one condition
    /// cannot both win.
    #[allow(clippy::too_many_arguments)]
    fn place(
        &self,
        op: &'static str,
        bucket: &str,
        key: &str,
        t: &Target,
        partial: &Path,
        file: &File,
        condition: &PutCondition,
    ) -> Result<String, StorageError> {
        let refused = |r| self.refused(op, bucket, key, r);
        let failed = |why: &str| StorageError::ConditionFailed {
            op,
            location: self.location(bucket, key),
            why: why.to_owned(),
        };
        let _lock = KeyLock::acquire(&t.path).map_err(|r| match r {
            Refusal::Io(e) if e.kind() == io::ErrorKind::TimedOut => StorageError::Unavailable {
                op,
                location: self.location(bucket, key),
                detail: e.to_string(),
            },
            r => refused(r),
        })?;
        let current = match std::fs::symlink_metadata(&t.path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(refused(Refusal::Symlink(t.path.clone())))
            }
            Ok(meta) if meta.is_dir() => {
                return Err(StorageError::Other {
                    op,
                    location: self.location(bucket, key),
                    detail: "a folder has that name".to_owned(),
                })
            }
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(refused(e.into())),
        };
        let unmet = match (condition, &current) {
            (PutCondition::IfAbsent, Some(_)) => Some("it already exists"),
            (PutCondition::IfMatch(_), None) => Some("it no longer exists"),
            (PutCondition::IfMatch(expected), Some(meta)) if &etag(meta) != expected => {
                Some("it changed since it was read")
            }
            _ => None,
        };
        if let Some(why) = unmet {
            return Err(failed(why));
        }
        // The new version's ETag, which a rename or link keeps (same inode, size and mtime).
        let written = newer_than(file, current.as_ref()).map_err(|e| refused(e.into()))?;
        match condition {
            // A hard link fails when the name exists: an atomic "create if absent", even for a
            // writer that takes no lock.
            PutCondition::IfAbsent => match std::fs::hard_link(partial, &t.path) {
                Ok(()) => Ok(written),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    Err(failed("it already exists"))
                }
                Err(e) => Err(refused(e.into())),
            },
            // Compared above, under the lock.
            PutCondition::IfMatch(_) | PutCondition::Always => std::fs::rename(partial, &t.path)
                .map(|()| written)
                .map_err(|e| refused(e.into())),
        }
    }

    fn list_blocking(
        &self,
        bucket: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<ObjectInfo>, StorageError> {
        const OP: &str = "ListObjectsV2";
        let dir = self.bucket_dir(bucket)?;
        let Some(start) = self.list_start(&dir, bucket, prefix)? else {
            return Ok(Vec::new());
        };
        let io_error = |e| self.io_error(OP, bucket, prefix, e);
        let mut objects = Vec::new();
        let mut folders = vec![start];
        while let Some(folder) = folders.pop() {
            // Seen as a folder when listed; still one now? (The bucket's own may be a symlink.)
            if folder != dir {
                match std::fs::symlink_metadata(&folder) {
                    Ok(meta) if meta.file_type().is_symlink() => {
                        skipped_symlink(&folder);
                        continue;
                    }
                    Ok(meta) if meta.is_dir() => {}
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_error(e)),
                }
            }
            let entries = match std::fs::read_dir(&folder) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_error)?;
                // The entry itself, never what a symlink points to.
                let kind = entry.file_type().map_err(io_error)?;
                let path = entry.path();
                if kind.is_symlink() {
                    skipped_symlink(&path);
                    continue;
                }
                if kind.is_dir() {
                    folders.push(path);
                    continue;
                }
                if !kind.is_file() || entry.file_name().to_string_lossy().starts_with(PARTIAL) {
                    continue;
                }
                if let Some(object) = listed_object(&dir, prefix, &entry).map_err(io_error)? {
                    objects.push(object);
                }
                // More than `max`: which ones no longer matters, only that there are more.
                if objects.len() > max {
                    objects.truncate(max);
                    return Ok(objects);
                }
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// The folder a listing of `prefix` walks: only the one the prefix names, not the whole
    /// bucket; `None` when there is nothing to list (it is not there, or is behind a symlink).
    fn list_start(
        &self,
        dir: &Path,
        bucket: &str,
        prefix: &str,
    ) -> Result<Option<PathBuf>, StorageError> {
        const OP: &str = "ListObjectsV2";
        let start = match prefix.rfind('/') {
            Some(i) => {
                let folder = Path::new(&prefix[..i]);
                if folder
                    .components()
                    .any(|c| !matches!(c, Component::Normal(_)))
                {
                    return Err(StorageError::BadKey {
                        key: prefix.to_owned(),
                        why: "it has an absolute, '.' or '..' part",
                    });
                }
                // As if the walk had started at the bucket's folder: a symlinked folder on the
                // way is skipped, so nothing under it is listed.
                match check_folders(dir, folder, false) {
                    Ok(()) => {}
                    Err(Refusal::Symlink(p)) => {
                        skipped_symlink(&p);
                        return Ok(None);
                    }
                    Err(Refusal::Io(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(r) => return Err(self.refused(OP, bucket, prefix, r)),
                }
                dir.join(folder)
            }
            None => dir.to_path_buf(),
        };
        match check_inside(dir, &start) {
            Ok(()) => Ok(Some(start)),
            Err(Refusal::Io(e)) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(r) => Err(self.refused(OP, bucket, prefix, r)),
        }
    }

    fn head_blocking(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        const OP: &str = "HeadObject";
        let t = self.target(bucket, key)?;
        match check_folders(&t.dir, t.folders(), false) {
            Ok(()) => {}
            Err(Refusal::Io(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(r) => return Err(self.refused(OP, bucket, key, r)),
        }
        check_inside(&t.dir, t.folder()).map_err(|r| self.refused(OP, bucket, key, r))?;
        match std::fs::symlink_metadata(&t.path) {
            // A symlink is not an object: absent, as in a listing.
            Ok(meta) if meta.is_file() => Ok(Some(ObjectInfo {
                key: key.to_owned(),
                size: meta.len(),
                etag: etag(&meta),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error(OP, bucket, key, e)),
        }
    }

    fn copy_blocking(
        &self,
        from_bucket: &str,
        key: &str,
        to_bucket: &str,
        if_etag: &str,
    ) -> Result<(), StorageError> {
        const OP: &str = "CopyObject";
        StorageError::require_etag(OP, || self.location(from_bucket, key), if_etag)?;
        // The condition is checked on the file that was opened, so the bytes copied are those
        // with that ETag even if a new version is renamed into place meanwhile.
        let (info, mut source) = self.open_object(OP, from_bucket, key)?;
        if info.etag != if_etag {
            return Err(StorageError::changed_since_check(
                self.location(from_bucket, key),
                if_etag,
            ));
        }
        let t = self.target_for_write(OP, to_bucket, key)?;
        let (partial, mut file) = Partial::create(&t.path)
            .map_err(|e| self.refused(OP, to_bucket, key, no_follow_error(e, &t.path)))?;
        io::copy(&mut source, &mut file).map_err(|e| self.io_error(OP, from_bucket, key, e))?;
        let always = PutCondition::Always;
        self.place(OP, to_bucket, key, &t, &partial.0, &file, &always)
            .map(|_| ())
    }

    fn put_blocking(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        condition: &PutCondition,
    ) -> Result<String, StorageError> {
        const OP: &str = "PutObject";
        if let PutCondition::IfMatch(etag) = condition {
            StorageError::require_etag(OP, || self.location(bucket, key), etag)?;
        }
        let t = self.target_for_write(OP, bucket, key)?;
        let io_error = |e| self.io_error(OP, bucket, key, e);
        let (partial, mut file) = Partial::create(&t.path)
            .map_err(|e| self.refused(OP, bucket, key, no_follow_error(e, &t.path)))?;
        file.write_all(body).map_err(io_error)?;
        // The ETag of what this write placed, whatever another writer does after.
        self.place(OP, bucket, key, &t, &partial.0, &file, condition)
    }
}

/// Checks each folder of `folder` (relative to `dir`, a bucket's folder), from the top: each must
/// be a real folder, not a symlink. With `create`, a missing folder is made, then checked (in case
/// another process put something there first).
/// A regular file met by a listing, as an object, if its key is under `prefix` and it is still
/// there.
fn listed_object(
    dir: &Path,
    prefix: &str,
    entry: &std::fs::DirEntry,
) -> io::Result<Option<ObjectInfo>> {
    let path = entry.path();
    let Ok(relative) = path.strip_prefix(dir) else {
        return Ok(None);
    };
    let key = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    if !key.starts_with(prefix) {
        return Ok(None);
    }
    // Does not follow symlinks on Unix (`lstat`); gone since read: not listed.
    let meta = match entry.metadata() {
        Ok(meta) if meta.is_file() => meta,
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(ObjectInfo {
        key,
        size: meta.len(),
        etag: etag(&meta),
    }))
}

fn check_folders(dir: &Path, folder: &Path, create: bool) -> Result<(), Refusal> {
    let mut at = dir.to_path_buf();
    for part in folder.components() {
        at.push(part);
        let meta = match std::fs::symlink_metadata(&at) {
            Ok(meta) => meta,
            Err(e) if create && e.kind() == io::ErrorKind::NotFound => {
                match std::fs::create_dir(&at) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e.into()),
                }
                std::fs::symlink_metadata(&at)?
            }
            Err(e) => return Err(e.into()),
        };
        if meta.file_type().is_symlink() {
            return Err(Refusal::Symlink(at));
        }
        if !meta.is_dir() {
            return Err(if create {
                Refusal::NotAFolder(at)
            } else {
                // As S3 sees it: no object has that key.
                io::Error::from(io::ErrorKind::NotFound).into()
            });
        }
    }
    Ok(())
}

/// Defence in depth, after [`check_folders`]: `folder` resolves inside `dir`, a bucket's folder.
fn check_inside(dir: &Path, folder: &Path) -> Result<(), Refusal> {
    let bucket = std::fs::canonicalize(dir)?;
    let resolved = std::fs::canonicalize(folder)?;
    if resolved.starts_with(&bucket) {
        Ok(())
    } else {
        Err(Refusal::Outside(folder.to_path_buf()))
    }
}

/// Opens a file to read without following a symlink. `O_NONBLOCK` so that a FIFO in a bucket
/// cannot hang the open (it is refused as not a file after); it changes nothing for a file.
fn open_no_follow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// `O_NOFOLLOW` fails with `ELOOP` when the file is a symlink: say so.
fn no_follow_error(e: io::Error, path: &Path) -> Refusal {
    if e.raw_os_error() == Some(libc::ELOOP) {
        Refusal::Symlink(path.to_path_buf())
    } else {
        Refusal::Io(e)
    }
}

fn skipped_symlink(path: &Path) {
    tracing::warn!(
        path = %path.display(),
        "skipped a symlink in a local bucket: symlinks are not followed"
    );
}

/// A stand-in for S3's ETag, distinct for each version: every write renames a new file into
/// place, so the inode changes even when the size and the modification time (as fine as the
/// file system's clock) do not.
fn etag(meta: &Metadata) -> String {
    let modified = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default()
        .as_nanos();
    format!("\"{:x}-{modified:x}-{:x}\"", meta.len(), meta.ino())
}

/// Under the key's lock, before it is placed: makes the new version's modification time later
/// than the current version's, and returns the new version's ETag. Versions of a key then never
/// share an ETag, even when two are written within one tick of the file system's clock and the
/// newer gets the inode of an older one, since deleted (the file system must keep nanoseconds,
/// as ext4, XFS, Btrfs and tmpfs do; elsewhere the inode alone tells versions apart).
fn newer_than(file: &File, current: Option<&Metadata>) -> io::Result<String> {
    let meta = file.metadata()?;
    if let (Some(current), Ok(mine)) = (current, meta.modified()) {
        if let Ok(theirs) = current.modified() {
            if mine <= theirs {
                file.set_modified(theirs + Duration::from_nanos(1))?;
                return Ok(etag(&file.metadata()?));
            }
        }
    }
    Ok(etag(&meta))
}

/// A temporary file beside a key's file, removed when dropped unless it was renamed into place.
struct Partial(PathBuf);

impl Partial {
    fn create(dest: &Path) -> io::Result<(Partial, File)> {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let dir = dest.parent().expect("a key's file has a folder");
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        let unique = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(
            "{PARTIAL}{unique}-{}-{n}-{name}",
            std::process::id()
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)?;
        Ok((Partial(path), file))
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        // Gone after a rename; after a hard link, or a failure, this removes it.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A key's write lock: `flock(2)` on `{PARTIAL}lock-{name}` beside the key's file. Released (the
/// file removed, then closed) when dropped, or by the kernel when the holder dies.
struct KeyLock {
    path: PathBuf,
    _file: File,
}

impl KeyLock {
    fn acquire(dest: &Path) -> Result<KeyLock, Refusal> {
        let dir = dest.parent().expect("a key's file has a folder");
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        let path = dir.join(format!("{PARTIAL}{LOCK}{name}"));
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|e| no_follow_error(e, &path))?;
            // SAFETY: flock on a file descriptor that `file` owns and keeps open.
            let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if locked == 0 {
                // A holder removes the lock file before it lets go, so the file locked may be
                // one already removed: the lock counts only if it is still the file at `path`.
                let held = file.metadata()?;
                match std::fs::symlink_metadata(&path) {
                    Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                        return Ok(KeyLock { path, _file: file })
                    }
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(e.into());
            }
            drop(file);
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "another writer has held {} for over {} s",
                        path.display(),
                        LOCK_WAIT.as_secs()
                    ),
                )
                .into());
            }
            std::thread::sleep(LOCK_POLL);
        }
    }
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        // Removed while still locked; closing the file (the field, dropped next) unlocks it.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    op: &'static str,
    location: String,
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(StorageError::Other {
            op,
            location,
            detail: e.to_string(),
        }),
    }
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
        super::api::object_name(Some(&self.root), bucket, key)
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<ObjectInfo>, StorageError> {
        let (this, bucket, prefix) = (self.clone(), bucket.to_owned(), prefix.to_owned());
        let location = self.location(&bucket, &prefix);
        blocking("ListObjectsV2", location, move || {
            this.list_blocking(&bucket, &prefix, max)
        })
        .await
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        let (this, bucket, key) = (self.clone(), bucket.to_owned(), key.to_owned());
        let location = self.location(&bucket, &key);
        blocking("HeadObject", location, move || {
            this.head_blocking(&bucket, &key)
        })
        .await
    }

    async fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectInfo, Box<dyn Body>), StorageError> {
        let (this, owned_bucket, owned_key) = (self.clone(), bucket.to_owned(), key.to_owned());
        let location = self.location(bucket, key);
        let (info, file) = blocking("GetObject", location.clone(), move || {
            this.open_object("GetObject", &owned_bucket, &owned_key)
        })
        .await?;
        let body = FileBody {
            file: tokio::fs::File::from_std(file),
            location,
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
        let this = self.clone();
        let (from_bucket, key) = (from_bucket.to_owned(), key.to_owned());
        let (to_bucket, if_etag) = (to_bucket.to_owned(), if_etag.to_owned());
        let location = self.location(&to_bucket, &key);
        blocking("CopyObject", location, move || {
            this.copy_blocking(&from_bucket, &key, &to_bucket, &if_etag)
        })
        .await
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        _content_type: &str,
        condition: PutCondition,
    ) -> Result<String, StorageError> {
        let (this, bucket, key) = (self.clone(), bucket.to_owned(), key.to_owned());
        let location = self.location(&bucket, &key);
        blocking("PutObject", location, move || {
            this.put_blocking(&bucket, &key, &body, &condition)
        })
        .await
    }
}
