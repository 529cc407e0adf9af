//! A fake SQS queue for tests: `ReceiveMessage` and `DeleteMessage` in the AWS JSON 1.0
//! protocol (`X-Amz-Target: AmazonSQS.ReceiveMessage`) that recent `aws-sdk-sqs` clients speak,
//! with visibility timeouts and receipt handles as SQS has them. One queue, whatever its URL.
//! The program reaches it through `AWS_ENDPOINT_URL_SQS`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::server::AwsJsonFake;

struct Message {
    id: String,
    body: String,
    receipt: Option<String>,
    visible_at: Instant,
    receives: u32,
}

#[derive(Default)]
struct State {
    messages: Vec<Message>,
    next: u64,
    deleted: Vec<String>,
}

pub struct FakeSqs {
    fake: AwsJsonFake<State>,
}

impl FakeSqs {
    pub fn start() -> FakeSqs {
        FakeSqs {
            fake: AwsJsonFake::start("fake-sqs", handle),
        }
    }

    pub fn endpoint(&self) -> String {
        self.fake.endpoint()
    }

    /// A queue URL as SQS gives them.
    pub fn queue_url(&self) -> String {
        format!("{}/000000000000/wdiv-s3-trigger-failures", self.endpoint())
    }

    /// Puts a message in the queue; returns its id.
    pub fn send(&self, body: &str) -> String {
        let mut state = self.fake.state();
        state.next += 1;
        let id = format!("msg-{}", state.next);
        state.messages.push(Message {
            id: id.clone(),
            body: body.into(),
            receipt: None,
            visible_at: Instant::now(),
            receives: 0,
        });
        id
    }

    /// The ids of the messages still in the queue (visible or not).
    pub fn remaining(&self) -> Vec<String> {
        let state = self.fake.state();
        state.messages.iter().map(|m| m.id.clone()).collect()
    }

    /// The ids of the messages deleted, in order.
    pub fn deleted(&self) -> Vec<String> {
        self.fake.state().deleted.clone()
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/x-amz-json-1.0")],
        body.to_string(),
    )
        .into_response()
}

fn handle(state: &Mutex<State>, target: &str, body: &str) -> Response {
    let request: Value = serde_json::from_str(body).unwrap_or_default();
    let mut state = state.lock().unwrap();
    match target {
        "AmazonSQS.ReceiveMessage" => {
            let max = request["MaxNumberOfMessages"].as_u64().unwrap_or(1) as usize;
            let visibility = request["VisibilityTimeout"].as_u64().unwrap_or(30);
            let now = Instant::now();
            let mut out = Vec::new();
            let n = state.next;
            for (i, m) in state.messages.iter_mut().enumerate() {
                if out.len() == max {
                    break;
                }
                if m.visible_at > now {
                    continue;
                }
                m.receives += 1;
                m.visible_at = now + Duration::from_secs(visibility);
                let receipt = format!("receipt-{}-{n}-{i}-{}", m.id, m.receives);
                m.receipt = Some(receipt.clone());
                out.push(json!({
                    "MessageId": m.id,
                    "ReceiptHandle": receipt,
                    "MD5OfBody": "",
                    "Body": m.body,
                }));
            }
            state.next += 1;
            if out.is_empty() {
                answer(StatusCode::OK, json!({}))
            } else {
                answer(StatusCode::OK, json!({ "Messages": out }))
            }
        }
        "AmazonSQS.DeleteMessage" => {
            let receipt = request["ReceiptHandle"].as_str().unwrap_or("");
            match state
                .messages
                .iter()
                .position(|m| m.receipt.as_deref() == Some(receipt))
            {
                Some(i) => {
                    let m = state.messages.remove(i);
                    state.deleted.push(m.id);
                    answer(StatusCode::OK, json!({}))
                }
                None => answer(
                    StatusCode::BAD_REQUEST,
                    json!({"__type": "com.amazonaws.sqs#ReceiptHandleIsInvalid",
                           "message": "The receipt handle is not valid"}),
                ),
            }
        }
        other => answer(
            StatusCode::BAD_REQUEST,
            json!({"__type": "com.amazonaws.sqs#UnsupportedOperation",
                   "message": format!("the fake does not do {other:?}")}),
        ),
    }
}
