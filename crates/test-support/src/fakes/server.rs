//! The HTTP server under every in-process fake: an axum `Router` served on a loopback port from
//! a thread of its own with its own tokio runtime, so a fake works from both `#[test]` and
//! `#[tokio::test]` functions. It stops when dropped.
//!
//! One module that every fake of this crate shares.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

/// Called with each request's method and path (with its query) before the fake handles it, to
/// stand between a program and the fake (tests/crash.rs kills the program at the k-th request):
/// `Err(())` drops the request unhandled (the fake answers 503 and changes nothing);
/// `Ok(Some(after))` lets the fake handle it, then calls `after` before the answer is sent;
/// `Ok(None)` is no interference. Only std types.
pub type Hook = Arc<dyn Fn(&str, &str) -> HookVerdict + Send + Sync>;
/// What a [`Hook`] decides for one request.
pub type HookVerdict = Result<Option<Box<dyn FnOnce() + Send>>, ()>;

/// A running server. Dropping it stops it without waiting for open requests or connections
/// (such as long polls), and returns once its thread has finished.
pub struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    hook: Arc<Mutex<Option<Hook>>>,
}

impl Server {
    /// Serves `app` on 127.0.0.1:0 from a thread called `name` running a current-thread
    /// runtime. The port is bound, and accepting, before this returns.
    pub fn start(name: &str, app: axum::Router) -> Server {
        Server::spawn(name, app, tokio::runtime::Builder::new_current_thread())
    }

    /// Like [`Server::start`], with a multi-thread runtime of `workers` worker threads.
    pub fn start_multi_thread(name: &str, workers: usize, app: axum::Router) -> Server {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers);
        Server::spawn(name, app, builder)
    }

    /// e.g. 127.0.0.1:41234
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// e.g. http://127.0.0.1:41234
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Puts `hook` (or, with `None`, nothing) between every later request and the fake.
    pub fn set_hook(&self, hook: Option<Hook>) {
        *self.hook.lock().unwrap_or_else(|e| e.into_inner()) = hook;
    }

    fn spawn(name: &str, app: axum::Router, mut runtime: tokio::runtime::Builder) -> Server {
        let hook: Arc<Mutex<Option<Hook>>> = Arc::default();
        let app = app.layer(axum::middleware::from_fn_with_state(hook.clone(), hooked));
        // Bind on the caller's thread so the port is known (and accepting) before we return.
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("{name}: bind: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("{name}: nonblocking listener: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{name}: local addr: {e}"));
        let (tx, rx) = oneshot::channel::<()>();
        let thread_name = name.to_string();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let rt = runtime
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("{thread_name}: tokio runtime: {e}"));
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .unwrap_or_else(|e| panic!("{thread_name}: listener: {e}"));
                    tokio::spawn(async move { axum::serve(listener, app).await });
                    let _ = rx.await;
                });
                // No graceful shutdown: dropping the runtime cancels the accept loop and every
                // open connection, including requests still waiting (such as long polls).
                drop(rt);
            })
            .unwrap_or_else(|e| panic!("{name}: spawn thread: {e}"));
        Server {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
            hook,
        }
    }
}

/// The middleware that asks the [`Hook`], if one is set.
async fn hooked(
    axum::extract::State(slot): axum::extract::State<Arc<Mutex<Option<Hook>>>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let hook = slot.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let Some(hook) = hook else {
        return next.run(req).await;
    };
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned());
    match hook(req.method().as_str(), &target) {
        Err(()) => axum::response::Response::builder()
            .status(503)
            .body(axum::body::Body::from("dropped by the test's hook"))
            .unwrap_or_default(),
        Ok(after) => {
            let response = next.run(req).await;
            if let Some(after) = after {
                after();
            }
            response
        }
    }
}

/// A fake of a service of the AWS JSON protocols (SSM, SQS): a server that answers every
/// request, whatever its path, with `handle(state, target, body)`, where `target` is the
/// operation the request names in `X-Amz-Target` (these protocols do not name it in the path),
/// and the state it keeps.
pub struct AwsJsonFake<S> {
    server: Server,
    state: Arc<Mutex<S>>,
}

impl<S: Default + Send + 'static> AwsJsonFake<S> {
    /// Starts serving, from a thread called `name`, with a fresh state.
    pub fn start(
        name: &str,
        handle: fn(&Mutex<S>, &str, &str) -> axum::response::Response,
    ) -> AwsJsonFake<S> {
        let state = Arc::new(Mutex::new(S::default()));
        let shared = Arc::clone(&state);
        let app =
            axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: String| {
                let state = Arc::clone(&shared);
                let target = headers
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                async move { handle(&state, &target, &body) }
            });
        AwsJsonFake {
            server: Server::start(name, app),
            state,
        }
    }

    /// e.g. http://127.0.0.1:41234
    pub fn endpoint(&self) -> String {
        self.server.url()
    }

    /// The state, for a test to set up or read.
    pub fn state(&self) -> std::sync::MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Percent-encoding that keeps only RFC 3986's unreserved characters (letters, digits, `-`,
/// `_`, `.`, `~`): a URL's path segment as GitHub and S3 encode it.
pub const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A request as a fake reads it: its head, and its whole body (a fake takes any size; a body
/// that fails to arrive reads as empty).
pub async fn read_whole(
    req: axum::extract::Request,
) -> (axum::http::request::Parts, axum::body::Bytes) {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    (parts, body)
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
