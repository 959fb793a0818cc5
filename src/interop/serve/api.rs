//! The MLflow tracking REST API (2.0) over the store: the endpoints the Python client calls to
//! set an experiment, start a run, log params, tags and metrics, end the run and search. Requests
//! arrive as JSON bodies (POST) or query strings (GET); both are read into one JSON object. Errors
//! are MLflow's `{error_code, message}` bodies with MLflow's HTTP statuses, and validation follows
//! MLflow's own (names, lengths, log-batch limits) so a script sees the errors it would see there.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::Served;
use super::search::{self, Attr, Fields};
use crate::domain::{NewRun, RunRecord, RunStatus, Series, SeriesKind, now_ms};

/// MLflow's limits (mlflow/utils/validation.py).
pub const MAX_METRICS_PER_BATCH: usize = 1000;
pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
pub const MAX_BATCH_LOG_REQUEST_SIZE: usize = 1_000_000;
pub const MAX_PARAM_VAL_LENGTH: usize = 6000;
pub const MAX_TAG_VAL_LENGTH: usize = 8000;
pub const MAX_ENTITY_KEY_LENGTH: usize = 250;
pub const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;
pub const MAX_RESULTS: i64 = 50_000;
const DEFAULT_MAX_RESULTS: i64 = 1000;

/// MLflow's id for the experiment a run goes to when none is set. It names gantry's default.
pub const DEFAULT_EXPERIMENT_ID: &str = "0";
pub const DEFAULT_EXPERIMENT: &str = "default";

/// An MLflow error: its code, HTTP status and message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        let status = match code {
            "RESOURCE_DOES_NOT_EXIST" | "ENDPOINT_NOT_FOUND" => StatusCode::NOT_FOUND,
            "UNAUTHENTICATED" => StatusCode::UNAUTHORIZED,
            "INTERNAL_ERROR" => StatusCode::INTERNAL_SERVER_ERROR,
            "RESOURCE_EXHAUSTED" => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new("INVALID_PARAMETER_VALUE", message)
    }
    pub fn missing(message: impl Into<String>) -> Self {
        Self::new("RESOURCE_DOES_NOT_EXIST", message)
    }
    pub fn internal(e: anyhow::Error) -> Self {
        tracing::warn!("serve: {e:#}");
        Self::new("INTERNAL_ERROR", format!("{e:#}"))
    }
    pub fn body(&self) -> Value {
        json!({"error_code": self.code, "message": self.message})
    }
}

type Reply = Result<Value, ApiError>;

/// The MLflow endpoints served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    GetExperimentByName,
    CreateExperiment,
    GetExperiment,
    SearchExperiments,
    CreateRun,
    GetRun,
    UpdateRun,
    LogMetric,
    LogBatch,
    LogParam,
    SetTag,
    DeleteTag,
    SearchRuns,
    MetricHistory,
}

/// The one list of endpoints, by path: dispatch, ENDPOINT_NOT_FOUND's message and the request
/// counters' labels all read it.
pub const ENDPOINTS: &[(&str, Endpoint)] = &[
    ("experiments/get-by-name", Endpoint::GetExperimentByName),
    ("experiments/create", Endpoint::CreateExperiment),
    ("experiments/get", Endpoint::GetExperiment),
    ("experiments/search", Endpoint::SearchExperiments),
    ("runs/create", Endpoint::CreateRun),
    ("runs/get", Endpoint::GetRun),
    ("runs/update", Endpoint::UpdateRun),
    ("runs/log-metric", Endpoint::LogMetric),
    ("runs/log-batch", Endpoint::LogBatch),
    ("runs/log-parameter", Endpoint::LogParam),
    ("runs/set-tag", Endpoint::SetTag),
    ("runs/delete-tag", Endpoint::DeleteTag),
    ("runs/search", Endpoint::SearchRuns),
    ("metrics/get-history", Endpoint::MetricHistory),
];

/// Whether `path` is an endpoint served.
pub fn is_endpoint(path: &str) -> bool {
    ENDPOINTS.iter().any(|(n, _)| *n == path)
}

/// Answer one API request. `size` is the request body's length in bytes.
pub async fn dispatch(
    s: &Served,
    endpoint: &str,
    req: &Map<String, Value>,
    size: usize,
    peer: std::net::SocketAddr,
) -> Reply {
    let Some(&(_, e)) = ENDPOINTS.iter().find(|(n, _)| *n == endpoint) else {
        return Err(ApiError::new(
            "ENDPOINT_NOT_FOUND",
            format!(
                "gantry serve does not implement /api/2.0/mlflow/{endpoint}; it serves: {}",
                ENDPOINTS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    match e {
        Endpoint::GetExperimentByName => get_experiment_by_name(s, req).await,
        Endpoint::CreateExperiment => create_experiment(s, req).await,
        Endpoint::GetExperiment => get_experiment(s, req).await,
        Endpoint::SearchExperiments => search_experiments(s, req).await,
        Endpoint::CreateRun => create_run(s, req, peer).await,
        Endpoint::GetRun => get_run(s, req).await,
        Endpoint::UpdateRun => update_run(s, req).await,
        Endpoint::LogMetric => log_metric(s, req).await,
        Endpoint::LogBatch => {
            if size > MAX_BATCH_LOG_REQUEST_SIZE {
                return Err(ApiError::invalid(format!(
                    "Batched logging API requests must be at most {MAX_BATCH_LOG_REQUEST_SIZE} \
                     bytes, got a request of size {size}."
                )));
            }
            log_batch(s, req).await
        }
        Endpoint::LogParam => log_param(s, req).await,
        Endpoint::SetTag => set_tag(s, req).await,
        Endpoint::DeleteTag => delete_tag(s, req).await,
        Endpoint::SearchRuns => search_runs(s, req).await,
        Endpoint::MetricHistory => metric_history(s, req).await,
    }
}

// ---- reading requests -------------------------------------------------------------------------

fn missing_param(name: &str) -> ApiError {
    ApiError::invalid(format!(
        "Missing value for required parameter '{name}'. See the API docs for more information \
         about request parameters."
    ))
}

fn opt_str(req: &Map<String, Value>, key: &str) -> Option<String> {
    match req.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn req_str(req: &Map<String, Value>, key: &str) -> Result<String, ApiError> {
    opt_str(req, key).ok_or_else(|| missing_param(key))
}

/// The run a request names: `run_id`, or the older `run_uuid`.
fn run_id(req: &Map<String, Value>) -> Result<String, ApiError> {
    opt_str(req, "run_id")
        .filter(|s| !s.is_empty())
        .or_else(|| opt_str(req, "run_uuid").filter(|s| !s.is_empty()))
        .ok_or_else(|| missing_param("run_id"))
}

/// An int64 field: a JSON number, or a string holding one (proto3 JSON writes int64 as strings).
fn opt_i64(req: &Map<String, Value>, key: &str) -> Result<Option<i64>, ApiError> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => i64_of(v).map(Some).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid value {v} for parameter '{key}' supplied: expected a 64-bit integer."
            ))
        }),
    }
}

/// A time in milliseconds since the epoch: an integer, not negative.
fn opt_time(req: &Map<String, Value>, key: &str) -> Result<Option<i64>, ApiError> {
    match opt_i64(req, key)? {
        Some(t) if t < 0 => Err(ApiError::invalid(format!(
            "Invalid value {t} for parameter '{key}' supplied: a time in milliseconds since \
             the epoch cannot be negative."
        ))),
        t => Ok(t),
    }
}

fn i64_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A double field: a number, or one of proto3 JSON's strings "NaN", "Infinity", "-Infinity".
fn f64_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            s => s.trim().parse().ok(),
        },
        _ => None,
    }
}

fn strings(req: &Map<String, Value>, key: &str) -> Vec<String> {
    match req.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Number(n)) => vec![n.to_string()],
        _ => Vec::new(),
    }
}

fn max_results(req: &Map<String, Value>) -> Result<usize, ApiError> {
    let n = opt_i64(req, "max_results")?.unwrap_or(DEFAULT_MAX_RESULTS);
    if !(1..=MAX_RESULTS).contains(&n) {
        return Err(ApiError::invalid(format!(
            "Invalid value {n} for parameter 'max_results' supplied. It must be at most \
             {MAX_RESULTS}, and at least 1."
        )));
    }
    Ok(n as usize)
}

/// A `{key, value}` list (tags, params).
fn pairs(req: &Map<String, Value>, key: &str) -> Result<Vec<(String, String)>, ApiError> {
    let Some(v) = req.get(key) else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = v else {
        return Err(ApiError::invalid(format!("'{key}' must be a list")));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let obj = item
                .as_object()
                .ok_or_else(|| ApiError::invalid(format!("'{key}[{i}]' must be an object")))?;
            let k = req_str(obj, "key").map_err(|_| missing_param(&format!("{key}[{i}].key")))?;
            let v = opt_str(obj, "value").unwrap_or_default();
            Ok((k, v))
        })
        .collect()
}

// ---- validation, as MLflow does it --------------------------------------------------------------

fn invalid_value(path: &str, value: &str, why: &str) -> ApiError {
    ApiError::invalid(format!(
        "Invalid value {} for parameter '{path}' supplied: {why}",
        serde_json::to_string(value).unwrap_or_default()
    ))
}

/// Names may hold letters, digits, `_ - . / : ` and spaces, and must not change when read as a
/// path (no `..`, no leading `/`, no `//`).
fn check_name(path: &str, name: &str) -> Result<(), ApiError> {
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ' ' | ':'))
    {
        return Err(invalid_value(
            path,
            name,
            "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), \
             spaces ( ), colon(:) and slashes (/).",
        ));
    }
    let norm = normpath(name);
    if norm != name || norm == "." || norm.starts_with("..") || norm.starts_with('/') {
        return Err(invalid_value(
            path,
            name,
            &format!(
                "Names may be treated as files in certain cases, and must not resolve to other \
                 names when treated as such. This name would resolve to '{norm}'"
            ),
        ));
    }
    Ok(())
}

/// POSIX path normalisation as Python's posixpath.normpath does it.
fn normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let initial = if p.starts_with("//") && !p.starts_with("///") {
        2
    } else if p.starts_with('/') {
        1
    } else {
        0
    };
    let mut parts: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if (initial == 0 && parts.is_empty()) || parts.last() == Some(&"..") {
                    parts.push("..");
                } else {
                    parts.pop();
                }
            }
            c => parts.push(c),
        }
    }
    let joined = format!("{}{}", "/".repeat(initial), parts.join("/"));
    if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

fn check_length(what: &str, limit: usize, value: &str) -> Result<(), ApiError> {
    if value.chars().count() > limit {
        return Err(ApiError::invalid(format!(
            "'{what}' exceeds the maximum length of {limit} characters"
        )));
    }
    Ok(())
}

fn check_param(path: &str, key: &str, value: &str) -> Result<(), ApiError> {
    check_name(&format!("{path}key"), key)?;
    check_length("Param key", MAX_ENTITY_KEY_LENGTH, key)?;
    check_length("Param value", MAX_PARAM_VAL_LENGTH, value)
}

fn check_tag(path: &str, key: &str, value: &str) -> Result<(), ApiError> {
    check_name(&format!("{path}key"), key)?;
    check_length(&format!("{path}key"), MAX_ENTITY_KEY_LENGTH, key)?;
    check_length(&format!("{path}value"), MAX_TAG_VAL_LENGTH, value)
}

/// One metric point from a request: (key, value, timestamp, step).
fn metric_of(obj: &Map<String, Value>, path: &str) -> Result<(String, f64, i64, i64), ApiError> {
    let key = req_str(obj, "key").map_err(|_| missing_param(&format!("{path}key")))?;
    check_name(&format!("{path}name"), &key)?;
    let value = match obj.get("value") {
        None | Some(Value::Null) => return Err(missing_param(&format!("{path}value"))),
        Some(v) => f64_of(v).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid value {v} for parameter '{path}value' supplied: Please specify value as \
                 a valid double (64-bit floating point)"
            ))
        })?,
    };
    let timestamp = match obj.get("timestamp") {
        None | Some(Value::Null) => return Err(missing_param(&format!("{path}timestamp"))),
        Some(v) => i64_of(v).filter(|t| *t >= 0).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid value {v} for parameter '{path}timestamp' supplied: metric '{key}'. \
                 Timestamp must be a nonnegative long (64-bit integer)"
            ))
        })?,
    };
    let step = match obj.get("step") {
        None | Some(Value::Null) => 0,
        Some(v) => i64_of(v).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid value {v} for parameter '{path}step' supplied: metric '{key}'. Step \
                 must be a valid long (64-bit integer)."
            ))
        })?,
    };
    check_length("Metric name", MAX_ENTITY_KEY_LENGTH, &key)?;
    Ok((key, value, timestamp, step))
}

// ---- answers ----------------------------------------------------------------------------------

fn mlflow_status(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Running => "RUNNING",
        RunStatus::Finished => "FINISHED",
        RunStatus::Failed | RunStatus::Crashed => "FAILED",
        RunStatus::Killed => "KILLED",
    }
}

fn status_from_mlflow(s: &str) -> Result<RunStatus, ApiError> {
    match s {
        "RUNNING" | "SCHEDULED" => Ok(RunStatus::Running),
        "FINISHED" => Ok(RunStatus::Finished),
        "FAILED" => Ok(RunStatus::Failed),
        "KILLED" => Ok(RunStatus::Killed),
        other => Err(ApiError::invalid(format!(
            "Invalid value \"{other}\" for parameter 'status' supplied: expected one of \
             RUNNING, SCHEDULED, FINISHED, FAILED, KILLED."
        ))),
    }
}

/// A double as proto3 JSON writes it: a number, or "NaN" / "Infinity" / "-Infinity".
fn double(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v == f64::INFINITY {
        json!("Infinity")
    } else if v == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(v)
    }
}

/// Experiment ids as the API shows them: gantry's default experiment is MLflow's "0".
struct ExperimentIds {
    by_name: BTreeMap<String, String>,
}

impl ExperimentIds {
    async fn load(s: &Served) -> Result<Self, ApiError> {
        let by_name = s
            .store
            .experiments()
            .await
            .map_err(ApiError::internal)?
            .into_iter()
            .map(|e| {
                let id = external_id(&e.name, &e.id);
                (e.name, id)
            })
            .collect();
        Ok(ExperimentIds { by_name })
    }
    fn of(&self, name: &str) -> String {
        self.by_name.get(name).cloned().unwrap_or_default()
    }
}

fn external_id(name: &str, id: &str) -> String {
    if name == DEFAULT_EXPERIMENT {
        DEFAULT_EXPERIMENT_ID.to_string()
    } else {
        id.to_string()
    }
}

fn experiment_json(e: &crate::store::ExperimentRow, last_update_ms: i64) -> Value {
    json!({
        "experiment_id": external_id(&e.name, &e.id),
        "name": e.name,
        "artifact_location": "",
        "lifecycle_stage": "active",
        "creation_time": e.created_ms,
        "last_update_time": last_update_ms.max(e.created_ms),
        "tags": [],
    })
}

fn run_info_json(s: &Served, rec: &RunRecord, experiment_id: &str) -> Value {
    let r = &rec.run;
    let mut info = json!({
        "run_id": r.id,
        "run_uuid": r.id,
        "run_name": r.name,
        "experiment_id": experiment_id,
        "user_id": r.user,
        "status": mlflow_status(r.status),
        "start_time": r.started_ms,
        "artifact_uri": s.artifact_uri(&r.id),
        "lifecycle_stage": "active",
    });
    if let Some(end) = r.ended_ms {
        info["end_time"] = json!(end);
    }
    info
}

fn run_json(s: &Served, rec: &RunRecord, experiment_id: &str) -> Value {
    let stamp = rec.run.ended_ms.unwrap_or(rec.run.started_ms);
    let metrics: Vec<Value> = rec
        .metrics
        .values()
        .filter_map(|m| {
            Some(json!({
                "key": m.key,
                "value": double(m.last?),
                "timestamp": stamp,
                "step": m.last_step.unwrap_or(0),
            }))
        })
        .collect();
    let kv = |m: &BTreeMap<String, String>| -> Vec<Value> {
        m.iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect()
    };
    json!({
        "info": run_info_json(s, rec, experiment_id),
        "data": {"metrics": metrics, "params": kv(&rec.params), "tags": kv(&rec.tags)},
        "inputs": {},
    })
}

/// A run as a search sees it.
struct RunRow<'a> {
    rec: &'a RunRecord,
    experiment_id: String,
    artifact_uri: String,
}

impl Fields for RunRow<'_> {
    fn metric(&self, key: &str) -> Option<f64> {
        self.rec.metrics.get(key)?.last
    }
    fn param(&self, key: &str) -> Option<&str> {
        self.rec.params.get(key).map(String::as_str)
    }
    fn tag(&self, key: &str) -> Option<&str> {
        match (self.rec.tags.get(key), key) {
            (Some(v), _) => Some(v),
            (None, "mlflow.runName") => Some(&self.rec.run.name),
            _ => None,
        }
    }
    fn attribute(&self, key: &str) -> Option<Attr> {
        let r = &self.rec.run;
        Some(match key {
            "run_id" => Attr::Str(r.id.clone()),
            "run_name" => Attr::Str(r.name.clone()),
            "status" => Attr::Str(mlflow_status(r.status).into()),
            "user_id" => Attr::Str(r.user.clone()),
            "artifact_uri" => Attr::Str(self.artifact_uri.clone()),
            "lifecycle_stage" => Attr::Str("active".into()),
            "experiment_id" => Attr::Str(self.experiment_id.clone()),
            "start_time" | "created" | "Created" => Attr::Num(r.started_ms as f64),
            "end_time" => Attr::Num(r.ended_ms? as f64),
            _ => return None,
        })
    }
}

/// An experiment as a search sees it.
struct ExperimentRow<'a> {
    e: &'a crate::store::ExperimentRow,
    id: String,
    last_update: i64,
}

impl Fields for ExperimentRow<'_> {
    fn metric(&self, _: &str) -> Option<f64> {
        None
    }
    fn param(&self, _: &str) -> Option<&str> {
        None
    }
    fn tag(&self, _: &str) -> Option<&str> {
        None
    }
    fn attribute(&self, key: &str) -> Option<Attr> {
        Some(match key {
            "name" => Attr::Str(self.e.name.clone()),
            "experiment_id" => Attr::Str(self.id.clone()),
            "lifecycle_stage" => Attr::Str("active".into()),
            "creation_time" => Attr::Num(self.e.created_ms as f64),
            "last_update_time" => Attr::Num(self.last_update as f64),
            _ => return None,
        })
    }
}

/// The slice of `rows` for a page, and the token of the next page.
fn page<T>(rows: Vec<T>, offset: usize, max: usize) -> (Vec<T>, Option<String>) {
    let total = rows.len();
    let end = offset.saturating_add(max).min(total);
    let next = (end < total).then(|| search::page_token(end));
    let out = rows.into_iter().skip(offset).take(max).collect();
    (out, next)
}

// ---- experiments ------------------------------------------------------------------------------

/// The experiment an API id names: "0" is the default experiment, made when first asked for.
async fn experiment_by_api_id(
    s: &Served,
    id: &str,
) -> Result<crate::store::ExperimentRow, ApiError> {
    if id == DEFAULT_EXPERIMENT_ID {
        s.store
            .experiment_id(DEFAULT_EXPERIMENT)
            .await
            .map_err(ApiError::internal)?;
        return s
            .store
            .experiment_by_name(DEFAULT_EXPERIMENT)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("the default experiment vanished")));
    }
    s.store
        .experiment_by_id(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::missing(format!("No Experiment with id={id} exists")))
}

async fn last_update(s: &Served) -> Result<BTreeMap<String, i64>, ApiError> {
    let runs = s.store.runs().await.map_err(ApiError::internal)?;
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for r in runs {
        let t = r.ended_ms.unwrap_or(r.started_ms);
        let e = out.entry(r.experiment).or_insert(t);
        *e = (*e).max(t);
    }
    Ok(out)
}

async fn get_experiment_by_name(s: &Served, req: &Map<String, Value>) -> Reply {
    let name = req_str(req, "experiment_name")?;
    let mut found = s
        .store
        .experiment_by_name(&name)
        .await
        .map_err(ApiError::internal)?;
    if found.is_none() && name == "Default" {
        found = Some(experiment_by_api_id(s, DEFAULT_EXPERIMENT_ID).await?);
    }
    let e = found.ok_or_else(|| {
        ApiError::missing(format!("Could not find experiment with name '{name}'"))
    })?;
    let updated = last_update(s).await?.get(&e.name).copied().unwrap_or(0);
    Ok(json!({"experiment": experiment_json(&e, updated)}))
}

async fn create_experiment(s: &Served, req: &Map<String, Value>) -> Reply {
    let name = req_str(req, "name")?;
    if name.trim().is_empty() {
        return Err(ApiError::invalid(format!(
            "Invalid experiment name: '{name}'"
        )));
    }
    check_length("name", MAX_EXPERIMENT_NAME_LENGTH, &name)?;
    // artifact_location and tags are accepted and not kept: nothing a request sends names a
    // file gantry writes.
    match s
        .store
        .create_experiment(&name)
        .await
        .map_err(ApiError::internal)?
    {
        Some(e) => Ok(json!({"experiment_id": external_id(&e.name, &e.id)})),
        None => Err(ApiError::new(
            "RESOURCE_ALREADY_EXISTS",
            format!("Experiment(name={name}) already exists."),
        )),
    }
}

async fn get_experiment(s: &Served, req: &Map<String, Value>) -> Reply {
    let id = req_str(req, "experiment_id")?;
    let e = experiment_by_api_id(s, &id).await?;
    let updated = last_update(s).await?.get(&e.name).copied().unwrap_or(0);
    Ok(json!({"experiment": experiment_json(&e, updated)}))
}

async fn search_experiments(s: &Served, req: &Map<String, Value>) -> Reply {
    let max = max_results(req)?;
    let clauses = search::parse_filter(
        &opt_str(req, "filter").unwrap_or_default(),
        &search::EXPERIMENT_ATTRIBUTES,
    )
    .map_err(ApiError::invalid)?;
    let mut order =
        search::parse_order_by(&strings(req, "order_by"), &search::EXPERIMENT_ATTRIBUTES)
            .map_err(ApiError::invalid)?;
    // MLflow's default: newest first, then by id.
    order.extend(
        search::parse_order_by(
            &["creation_time DESC".into(), "experiment_id ASC".into()],
            &search::EXPERIMENT_ATTRIBUTES,
        )
        .map_err(ApiError::invalid)?,
    );
    let offset = search::parse_page_token(&opt_str(req, "page_token").unwrap_or_default())
        .map_err(ApiError::invalid)?;
    let exps = s.store.experiments().await.map_err(ApiError::internal)?;
    let updated = last_update(s).await?;
    let mut rows: Vec<ExperimentRow> = exps
        .iter()
        .map(|e| ExperimentRow {
            e,
            id: external_id(&e.name, &e.id),
            last_update: updated.get(&e.name).copied().unwrap_or(0).max(e.created_ms),
        })
        .filter(|r| search::matches(r, &clauses))
        .collect();
    rows.sort_by(|a, b| search::compare(a, b, &order));
    let (rows, next) = page(rows, offset, max);
    let mut out = json!({
        "experiments": rows.iter().map(|r| experiment_json(r.e, r.last_update)).collect::<Vec<_>>()
    });
    if let Some(t) = next {
        out["next_page_token"] = json!(t);
    }
    Ok(out)
}

// ---- runs -------------------------------------------------------------------------------------

async fn existing_run(s: &Served, id: &str) -> Result<(), ApiError> {
    if s.store.has_run(id).await.map_err(ApiError::internal)? {
        Ok(())
    } else {
        Err(ApiError::missing(format!("Run with id={id} not found")))
    }
}

async fn run_reply(s: &Served, id: &str) -> Result<(RunRecord, String), ApiError> {
    existing_run(s, id).await?;
    let (rec, _) = s.store.run_record(id).await.map_err(ApiError::internal)?;
    let ids = ExperimentIds::load(s).await?;
    let exp = ids.of(&rec.run.experiment);
    Ok((rec, exp))
}

/// The process on this host that sent a request over loopback.
struct ClientProcess {
    pid: i64,
    start: Option<i64>,
    command: Vec<String>,
    cwd: Option<String>,
}

async fn client_process(s: &Served, peer: std::net::SocketAddr) -> Option<ClientProcess> {
    if !peer.ip().is_loopback() {
        return None;
    }
    let pid = tokio::task::spawn_blocking(move || crate::capture::sockets::owner(peer))
        .await
        .ok()
        .flatten()
        .filter(|p| *p != s.pid)?;
    let (command, cwd) = crate::capture::sockets::command_and_cwd(pid);
    Some(ClientProcess {
        pid,
        start: crate::capture::procs::start_ticks(pid),
        command,
        cwd,
    })
}

/// The running `gantry run` run whose command is the client (its GANTRY_RUN_ID).
async fn adopted_run(s: &Served, client: Option<&ClientProcess>) -> Option<crate::domain::Run> {
    let id = crate::capture::procs::gantry_run_id(client?.pid)?;
    let run = s.store.run(&id).await.ok()?;
    (run.status == RunStatus::Running).then_some(run)
}

async fn create_run(s: &Served, req: &Map<String, Value>, peer: std::net::SocketAddr) -> Reply {
    let exp_id = opt_str(req, "experiment_id")
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| DEFAULT_EXPERIMENT_ID.to_string());
    let exp = experiment_by_api_id(s, &exp_id).await?;
    let mut tags = pairs(req, "tags")?;
    for (i, (k, v)) in tags.iter().enumerate() {
        check_tag(&format!("tags[{i}]."), k, v)?;
    }
    let client = client_process(s, peer).await;
    // A script running under `gantry run` logs into that run: one run with its output, git
    // state and system samples, and the metrics it sends here.
    if let Some(run) = adopted_run(s, client.as_ref()).await {
        let keep: Vec<(String, String)> = tags
            .into_iter()
            .filter(|(k, _)| k != "mlflow.runName")
            .collect();
        if !keep.is_empty() {
            set_tags(s, &run.id, &keep).await?;
        }
        let (rec, exp_id) = run_reply(s, &run.id).await?;
        return Ok(json!({"run": run_json(s, &rec, &exp_id)}));
    }
    let tag = |k: &str| tags.iter().find(|(t, _)| t == k).map(|(_, v)| v.clone());
    let name = match opt_str(req, "run_name")
        .filter(|n| !n.is_empty())
        .or_else(|| tag("mlflow.runName"))
    {
        Some(n) => n,
        None => format!(
            "{}-{}",
            exp.name,
            s.store
                .count_runs_in(&exp.name)
                .await
                .map_err(ApiError::internal)?
                + 1
        ),
    };
    if let Some(given) = tag("mlflow.runName")
        && given != name
    {
        return Err(ApiError::invalid(format!(
            "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with \
             different values (run_name='{name}', mlflow.runName='{given}')."
        )));
    }
    let new = NewRun {
        id: String::new(),
        experiment: exp.name.clone(),
        name,
        started_ms: opt_time(req, "start_time")?.unwrap_or_else(now_ms),
        host: s.host.clone(),
        user: opt_str(req, "user_id")
            .filter(|u| !u.is_empty())
            .or_else(|| tag("mlflow.user"))
            .unwrap_or_default(),
        pid: Some(s.pid),
        command: tag("mlflow.source.name").into_iter().collect(),
        cwd: String::new(),
        git_commit: tag("mlflow.source.git.commit"),
        git_branch: tag("mlflow.source.git.branch"),
        git_dirty: None,
        notes: String::new(),
        run_dir: String::new(),
        env: Default::default(),
        gpus: Vec::new(),
    };
    if tag("mlflow.runName").is_none() {
        tags.push(("mlflow.runName".into(), new.name.clone()));
    }
    // A script on this host that connects over loopback owns its run, as under `gantry run`: its
    // GPU processes are the run's, and the run ends as crashed if the script dies without ending
    // it. Otherwise the run belongs to this server.
    let mut new = new;
    let (pid, pid_start) = match client {
        Some(c) => {
            if !c.command.is_empty() {
                new.command = c.command;
            }
            new.cwd = c.cwd.unwrap_or_default();
            (c.pid, c.start)
        }
        None => (s.pid, s.pid_start),
    };
    new.pid = Some(pid);
    let owned_by_client = pid != s.pid;
    let run = s.store.create_run(&new).await.map_err(ApiError::internal)?;
    if owned_by_client && let Ok(mut c) = s.clients.lock() {
        c.insert(run.id.clone(), (pid, pid_start));
    }
    s.store
        .set_pid(&run.id, pid, pid_start)
        .await
        .map_err(ApiError::internal)?;
    s.store
        .set_tags(&run.id, &tags)
        .await
        .map_err(ApiError::internal)?;
    s.counters.count_run();
    s.counters.count_tags(tags.len());
    let (rec, exp_id) = run_reply(s, &run.id).await?;
    Ok(json!({"run": run_json(s, &rec, &exp_id)}))
}

async fn get_run(s: &Served, req: &Map<String, Value>) -> Reply {
    let id = run_id(req)?;
    let (rec, exp) = run_reply(s, &id).await?;
    Ok(json!({"run": run_json(s, &rec, &exp)}))
}

async fn update_run(s: &Served, req: &Map<String, Value>) -> Reply {
    let id = run_id(req)?;
    existing_run(s, &id).await?;
    let status = opt_str(req, "status")
        .map(|st| status_from_mlflow(&st))
        .transpose()?;
    let mut ended = opt_time(req, "end_time")?;
    if ended.is_none() && status.is_some_and(|st| st != RunStatus::Running) {
        ended = Some(now_ms());
    }
    let name = opt_str(req, "run_name").filter(|n| !n.is_empty());
    // A `gantry run` run (it has a run directory) ends when its command does, with its exit code:
    // the script saying FINISHED first does not end it.
    let (status, ended) = match s.store.run(&id).await {
        Ok(r) if !r.run_dir.is_empty() => (None, None),
        _ => (status, ended),
    };
    s.store
        .update_run(&id, status, ended, name.as_deref())
        .await
        .map_err(ApiError::internal)?;
    if let Some(n) = &name {
        s.store
            .set_tags(&id, &[("mlflow.runName".into(), n.clone())])
            .await
            .map_err(ApiError::internal)?;
    }
    if status.is_some_and(|st| st != RunStatus::Running) {
        // A run logged point by point has many small chunks: make them whole once it ends.
        s.store.compact(&id).await.map_err(ApiError::internal)?;
    }
    let (rec, exp) = run_reply(s, &id).await?;
    Ok(json!({"run_info": run_info_json(s, &rec, &exp)}))
}

/// Store metric points, grouped by key in the order they came.
async fn store_points(
    s: &Served,
    id: &str,
    points: &[(String, f64, i64, i64)],
) -> Result<(), ApiError> {
    let mut by_key: Vec<(&str, Series)> = Vec::new();
    for (k, v, t, st) in points {
        match by_key.iter_mut().find(|(key, _)| key == k) {
            Some((_, series)) => series.push(*st, *t, *v),
            None => {
                let mut series = Series::with_capacity(points.len());
                series.push(*st, *t, *v);
                by_key.push((k, series));
            }
        }
    }
    let batch: Vec<(SeriesKind, &str, &Series)> = by_key
        .iter()
        .map(|(k, series)| (SeriesKind::Metric, *k, series))
        .collect();
    s.store
        .append(id, &batch)
        .await
        .map_err(ApiError::internal)?;
    s.counters.count_points(points.len());
    if s.appended(id) {
        s.store.merge_tails(id).await.map_err(ApiError::internal)?;
    }
    Ok(())
}

async fn add_params(s: &Served, id: &str, params: &[(String, String)]) -> Result<(), ApiError> {
    if let Some(c) = s
        .store
        .add_params(id, params)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::invalid(format!(
            "Changing param values is not allowed. Param with key='{}' was already logged with \
             value='{}' for run ID='{id}'. Attempted logging new value '{}'.",
            c.key, c.stored, c.new
        )));
    }
    s.counters.count_params(params.len());
    Ok(())
}

async fn set_tags(s: &Served, id: &str, tags: &[(String, String)]) -> Result<(), ApiError> {
    s.store
        .set_tags(id, tags)
        .await
        .map_err(ApiError::internal)?;
    if let Some((_, name)) = tags.iter().rev().find(|(k, _)| k == "mlflow.runName") {
        s.store
            .update_run(id, None, None, Some(name))
            .await
            .map_err(ApiError::internal)?;
    }
    s.counters.count_tags(tags.len());
    Ok(())
}

async fn log_metric(s: &Served, req: &Map<String, Value>) -> Reply {
    let id = run_id(req)?;
    let point = metric_of(req, "")?;
    // The hot path of a training loop: no separate lookup. A run that does not exist fails the
    // store's foreign key, and only then is asked about.
    if let Err(e) = store_points(s, &id, &[point]).await {
        existing_run(s, &id).await?;
        return Err(e);
    }
    Ok(json!({}))
}

async fn log_param(s: &Served, req: &Map<String, Value>) -> Reply {
    let id = run_id(req)?;
    let key = req_str(req, "key")?;
    let value = opt_str(req, "value").unwrap_or_default();
    check_param("", &key, &value)?;
    existing_run(s, &id).await?;
    add_params(s, &id, &[(key, value)]).await?;
    Ok(json!({}))
}

async fn set_tag(s: &Served, req: &Map<String, Value>) -> Reply {
    let id = run_id(req)?;
    let key = req_str(req, "key")?;
    let value = opt_str(req, "value").unwrap_or_default();
    check_tag("", &key, &value)?;
    existing_run(s, &id).await?;
    set_tags(s, &id, &[(key, value)]).await?;
    Ok(json!({}))
}

async fn delete_tag(s: &Served, req: &Map<String, Value>) -> Reply {
    let id = run_id(req)?;
    let key = req_str(req, "key")?;
    existing_run(s, &id).await?;
    let tags = s.store.tags(&id).await.map_err(ApiError::internal)?;
    if !tags.iter().any(|(k, _)| k == &key) {
        return Err(ApiError::missing(format!(
            "No tag with name: {key} in run with id {id}"
        )));
    }
    s.store
        .delete_tags(&id, &[key])
        .await
        .map_err(ApiError::internal)?;
    Ok(json!({}))
}

async fn log_batch(s: &Served, req: &Map<String, Value>) -> Reply {
    let id = run_id(req)?;
    let list = |key: &str| -> Result<Vec<Map<String, Value>>, ApiError> {
        match req.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_object()
                        .cloned()
                        .ok_or_else(|| ApiError::invalid(format!("'{key}[{i}]' must be an object")))
                })
                .collect(),
            Some(_) => Err(ApiError::invalid(format!("'{key}' must be a list"))),
        }
    };
    let metrics = list("metrics")?;
    let params = pairs(req, "params")?;
    let tags = pairs(req, "tags")?;
    for (what, limit, n) in [
        ("metrics", MAX_METRICS_PER_BATCH, metrics.len()),
        ("params", MAX_PARAMS_TAGS_PER_BATCH, params.len()),
        ("tags", MAX_PARAMS_TAGS_PER_BATCH, tags.len()),
        (
            "metrics, params, and tags",
            MAX_ENTITIES_PER_BATCH,
            metrics.len() + params.len() + tags.len(),
        ),
    ] {
        if n > limit {
            return Err(ApiError::invalid(format!(
                "A batch logging request can contain at most {limit} {what}. Got {n} {what}. \
                 Please split up {what} across multiple requests and try again."
            )));
        }
    }
    let points = metrics
        .iter()
        .enumerate()
        .map(|(i, m)| metric_of(m, &format!("metrics[{i}].")))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, (k, v)) in params.iter().enumerate() {
        check_param(&format!("params[{i}]."), k, v)?;
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        check_tag(&format!("tags[{i}]."), k, v)?;
    }
    let mut seen = std::collections::BTreeSet::new();
    let dupes: Vec<&str> = params
        .iter()
        .filter(|(k, _)| !seen.insert(k.as_str()))
        .map(|(k, _)| k.as_str())
        .collect();
    if !dupes.is_empty() {
        return Err(ApiError::invalid(format!(
            "Duplicate parameter keys have been submitted: {dupes:?}. Please ensure the request \
             contains only one param value per param key."
        )));
    }
    existing_run(s, &id).await?;
    if !params.is_empty() {
        add_params(s, &id, &params).await?;
    }
    if !tags.is_empty() {
        set_tags(s, &id, &tags).await?;
    }
    if !points.is_empty() {
        store_points(s, &id, &points).await?;
    }
    Ok(json!({}))
}

async fn search_runs(s: &Served, req: &Map<String, Value>) -> Reply {
    let max = max_results(req)?;
    let clauses = search::parse_filter(
        &opt_str(req, "filter").unwrap_or_default(),
        &search::RUN_ATTRIBUTES,
    )
    .map_err(ApiError::invalid)?;
    let mut order = search::parse_order_by(&strings(req, "order_by"), &search::RUN_ATTRIBUTES)
        .map_err(ApiError::invalid)?;
    // MLflow's tie-break: newest first, then by id.
    order.extend(
        search::parse_order_by(
            &[
                "attributes.start_time DESC".into(),
                "attributes.run_id ASC".into(),
            ],
            &search::RUN_ATTRIBUTES,
        )
        .map_err(ApiError::invalid)?,
    );
    let offset = search::parse_page_token(&opt_str(req, "page_token").unwrap_or_default())
        .map_err(ApiError::invalid)?;
    let wanted: Vec<String> = strings(req, "experiment_ids");
    if let Some(Value::Array(given)) = req.get("experiment_ids")
        && given.len() != wanted.len()
    {
        // `[null]` must not widen the search to every experiment.
        return Err(ApiError::invalid(format!(
            "Invalid value {} for parameter 'experiment_ids' supplied: each id must be a string.",
            Value::Array(given.clone())
        )));
    }
    let ids = ExperimentIds::load(s).await?;
    let records = s.store.run_records().await.map_err(ApiError::internal)?;
    let mut rows: Vec<RunRow> = records
        .iter()
        .map(|rec| RunRow {
            rec,
            experiment_id: ids.of(&rec.run.experiment),
            artifact_uri: s.artifact_uri(&rec.run.id),
        })
        .filter(|r| wanted.is_empty() || wanted.contains(&r.experiment_id))
        .filter(|r| search::matches(r, &clauses))
        .collect();
    rows.sort_by(|a, b| search::compare(a, b, &order));
    let (rows, next) = page(rows, offset, max);
    let mut out = json!({
        "runs": rows.iter().map(|r| run_json(s, r.rec, &r.experiment_id)).collect::<Vec<_>>()
    });
    if let Some(t) = next {
        out["next_page_token"] = json!(t);
    }
    Ok(out)
}

async fn metric_history(s: &Served, req: &Map<String, Value>) -> Reply {
    let id = run_id(req)?;
    let key = req_str(req, "metric_key")?;
    existing_run(s, &id).await?;
    let keys = s
        .store
        .series_keys(&id, SeriesKind::Metric)
        .await
        .map_err(ApiError::internal)?;
    // A metric never logged has an empty history, as in MLflow.
    let series = if keys.contains(&key) {
        s.store
            .load_series(&id, SeriesKind::Metric, &key)
            .await
            .map_err(ApiError::internal)?
    } else {
        Series::default()
    };
    let offset = search::parse_page_token(&opt_str(req, "page_token").unwrap_or_default())
        .map_err(ApiError::invalid)?;
    let max = match opt_i64(req, "max_results")? {
        None => usize::MAX,
        Some(n) if n >= 1 => n as usize,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "Invalid value {n} for parameter 'max_results' supplied: it must be at least 1."
            )));
        }
    };
    let idx: Vec<usize> = (0..series.len()).collect();
    let (idx, next) = page(idx, offset, max);
    let metrics: Vec<Value> = idx
        .into_iter()
        .map(|i| {
            json!({
                "key": key,
                "value": double(series.values[i]),
                "timestamp": series.times_ms[i],
                "step": series.steps[i],
            })
        })
        .collect();
    let mut out = json!({ "metrics": metrics });
    if let Some(t) = next {
        out["next_page_token"] = json!(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_mlflow_checks_them() {
        for ok in ["loss", "val/loss", "a b:c", "lr_0.1", "résumé"] {
            assert!(check_name("key", ok).is_ok(), "{ok}");
        }
        for bad in ["../etc", "/abs", "a//b", "a/./b", "a/", ".", "x;y", "a\nb"] {
            let e = check_name("key", bad).unwrap_err();
            assert_eq!(e.code, "INVALID_PARAMETER_VALUE", "{bad}");
        }
    }

    #[test]
    fn normpath_follows_python() {
        for (p, n) in [
            ("a/b", "a/b"),
            ("a//b", "a/b"),
            ("a/./b/", "a/b"),
            ("../x", "../x"),
            ("a/../..", ".."),
            ("/a/../..", "/"),
            ("//a", "//a"),
            ("", "."),
        ] {
            assert_eq!(normpath(p), n, "{p}");
        }
    }

    #[test]
    fn doubles_and_int64s_read_both_json_forms() {
        assert!(f64_of(&json!("NaN")).unwrap().is_nan());
        assert_eq!(f64_of(&json!("-Infinity")), Some(f64::NEG_INFINITY));
        assert_eq!(f64_of(&json!(0.5)), Some(0.5));
        assert_eq!(f64_of(&json!("abc")), None);
        assert_eq!(i64_of(&json!("1700000000000")), Some(1_700_000_000_000));
        assert_eq!(i64_of(&json!(3.0)), Some(3));
        assert_eq!(i64_of(&json!(3.5)), None);
        assert_eq!(double(f64::NAN), json!("NaN"));
        assert_eq!(double(f64::INFINITY), json!("Infinity"));
    }

    #[test]
    fn errors_carry_mlflow_statuses() {
        assert_eq!(ApiError::missing("x").status, StatusCode::NOT_FOUND);
        assert_eq!(ApiError::invalid("x").status, StatusCode::BAD_REQUEST);
        assert_eq!(
            ApiError::new("RESOURCE_ALREADY_EXISTS", "x").status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ApiError::new("ENDPOINT_NOT_FOUND", "x").body()["error_code"],
            "ENDPOINT_NOT_FOUND"
        );
    }

    #[test]
    fn metric_points_are_validated() {
        let m = |v: Value| metric_of(v.as_object().unwrap(), "metrics[0].");
        assert!(m(json!({"key": "loss", "value": 1.0, "timestamp": 5, "step": 2})).is_ok());
        assert_eq!(
            m(json!({"key": "loss", "value": 1.0, "timestamp": 5}))
                .unwrap()
                .3,
            0,
            "step defaults to 0"
        );
        for bad in [
            json!({"key": "loss", "value": "x", "timestamp": 5}),
            json!({"key": "loss", "value": 1.0, "timestamp": -1}),
            json!({"key": "loss", "timestamp": 5}),
            json!({"key": "../loss", "value": 1.0, "timestamp": 5}),
            json!({"key": "loss", "value": 1.0, "timestamp": 5, "step": "x"}),
        ] {
            let e = m(bad.clone()).unwrap_err();
            assert_eq!(e.code, "INVALID_PARAMETER_VALUE", "{bad}");
        }
    }
}
