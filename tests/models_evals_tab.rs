//! The Models tab's Evaluations pane: the latest `gantry model eval` of the selected model, from
//! the run records' tags, each version's medians and deltas with its verdict; `e` shows it, and
//! enter there opens the compare view of its runs.

mod common;

use gantry::app::{EvalVersion, Msg, State, Tab, latest_eval, update};
use gantry::config::KeyChord;
use gantry::domain::{RunRecord, RunStatus, SeriesSummary};
use gantry::registry::ModelSummary;

fn key(s: &mut State, k: &str) {
    update(s, Msg::Key(KeyChord::parse(k).unwrap()));
}

/// A finished eval run of `clf@vN` in eval `id`, with its accuracy and p99 latency.
fn eval_run(i: usize, id: &str, v: u32, acc: f64, p99: f64, verdict: &str) -> RunRecord {
    let run = common::run(
        i,
        &format!("eval-{id}-v{v}-1"),
        RunStatus::Finished,
        60 - i as i64,
        Some(1),
    );
    let mut r = RunRecord::bare(run);
    for (k, x) in [("val/acc", acc), ("latency_ms_p99", p99)] {
        r.metrics.insert(
            k.into(),
            SeriesSummary {
                key: k.into(),
                n_points: 1,
                last_step: Some(0),
                last: Some(x),
                min: Some(x),
                max: Some(x),
                min_step: None,
                max_step: None,
            },
        );
    }
    r.tags.insert("eval".into(), id.into());
    r.tags.insert("model".into(), format!("clf@v{v}"));
    r.tags.insert("eval_gate".into(), verdict.into());
    r
}

fn records() -> Vec<RunRecord> {
    let mut v = common::some_records(2);
    // An older eval, then the latest: three versions, v3 failing its gate.
    v.push(eval_run(10, "old00001", 1, 0.5, 9.0, "baseline"));
    v.push(eval_run(11, "e1e2e3e4", 1, 0.90, 99.0, "baseline"));
    v.push(eval_run(12, "e1e2e3e4", 2, 0.93, 198.0, "pass"));
    v.push(eval_run(13, "e1e2e3e4", 3, 0.88, 99.0, "fail"));
    v
}

fn on_models() -> State {
    let mut s = common::state();
    update(&mut s, Msg::RunsLoaded(Ok(records())));
    key(&mut s, "2");
    update(
        &mut s,
        Msg::ModelsLoaded(Ok(vec![ModelSummary {
            name: "clf".into(),
            latest: 3,
            versions: 3,
            aliases: Default::default(),
        }])),
    );
    s
}

#[test]
fn the_latest_eval_is_read_from_the_runs_tags() {
    let e = latest_eval(&records(), "clf").unwrap();
    assert_eq!(e.id, "e1e2e3e4");
    let versions: Vec<(u32, &str, f64)> = e
        .versions
        .iter()
        .map(|v: &EvalVersion| (v.version, v.verdict.as_str(), v.metrics["val/acc"]))
        .collect();
    assert_eq!(
        versions,
        [(1, "baseline", 0.90), (2, "pass", 0.93), (3, "fail", 0.88)]
    );
    assert!(latest_eval(&records(), "other").is_none());
}

#[test]
fn e_shows_the_pane_and_enter_compares_its_runs() {
    let mut s = on_models();
    key(&mut s, "enter"); // into the versions
    key(&mut s, "e");
    assert!(s.models.show_evals);
    insta::assert_snapshot!("models_evaluations_120x40", common::screen(&s, 120, 40));
    let cells = common::cells(&s, 120, 40);
    // v3's accuracy is worse than the baseline's: red; v2's better: green.
    let find = |text: &str| {
        let screen = common::screen(&s, 120, 40);
        let (row, line) = screen
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains("val/acc"))
            .unwrap();
        let col = line
            .find(text)
            .unwrap_or_else(|| panic!("{text} in {line}"));
        let col = line[..col].chars().count() - 1; // the line is quoted in the backend's dump
        cells[(col as u16, row as u16)].fg
    };
    let t = &s.theme;
    assert_eq!(find("0.93"), t.color(gantry::config::Role::Good));
    assert_eq!(find("0.88"), t.color(gantry::config::Role::Bad));
    key(&mut s, "enter");
    assert_eq!(s.tab, Tab::Runs);
    assert_eq!(s.runs.view, gantry::app::runs::View::Compare);
    assert_eq!(s.runs.marked.len(), 3);
    assert!(s.runs.marked.iter().all(|id| {
        s.runs
            .record(id)
            .is_some_and(|r| r.tags.get("eval").map(String::as_str) == Some("e1e2e3e4"))
    }));
}
