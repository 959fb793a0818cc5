use super::out::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::workspace::Workspace;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The directory to hold .gantry/ [default: --workspace if given, else the current directory]
    pub dir: Option<PathBuf>,
}

pub fn run(args: Args, workspace: &Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let dir = match (args.dir, workspace) {
        (Some(d), _) => d,
        (None, Some(w)) => w.clone(),
        (None, None) => std::env::current_dir()?,
    };
    let existed = dir.join(crate::workspace::MARKER).is_dir();
    let ws = Workspace::init(&dir)?;
    super::start_logging(&ws);
    // Create the store now, so a workspace that cannot hold one fails here and not later.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = crate::store::Store::open(&ws.db_path()).await?;
        store.close().await;
        Ok::<_, crate::error::UserError>(())
    })?;
    if existed {
        outln!("workspace already present at {}", ws.dir().display());
    } else {
        outln!("created workspace {}", ws.dir().display());
    }
    Ok(ExitCode::SUCCESS)
}
