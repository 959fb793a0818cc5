//! What several commands share: opening the workspace's store (with recovery of runs whose gantry
//! died), number and time formats, and the JSON form of a run.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::config::WorkspaceConfig;
use crate::domain::store::{StoreKind, StoreLocation};
use crate::domain::{RunRecord, RunStatus};
use crate::error::UserError;
use crate::store::Store;
use crate::workspace::Workspace;

/// `--store`, as given on the command line (set once by `cli::run`).
/// How runs made by this process sample their GPUs (`--gpu-replay`, `--gpu-replay-pid`) and
/// price them (`[cost]`): set once from the command line and the config.
pub static SAMPLING: std::sync::OnceLock<crate::capture::sampler::SamplerOptions> =
    std::sync::OnceLock::new();

/// The sampling options for a run made by this process.
/// Problems in the user's config that change how runs are watched, priced or checked (`[alerts]`,
/// `[cost]`, `[preflight]`, or a file not read at all): `gantry run` says them before it starts.
pub static CONFIG_PROBLEMS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// `[preflight]` from the config, set once with SAMPLING.
pub static PREFLIGHT: std::sync::OnceLock<crate::domain::preflight::Settings> =
    std::sync::OnceLock::new();

pub fn sampling() -> crate::capture::sampler::SamplerOptions {
    SAMPLING.get().cloned().unwrap_or_default()
}

pub static STORE_FLAG: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// The store this command uses and why: `--store`, `GANTRY_STORE`, `store` in the workspace's
/// config.toml, else its SQLite file.
pub fn store_location(ws: &Workspace) -> Result<StoreLocation, UserError> {
    let config = WorkspaceConfig::load(&ws.config_path()).map_err(|d| {
        UserError::new(format!("bad workspace config: {d}"))
            .hint("its only key is store = \"postgres://USER@HOST:PORT/DATABASE\" (or sqlite:PATH)")
    })?;
    let env = std::env::var("GANTRY_STORE").ok();
    let cwd = std::env::current_dir().unwrap_or_else(|_| ws.root.clone());
    ws.store(
        STORE_FLAG.get().and_then(|f| f.as_deref()),
        env.as_deref(),
        config.store.as_deref(),
        &cwd,
    )
}

/// Open the store this command uses: the workspace's SQLite file, or a PostgreSQL team store
/// (connected to, and its schema brought up to date).
pub async fn open_store(ws: &Workspace) -> Result<Store, UserError> {
    open_at(&store_location(ws)?.kind).await
}

/// Open the store at `kind`.
pub async fn open_at(kind: &StoreKind) -> Result<Store, UserError> {
    match kind {
        StoreKind::Sqlite(path) => Store::open(path).await,
        StoreKind::Postgres(url) => Store::open_team(url).await,
    }
}

/// For `gantry run`: the store in use, or, where a team store cannot be reached within
/// `within`, the workspace's own SQLite file (the command must not wait on the network), with
/// the reason; the run made there is marked for `gantry sync`.
pub async fn open_for_run(
    flag: &Option<PathBuf>,
    within: std::time::Duration,
) -> Result<(Workspace, Store, Option<UserError>), UserError> {
    let ws = super::resolve(flag)?;
    let loc = store_location(&ws)?;
    let (store, away) = match &loc.kind {
        StoreKind::Postgres(url) => match Store::open_team_within(url, within).await {
            Ok(s) => (s, None),
            Err(e) => (Store::open(&ws.db_path()).await?, Some(e)),
        },
        StoreKind::Sqlite(path) => (Store::open(path).await?, None),
    };
    if !store.read_only() {
        after_open(&ws, &store).await;
    }
    Ok((ws, store, away))
}

/// The workspace and its store, with running runs brought up to date first.
pub async fn open(flag: &Option<PathBuf>) -> Result<(Workspace, Store), UserError> {
    let ws = super::resolve(flag)?;
    let store = open_store(&ws).await?;
    if store.read_only() {
        // Nothing can be caught up in a workspace that cannot be written: show it as it is.
        tracing::info!("workspace {} is read-only: no recovery", ws.label());
        return Ok((ws, store));
    }
    after_open(&ws, &store).await;
    Ok((ws, store))
}

/// What every command does once its store is open: catch up on running runs, and on a team
/// store push the runs kept here while it could not be reached.
async fn after_open(ws: &Workspace, store: &Store) {
    tell(
        crate::capture::recover::recover(store).await,
        "could not catch up on running runs",
    );
    if store.is_team() {
        tell(
            super::sync::push_pending(ws, store).await,
            "could not push the runs kept here to the team store",
        );
    }
}

/// Say on stderr (escaped) and in the log what a step did, a line each, or that it failed.
pub fn tell(done: anyhow::Result<Vec<String>>, failing: &str) {
    match done {
        Ok(notes) => {
            for n in notes {
                eprintln!("gantry: {}", crate::format::printable(&n));
                tracing::info!("{n}");
            }
        }
        Err(e) => {
            eprintln!(
                "gantry: {failing}: {}",
                crate::format::printable(&format!("{e:#}"))
            );
            tracing::warn!("{failing}: {e:#}");
        }
    }
}

pub fn opt_num(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), crate::format::compact)
}

/// Local date and time of a millisecond timestamp.
pub fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// A run's status as tables print it: `status_text`, or `lost (2m)` for a running run whose
/// heartbeat stopped (its host may still be running it).
pub fn run_status_text(run: &crate::domain::Run, now_ms: i64) -> String {
    match run.lost_for(now_ms) {
        Some(age) => format!(
            "lost ({})",
            crate::format::ago(now_ms - age, now_ms).replace(" ago", "")
        ),
        None => status_text(run.status, run.exit_code),
    }
}

/// `finished`, `failed (exit 3)`, `killed (SIGTERM)`.
pub fn status_text(status: RunStatus, exit_code: Option<i32>) -> String {
    match (status, exit_code) {
        (RunStatus::Failed, Some(c)) => format!("failed ({c})"),
        (RunStatus::Killed, Some(c)) if c < 0 => format!("killed ({})", signal_name(-c)),
        (s, _) => s.to_string(),
    }
}

pub fn signal_name(sig: i32) -> String {
    match sig {
        1 => "SIGHUP".into(),
        2 => "SIGINT".into(),
        6 => "SIGABRT".into(),
        9 => "SIGKILL".into(),
        11 => "SIGSEGV".into(),
        15 => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}

/// JSON numbers cannot be NaN or infinite: those become the strings "NaN", "Infinity", "-Infinity".
pub fn json_num(x: Option<f64>) -> Value {
    match x {
        None => Value::Null,
        Some(v) if v.is_nan() => "NaN".into(),
        Some(v) if v.is_infinite() => (if v > 0.0 { "Infinity" } else { "-Infinity" }).into(),
        Some(v) => json!(v),
    }
}

/// The JSON form of a run, shared by `runs --json` and `show --json` (docs/cli-json.md).
pub fn run_json(rec: &RunRecord, now_ms: i64) -> Value {
    let r = &rec.run;
    let metrics: serde_json::Map<String, Value> = rec
        .metrics
        .iter()
        .map(|(k, s)| {
            (
                k.clone(),
                json!({
                    "points": s.n_points,
                    "last_step": s.last_step,
                    "last": json_num(s.last),
                    "min": json_num(s.min),
                    "max": json_num(s.max),
                }),
            )
        })
        .collect();
    json!({
        "id": r.id,
        "name": r.name,
        "experiment": r.experiment,
        "status": r.status,
        "exit_code": r.exit_code,
        "started_ms": r.started_ms,
        "ended_ms": r.ended_ms,
        "duration_ms": r.duration_ms(now_ms),
        "heartbeat_ms": r.heartbeat_ms,
        "lost_ms": r.lost_for(now_ms),
        "host": r.host,
        "user": r.user,
        "pid": r.pid,
        "command": r.command,
        "cwd": r.cwd,
        "git": {"commit": r.git_commit, "branch": r.git_branch, "dirty": r.git_dirty},
        "gpus": r.gpus,
        "env": r.env,
        "notes": r.notes,
        "run_dir": r.run_dir,
        "params": rec.params,
        "tags": rec.tags,
        "metrics": metrics,
        "models": rec.models.iter().map(|(m, v)| format!("{m}@v{v}")).collect::<Vec<_>>(),
    })
}

/// Parse `k=v` pairs from the command line.
pub fn pairs(items: &[String], what: &str) -> Result<Vec<(String, String)>, UserError> {
    items
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(UserError::new(format!("{what} `{s}` is not key=value"))
                .hint(format!("write it as --{what} name=value"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_well() {
        assert_eq!(status_text(RunStatus::Failed, Some(3)), "failed (3)");
        assert_eq!(
            status_text(RunStatus::Killed, Some(-15)),
            "killed (SIGTERM)"
        );
        assert_eq!(status_text(RunStatus::Finished, Some(0)), "finished");
    }
}
