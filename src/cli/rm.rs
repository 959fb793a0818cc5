use super::out::outln;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use crate::domain::RunStatus;
use crate::error::UserError;

/// `gantry rm RUN...`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Runs to delete: ids, unique id prefixes or names
    #[arg(required = true)]
    pub runs: Vec<String>,
    /// Do not ask
    #[arg(short, long)]
    pub yes: bool,
    /// Delete runs that are still running too (their commands keep running, untracked)
    #[arg(long)]
    pub force: bool,
}

pub async fn run(args: Args, workspace: &Option<std::path::PathBuf>) -> anyhow::Result<ExitCode> {
    let (ws, store) = super::common::open(workspace).await?;
    let mut runs = Vec::new();
    for r in &args.runs {
        let run = store.resolve_run(r).await?;
        if !runs.iter().any(|x: &crate::domain::Run| x.id == run.id) {
            runs.push(run);
        }
    }
    if let Some(live) = runs.iter().find(|r| r.status == RunStatus::Running)
        && !args.force
    {
        return Err(UserError::new(format!(
            "run {} ({}) is still running",
            live.short_id(),
            live.name
        ))
        .hint("stop it first, or pass --force to delete its record anyway")
        .into());
    }
    let list: Vec<String> = runs
        .iter()
        .map(|r| format!("{} ({})", r.short_id(), r.name))
        .collect();
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(
                UserError::new("refusing to delete runs without confirmation")
                    .hint("pass --yes to delete without asking")
                    .into(),
            );
        }
        eprint!(
            "delete {} run(s): {}, with their logs and metrics? [y/N] ",
            runs.len(),
            list.join(", ")
        );
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing deleted");
            return Ok(ExitCode::from(1));
        }
    }
    let ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
    let n = store.delete_runs(&ids).await?;
    for r in &runs {
        // Only inside this workspace's runs/ folder, whatever the store says.
        let dir = ws.runs_dir().join(&r.id);
        if dir.is_dir()
            && let Err(e) = std::fs::remove_dir_all(&dir)
        {
            eprintln!("gantry: could not remove {}: {e}", dir.display());
        }
    }
    outln!("deleted {n} run(s): {}", list.join(", "));
    Ok(ExitCode::SUCCESS)
}
