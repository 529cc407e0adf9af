//! One behaviour, two implementations: every storage scenario runs against local folders and
//! against S3 (the in-process fake, or moto's server when `WDIV_TEST_S3_ENDPOINT` is set).

use std::sync::Arc;

use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use bytes::Bytes;
use wdiv_s3_trigger::{
    load_settings as load, read_small, sdk_config, LocalStorage, PutCondition, S3Storage,
    SettingsContext as Context, Storage, StorageError,
};

/// A storage with two empty buckets, and what keeps it alive.
struct Setup {
    storage: Arc<dyn Storage>,
    a: String,
    b: String,
    _keep: Box<dyn std::any::Any + Send>,
}

async fn local() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalStorage::new(dir.path());
    storage.create_bucket("bucket-a").unwrap();
    storage.create_bucket("bucket-b").unwrap();
    Setup {
        storage: Arc::new(storage),
        a: "bucket-a".into(),
        b: "bucket-b".into(),
        _keep: Box::new(dir),
    }
}

async fn s3() -> Setup {
    let world = wdiv_test_support::World::new().await;
    let env: Vec<(String, String)> = world
        .settings()
        .into_iter()
        .filter(|(k, _)| k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY")
        .collect();
    let settings = load(None, &env, Context::Cli).unwrap();
    // The program's SDK configuration, with the test credentials given to it rather than to the
    // process environment its default chain would read them from (the scenarios share it).
    let sdk = sdk_config(
        settings.aws_region.as_deref(),
        settings.aws_endpoint_url.as_deref(),
    )
    .await
    .into_builder()
    .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
        "test", "test", None, None, "test",
    )))
    .build();
    let storage = S3Storage::new(&sdk);
    Setup {
        storage: Arc::new(storage),
        a: world.temp.clone(),
        b: world.final_bucket.clone(),
        _keep: Box::new(world),
    }
}

async fn put(s: &Setup, bucket: &str, key: &str, body: &[u8]) {
    s.storage
        .put(
            bucket,
            key,
            Bytes::copy_from_slice(body),
            "text/csv",
            PutCondition::Always,
        )
        .await
        .unwrap();
}

async fn read(s: &Setup, bucket: &str, key: &str) -> Option<Vec<u8>> {
    read_small(s.storage.as_ref(), bucket, key, 1 << 20)
        .await
        .unwrap()
        .bytes()
}

async fn round_trip_with_awkward_keys(s: Setup) {
    for key in [
        "X01/2024-05-02/t/plain.csv",
        "X01/2024-05-02/t/Polling Stations + Districts.csv",
        "X01/2024-05-02/t/café.csv",
    ] {
        put(&s, &s.a, key, key.as_bytes()).await;
        assert_eq!(read(&s, &s.a, key).await.unwrap(), key.as_bytes(), "{key}");
        let info = s.storage.head(&s.a, key).await.unwrap().unwrap();
        assert_eq!(info.size, key.len() as u64);
        assert!(!info.etag.is_empty());
    }
}

async fn list_is_sorted_and_bounded_by_the_prefix(s: Setup) {
    for key in [
        "X01/2024-05-02/t2/b.csv",
        "X01/2024-05-02/t2/a.csv",
        "X01/2024-05-02/t20/other.csv",
        "X01/2024-05-02/t1/before.csv",
    ] {
        put(&s, &s.a, key, b"x").await;
    }
    let keys: Vec<String> = s
        .storage
        .list(&s.a, "X01/2024-05-02/t2/", 100)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, ["X01/2024-05-02/t2/a.csv", "X01/2024-05-02/t2/b.csv"]);
    assert!(s.storage.list(&s.a, "Y99/", 100).await.unwrap().is_empty());
}

async fn missing_things_are_named(s: Setup) {
    assert_eq!(s.storage.head(&s.a, "X/1/t/none.csv").await.unwrap(), None);
    match s.storage.get(&s.a, "X/1/t/none.csv").await {
        Err(StorageError::NoSuchKey { location }) => {
            assert!(location.contains(&s.a) && location.contains("X/1/t/none.csv"))
        }
        Err(other) => panic!("expected NoSuchKey, got {other}"),
        Ok(_) => panic!("expected NoSuchKey, got an object"),
    }
    match s.storage.list("no-such-bucket-here", "X/", 100).await {
        Err(StorageError::NoSuchBucket { bucket, .. }) => assert_eq!(bucket, "no-such-bucket-here"),
        other => panic!("expected NoSuchBucket, got {other:?}"),
    }
}

async fn copy_holds_only_for_the_checked_bytes(s: Setup) {
    let key = "X01/2024-05-02/t/stations.csv";
    put(&s, &s.a, key, b"first version").await;
    let checked = s.storage.head(&s.a, key).await.unwrap().unwrap().etag;
    s.storage
        .copy(&s.a, key, &s.b, &checked, "text/csv")
        .await
        .unwrap();
    assert_eq!(read(&s, &s.b, key).await.unwrap(), b"first version");
}

async fn a_copy_of_a_file_replaced_after_its_check_is_refused(s: Setup) {
    let key2 = "X01/2024-05-02/t/districts.csv";
    put(&s, &s.a, key2, b"checked bytes").await;
    let stale = s.storage.head(&s.a, key2).await.unwrap().unwrap().etag;
    put(&s, &s.a, key2, b"replaced after the check").await;
    let err = s
        .storage
        .copy(&s.a, key2, &s.b, &stale, "text/csv")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::ConditionFailed { .. }),
        "expected ConditionFailed, got {err}"
    );
    assert!(
        err.to_string().contains("changed after it was checked"),
        "{err}"
    );
    assert_eq!(read(&s, &s.b, key2).await, None);
}

async fn conditional_writes_hold(s: Setup) {
    let key = "X01/2024-05-02/t/report.json";
    let body = |t: &str| Bytes::copy_from_slice(t.as_bytes());
    s.storage
        .put(
            &s.b,
            key,
            body("one"),
            "application/json",
            PutCondition::IfAbsent,
        )
        .await
        .unwrap();
    let again = s
        .storage
        .put(
            &s.b,
            key,
            body("two"),
            "application/json",
            PutCondition::IfAbsent,
        )
        .await;
    assert!(matches!(again, Err(StorageError::ConditionFailed { .. })));
    let current = s.storage.head(&s.b, key).await.unwrap().unwrap().etag;
    s.storage
        .put(
            &s.b,
            key,
            body("three"),
            "application/json",
            PutCondition::IfMatch(current.clone()),
        )
        .await
        .unwrap();
    let stale = s
        .storage
        .put(
            &s.b,
            key,
            body("four"),
            "application/json",
            PutCondition::IfMatch(current),
        )
        .await;
    assert!(matches!(stale, Err(StorageError::ConditionFailed { .. })));
    assert_eq!(read(&s, &s.b, key).await.unwrap(), b"three");
}

async fn a_body_streams_in_chunks_to_the_end(s: Setup) {
    let key = "X01/2024-05-02/t/big.csv";
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    put(&s, &s.a, key, &big).await;
    let (info, mut body) = s.storage.get(&s.a, key).await.unwrap();
    assert_eq!(info.size, big.len() as u64);
    let mut got = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = body.next_chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
        chunks += 1;
    }
    assert_eq!(got, big);
    assert!(chunks > 1, "the body came in one piece");
}

/// A copy or an `If-Match` write with an empty ETag is a bug: refused before any request (S3
/// may take an empty `x-amz-copy-source-if-match` as no condition), and nothing is written.
async fn an_empty_etag_never_becomes_a_condition(s: Setup) {
    put(&s, &s.a, "X01/2024-05-02/t/page.html", b"<script>").await;
    for etag in ["", "\"\""] {
        let err = s
            .storage
            .copy(&s.a, "X01/2024-05-02/t/page.html", &s.b, etag, "text/html")
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::NoEtag { .. }), "{err}");
        assert!(err.to_string().contains("none was known (a bug"), "{err}");
        let err = s
            .storage
            .put(
                &s.a,
                "X01/2024-05-02/t/page.html",
                Bytes::from_static(b"replaced"),
                "text/html",
                PutCondition::IfMatch(etag.into()),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::NoEtag { .. }), "{err}");
    }
    assert_eq!(read(&s, &s.b, "X01/2024-05-02/t/page.html").await, None);
    assert_eq!(
        read(&s, &s.a, "X01/2024-05-02/t/page.html")
            .await
            .as_deref(),
        Some(&b"<script>"[..])
    );
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_local_folders {
            $(#[tokio::test] async fn $name() { super::$name(super::local().await).await })*
        }
        mod on_s3 {
            $(#[tokio::test] async fn $name() { super::$name(super::s3().await).await })*
        }
    };
}

contract!(
    round_trip_with_awkward_keys,
    list_is_sorted_and_bounded_by_the_prefix,
    missing_things_are_named,
    copy_holds_only_for_the_checked_bytes,
    a_copy_of_a_file_replaced_after_its_check_is_refused,
    conditional_writes_hold,
    a_body_streams_in_chunks_to_the_end,
    an_empty_etag_never_becomes_a_condition,
);

#[tokio::test]
async fn local_keys_cannot_leave_their_bucket() {
    let s = local().await;
    for key in ["../escape.csv", "/etc/passwd", "a/../../b.csv", "a\\b.csv"] {
        let err = s
            .storage
            .put(
                &s.a,
                key,
                Bytes::from_static(b"x"),
                "text/csv",
                PutCondition::Always,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::BadKey { .. }), "{key}: {err}");
    }
}
