//! A fake Lambda API for tests: `Invoke` only (REST-JSON,
//! `POST /2015-03-31/functions/{name}/invocations`), which records each invocation and answers
//! an asynchronous one (`X-Amz-Invocation-Type: Event`) with 202, as Lambda does when it has
//! queued the event. Unknown functions get ResourceNotFoundException. The program reaches it
//! through `AWS_ENDPOINT_URL_LAMBDA`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::server::Server;

/// One invocation as the fake received it.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub function: String,
    pub invocation_type: String,
    pub payload: Value,
}

#[derive(Default)]
struct State {
    functions: BTreeSet<String>,
    invocations: Vec<Invocation>,
}

pub struct FakeLambda {
    server: Server,
    state: Arc<Mutex<State>>,
}

impl FakeLambda {
    /// A Lambda API that knows the functions `functions`.
    pub fn start(functions: &[&str]) -> FakeLambda {
        let state = Arc::new(Mutex::new(State {
            functions: functions.iter().map(|f| f.to_string()).collect(),
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        let app = axum::Router::new().route(
            "/2015-03-31/functions/{name}/invocations",
            axum::routing::post(
                move |Path(name): Path<String>, headers: HeaderMap, body: String| {
                    let state = Arc::clone(&shared);
                    async move { invoke(&state, name, &headers, &body) }
                },
            ),
        );
        FakeLambda {
            server: Server::start("fake-lambda-api", app),
            state,
        }
    }

    pub fn endpoint(&self) -> String {
        self.server.url()
    }

    pub fn invocations(&self) -> Vec<Invocation> {
        self.state.lock().unwrap().invocations.clone()
    }
}

fn invoke(state: &Mutex<State>, name: String, headers: &HeaderMap, body: &str) -> Response {
    let mut state = state.lock().unwrap();
    if !state.functions.contains(&name) {
        return (
            StatusCode::NOT_FOUND,
            [
                ("content-type", "application/json"),
                ("x-amzn-errortype", "ResourceNotFoundException"),
            ],
            json!({"Type": "User", "message": format!("Function not found: {name}")}).to_string(),
        )
            .into_response();
    }
    let invocation_type = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_owned();
    state.invocations.push(Invocation {
        function: name,
        invocation_type: invocation_type.clone(),
        payload: serde_json::from_str(body).unwrap_or(Value::Null),
    });
    let status = if invocation_type == "Event" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    (status, [("content-type", "application/json")], "").into_response()
}
