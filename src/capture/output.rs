//! The command's output: copied to the terminal (when attached) and to the run's log, and read for
//! metrics: a stdout line that is one JSON object with a `step` key, or a line starting with
//! `gantry:` (JSON or key=value pairs). Those go to the run's captured-metrics file, stamped with
//! the time they were seen. A failing log or metrics file (a full disk) is reported once and
//! retried; the command's output keeps flowing, so the command never blocks on gantry.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ingest::{MAX_LINE, malformed_record};
use super::protocol::{parse_line, payload_to_json};

/// How long a failed file waits before gantry tries to write it again.
const RETRY: Duration = Duration::from_secs(10);

/// A file that may fail (full disk): writes are skipped for a while after a failure, the first
/// failure is reported, and the recovery too.
pub struct Sink {
    path: PathBuf,
    file: Option<File>,
    what: &'static str,
    failed_at: Option<Instant>,
    lost_bytes: u64,
    report: Reporter,
}

/// Where problems are told: the terminal's stderr when attached, and the log in any case.
#[derive(Clone)]
pub struct Reporter {
    pub to_terminal: bool,
}

impl Reporter {
    pub fn warn(&self, msg: &str) {
        tracing::warn!("{msg}");
        if self.to_terminal {
            let _ = writeln!(std::io::stderr(), "gantry: {msg}");
        }
    }
}

impl Sink {
    pub fn open(path: &Path, what: &'static str, report: Reporter) -> Sink {
        let mut s = Sink {
            path: path.to_path_buf(),
            file: None,
            what,
            failed_at: None,
            lost_bytes: 0,
            report,
        };
        s.reopen();
        s
    }

    fn reopen(&mut self) {
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            Ok(f) => self.file = Some(f),
            Err(e) => self.fail(&e),
        }
    }

    fn fail(&mut self, e: &std::io::Error) {
        if self.failed_at.is_none() {
            self.report.warn(&format!(
                "cannot write the {} {} ({e}); the command keeps running; retrying every {}s",
                self.what,
                self.path.display(),
                RETRY.as_secs()
            ));
        }
        self.failed_at = Some(Instant::now());
        self.file = None;
    }

    pub fn write(&mut self, bytes: &[u8]) {
        if self.failed_at.is_some_and(|t| t.elapsed() < RETRY) {
            self.lost_bytes += bytes.len() as u64;
            return;
        }
        if self.file.is_none() {
            self.reopen();
        }
        let Some(f) = self.file.as_mut() else {
            self.lost_bytes += bytes.len() as u64;
            return;
        };
        match f.write_all(bytes) {
            Ok(()) => {
                if self.failed_at.take().is_some() {
                    self.report.warn(&format!(
                        "writing the {} again; {} bytes could not be written meanwhile",
                        self.what, self.lost_bytes
                    ));
                    self.lost_bytes = 0;
                }
            }
            Err(e) => {
                self.lost_bytes += bytes.len() as u64;
                self.fail(&e);
            }
        }
    }
}

/// Finds metric lines in the command's stdout and records them.
pub struct MetricLines {
    sink: Sink,
    partial: Vec<u8>,
    skipping: bool,
    line_no: i64,
}

impl MetricLines {
    pub fn new(sink: Sink) -> Self {
        MetricLines {
            sink,
            partial: Vec::new(),
            skipping: false,
            line_no: 0,
        }
    }

    pub fn feed(&mut self, bytes: &[u8], now_ms: i64) {
        let mut rest = bytes;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            let (head, tail) = rest.split_at(i);
            rest = &tail[1..];
            self.line_no += 1;
            if self.skipping {
                self.skipping = false;
                self.partial.clear();
                continue;
            }
            if self.partial.is_empty() {
                self.line(head, now_ms);
            } else {
                self.partial.extend_from_slice(head);
                let line = std::mem::take(&mut self.partial);
                self.line(&line, now_ms);
            }
        }
        if !self.skipping {
            self.partial.extend_from_slice(rest);
            if self.partial.len() > MAX_LINE {
                self.skipping = true;
                self.partial = Vec::new();
            }
        }
    }

    pub fn finish(&mut self, now_ms: i64) {
        if !self.partial.is_empty() && !self.skipping {
            self.line_no += 1;
            let line = std::mem::take(&mut self.partial);
            self.line(&line, now_ms);
        }
    }

    fn line(&mut self, raw: &[u8], now_ms: i64) {
        let Ok(text) = std::str::from_utf8(raw) else {
            return;
        };
        let record = match classify(text) {
            None => return,
            Some(Ok(json)) => stamp(&json, now_ms),
            Some(Err(reason)) => malformed_record(self.line_no, &reason),
        };
        self.sink.write(format!("{record}\n").as_bytes());
    }
}

/// None: ordinary output. Some(Ok(json)): a metric line as a JSON object. Some(Err): a `gantry:`
/// line that is malformed.
pub fn classify(line: &str) -> Option<Result<String, String>> {
    let t = line.trim();
    if let Some(payload) = t.strip_prefix("gantry:") {
        return Some(payload_to_json(payload).and_then(|json| parse_line(&json).map(|_| json)));
    }
    if t.starts_with('{') && t.ends_with('}') && t.contains("\"step\"") {
        return match parse_line(t) {
            Ok(r) if r.step.is_some() => Some(Ok(t.to_string())),
            _ => None,
        };
    }
    None
}

/// Add `"time"` (seconds) to a JSON object that has none, so replaying the file later keeps the
/// moment the line was printed.
fn stamp(json: &str, now_ms: i64) -> String {
    if json.contains("\"time\"") || json.contains("\"timestamp\"") {
        return json.to_string();
    }
    format!(
        "{{\"time\":{:.3},{}",
        now_ms as f64 / 1000.0,
        &json.trim_start()[1..]
    )
}

/// Copy one output stream until it ends: to `echo` (the terminal), to the log, and through
/// `metrics` when given. Runs on its own thread; returns when the stream closes.
pub fn pump(
    mut src: impl Read,
    mut echo: Option<Box<dyn Write + Send>>,
    log: Arc<Mutex<Sink>>,
    mut metrics: Option<MetricLines>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // A pty's master reads EIO once every slave is closed: the end of the stream.
            Err(_) => break,
        };
        let chunk = &buf[..n];
        if let Some(w) = echo.as_mut()
            && (w.write_all(chunk).is_err() || w.flush().is_err())
        {
            echo = None; // the terminal is gone; keep logging
        }
        if let Ok(mut l) = log.lock() {
            l.write(chunk);
        }
        if let Some(m) = metrics.as_mut() {
            m.feed(chunk, crate::domain::now_ms());
        }
    }
    if let Some(m) = metrics.as_mut() {
        m.finish(crate::domain::now_ms());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_output_lines() {
        assert_eq!(classify("epoch 1 done"), None);
        assert_eq!(
            classify(r#"{"loss": 1}"#),
            None,
            "JSON without step is ordinary output"
        );
        assert_eq!(
            classify(r#"  {"step": 3, "loss": 0.5}"#),
            Some(Ok(r#"{"step": 3, "loss": 0.5}"#.into()))
        );
        assert_eq!(
            classify("gantry: step=1 acc=0.5"),
            Some(Ok(r#"{"step":1,"acc":0.5}"#.into()))
        );
        assert_eq!(
            classify(r#"gantry: {"lr": 0.1}"#),
            Some(Ok(r#"{"lr": 0.1}"#.into()))
        );
        assert!(
            classify("gantry: loss=high")
                .unwrap()
                .unwrap_err()
                .contains("non-numeric")
        );
        assert!(classify("gantry: {oops").unwrap().is_err());
    }

    #[test]
    fn stamps_time_unless_present() {
        assert_eq!(
            stamp(r#"{"step": 1, "x": 2}"#, 1_700_000_000_123),
            r#"{"time":1700000000.123,"step": 1, "x": 2}"#
        );
        assert_eq!(stamp(r#"{"time": 5, "x": 2}"#, 9), r#"{"time": 5, "x": 2}"#);
    }

    #[test]
    fn metric_lines_across_chunks_are_recorded_with_output_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout-metrics.jsonl");
        let sink = Sink::open(&path, "captured metrics", Reporter { to_terminal: false });
        let mut m = MetricLines::new(sink);
        m.feed(b"hello\n{\"step\": 1, \"lo", 1000);
        m.feed(b"ss\": 2}\ngantry: loss=bad\r\ngantry: x=1", 2000);
        m.finish(3000);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], r#"{"time":2.000,"step": 1, "loss": 2}"#);
        assert!(
            lines[1].contains("\"line\":3") && lines[1].contains("non-numeric"),
            "{}",
            lines[1]
        );
        assert_eq!(lines[2], r#"{"time":3.000,"x":1}"#);
    }

    #[test]
    fn a_full_disk_is_reported_once_and_output_keeps_flowing() {
        // /dev/full fails every write with ENOSPC, like a full disk.
        let mut s = Sink::open(
            Path::new("/dev/full"),
            "run log",
            Reporter { to_terminal: false },
        );
        s.write(b"abc");
        assert!(s.failed_at.is_some());
        s.write(b"defg");
        assert_eq!(s.lost_bytes, 7);
        let log = Arc::new(Mutex::new(s));
        let out: Vec<u8> = Vec::new();
        let shared = Arc::new(Mutex::new(out));
        struct W(Arc<Mutex<Vec<u8>>>);
        impl Write for W {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        pump(
            &b"still shown\n"[..],
            Some(Box::new(W(shared.clone()))),
            log,
            None,
        );
        assert_eq!(&*shared.lock().unwrap(), b"still shown\n");
    }
}
