//! A fake SSM Parameter Store for tests: `GetParameter` only, in the AWS JSON 1.1 protocol
//! (`X-Amz-Target: AmazonSSM.GetParameter`) the real `aws-sdk-ssm` client speaks. A parameter
//! can be made unreadable (AccessDenied) to test the messages. Signatures are not checked.
//! The program reaches it through `AWS_ENDPOINT_URL_SSM`, which the SDK prefers to
//! `AWS_ENDPOINT_URL`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::server::AwsJsonFake;

#[derive(Default)]
struct State {
    /// name → (type, value)
    parameters: BTreeMap<String, (String, String)>,
    denied: BTreeSet<String>,
    /// Every GetParameter: (name, WithDecryption).
    requests: Vec<(String, bool)>,
}

pub struct FakeSsm {
    fake: AwsJsonFake<State>,
}

impl FakeSsm {
    pub fn start() -> FakeSsm {
        FakeSsm {
            fake: AwsJsonFake::start("fake-ssm", handle),
        }
    }

    pub fn endpoint(&self) -> String {
        self.fake.endpoint()
    }

    /// A SecureString parameter (decrypted only with WithDecryption).
    pub fn put_secure(&self, name: &str, value: &str) {
        self.put(name, "SecureString", value);
    }

    pub fn put(&self, name: &str, kind: &str, value: &str) {
        self.fake
            .state()
            .parameters
            .insert(name.into(), (kind.into(), value.into()));
    }

    /// Reading `name` answers AccessDeniedException, as for a role without ssm:GetParameter.
    pub fn deny(&self, name: &str) {
        self.fake.state().denied.insert(name.into());
    }

    /// The names asked for, with WithDecryption.
    pub fn requests(&self) -> Vec<(String, bool)> {
        self.fake.state().requests.clone()
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/x-amz-json-1.1")],
        json!({"__type": kind, "message": message}).to_string(),
    )
        .into_response()
}

fn handle(state: &Mutex<State>, target: &str, body: &str) -> Response {
    if target != "AmazonSSM.GetParameter" {
        return error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &format!("the fake does not do {target:?}"),
        );
    }
    let request: Value = serde_json::from_str(body).unwrap_or_default();
    let name = request["Name"].as_str().unwrap_or("").to_owned();
    let decrypt = request["WithDecryption"].as_bool().unwrap_or(false);
    let mut state = state.lock().unwrap();
    state.requests.push((name.clone(), decrypt));
    if state.denied.contains(&name) {
        return error(
            StatusCode::BAD_REQUEST,
            "AccessDeniedException",
            &format!("User is not authorized to perform: ssm:GetParameter on resource: {name}"),
        );
    }
    let Some((kind, value)) = state.parameters.get(&name).cloned() else {
        return error(StatusCode::BAD_REQUEST, "ParameterNotFound", "");
    };
    let value = if kind == "SecureString" && !decrypt {
        "AQICAHencrypted".to_owned()
    } else {
        value
    };
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        json!({"Parameter": {
            "Name": name,
            "Type": kind,
            "Value": value,
            "Version": 1,
            "ARN": format!("arn:aws:ssm:eu-west-2:000000000000:parameter{name}"),
            "DataType": "text"
        }})
        .to_string(),
    )
        .into_response()
}
