//! The runs endpoints: create (and adopt the `gantry run` of the calling script), get, update, log metrics, params and tags one at a time or in batches, search, and a metric's history.

use super::*;

// ---- runs -------------------------------------------------------------------------------------

pub(super) async fn existing_run(s: &Served, id: &str) -> Result<(), ApiError> {
    if s.store.has_run(id).await.map_err(ApiError::internal)? {
        Ok(())
    } else {
        Err(ApiError::missing(format!("Run with id={id} not found")))
    }
}

pub(super) async fn run_reply(s: &Served, id: &str) -> Result<(RunRecord, String), ApiError> {
    existing_run(s, id).await?;
    let (rec, _) = s.store.run_record(id).await.map_err(ApiError::internal)?;
    let ids = ExperimentIds::load(s).await?;
    let exp = ids.of(&rec.run.experiment);
    Ok((rec, exp))
}

/// The process on this host that sent a request over loopback.
pub(super) struct ClientProcess {
    pub(super) pid: i64,
    pub(super) start: Option<i64>,
    pub(super) command: Vec<String>,
    pub(super) cwd: Option<String>,
}

pub(super) async fn client_process(
    s: &Served,
    peer: std::net::SocketAddr,
) -> Option<ClientProcess> {
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
pub(super) async fn adopted_run(
    s: &Served,
    client: Option<&ClientProcess>,
) -> Option<crate::domain::Run> {
    let id = crate::capture::procs::gantry_run_id(client?.pid)?;
    let run = s.store.run(&id).await.ok()?;
    (run.status == RunStatus::Running).then_some(run)
}

pub(super) async fn create_run(
    s: &Served,
    req: &Map<String, Value>,
    peer: std::net::SocketAddr,
) -> Reply {
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

pub(super) async fn get_run(s: &Served, req: &Map<String, Value>) -> Reply {
    let id = run_id(req)?;
    let (rec, exp) = run_reply(s, &id).await?;
    Ok(json!({"run": run_json(s, &rec, &exp)}))
}

pub(super) async fn update_run(s: &Served, req: &Map<String, Value>) -> Reply {
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
pub(super) async fn store_points(
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

pub(super) async fn add_params(
    s: &Served,
    id: &str,
    params: &[(String, String)],
) -> Result<(), ApiError> {
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

pub(super) async fn set_tags(
    s: &Served,
    id: &str,
    tags: &[(String, String)],
) -> Result<(), ApiError> {
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

pub(super) async fn log_metric(s: &Served, req: &Map<String, Value>) -> Reply {
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

pub(super) async fn log_param(s: &Served, req: &Map<String, Value>) -> Reply {
    let id = run_id(req)?;
    let key = req_str(req, "key")?;
    let value = opt_str(req, "value").unwrap_or_default();
    check_param("", &key, &value)?;
    existing_run(s, &id).await?;
    add_params(s, &id, &[(key, value)]).await?;
    Ok(json!({}))
}

pub(super) async fn set_tag(s: &Served, req: &Map<String, Value>) -> Reply {
    let id = run_id(req)?;
    let key = req_str(req, "key")?;
    let value = opt_str(req, "value").unwrap_or_default();
    check_tag("", &key, &value)?;
    existing_run(s, &id).await?;
    set_tags(s, &id, &[(key, value)]).await?;
    Ok(json!({}))
}

pub(super) async fn delete_tag(s: &Served, req: &Map<String, Value>) -> Reply {
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

pub(super) async fn log_batch(s: &Served, req: &Map<String, Value>) -> Reply {
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

pub(super) async fn search_runs(s: &Served, req: &Map<String, Value>) -> Reply {
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

pub(super) async fn metric_history(s: &Served, req: &Map<String, Value>) -> Reply {
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
