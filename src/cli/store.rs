use super::out::outln;
use std::process::ExitCode;

use crate::error::UserError;

/// `gantry store …`
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Copy this store's runs (params, tags, series, output), models index and bench history
    /// into another store; again later, it updates them and never duplicates
    Copy(CopyArgs),
}

#[derive(clap::Args, Debug)]
pub struct CopyArgs {
    /// The store to copy into: postgres://USER@HOST:PORT/DATABASE, or sqlite:PATH for an
    /// offline copy
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Only these runs (ids, unique id prefixes or names) [default: every run]
    pub runs: Vec<String>,
}

pub async fn run(args: Args, workspace: &Option<std::path::PathBuf>) -> anyhow::Result<ExitCode> {
    let Command::Copy(args) = args.command;
    let (ws, from) = super::common::open(workspace).await?;
    let cwd = std::env::current_dir().unwrap_or_else(|_| ws.root.clone());
    let here = super::common::store_location(&ws)?;
    let there = ws.store(Some(&args.to), None, None, &cwd)?;
    if there.kind == here.kind {
        return Err(UserError::new(format!(
            "`{}` is the store in use: there is nothing to copy",
            there.shown()
        ))
        .hint("give --to another store")
        .into());
    }
    let to = super::common::open_at(&there.kind).await?;
    let ids = if args.runs.is_empty() {
        None
    } else {
        let mut ids = Vec::new();
        for r in &args.runs {
            ids.push(from.resolve_run(r).await?.id);
        }
        Some(ids)
    };
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} runs ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(format!("copying to {}", there.shown()));
    let start = std::time::Instant::now();
    let done = crate::store::copy::copy(&from, &to, ids.as_deref(), |i, n| {
        bar.set_length(n as u64);
        bar.set_position(i as u64);
    })
    .await
    .map_err(|e| {
        UserError::new(format!("copying into {} failed", there.shown()))
            .cause(format!("{e:#}"))
            .hint("run it again: what was copied is kept, and a second copy updates it")
    })?;
    bar.finish_and_clear();
    outln!(
        "copied {} runs ({} points), {} model versions and {} bench results to {} in {:.1} s",
        done.runs,
        done.points,
        done.model_versions,
        done.bench_results,
        there.shown(),
        start.elapsed().as_secs_f64()
    );
    to.close().await;
    from.close().await;
    Ok(ExitCode::SUCCESS)
}
