//! A small, moto-like, in-process AWS server for tests: S3, plus SES v2 `SendEmail` and the
//! CloudFront invalidation calls, all on one loopback port (like moto's server mode), so a
//! single `endpoint_url` / `AWS_ENDPOINT_URL` serves every client.
//!
//! * **S3** speaks just enough of the REST-XML protocol (path-style addressing only) for
//!   `aws_sdk_s3::Client`.
//! * **SES v2** (REST-JSON): `POST /v2/email/outbound-emails` (`SendEmail`, simple content only).
//!   Sent mail is kept; read it back with [`FakeAws::sent_emails`].
//! * **CloudFront** (REST-XML, API version 2020-05-31): `CreateInvalidation`, `GetInvalidation`,
//!   `ListInvalidations` on distributions made with [`FakeAws::create_distribution`].
//!
//! A request is routed to a service by the service name in its SigV4 credential scope (`s3`,
//! `ses`, `cloudfront`), as moto does; unsigned requests go by path (`/v2/email/...` is SES,
//! `/2020-05-31/...` is CloudFront, anything else is S3). State lives in memory, every request
//! is recorded, and failures or delays can be injected per operation, in each protocol's own
//! error shape. Signatures are not checked.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet};

pub use super::server::Hook;
use super::server::{read_whole, Server, UNRESERVED};

/// The AWS configuration of a test's own clients: test credentials, eu-west-2, and `endpoint`
/// (a fake's, or an emulator's) for every service.
pub async fn client_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-2"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .endpoint_url(endpoint)
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .load()
        .await
}

/// A test's own S3 client on `sdk`: path-style addresses (an emulator or this fake serves no
/// bucket subdomains), and checksums only where S3 requires them, as the program sets its own.
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    aws_sdk_s3::Client::from_conf(config.build())
}

/// A running fake AWS server (S3, SES v2, CloudFront). Stops when dropped.
pub struct FakeAws {
    server: Server,
    shared: Arc<Mutex<State>>,
}

/// One request as the fake received it (key decoded, header names lower-case). For SES and
/// CloudFront requests `bucket` is "" and `key` is `None`.
#[derive(Clone, Debug)]
pub struct Request {
    pub op: String,
    pub method: String,
    pub bucket: String,
    pub key: Option<String>,
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
}

/// An email accepted by SES v2 `SendEmail` (simple content). BCC and Reply-To addresses are
/// accepted on the wire but not kept here.
#[derive(Clone, Debug, PartialEq)]
pub struct SentEmail {
    /// The `MessageId` returned to the caller.
    pub message_id: String,
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    /// The text part; "" if the message had only an HTML part.
    pub text: String,
    pub html: Option<String>,
}

/// A CloudFront invalidation the fake created.
#[derive(Clone, Debug, PartialEq)]
pub struct Invalidation {
    pub id: String,
    pub distribution_id: String,
    pub caller_reference: String,
    /// As sent, in request order.
    pub paths: Vec<String>,
    /// "InProgress" or "Completed".
    pub status: String,
}

#[derive(Clone)]
struct Object {
    data: Bytes,
    etag: String,
    content_type: String,
    content_disposition: Option<String>,
    modified_ms: u64,
}

struct Failure {
    op: String,
    status: u16,
    code: String,
    remaining: usize,
}

#[derive(Default)]
struct State {
    buckets: BTreeMap<String, BTreeMap<String, Object>>,
    requests: Vec<Request>,
    failures: Vec<Failure>,
    delays: HashMap<String, Duration>,
    page_size: usize,
    next_request_id: u64,
    emails: Vec<SentEmail>,
    distributions: BTreeSet<String>,
    /// Every invalidation created, oldest first, with its creation time (Unix ms).
    invalidations: Vec<(Invalidation, u64)>,
    max_in_progress: Option<usize>,
    next_id: u64,
}

impl FakeAws {
    /// Starts the server on 127.0.0.1:0 on its own thread with its own tokio runtime, so it
    /// works from both `#[test]` and `#[tokio::test]` functions; stops when dropped.
    pub fn start() -> FakeAws {
        let state = State {
            page_size: 1000,
            next_request_id: 1,
            next_id: 1,
            ..State::default()
        };
        let shared = Arc::new(Mutex::new(state));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let server = Server::start("fake-s3", app);
        FakeAws { server, shared }
    }

    /// Puts `hook` between every later request and the fake (see [`Hook`]); `None` removes it.
    pub fn set_hook(&self, hook: Option<Hook>) {
        self.server.set_hook(hook);
    }

    /// e.g. "http://127.0.0.1:41234"
    pub fn endpoint(&self) -> String {
        self.server.url()
    }

    /// Max keys per ListObjectsV2 page (default 1000; the page is min(this, request max-keys)).
    pub fn set_page_size(&self, n: usize) {
        self.state().page_size = n;
    }

    /// The next `count` requests whose operation is `op` (or any, for "*") get `status` with an
    /// error carrying `code`, in the shape of the operation's protocol: an S3 `<Error>` body, a
    /// REST-JSON error for SES (`x-amzn-ErrorType: {code}` and `{"message": ...}`), or a
    /// CloudFront `<ErrorResponse>`. Operation names are the AWS ones: "GetObject", ...,
    /// "SendEmail", "CreateInvalidation", "GetInvalidation", "ListInvalidations".
    pub fn fail_next(&self, op: &str, status: u16, code: &str, count: usize) {
        let failure = Failure {
            op: op.into(),
            status,
            code: code.into(),
            remaining: count,
        };
        self.state().failures.push(failure);
    }

    /// Delay every response to `op` (or to any, for "*") by `delay`.
    pub fn delay(&self, op: &str, delay: Duration) {
        self.state().delays.insert(op.to_string(), delay);
    }

    /// Stores `data` under each of `keys` in `bucket` at once, without a request each: a prefix
    /// of 10,000 objects in milliseconds. The bucket must exist.
    pub fn insert_objects(
        &self,
        bucket: &str,
        keys: impl IntoIterator<Item = String>,
        data: &[u8],
    ) {
        let mut state = self.state();
        let objects = state.buckets.get_mut(bucket).expect("the bucket exists");
        let data = Bytes::copy_from_slice(data);
        let etag = etag_of(&data);
        for key in keys {
            let obj = Object {
                data: data.clone(),
                etag: etag.clone(),
                content_type: "text/csv".into(),
                content_disposition: None,
                modified_ms: now_ms(),
            };
            objects.insert(key, obj);
        }
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.state().requests.clone()
    }

    pub fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        Some(self.state().buckets.get(bucket)?.get(key)?.data.to_vec())
    }

    /// Sorted; empty if there is no such bucket.
    /// An object's `Content-Type` and `Content-Disposition`, as GetObject would answer them.
    pub fn object_headers(&self, bucket: &str, key: &str) -> Option<(String, Option<String>)> {
        let state = self.state();
        let obj = state.buckets.get(bucket)?.get(key)?;
        Some((obj.content_type.clone(), obj.content_disposition.clone()))
    }

    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let state = self.state();
        state
            .buckets
            .get(bucket)
            .map(|b| b.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every email accepted by SES `SendEmail`, in order.
    pub fn sent_emails(&self) -> Vec<SentEmail> {
        self.state().emails.clone()
    }

    /// Creates (idempotently) a CloudFront distribution with this id; invalidation calls on any
    /// other distribution id get 404 `NoSuchDistribution`.
    pub fn create_distribution(&self, id: &str) {
        self.state().distributions.insert(id.to_string());
    }

    /// Every invalidation created, oldest first, with its current status. A `CreateInvalidation`
    /// that repeats an earlier CallerReference and paths is answered with the earlier
    /// invalidation and adds nothing here.
    ///
    /// A new invalidation is "InProgress"; the next `GetInvalidation` of it reports (and from
    /// then on it is) "Completed". `ListInvalidations` reports statuses without changing them.
    pub fn invalidations(&self) -> Vec<Invalidation> {
        let state = self.state();
        state.invalidations.iter().map(|(i, _)| i.clone()).collect()
    }

    /// From now on, `CreateInvalidation` on a distribution that already has `n` invalidations
    /// InProgress fails with 400 `TooManyInvalidationsInProgress` (AWS limits in-progress
    /// invalidations per distribution; the fake counts batches, not paths). Unlimited by default.
    pub fn set_max_in_progress(&self, n: usize) {
        self.state().max_in_progress = Some(n);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }
}

impl State {
    /// The objects of the request's bucket, or a NoSuchBucket error.
    fn bucket(&mut self, ctx: &Ctx) -> Result<&mut BTreeMap<String, Object>, ApiError> {
        self.buckets
            .get_mut(&ctx.bucket)
            .ok_or_else(ApiError::no_such_bucket)
    }
}

fn lock(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Routing

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    CreateBucket,
    HeadBucket,
    ListObjectsV2,
    HeadObject,
    GetObject,
    PutObject,
    CopyObject,
    DeleteObject,
    SendEmail,
    CreateInvalidation,
    GetInvalidation,
    ListInvalidations,
    Unsupported,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::CreateBucket => "CreateBucket",
            Op::HeadBucket => "HeadBucket",
            Op::ListObjectsV2 => "ListObjectsV2",
            Op::HeadObject => "HeadObject",
            Op::GetObject => "GetObject",
            Op::PutObject => "PutObject",
            Op::CopyObject => "CopyObject",
            Op::DeleteObject => "DeleteObject",
            Op::SendEmail => "SendEmail",
            Op::CreateInvalidation => "CreateInvalidation",
            Op::GetInvalidation => "GetInvalidation",
            Op::ListInvalidations => "ListInvalidations",
            Op::Unsupported => "Unsupported",
        }
    }
}

const LIST_PARAMS: &[&str] = &[
    "list-type",
    "prefix",
    "delimiter",
    "continuation-token",
    "max-keys",
    "start-after",
    "encoding-type",
    "fetch-owner",
];

/// Which AWS service a request is for; decides routing and the error shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    S3,
    Ses,
    CloudFront,
}

/// The CloudFront API version prefix of every CloudFront path.
const CLOUDFRONT_API: &str = "2020-05-31";

/// The service named in the SigV4 credential scope
/// (`Credential=AKID/20260101/eu-west-2/ses/aws4_request`), else by path for unsigned requests.
fn service_of(path: &str, headers: &HeaderMap) -> Service {
    let auth = headers.get("authorization").map(|v| lossy(v.as_bytes()));
    let scope = auth.as_deref().and_then(|a| a.split("Credential=").nth(1));
    let signed_for = scope.and_then(|s| s.split([',', ' ']).next()?.split('/').nth(3));
    match signed_for {
        Some("ses" | "email") => Service::Ses,
        Some("cloudfront") => Service::CloudFront,
        Some(_) => Service::S3,
        None if path.starts_with("/v2/email/") => Service::Ses,
        None if path.starts_with(&format!("/{CLOUDFRONT_API}/")) => Service::CloudFront,
        None => Service::S3,
    }
}

fn route(ctx: &Ctx) -> Op {
    let segments: Vec<&str> = ctx.segments.iter().map(String::as_str).collect();
    match (ctx.service, ctx.method.as_str(), segments.as_slice()) {
        (Service::S3, _, _) => route_s3(ctx),
        (Service::Ses, "POST", ["v2", "email", "outbound-emails"]) => Op::SendEmail,
        (
            Service::CloudFront,
            m,
            [CLOUDFRONT_API, "distribution", _, "invalidation", rest @ ..],
        ) => match (m, rest) {
            ("POST", []) => Op::CreateInvalidation,
            ("GET", []) => Op::ListInvalidations,
            ("GET", [_]) => Op::GetInvalidation,
            _ => Op::Unsupported,
        },
        _ => Op::Unsupported,
    }
}

/// Decides the S3 operation. Any sub-resource query we do not know (`?uploads`, `?tagging`,
/// `?acl`, ...) makes the request `Unsupported`; `x-id` is the SDK's operation hint.
fn route_s3(ctx: &Ctx) -> Op {
    let only = |allowed: &[&str]| {
        let known =
            |k: &String| k == "x-id" || k.starts_with("response-") || allowed.contains(&&**k);
        ctx.query.iter().all(|(k, _)| known(k))
    };
    let copy = ctx.headers.contains_key("x-amz-copy-source");
    match (ctx.method.as_str(), ctx.key.is_some()) {
        _ if ctx.bucket.is_empty() => Op::Unsupported,
        ("PUT", false) if only(&[]) => Op::CreateBucket,
        ("HEAD", false) if only(&[]) => Op::HeadBucket,
        ("GET", false) if ctx.q("list-type") == Some("2") && only(LIST_PARAMS) => Op::ListObjectsV2,
        ("HEAD", true) if only(&[]) => Op::HeadObject,
        ("GET", true) if only(&[]) => Op::GetObject,
        ("PUT", true) if only(&[]) && copy => Op::CopyObject,
        ("PUT", true) if only(&[]) => Op::PutObject,
        ("DELETE", true) if only(&[]) => Op::DeleteObject,
        _ => Op::Unsupported,
    }
}

/// Everything a handler needs to know about the request, minus the body.
struct Ctx {
    service: Service,
    /// The decoded path segments (what `bucket` and `key` are made of, for S3).
    segments: Vec<String>,
    method: Method,
    bucket: String,
    key: Option<String>,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    request_id: String,
}

/// An error of any service; `Ctx::render` gives it the service's wire shape (it knows the
/// service, the resource and the request id).
struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    fn no_such_bucket() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist",
        )
    }

    fn no_such_key() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        )
    }

    fn bad_request(code: &str, message: &str) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn not_implemented(message: String) -> ApiError {
        ApiError::new(StatusCode::NOT_IMPLEMENTED, "NotImplemented", message)
    }

    /// SES v2 validation error.
    fn ses_bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BadRequestException", message)
    }

    fn no_such_distribution() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NoSuchDistribution",
            "The specified distribution does not exist.",
        )
    }
}

/// What every handler returns; `Err` lets handlers use `?`.
type Reply = Result<Response, ApiError>;

impl Ctx {
    fn key(&self) -> &str {
        self.key.as_deref().unwrap_or_default()
    }

    fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| lossy(v.as_bytes()))
    }

    /// PreconditionFailed unless the conditional header `name` (if sent) holds for `etag`
    /// (`None` = no object). `must_match` is true for If-Match, false for If-None-Match.
    fn precondition(
        &self,
        name: &str,
        etag: Option<&str>,
        must_match: bool,
    ) -> Result<(), ApiError> {
        match self.header(name) {
            Some(cond) if etag_matches(&cond, etag) != must_match => Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                format!("At least one of the pre-conditions you specified did not hold: {name}"),
            )),
            _ => Ok(()),
        }
    }

    fn render(&self, error: ApiError) -> Response {
        match self.service {
            Service::S3 => self.render_s3(error),
            Service::Ses => {
                let body = serde_json::json!({ "message": error.message }).to_string();
                let headers = [
                    ("content-type", "application/json"),
                    ("x-amzn-errortype", error.code.as_str()),
                ];
                respond(error.status, &headers, body)
            }
            Service::CloudFront => {
                let kind = if error.status.is_server_error() {
                    "Receiver"
                } else {
                    "Sender"
                };
                let fields = [
                    tag("Type", kind),
                    tag("Code", xml_escape(&error.code)),
                    tag("Message", xml_escape(&error.message)),
                ];
                let body = format!(
                    "{XML_DECL}<ErrorResponse xmlns=\"{CLOUDFRONT_NS}\">{}{}</ErrorResponse>",
                    tag("Error", fields.concat()),
                    tag("RequestId", &self.request_id)
                );
                respond(error.status, &[("content-type", "text/xml")], body)
            }
        }
    }

    fn render_s3(&self, error: ApiError) -> Response {
        let resource = match &self.key {
            Some(key) => format!("/{}/{key}", self.bucket),
            None => format!("/{}", self.bucket),
        };
        let fields = [
            tag("Code", xml_escape(&error.code)),
            tag("Message", xml_escape(&error.message)),
            tag("Resource", xml_escape(&resource)),
            tag("RequestId", &self.request_id),
        ];
        // HEAD responses never carry a body; the SDK goes by the status alone.
        let body = match self.method {
            Method::HEAD => String::new(),
            _ => format!("{XML_DECL}{}", tag("Error", fields.concat())),
        };
        respond(error.status, &[("content-type", "application/xml")], body)
    }
}

async fn handle(
    AxumState(shared): AxumState<Arc<Mutex<State>>>,
    req: axum::extract::Request,
) -> Response {
    let (parts, body) = read_whole(req).await;
    let service = service_of(parts.uri.path(), &parts.headers);
    let path = parts.uri.path().trim_start_matches('/');
    let (bucket, key) = match service {
        Service::S3 => path.split_once('/').unwrap_or((path, "")),
        Service::Ses | Service::CloudFront => ("", ""),
    };
    let mut ctx = Ctx {
        service,
        segments: path.split('/').map(decode).collect(),
        method: parts.method,
        bucket: decode(bucket),
        key: Some(decode(key)).filter(|k| !k.is_empty()),
        query: parse_query(parts.uri.query().unwrap_or("")),
        headers: parts.headers,
        request_id: String::new(),
    };
    let op = route(&ctx);

    // Record the call and pick up any injected delay or failure, without holding the lock.
    let (delay, failure) = {
        let mut state = lock(&shared);
        ctx.request_id = format!("FAKES3{:010}", state.next_request_id);
        state.next_request_id += 1;
        let headers = ctx.headers.iter();
        state.requests.push(Request {
            op: op.name().to_string(),
            method: ctx.method.to_string(),
            bucket: ctx.bucket.clone(),
            key: ctx.key.clone(),
            headers: headers
                .map(|(k, v)| (k.to_string(), lossy(v.as_bytes())))
                .collect(),
            query: ctx.query.clone(),
        });
        let delay = state
            .delays
            .get(op.name())
            .or_else(|| state.delays.get("*"))
            .copied();
        let failure = state
            .failures
            .iter_mut()
            .find(|f| f.remaining > 0 && (f.op == op.name() || f.op == "*"))
            .map(|f| {
                f.remaining -= 1;
                (f.status, f.code.clone())
            });
        (delay, failure)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }

    let reply = if let Some((status, code)) = failure {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Err(ApiError::new(
            status,
            &code,
            "Injected failure from FakeAws::fail_next",
        ))
    } else {
        let state = &mut *lock(&shared);
        match op {
            Op::CreateBucket => create_bucket(state, &ctx),
            Op::HeadBucket => head_bucket(state, &ctx),
            Op::ListObjectsV2 => list_objects_v2(state, &ctx),
            Op::HeadObject => get_object(state, &ctx, true),
            Op::GetObject => get_object(state, &ctx, false),
            Op::PutObject => put_object(state, &ctx, body),
            Op::CopyObject => copy_object(state, &ctx),
            Op::DeleteObject => delete_object(state, &ctx),
            Op::SendEmail => send_email(state, &body),
            Op::CreateInvalidation => create_invalidation(state, &ctx, &body),
            Op::GetInvalidation => get_invalidation(state, &ctx),
            Op::ListInvalidations => list_invalidations(state, &ctx),
            Op::Unsupported => {
                let method = &ctx.method;
                let uri = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
                Err(ApiError::not_implemented(format!(
                    "FakeAws does not implement {method} {uri}"
                )))
            }
        }
    };
    let mut response = reply.unwrap_or_else(|error| ctx.render(error));
    let headers = response.headers_mut();
    let request_id = ctx.request_id.parse().unwrap();
    if service == Service::S3 {
        headers.insert("x-amz-request-id", request_id);
        headers.insert("x-amz-id-2", "fake-s3-host-id".parse().unwrap());
    } else {
        headers.insert("x-amzn-requestid", request_id);
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Handlers

fn create_bucket(state: &mut State, ctx: &Ctx) -> Reply {
    state.buckets.entry(ctx.bucket.clone()).or_default();
    Ok(respond(
        StatusCode::OK,
        &[("location", &format!("/{}", ctx.bucket))],
        "",
    ))
}

fn head_bucket(state: &mut State, ctx: &Ctx) -> Reply {
    state.bucket(ctx)?;
    Ok(respond(
        StatusCode::OK,
        &[("x-amz-bucket-region", "eu-west-2")],
        "",
    ))
}

/// One entry of a listing page: an object, or (with a delimiter) a rolled-up common prefix.
enum Entry<'a> {
    Key(&'a str, &'a Object),
    Prefix(String),
}

fn list_objects_v2(state: &mut State, ctx: &Ctx) -> Reply {
    let page_size = state.page_size;
    let objects = state.bucket(ctx)?;
    let prefix = ctx.q("prefix").unwrap_or("");
    let delimiter = ctx.q("delimiter").filter(|d| !d.is_empty());
    let url = match ctx.q("encoding-type") {
        None => false,
        Some("url") => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "InvalidArgument",
                "Invalid Encoding Method",
            ))
        }
    };
    let max_keys = match ctx.q("max-keys").map(str::parse::<usize>) {
        None => 1000,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return Err(ApiError::bad_request(
                "InvalidArgument",
                "max-keys is not an integer",
            ))
        }
    };
    // Continuation tokens are "K<hex key>" (resume after a key) or "P<hex prefix>" (skip a
    // whole common prefix that was already returned).
    let token = ctx.q("continuation-token");
    let (after, skip_prefix) = match token.map(|t| t.split_at_checked(1)) {
        None => (ctx.q("start-after").map(str::to_string), None),
        Some(Some(("K", hex))) if hex_decode(hex).is_some() => (hex_decode(hex), None),
        Some(Some(("P", hex))) if hex_decode(hex).is_some() => (None, hex_decode(hex)),
        Some(_) => {
            return Err(ApiError::bad_request(
                "InvalidArgument",
                "The continuation token provided is incorrect",
            ))
        }
    };
    let limit = page_size.min(max_keys);

    let mut entries: Vec<Entry> = Vec::new();
    let mut truncated = false;
    for (key, obj) in objects.iter() {
        let seen = after.as_deref().is_some_and(|a| key.as_str() <= a)
            || skip_prefix
                .as_deref()
                .is_some_and(|p| key.as_str() < p || key.starts_with(p));
        if seen || !key.starts_with(prefix) {
            continue;
        }
        let rolled_up =
            delimiter.and_then(|d| Some(key[prefix.len()..].find(d)? + prefix.len() + d.len()));
        let entry = match rolled_up {
            Some(end) if matches!(entries.last(), Some(Entry::Prefix(p)) if *p == key[..end]) => {
                continue
            }
            Some(end) => Entry::Prefix(key[..end].to_string()),
            None => Entry::Key(key, obj),
        };
        if entries.len() == limit {
            truncated = limit > 0;
            break;
        }
        entries.push(entry);
    }

    let enc = |s: &str| if url { url_encode(s) } else { xml_escape(s) };
    let mut xml = String::new();
    xml += &tag("Name", xml_escape(&ctx.bucket));
    xml += &tag("Prefix", enc(prefix));
    if let Some(d) = delimiter {
        xml += &tag("Delimiter", enc(d));
    }
    match (token, ctx.q("start-after")) {
        (Some(t), _) => xml += &tag("ContinuationToken", xml_escape(t)),
        (None, Some(s)) => xml += &tag("StartAfter", enc(s)),
        (None, None) => {}
    }
    xml += &tag("KeyCount", entries.len());
    xml += &tag("MaxKeys", max_keys);
    if url {
        xml += &tag("EncodingType", "url");
    }
    xml += &tag("IsTruncated", truncated);
    match entries.last() {
        Some(Entry::Key(k, _)) if truncated => {
            xml += &tag("NextContinuationToken", format!("K{}", hex_encode(k)))
        }
        Some(Entry::Prefix(p)) if truncated => {
            xml += &tag("NextContinuationToken", format!("P{}", hex_encode(p)))
        }
        _ => {}
    }
    for entry in &entries {
        xml += &match entry {
            Entry::Key(key, obj) => tag(
                "Contents",
                [
                    tag("Key", enc(key)),
                    tag("LastModified", rfc3339(obj.modified_ms)),
                    tag("ETag", xml_escape(&obj.etag)),
                    tag("Size", obj.data.len()),
                    tag("StorageClass", "STANDARD"),
                ]
                .concat(),
            ),
            Entry::Prefix(p) => tag("CommonPrefixes", tag("Prefix", enc(p))),
        };
    }
    Ok(xml_ok(format!(
        "{XML_DECL}<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{xml}</ListBucketResult>"
    )))
}

/// GetObject, or HeadObject when `head` (same headers, no body).
fn get_object(state: &mut State, ctx: &Ctx, head: bool) -> Reply {
    let objects = state.bucket(ctx)?;
    let obj = objects.get(ctx.key()).ok_or_else(ApiError::no_such_key)?;
    ctx.precondition("if-match", Some(&obj.etag), true)?;
    if ctx.headers.contains_key("range") {
        return Err(ApiError::not_implemented(
            "FakeAws does not implement Range requests".into(),
        ));
    }
    let length = obj.data.len().to_string();
    let modified = http_date(obj.modified_ms);
    let mut headers = vec![
        ("content-type", obj.content_type.as_str()),
        ("content-length", &length),
        ("etag", &obj.etag),
        ("last-modified", &modified),
        ("accept-ranges", "bytes"),
    ];
    if let Some(disposition) = &obj.content_disposition {
        headers.push(("content-disposition", disposition));
    }
    let body = if head { Bytes::new() } else { obj.data.clone() };
    Ok(respond(StatusCode::OK, &headers, body))
}

fn put_object(state: &mut State, ctx: &Ctx, body: Bytes) -> Reply {
    let chunked = ctx
        .header("content-encoding")
        .is_some_and(|e| e.contains("aws-chunked"))
        || ctx
            .header("x-amz-content-sha256")
            .is_some_and(|s| s.starts_with("STREAMING-"));
    let data = if chunked {
        let decoded = decode_aws_chunked(&body).ok_or_else(|| {
            ApiError::bad_request(
                "InvalidRequest",
                "FakeAws could not decode the aws-chunked body",
            )
        })?;
        let expected = ctx
            .header("x-amz-decoded-content-length")
            .and_then(|n| n.parse().ok());
        if expected.is_some_and(|n: usize| n != decoded.len()) {
            return Err(ApiError::bad_request(
                "IncompleteBody",
                "body does not match x-amz-decoded-content-length",
            ));
        }
        Bytes::from(decoded)
    } else {
        body
    };
    let objects = state.bucket(ctx)?;
    let existing = objects.get(ctx.key()).map(|o| o.etag.as_str());
    ctx.precondition("if-none-match", existing, false)?;
    ctx.precondition("if-match", existing, true)?;
    let content_type = ctx
        .header("content-type")
        .unwrap_or_else(|| "binary/octet-stream".into());
    let etag = etag_of(&data);
    let obj = Object {
        etag: etag.clone(),
        data,
        content_type,
        content_disposition: ctx.header("content-disposition"),
        modified_ms: now_ms(),
    };
    objects.insert(ctx.key().to_string(), obj);
    Ok(respond(StatusCode::OK, &[("etag", &etag)], ""))
}

fn copy_object(state: &mut State, ctx: &Ctx) -> Reply {
    let raw = ctx.header("x-amz-copy-source").unwrap_or_default();
    let raw = raw
        .split_once("?versionId=")
        .map_or(raw.as_str(), |(s, _)| s);
    let source = decode(raw.trim_start_matches('/'));
    let (src_bucket, src_key) = source.split_once('/').ok_or_else(|| {
        ApiError::bad_request(
            "InvalidArgument",
            "Copy Source must be sourcebucket/sourcekey",
        )
    })?;
    let src_objects = state
        .buckets
        .get(src_bucket)
        .ok_or_else(ApiError::no_such_bucket)?;
    let src = src_objects
        .get(src_key)
        .cloned()
        .ok_or_else(ApiError::no_such_key)?;
    ctx.precondition("x-amz-copy-source-if-match", Some(&src.etag), true)?;
    ctx.precondition("x-amz-copy-source-if-none-match", Some(&src.etag), false)?;
    let replace = ctx.header("x-amz-metadata-directive").as_deref() == Some("REPLACE");
    let content_type = match ctx.header("content-type") {
        Some(ct) if replace => ct,
        _ => src.content_type.clone(),
    };
    let content_disposition = match replace {
        true => ctx.header("content-disposition"),
        false => src.content_disposition.clone(),
    };
    let objects = state.bucket(ctx)?;
    let obj = Object {
        content_type,
        content_disposition,
        modified_ms: now_ms(),
        ..src
    };
    let result =
        tag("LastModified", rfc3339(obj.modified_ms)) + &tag("ETag", xml_escape(&obj.etag));
    objects.insert(ctx.key().to_string(), obj);
    Ok(xml_ok(format!(
        "{XML_DECL}{}",
        tag("CopyObjectResult", result)
    )))
}

fn delete_object(state: &mut State, ctx: &Ctx) -> Reply {
    let objects = state.bucket(ctx)?;
    objects.remove(ctx.key());
    Ok(respond(StatusCode::NO_CONTENT, &[], ""))
}

// ---------------------------------------------------------------------------------------------
// SES v2 (REST-JSON)

/// `SendEmail` with `Content.Simple`. `Raw` and `Template` content get 501 NotImplemented.
fn send_email(state: &mut State, body: &[u8]) -> Reply {
    let req: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::ses_bad_request(format!("Could not parse request body: {e}")))?;
    let text = |pointer: &str| {
        let value = req.pointer(pointer).and_then(serde_json::Value::as_str);
        value.map(str::to_string)
    };
    let addresses = |pointer: &str| -> Vec<String> {
        let list = req.pointer(pointer).and_then(serde_json::Value::as_array);
        let list = list.map(|a| a.iter().filter_map(serde_json::Value::as_str));
        list.into_iter().flatten().map(str::to_string).collect()
    };
    let from = text("/FromEmailAddress")
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::ses_bad_request("Missing required field FromEmailAddress"))?;
    let to = addresses("/Destination/ToAddresses");
    let cc = addresses("/Destination/CcAddresses");
    let bcc = addresses("/Destination/BccAddresses");
    let reply_to = addresses("/ReplyToAddresses");
    if to.is_empty() && cc.is_empty() && bcc.is_empty() {
        return Err(ApiError::ses_bad_request(
            "Missing required field Destination: at least one To, Cc or Bcc address is required",
        ));
    }
    let all = [&from].into_iter().chain(&to).chain(&cc).chain(&bcc);
    if let Some(bad) = all.chain(&reply_to).find(|a| !a.contains('@')) {
        return Err(ApiError::ses_bad_request(format!("Illegal address: {bad}")));
    }
    if req.pointer("/Content/Simple").is_none() {
        return Err(match req.get("Content") {
            None => ApiError::ses_bad_request("Missing required field Content"),
            Some(_) => ApiError::not_implemented(
                "FakeAws only implements SendEmail with Content.Simple".into(),
            ),
        });
    }
    let subject = text("/Content/Simple/Subject/Data")
        .ok_or_else(|| ApiError::ses_bad_request("Missing required field Subject"))?;
    let plain = text("/Content/Simple/Body/Text/Data");
    let html = text("/Content/Simple/Body/Html/Data");
    if plain.is_none() && html.is_none() {
        return Err(ApiError::ses_bad_request(
            "Missing required field Body: Text or Html is required",
        ));
    }
    let message_id = format!("fake-ses-{:010}", state.next_id);
    state.next_id += 1;
    state.emails.push(SentEmail {
        message_id: message_id.clone(),
        from,
        to,
        cc,
        subject,
        text: plain.unwrap_or_default(),
        html,
    });
    let body = serde_json::json!({ "MessageId": message_id }).to_string();
    Ok(respond(
        StatusCode::OK,
        &[("content-type", "application/json")],
        body,
    ))
}

// ---------------------------------------------------------------------------------------------
// CloudFront (REST-XML)

const CLOUDFRONT_NS: &str = "http://cloudfront.amazonaws.com/doc/2020-05-31/";

/// The most paths one invalidation batch may hold.
const MAX_BATCH_PATHS: usize = 3000;

impl Ctx {
    /// `{Id}` of `/2020-05-31/distribution/{Id}/invalidation[/{InvalidationId}]`.
    fn distribution_id(&self) -> &str {
        &self.segments[2]
    }
}

impl State {
    /// The request's distribution id, or a NoSuchDistribution error.
    fn distribution(&self, ctx: &Ctx) -> Result<String, ApiError> {
        let id = ctx.distribution_id();
        match self.distributions.contains(id) {
            true => Ok(id.to_string()),
            false => Err(ApiError::no_such_distribution()),
        }
    }
}

fn cloudfront_bad_request(code: &str, message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// `<Invalidation>` (without the XML declaration and namespace).
fn invalidation_xml(inv: &Invalidation, created_ms: u64) -> String {
    let paths: String = inv
        .paths
        .iter()
        .map(|p| tag("Path", xml_escape(p)))
        .collect();
    let mut batch = tag("Quantity", inv.paths.len());
    if !paths.is_empty() {
        batch += &tag("Items", paths);
    }
    let batch = tag("Paths", batch) + &tag("CallerReference", xml_escape(&inv.caller_reference));
    let fields = [
        tag("Id", xml_escape(&inv.id)),
        tag("Status", &inv.status),
        tag("CreateTime", rfc3339(created_ms)),
        tag("InvalidationBatch", batch),
    ];
    tag("Invalidation", fields.concat())
}

/// A CloudFront XML document: declaration, then `xml` with the namespace on its root element.
fn cloudfront_xml(status: StatusCode, xml: &str, headers: &[(&str, &str)]) -> Response {
    let (root, rest) = xml.split_at(xml.find('>').unwrap_or(0));
    let body = format!("{XML_DECL}{root} xmlns=\"{CLOUDFRONT_NS}\"{rest}");
    let mut all = vec![("content-type", "text/xml")];
    all.extend_from_slice(headers);
    respond(status, &all, body)
}

/// CreateInvalidation. The same CallerReference with the same paths (in any order) on the same
/// distribution returns the earlier invalidation; with other paths it is a 409
/// InvalidationBatchAlreadyExists.
fn create_invalidation(state: &mut State, ctx: &Ctx, body: &[u8]) -> Reply {
    let distribution_id = state.distribution(ctx)?;
    let xml = String::from_utf8_lossy(body);
    if !xml.contains("<InvalidationBatch") {
        return Err(cloudfront_bad_request(
            "MissingBody",
            "This operation requires a body. Ensure that the body is present and the Content-Type header is set.",
        ));
    }
    let caller_reference = xml_texts(&xml, "CallerReference")
        .pop()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| cloudfront_bad_request("InvalidArgument", "CallerReference is required."))?;
    let paths = xml_texts(&xml, "Path");
    let quantity = xml_texts(&xml, "Quantity").pop();
    if quantity.and_then(|q| q.trim().parse::<usize>().ok()) != Some(paths.len()) {
        return Err(cloudfront_bad_request(
            "InconsistentQuantities",
            "The value of Quantity and the size of Items don't match.",
        ));
    }
    // CloudFront reads `*` as a wildcard, allowed only as a path's last character.
    let bad = |p: &String| !p.starts_with('/') || p.find('*').is_some_and(|i| i + 1 < p.len());
    if paths.is_empty() || paths.iter().any(bad) {
        return Err(cloudfront_bad_request(
            "InvalidArgument",
            "Your request contains one or more invalid invalidation paths.",
        ));
    }
    if paths.len() > MAX_BATCH_PATHS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BatchTooLarge",
            "Invalidation batch specified is too large.",
        ));
    }
    let location = |id: &str| {
        let host = ctx.header("host").unwrap_or_else(|| "localhost".into());
        let dist = url_encode(&distribution_id);
        format!("http://{host}/{CLOUDFRONT_API}/distribution/{dist}/invalidation/{id}")
    };
    let mine = |inv: &Invalidation| inv.distribution_id == distribution_id;
    let earlier = state
        .invalidations
        .iter()
        .find(|(inv, _)| mine(inv) && inv.caller_reference == caller_reference);
    if let Some((inv, created_ms)) = earlier {
        let sorted = |p: &[String]| p.iter().cloned().collect::<BTreeSet<_>>();
        if sorted(&inv.paths) != sorted(&paths) || inv.paths.len() != paths.len() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "InvalidationBatchAlreadyExists",
                "Invalidation batch specified already exists with different paths for this CallerReference.",
            ));
        }
        let xml = invalidation_xml(inv, *created_ms);
        let headers = [("location", location(&inv.id))];
        let headers: Vec<_> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        return Ok(cloudfront_xml(StatusCode::CREATED, &xml, &headers));
    }
    let in_progress = state
        .invalidations
        .iter()
        .filter(|(inv, _)| mine(inv) && inv.status == "InProgress")
        .count();
    if state.max_in_progress.is_some_and(|max| in_progress >= max) {
        return Err(cloudfront_bad_request(
            "TooManyInvalidationsInProgress",
            "Processing your request would cause the maximum number of in-progress invalidations to be exceeded.",
        ));
    }
    let inv = Invalidation {
        id: format!("IFAKE{:09}", state.next_id),
        distribution_id: distribution_id.clone(),
        caller_reference,
        paths,
        status: "InProgress".into(),
    };
    state.next_id += 1;
    let created_ms = now_ms();
    let xml = invalidation_xml(&inv, created_ms);
    let location = location(&inv.id);
    state.invalidations.push((inv, created_ms));
    Ok(cloudfront_xml(
        StatusCode::CREATED,
        &xml,
        &[("location", &location)],
    ))
}

/// GetInvalidation; an InProgress invalidation is reported (and from then on is) Completed.
fn get_invalidation(state: &mut State, ctx: &Ctx) -> Reply {
    let distribution_id = state.distribution(ctx)?;
    let id = &ctx.segments[4];
    let found = state
        .invalidations
        .iter_mut()
        .find(|(inv, _)| inv.distribution_id == distribution_id && inv.id == *id);
    let (inv, created_ms) = found.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NoSuchInvalidation",
            "The specified invalidation does not exist.",
        )
    })?;
    inv.status = "Completed".into();
    let xml = invalidation_xml(inv, *created_ms);
    Ok(cloudfront_xml(StatusCode::OK, &xml, &[]))
}

/// ListInvalidations: newest first, `MaxItems` (default 100) per page, `Marker` = the last Id of
/// the previous page.
fn list_invalidations(state: &mut State, ctx: &Ctx) -> Reply {
    let distribution_id = state.distribution(ctx)?;
    let max_items = match ctx.q("MaxItems").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return Err(cloudfront_bad_request(
                "InvalidArgument",
                "MaxItems must be an integer.",
            ))
        }
    };
    let marker = ctx.q("Marker").unwrap_or("");
    let mut all: Vec<_> = state
        .invalidations
        .iter()
        .filter(|(inv, _)| inv.distribution_id == distribution_id)
        .collect();
    all.reverse();
    let start = match all.iter().position(|(inv, _)| inv.id == marker) {
        Some(i) => i + 1,
        None => 0,
    };
    let rest = &all[start..];
    let page = &rest[..rest.len().min(max_items)];
    let truncated = page.len() < rest.len();
    let mut xml = tag("Marker", xml_escape(marker));
    if let (true, Some((last, _))) = (truncated, page.last()) {
        xml += &tag("NextMarker", xml_escape(&last.id));
    }
    xml += &tag("MaxItems", max_items);
    xml += &tag("IsTruncated", truncated);
    xml += &tag("Quantity", page.len());
    let summaries: String = page
        .iter()
        .map(|(inv, created_ms)| {
            let fields = [
                tag("Id", xml_escape(&inv.id)),
                tag("CreateTime", rfc3339(*created_ms)),
                tag("Status", &inv.status),
            ];
            tag("InvalidationSummary", fields.concat())
        })
        .collect();
    if !summaries.is_empty() {
        xml += &tag("Items", summaries);
    }
    Ok(cloudfront_xml(
        StatusCode::OK,
        &tag("InvalidationList", xml),
        &[],
    ))
}

// ---------------------------------------------------------------------------------------------
// Helpers

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

fn respond(status: StatusCode, headers: &[(&str, &str)], body: impl Into<Body>) -> Response {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body.into()).expect("valid response")
}

fn xml_ok(xml: String) -> Response {
    respond(StatusCode::OK, &[("content-type", "application/xml")], xml)
}

/// `<name>value</name>`; the caller escapes `value`.
fn tag(name: &str, value: impl std::fmt::Display) -> String {
    format!("<{name}>{value}</{name}>")
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// `application/x-www-form-urlencoded`-style query parsing (`+` is a space).
fn parse_query(raw: &str) -> Vec<(String, String)> {
    let pairs = raw.split('&').filter(|p| !p.is_empty());
    let pairs = pairs.map(|pair| pair.split_once('=').unwrap_or((pair, "")));
    pairs
        .map(|(k, v)| (decode(&k.replace('+', " ")), decode(&v.replace('+', " "))))
        .collect()
}

/// Decodes `aws-chunked` framing: `<hex size>[;chunk-signature=..]\r\n<data>\r\n ... 0\r\n<trailers>`.
fn decode_aws_chunked(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&rest[..eol]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some(out); // trailers (checksums) follow; ignored
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

/// `If-Match` / `If-None-Match` semantics: `*` matches any existing object, otherwise any of the
/// comma-separated (optionally quoted) ETags must equal the object's.
fn etag_matches(condition: &str, etag: Option<&str>) -> bool {
    let Some(etag) = etag else { return false };
    let mut candidates = condition.split(',').map(|c| c.trim().trim_matches('"'));
    candidates.any(|c| c == "*" || c == etag.trim_matches('"'))
}

/// A stable, quoted 32-hex-digit digest: two FNV-1a 64 rounds with different offsets.
fn etag_of(data: &[u8]) -> String {
    let fnv = |seed: u64| {
        data.iter().fold(seed, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        })
    };
    format!(
        "\"{:016x}{:016x}\"",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x8422_2325_cbf2_9ce4)
    )
}

/// The text of every `<name>...</name>` element (no attributes), in order, unescaped. Enough
/// for the flat documents the SDK sends.
fn xml_texts(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        rest = &rest[start + open.len()..];
        let Some(end) = rest.find(&close) else { break };
        out.push(xml_unescape(&rest[..end]));
        rest = &rest[end + close.len()..];
    }
    out
}

/// Undoes the five named entities and numeric character references (`&#xA;`, `&#10;`).
fn xml_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';') else { break };
        let entity = &rest[1..semi];
        let c = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|h| u32::from_str_radix(h, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `encoding-type=url`: percent-encode everything but unreserved characters and `/`.
const URL_KEY: &AsciiSet = &UNRESERVED.remove(b'/');

fn url_encode(s: &str) -> String {
    utf8_percent_encode(s, URL_KEY).to_string()
}

fn hex_encode(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<String> {
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok());
    String::from_utf8(bytes.collect::<Option<Vec<u8>>>()?).ok()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// (year, month, day, weekday with 0 = Sunday, "HH:MM:SS") from Unix seconds.
fn civil(secs: u64) -> (i64, usize, u64, usize, String) {
    let days = (secs / 86_400) as i64;
    let tod = secs % 86_400;
    let time = format!("{:02}:{:02}:{:02}", tod / 3600, tod / 60 % 60, tod % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as usize;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, (days + 4).rem_euclid(7) as usize, time)
}

/// e.g. 2026-11-23T10:00:00.000Z
fn rfc3339(ms: u64) -> String {
    let (y, mo, d, _, time) = civil(ms / 1000);
    format!("{y:04}-{mo:02}-{d:02}T{time}.{:03}Z", ms % 1000)
}

/// e.g. Mon, 23 Nov 2026 10:00:00 GMT
fn http_date(ms: u64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: &str = "JanFebMarAprMayJunJulAugSepOctNovDec";
    let (y, mo, d, wd, time) = civil(ms / 1000);
    format!(
        "{}, {d:02} {} {y:04} {time} GMT",
        DAYS[wd],
        &MONTHS[(mo - 1) * 3..mo * 3]
    )
}
