//! Carrying a run's `output.log` into the store as it grows (`Store::append_log`), from the byte
//! the store already has, so `gantry logs` and the log pane work from any host. The local file
//! stays as it is.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::store::Store;

/// The most a step reads, unless it drains: a burst of output is carried over several ticks.
const STEP_BYTES: u64 = 4 << 20;

pub struct LogTail {
    run_id: String,
    path: PathBuf,
    /// Kept open between steps once the file exists (a step is then one fstat).
    file: Option<std::fs::File>,
    /// Where the stored log ends: the next byte of the file to store.
    pos: i64,
}

impl LogTail {
    pub async fn open(store: &Store, run_id: &str, path: &Path) -> Result<LogTail> {
        Ok(LogTail {
            run_id: run_id.to_string(),
            path: path.to_path_buf(),
            file: None,
            pos: store.log_end(run_id).await?,
        })
    }

    /// Store what the file holds past the stored end: up to 4 MiB, or all of it when `drain`.
    /// Returns the bytes stored.
    pub async fn step(&mut self, store: &Store, drain: bool) -> Result<u64> {
        let mut stored = 0u64;
        loop {
            if self.file.is_none() {
                match std::fs::File::open(&self.path) {
                    Ok(f) => self.file = Some(f),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(stored),
                    Err(e) => return Err(e.into()),
                }
            }
            let Some(f) = self.file.as_mut() else {
                return Ok(stored);
            };
            let data = read_from(f, self.pos as u64, STEP_BYTES)?;
            if data.is_empty() {
                return Ok(stored);
            }
            if store.append_log(&self.run_id, self.pos, &data).await? {
                self.pos += data.len() as i64;
                stored += data.len() as u64;
            } else {
                // Another writer (a recovering command) stored these bytes: go on from its end.
                self.pos = store.log_end(&self.run_id).await?;
            }
            if !drain {
                return Ok(stored);
            }
        }
    }
}

/// Up to `max` bytes of the file from `pos`; nothing when it is shorter.
fn read_from(f: &mut std::fs::File, pos: u64, max: u64) -> Result<Vec<u8>> {
    if f.metadata()?.len() <= pos {
        return Ok(Vec::new());
    }
    f.seek(SeekFrom::Start(pos))?;
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf)?;
    Ok(buf)
}
