//! Answers in MLflow's shapes: statuses, experiments and runs as JSON, the rows search filters and orders, and pages.

use super::*;

// ---- answers ----------------------------------------------------------------------------------

pub(super) fn mlflow_status(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Running => "RUNNING",
        RunStatus::Finished => "FINISHED",
        RunStatus::Failed | RunStatus::Crashed => "FAILED",
        RunStatus::Killed => "KILLED",
    }
}

pub(super) fn status_from_mlflow(s: &str) -> Result<RunStatus, ApiError> {
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
pub(super) fn double(v: f64) -> Value {
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
pub(super) struct ExperimentIds {
    pub(super) by_name: BTreeMap<String, String>,
}

impl ExperimentIds {
    pub(super) async fn load(s: &Served) -> Result<Self, ApiError> {
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
    pub(super) fn of(&self, name: &str) -> String {
        self.by_name.get(name).cloned().unwrap_or_default()
    }
}

pub(super) fn external_id(name: &str, id: &str) -> String {
    if name == DEFAULT_EXPERIMENT {
        DEFAULT_EXPERIMENT_ID.to_string()
    } else {
        id.to_string()
    }
}

pub(super) fn experiment_json(e: &crate::store::ExperimentRow, last_update_ms: i64) -> Value {
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

pub(super) fn run_info_json(s: &Served, rec: &RunRecord, experiment_id: &str) -> Value {
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

pub(super) fn run_json(s: &Served, rec: &RunRecord, experiment_id: &str) -> Value {
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
pub(super) struct RunRow<'a> {
    pub(super) rec: &'a RunRecord,
    pub(super) experiment_id: String,
    pub(super) artifact_uri: String,
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
pub(super) struct ExperimentRow<'a> {
    pub(super) e: &'a crate::store::ExperimentRow,
    pub(super) id: String,
    pub(super) last_update: i64,
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
pub(super) fn page<T>(rows: Vec<T>, offset: usize, max: usize) -> (Vec<T>, Option<String>) {
    let total = rows.len();
    let end = offset.saturating_add(max).min(total);
    let next = (end < total).then(|| search::page_token(end));
    let out = rows.into_iter().skip(offset).take(max).collect();
    (out, next)
}
