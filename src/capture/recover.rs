//! Catching up after gantry itself died: every command first stores what the metrics files of
//! running runs hold beyond the stored offsets, and ends a run whose processes are gone (same
//! host; the command's pid and the supervising `gantry run`'s pid both dead or reused): with the
//! end its supervisor kept in the run's folder (`end.json`) when the store could not take it, else
//! `crashed`. Ends are compare-and-set, so an end recorded meanwhile is never overwritten.

use std::path::Path;

use anyhow::Result;

use crate::domain::{RunStatus, now_ms};
use crate::store::Store;

use super::ended;
use super::ingest::{SOURCE_METRICS, SOURCE_STDOUT, Tail};
use super::procs;

/// A run started this long ago with no pid recorded never started its command.
const START_GRACE_MS: i64 = 60_000;

/// Bring running runs of this host up to date. Returns a line per run it ended. A run that fails
/// to catch up (the store failing again) is left running for the next command and named in the
/// error; the other runs still catch up.
pub async fn recover(store: &Store) -> Result<Vec<String>> {
    let host = crate::host::hostname();
    let mut notes = Vec::new();
    let mut failed = Vec::new();
    let now = now_ms();
    for run in store.runs_with_status(RunStatus::Running).await? {
        if run.host != host {
            // Another host's run: its pid means nothing here. Only a heartbeat silent for longer
            // than `crashed_after_s` ends it, at the last time it was known alive.
            if let Some(beat) = run.heartbeat_ms
                && now - beat > crate::domain::crashed_after_ms()
                && store.mark_crashed(&run.id, beat).await?
            {
                notes.push(format!(
                    "run {} ({}) of host {}: no heartbeat for {}; marked crashed",
                    run.short_id(),
                    run.name,
                    run.host,
                    crate::format::duration(now - beat)
                ));
            }
            continue;
        }
        match recover_run(store, &run).await {
            Ok(Some(note)) => notes.push(note),
            Ok(None) => {}
            Err(e) => failed.push(format!("run {}: {e:#}", run.short_id())),
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("{}", failed.join("; "));
    }
    Ok(notes)
}

async fn recover_run(store: &Store, run: &crate::domain::Run) -> Result<Option<String>> {
    let now = now_ms();
    let supervised = match store.supervisor(&run.id).await? {
        Some((pid, start)) => procs::is_same_process(pid, start),
        None => false,
    };
    let dir = Path::new(&run.run_dir);
    // An end its supervisor wrote in the run folder (the store could not take it) settles it,
    // even where the store never got the command's pid (a disk full from the start).
    let end = (!run.run_dir.is_empty())
        .then(|| ended::read(dir))
        .flatten();
    let alive = supervised
        || (end.is_none()
            && match run.pid {
                Some(pid) => procs::is_same_process(pid, run.pid_start),
                None => now - run.started_ms < START_GRACE_MS,
            });
    if !run.run_dir.is_empty() {
        for (source, file) in [
            (SOURCE_METRICS, "metrics.jsonl"),
            (SOURCE_STDOUT, "stdout-metrics.jsonl"),
        ] {
            let mut tail = Tail::open(store, &run.id, source, &dir.join(file)).await?;
            while tail.step(store, now, !alive).await?.more {}
        }
        if !alive {
            // The output its supervisor had not stored yet.
            super::logs::LogTail::open(store, &run.id, &dir.join("output.log"))
                .await?
                .step(store, true)
                .await?;
        }
    }
    if alive {
        return Ok(None);
    }
    if let Some(end) = end {
        // The supervisor saw the end but the store could not take it then.
        if store
            .finish_run(&run.id, end.status, end.exit_code, end.ended_ms)
            .await?
        {
            ended::clear(dir);
            store.compact(&run.id).await?;
            return Ok(Some(format!(
                "run {} ({}) ended {}: stored now, with the metrics that were waiting",
                run.short_id(),
                run.name,
                end.status
            )));
        }
        return Ok(None);
    }
    let ended = ["output.log", "metrics.jsonl", "stdout-metrics.jsonl"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok()?.modified().ok())
        .max()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(now, |d| d.as_millis() as i64)
        .max(run.started_ms);
    if !store.mark_crashed(&run.id, ended).await? {
        return Ok(None); // its supervisor recorded the end meanwhile
    }
    store.compact(&run.id).await?;
    let why = match run.pid {
        Some(pid) => format!("its process {pid} is gone"),
        None => "its command never started".into(),
    };
    Ok(Some(format!(
        "run {} ({}) marked crashed: {why}",
        run.short_id(),
        run.name
    )))
}
