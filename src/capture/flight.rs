//! The flight recorder: the last minutes of a run's samples (every field of the GPUs it uses,
//! the processes on them, and its CPU, memory and the host's CPU), held in memory at the
//! sampler's rate, and written to the run's folder when it crashes, a metric goes NaN or the
//! driver reports an XID. The events are listed in the run's `gantry.flight` tag
//! (`domain::flight`); the file is a GPU recording `gantry --gpu-replay FILE gpu` plays.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::domain::GpuSnapshot;
use crate::domain::flight::{Event, MAX_FRAMES, Trigger, WINDOW_MS};

/// One sample as kept: the snapshot (so the file replays as a recording) and the run's system
/// values beside it.
#[derive(Debug, Clone, Serialize)]
struct Frame {
    #[serde(flatten)]
    snap: GpuSnapshot,
    system: BTreeMap<&'static str, f64>,
}

#[derive(Debug, Default)]
pub struct Recorder {
    frames: VecDeque<Frame>,
    events: Vec<Event>,
    /// The run's folder; None keeps events without their samples (`gantry serve`'s runs).
    dir: Option<PathBuf>,
    /// Whether an event was added since the last `take_changed`.
    changed: bool,
}

impl Recorder {
    pub fn new(dir: Option<PathBuf>) -> Recorder {
        Recorder {
            dir,
            ..Default::default()
        }
    }

    /// Keep one sample, dropping those older than the window.
    pub fn push(&mut self, snap: GpuSnapshot, system: &[(&'static str, f64)]) {
        let now = snap.time_ms;
        self.frames.push_back(Frame {
            snap,
            system: system.iter().copied().collect(),
        });
        while self
            .frames
            .front()
            .is_some_and(|f| f.snap.time_ms < now - WINDOW_MS)
            || self.frames.len() > MAX_FRAMES
        {
            self.frames.pop_front();
        }
    }

    /// Keep the samples held now as an event. Returns why they could not be written, if so (the
    /// event is kept all the same).
    pub fn trigger(
        &mut self,
        trigger: Trigger,
        step: Option<i64>,
        message: String,
        at_ms: i64,
    ) -> Option<String> {
        let mut event = Event {
            trigger,
            at_ms,
            step,
            message,
            file: String::new(),
            frames: self.frames.len(),
            from_ms: self.frames.front().map(|f| f.snap.time_ms),
        };
        let mut problem = None;
        if let Some(dir) = &self.dir
            && !self.frames.is_empty()
        {
            let name = format!("flight-{}-{at_ms}.jsonl", trigger.as_str());
            match self.write(&dir.join(&name)) {
                Ok(()) => event.file = name,
                Err(e) => {
                    problem = Some(format!(
                        "the flight recorder could not write {}: {e}",
                        dir.join(&name).display()
                    ))
                }
            }
        }
        self.events.push(event);
        self.changed = true;
        problem
    }

    fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        for frame in &self.frames {
            serde_json::to_writer(&mut f, frame)?;
            f.write_all(b"\n")?;
        }
        f.flush()
    }

    /// One sample of the run: kept (only the run's GPUs, `seen`, and the processes on them), and
    /// the minutes before kept as an event on a new NaN (`clock`'s count past `nonfinite`) or new
    /// XIDs (`xids`: (UUID, XID)). Returns what could not be written.
    pub fn observe(
        &mut self,
        snap: Option<GpuSnapshot>,
        seen: &std::collections::BTreeSet<String>,
        system: &[(&'static str, f64)],
        clock: &crate::domain::efficiency::StepClock,
        nonfinite: &mut u64,
        xids: &[(String, u64)],
    ) -> Vec<String> {
        let now = crate::domain::now_ms();
        let mut snap = snap.unwrap_or_default();
        let kept: Vec<u32> = snap
            .gpus
            .iter()
            .filter(|g| seen.contains(&g.uuid))
            .map(|g| g.index)
            .collect();
        snap.gpus.retain(|g| kept.contains(&g.index));
        snap.processes.retain(|p| kept.contains(&p.gpu));
        snap.time_ms = now;
        self.push(snap, system);
        let mut problems = Vec::new();
        if clock.nonfinite.0 > *nonfinite {
            *nonfinite = clock.nonfinite.0;
            let what = clock.nonfinite.1.as_ref().map_or_else(
                || "a metric is not a number".to_string(),
                |(k, s)| format!("{k} is not a number at step {s}"),
            );
            problems.extend(self.trigger(Trigger::Nan, clock.step, what, now));
        }
        if !xids.is_empty() {
            let what = xids
                .iter()
                .map(|(u, x)| format!("XID {x} on {u}"))
                .collect::<Vec<_>>()
                .join("; ");
            problems.extend(self.trigger(Trigger::Xid, clock.step, what, now));
        }
        problems
    }

    /// The events, when one was added since the last call.
    pub fn take_changed(&mut self) -> Option<Vec<Event>> {
        std::mem::take(&mut self.changed).then(|| self.events.clone())
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::source::GpuSource;

    fn snap(t: i64) -> GpuSnapshot {
        GpuSnapshot {
            time_ms: t,
            gpus: vec![crate::domain::GpuSample {
                uuid: "GPU-1".into(),
                sm_clock: Some(1980),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_window_is_kept_and_written_as_a_recording() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Recorder::new(Some(dir.path().to_path_buf()));
        for i in 0..400 {
            r.push(snap(i * 1_000), &[("cpu_percent", 50.0)]);
        }
        // Five minutes at one a second: the first 99 fell out of the window.
        assert_eq!(r.frames.len(), 301);
        assert!(
            r.trigger(Trigger::Xid, Some(7), "XID 79".into(), 399_500)
                .is_none()
        );
        let events = r.take_changed().unwrap();
        assert!(r.take_changed().is_none());
        assert_eq!(events[0].frames, 301);
        assert_eq!(events[0].from_ms, Some(99_000));
        assert_eq!(events[0].file, "flight-xid-399500.jsonl");
        let path = dir.path().join(&events[0].file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.lines()
                .next()
                .unwrap()
                .contains("\"cpu_percent\":50.0")
        );
        // It plays as a GPU recording.
        let mut replay = crate::gpu::source::ReplaySource::open(&path, 0.0).unwrap();
        assert_eq!(replay.sample().unwrap().gpus[0].sm_clock, Some(1980));
    }

    #[test]
    fn without_a_folder_the_event_is_kept_alone() {
        let mut r = Recorder::new(None);
        r.push(snap(0), &[]);
        assert!(
            r.trigger(Trigger::Crash, None, "exit 1".into(), 5)
                .is_none()
        );
        assert_eq!(r.events()[0].file, "");
        let mut bad = Recorder::new(Some(PathBuf::from("/nonexistent/dir")));
        bad.push(snap(0), &[]);
        let why = bad.trigger(Trigger::Nan, None, "nan".into(), 5).unwrap();
        assert!(why.contains("could not write"), "{why}");
        assert_eq!(bad.events().len(), 1);
    }
}
