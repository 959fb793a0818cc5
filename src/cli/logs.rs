use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;
use std::time::Duration;

use crate::domain::RunStatus;

/// `gantry logs RUN [-f]`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A run id, a unique id prefix, or a run name
    pub run: String,
    /// Keep printing new output until the run ends
    #[arg(short, long)]
    pub follow: bool,
}

pub async fn run(args: Args, workspace: &Option<std::path::PathBuf>) -> anyhow::Result<ExitCode> {
    let (_, store) = super::common::open(workspace).await?;
    let run = store.resolve_run(&args.run).await?;
    let path = std::path::Path::new(&run.run_dir).join("output.log");
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
        } else if !args.follow {
            eprintln!(
                "gantry: run {} has no output log ({})",
                run.short_id(),
                path.display()
            );
            return Ok(ExitCode::SUCCESS);
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
