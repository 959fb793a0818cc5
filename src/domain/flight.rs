//! The flight recorder's events: on a crash, a NaN or an XID, the samples of the minutes before
//! are kept with the run (`flight-KIND-MS.jsonl` in its folder: a GPU recording that
//! `gantry --gpu-replay FILE gpu` plays) and the event is listed in the run's `gantry.flight` tag.
//! Also where a run's events and alerts fall on its charts (`marks`). Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The run's tag listing its events (a JSON array of `Event`).
pub const TAG: &str = "gantry.flight";

/// How long before an event its samples are kept, and at most how many.
pub const WINDOW_MS: i64 = 5 * 60_000;
pub const MAX_FRAMES: usize = 3600;

/// What set the recorder off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// The command failed or was killed by a signal.
    Crash,
    /// A metric went NaN or infinite.
    Nan,
    /// The driver reported a critical XID error on one of the run's GPUs.
    Xid,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Crash => "crash",
            Trigger::Nan => "nan",
            Trigger::Xid => "xid",
        }
    }
}

/// One event the recorder kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub trigger: Trigger,
    pub at_ms: i64,
    /// The run's newest step when it happened.
    pub step: Option<i64>,
    pub message: String,
    /// The recording of the samples before it, in the run's folder ("" where none was written).
    pub file: String,
    /// How many samples it holds, and from when.
    pub frames: usize,
    pub from_ms: Option<i64>,
}

/// The run's events, oldest first.
pub fn of_tags(tags: &BTreeMap<String, String>) -> Vec<Event> {
    tags.get(TAG)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

/// Something to mark on a run's charts: where (its step, and when), what, and whether it is bad
/// (a crash, a NaN, an XID, an active alert) or past (a cleared alert).
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub step: Option<i64>,
    pub at_ms: i64,
    pub label: String,
    pub bad: bool,
}

/// The run's flight events and alerts as chart marks, in time order.
pub fn marks(tags: &BTreeMap<String, String>) -> Vec<Mark> {
    let mut v: Vec<Mark> = of_tags(tags)
        .into_iter()
        .map(|e| Mark {
            step: e.step,
            at_ms: e.at_ms,
            label: e.trigger.as_str().to_string(),
            bad: true,
        })
        .collect();
    for a in super::alerts::of_tags(tags) {
        // A NaN alert and the recorder's NaN event are the same moment: one mark.
        if v.iter()
            .any(|m| m.label == a.kind.as_str() && m.step == a.step)
        {
            continue;
        }
        v.push(Mark {
            step: a.step,
            at_ms: a.raised_ms,
            label: a.kind.as_str().to_string(),
            bad: a.active(),
        });
    }
    v.sort_by_key(|m| m.at_ms);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alerts::{Alert, Kind};

    #[test]
    fn events_and_alerts_become_marks_once() {
        let e = Event {
            trigger: Trigger::Nan,
            at_ms: 2_000,
            step: Some(40),
            message: "train/loss is not a number at step 40".into(),
            file: "flight-nan-2000.jsonl".into(),
            frames: 12,
            from_ms: Some(1_000),
        };
        let nan = Alert {
            kind: Kind::Nan,
            message: String::new(),
            step: Some(40),
            raised_ms: 2_000,
            cleared_ms: None,
        };
        let stall = Alert {
            kind: Kind::Stall,
            step: Some(10),
            raised_ms: 1_000,
            cleared_ms: Some(1_500),
            ..nan.clone()
        };
        let mut tags = BTreeMap::new();
        tags.insert(
            TAG.to_string(),
            serde_json::to_string(&vec![e.clone()]).unwrap(),
        );
        tags.insert(Kind::Nan.tag(), serde_json::to_string(&nan).unwrap());
        tags.insert(Kind::Stall.tag(), serde_json::to_string(&stall).unwrap());
        assert_eq!(of_tags(&tags), vec![e]);
        let m = marks(&tags);
        let labels: Vec<(&str, bool)> = m.iter().map(|m| (m.label.as_str(), m.bad)).collect();
        assert_eq!(labels, [("stall", false), ("nan", true)]);
        tags.insert(TAG.into(), "not json".into());
        assert!(of_tags(&tags).is_empty());
    }
}
