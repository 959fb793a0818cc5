//! Catching up after gantry itself died: every command first stores what the metrics files of
//! running runs hold beyond the stored offsets, and marks `crashed` a run whose process is gone
//! (same host, and the pid is dead or now belongs to another process).

use std::path::Path;

use anyhow::Result;

use crate::domain::{RunStatus, now_ms};
use crate::store::Store;

use super::ingest::{SOURCE_METRICS, SOURCE_STDOUT, Tail};
use super::procs;

/// A run started this long ago with no pid recorded never started its command.
const START_GRACE_MS: i64 = 60_000;

/// Bring running runs of this host up to date. Returns a line per run marked crashed.
pub async fn recover(store: &Store) -> Result<Vec<String>> {
    let host = super::supervise::hostname();
    let now = now_ms();
    let mut notes = Vec::new();
    for run in store.runs_with_status(RunStatus::Running).await? {
        if run.host != host {
            continue;
        }
        let alive = match run.pid {
            Some(pid) => procs::is_same_process(pid, run.pid_start),
            None => now - run.started_ms < START_GRACE_MS,
        };
        let dir = Path::new(&run.run_dir);
        if !run.run_dir.is_empty() {
            for (source, file) in [
                (SOURCE_METRICS, "metrics.jsonl"),
                (SOURCE_STDOUT, "stdout-metrics.jsonl"),
            ] {
                let mut tail = Tail::open(store, &run.id, source, &dir.join(file)).await?;
                while tail.step(store, now, !alive).await?.more {}
            }
        }
        if !alive {
            let ended = ["output.log", "metrics.jsonl", "stdout-metrics.jsonl"]
                .iter()
                .filter_map(|f| std::fs::metadata(dir.join(f)).ok()?.modified().ok())
                .max()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(now, |d| d.as_millis() as i64)
                .max(run.started_ms);
            store
                .finish_run(&run.id, RunStatus::Crashed, None, ended)
                .await?;
            store.compact(&run.id).await?;
            let why = match run.pid {
                Some(pid) => format!("its process {pid} is gone"),
                None => "its command never started".into(),
            };
            notes.push(format!(
                "run {} ({}) marked crashed: {why}",
                run.short_id(),
                run.name
            ));
        }
    }
    Ok(notes)
}
