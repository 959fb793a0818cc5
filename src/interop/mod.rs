//! Other tools' formats: importing MLflow (its FileStore tree and its SQLite store) and
//! TensorBoard event files, exporting runs as CSV, JSON lines or an MLflow FileStore tree, and
//! `gantry serve` (the MLflow REST API and Prometheus metrics).

pub mod export;
pub mod mlflow;
pub mod promtext;
pub mod serve;
pub mod tensorboard;

pub use crate::domain::ImportedRun;

/// A stable 32-hex run id for a source without one of its own.
pub fn stable_id(source: &str) -> String {
    blake3::hash(source.as_bytes()).to_hex()[..32].to_string()
}

/// A 32-hex id as is (lowercase), else a stable hash of it.
pub fn run_id_from(source_id: &str, origin: &str) -> String {
    let s = source_id.replace('-', "").to_ascii_lowercase();
    if s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        s
    } else {
        stable_id(&format!("{origin}:{source_id}"))
    }
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub created: usize,
    pub updated: usize,
    pub points: usize,
    pub skipped_deleted: usize,
    pub bad_records: usize,
    pub truncated_files: usize,
    pub notes: Vec<String>,
}

/// Import an MLflow store: a SQLite database file, or a FileStore tree (PATH or PATH/mlruns).
/// FileStore runs are parsed on a second thread while the store writes. `progress(done, total)`
/// is called after each run.
pub async fn import_mlflow(
    store: &crate::store::Store,
    path: &std::path::Path,
    progress: &dyn Fn(usize, usize),
) -> anyhow::Result<ImportSummary> {
    use crate::error::UserError;
    let mut sum = ImportSummary::default();
    let meta = std::fs::metadata(path).map_err(|e| {
        UserError::new(format!("cannot read {}", path.display()))
            .cause(e)
            .hint("give the mlruns/ folder or the mlflow.db file")
    })?;
    if meta.is_file() {
        let (runs, deleted) = mlflow::read_db(path).await.map_err(|e| {
            UserError::new(format!("cannot import {}", path.display()))
                .cause(format!("{e:#}"))
                .hint("give an MLflow SQLite database (mlflow.db) or an mlruns/ folder")
        })?;
        sum.skipped_deleted = deleted;
        let total = runs.len();
        let mut batch = Batch::default();
        for (i, run) in runs.into_iter().enumerate() {
            if batch.push(run) {
                batch.store(store, &mut sum).await?;
                progress(i + 1, total);
            }
        }
        batch.store(store, &mut sum).await?;
        progress(total, total);
        return Ok(sum);
    }
    let root = mlflow::find_file_store(path).ok_or_else(|| {
        UserError::new(format!("{} holds no MLflow tracking data", path.display())).hint(
            "give the mlruns/ folder (experiment folders holding meta.yaml) or an mlflow.db file",
        )
    })?;
    let (dirs, deleted_exps, no_meta) = mlflow::file_store_runs(&root)?;
    sum.skipped_deleted = deleted_exps;
    for dir in no_meta {
        sum.notes.push(format!(
            "{} has no meta.yaml, so it is not read as an experiment: its runs were not imported",
            dir.display()
        ));
    }
    let total = dirs.len();
    let (tx, rx) = std::sync::mpsc::sync_channel::<anyhow::Result<Option<ImportedRun>>>(2);
    let reader = std::thread::spawn(move || {
        for (exp, dir) in dirs {
            if tx.send(mlflow::read_file_run(&exp, &dir)).is_err() {
                return;
            }
        }
    });
    let mut done = 0;
    let result = async {
        let mut batch = Batch::default();
        for r in &rx {
            done += 1;
            match r? {
                Some(run) => {
                    sum.bad_records += run.problems.len();
                    sum.notes.extend(run.problems.iter().take(5).cloned());
                    if batch.push(run) {
                        batch.store(store, &mut sum).await?;
                        progress(done, total);
                    }
                }
                None => sum.skipped_deleted += 1,
            }
        }
        batch.store(store, &mut sum).await?;
        progress(done, total);
        Ok::<_, anyhow::Error>(())
    }
    .await;
    drop(rx);
    let _ = reader.join();
    result.map(|_| sum)
}

/// Import TensorBoard event files under `dir`, a run per folder.
pub async fn import_tensorboard(
    store: &crate::store::Store,
    dir: &std::path::Path,
    experiment: &str,
    progress: &dyn Fn(usize, usize),
) -> anyhow::Result<ImportSummary> {
    use crate::error::UserError;
    let hint = "give the log directory (the one you pass to tensorboard --logdir)";
    let (runs, bad, truncated) = tensorboard::import_dir(dir, experiment).map_err(|e| {
        UserError::new(format!("cannot read TensorBoard logs in {}", dir.display()))
            .cause(e)
            .hint(hint)
    })?;
    if runs.is_empty() {
        return Err(
            UserError::new(format!("no tfevents files under {}", dir.display()))
                .hint(hint)
                .into(),
        );
    }
    let mut sum = ImportSummary {
        bad_records: bad,
        truncated_files: truncated,
        ..Default::default()
    };
    let total = runs.len();
    let mut batch = Batch::default();
    for (i, run) in runs.into_iter().enumerate() {
        if batch.push(run) {
            batch.store(store, &mut sum).await?;
            progress(i + 1, total);
        }
    }
    batch.store(store, &mut sum).await?;
    progress(total, total);
    Ok(sum)
}

/// Imported runs waiting to be stored together: one transaction per batch, not per run (for
/// runs of a few hundred points, the transaction cost more than the rows).
#[derive(Default)]
struct Batch {
    runs: Vec<ImportedRun>,
    points: usize,
}

impl Batch {
    const MAX_RUNS: usize = 256;
    const MAX_POINTS: usize = 2_000_000;

    /// Add a run; true when the batch is full and should be stored.
    fn push(&mut self, run: ImportedRun) -> bool {
        self.points += run.points();
        self.runs.push(run);
        self.runs.len() >= Self::MAX_RUNS || self.points >= Self::MAX_POINTS
    }

    async fn store(
        &mut self,
        store: &crate::store::Store,
        sum: &mut ImportSummary,
    ) -> anyhow::Result<()> {
        if self.runs.is_empty() {
            return Ok(());
        }
        for new in store.import_runs(&self.runs).await? {
            if new {
                sum.created += 1;
            } else {
                sum.updated += 1;
            }
        }
        sum.points += self.points;
        self.runs.clear();
        self.points = 0;
        Ok(())
    }
}
