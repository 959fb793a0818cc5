//! A run's alerts and flight-recorder events in the workbench: the toast when a new alert is
//! raised on a listed run, and the charts' jump to the next event (`next_event`). Where each
//! falls is `domain::flight::marks`; the charts draw them (ui/widgets/series_chart.rs).

use std::collections::BTreeSet;

use crate::domain::RunRecord;
use crate::domain::alerts::{Alert, of_tags};

use super::runs::{RunsState, XMode};

/// Every active alert of these records: (run id, kind, raised at).
pub fn active(records: &[RunRecord]) -> BTreeSet<(String, &'static str, i64)> {
    records
        .iter()
        .flat_map(|r| {
            of_tags(&r.tags)
                .into_iter()
                .filter(Alert::active)
                .map(|a| (r.run.id.clone(), a.kind.as_str(), a.raised_ms))
        })
        .collect()
}

/// The toast for alerts raised since `before` (the active alerts of the records shown until
/// now): "⚠ run NAME: MESSAGE", and how many more.
pub fn toast(
    before: &BTreeSet<(String, &'static str, i64)>,
    records: &[RunRecord],
) -> Option<String> {
    let mut new: Vec<(&RunRecord, Alert)> = records
        .iter()
        .flat_map(|r| {
            of_tags(&r.tags)
                .into_iter()
                .filter(Alert::active)
                .filter(|a| !before.contains(&(r.run.id.clone(), a.kind.as_str(), a.raised_ms)))
                .map(move |a| (r, a))
        })
        .collect();
    new.sort_by_key(|(_, a)| std::cmp::Reverse(a.raised_ms));
    let (r, a) = new.first()?;
    let more = match new.len() {
        1 => String::new(),
        n => format!(" (+{} more)", n - 1),
    };
    Some(format!(
        "⚠ {} alert on {}: {}{more}",
        a.kind.as_str(),
        r.run.name,
        a.message
    ))
}

/// The chart window and cursor that put the next event of the open runs (after the cursor, else
/// the first) under the cursor, keeping the zoom; None when there is none or no series to place
/// it on.
pub fn next_event(r: &RunsState) -> Option<((f64, f64), f64)> {
    let xs = fractions(r, false)?;
    let (w0, w1) = r.chart.window;
    let at = r.chart.cursor.map(|c| w0 + c * (w1 - w0));
    let next = xs
        .iter()
        .copied()
        .find(|f| at.is_none_or(|a| *f > a + 1e-9))
        .or_else(|| xs.first().copied())?;
    Some(place(r, next))
}

/// Once a run's detail opens, its charts jump to its latest flight-recorder event (a crash, a
/// NaN, an XID), as soon as its whole record and a series to place it on are there; a run with
/// none stays as it is.
pub fn settle_jump(r: &mut RunsState) {
    let Some(id) = r.detail.clone().filter(|_| r.jump_to_event) else {
        return;
    };
    // A listing's record holds only some tags: wait for the whole one.
    let whole = r
        .whole
        .get(&id)
        .or_else(|| r.held.all.then(|| r.record(&id)).flatten());
    let Some(rec) = whole else {
        return;
    };
    if crate::domain::flight::of_tags(&rec.tags).is_empty() {
        r.jump_to_event = false;
        return;
    }
    if let Some(last) = fractions(r, true).and_then(|xs| xs.last().copied()) {
        let (window, cursor) = place(r, last);
        r.chart.window = window;
        r.chart.cursor = Some(cursor);
        r.jump_to_event = false;
    }
}

/// The window (kept as wide as it is, moved only when `x` is outside it) and the cursor on `x`.
fn place(r: &RunsState, x: f64) -> ((f64, f64), f64) {
    let (w0, w1) = r.chart.window;
    let width = w1 - w0;
    let (a, b) = if (w0..=w1).contains(&x) {
        (w0, w1)
    } else {
        let a = (x - width / 2.0).clamp(0.0, 1.0 - width);
        (a, a + width)
    };
    ((a, b), (x - a) / (b - a).max(1e-12))
}

/// Where the open runs' marks fall, as fractions of the charts' whole x range, in order: every
/// alert and event, or only the flight recorder's events.
fn fractions(r: &RunsState, only_flight: bool) -> Option<Vec<f64>> {
    let runs = r.overlay();
    // The x range the charts show: that of the open runs' loaded metric series.
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut origin_ms: Option<i64> = None;
    for (id, s) in &r.series {
        if id.kind != crate::domain::SeriesKind::Metric || !runs.contains(&id.run) || s.is_empty() {
            continue;
        }
        let n = s.steps.len();
        let (a, b) = match r.chart.x {
            XMode::Step => (s.steps[0] as f64, s.steps[n - 1] as f64),
            XMode::Wall => (s.times_ms[0] as f64 / 1e3, s.times_ms[n - 1] as f64 / 1e3),
            XMode::Relative => (0.0, (s.times_ms[n - 1] - s.times_ms[0]) as f64 / 1e3),
        };
        origin_ms = Some(origin_ms.map_or(s.times_ms[0], |o| o.min(s.times_ms[0])));
        lo = lo.min(a);
        hi = hi.max(b);
    }
    if !lo.is_finite() || hi <= lo {
        return None;
    }
    let mut xs: Vec<f64> = runs
        .iter()
        .filter_map(|id| r.record(id))
        .flat_map(|rec| {
            let mut m = crate::domain::flight::marks(&rec.tags);
            if only_flight {
                let events = crate::domain::flight::of_tags(&rec.tags);
                m.retain(|m| events.iter().any(|e| e.at_ms == m.at_ms));
            }
            m
        })
        .filter_map(|m| match r.chart.x {
            XMode::Step => m.step.map(|s| s as f64),
            XMode::Wall => Some(m.at_ms as f64 / 1e3),
            XMode::Relative => origin_ms.map(|o| (m.at_ms - o) as f64 / 1e3),
        })
        .map(|x| (x - lo) / (hi - lo))
        .filter(|f| (0.0..=1.0).contains(f))
        .collect();
    xs.sort_by(f64::total_cmp);
    Some(xs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::runs::SeriesId;
    use crate::domain::alerts::Kind;
    use crate::domain::{Series, SeriesKind};
    use std::sync::Arc;

    fn record(id: &str, alerts: &[(Kind, i64, Option<i64>, i64)]) -> RunRecord {
        let mut r = RunRecord::bare(crate::domain::Run {
            id: id.into(),
            experiment: "e".into(),
            name: format!("run-{id}"),
            status: crate::domain::RunStatus::Running,
            exit_code: None,
            started_ms: 0,
            ended_ms: None,
            host: "h".into(),
            user: "u".into(),
            pid: None,
            pid_start: None,
            command: Vec::new(),
            cwd: String::new(),
            git_commit: None,
            git_branch: None,
            git_dirty: None,
            notes: String::new(),
            run_dir: String::new(),
            env: Default::default(),
            gpus: Vec::new(),
            heartbeat_ms: None,
        });
        for (kind, step, cleared, at) in alerts {
            let a = Alert {
                kind: *kind,
                message: format!("{} happened", kind.as_str()),
                step: Some(*step),
                raised_ms: *at,
                cleared_ms: *cleared,
            };
            r.tags
                .insert(kind.tag(), serde_json::to_string(&a).unwrap());
        }
        r
    }

    #[test]
    fn a_toast_for_alerts_raised_since_the_last_listing() {
        let old = vec![record("a", &[(Kind::Stall, 5, None, 1_000)])];
        let before = active(&old);
        assert!(toast(&before, &old).is_none());
        let now = vec![record(
            "a",
            &[(Kind::Stall, 5, None, 1_000), (Kind::Nan, 9, None, 2_000)],
        )];
        assert_eq!(
            toast(&before, &now).unwrap(),
            "⚠ nan alert on run-a: nan happened"
        );
        // A cleared alert is no news.
        let cleared = vec![record("a", &[(Kind::Stall, 5, Some(3_000), 1_000)])];
        assert!(toast(&before, &cleared).is_none());
    }

    #[test]
    fn the_next_event_goes_under_the_cursor() {
        let mut r = RunsState::default();
        let rec = record(
            "a",
            &[(Kind::Stall, 25, None, 1_000), (Kind::Nan, 75, None, 2_000)],
        );
        r.records = vec![rec.clone()];
        r.whole.insert("a".into(), rec);
        r.detail = Some("a".into());
        let mut s = Series::default();
        for i in 0..=100 {
            s.push(i, i * 100, i as f64);
        }
        r.series.insert(
            SeriesId {
                run: "a".into(),
                kind: SeriesKind::Metric,
                key: "loss".into(),
            },
            Arc::new(s),
        );
        let (w, c) = next_event(&r).unwrap();
        assert_eq!(w, (0.0, 1.0));
        assert!((c - 0.25).abs() < 1e-9, "{c}");
        r.chart.cursor = Some(c);
        let (_, c) = next_event(&r).unwrap();
        assert!((c - 0.75).abs() < 1e-9, "{c}");
        // Past the last: back to the first. Zoomed away from it: the window moves to it.
        r.chart.cursor = Some(c);
        r.chart.window = (0.5, 1.0);
        r.chart.cursor = Some(0.5);
        let (w, c) = next_event(&r).unwrap();
        assert_eq!(w, (0.0, 0.5));
        assert!((c - 0.5).abs() < 1e-9, "{c}");
    }
}
