//! Registering a version and indexing it in the store, with the run it came from: the one way the
//! CLI, the workbench and the demo add a model version.

use super::*;

/// The run a version comes from, with its params, final metrics and code commit, from the store.
pub async fn run_ref(store: &crate::store::Store, run_id: &str) -> Result<RunRef> {
    let (rec, _) = store.run_record(run_id).await?;
    Ok(RunRef {
        id: rec.run.id.clone(),
        name: rec.run.name.clone(),
        experiment: rec.run.experiment.clone(),
        code_commit: rec.run.git_commit.clone(),
        params: rec.params,
        metrics: rec
            .metrics
            .into_iter()
            .filter_map(|(k, s)| Some((k, s.last?)))
            .collect(),
    })
}

/// Register a version and index it in the store: the one way a model version is added, by
/// `gantry model add`, the workbench's `M` and the demo. The files are hashed and placed on the
/// blocking pool; `progress` gets the bytes hashed as they go.
pub async fn register(
    gantry_dir: &Path,
    store: &crate::store::Store,
    req: NewVersion,
    progress: impl Fn(u64) + Send + 'static,
) -> Result<Manifest> {
    let dir = gantry_dir.to_path_buf();
    let (m, commit, req) = tokio::task::spawn_blocking(move || -> Result<_> {
        let reg = Registry::open(&dir)?;
        let m = reg.add(&req, &progress)?;
        let commit = reg.commit_of(&req.name, m.version)?;
        Ok((m, commit, req))
    })
    .await??;
    let row = crate::store::ModelVersionRow {
        model: req.name.clone(),
        version: i64::from(m.version),
        commit,
        run_id: req.run.as_ref().map(|r| r.id.clone()),
        author: req.author.clone(),
        notes: req.notes.clone(),
        total_bytes: m.total_bytes() as i64,
    };
    store.record_model_version(&row).await?;
    Ok(m)
}
