//! Local buckets hold what councils uploaded, so nothing in them may point elsewhere: symlinks are
//! never followed, neither to read nor to write. And their conditional writes are real
//! compare-and-swaps, as S3's are: of concurrent writers on one condition, exactly one wins.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use wdiv_s3_trigger::{LocalStorage, PutCondition, Storage, StorageError};

const TEMP: &str = "temp";
const FINAL: &str = "final";
const KEY: &str = "X01/2024-05-02/t/stations.csv";
const REPORT: &str = "X01/2024-05-02/t/report.json";

/// Two buckets under `root`, and a folder beside them that nothing may reach.
struct Buckets {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    storage: LocalStorage,
}

fn buckets() -> Buckets {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("local-buckets");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let storage = LocalStorage::new(&root);
    storage.create_bucket(TEMP).unwrap();
    storage.create_bucket(FINAL).unwrap();
    Buckets {
        _dir: dir,
        root,
        outside,
        storage,
    }
}

fn symlink(target: &Path, link: &Path) {
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// Everything under `dir`, without following symlinks.
fn entries_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path.clone());
            }
            found.push(path);
        }
    }
    found
}

async fn put(storage: &LocalStorage, bucket: &str, key: &str, body: &str) -> String {
    storage
        .put(
            bucket,
            key,
            Bytes::copy_from_slice(body.as_bytes()),
            "text/csv",
            PutCondition::Always,
        )
        .await
        .unwrap()
}

async fn keys(storage: &LocalStorage, bucket: &str, prefix: &str) -> Vec<String> {
    storage
        .list(bucket, prefix, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect()
}

async fn read(storage: &LocalStorage, bucket: &str, key: &str) -> Vec<u8> {
    let (_, mut body) = storage.get(bucket, key).await.unwrap();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next_chunk().await.unwrap() {
        bytes.extend_from_slice(&chunk);
    }
    bytes
}

/// A refusal that names where, and says why.
fn assert_symlink_refused<T>(result: Result<T, StorageError>, names: &str) {
    let Err(err) = result else {
        panic!("expected a refusal naming {names}, but it succeeded");
    };
    let message = err.to_string();
    assert!(
        message.contains("symlink") && message.contains("not followed"),
        "{message}"
    );
    assert!(message.contains(names), "{message} does not name {names}");
}

#[tokio::test]
async fn a_symlinked_file_in_a_bucket_is_not_listed_and_not_read() {
    let b = buckets();
    let secret = b.outside.join("secret.csv");
    std::fs::write(&secret, "outside the bucket").unwrap();
    put(&b.storage, TEMP, KEY, "real").await;
    let linked = "X01/2024-05-02/t/a.csv";
    symlink(&secret, &b.root.join(TEMP).join(linked));
    let absolute = "X01/2024-05-02/t/passwd.csv";
    symlink(Path::new("/etc/passwd"), &b.root.join(TEMP).join(absolute));

    for prefix in ["X01/2024-05-02/t/", "X01/", ""] {
        assert_eq!(keys(&b.storage, TEMP, prefix).await, [KEY], "{prefix:?}");
    }
    for key in [linked, absolute] {
        assert_eq!(b.storage.head(TEMP, key).await.unwrap(), None, "{key}");
        assert_symlink_refused(b.storage.get(TEMP, key).await, key);
        let any_etag = "\"0-0-0\"";
        assert_symlink_refused(
            b.storage.copy(TEMP, key, FINAL, any_etag, "text/csv").await,
            key,
        );
    }
    assert!(entries_under(&b.root.join(FINAL)).is_empty());
    assert_eq!(read(&b.storage, TEMP, KEY).await, b"real");
}

#[tokio::test]
async fn a_symlinked_folder_in_the_final_bucket_stops_copies_and_puts() {
    let b = buckets();
    let checked = put(&b.storage, TEMP, KEY, "checked bytes").await;
    let final_dir = b.root.join(FINAL);
    // The symlink at each depth of the key, the file itself last (dangling: a write through it
    // would create the file outside).
    let layouts: [(&str, PathBuf); 4] = [
        ("X01", b.outside.clone()),
        ("X01/2024-05-02", b.outside.clone()),
        ("X01/2024-05-02/t", b.outside.clone()),
        (
            "X01/2024-05-02/t/stations.csv",
            b.outside.join("stations.csv"),
        ),
    ];
    for (linked, target) in layouts {
        std::fs::remove_dir_all(&final_dir).unwrap();
        std::fs::create_dir(&final_dir).unwrap();
        symlink(&target, &final_dir.join(linked));

        assert_symlink_refused(
            b.storage.copy(TEMP, KEY, FINAL, &checked, "text/csv").await,
            linked,
        );
        for condition in [
            PutCondition::Always,
            PutCondition::IfAbsent,
            PutCondition::IfMatch(checked.clone()),
        ] {
            let key = if linked.ends_with(".csv") {
                KEY
            } else {
                REPORT
            };
            let put = b
                .storage
                .put(FINAL, key, Bytes::from_static(b"{}"), "x", condition)
                .await;
            assert_symlink_refused(put, linked);
        }
        if !linked.ends_with(".csv") {
            assert_symlink_refused(b.storage.head(FINAL, REPORT).await, linked);
            assert_symlink_refused(b.storage.get(FINAL, REPORT).await, linked);
        }
        assert_eq!(entries_under(&b.outside), Vec::<PathBuf>::new(), "{linked}");
        assert!(keys(&b.storage, FINAL, "").await.is_empty(), "{linked}");
    }
}

#[tokio::test]
async fn a_symlinked_folder_in_the_temp_bucket_is_not_listed_into() {
    let b = buckets();
    std::fs::create_dir_all(b.outside.join("deeper")).unwrap();
    std::fs::write(b.outside.join("a.csv"), "outside").unwrap();
    std::fs::write(b.outside.join("deeper/b.csv"), "outside").unwrap();
    let real = "X01/2024-05-02/u/real.csv";
    put(&b.storage, TEMP, real, "real").await;
    symlink(&b.outside, &b.root.join(TEMP).join("X01/2024-05-02/t"));
    symlink(&b.outside, &b.root.join(TEMP).join("Y02"));

    for prefix in [
        "X01/2024-05-02/t/",
        "X01/2024-05-02/t/deeper/",
        "Y02/",
        "Y02/deeper/",
    ] {
        assert!(keys(&b.storage, TEMP, prefix).await.is_empty(), "{prefix}");
    }
    for prefix in ["X01/", "X01/2024-05-02/", ""] {
        assert_eq!(keys(&b.storage, TEMP, prefix).await, [real], "{prefix:?}");
    }
    assert_symlink_refused(
        b.storage.get(TEMP, "X01/2024-05-02/t/a.csv").await,
        "X01/2024-05-02/t",
    );
    assert_symlink_refused(b.storage.get(TEMP, "Y02/deeper/b.csv").await, "Y02");
}

#[tokio::test]
async fn a_listing_still_stops_after_max_and_symlinks_do_not_count() {
    let b = buckets();
    for name in ["a", "b", "c"] {
        put(
            &b.storage,
            TEMP,
            &format!("X01/2024-05-02/t/{name}.csv"),
            name,
        )
        .await;
    }
    for name in ["0", "1", "2", "3"] {
        let link = b
            .root
            .join(TEMP)
            .join(format!("X01/2024-05-02/t/{name}.csv"));
        symlink(&b.outside, &link);
    }
    let listed = |max| b.storage.list(TEMP, "X01/", max);
    assert_eq!(listed(2).await.unwrap().len(), 2);
    assert_eq!(listed(3).await.unwrap().len(), 3);
    let all: Vec<String> = listed(4)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        all,
        [
            "X01/2024-05-02/t/a.csv",
            "X01/2024-05-02/t/b.csv",
            "X01/2024-05-02/t/c.csv"
        ]
    );
}

#[tokio::test]
async fn buckets_reached_through_a_symlink_still_work() {
    // The local buckets on another disk, and one bucket elsewhere again.
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk/buckets");
    std::fs::create_dir_all(&disk).unwrap();
    let root = dir.path().join("local-buckets");
    symlink(&disk, &root);
    let elsewhere = dir.path().join("other-disk/final");
    std::fs::create_dir_all(&elsewhere).unwrap();
    symlink(&elsewhere, &root.join(FINAL));
    let storage = LocalStorage::new(&root);
    storage.create_bucket(TEMP).unwrap();
    storage.create_bucket(FINAL).unwrap();

    let etag = put(&storage, TEMP, KEY, "stations").await;
    assert_eq!(keys(&storage, TEMP, "X01/").await, [KEY]);
    assert_eq!(storage.head(TEMP, KEY).await.unwrap().unwrap().etag, etag);
    assert_eq!(read(&storage, TEMP, KEY).await, b"stations");
    storage
        .copy(TEMP, KEY, FINAL, &etag, "text/csv")
        .await
        .unwrap();
    let report = storage
        .put(
            FINAL,
            REPORT,
            Bytes::from_static(b"{}"),
            "application/json",
            PutCondition::IfAbsent,
        )
        .await
        .unwrap();
    storage
        .put(
            FINAL,
            REPORT,
            Bytes::from_static(b"{\"v\":2}"),
            "application/json",
            PutCondition::IfMatch(report),
        )
        .await
        .unwrap();
    assert_eq!(keys(&storage, FINAL, "").await, [REPORT, KEY]);
    assert_eq!(
        std::fs::read(disk.join(TEMP).join(KEY)).unwrap(),
        b"stations"
    );
    assert_eq!(std::fs::read(elsewhere.join(KEY)).unwrap(), b"stations");
    assert_eq!(std::fs::read(elsewhere.join(REPORT)).unwrap(), b"{\"v\":2}");
}

const WRITERS: usize = 8;
const ROUNDS: usize = 50;

/// `WRITERS` tasks, released together, each putting its own body on `condition`: each one's body
/// and result.
async fn race(
    storage: &Arc<LocalStorage>,
    key: &str,
    round: usize,
    condition: PutCondition,
) -> Vec<(String, Result<String, StorageError>)> {
    let start = Arc::new(tokio::sync::Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (storage, start, key) = (storage.clone(), start.clone(), key.to_owned());
            let condition = condition.clone();
            tokio::spawn(async move {
                // The same length for every body: the ETag must not rest on size and time alone.
                let body = format!("round {round:03} writer {w}");
                start.wait().await;
                let result = storage
                    .put(
                        FINAL,
                        &key,
                        Bytes::from(body.clone()),
                        "application/json",
                        condition,
                    )
                    .await;
                (body, result)
            })
        })
        .collect();
    let mut results = Vec::new();
    for writer in writers {
        results.push(writer.await.unwrap());
    }
    results
}

/// Exactly one writer won, the others were told the condition failed, and the object is the
/// winner's, with the ETag the winner was given.
async fn assert_one_winner(
    storage: &LocalStorage,
    key: &str,
    round: usize,
    results: Vec<(String, Result<String, StorageError>)>,
) {
    let mut winners = Vec::new();
    for (body, result) in results {
        match result {
            Ok(etag) => winners.push((body, etag)),
            Err(StorageError::ConditionFailed { .. }) => {}
            Err(e) => panic!("round {round}: expected ConditionFailed, got {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
    let (body, etag) = &winners[0];
    assert_eq!(
        read(storage, FINAL, key).await,
        body.as_bytes(),
        "round {round}"
    );
    let now = storage.head(FINAL, key).await.unwrap().unwrap().etag;
    assert_eq!(&now, etag, "round {round}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn of_concurrent_writers_if_match_the_same_version_exactly_one_wins() {
    let b = buckets();
    let storage = Arc::new(b.storage.clone());
    put(&storage, FINAL, REPORT, "round --- writer -").await;
    for round in 0..ROUNDS {
        let read = storage.head(FINAL, REPORT).await.unwrap().unwrap().etag;
        let results = race(&storage, REPORT, round, PutCondition::IfMatch(read)).await;
        assert_one_winner(&storage, REPORT, round, results).await;
    }
    // No lock or temporary file is left behind.
    let left = entries_under(&b.root.join(FINAL).join("X01/2024-05-02/t"));
    assert_eq!(left, [b.root.join(FINAL).join(REPORT)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn of_concurrent_writers_if_absent_on_a_new_key_exactly_one_wins() {
    let b = buckets();
    let storage = Arc::new(b.storage.clone());
    for round in 0..ROUNDS {
        let key = format!("X01/2024-05-02/t{round}/report.json");
        let results = race(&storage, &key, round, PutCondition::IfAbsent).await;
        assert_one_winner(&storage, &key, round, results).await;
    }
}

#[tokio::test]
async fn every_version_has_its_own_etag() {
    let b = buckets();
    // Same size, written as fast as can be: within one tick of a coarse file system clock.
    let mut seen = HashSet::new();
    for n in 0..ROUNDS {
        let etag = put(&b.storage, FINAL, REPORT, &format!("version {n:03}")).await;
        assert!(
            seen.insert(etag.clone()),
            "version {n} has an earlier ETag {etag}"
        );
    }
    // An ETag read before a same-size rewrite no longer matches.
    let stale = b.storage.head(FINAL, REPORT).await.unwrap().unwrap().etag;
    put(&b.storage, FINAL, REPORT, "version 998").await;
    let late = b
        .storage
        .put(
            FINAL,
            REPORT,
            Bytes::from_static(b"version 999"),
            "application/json",
            PutCondition::IfMatch(stale),
        )
        .await;
    assert!(
        matches!(late, Err(StorageError::ConditionFailed { .. })),
        "{late:?}"
    );
    assert_eq!(read(&b.storage, FINAL, REPORT).await, b"version 998");

    // Two versions of one size with one modification time, as a coarse clock gives two writes
    // within one tick: still two ETags, and the older one no longer matches.
    let path = b.root.join(FINAL).join(REPORT);
    let first = b.storage.head(FINAL, REPORT).await.unwrap().unwrap().etag;
    let first_modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    put(&b.storage, FINAL, REPORT, "version 997").await;
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_modified(first_modified).unwrap();
    drop(file);
    let second = b.storage.head(FINAL, REPORT).await.unwrap().unwrap().etag;
    assert_ne!(first, second);
    let late = b
        .storage
        .put(
            FINAL,
            REPORT,
            Bytes::from_static(b"version 999"),
            "application/json",
            PutCondition::IfMatch(first),
        )
        .await;
    assert!(
        matches!(late, Err(StorageError::ConditionFailed { .. })),
        "{late:?}"
    );
    assert_eq!(read(&b.storage, FINAL, REPORT).await, b"version 997");
}

#[tokio::test]
async fn a_lock_left_by_a_crashed_writer_does_not_block() {
    let b = buckets();
    let etag = put(&b.storage, FINAL, REPORT, "before").await;
    // What a writer that died holding the key's lock leaves: the file, which no one has locked.
    let lock = b
        .root
        .join(FINAL)
        .join("X01/2024-05-02/t/.partial-lock-report.json");
    std::fs::write(&lock, "").unwrap();
    let started = std::time::Instant::now();
    b.storage
        .put(
            FINAL,
            REPORT,
            Bytes::from_static(b"after"),
            "application/json",
            PutCondition::IfMatch(etag),
        )
        .await
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(read(&b.storage, FINAL, REPORT).await, b"after");
    assert!(!lock.exists());
    assert_eq!(keys(&b.storage, FINAL, "").await, [REPORT]);
}
