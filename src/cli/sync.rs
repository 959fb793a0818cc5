//! Runs recorded while the team store was away: `gantry run` keeps such a run in the
//! workspace's own SQLite file and leaves a mark (`.gantry/unsynced/RUN_ID`); `push_pending`
//! copies each marked run into the team store (`store::copy`, exactly once: the run is replaced
//! there) and removes the mark once the run has ended. `gantry sync` does it on demand, and every
//! command that opens the team store on that host does it first.

use super::out::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::domain::RunStatus;
use crate::domain::store::StoreKind;
use crate::error::UserError;
use crate::store::Store;
use crate::workspace::Workspace;

/// `gantry sync`
#[derive(clap::Args, Debug)]
pub struct Args {}

fn marks(ws: &Workspace) -> PathBuf {
    ws.dir().join("unsynced")
}

/// Mark run `id` as kept here while the team store was away.
pub fn mark(ws: &Workspace, id: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(marks(ws))?;
    std::fs::write(marks(ws).join(id), b"")
}

/// The runs marked in this workspace.
pub fn pending(ws: &Workspace) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(marks(ws)) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    ids.sort();
    ids
}

/// Copy the marked runs of `ws` into `team`; one line per run for the user.
pub async fn push_pending(ws: &Workspace, team: &Store) -> anyhow::Result<Vec<String>> {
    let ids = pending(ws);
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let local = Store::open(&ws.db_path()).await?;
    // Runs whose gantry is gone are ended first, so their end goes along.
    let _ = crate::capture::recover::recover(&local).await;
    let mut notes = Vec::new();
    for id in ids {
        let run = match local.run(&id).await {
            Ok(r) => r,
            Err(_) => {
                // Deleted here meanwhile: nothing to push.
                let _ = std::fs::remove_file(marks(ws).join(&id));
                continue;
            }
        };
        let done =
            crate::store::copy::copy(&local, team, Some(std::slice::from_ref(&id)), |_, _| {})
                .await?;
        let ended = run.status != RunStatus::Running;
        if ended {
            let _ = std::fs::remove_file(marks(ws).join(&id));
        }
        notes.push(format!(
            "pushed run {} ({}, {}, {} points) to the team store{}",
            run.short_id(),
            run.name,
            run.status,
            done.points,
            if ended {
                ""
            } else {
                "; it is still running, and is pushed again later"
            }
        ));
    }
    local.close().await;
    Ok(notes)
}

pub async fn run(_args: Args, workspace: &Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let ws = super::resolve(workspace)?;
    let loc = super::common::store_location(&ws)?;
    let StoreKind::Postgres(url) = &loc.kind else {
        return Err(UserError::new(format!(
            "the store in use is {} ({}), not a team store: there is nothing to sync",
            loc.shown(),
            loc.source
        ))
        .hint("sync pushes runs kept here while a team store could not be reached")
        .into());
    };
    let team = Store::open_team(url).await?;
    let notes = push_pending(&ws, &team).await?;
    if notes.is_empty() {
        outln!("nothing to sync: every run of this workspace is in the team store");
    }
    for n in notes {
        outln!("{n}");
    }
    team.close().await;
    Ok(ExitCode::SUCCESS)
}
