//! The demo's workspace, seeded at a fixed time, through the real effect runner: the runs table
//! at 160×45 with its default metric columns and sparklines, the Models tab at 80×24 and 60×15
//! (no cut word), and the Bench tab showing the stored results before anything has run.

mod common;

use std::time::Duration;

use gantry::app::{Effect, EffectRunner, Msg, State, Tab, update};
use gantry::config::KeyChord;
use gantry::store::Store;
use gantry::workspace::Workspace;

use common::{NOW_MS, screen};

struct Demo {
    _dir: tempfile::TempDir,
    runner: EffectRunner,
    rx: tokio::sync::mpsc::UnboundedReceiver<Msg>,
}

async fn demo() -> Demo {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::init(dir.path()).unwrap();
    let store = Store::open(&ws.db_path()).await.unwrap();
    gantry::cli::demo::seed(&ws, &store, NOW_MS).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let runner = EffectRunner::new(store, tx, ws.dir());
    Demo {
        _dir: dir,
        runner,
        rx,
    }
}

/// Apply `msg`, run what it asks for, and apply what comes back, until nothing more comes.
async fn settle(s: &mut State, d: &mut Demo, msg: Msg) {
    let mut effects: Vec<Effect> = update(s, msg).effects;
    loop {
        for e in effects.drain(..) {
            d.runner.run(e);
        }
        match tokio::time::timeout(Duration::from_millis(700), d.rx.recv()).await {
            Ok(Some(m)) => effects = update(s, m).effects,
            _ => return,
        }
    }
}

fn key(k: &str) -> Msg {
    Msg::Key(KeyChord::parse(k).unwrap())
}

async fn opened(w: u16, h: u16, d: &mut Demo) -> State {
    let mut s = common::state();
    s.size = (w, h);
    s.runs.loaded = false;
    let load = s.runs.load();
    d.runner.run(Effect::LoadRuns(load));
    settle(&mut s, d, Msg::Resize(w, h)).await;
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runs_table_shows_the_shared_metrics_and_a_sparkline_at_160x45() {
    let mut d = demo().await;
    let s = opened(160, 45, &mut d).await;
    assert!(!s.runs.cols_chosen);
    let cols = s.runs.shown_metric_cols().to_vec();
    assert!(!cols.is_empty(), "no default columns");
    assert!(cols[0].contains("loss"), "{cols:?}");
    let text = screen(&s, 160, 45);
    insta::assert_snapshot!("demo_runs_160x45", text);
    // The header names the first metrics, and every finished run has a sparkline.
    let header = text.lines().find(|l| l.contains("Name")).unwrap();
    assert!(
        header.contains(&cols[0][..cols[0].len().min(12)]),
        "{header}"
    );
    assert!(text.contains('▁') || text.contains('█'), "{text}");
    // Pinned: each value coloured better or worse than the baseline's.
    let id = |name: &str| {
        s.runs
            .records
            .iter()
            .find(|r| r.run.name == name)
            .unwrap()
            .run
            .id
            .clone()
    };
    let pin = id("resnet50-baseline");
    let mut s = s;
    s.runs.pinned = Some(pin);
    let buf = common::cells(&s, 160, 45);
    let fg = |row_of: &str, value: &str| {
        let y = (0..buf.area.height)
            .find(|&y| {
                let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
                line.contains(row_of)
            })
            .unwrap();
        let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
        let x = line
            .find(value)
            .unwrap_or_else(|| panic!("{value} not in {line}"));
        let x = line[..x].chars().count() as u16;
        buf[(x, y)].fg
    };
    // resnet50-cosine's losses are lower than the baseline's: better; gpt2's higher: worse.
    assert_eq!(
        fg("resnet50-cosine", "0.6063"),
        s.theme.color(gantry::config::Role::Good)
    );
    assert_eq!(
        fg("gpt2-124m-bs32", "4.5084"),
        s.theme.color(gantry::config::Role::Bad)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn picked_columns_win_over_the_defaults() {
    let mut d = demo().await;
    let mut s = opened(160, 45, &mut d).await;
    let before = s.runs.shown_metric_cols().to_vec();
    // `c`, then toggle the first choice: from then on the picks are shown.
    settle(&mut s, &mut d, key("c")).await;
    settle(&mut s, &mut d, key("space")).await;
    settle(&mut s, &mut d, key("esc")).await;
    assert!(s.runs.cols_chosen);
    assert_ne!(s.runs.shown_metric_cols(), before.as_slice());
    assert_eq!(s.runs.shown_metric_cols(), s.runs.metric_cols.as_slice());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_models_tab_cuts_no_word_at_80x24_and_60x15() {
    let mut d = demo().await;
    for (w, h) in [(80u16, 24u16), (60, 15)] {
        let mut s = opened(w, h, &mut d).await;
        settle(&mut s, &mut d, key("2")).await;
        assert_eq!(s.tab, Tab::Models);
        // The versions were registered now, not at the fixed time: their dates are left out.
        let mut text = screen(&s, w, h);
        for v in &s.models.versions {
            text = text.replace(v.created.get(..10).unwrap_or(&v.created), "<date>    ");
        }
        assert!(text.contains("production"), "{text}");
        assert!(!text.contains("productio "), "{text}");
        insta::assert_snapshot!(format!("demo_models_{w}x{h}"), text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bench_tab_shows_the_stored_results_before_a_run() {
    let mut d = demo().await;
    let mut s = opened(120, 40, &mut d).await;
    settle(&mut s, &mut d, key("4")).await;
    assert!(s.bench.rows.is_empty());
    let text = screen(&s, 120, 40);
    assert!(text.contains("Results · stored, "), "{text}");
    assert!(!text.contains("Check benchmarks on the left"), "{text}");
    insta::assert_snapshot!("demo_bench_stored", text);
}
