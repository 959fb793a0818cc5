//! gantry at 100 times W, measured where users feel it:
//! - W100: 1,000 runs x 10 metrics x 100,000 steps (a billion points);
//! - Wwide: 10,000 runs x 20 metrics x 1,000 steps, 30 params and 10 tags each.
//!
//! Each is built straight into a store (the time and the bytes on disk are reported), then:
//! - `gantry runs` with a filter and a sort on a metric, whole process: target <= 100 ms;
//! - the workbench's first frame listing every run, whole process in a pty: target <= 100 ms;
//! - keypress to frame while scrolling the table and while typing a filter (update + render):
//!   target <= 16 ms median, 50 ms worst;
//! - opening a run with 10 charts of 100k points (W100): target <= 50 ms;
//! - `gantry compare` of 10 runs, whole process: target <= 100 ms;
//! - peak RSS of each: target <= 100 MB.
//!
//! `cargo bench --bench scale`; under `cargo test --benches` a small smoke run.
//! - `GANTRY_BENCH_SCALE=W100` or `=Wwide`: one workload only (default both);
//! - `GANTRY_BENCH_KEEP=DIR`: build into DIR/<name> and reuse it when it is already there;
//! - `GANTRY_BENCH_BASELINE=BIN`: another gantry binary, timed alternately in the same run, on
//!   `GANTRY_BENCH_BASELINE_KEEP=DIR/<name>` where given (the same workload in the store schema
//!   that binary knows: a binary refuses a store migrated past it), else on the same workspace.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use common::Shape;
use gantry::app::{Drawer, Effect, Keymap, Msg, State, update};
use gantry::config::{ColorMode, Config, KeyChord, Theme};
use gantry::store::Store;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

#[path = "../tests/common/pty.rs"]
#[allow(dead_code)]
mod pty;

fn main() {
    let quick = common::quick();
    let only = std::env::var("GANTRY_BENCH_SCALE").ok();
    let shapes = if quick {
        vec![
            Shape {
                name: "W100-small",
                runs: 20,
                metrics: 10,
                steps: 2_000,
                params: 10,
                tags: 3,
            },
            Shape {
                name: "Wwide-small",
                runs: 200,
                metrics: 20,
                steps: 50,
                params: 30,
                tags: 10,
            },
        ]
    } else {
        vec![common::W100, common::WWIDE]
    };
    let mut bins = vec![("this", env!("CARGO_BIN_EXE_gantry").to_string())];
    if let Ok(b) = std::env::var("GANTRY_BENCH_BASELINE") {
        bins.push(("baseline", b));
    }
    let base_keep = std::env::var_os("GANTRY_BENCH_BASELINE_KEEP").map(PathBuf::from);
    let rt = common::runtime();
    let tmp = tempfile::tempdir().unwrap();
    let keep = std::env::var_os("GANTRY_BENCH_KEEP").map(PathBuf::from);
    for shape in shapes {
        if only.as_deref().is_some_and(|o| !shape.name.starts_with(o)) {
            continue;
        }
        let root = keep
            .clone()
            .unwrap_or_else(|| tmp.path().to_path_buf())
            .join(shape.name);
        let ids = build(&rt, &root, &shape);
        let wss: Vec<PathBuf> = bins
            .iter()
            .map(|(name, _)| match (&base_keep, *name) {
                (Some(b), "baseline") => b.join(shape.name),
                _ => root.clone(),
            })
            .collect();
        measure(&rt, &root, &shape, &ids, &bins, &wss, quick);
    }
}

/// Build the workspace (or reuse one built before), print its size; the run names, newest first.
fn build(rt: &tokio::runtime::Runtime, root: &Path, shape: &Shape) -> Vec<String> {
    let db = root.join(".gantry/gantry.db");
    let marker = root.join("built");
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(root);
        std::fs::create_dir_all(root.join(".gantry/runs")).unwrap();
        let store = rt.block_on(Store::open(&db)).unwrap();
        let t = Instant::now();
        rt.block_on(common::build_shape(&store, shape));
        rt.block_on(store.close());
        let secs = t.elapsed().as_secs_f64();
        std::fs::write(&marker, format!("{secs:.1}")).unwrap();
    }
    let secs = std::fs::read_to_string(&marker).unwrap_or_default();
    let bytes: u64 = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "built    {}: {} runs x {} metrics x {} steps = {} points, {} params and {} tags each, in {secs} s; {:.2} GB on disk = {:.2} bytes/point",
        shape.name,
        shape.runs,
        shape.metrics,
        shape.steps,
        shape.points(),
        shape.params,
        shape.tags,
        bytes as f64 / 1e9,
        bytes as f64 / shape.points() as f64
    );
    let store = rt.block_on(Store::open(&db)).unwrap();
    let mut runs = rt.block_on(store.runs()).unwrap();
    runs.sort_by_key(|r| std::cmp::Reverse(r.started_ms));
    rt.block_on(store.close());
    // Names, not ids: the same in a baseline's copy of the workload built apart.
    runs.into_iter().map(|r| r.name).collect()
}

fn measure(
    rt: &tokio::runtime::Runtime,
    root: &Path,
    shape: &Shape,
    ids: &[String],
    bins: &[(&str, String)],
    wss: &[PathBuf],
    quick: bool,
) {
    let reps = if quick { 1 } else { 7 };
    let name = shape.name;
    let ten: Vec<&str> = ids.iter().take(10).map(String::as_str).collect();
    let mut commands: Vec<Vec<&str>> = vec![
        vec!["runs", "--limit", "50"],
        vec![
            "runs",
            "--limit",
            "50",
            "--filter",
            "param.lr>=0.0005 status:finished",
            "--sort",
            "-metric.train/loss_0",
        ],
        vec!["compare"],
    ];
    commands[2].extend(&ten);
    commands.push(vec!["show", ten[0]]);
    let runs: Vec<(&str, &Path)> = bins
        .iter()
        .zip(wss)
        .map(|((_, exe), ws)| (exe.as_str(), ws.as_path()))
        .collect();
    for args in &commands {
        let timed = common::time_commands(&runs, args, reps);
        let shown: Vec<&str> = args
            .iter()
            .map(|a| if ten.contains(a) { "RUN" } else { a })
            .collect();
        for ((bin, _), ((m, lo, hi), rss)) in bins.iter().zip(timed) {
            println!(
                "{name:<7} `gantry {}` ({bin}): median {m:.1} ms (min {lo:.1}, max {hi:.1}), peak RSS {rss:.0} MB",
                shown.join(" "),
            );
        }
    }

    // The workbench: first frame listing every run, then its memory once the table is loaded.
    let home = tempfile::tempdir().unwrap();
    let title = format!("Runs ({})", shape.runs);
    for ((bin, exe), ws) in bins.iter().zip(wss) {
        let ws = ws.to_str().unwrap();
        let mut first = Vec::new();
        let mut hwm = 0.0f64;
        for _ in 0..reps {
            let t = Instant::now();
            let mut p = pty::Session::start_exe(exe, home.path(), &["--workspace", ws], 50, 160);
            p.wait_text(&title);
            first.push(t.elapsed().as_secs_f64() * 1e3);
            std::thread::sleep(std::time::Duration::from_millis(300));
            hwm = hwm.max(common::proc_status_mb(
                p.child.process_id().unwrap(),
                "VmHWM:",
            ));
            p.send("q");
            let _ = p.child.wait();
        }
        let (m, lo, hi) = common::median(first);
        println!(
            "{name:<7} workbench first frame listing {} runs ({bin}): median {m:.1} ms (min {lo:.1}, max {hi:.1}), peak RSS {hwm:.0} MB",
            shape.runs
        );
    }

    // Keypress to frame, in process, on a 160x50 terminal with every run loaded.
    let store = rt
        .block_on(Store::open(&root.join(".gantry/gantry.db")))
        .unwrap();
    let (keymap, _) = Keymap::build(&Config::defaults());
    let mut state = State::new(
        keymap,
        Theme::load("default-dark", ColorMode::TrueColor, None).0,
    );
    state.size = (160, 50);
    let records = rt.block_on(store.run_records()).unwrap();
    update(&mut state, Msg::RunsLoaded(Ok(records)));
    let mut term = Terminal::new(TestBackend::new(160, 50)).unwrap();
    Drawer::draw(&mut term, &state).unwrap();
    let scroll: Vec<f64> = ["j", "j", "j", "pagedown", "j", "k", "pageup", "G", "g"]
        .iter()
        .cycle()
        .take(if quick { 18 } else { 180 })
        .map(|k| press(&mut state, &mut term, k).0)
        .collect();
    report(name, "keypress to frame scrolling the table", scroll);
    press(&mut state, &mut term, "/");
    let typed: Vec<f64> = "param.lr>=0.0005 tag_1:v2"
        .chars()
        .map(|c| {
            let k = if c == ' ' {
                "space".to_string()
            } else {
                c.to_string()
            };
            press(&mut state, &mut term, &k).0
        })
        .collect();
    report(name, "keypress to frame typing a filter", typed);
    press(&mut state, &mut term, "esc");
    press(&mut state, &mut term, "esc");

    // Opening a run: every chart of its detail (a 4 x 3 grid: all 10 metrics on W100) loaded
    // from the store, concurrently as the workbench runs its effects, and drawn.
    state.runs.chart.cols = 4;
    state.runs.chart.rows = 3;
    let mut opens = Vec::new();
    for i in 0..if quick { 2 } else { 9 } {
        press(&mut state, &mut term, "j");
        let t = Instant::now();
        let (_, effects) = press(&mut state, &mut term, "enter");
        let loads: Vec<_> = effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::LoadSeries(id) => {
                    let store = store.clone();
                    Some(rt.spawn(async move {
                        let s = store.load_series(&id.run, id.kind, &id.key).await;
                        (id, s.unwrap_or_default())
                    }))
                }
                _ => None,
            })
            .collect();
        let (mut points, mut charts) = (0, 0);
        for l in loads {
            let (id, s) = rt.block_on(l).unwrap();
            points += s.len();
            charts += usize::from(!s.is_empty());
            update(&mut state, Msg::SeriesLoaded(id, Ok(Arc::new(s))));
        }
        Drawer::draw(&mut term, &state).unwrap();
        opens.push(t.elapsed().as_secs_f64() * 1e3);
        if i == 0 {
            println!("{name:<7} a run's detail draws {charts} charts of {points} points");
        }
        press(&mut state, &mut term, "esc");
    }
    report(name, "opening a run (its charts loaded and drawn)", opens);

    // Every metric of one run loaded from the store (on W100: 10 series of 100k points), the
    // data of a detail with one chart per metric.
    let newest = rt
        .block_on(store.runs_listing())
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let keys = rt
        .block_on(store.series_keys(&newest.id, gantry::domain::SeriesKind::Metric))
        .unwrap();
    let mut loads = Vec::new();
    let mut points = 0;
    for _ in 0..if quick { 2 } else { 9 } {
        let t = Instant::now();
        points = 0;
        for k in &keys {
            points += rt
                .block_on(store.load_series(&newest.id, gantry::domain::SeriesKind::Metric, k))
                .unwrap()
                .len();
        }
        loads.push(t.elapsed().as_secs_f64() * 1e3);
    }
    report(
        name,
        &format!(
            "loading all {} metrics of a run ({points} points)",
            keys.len()
        ),
        loads,
    );
    rt.block_on(store.close());
}

type Term = Terminal<TestBackend>;

/// One key through update(), and the frame it asks for: (milliseconds, effects).
fn press(state: &mut State, term: &mut Term, k: &str) -> (f64, Vec<Effect>) {
    let t = Instant::now();
    let out = update(state, Msg::Key(KeyChord::parse(k).unwrap()));
    if out.redraw {
        Drawer::draw(term, state).unwrap();
    }
    (t.elapsed().as_secs_f64() * 1e3, out.effects)
}

fn report(name: &str, what: &str, v: Vec<f64>) {
    let (m, lo, hi) = common::median(v);
    println!("{name:<7} {what}: median {m:.2} ms (min {lo:.2}, max {hi:.2})");
}
