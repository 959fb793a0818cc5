//! Registering a version and indexing it in the store, with the run it came from: the one way the
//! CLI, the workbench and the demo add a model version.

use super::*;

/// The run a version comes from, with its params, final metrics and code commit, from the store.
pub async fn run_ref(store: &crate::store::Store, run_id: &str) -> Result<RunRef> {
    let (rec, _) = store.run_record(run_id).await?;
    let hardware = rec
        .tags
        .get(crate::domain::efficiency::HARDWARE_TAG)
        .and_then(|t| crate::domain::efficiency::Hardware::parse(t));
    Ok(RunRef {
        hardware,
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

/// `m` and the versions it was made from, following `from` (a missing one or a cycle ends the
/// walk and is named in the second list).
pub fn chain(reg: &Registry, m: &Manifest) -> (Vec<Manifest>, Vec<String>) {
    let mut out = vec![m.clone()];
    let mut missing = Vec::new();
    let mut next = m.from.clone();
    while let Some(spec) = next.take() {
        if out.len() > 256 {
            missing.push(format!("{spec} (lineage longer than 256 versions)"));
            break;
        }
        match reg.resolve(&spec) {
            Ok(p)
                if out
                    .iter()
                    .any(|o| o.name == p.name && o.version == p.version) =>
            {
                missing.push(format!("{spec} (a cycle)"));
            }
            Ok(p) => {
                next = p.from.clone();
                out.push(p);
            }
            Err(_) => missing.push(spec),
        }
    }
    (out, missing)
}

/// The energy, GPU-hours and cost behind the versions of `chain` (from `chain`): each run's
/// figures as the store has them now, else as its manifest recorded them.
pub async fn lineage(
    store: &crate::store::Store,
    chain: &[Manifest],
    missing: Vec<String>,
) -> crate::domain::model::Lineage {
    use crate::domain::efficiency::RunEfficiency;
    let mut l = crate::domain::model::Lineage {
        missing,
        ..Default::default()
    };
    let mut seen = std::collections::BTreeSet::new();
    for (i, m) in chain.iter().enumerate() {
        l.versions.push(format!("{}@v{}", m.name, m.version));
        let Some(r) = &m.run else { continue };
        if !seen.insert(r.id.clone()) {
            continue;
        }
        let e = match store.run_record(&r.id).await {
            Ok((rec, _)) => RunEfficiency::of(&rec),
            // Not in this store (made on another box): as its manifest recorded it.
            Err(_) => RunEfficiency::from_lasts(|k| r.metrics.get(k).copied(), None),
        };
        if i == 0 {
            l.own = e.clone();
        }
        l.total.add(&e);
        l.runs += 1;
    }
    l
}
