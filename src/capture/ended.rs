//! How a run ended, kept in its folder (`end.json`) when the store cannot take it: a full disk, or
//! metrics still waiting to be stored. The file's space is reserved when the run starts, so
//! writing the end later needs no new disk blocks; the next gantry command's recovery stores the
//! waiting metrics and then this end.

use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::domain::RunStatus;

pub const FILE: &str = "end.json";
/// The reserved size: room for any end record.
const SIZE: usize = 256;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct End {
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub ended_ms: i64,
}

/// Reserve the file's space at the start of a run: blanks, synced.
pub fn reserve(dir: &Path) -> io::Result<()> {
    let mut f = std::fs::File::create(dir.join(FILE))?;
    f.write_all(&[b' '; SIZE])?;
    f.sync_all()
}

/// Write the end over the reserved blanks, in place, and sync it.
pub fn write(dir: &Path, end: &End) -> io::Result<()> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(FILE))?;
    let mut text = serde_json::to_vec(end)?;
    if text.len() > SIZE {
        return Err(io::Error::other(
            "end record longer than its reserved space",
        ));
    }
    text.resize(SIZE, b' ');
    f.write_all_at(&text, 0)?;
    f.sync_data()
}

/// The end written in a run's folder, if there is one.
pub fn read(dir: &Path) -> Option<End> {
    let f = super::ingest::open_regular(&dir.join(FILE)).ok()?;
    let mut buf = vec![0u8; SIZE];
    let n = f.read_at(&mut buf, 0).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?.trim();
    serde_json::from_str(text).ok()
}

/// Remove the file once the store holds the end.
pub fn clear(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(FILE));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_round_trips_through_the_reserved_file() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read(d.path()), None);
        reserve(d.path()).unwrap();
        assert_eq!(read(d.path()), None, "blanks are no end");
        let end = End {
            status: RunStatus::Finished,
            exit_code: Some(0),
            ended_ms: 1_700_000_000_000,
        };
        write(d.path(), &end).unwrap();
        assert_eq!(
            std::fs::metadata(d.path().join(FILE)).unwrap().len(),
            SIZE as u64
        );
        assert_eq!(read(d.path()), Some(end));
        clear(d.path());
        assert_eq!(read(d.path()), None);
    }
}
