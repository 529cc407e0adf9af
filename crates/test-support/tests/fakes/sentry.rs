//! Self-test for the fake Sentry endpoint in src/fakes/sentry.rs. The real sentry client is
//! process-global, so only one test here initialises it; the others post envelopes by hand.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use wdiv_test_support::fakes::sentry::FakeSentry;

#[test]
fn real_sentry_client_delivers_events() {
    let fake = FakeSentry::start();
    let guard = sentry::init((
        fake.dsn(),
        sentry::ClientOptions {
            environment: Some("test".into()),
            release: Some("wdiv-s3-trigger@0.1.0".into()),
            ..Default::default()
        },
    ));
    assert!(guard.is_enabled());

    sentry::with_scope(
        |scope| scope.set_tag("effect", "github"),
        || sentry::capture_message("could not file the GitHub issue", sentry::Level::Warning),
    );
    sentry::with_scope(
        |scope| {
            scope.set_tag("council", "ABC");
            let mut upload = BTreeMap::new();
            upload.insert("key".to_string(), Value::from("ABC/2026-05-07/file.csv"));
            upload.insert("size".to_string(), Value::from(1234));
            scope.set_context("upload", sentry::protocol::Context::Other(upload));
        },
        || {
            let err = std::io::Error::other("bucket unreachable");
            sentry::capture_error(&err)
        },
    );
    drop(guard); // flushes (shutdown_timeout, 2 s by default)

    let events = fake.wait_for_events(2, Duration::from_secs(5));
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(fake.envelopes(), 2, "one envelope per event");

    let message = &events[0];
    assert_eq!(message["message"], "could not file the GitHub issue");
    assert_eq!(message["level"], "warning");
    assert_eq!(message["tags"]["effect"], "github");
    assert_eq!(message["environment"], "test");
    assert_eq!(message["release"], "wdiv-s3-trigger@0.1.0");
    assert_eq!(message["platform"], "native");
    // The `contexts` feature adds os/rust/device contexts.
    assert!(message["contexts"]["rust"].is_object(), "{message:#}");

    let error = &events[1];
    assert_eq!(error["tags"]["council"], "ABC");
    assert!(error["tags"].get("effect").is_none(), "scopes do not leak");
    assert_eq!(
        error["contexts"]["upload"]["key"],
        "ABC/2026-05-07/file.csv"
    );
    assert_eq!(error["contexts"]["upload"]["size"], 1234);
    let exception = &error["exception"]["values"][0];
    assert_eq!(exception["value"], "bucket unreachable");
    // The type is io::ErrorKind's Debug name; level "error" is the default, so it is omitted.
    assert_eq!(exception["type"], "Custom");
    assert!(error.get("level").is_none());
    assert_eq!(error["environment"], "test");

    // How it was sent.
    let envelopes = fake.envelope_list();
    let first = &envelopes[0];
    assert_eq!(first.project_id, "42");
    let auth = first.auth.as_deref().expect("X-Sentry-Auth");
    assert!(auth.starts_with("Sentry sentry_key=publickey"), "{auth}");
    // The envelope header has the hyphenated UUID, the event payload the simple form.
    let envelope_id = first.headers["event_id"].as_str().unwrap().replace('-', "");
    assert_eq!(envelope_id, message["event_id"].as_str().unwrap());
    assert_eq!(first.items.len(), 1);
    assert_eq!(first.items[0].ty, "event");
    assert!(first.items[0].headers["length"].is_u64());
    assert!(fake.rejections().is_empty());
}

async fn post(fake: &FakeSentry, body: &'static [u8], gzip: bool) -> reqwest::Response {
    let url = format!("{}/api/42/envelope/", fake.url());
    let mut req = reqwest::Client::new()
        .post(url)
        .header(
            "x-sentry-auth",
            "Sentry sentry_key=publickey, sentry_version=7",
        )
        .body(body);
    if gzip {
        req = req.header("content-encoding", "gzip");
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn parses_items_with_and_without_length() {
    let fake = FakeSentry::start();
    let body: &[u8] = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n\
{\"type\":\"attachment\",\"length\":11,\"filename\":\"a.txt\"}\n\
line1\nline2\n\
{\"type\":\"event\"}\n\
{\"message\":\"no length\",\"level\":\"info\"}\n\
{\"type\":\"event\",\"length\":19}\n\
{\"message\":\"sized\"}\n";
    let r = post(&fake, body, false).await;
    assert_eq!(r.status(), 200);
    let reply: Value = r.json().await.unwrap();
    assert_eq!(reply["id"], "9ec79c33ec9942ab8353589fcb2e04dc");
    let events = fake.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["message"], "no length");
    assert_eq!(events[1]["message"], "sized");
    let attachment = &fake.items("attachment")[0];
    assert_eq!(attachment.payload, b"line1\nline2");

    // Last item without length and without a trailing newline.
    let r = post(
        &fake,
        b"{}\n{\"type\":\"event\"}\n{\"message\":\"eof\"}",
        false,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(fake.events()[2]["message"], "eof");
    assert_eq!(fake.envelopes(), 2);
}

#[tokio::test]
async fn refuses_what_it_cannot_parse() {
    let fake = FakeSentry::start();
    let r = post(&fake, b"\x1f\x8b...", true).await;
    assert_eq!(r.status(), 400);
    let reply: Value = r.json().await.unwrap();
    assert!(reply["detail"]
        .as_str()
        .unwrap()
        .contains("does not decode Content-Encoding: gzip"));

    let r = post(
        &fake,
        b"{}\n{\"type\":\"event\",\"length\":99}\n{}\n",
        false,
    )
    .await;
    assert_eq!(r.status(), 400);

    let r = reqwest::Client::new()
        .post(format!("{}/api/42/envelope/", fake.url()))
        .body("{}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    fake.fail_next(503, 1);
    assert_eq!(post(&fake, b"{}\n", false).await.status(), 503);
    assert_eq!(post(&fake, b"{}\n", false).await.status(), 200);

    assert_eq!(fake.envelopes(), 1);
    assert_eq!(fake.rejections().len(), 4);
    assert!(fake.events().is_empty());
}
