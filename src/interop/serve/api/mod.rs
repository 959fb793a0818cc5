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

mod answers;
mod experiments;
mod request;
mod runs;

use crate::domain::{NewRun, RunRecord, RunStatus, Series, SeriesKind, now_ms};
use answers::*;
use experiments::*;
use request::*;
use runs::*;

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
