use super::out::{self, outln};
use std::process::ExitCode;

use serde::Serialize;

use crate::workspace::Workspace;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print JSON: {"root", "dir", "source", "store", "log"}
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Where {
    root: String,
    dir: String,
    source: String,
    store: String,
    log: String,
}

pub fn run(args: Args, ws: &Workspace) -> anyhow::Result<ExitCode> {
    let w = Where {
        root: ws.root.display().to_string(),
        dir: ws.dir().display().to_string(),
        source: ws.source.to_string(),
        store: ws.db_path().display().to_string(),
        log: ws.log_file().display().to_string(),
    };
    if args.json {
        out::json(&w)?;
    } else {
        outln!("{}", w.root);
        outln!("  why:   {}", w.source);
        outln!("  store: {}", w.store);
        outln!("  log:   {}", w.log);
    }
    Ok(ExitCode::SUCCESS)
}
