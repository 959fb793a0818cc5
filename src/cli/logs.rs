use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;
use std::time::Duration;

use crate::domain::RunStatus;
use crate::store::Store;

/// `gantry logs RUN [-f]`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A run id, a unique id prefix, or a run name
    pub run: String,
    /// Keep printing new output until the run ends
    #[arg(short, long)]
    pub follow: bool,
}

/// The run's output: its `output.log` where this host has it, else what its host stored (another
/// box's run on a shared store, or a run folder since removed).
pub async fn run(args: Args, workspace: &Option<std::path::PathBuf>) -> anyhow::Result<ExitCode> {
    let (_, store) = super::common::open(workspace).await?;
    let run = store.resolve_run(&args.run).await?;
    let path = std::path::Path::new(&run.run_dir).join("output.log");
    // This host's own run reads its file, and follows it into being when it is running (a
    // detached run may not have made it yet).
    let local = run.host == crate::host::hostname()
        && (path.is_file() || (args.follow && run.status == RunStatus::Running));
    if !local {
        return from_store(&store, &run, args.follow).await;
    }
    let mut out = std::io::stdout().lock();
    let mut pos = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let mut checks = 0u32;
    loop {
        if let Ok(mut f) = std::fs::File::open(&path) {
            f.seek(SeekFrom::Start(pos))?;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                pos += n as u64;
                if out.write_all(&buf[..n]).is_err() {
                    return Ok(ExitCode::SUCCESS); // the reader went away (| head)
                }
            }
            out.flush()?;
        }
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        checks += 1;
        if checks.is_multiple_of(5) {
            let now = store.run(&run.id).await?;
            if now.status != RunStatus::Running {
                // One last read for what was written just before the end.
                if let Ok(mut f) = std::fs::File::open(&path) {
                    f.seek(SeekFrom::Start(pos))?;
                    std::io::copy(&mut f, &mut out)?;
                }
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

/// The output as the store holds it, followed (polling, 4 times a second) until the run ends.
async fn from_store(
    store: &Store,
    run: &crate::domain::Run,
    follow: bool,
) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let mut pos = 0i64;
    let mut ended = !follow;
    loop {
        let (data, end) = store.log_from(&run.id, pos, 4 << 20).await?;
        if !data.is_empty() {
            pos = end;
            if out.write_all(&data).and_then(|()| out.flush()).is_err() {
                return Ok(ExitCode::SUCCESS); // the reader went away (| head)
            }
            continue;
        }
        if ended {
            if pos == 0 {
                eprintln!(
                    "gantry: run {} has no output in the store (its host {} keeps {})",
                    run.short_id(),
                    run.host,
                    std::path::Path::new(&run.run_dir)
                        .join("output.log")
                        .display()
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        // One more read after the run ends, for what was stored with its end.
        ended = store.run(&run.id).await?.status != RunStatus::Running;
    }
}
