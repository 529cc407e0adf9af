//! The WDIV fake and the hook every fake shares, driven with reqwest as the program's webhook
//! client does: a hook that drops a request leaves the fake unchanged; one that runs after it
//! sees the fake's work done before the answer leaves.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;
use wdiv_test_support::fakes::wdiv;

#[tokio::test]
async fn council_names_and_webhook_posts_are_answered_and_kept() {
    let fake = wdiv::FakeWdiv::start("Testshire District Council");
    let http = reqwest::Client::new();
    let council: serde_json::Value = http
        .get(format!("{}/councils/E07000223.json", fake.api_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(council["name"], "Testshire District Council");
    assert_eq!(council["council_id"], "E07000223");
    let posted = http
        .post(fake.webhook_url())
        .header("Authorization", "Token t")
        .json(&json!({"gss": "E07000223"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].body["gss"], "E07000223");
    assert_eq!(posts[0].authorization, "Token t");
}

#[tokio::test]
async fn a_hook_drops_a_request_unhandled_or_acts_after_the_fake_did() {
    let fake = Arc::new(wdiv::FakeWdiv::start("Testshire District Council"));
    let http = reqwest::Client::new();
    // The first request is dropped; the second is handled, then the hook looks at the fake.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen_after = Arc::new(AtomicUsize::new(usize::MAX));
    let hook: wdiv::Hook = {
        let (calls, seen_after, fake) = (calls.clone(), seen_after.clone(), fake.clone());
        Arc::new(move |method: &str, target: &str| {
            assert_eq!((method, target), ("POST", "/api/beta/uploads/"));
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(()),
                _ => {
                    let (seen_after, fake) = (seen_after.clone(), fake.clone());
                    Ok(Some(
                        Box::new(move || seen_after.store(fake.posts().len(), Ordering::SeqCst))
                            as Box<dyn FnOnce() + Send>,
                    ))
                }
            }
        })
    };
    fake.set_hook(Some(hook));
    let post = || http.post(fake.webhook_url()).json(&json!({"n": 1})).send();
    assert_eq!(post().await.unwrap().status(), 503);
    assert!(fake.posts().is_empty(), "a dropped request changes nothing");
    assert_eq!(post().await.unwrap().status(), 200);
    assert_eq!(
        seen_after.load(Ordering::SeqCst),
        1,
        "the hook ran after the post was kept"
    );
    fake.set_hook(None);
    assert_eq!(post().await.unwrap().status(), 200);
    assert_eq!(fake.posts().len(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
