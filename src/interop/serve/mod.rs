//! `gantry serve`: an HTTP server (axum) that speaks the MLflow tracking REST API over the store,
//! so scripts that log with `mlflow` log into gantry unchanged, and `/metrics` in the Prometheus
//! text format (GPU gauges, running runs, ingest counters). Loopback by default; any other
//! address needs a bearer token. Requests never name files: nothing they send reaches the disk
//! except as rows in the store.

pub mod api;
pub mod prometheus;
pub mod search;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Map, Value};

use crate::gpu::source::{GpuSnapshot, GpuSource};
use crate::store::Store;

pub use api::ApiError;

/// The largest request body read, in bytes. MLflow's largest request, log-batch, may be 1 MB.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// What `gantry serve` is asked to do.
pub struct ServeOptions {
    pub bind: SocketAddr,
    pub token: Option<String>,
    /// The workspace's runs directory: artifact URIs point under it.
    pub runs_dir: PathBuf,
    /// How often the GPU sampler samples.
    pub gpu_interval: Duration,
}

/// Counters for /metrics.
#[derive(Default)]
pub struct Counters {
    pub points: AtomicU64,
    pub params: AtomicU64,
    pub tags: AtomicU64,
    pub runs_created: AtomicU64,
    /// Requests by endpoint and status code.
    pub requests: Mutex<BTreeMap<(String, u16), u64>>,
}

impl Counters {
    pub fn count_points(&self, n: usize) {
        self.points.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub fn count_params(&self, n: usize) {
        self.params.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub fn count_tags(&self, n: usize) {
        self.tags.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub fn count_run(&self) {
        self.runs_created.fetch_add(1, Ordering::Relaxed);
    }
    fn count_request(&self, endpoint: &str, status: StatusCode) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((endpoint.to_string(), status.as_u16()))
                .or_default() += 1;
        }
    }
}

/// The latest GPU sample, or why there is none.
pub type GpuView = Arc<Mutex<Result<GpuSnapshot, String>>>;

/// The server's shared state.
pub struct Served {
    pub store: Store,
    pub counters: Counters,
    pub gpu: GpuView,
    pub token: Option<String>,
    pub runs_dir: PathBuf,
    /// Runs created here belong to this process: when it is gone, recovery marks them crashed.
    pub host: String,
    pub pid: i64,
    pub pid_start: Option<i64>,
    /// Appends per run since its tail was last merged.
    appends: Mutex<std::collections::HashMap<String, u32>>,
    /// Runs owned by a client process on this host: run id -> (pid, start), sampled while they run.
    pub clients: Mutex<std::collections::HashMap<String, (i64, Option<i64>)>>,
}

/// Appends to a run between merges of its small trailing chunks.
const MERGE_EVERY: u32 = 256;

impl Served {
    pub fn new(store: Store, token: Option<String>, runs_dir: PathBuf, gpu: GpuView) -> Self {
        let pid = std::process::id() as i64;
        Served {
            store,
            counters: Counters::default(),
            gpu,
            token,
            runs_dir,
            host: crate::host::hostname(),
            pid,
            pid_start: crate::capture::procs::start_ticks(pid),
            appends: Mutex::new(Default::default()),
            clients: Mutex::new(Default::default()),
        }
    }

    /// Count an append to `run_id`; true when its tail is due for a merge.
    pub fn appended(&self, run_id: &str) -> bool {
        let Ok(mut m) = self.appends.lock() else {
            return false;
        };
        let n = m.entry(run_id.to_string()).or_default();
        *n += 1;
        if *n >= MERGE_EVERY {
            *n = 0;
            return true;
        }
        false
    }

    /// Where a run's artifacts would go: a directory under the workspace, named by the run's id
    /// (never by anything a request sends).
    pub fn artifact_uri(&self, run_id: &str) -> String {
        format!(
            "file://{}",
            self.runs_dir.join(run_id).join("artifacts").display()
        )
    }
}

/// Why a bind is refused: a non-loopback address without a token.
pub fn check_bind(
    bind: &SocketAddr,
    token: &Option<String>,
) -> Result<(), crate::error::UserError> {
    if !bind.ip().is_loopback() && token.as_deref().is_none_or(str::is_empty) {
        return Err(crate::error::UserError::new(format!(
            "refusing to serve on {bind} without a token: anyone who can reach that address \
             could write into this workspace"
        ))
        .hint(
            "pass --token SECRET (or set GANTRY_TOKEN); clients then send it as a bearer token \
             (MLFLOW_TRACKING_TOKEN=SECRET for the mlflow client). Or bind to 127.0.0.1",
        ));
    }
    Ok(())
}

/// Start sampling GPUs on a thread of their own (NVML wants one thread), every `every`.
pub fn spawn_gpu_sampler(
    mut open: impl FnMut() -> Result<Box<dyn GpuSource>, String> + Send + 'static,
    every: Duration,
) -> GpuView {
    let view: GpuView = Arc::new(Mutex::new(Err("no GPU sample yet".into())));
    let out = view.clone();
    std::thread::Builder::new()
        .name("gpu-sampler".into())
        .spawn(move || {
            let mut src = match open() {
                Ok(s) => s,
                Err(why) => {
                    if let Ok(mut v) = out.lock() {
                        *v = Err(why);
                    }
                    return;
                }
            };
            loop {
                let snap = src.sample();
                let stop = snap.is_err();
                if let Ok(mut v) = out.lock() {
                    *v = snap;
                }
                if stop || Arc::strong_count(&out) == 1 {
                    return;
                }
                std::thread::sleep(every);
            }
        })
        .ok();
    view
}

/// Sample the client processes that own running runs every `every`, into the runs' system series
/// (CPU %, RSS, GPU memory and utilisation, as `gantry run` records them), on a thread of its own.
/// A run leaves the list when it ends or its process does.
pub fn spawn_client_sampler(
    state: Arc<Served>,
    every: Duration,
    opts: crate::capture::sampler::SamplerOptions,
) {
    let rt = tokio::runtime::Handle::current();
    let spawned = std::thread::Builder::new()
        .name("client-sampler".into())
        .spawn(move || {
            use crate::capture::supervise::Sampler;
            use crate::domain::{RunStatus, Series, SeriesKind};
            let mut samplers: std::collections::HashMap<String, Sampler> = Default::default();
            type Seen = std::collections::BTreeSet<(String, i64)>;
            let mut clocks: std::collections::HashMap<
                String,
                (crate::domain::efficiency::StepClock, Seen),
            > = Default::default();
            loop {
                std::thread::sleep(every);
                let clients: Vec<(String, (i64, Option<i64>))> = match state.clients.lock() {
                    Ok(c) => c.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                    Err(_) => return,
                };
                for (run, (pid, start)) in clients {
                    let running = crate::capture::procs::is_same_process(pid, start)
                        && rt
                            .block_on(state.store.run(&run))
                            .is_ok_and(|r| r.status == RunStatus::Running);
                    if !running {
                        samplers.remove(&run);
                        clocks.remove(&run);
                        if let Ok(mut c) = state.clients.lock() {
                            c.remove(&run);
                        }
                        continue;
                    }
                    let sampler = samplers.entry(run.clone()).or_insert_with(|| {
                        let mut o = opts.clone();
                        o.params
                            .extend(rt.block_on(state.store.params(&run)).unwrap_or_default());
                        if let Ok(r) = rt.block_on(state.store.run(&run)) {
                            o.run_name = r.name;
                        }
                        // The run's `alert.KEY` tags (set by its client) win, as under gantry run.
                        let overrides: Vec<(String, String)> = rt
                            .block_on(state.store.tags(&run))
                            .unwrap_or_default()
                            .into_iter()
                            .filter_map(|(k, v)| Some((k.strip_prefix("alert.")?.to_string(), v)))
                            .collect();
                        o.alerts = o.alerts.map(|r| r.clone().with(&overrides).unwrap_or(r));
                        Sampler::with(pid, o)
                    });
                    // The run's progress as the store has it: its newest step (timed from when
                    // this watcher first saw it), its losses and any NaN, for the alerts.
                    let (prev, seen) = clocks.entry(run.clone()).or_default();
                    let clock = match rt.block_on(state.store.run_record(&run)) {
                        Ok((rec, _)) => crate::domain::efficiency::StepClock::from_summaries(
                            rec.metrics.values(),
                            prev,
                            crate::domain::now_ms(),
                            seen,
                        ),
                        Err(_) => prev.clone(),
                    };
                    *prev = clock.clone();
                    let sample = sampler.sample(&clock);
                    let now = crate::domain::now_ms();
                    rt.block_on(crate::capture::sampler::store_sample(
                        &state.store,
                        &run,
                        sampler,
                        &sample,
                    ));
                    let series: Vec<(&str, Series)> = sample
                        .system
                        .iter()
                        .map(|(k, v)| {
                            let mut s = Series::with_capacity(1);
                            s.push(now / 1000, now, *v);
                            (*k, s)
                        })
                        .collect();
                    let batch: Vec<_> = series
                        .iter()
                        .map(|(k, s)| (SeriesKind::System, *k, s))
                        .collect();
                    if let Err(e) = rt.block_on(state.store.append(&run, &batch)) {
                        tracing::warn!("serve: system samples of run {run}: {e:#}");
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("serve: no client sampler: {e}");
    }
}

/// The router: the MLflow API, /metrics and /health.
pub fn router(state: Arc<Served>) -> Router {
    Router::new()
        .route("/health", get(|| async { "OK" }))
        .route("/metrics", get(metrics))
        .route("/api/2.0/mlflow/{*endpoint}", any(mlflow))
        .route("/ajax-api/2.0/mlflow/{*endpoint}", any(mlflow))
        .fallback(not_found)
        .with_state(state)
}

/// How long a client may take to send a request's headers, and how long a kept-alive connection
/// may sit idle before its next request: a slow or silent client never holds a connection open.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to send a request's body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// Serve until Ctrl-C or SIGTERM. `ready` gets the address actually bound (port 0 picks one).
/// `header_timeout`: how long a request's headers may take, and a kept-alive connection may
/// stay idle (`HEADER_TIMEOUT` by default, `gantry serve --idle-timeout`).
pub async fn serve_with(
    state: Arc<Served>,
    bind: SocketAddr,
    header_timeout: Duration,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(bind).await.map_err(|e| {
        anyhow::Error::new(
            crate::error::UserError::new(format!("cannot listen on {bind}"))
                .cause(e)
                .hint("pick another address with --bind, for example 127.0.0.1:5001"),
        )
    })?;
    ready(listener.local_addr()?);
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    tokio::pin!(shutdown);
    // hyper's own connection loop rather than axum::serve, which has no header or idle timeout.
    let app = router(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!("serve: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let svc = app.clone().layer(axum::Extension(ConnectInfo(peer)));
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(
                hyper_util::rt::TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(svc),
            );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("serve: connection from {peer}: {e}");
            }
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
    Ok(())
}

fn json_reply(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn authorized(s: &Served, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(want) = s.token.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(given.as_bytes(), want.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(
            "UNAUTHENTICATED",
            "this server needs a token: send `Authorization: Bearer TOKEN` \
             (MLFLOW_TRACKING_TOKEN for the mlflow client)",
        ))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= (*x ^ b.get(i).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

async fn mlflow(
    State(s): State<Arc<Served>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(endpoint): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (endpoint_label, result) =
        match handle(&s, &endpoint, &method, query, &headers, body, peer).await {
            Ok(v) => (endpoint.as_str(), Ok(v)),
            Err(e) => (endpoint.as_str(), Err(e)),
        };
    let known = api::is_endpoint(endpoint_label);
    let label = if known { endpoint_label } else { "other" };
    match result {
        Ok(v) => {
            s.counters.count_request(label, StatusCode::OK);
            json_reply(StatusCode::OK, &v)
        }
        Err(e) => {
            s.counters.count_request(label, e.status);
            json_reply(e.status, &e.body())
        }
    }
}

async fn handle(
    s: &Served,
    endpoint: &str,
    method: &Method,
    query: Option<String>,
    headers: &HeaderMap,
    body: Body,
    peer: SocketAddr,
) -> Result<Value, ApiError> {
    authorized(s, headers)?;
    let too_large = || {
        ApiError::new(
            "RESOURCE_EXHAUSTED",
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    // A declared length over the limit is refused before a byte of the body is read.
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let bytes: Bytes = match tokio::time::timeout(
        BODY_TIMEOUT,
        axum::body::to_bytes(body, MAX_BODY_BYTES),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(e)) if is_length_limit(&e) => return Err(too_large()),
        Ok(Err(e)) => {
            // A malformed body (bad chunk framing, a connection cut mid-body) is the client's
            // error, not a size problem.
            return Err(ApiError::new(
                "BAD_REQUEST",
                format!("the request body could not be read: {e}"),
            ));
        }
        Err(_) => {
            return Err(ApiError::new(
                "BAD_REQUEST",
                format!(
                    "the request body did not arrive within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            ));
        }
    };
    answer(s, endpoint, method, query, headers, bytes.to_vec(), peer).await
}

/// Answer one API request whose body has been read: the query string and the JSON body merged
/// into one request object, then the endpoint's answer. The fuzz target `rest_body` calls this.
pub async fn answer(
    s: &Served,
    endpoint: &str,
    method: &Method,
    query: Option<String>,
    headers: &HeaderMap,
    bytes: Vec<u8>,
    peer: SocketAddr,
) -> Result<Value, ApiError> {
    authorized(s, headers)?;
    let size = bytes.len();
    let mut req = Map::new();
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        let pairs: Vec<(String, String)> = serde_urlencoded_pairs(&q)?;
        for (k, v) in pairs {
            match req.get_mut(&k) {
                Some(Value::Array(a)) => a.push(Value::String(v)),
                Some(prev) => {
                    let first = prev.take();
                    *prev = Value::Array(vec![first, Value::String(v)]);
                }
                None => {
                    req.insert(k, Value::String(v));
                }
            }
        }
    }
    if !bytes.is_empty() && method != Method::GET {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => req.extend(m),
            Ok(_) => {
                return Err(ApiError::new(
                    "BAD_REQUEST",
                    "the request body must be a JSON object",
                ));
            }
            Err(e) => {
                return Err(ApiError::new(
                    "BAD_REQUEST",
                    format!("the request body is not valid JSON: {e}"),
                ));
            }
        }
    }
    api::dispatch(s, endpoint, &req, size, peer).await
}

/// Whether reading a body failed on its size limit (and not on its framing).
fn is_length_limit(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

fn serde_urlencoded_pairs(q: &str) -> Result<Vec<(String, String)>, ApiError> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
        &format!("/?{q}")
            .parse()
            .map_err(|_| ApiError::new("BAD_REQUEST", "the query string cannot be read"))?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|e| {
        ApiError::new(
            "BAD_REQUEST",
            format!("the query string cannot be read: {e}"),
        )
    })
}

async fn metrics(State(s): State<Arc<Served>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorized(&s, &headers) {
        return json_reply(e.status, &e.body());
    }
    match prometheus::render(&s).await {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(e) => {
            let e = ApiError::internal(e);
            json_reply(e.status, &e.body())
        }
    }
}

async fn not_found(uri: axum::http::Uri) -> Response {
    let e = ApiError::new(
        "ENDPOINT_NOT_FOUND",
        format!(
            "no endpoint at {}: gantry serve answers /api/2.0/mlflow/..., /metrics and /health",
            uri.path()
        ),
    );
    json_reply(e.status, &e.body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_needs_a_token() {
        let lo: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:5000".parse().unwrap();
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        assert!(check_bind(&lo, &None).is_ok());
        assert!(check_bind(&v6, &None).is_ok());
        let e = check_bind(&any, &None).unwrap_err().to_string();
        assert!(e.contains("without a token"), "{e}");
        assert!(check_bind(&any, &Some(String::new())).is_err());
        assert!(check_bind(&any, &Some("s3cret".into())).is_ok());
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
