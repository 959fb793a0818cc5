//! The experiments endpoints: get by name or id, create, search.

use super::*;

// ---- experiments ------------------------------------------------------------------------------

/// The experiment an API id names: "0" is the default experiment, made when first asked for.
pub(super) async fn experiment_by_api_id(
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

pub(super) async fn last_update(s: &Served) -> Result<BTreeMap<String, i64>, ApiError> {
    let runs = s.store.runs().await.map_err(ApiError::internal)?;
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for r in runs {
        let t = r.ended_ms.unwrap_or(r.started_ms);
        let e = out.entry(r.experiment).or_insert(t);
        *e = (*e).max(t);
    }
    Ok(out)
}

pub(super) async fn get_experiment_by_name(s: &Served, req: &Map<String, Value>) -> Reply {
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

pub(super) async fn create_experiment(s: &Served, req: &Map<String, Value>) -> Reply {
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

pub(super) async fn get_experiment(s: &Served, req: &Map<String, Value>) -> Reply {
    let id = req_str(req, "experiment_id")?;
    let e = experiment_by_api_id(s, &id).await?;
    let updated = last_update(s).await?.get(&e.name).copied().unwrap_or(0);
    Ok(json!({"experiment": experiment_json(&e, updated)}))
}

pub(super) async fn search_experiments(s: &Served, req: &Map<String, Value>) -> Reply {
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
