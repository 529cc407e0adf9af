//! Self-test for the in-process fake S3 server in src/fakes/aws.rs, driven by the real SDK.

use std::io::{Read, Write};
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::RequestChecksumCalculation;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use wdiv_test_support::fakes::aws::{self, FakeAws};

const BUCKET: &str = "uploads";

async fn sdk_config(fake: &FakeAws) -> aws_config::SdkConfig {
    aws::client_config(&fake.endpoint()).await
}

/// The configuration the program uses for its own client.
async fn client(fake: &FakeAws) -> Client {
    aws::s3_client(&sdk_config(fake).await)
}

/// A fake with `BUCKET` created, and a client for it.
async fn setup() -> (FakeAws, Client) {
    let fake = FakeAws::start();
    let client = client(&fake).await;
    client
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("create bucket");
    (fake, client)
}

async fn put(client: &Client, key: &str, body: &[u8]) -> String {
    let out = client
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    out.e_tag().expect("etag").to_string()
}

/// HTTP status and S3 error code of a failed call.
fn status_code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> (u16, String) {
    let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    (status, err.code().unwrap_or("").to_string())
}

fn ops(fake: &FakeAws) -> Vec<String> {
    fake.requests().into_iter().map(|r| r.op).collect()
}

fn count(fake: &FakeAws, op: &str) -> usize {
    fake.requests().iter().filter(|r| r.op == op).count()
}

#[tokio::test]
async fn create_bucket_is_idempotent_and_head_bucket_reports_existence() {
    let fake = FakeAws::start();
    let client = client(&fake).await;
    client.create_bucket().bucket("b1").send().await.unwrap();
    client.create_bucket().bucket("b1").send().await.unwrap();
    client.head_bucket().bucket("b1").send().await.unwrap();
    let err = client
        .head_bucket()
        .bucket("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&err).0, 404);
    assert!(err.into_service_error().is_not_found());
    assert!(fake.keys("b1").is_empty());
    assert_eq!(
        ops(&fake),
        ["CreateBucket", "CreateBucket", "HeadBucket", "HeadBucket"]
    );
}

#[tokio::test]
async fn put_get_round_trip_with_awkward_keys() {
    let (fake, client) = setup().await;
    let keys = [
        "with space.csv",
        "a+b.csv",
        "café/naïve.tsv",
        "deep/nested/dir/file.json",
        "x&<y>'\"z",
    ];
    for (i, key) in keys.iter().enumerate() {
        let body = format!("body {i} of {key}");
        client
            .put_object()
            .bucket(BUCKET)
            .key(*key)
            .content_type("text/csv")
            .body(ByteStream::from(body.clone().into_bytes()))
            .send()
            .await
            .unwrap();
        let got = client
            .get_object()
            .bucket(BUCKET)
            .key(*key)
            .send()
            .await
            .unwrap();
        assert_eq!(got.content_type(), Some("text/csv"));
        assert_eq!(got.content_length(), Some(body.len() as i64));
        let bytes = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(bytes.as_ref(), body.as_bytes(), "key {key}");
        assert_eq!(fake.object(BUCKET, key).as_deref(), Some(body.as_bytes()));
    }
    let mut sorted: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    sorted.sort();
    assert_eq!(fake.keys(BUCKET), sorted);
    // The key the server saw is the decoded one.
    let req = fake
        .requests()
        .into_iter()
        .find(|r| r.op == "PutObject")
        .unwrap();
    assert_eq!(req.key.as_deref(), Some("with space.csv"));
    assert_eq!(req.bucket, BUCKET);
    assert!(req
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "text/csv"));
}

#[tokio::test]
async fn head_object_reports_size_etag_and_type() {
    let (_fake, client) = setup().await;
    let etag = put(&client, "a.csv", b"hello world").await;
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
        "{etag}"
    );
    let head = client
        .head_object()
        .bucket(BUCKET)
        .key("a.csv")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(11));
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    // The SDK labels untyped bodies application/octet-stream.
    assert_eq!(head.content_type(), Some("application/octet-stream"));
    assert!(head.last_modified().is_some());
    // Same bytes, same ETag; different bytes, different ETag.
    assert_eq!(put(&client, "b.csv", b"hello world").await, etag);
    assert_ne!(put(&client, "c.csv", b"hello world!").await, etag);
    let err = client
        .head_object()
        .bucket(BUCKET)
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&err).0, 404);
    assert!(err.into_service_error().is_not_found());
}

#[tokio::test]
async fn list_paginates_in_key_order() {
    let (fake, client) = setup().await;
    for key in ["e", "c", "a", "d", "b b"] {
        put(&client, key, key.as_bytes()).await;
    }
    fake.set_page_size(2);
    let pages: Vec<_> = client
        .list_objects_v2()
        .bucket(BUCKET)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let keys: Vec<String> = pages
        .iter()
        .flat_map(|p| p.contents())
        .map(|o| o.key().unwrap().to_string())
        .collect();
    assert_eq!(keys, ["a", "b b", "c", "d", "e"]);
    assert_eq!(
        pages
            .iter()
            .map(|p| p.key_count().unwrap())
            .collect::<Vec<_>>(),
        [2, 2, 1]
    );
    assert_eq!(count(&fake, "ListObjectsV2"), 3);
    let first = &pages[0].contents()[0];
    assert_eq!(first.size(), Some(1));
    assert!(first.e_tag().unwrap().starts_with('"'));
    assert!(first.last_modified().is_some());
    // The request max-keys wins when it is smaller than the page size.
    let out = client
        .list_objects_v2()
        .bucket(BUCKET)
        .max_keys(1)
        .send()
        .await
        .unwrap();
    assert_eq!(out.contents().len(), 1);
    assert_eq!(out.is_truncated(), Some(true));
    assert!(out.next_continuation_token().is_some());
}

#[tokio::test]
async fn list_filters_by_prefix_and_rolls_up_delimiters() {
    let (fake, client) = setup().await;
    for key in [
        "in/a.csv",
        "in/b.csv",
        "in/sub/c.csv",
        "inside.csv",
        "out/d.csv",
    ] {
        put(&client, key, b"x").await;
    }
    let out = client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("in/")
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = out.contents().iter().map(|o| o.key().unwrap()).collect();
    assert_eq!(keys, ["in/a.csv", "in/b.csv", "in/sub/c.csv"]);
    assert_eq!(out.prefix(), Some("in/"));
    assert_eq!(out.is_truncated(), Some(false));

    let out = client
        .list_objects_v2()
        .bucket(BUCKET)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<_> = out
        .common_prefixes()
        .iter()
        .map(|p| p.prefix().unwrap())
        .collect();
    assert_eq!(prefixes, ["in/", "out/"]);
    let keys: Vec<_> = out.contents().iter().map(|o| o.key().unwrap()).collect();
    assert_eq!(keys, ["inside.csv"]);

    // Common prefixes paginate too: one entry per page, each prefix reported once.
    fake.set_page_size(1);
    let pages: Vec<_> = client
        .list_objects_v2()
        .bucket(BUCKET)
        .delimiter("/")
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let entries: Vec<String> = pages
        .iter()
        .flat_map(|p| {
            let prefixes = p
                .common_prefixes()
                .iter()
                .map(|c| c.prefix().unwrap().to_string());
            prefixes.chain(p.contents().iter().map(|o| o.key().unwrap().to_string()))
        })
        .collect();
    assert_eq!(entries, ["in/", "inside.csv", "out/"]);
}

#[tokio::test]
async fn list_with_url_encoding_encodes_keys() {
    let (fake, client) = setup().await;
    put(&client, "café dir/a+b.csv", b"x").await;
    // The SDK does not send encoding-type by default, so plain listing returns raw keys...
    let out = client
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert_eq!(out.contents()[0].key(), Some("café dir/a+b.csv"));
    let req = fake
        .requests()
        .into_iter()
        .rfind(|r| r.op == "ListObjectsV2")
        .unwrap();
    assert!(
        !req.query.iter().any(|(k, _)| k == "encoding-type"),
        "{:?}",
        req.query
    );
    // ...and asking for url encoding gets encoded keys back (the SDK does not decode them).
    let out = client
        .list_objects_v2()
        .bucket(BUCKET)
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(out.contents()[0].key(), Some("caf%C3%A9%20dir/a%2Bb.csv"));
    assert_eq!(
        out.encoding_type(),
        Some(&aws_sdk_s3::types::EncodingType::Url)
    );
}

#[tokio::test]
async fn missing_key_and_missing_bucket_errors() {
    let (_fake, client) = setup().await;
    let err = client
        .get_object()
        .bucket(BUCKET)
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), (404, "NoSuchKey".to_string()));
    assert!(err.into_service_error().is_no_such_key());

    let err = client
        .list_objects_v2()
        .bucket("no-bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), (404, "NoSuchBucket".to_string()));
    assert!(err.into_service_error().is_no_such_bucket());

    let err = client
        .get_object()
        .bucket("no-bucket")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), (404, "NoSuchBucket".to_string()));
    let err = client
        .put_object()
        .bucket("no-bucket")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), (404, "NoSuchBucket".to_string()));
}

#[tokio::test]
async fn copy_honours_source_if_match() {
    let (fake, client) = setup().await;
    client
        .put_object()
        .bucket(BUCKET)
        .key("src dir/café.csv")
        .content_type("text/csv")
        .body(ByteStream::from_static(b"a,b\n1,2\n"))
        .send()
        .await
        .unwrap();
    let etag = client
        .head_object()
        .bucket(BUCKET)
        .key("src dir/café.csv")
        .send()
        .await
        .unwrap();
    let etag = etag.e_tag().unwrap().to_string();
    // Copy sources must be URL-encoded by the caller.
    let source = format!("{BUCKET}/src%20dir/caf%C3%A9.csv");
    let out = client
        .copy_object()
        .bucket(BUCKET)
        .key("dst/copied.csv")
        .copy_source(&source)
        .copy_source_if_match(&etag)
        .send()
        .await
        .unwrap();
    let result = out.copy_object_result().unwrap();
    assert_eq!(result.e_tag(), Some(etag.as_str()));
    assert!(result.last_modified().is_some());
    assert_eq!(
        fake.object(BUCKET, "dst/copied.csv").as_deref(),
        Some(&b"a,b\n1,2\n"[..])
    );
    let head = client
        .head_object()
        .bucket(BUCKET)
        .key("dst/copied.csv")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/csv"));

    let err = client
        .copy_object()
        .bucket(BUCKET)
        .key("dst/other.csv")
        .copy_source(&source)
        .copy_source_if_match("\"0000\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), (412, "PreconditionFailed".to_string()));
    assert!(fake.object(BUCKET, "dst/other.csv").is_none());

    let err = client
        .copy_object()
        .bucket(BUCKET)
        .key("dst/other.csv")
        .copy_source(format!("/{BUCKET}/missing.csv"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), (404, "NoSuchKey".to_string()));
    assert_eq!(count(&fake, "CopyObject"), 3);
}

#[tokio::test]
async fn conditional_puts_and_gets() {
    let (fake, client) = setup().await;
    let put_if_none = || {
        client
            .put_object()
            .bucket(BUCKET)
            .key("lock")
            .if_none_match("*")
            .body(ByteStream::from_static(b"1"))
            .send()
    };
    put_if_none().await.unwrap();
    let err = put_if_none().await.unwrap_err();
    assert_eq!(status_code(&err), (412, "PreconditionFailed".to_string()));

    let etag = put(&client, "doc", b"v1").await;
    let put_if_match = |etag: &str, body: &'static [u8]| {
        client
            .put_object()
            .bucket(BUCKET)
            .key("doc")
            .if_match(etag)
            .body(ByteStream::from_static(body))
            .send()
    };
    let err = put_if_match("\"stale\"", b"v2").await.unwrap_err();
    assert_eq!(status_code(&err).0, 412);
    put_if_match(&etag, b"v2").await.unwrap();
    assert_eq!(fake.object(BUCKET, "doc").as_deref(), Some(&b"v2"[..]));

    let err = client
        .get_object()
        .bucket(BUCKET)
        .key("doc")
        .if_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), (412, "PreconditionFailed".to_string()));
}

#[tokio::test]
async fn delete_object_removes_it() {
    let (fake, client) = setup().await;
    put(&client, "gone soon", b"x").await;
    client
        .delete_object()
        .bucket(BUCKET)
        .key("gone soon")
        .send()
        .await
        .unwrap();
    assert!(fake.object(BUCKET, "gone soon").is_none());
    assert!(fake.keys(BUCKET).is_empty());
}

#[tokio::test]
async fn slow_down_is_retried_by_the_sdk() {
    let (fake, client) = setup().await;
    put(&client, "k", b"data").await;
    fake.fail_next("GetObject", 503, "SlowDown", 1);
    let got = client
        .get_object()
        .bucket(BUCKET)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"data"
    );
    assert_eq!(count(&fake, "GetObject"), 2);
}

#[tokio::test]
async fn access_denied_is_not_retried() {
    let (fake, client) = setup().await;
    put(&client, "k", b"data").await;
    fake.fail_next("GetObject", 403, "AccessDenied", 1);
    let err = client
        .get_object()
        .bucket(BUCKET)
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), (403, "AccessDenied".to_string()));
    assert_eq!(count(&fake, "GetObject"), 1);
    // The failure is used up; the next call succeeds.
    client
        .get_object()
        .bucket(BUCKET)
        .key("k")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn wildcard_failure_hits_any_operation() {
    let (fake, client) = setup().await;
    fake.fail_next("*", 500, "InternalError", 5);
    let err = client
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), (500, "InternalError".to_string()));
    // Default standard retry: 3 attempts in total.
    assert_eq!(count(&fake, "ListObjectsV2"), 3);
}

#[tokio::test]
async fn delay_trips_client_timeouts() {
    let fake = FakeAws::start();
    let sdk = sdk_config(&fake).await;
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_millis(200))
                .build(),
        )
        .build();
    let client = Client::from_conf(conf);
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    fake.delay("HeadBucket", Duration::from_secs(5));
    let started = std::time::Instant::now();
    let err = client
        .head_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, SdkError::TimeoutError(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn aws_chunked_bodies_are_decoded() {
    let fake = FakeAws::start();
    let sdk = sdk_config(&fake).await;
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenSupported)
        .build();
    let client = Client::from_conf(conf);
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    let body = b"id,name\n1,Polling station A\n".repeat(1000);
    // In-memory bodies get a checksum header; streamed (file) bodies get aws-chunked + trailer.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &body).unwrap();
    let stream = ByteStream::from_path(file.path()).await.unwrap();
    client
        .put_object()
        .bucket(BUCKET)
        .key("big.csv")
        .body(stream)
        .send()
        .await
        .unwrap();
    assert_eq!(fake.object(BUCKET, "big.csv").as_ref(), Some(&body));
    let req = fake
        .requests()
        .into_iter()
        .find(|r| r.op == "PutObject")
        .unwrap();
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header("content-encoding").as_deref(),
        Some("aws-chunked"),
        "{:?}",
        req.headers
    );
    assert_eq!(
        header("x-amz-decoded-content-length"),
        Some(body.len().to_string())
    );
    assert_eq!(
        header("x-amz-trailer").as_deref(),
        Some("x-amz-checksum-crc32"),
        "{:?}",
        req.headers
    );
}

#[tokio::test]
async fn requests_record_operations_and_unknown_calls_get_501() {
    let (fake, client) = setup().await;
    put(&client, "k", b"x").await;
    client
        .head_object()
        .bucket(BUCKET)
        .key("k")
        .send()
        .await
        .unwrap();
    client
        .get_object()
        .bucket(BUCKET)
        .key("k")
        .send()
        .await
        .unwrap();
    client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("k")
        .send()
        .await
        .unwrap();
    client
        .copy_object()
        .bucket(BUCKET)
        .key("k2")
        .copy_source(format!("{BUCKET}/k"))
        .send()
        .await
        .unwrap();
    client
        .delete_object()
        .bucket(BUCKET)
        .key("k")
        .send()
        .await
        .unwrap();
    let err = client
        .get_object_tagging()
        .bucket(BUCKET)
        .key("k2")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), (501, "NotImplemented".to_string()));
    assert!(err.message().unwrap_or("").contains("tagging"), "{err:?}");
    assert_eq!(
        ops(&fake),
        [
            "CreateBucket",
            "PutObject",
            "HeadObject",
            "GetObject",
            "ListObjectsV2",
            "CopyObject",
            "DeleteObject",
            "Unsupported"
        ]
    );
    let list = fake
        .requests()
        .into_iter()
        .find(|r| r.op == "ListObjectsV2")
        .unwrap();
    assert_eq!(list.method, "GET");
    assert!(list
        .query
        .contains(&("prefix".to_string(), "k".to_string())));
    assert!(list.headers.iter().any(|(k, _)| k == "authorization"));
}

/// The fake owns its runtime, so it works from a plain (non-async) test and shuts down on drop.
#[test]
fn works_outside_a_runtime() {
    let fake = FakeAws::start();
    let addr = fake.endpoint().trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "PUT /raw HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("x-amz-request-id: "),
        "{response}"
    );
    assert_eq!(fake.requests()[0].op, "CreateBucket");
    assert!(fake.keys("raw").is_empty());
    drop(fake);
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "server still listening after drop"
    );
}
