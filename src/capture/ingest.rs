//! Tailing a run's metrics files into the store. Each step reads what was appended since the
//! stored byte offset, parses whole lines, and stores points, the new offset and the rejected
//! lines in one transaction: a crash at any moment neither loses a written line nor stores one
//! twice. A line longer than `MAX_LINE` is rejected without being held in memory.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::domain::efficiency::StepClock;
use crate::domain::{Series, SeriesKind};
use crate::store::{IngestBatch, IngestState, Store};

use super::protocol::Parser;

/// The file the command writes ($GANTRY_METRICS).
pub const SOURCE_METRICS: &str = "metrics";
/// The file gantry writes with metrics it read from the command's output.
pub const SOURCE_STDOUT: &str = "stdout";
/// Lines longer than this are rejected.
pub const MAX_LINE: usize = 1 << 20;
/// How many malformed lines per source are remembered with their reason.
pub const KEEP_MALFORMED: i64 = 20;
/// At most this much is read per step, so one step's memory stays bounded.
const READ_LIMIT: u64 = 8 << 20;

/// How many of a file's first bytes are kept to tell a rewrite in place from an append.
pub const HEAD_BYTES: usize = 256;

/// What one step found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StepReport {
    pub points: usize,
    pub lines: usize,
    pub malformed: usize,
    /// The file is missing (not created yet, or deleted).
    pub missing: bool,
    /// Another file took its place (a new inode): the old one is finished, the new one read from
    /// its start.
    pub replaced: bool,
    /// The same file was rewritten in place (`>` instead of `>>`, `open(path, "w")` again): it is
    /// shorter than what was read, or its first bytes changed. It is read again from its start.
    pub rewritten: bool,
    /// The path holds something other than a regular file (a FIFO, a directory) or cannot be
    /// opened (a symbolic link loop): why. Nothing is read from it and nothing waits on it.
    pub unreadable: Option<String>,
    /// More is waiting beyond the read limit.
    pub more: bool,
}

impl StepReport {
    fn merge(mut self, o: StepReport) -> StepReport {
        self.points += o.points;
        self.lines += o.lines;
        self.malformed += o.malformed;
        self.missing |= o.missing;
        self.replaced |= o.replaced;
        self.rewritten |= o.rewritten;
        self.unreadable = self.unreadable.or(o.unreadable);
        self.more |= o.more;
        self
    }
}

/// Open a file to read only if it is a regular file, without ever waiting: a FIFO or a device at
/// the path is refused at once (opening a FIFO to read would block until a writer came).
pub fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let t = f.metadata()?.file_type();
    if t.is_file() {
        return Ok(f);
    }
    let what = if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a device"
    };
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{} is {what}, not a regular file", path.display()),
    ))
}

pub struct Tail {
    run_id: String,
    source: &'static str,
    path: PathBuf,
    state: IngestState,
    next_step: HashMap<String, i64>,
    parser: Parser,
    /// Inside an over-long line: discard up to its newline.
    skipping: bool,
    buf: Vec<u8>,
    /// The file being read, held open: its inode cannot be reused while held, so a file deleted
    /// and written again is told apart even at the same length, and a deleted file's last lines
    /// can still be read.
    file: Option<std::fs::File>,
    /// The offset the store holds for this source (it differs from `state.byte_offset` only
    /// right after a switch to a replacing file).
    stored_offset: i64,
    /// The first bytes read (at most `HEAD_BYTES`, never past `state.byte_offset`).
    head: Vec<u8>,
    /// After a rewrite in place: lines ending at or before this offset were read once before.
    reread_until: i64,
    /// The progress the stored lines show (steps, logged FLOPs, declared work).
    clock: StepClock,
}

impl Tail {
    /// Start tailing `path` from where the store says this source was left.
    pub async fn open(
        store: &Store,
        run_id: &str,
        source: &'static str,
        path: &Path,
    ) -> Result<Tail> {
        let (state, head) = store.ingest_state(run_id, source).await?;
        let next_step = store
            .last_steps(run_id)
            .await?
            .into_iter()
            .map(|(k, s)| (k, s.saturating_add(1)))
            .collect();
        Ok(Tail {
            run_id: run_id.to_string(),
            source,
            path: path.to_path_buf(),
            state,
            next_step,
            parser: Parser::default(),
            skipping: false,
            buf: Vec::new(),
            file: None,
            stored_offset: state.byte_offset,
            head,
            reread_until: 0,
            clock: StepClock::default(),
        })
    }

    pub fn state(&self) -> IngestState {
        self.state
    }

    /// What the lines stored so far say about the run's progress.
    pub fn clock(&self) -> &StepClock {
        &self.clock
    }

    /// Read from the start again: `rewrite` when the same file was rewritten in place.
    fn restart(&mut self, rewrite: bool) {
        self.reread_until = if rewrite { self.state.byte_offset } else { 0 };
        if rewrite {
            self.state.rewrites += 1;
        }
        self.state.byte_offset = 0;
        self.state.line_count = 0;
        self.skipping = false;
        self.head.clear();
    }

    /// Whether `file` no longer holds what was read from it: shorter than what was read, or its
    /// first bytes differ.
    fn rewritten_in_place(&self, file: &std::fs::File) -> Result<bool> {
        use std::os::unix::fs::FileExt;
        let len = file.metadata()?.len();
        if len < self.state.byte_offset as u64 {
            return Ok(true);
        }
        if self.head.is_empty() {
            return Ok(false);
        }
        let mut now = vec![0u8; self.head.len()];
        file.read_exact_at(&mut now, 0)?;
        Ok(now != self.head)
    }

    /// Read what is new and store it. `at_end`: the writer is gone, so a last line without its
    /// newline is taken too. `now_ms` stamps lines that carry no time. An error (the store
    /// failing, a full disk) leaves the position where it was: the same lines are read and stored
    /// by a later step, none lost.
    pub async fn step(&mut self, store: &Store, now_ms: i64, at_end: bool) -> Result<StepReport> {
        use std::os::unix::fs::MetadataExt;
        let mut report = StepReport::default();
        let on_disk = match std::fs::metadata(&self.path) {
            Ok(m) if m.is_file() => Some(m),
            Ok(_) => {
                report.unreadable = open_regular(&self.path).err().map(|e| e.to_string());
                None
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                report.unreadable = Some(format!("cannot read {}: {e}", self.path.display()));
                None
            }
        };
        let held_ino = self
            .file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.ino());
        match (&on_disk, held_ino) {
            (None, None) => {
                report.missing = report.unreadable.is_none();
                return Ok(report);
            }
            // Deleted, or something else put there: read what the held file still has.
            (None, Some(_)) => report.missing = report.unreadable.is_none(),
            (Some(m), Some(ino)) if m.ino() != ino => {
                // Replaced: finish the old file, then start the new one from its beginning.
                let mut old = self.read_held(store, now_ms, true).await?;
                old.replaced = true;
                self.file = None;
                self.restart(false);
                self.file = open_regular(&self.path).ok();
                let new = self.read_held(store, now_ms, at_end).await?;
                return Ok(report.merge(old).merge(new));
            }
            _ => {}
        }
        if self.file.is_none() {
            let f = match open_regular(&self.path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    report.missing = true;
                    return Ok(report);
                }
                Err(e) => {
                    report.unreadable = Some(e.to_string());
                    return Ok(report);
                }
            };
            self.file = Some(f);
        }
        if let Some(f) = &self.file
            && on_disk.is_some()
            && self.rewritten_in_place(f)?
        {
            self.restart(true);
            report.rewritten = true;
        }
        let r = self.read_held(store, now_ms, at_end).await?;
        Ok(report.merge(r))
    }

    /// Read and store what the held file has beyond the current offset. On an error nothing of
    /// this read is kept: the position, steps and head are as they were before it.
    async fn read_held(&mut self, store: &Store, now_ms: i64, at_end: bool) -> Result<StepReport> {
        let mut report = StepReport::default();
        let Some(file) = self.file.as_mut() else {
            return Ok(report);
        };
        let len = file.metadata()?.len();
        let start = self.state.byte_offset as u64;
        if len <= start && self.stored_offset == self.state.byte_offset {
            return Ok(report);
        }
        let want = len.saturating_sub(start).min(READ_LIMIT);
        report.more = len.saturating_sub(start) > want;
        self.buf.clear();
        file.seek(SeekFrom::Start(start))?;
        file.take(want).read_to_end(&mut self.buf)?;
        let before = (
            self.state,
            self.next_step.clone(),
            self.skipping,
            self.head.len(),
            self.clock.clone(),
        );
        let buf = std::mem::take(&mut self.buf);
        let mut batch = self.parse(&buf, now_ms, at_end && !report.more, &mut report);
        // The head grows with what was read until it holds HEAD_BYTES.
        let consumed = (self.state.byte_offset as u64 - start) as usize;
        if self.head.len() as u64 == start && self.head.len() < HEAD_BYTES {
            let take = consumed.min(HEAD_BYTES - self.head.len());
            self.head.extend_from_slice(&buf[..take]);
        }
        self.buf = buf;
        batch.from_offset = self.stored_offset;
        batch.head = self.head.clone();
        let stored = match store.ingest(&self.run_id, self.source, &batch).await {
            Ok(stored) => stored,
            Err(e) => {
                (self.state, self.next_step, self.skipping) = (before.0, before.1, before.2);
                self.head.truncate(before.3);
                self.clock = before.4;
                return Err(e);
            }
        };
        if !stored {
            // Another reader (recovery in another gantry) stored this part first: take its word.
            *self =
                Tail::open(store, &self.run_id.clone(), self.source, &self.path.clone()).await?;
            return Ok(StepReport {
                more: true,
                ..StepReport::default()
            });
        }
        self.stored_offset = self.state.byte_offset;
        Ok(report)
    }

    fn parse(
        &mut self,
        buf: &[u8],
        now_ms: i64,
        at_end: bool,
        report: &mut StepReport,
    ) -> IngestBatch {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut series: Vec<(SeriesKind, String, Series)> = Vec::new();
        let mut malformed = Vec::new();
        let mut pos = 0usize;
        let base = self.state.byte_offset;
        let mut bad = |state: &mut IngestState, line_no: i64, reason: String| {
            if state.malformed < KEEP_MALFORMED {
                malformed.push((line_no, reason));
            }
            state.malformed += 1;
            report.malformed += 1;
        };
        while pos < buf.len() {
            let rest = &buf[pos..];
            let (line, consumed, complete) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], i + 1, true),
                None if rest.len() > MAX_LINE => (rest, rest.len(), false),
                None if at_end => (rest, rest.len(), true),
                None => break,
            };
            pos += consumed;
            if self.skipping || !complete {
                // Part of an over-long line: drop it; the line is counted once, at its end.
                self.skipping = !complete;
                if complete {
                    self.state.line_count += 1;
                    let n = self.state.line_count;
                    bad(
                        &mut self.state,
                        n,
                        format!("line longer than {} MiB", MAX_LINE >> 20),
                    );
                }
                continue;
            }
            self.state.line_count += 1;
            report.lines += 1;
            if base + pos as i64 <= self.reread_until {
                self.state.reread += 1;
            }
            let line_no = self.state.line_count;
            if line.len() > MAX_LINE {
                bad(
                    &mut self.state,
                    line_no,
                    format!("line longer than {} MiB", MAX_LINE >> 20),
                );
                continue;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if line.starts_with(b"{\"_malformed\":") {
                // Written by gantry's output capture: a bad `gantry:` line of the command's output.
                let (n, reason) = captured_malformed(line);
                bad(&mut self.state, n.unwrap_or(line_no), reason);
                continue;
            }
            let (step, time_ms) = match self.parser.parse(line) {
                Ok(st) => st,
                Err(reason) => {
                    bad(&mut self.state, line_no, reason);
                    continue;
                }
            };
            let t = time_ms.unwrap_or(now_ms);
            for (key, value) in self.parser.metrics() {
                let i = match index.get(key) {
                    Some(i) => *i,
                    None => {
                        index.insert(key.to_string(), series.len());
                        series.push((SeriesKind::Metric, key.to_string(), Series::default()));
                        series.len() - 1
                    }
                };
                let next = match self.next_step.get_mut(key) {
                    Some(n) => n,
                    None => self.next_step.entry(key.to_string()).or_insert(0),
                };
                let s = step.unwrap_or(*next);
                *next = s.saturating_add(1);
                series[i].2.push(s, t, value);
                self.clock.see(key, s, t, value);
                report.points += 1;
            }
        }
        self.state.byte_offset += pos as i64;
        IngestBatch {
            from_offset: 0,
            series,
            state: self.state,
            malformed,
            head: Vec::new(),
        }
    }
}

fn captured_malformed(line: &[u8]) -> (Option<i64>, String) {
    #[derive(serde::Deserialize)]
    struct M {
        line: Option<i64>,
        reason: String,
    }
    #[derive(serde::Deserialize)]
    struct W {
        _malformed: M,
    }
    match serde_json::from_slice::<W>(line) {
        Ok(w) => (w._malformed.line, w._malformed.reason),
        Err(e) => (None, format!("unreadable capture record: {e}")),
    }
}

/// The record gantry writes for a bad `gantry:` line in the command's output.
pub fn malformed_record(output_line: i64, reason: &str) -> String {
    serde_json::json!({"_malformed": {"line": output_line, "reason": reason}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::NewRun;
    use std::io::Write;

    async fn setup() -> (tempfile::TempDir, Store, String, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).await.unwrap();
        let run = store
            .create_run(&NewRun {
                name: "r".into(),
                experiment: "e".into(),
                ..NewRun::default()
            })
            .await
            .unwrap();
        let path = dir.path().join("metrics.jsonl");
        (dir, store, run.id, path)
    }

    fn append(path: &Path, text: &[u8]) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(text)
            .unwrap();
    }

    #[tokio::test]
    async fn partial_lines_wait_and_steps_auto_increment_per_key() {
        let (_d, store, run, path) = setup().await;
        let mut t = Tail::open(&store, &run, SOURCE_METRICS, &path)
            .await
            .unwrap();
        assert!(t.step(&store, 1, false).await.unwrap().missing);
        append(
            &path,
            b"{\"loss\": 1}\n{\"loss\": 2, \"acc\": 0.5}\n{\"loss\": 3",
        );
        let r = t.step(&store, 1000, false).await.unwrap();
        assert_eq!((r.lines, r.points), (2, 3));
        append(&path, b"}\n{\"step\": 10, \"acc\": 0.7}\n{\"acc\": 0.8}\n");
        t.step(&store, 2000, false).await.unwrap();
        let loss = store
            .load_series(&run, SeriesKind::Metric, "loss")
            .await
            .unwrap();
        assert_eq!(loss.steps, [0, 1, 2]);
        assert_eq!(loss.values, [1.0, 2.0, 3.0]);
        assert_eq!(loss.times_ms, [1000, 1000, 2000]);
        let acc = store
            .load_series(&run, SeriesKind::Metric, "acc")
            .await
            .unwrap();
        assert_eq!(acc.steps, [0, 10, 11]);
    }

    #[tokio::test]
    async fn a_new_tail_resumes_exactly_where_the_store_left_off() {
        let (_d, store, run, path) = setup().await;
        append(&path, b"{\"x\": 1}\n{\"x\": 2}\n");
        let mut t = Tail::open(&store, &run, SOURCE_METRICS, &path)
            .await
            .unwrap();
        t.step(&store, 0, false).await.unwrap();
        drop(t); // as if gantry were killed here
        append(&path, b"{\"x\": 3}\n");
        let mut t = Tail::open(&store, &run, SOURCE_METRICS, &path)
            .await
            .unwrap();
        t.step(&store, 0, false).await.unwrap();
        t.step(&store, 0, false).await.unwrap();
        let x = store
            .load_series(&run, SeriesKind::Metric, "x")
            .await
            .unwrap();
        assert_eq!(x.values, [1.0, 2.0, 3.0], "nothing lost, nothing twice");
        assert_eq!(x.steps, [0, 1, 2], "auto steps continue after the restart");
    }

    #[tokio::test]
    async fn bad_lines_are_counted_with_line_numbers_and_never_stop_ingest() {
        let (_d, store, run, path) = setup().await;
        let mut text = Vec::new();
        text.extend_from_slice(b"{\"x\": 1}\nnot json\n{\"x\": \"high\"}\n\xff\xfe\n");
        text.extend_from_slice(&vec![b'7'; MAX_LINE + 10]);
        text.extend_from_slice(b"\n{\"x\": 2}\n\n{\"x\": NaN}\n");
        append(&path, &text);
        let mut t = Tail::open(&store, &run, SOURCE_METRICS, &path)
            .await
            .unwrap();
        while t.step(&store, 0, false).await.unwrap().lines > 0 {}
        let x = store
            .load_series(&run, SeriesKind::Metric, "x")
            .await
            .unwrap();
        assert_eq!(x.len(), 3);
        assert!(x.values[2].is_nan());
        let (lines, total) = store.malformed(&run).await.unwrap();
        assert_eq!(total, 4);
        let got: Vec<(i64, &str)> = lines.iter().map(|(_, n, r)| (*n, r.as_str())).collect();
        assert_eq!(got[0].0, 2);
        assert_eq!(got[0].1, "not a JSON object");
        assert_eq!(got[1], (3, "no numeric fields"));
        assert!(got[2].1.contains("invalid UTF-8"), "{got:?}");
        assert_eq!(got[3], (5, "line longer than 1 MiB"));
    }

    #[tokio::test]
    async fn an_over_long_line_is_dropped_without_holding_it() {
        let (_d, store, run, path) = setup().await;
        let mut t = Tail::open(&store, &run, SOURCE_METRICS, &path)
            .await
            .unwrap();
        append(&path, &vec![b'a'; MAX_LINE + 1]);
        t.step(&store, 0, false).await.unwrap();
        assert_eq!(
            t.state().byte_offset as usize,
            MAX_LINE + 1,
            "consumed, not buffered"
        );
        append(&path, b"aaaa\n{\"y\": 5}\n");
        t.step(&store, 0, false).await.unwrap();
        assert_eq!(
            store
                .load_series(&run, SeriesKind::Metric, "y")
                .await
                .unwrap()
                .values,
            [5.0]
        );
        assert_eq!(store.malformed(&run).await.unwrap().1, 1);
    }

    #[tokio::test]
    async fn a_replaced_file_is_read_from_the_start() {
        let (_d, store, run, path) = setup().await;
        append(&path, b"{\"z\": 1}\n{\"z\": 2}\n");
        let mut t = Tail::open(&store, &run, SOURCE_METRICS, &path)
            .await
            .unwrap();
        t.step(&store, 0, false).await.unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(t.step(&store, 0, false).await.unwrap().missing);
        append(&path, b"{\"z\": 9}\n");
        assert!(t.step(&store, 0, false).await.unwrap().replaced);
        let z = store
            .load_series(&run, SeriesKind::Metric, "z")
            .await
            .unwrap();
        assert_eq!(z.values, [1.0, 2.0, 9.0]);
    }

    #[tokio::test]
    async fn two_readers_of_one_file_never_store_a_line_twice() {
        let (_d, store, run, path) = setup().await;
        let mut a = Tail::open(&store, &run, SOURCE_METRICS, &path)
            .await
            .unwrap();
        let mut b = Tail::open(&store, &run, SOURCE_METRICS, &path)
            .await
            .unwrap();
        append(&path, b"{\"v\": 1}\n");
        a.step(&store, 0, false).await.unwrap();
        let r = b.step(&store, 0, false).await.unwrap();
        assert_eq!(
            r.points, 0,
            "b was behind: it stores nothing and catches up"
        );
        append(&path, b"{\"v\": 2}\n");
        b.step(&store, 0, false).await.unwrap();
        a.step(&store, 0, false).await.unwrap();
        a.step(&store, 0, false).await.unwrap();
        let v = store
            .load_series(&run, SeriesKind::Metric, "v")
            .await
            .unwrap();
        assert_eq!(v.values, [1.0, 2.0]);
        assert_eq!(v.steps, [0, 1]);
    }

    #[tokio::test]
    async fn the_last_line_without_newline_is_taken_at_the_end() {
        let (_d, store, run, path) = setup().await;
        append(&path, b"{\"w\": 1}");
        let mut t = Tail::open(&store, &run, SOURCE_METRICS, &path)
            .await
            .unwrap();
        assert_eq!(t.step(&store, 0, false).await.unwrap().points, 0);
        assert_eq!(t.step(&store, 0, true).await.unwrap().points, 1);
    }

    fn rewrite(path: &Path, text: &[u8]) {
        // `>`: truncate and write the same file (same inode), as a shell redirection does.
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .unwrap()
            .write_all(text)
            .unwrap();
    }

    #[tokio::test]
    async fn a_file_rewritten_in_place_is_read_again_from_its_start() {
        let (_d, store, run, path) = setup().await;
        append(&path, b"");
        let mut t = Tail::open(&store, &run, SOURCE_METRICS, &path)
            .await
            .unwrap();
        // `echo '{"step": N, "loss": N}' > $GANTRY_METRICS` in a loop: each line the same length.
        let mut rewrites = 0;
        for i in 1..=5 {
            rewrite(
                &path,
                format!("{{\"step\": {i}, \"loss\": {i}}}\n").as_bytes(),
            );
            rewrites += usize::from(t.step(&store, 0, false).await.unwrap().rewritten);
        }
        // Python's open(path, "w") reopened with a longer batch each time.
        rewrite(
            &path,
            b"{\"step\": 6, \"loss\": 6}\n{\"step\": 7, \"loss\": 7}\n",
        );
        rewrites += usize::from(t.step(&store, 0, false).await.unwrap().rewritten);
        let loss = store
            .load_series(&run, SeriesKind::Metric, "loss")
            .await
            .unwrap();
        assert_eq!(loss.steps, [1, 2, 3, 4, 5, 6, 7], "every line stored once");
        assert_eq!(rewrites, 5);
        assert_eq!(
            store.rewrites(&run).await.unwrap(),
            [("metrics".to_string(), 5, 5)]
        );
        // A new reader (another gantry command) tells the next rewrite from what the store kept.
        drop(t);
        rewrite(&path, b"{\"step\": 8, \"loss\": 8}\n");
        let mut t = Tail::open(&store, &run, SOURCE_METRICS, &path)
            .await
            .unwrap();
        assert!(t.step(&store, 0, true).await.unwrap().rewritten);
        let loss = store
            .load_series(&run, SeriesKind::Metric, "loss")
            .await
            .unwrap();
        assert_eq!(loss.steps.last(), Some(&8));
        // Appending still just appends.
        append(&path, b"{\"step\": 9, \"loss\": 9}\n");
        assert!(!t.step(&store, 0, true).await.unwrap().rewritten);
    }

    #[tokio::test]
    async fn a_fifo_or_a_directory_at_the_path_is_reported_and_never_waited_on() {
        let (d, store, run, _) = setup().await;
        let fifo = d.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid path string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let dir = d.path().join("dir");
        std::fs::create_dir(&dir).unwrap();
        let looped = d.path().join("loop");
        std::os::unix::fs::symlink(&looped, &looped).unwrap();
        for (path, says) in [
            (&fifo, "a FIFO (named pipe), not a regular file"),
            (&dir, "a directory, not a regular file"),
            (&looped, "cannot read"),
        ] {
            let mut t = Tail::open(&store, &run, SOURCE_METRICS, path)
                .await
                .unwrap();
            // Opening a FIFO to read would block here until a writer came.
            let r =
                tokio::time::timeout(std::time::Duration::from_secs(10), t.step(&store, 0, true))
                    .await
                    .expect("a step never waits on the path")
                    .unwrap();
            let why = r.unreadable.expect("reported");
            assert!(why.contains(says), "{why}");
            assert!(!r.missing);
        }
        assert!(open_regular(&fifo).is_err());
    }

    #[tokio::test]
    async fn a_store_that_fails_loses_no_line_and_stores_each_once_when_it_recovers() {
        let (d, store, run, path) = setup().await;
        let db = d.path().join("g.db");
        let sql = |q: &str| {
            let c = rusqlite::Connection::open(&db).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            c.execute_batch(q).unwrap();
        };
        let mut t = Tail::open(&store, &run, SOURCE_METRICS, &path)
            .await
            .unwrap();
        let lines = |from: i64, to: i64| {
            (from..to)
                .map(|i| format!("{{\"step\": {i}, \"x\": {i}}}\n"))
                .collect::<String>()
        };
        append(&path, lines(0, 10).as_bytes());
        t.step(&store, 0, false).await.unwrap();
        // The disk fills: every write to the store fails, as SQLITE_FULL would.
        sql("CREATE TRIGGER full BEFORE UPDATE ON ingest_sources BEGIN \
             SELECT RAISE(ABORT, 'database or disk is full'); END;");
        for k in 1..=3 {
            append(&path, lines(k * 10, k * 10 + 10).as_bytes());
            let e = t.step(&store, 0, false).await.unwrap_err();
            assert!(format!("{e:#}").contains("disk is full"), "{e:#}");
        }
        sql("DROP TRIGGER full;");
        append(&path, lines(40, 50).as_bytes());
        while t.step(&store, 0, false).await.unwrap().more {}
        let x = store
            .load_series(&run, SeriesKind::Metric, "x")
            .await
            .unwrap();
        assert_eq!(x.steps, (0..50).collect::<Vec<i64>>(), "each line once");
        assert_eq!(t.state().line_count, 50);
        // The pool still works: no connection was left inside a failed transaction.
        for _ in 0..8 {
            store
                .set_tags(&run, &[("k".into(), "v".into())])
                .await
                .unwrap();
        }
    }
}
