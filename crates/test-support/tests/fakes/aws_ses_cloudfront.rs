//! Self-test for the SES v2 and CloudFront parts of the in-process fake AWS server in
//! src/fakes/aws.rs, driven by the real SDK clients on the same endpoint as S3.

use std::time::{Duration, Instant};

use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use wdiv_test_support::fakes::aws::{self, FakeAws, Invalidation, SentEmail};

const DIST: &str = "EDFDVBD6EXAMPLE";

struct Clients {
    ses: aws_sdk_sesv2::Client,
    cloudfront: aws_sdk_cloudfront::Client,
    s3: aws_sdk_s3::Client,
}

async fn setup() -> (FakeAws, Clients) {
    let fake = FakeAws::start();
    let sdk = aws::client_config(&fake.endpoint()).await;
    let clients = Clients {
        ses: aws_sdk_sesv2::Client::new(&sdk),
        cloudfront: aws_sdk_cloudfront::Client::new(&sdk),
        s3: wdiv_test_support::fakes::aws::s3_client(&sdk),
    };
    (fake, clients)
}

/// HTTP status and AWS error code of a failed call.
fn status_code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> (u16, String) {
    let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    (status, err.code().unwrap_or("").to_string())
}

fn count(fake: &FakeAws, op: &str) -> usize {
    fake.requests().iter().filter(|r| r.op == op).count()
}

fn text(data: &str) -> Content {
    Content::builder().data(data).build().unwrap()
}

fn simple(subject: &str, body: &str) -> EmailContent {
    let body = Body::builder().text(text(body)).build();
    let message = Message::builder().subject(text(subject)).body(body).build();
    EmailContent::builder().simple(message).build()
}

fn to(address: &str) -> Destination {
    Destination::builder().to_addresses(address).build()
}

fn batch(caller_reference: &str, paths: &[&str]) -> InvalidationBatch {
    let mut builder = Paths::builder().quantity(paths.len() as i32);
    for path in paths {
        builder = builder.items(*path);
    }
    InvalidationBatch::builder()
        .paths(builder.build().unwrap())
        .caller_reference(caller_reference)
        .build()
        .unwrap()
}

async fn invalidate(
    clients: &Clients,
    distribution: &str,
    caller_reference: &str,
    paths: &[&str],
) -> Result<
    aws_sdk_cloudfront::operation::create_invalidation::CreateInvalidationOutput,
    SdkError<aws_sdk_cloudfront::operation::create_invalidation::CreateInvalidationError>,
> {
    clients
        .cloudfront
        .create_invalidation()
        .distribution_id(distribution)
        .invalidation_batch(batch(caller_reference, paths))
        .send()
        .await
}

// ---------------------------------------------------------------------------------------------
// SES v2

#[tokio::test]
async fn send_email_is_recorded_and_read_back() {
    let (fake, clients) = setup().await;
    let body = Body::builder()
        .text(text("Your file was checked.\nAll good."))
        .html(text("<p>Your file was checked.</p>"))
        .build();
    let message = Message::builder()
        .subject(text("Upload report: Café & <Co>"))
        .body(body)
        .build();
    let out = clients
        .ses
        .send_email()
        .from_email_address("WhereDoIVote <noreply@example.org>")
        .destination(
            Destination::builder()
                .to_addresses("council@example.gov.uk")
                .to_addresses("second@example.gov.uk")
                .cc_addresses("team@example.org")
                .bcc_addresses("audit@example.org")
                .build(),
        )
        .reply_to_addresses("help@example.org")
        .content(EmailContent::builder().simple(message).build())
        .send()
        .await
        .expect("send email");
    let message_id = out.message_id().expect("message id").to_string();
    assert_eq!(
        fake.sent_emails(),
        [SentEmail {
            message_id,
            from: "WhereDoIVote <noreply@example.org>".into(),
            to: vec![
                "council@example.gov.uk".into(),
                "second@example.gov.uk".into()
            ],
            cc: vec!["team@example.org".into()],
            subject: "Upload report: Café & <Co>".into(),
            text: "Your file was checked.\nAll good.".into(),
            html: Some("<p>Your file was checked.</p>".into()),
        }]
    );
    let req = &fake.requests()[0];
    assert_eq!(
        (req.op.as_str(), req.method.as_str(), req.bucket.as_str()),
        ("SendEmail", "POST", "")
    );
    assert_eq!(req.key, None);
    let header = |name: &str| req.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    assert!(header("authorization").is_some_and(|a| a.contains("/eu-west-2/ses/aws4_request")));
    assert_eq!(
        header("content-type").map(String::as_str),
        Some("application/json")
    );
}

#[tokio::test]
async fn send_email_validation_errors_are_bad_requests() {
    let (fake, clients) = setup().await;
    // No destination at all.
    let err = clients
        .ses
        .send_email()
        .from_email_address("noreply@example.org")
        .content(simple("s", "b"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), (400, "BadRequestException".to_string()));
    assert!(
        err.message().unwrap_or("").contains("Destination"),
        "{err:?}"
    );
    assert!(err.into_service_error().is_bad_request_exception());
    // An empty destination.
    let err = clients
        .ses
        .send_email()
        .from_email_address("noreply@example.org")
        .destination(Destination::builder().build())
        .content(simple("s", "b"))
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_bad_request_exception());
    // No sender.
    let err = clients
        .ses
        .send_email()
        .destination(to("council@example.gov.uk"))
        .content(simple("s", "b"))
        .send()
        .await
        .unwrap_err();
    assert!(err.message().unwrap_or("").contains("FromEmailAddress"));
    assert!(err.into_service_error().is_bad_request_exception());
    // A malformed address.
    let err = clients
        .ses
        .send_email()
        .from_email_address("noreply@example.org")
        .destination(to("not-an-address"))
        .content(simple("s", "b"))
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_bad_request_exception());
    // Validation errors are not retried, and nothing was sent.
    assert_eq!(count(&fake, "SendEmail"), 4);
    assert!(fake.sent_emails().is_empty());
}

#[tokio::test]
async fn send_email_throttling_is_retried_by_the_sdk() {
    let (fake, clients) = setup().await;
    fake.fail_next("SendEmail", 429, "TooManyRequestsException", 1);
    fake.fail_next("SendEmail", 503, "ServiceUnavailable", 1);
    clients
        .ses
        .send_email()
        .from_email_address("noreply@example.org")
        .destination(to("council@example.gov.uk"))
        .content(simple("retried", "b"))
        .send()
        .await
        .expect("the SDK retries 429 TooManyRequestsException and 503");
    // Standard retry: 3 attempts in total, the third succeeds.
    assert_eq!(count(&fake, "SendEmail"), 3);
    assert_eq!(fake.sent_emails().len(), 1);
}

#[tokio::test]
async fn send_email_persistent_throttling_surfaces_the_modeled_error() {
    let (fake, clients) = setup().await;
    fake.fail_next("SendEmail", 429, "TooManyRequestsException", 5);
    let err = clients
        .ses
        .send_email()
        .from_email_address("noreply@example.org")
        .destination(to("council@example.gov.uk"))
        .content(simple("s", "b"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&err),
        (429, "TooManyRequestsException".to_string())
    );
    assert!(err.message().unwrap_or("").contains("Injected"));
    assert!(err.into_service_error().is_too_many_requests_exception());
    assert_eq!(count(&fake, "SendEmail"), 3);
    assert!(fake.sent_emails().is_empty());
}

#[tokio::test]
async fn unimplemented_ses_calls_get_501() {
    let (fake, clients) = setup().await;
    let err = clients.ses.get_account().send().await.unwrap_err();
    assert_eq!(status_code(&err), (501, "NotImplemented".to_string()));
    let raw = aws_sdk_sesv2::types::RawMessage::builder()
        .data(aws_smithy_types::Blob::new(
            b"Subject: hi\r\n\r\nbody".to_vec(),
        ))
        .build()
        .unwrap();
    let err = clients
        .ses
        .send_email()
        .from_email_address("noreply@example.org")
        .destination(to("council@example.gov.uk"))
        .content(EmailContent::builder().raw(raw).build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), (501, "NotImplemented".to_string()));
    let ops: Vec<_> = fake.requests().into_iter().map(|r| r.op).collect();
    // 501 is not a transient status: no retries.
    assert_eq!(ops, ["Unsupported", "SendEmail"]);
}

// ---------------------------------------------------------------------------------------------
// CloudFront

#[tokio::test]
async fn create_then_get_invalidation() {
    let (fake, clients) = setup().await;
    fake.create_distribution(DIST);
    let out = invalidate(&clients, DIST, "ref-1", &["/a/*", "/b & c/index.html"])
        .await
        .expect("create invalidation");
    let inv = out.invalidation().expect("invalidation");
    assert!(inv.id().starts_with('I'), "{inv:?}");
    assert_eq!(inv.status(), "InProgress");
    let sent = inv.invalidation_batch().expect("batch");
    assert_eq!(sent.caller_reference(), "ref-1");
    let paths = sent.paths().expect("paths");
    assert_eq!(paths.quantity(), 2);
    assert_eq!(paths.items(), ["/a/*", "/b & c/index.html"]);
    let location = out.location().expect("location");
    assert!(
        location.ends_with(&format!(
            "/2020-05-31/distribution/{DIST}/invalidation/{}",
            inv.id()
        )),
        "{location}"
    );
    let created = inv.create_time().secs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - created).abs() < 60, "{created} vs {now}");
    assert_eq!(
        fake.invalidations(),
        [Invalidation {
            id: inv.id().to_string(),
            distribution_id: DIST.into(),
            caller_reference: "ref-1".into(),
            paths: vec!["/a/*".into(), "/b & c/index.html".into()],
            status: "InProgress".into(),
        }]
    );

    // The next GetInvalidation completes it.
    let got = clients
        .cloudfront
        .get_invalidation()
        .distribution_id(DIST)
        .id(inv.id())
        .send()
        .await
        .expect("get invalidation");
    let got = got.invalidation().expect("invalidation");
    assert_eq!(got.id(), inv.id());
    assert_eq!(got.status(), "Completed");
    assert_eq!(got.invalidation_batch(), inv.invalidation_batch());
    assert_eq!(got.create_time(), inv.create_time());
    assert_eq!(fake.invalidations()[0].status, "Completed");

    let err = clients
        .cloudfront
        .get_invalidation()
        .distribution_id(DIST)
        .id("INOSUCHONE")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), (404, "NoSuchInvalidation".to_string()));
    assert!(err.into_service_error().is_no_such_invalidation());

    let ops: Vec<_> = fake.requests().into_iter().map(|r| r.op).collect();
    assert_eq!(
        ops,
        ["CreateInvalidation", "GetInvalidation", "GetInvalidation"]
    );
    let req = &fake.requests()[0];
    assert_eq!((req.method.as_str(), req.bucket.as_str()), ("POST", ""));
    assert!(req
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && v.contains("/cloudfront/aws4_request")));
}

#[tokio::test]
async fn same_caller_reference_and_paths_returns_the_existing_invalidation() {
    let (fake, clients) = setup().await;
    fake.create_distribution(DIST);
    let first = invalidate(&clients, DIST, "ref-1", &["/a/*", "/b"])
        .await
        .unwrap();
    let again = invalidate(&clients, DIST, "ref-1", &["/a/*", "/b"])
        .await
        .unwrap();
    assert_eq!(first.invalidation(), again.invalidation());
    assert_eq!(first.location(), again.location());
    assert_eq!(fake.invalidations().len(), 1);
    assert_eq!(count(&fake, "CreateInvalidation"), 2);
    // The same reference on another distribution is a different invalidation.
    fake.create_distribution("EOTHER");
    let other = invalidate(&clients, "EOTHER", "ref-1", &["/a/*", "/b"])
        .await
        .unwrap();
    assert_ne!(
        other.invalidation().unwrap().id(),
        first.invalidation().unwrap().id()
    );
    assert_eq!(fake.invalidations().len(), 2);
}

#[tokio::test]
async fn same_caller_reference_with_other_paths_conflicts() {
    let (fake, clients) = setup().await;
    fake.create_distribution(DIST);
    invalidate(&clients, DIST, "ref-1", &["/a/*"])
        .await
        .unwrap();
    let err = invalidate(&clients, DIST, "ref-1", &["/b/*"])
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&err),
        (409, "InvalidationBatchAlreadyExists".to_string())
    );
    // Not a modeled error of CreateInvalidation: it arrives as an unhandled error with the code.
    assert!(err.into_service_error().meta().code() == Some("InvalidationBatchAlreadyExists"));
    assert_eq!(fake.invalidations().len(), 1);
    assert_eq!(count(&fake, "CreateInvalidation"), 2);
}

#[tokio::test]
async fn unknown_distribution_is_no_such_distribution() {
    let (fake, clients) = setup().await;
    fake.create_distribution(DIST);
    let err = invalidate(&clients, "ENOPE", "ref-1", &["/a"])
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), (404, "NoSuchDistribution".to_string()));
    assert!(err.message().unwrap_or("").contains("distribution"));
    assert!(err.into_service_error().is_no_such_distribution());
    let err = clients
        .cloudfront
        .get_invalidation()
        .distribution_id("ENOPE")
        .id("I1")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_no_such_distribution());
    let err = clients
        .cloudfront
        .list_invalidations()
        .distribution_id("ENOPE")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_no_such_distribution());
    assert!(fake.invalidations().is_empty());
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn invalid_batches_are_rejected() {
    let (fake, clients) = setup().await;
    fake.create_distribution(DIST);
    let err = invalidate(&clients, DIST, "ref-1", &["no-leading-slash"])
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), (400, "InvalidArgument".to_string()));
    // A `*` is a wildcard only as the last character.
    let err = invalidate(&clients, DIST, "ref-1", &["/a/b*.csv"])
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), (400, "InvalidArgument".to_string()));
    let wrong_quantity = InvalidationBatch::builder()
        .paths(Paths::builder().quantity(2).items("/a").build().unwrap())
        .caller_reference("ref-2")
        .build()
        .unwrap();
    let err = clients
        .cloudfront
        .create_invalidation()
        .distribution_id(DIST)
        .invalidation_batch(wrong_quantity)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&err),
        (400, "InconsistentQuantities".to_string())
    );
    assert!(err.into_service_error().is_inconsistent_quantities());
    assert!(fake.invalidations().is_empty());
}

#[tokio::test]
async fn injected_too_many_invalidations_is_not_retried() {
    let (fake, clients) = setup().await;
    fake.create_distribution(DIST);
    fake.fail_next(
        "CreateInvalidation",
        400,
        "TooManyInvalidationsInProgress",
        1,
    );
    let err = invalidate(&clients, DIST, "ref-1", &["/a"])
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&err),
        (400, "TooManyInvalidationsInProgress".to_string())
    );
    assert!(err.message().unwrap_or("").contains("Injected"));
    assert!(err
        .into_service_error()
        .is_too_many_invalidations_in_progress());
    // A 400 with a code outside the SDK's throttling list: one attempt, no retry.
    assert_eq!(count(&fake, "CreateInvalidation"), 1);
    assert!(fake.invalidations().is_empty());
    // The failure is used up.
    invalidate(&clients, DIST, "ref-1", &["/a"]).await.unwrap();
    assert_eq!(fake.invalidations().len(), 1);
}

#[tokio::test]
async fn injected_cloudfront_server_errors_are_retried() {
    let (fake, clients) = setup().await;
    fake.create_distribution(DIST);
    fake.fail_next("GetInvalidation", 500, "ServiceUnavailable", 1);
    fake.fail_next("ListInvalidations", 400, "Throttling", 1);
    let inv = invalidate(&clients, DIST, "ref-1", &["/a"]).await.unwrap();
    let id = inv.invalidation().unwrap().id();
    let got = clients
        .cloudfront
        .get_invalidation()
        .distribution_id(DIST)
        .id(id)
        .send()
        .await
        .unwrap();
    assert_eq!(got.invalidation().unwrap().status(), "Completed");
    assert_eq!(count(&fake, "GetInvalidation"), 2);
    let listed = clients
        .cloudfront
        .list_invalidations()
        .distribution_id(DIST)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.invalidation_list().unwrap().quantity(), 1);
    assert_eq!(count(&fake, "ListInvalidations"), 2);
}

#[tokio::test]
async fn max_in_progress_limits_creation_until_invalidations_complete() {
    let (fake, clients) = setup().await;
    fake.create_distribution(DIST);
    fake.create_distribution("EOTHER");
    fake.set_max_in_progress(1);
    let first = invalidate(&clients, DIST, "ref-1", &["/a"]).await.unwrap();
    let err = invalidate(&clients, DIST, "ref-2", &["/b"])
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&err),
        (400, "TooManyInvalidationsInProgress".to_string())
    );
    // The limit is per distribution, and a repeat of an existing batch is not a new one.
    invalidate(&clients, "EOTHER", "ref-2", &["/b"])
        .await
        .unwrap();
    invalidate(&clients, DIST, "ref-1", &["/a"]).await.unwrap();
    // Observing the first one completes it, which frees the slot.
    clients
        .cloudfront
        .get_invalidation()
        .distribution_id(DIST)
        .id(first.invalidation().unwrap().id())
        .send()
        .await
        .unwrap();
    invalidate(&clients, DIST, "ref-2", &["/b"]).await.unwrap();
    let statuses: Vec<_> = fake
        .invalidations()
        .into_iter()
        .map(|i| (i.distribution_id, i.caller_reference, i.status))
        .collect();
    let s = |d: &str, r: &str, st: &str| (d.to_string(), r.to_string(), st.to_string());
    assert_eq!(
        statuses,
        [
            s(DIST, "ref-1", "Completed"),
            s("EOTHER", "ref-2", "InProgress"),
            s(DIST, "ref-2", "InProgress"),
        ]
    );
}

#[tokio::test]
async fn list_invalidations_pages_newest_first() {
    let (fake, clients) = setup().await;
    fake.create_distribution(DIST);
    fake.create_distribution("EOTHER");
    let empty = clients
        .cloudfront
        .list_invalidations()
        .distribution_id(DIST)
        .send()
        .await
        .unwrap();
    let empty = empty.invalidation_list().unwrap();
    assert_eq!((empty.quantity(), empty.is_truncated()), (0, false));
    assert!(empty.items().is_empty());
    let mut ids = Vec::new();
    for i in 0..3 {
        let out = invalidate(&clients, DIST, &format!("ref-{i}"), &["/a"])
            .await
            .unwrap();
        ids.push(out.invalidation().unwrap().id().to_string());
    }
    invalidate(&clients, "EOTHER", "ref-x", &["/x"])
        .await
        .unwrap();
    let page = clients
        .cloudfront
        .list_invalidations()
        .distribution_id(DIST)
        .max_items(2)
        .send()
        .await
        .unwrap();
    let page = page.invalidation_list().unwrap();
    let got: Vec<_> = page.items().iter().map(|s| s.id().to_string()).collect();
    assert_eq!(got, [ids[2].clone(), ids[1].clone()]);
    assert!(page.is_truncated());
    assert_eq!(page.max_items(), 2);
    assert_eq!(page.next_marker(), Some(ids[1].as_str()));
    assert!(page.items().iter().all(|s| s.status() == "InProgress"));
    // The SDK paginator follows NextMarker.
    let all: Vec<_> = clients
        .cloudfront
        .list_invalidations()
        .distribution_id(DIST)
        .max_items(2)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let all: Vec<_> = all.iter().map(|s| s.id().to_string()).collect();
    assert_eq!(all, [ids[2].clone(), ids[1].clone(), ids[0].clone()]);
}

#[tokio::test]
async fn unimplemented_cloudfront_calls_get_501() {
    let (fake, clients) = setup().await;
    fake.create_distribution(DIST);
    let err = clients
        .cloudfront
        .get_distribution()
        .id(DIST)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&err), (501, "NotImplemented".to_string()));
    assert!(err
        .message()
        .unwrap_or("")
        .contains("/2020-05-31/distribution/"));
    assert_eq!(fake.requests()[0].op, "Unsupported");
}

#[tokio::test]
async fn injected_delays_apply_to_the_new_operations() {
    let (fake, clients) = setup().await;
    fake.delay("SendEmail", Duration::from_millis(300));
    let started = Instant::now();
    clients
        .ses
        .send_email()
        .from_email_address("noreply@example.org")
        .destination(to("council@example.gov.uk"))
        .content(simple("s", "b"))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

// ---------------------------------------------------------------------------------------------
// All services on one endpoint

#[tokio::test]
async fn s3_ses_and_cloudfront_share_one_endpoint() {
    let (fake, clients) = setup().await;
    fake.create_distribution(DIST);
    clients
        .s3
        .create_bucket()
        .bucket("uploads")
        .send()
        .await
        .unwrap();
    clients
        .s3
        .put_object()
        .bucket("uploads")
        .key("report.csv")
        .body(b"a,b\n".to_vec().into())
        .send()
        .await
        .unwrap();
    let got = clients
        .s3
        .get_object()
        .bucket("uploads")
        .key("report.csv")
        .send()
        .await
        .unwrap();
    let body = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(body.as_ref(), b"a,b\n");
    clients
        .ses
        .send_email()
        .from_email_address("noreply@example.org")
        .destination(to("council@example.gov.uk"))
        .content(simple("s", "b"))
        .send()
        .await
        .unwrap();
    invalidate(&clients, DIST, "ref-1", &["/*"]).await.unwrap();
    let ops: Vec<_> = fake
        .requests()
        .into_iter()
        .map(|r| (r.op, r.bucket))
        .collect();
    let op = |o: &str, b: &str| (o.to_string(), b.to_string());
    assert_eq!(
        ops,
        [
            op("CreateBucket", "uploads"),
            op("PutObject", "uploads"),
            op("GetObject", "uploads"),
            op("SendEmail", ""),
            op("CreateInvalidation", ""),
        ]
    );
    assert_eq!(fake.object("uploads", "report.csv").unwrap(), b"a,b\n");
    assert_eq!(fake.sent_emails().len(), 1);
    assert_eq!(fake.invalidations().len(), 1);
}

/// One raw HTTP/1.1 exchange (no SDK, unsigned): (status line, lower-cased head, body).
fn raw(fake: &FakeAws, method: &str, path: &str, body: &str) -> (String, String, String) {
    use std::io::{Read, Write};
    let addr = fake.endpoint().trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_string();
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// Unsigned requests are routed by path; the error shapes are the protocols' own.
#[test]
fn error_wire_shapes() {
    let fake = FakeAws::start();
    let (status, head, body) = raw(&fake, "POST", "/v2/email/outbound-emails", "{}");
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    assert!(
        head.contains("x-amzn-errortype: badrequestexception"),
        "{head}"
    );
    assert!(head.contains("x-amzn-requestid: "), "{head}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(json["message"]
        .as_str()
        .unwrap()
        .contains("FromEmailAddress"));

    fake.fail_next("SendEmail", 429, "TooManyRequestsException", 1);
    let (status, head, _) = raw(&fake, "POST", "/v2/email/outbound-emails", "{}");
    assert!(status.starts_with("HTTP/1.1 429"), "{status}");
    assert!(head.contains("x-amzn-errortype: toomanyrequestsexception"));

    let path = "/2020-05-31/distribution/ENOPE/invalidation";
    let (status, head, body) = raw(&fake, "GET", path, "");
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
    assert!(head.contains("content-type: text/xml"), "{head}");
    let expected = "<ErrorResponse xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\">\
        <Error><Type>Sender</Type><Code>NoSuchDistribution</Code>";
    assert!(body.contains(expected), "{body}");
    assert!(body.contains("</Error><RequestId>FAKES3"), "{body}");

    fake.fail_next("ListInvalidations", 503, "ServiceUnavailable", 1);
    let (status, _, body) = raw(&fake, "GET", path, "");
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    assert!(
        body.contains("<Type>Receiver</Type><Code>ServiceUnavailable</Code>"),
        "{body}"
    );

    let ops: Vec<_> = fake.requests().into_iter().map(|r| r.op).collect();
    assert_eq!(
        ops,
        [
            "SendEmail",
            "SendEmail",
            "ListInvalidations",
            "ListInvalidations"
        ]
    );
}
