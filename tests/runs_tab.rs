//! The Runs tab: update() tests for selection, sort, filter, views, chart keys and prompts, and
//! snapshots of the table, detail, compare, a filter error and a narrow terminal. Colour that
//! carries meaning (better/worse deltas) is asserted on buffer styles.

mod common;

use std::sync::Arc;

use gantry::app::runs::{Focus, SeriesId, SortCol, View, XMode};
use gantry::app::{Drawer, Effect, Modal, Msg, State, update};
use gantry::config::{KeyChord, Role};
use gantry::domain::{RunStatus, Series, SeriesKind};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

fn key(s: &str) -> Msg {
    Msg::Key(KeyChord::parse(s).unwrap())
}

fn press(s: &mut State, keys: &str) -> Vec<Effect> {
    let mut effects = Vec::new();
    for k in keys.split_whitespace() {
        effects.extend(update(s, key(k)).effects);
    }
    effects
}

fn typed(s: &mut State, text: &str) {
    for c in text.chars() {
        let k = if c == ' ' {
            "space".to_string()
        } else {
            c.to_string()
        };
        update(s, Msg::Key(KeyChord::parse(&k).unwrap()));
    }
}

fn with_runs(n: usize) -> State {
    let mut s = common::state();
    update(&mut s, Msg::RunsLoaded(Ok(common::some_records(n))));
    s
}

fn series(n: usize, f: impl Fn(usize) -> f64) -> Arc<Series> {
    let mut s = Series::default();
    for i in 0..n {
        s.push(i as i64, common::NOW_MS - (n - i) as i64 * 1000, f(i));
    }
    Arc::new(s)
}

/// Answer every pending series request with a made-up curve, as the effect runner would.
fn load_all(s: &mut State, effects: &[Effect]) {
    for e in effects {
        if let Effect::LoadSeries(id) = e {
            let seed = (id.run.as_bytes()[7] - b'0') as f64 * 25.0;
            let data = if id.kind == SeriesKind::System {
                series(50, |i| 50.0 + (i as f64 * 0.7).sin() * 10.0)
            } else {
                series(200, move |i| {
                    2.0 * (-(i as f64) / (40.0 + seed)).exp() + 0.1
                })
            };
            update(s, Msg::SeriesLoaded(id.clone(), Ok(data)));
        }
    }
}

fn draw(s: &State, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    Drawer::draw(&mut t, s).unwrap();
    t
}

fn text(t: &Terminal<TestBackend>) -> String {
    t.backend().to_string()
}

#[test]
fn marks_keep_their_colour_and_the_pin_is_a_baseline() {
    let mut s = with_runs(6);
    press(&mut s, "space j space j j p");
    let ids: Vec<String> = s
        .runs
        .visible
        .iter()
        .map(|&i| s.runs.records[i].run.id.clone())
        .collect();
    assert_eq!(
        s.runs.marked,
        vec![ids[0].clone(), ids[1].clone(), ids[3].clone()]
    );
    assert_eq!(s.runs.pinned.as_deref(), Some(ids[3].as_str()));
    let colours: Vec<usize> = ids.iter().take(2).map(|id| s.runs.color(id)).collect();
    press(&mut s, "g space");
    assert!(!s.runs.marked.contains(&ids[0]));
    press(&mut s, "space");
    assert_eq!(
        s.runs.color(&ids[0]),
        colours[0],
        "a run keeps its colour when marked again"
    );
    assert_ne!(colours[0], colours[1]);
    assert_eq!(
        s.runs.compared()[0],
        ids[3],
        "the pinned run comes first in compare"
    );
    press(&mut s, "x");
    assert!(s.runs.marked.is_empty() && s.runs.pinned.is_none());
    press(&mut s, "a");
    assert_eq!(s.runs.marked.len(), 6, "a marks every run the filter shows");
}

#[test]
fn sort_cycles_columns_and_reverses() {
    let mut s = with_runs(5);
    assert_eq!(s.runs.sort, SortCol::Started);
    let names = |s: &State| {
        s.runs
            .visible
            .iter()
            .map(|&i| s.runs.records[i].run.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&s)[0], "resnet50-trial-000", "newest first");
    press(&mut s, "s");
    assert_eq!(s.runs.sort, SortCol::Name);
    press(&mut s, "S");
    assert!(!s.runs.sort_desc);
    assert_eq!(names(&s)[0], "resnet50-trial-000");
    s.runs.metric_cols = vec!["loss".into()];
    s.runs.cols_chosen = true;
    press(&mut s, "s s s s");
    assert_eq!(s.runs.sort, SortCol::Metric("loss".into()));
    assert_eq!(names(&s)[0], "resnet50-trial-004", "lowest loss first");
    press(&mut s, "S");
    assert_eq!(names(&s)[0], "resnet50-trial-000");
}

#[test]
fn the_filter_previews_live_keeps_the_last_good_one_and_esc_restores() {
    let mut s = with_runs(10);
    press(&mut s, "/");
    assert!(matches!(s.modal, Some(Modal::Filter { .. })));
    typed(&mut s, "status:failed");
    assert_eq!(s.runs.visible.len(), 2, "applied while typing");
    typed(&mut s, " param.lr>=0.05");
    assert_eq!(s.runs.visible.len(), 1);
    press(&mut s, "backspace backspace backspace backspace");
    let e = s
        .runs
        .filter_error
        .clone()
        .expect("an error while the comparison lacks a value");
    assert_eq!(e.column, 25, "just after `>=`");
    assert_eq!(
        s.runs.visible.len(),
        2,
        "the last good filter (lr>=0) stays meanwhile"
    );
    press(&mut s, "enter");
    assert!(
        s.modal.is_some(),
        "enter does not close a filter with an error"
    );
    typed(&mut s, "0.05");
    press(&mut s, "enter");
    assert!(s.modal.is_none());
    assert_eq!(s.runs.visible.len(), 1);
    press(&mut s, "/");
    typed(&mut s, "x");
    press(&mut s, "esc");
    assert_eq!(
        s.runs.filter_text, "status:failed param.lr>=0.05",
        "esc puts the filter back"
    );
}

#[test]
fn a_pasted_deeply_nested_filter_is_a_filter_error_not_a_crash() {
    // A terminal without bracketed paste delivers a paste as keys: 10,000 `(` one by one. Each
    // one re-parses the filter; before the depth limit the parse overflowed the stack.
    let mut s = with_runs(10);
    press(&mut s, "/");
    typed(&mut s, &"(".repeat(10_000));
    let e = s.runs.filter_error.clone().expect("a filter error");
    assert!(
        e.message.contains("nested more than 64 deep"),
        "{}",
        e.message
    );
    assert_eq!(e.column, 65);
    assert_eq!(
        s.runs.visible.len(),
        10,
        "the last good filter (none) stays"
    );
    press(&mut s, "esc");
    assert!(s.modal.is_none());
}

#[test]
fn opening_a_run_asks_for_its_series_and_log() {
    let mut s = with_runs(3);
    let effects = press(&mut s, "j space g enter");
    assert_eq!(s.runs.view, View::Detail);
    let detail = s.runs.detail.clone().unwrap();
    let marked = s.runs.marked[0].clone();
    assert!(effects.contains(&Effect::LoadLog(detail.clone())));
    let wanted: Vec<&SeriesId> = effects
        .iter()
        .filter_map(|e| {
            if let Effect::LoadSeries(id) = e {
                Some(id)
            } else {
                None
            }
        })
        .collect();
    for run in [&detail, &marked] {
        for k in ["acc", "loss"] {
            assert!(
                wanted
                    .iter()
                    .any(|id| &id.run == run && id.key == k && id.kind == SeriesKind::Metric),
                "{run} {k}"
            );
        }
    }
    assert!(
        wanted
            .iter()
            .any(|id| id.run == detail && id.kind == SeriesKind::System && id.key == "cpu_percent")
    );
    assert!(
        !wanted
            .iter()
            .any(|id| id.run == marked && id.kind == SeriesKind::System),
        "system charts for the detail run only"
    );
    load_all(&mut s, &effects);
    assert!(s.runs.wanted_series().is_empty(), "nothing asked twice");
    press(&mut s, "esc");
    assert_eq!(s.runs.view, View::Table);
}

#[test]
fn chart_keys_change_the_view_and_nothing_else() {
    let mut s = with_runs(2);
    press(&mut s, "enter");
    press(&mut s, "+ +");
    assert!((s.runs.chart.window.1 - s.runs.chart.window.0 - 0.25).abs() < 1e-9);
    press(&mut s, "> > > > > > > >");
    assert_eq!(s.runs.chart.window.1, 1.0, "panning stops at the end");
    press(&mut s, "0");
    assert_eq!(s.runs.chart.window, (0.0, 1.0));
    press(&mut s, "l l");
    assert!((s.runs.chart.cursor.unwrap() - 0.54).abs() < 1e-9);
    press(&mut s, "X X");
    assert_eq!(s.runs.chart.x, XMode::Relative);
    press(&mut s, "Y ] ]");
    assert!(s.runs.chart.log_y);
    assert_eq!(s.runs.chart.ema(), 0.6);
    press(&mut s, "} )");
    assert_eq!((s.runs.chart.cols, s.runs.chart.rows), (3, 3));
    press(&mut s, "f");
    assert_eq!(s.runs.focus, Focus::Log);
    let out = update(&mut s, key("Y"));
    assert!(
        !out.redraw,
        "chart keys do nothing while the log has the focus"
    );
}

#[test]
fn prompts_tag_rename_and_confirm_delete() {
    let mut s = with_runs(3);
    let id = s.runs.current().unwrap().run.id.clone();
    press(&mut s, "t");
    typed(&mut s, "stage=prod");
    let fx = press(&mut s, "enter");
    assert_eq!(
        fx,
        vec![Effect::SetTag {
            run: id.clone(),
            key: "stage".into(),
            value: "prod".into()
        }]
    );
    press(&mut s, "R");
    press(&mut s, "ctrl-u");
    typed(&mut s, "better-name");
    assert_eq!(
        press(&mut s, "enter"),
        vec![Effect::Rename {
            run: id.clone(),
            name: "better-name".into()
        }]
    );
    press(&mut s, "d");
    assert!(
        press(&mut s, "n").is_empty(),
        "anything but y keeps the run"
    );
    assert_eq!(s.toast.as_deref(), Some("nothing deleted"));
    press(&mut s, "d");
    assert_eq!(press(&mut s, "y"), vec![Effect::Delete(id.clone())]);
    assert_eq!(press(&mut s, "y"), vec![Effect::Copy(id.clone())]);
    match press(&mut s, "o").as_slice() {
        [Effect::Pager(p)] => assert!(p.ends_with("output.log")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn live_messages_reload_what_changed() {
    let mut s = with_runs(3);
    let fx = press(&mut s, "enter");
    load_all(&mut s, &fx);
    let detail = s.runs.detail.clone().unwrap();
    let fx = update(&mut s, Msg::LogChanged(detail.clone())).effects;
    assert_eq!(fx, vec![Effect::LoadLog(detail.clone())]);
    assert!(
        update(&mut s, Msg::LogChanged("other".into()))
            .effects
            .is_empty()
    );
    let fx = update(&mut s, Msg::StoreChanged).effects;
    assert!(fx.contains(&Effect::LoadRuns(gantry::app::Held::whole())));
    // The detail run is running: its series are dropped and asked for again.
    assert_eq!(
        s.runs.record(&detail).unwrap().run.status,
        RunStatus::Running
    );
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::LoadSeries(id) if id.run == detail))
    );
    update(
        &mut s,
        Msg::LogLoaded {
            run: detail.clone(),
            lines: (0..100).map(|i| format!("line {i}")).collect(),
        },
    );
    press(&mut s, "f /");
    typed(&mut s, "line 42");
    press(&mut s, "enter");
    assert_eq!(s.runs.log.scroll, 57, "the match is brought into view");
}

#[test]
fn snapshot_table_with_columns_marks_and_pin() {
    let mut s = with_runs(6);
    s.runs.metric_cols = vec!["loss".into()];
    s.runs.cols_chosen = true;
    s.runs.param_cols = vec!["lr".into()];
    press(&mut s, "space j space j p");
    insta::assert_snapshot!(text(&draw(&s, 120, 40)));
}

#[test]
fn a_host_column_appears_when_runs_come_from_more_than_one_host() {
    let mut s = with_runs(4);
    let one = text(&draw(&s, 120, 40));
    assert!(!one.contains("Host"), "{one}");
    let mut recs = common::some_records(4);
    recs[1].run.host = "gpu02".into();
    update(&mut s, Msg::RunsLoaded(Ok(recs)));
    let two = text(&draw(&s, 120, 40));
    assert!(two.contains("Host"), "{two}");
    assert!(two.contains("gpu02") && two.contains("gpu01"), "{two}");
    insta::assert_snapshot!(two);
    // Filtering by host keeps the column: the workspace's runs still come from two hosts.
    typed(&mut s, "/host:gpu02");
    press(&mut s, "enter");
    assert_eq!(s.runs.visible.len(), 1);
    assert!(text(&draw(&s, 120, 40)).contains("Host"));
}

#[test]
fn a_running_run_whose_heartbeat_stopped_shows_lost_with_its_age() {
    let mut s = with_runs(4);
    let mut recs = common::some_records(4);
    assert_eq!(recs[0].run.status, gantry::domain::RunStatus::Running);
    recs[0].run.heartbeat_ms = Some(common::NOW_MS - 5 * 60_000);
    update(&mut s, Msg::RunsLoaded(Ok(recs.clone())));
    let screen = text(&draw(&s, 120, 40));
    assert!(screen.contains("? lost 5m"), "{screen}");
    // A fresh heartbeat, or none at all (a run nothing supervises), is plain running.
    recs[0].run.heartbeat_ms = Some(common::NOW_MS - 5_000);
    update(&mut s, Msg::RunsLoaded(Ok(recs.clone())));
    assert!(!text(&draw(&s, 120, 40)).contains("lost"));
    recs[0].run.heartbeat_ms = None;
    update(&mut s, Msg::RunsLoaded(Ok(recs)));
    assert!(!text(&draw(&s, 120, 40)).contains("lost"));
}

#[test]
fn snapshot_filter_error() {
    let mut s = with_runs(6);
    press(&mut s, "/");
    typed(&mut s, "status:running metric.loss<abc");
    let t = draw(&s, 120, 40);
    let screen = text(&t);
    assert!(screen.contains("`abc` is not a number"));
    insta::assert_snapshot!(screen);
}

#[test]
fn snapshot_detail_with_overlay() {
    let mut s = with_runs(4);
    let fx = press(&mut s, "j space k enter l l l");
    load_all(&mut s, &fx);
    let run = s.runs.detail.clone().unwrap();
    update(
        &mut s,
        Msg::LogLoaded {
            run,
            lines: vec!["epoch 0 done".into(), "epoch 1 done".into()],
        },
    );
    insta::assert_snapshot!(text(&draw(&s, 120, 40)));
}

#[test]
fn snapshot_compare_and_delta_colours() {
    let mut s = with_runs(3);
    // Pin trial-002 (loss 1/3), mark trial-000 (loss 1) and trial-001 (loss 1/2): all worse.
    let fx = press(&mut s, "space j space j p C");
    assert_eq!(s.runs.view, View::Compare);
    load_all(&mut s, &fx);
    let t = draw(&s, 120, 40);
    insta::assert_snapshot!(text(&t));
    let buf = t.backend().buffer();
    assert_eq!(
        fg_at(buf, "+0.6667"),
        s.theme.color(Role::Bad),
        "higher loss than the baseline is worse"
    );
    // acc is the same everywhere in the fixture: 0 delta is muted, not good or bad.
    assert_eq!(
        fg_at_nth(buf, "baseline", 1),
        s.theme.color(Role::Muted),
        "the baseline's own row"
    );
}

#[test]
fn snapshot_narrow_terminal() {
    let mut s = with_runs(8);
    s.size = (80, 24);
    insta::assert_snapshot!(text(&draw(&s, 80, 24)));
    let fx = press(&mut s, "enter");
    load_all(&mut s, &fx);
    let screen = text(&draw(&s, 80, 24));
    assert!(screen.contains("Metrics 1-2 of 2"), "{screen}");
}

fn fg_at(buf: &Buffer, needle: &str) -> ratatui::style::Color {
    fg_at_nth(buf, needle, 0)
}

/// The foreground colour of the n-th place (0-based, reading order) where `needle` is on screen.
fn fg_at_nth(buf: &Buffer, needle: &str, n: usize) -> ratatui::style::Color {
    let area = buf.area;
    let mut seen = 0;
    for y in 0..area.height {
        let row: String = (0..area.width).map(|x| buf[(x, y)].symbol()).collect();
        for (i, _) in row.match_indices(needle) {
            if seen == n {
                let x = row[..i].chars().count() as u16;
                return buf[(x, y)].fg;
            }
            seen += 1;
        }
    }
    panic!("`{needle}` is not on screen {} times", n + 1);
}

/// Records as the workbench first reads them: each run alone, no params, tags or metrics.
fn listed(n: usize) -> State {
    let mut s = common::state();
    let held = s.runs.load();
    assert_eq!(held, gantry::app::Held::default());
    let bare: Vec<_> = common::some_records(n)
        .into_iter()
        .map(|r| gantry::domain::RunRecord::bare(r.run))
        .collect();
    update(&mut s, Msg::RunsListed(Ok((bare, held))));
    s
}

fn loads(fx: &[Effect]) -> Vec<gantry::app::Held> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::LoadRuns(h) => Some(h.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_table_reads_only_the_parts_its_filter_sort_and_columns_need() {
    let mut s = listed(6);
    assert_eq!(s.runs.visible.len(), 6);
    // Typing a filter on a param asks for that param of every run, once, however many keys.
    update(&mut s, key("/"));
    let mut fx = Vec::new();
    for c in "param.lr>0.02".chars() {
        fx.extend(update(&mut s, Msg::Key(KeyChord::parse(&c.to_string()).unwrap())).effects);
    }
    let asked = loads(&fx);
    assert!(
        asked.iter().any(|h| h.params.contains("lr")),
        "no load of param lr: {asked:?}"
    );
    // (While "param" was a bare word it read tags too: bare words match tag values.)
    let last = asked.last().unwrap().clone();
    assert!(!last.all && last.metrics.is_empty(), "{last:?}");
    // Nothing more while that load is out.
    assert!(loads(&update(&mut s, Msg::Resize(120, 40)).effects).is_empty());
    // The records come back holding it: the filter applies, and nothing more is asked.
    let mut recs = common::some_records(6);
    for r in &mut recs {
        r.tags.clear();
        r.metrics.clear();
        r.params.retain(|k, _| k == "lr");
    }
    let out = update(&mut s, Msg::RunsListed(Ok((recs, last))));
    assert!(loads(&out.effects).is_empty());
    assert_eq!(s.runs.visible.len(), 4, "lr = 0.1/(i+1) > 0.02 for i < 4");
    // A bare word reads tags; a sort on a metric reads that metric.
    update(&mut s, key("esc"));
    s.runs.set_filter("baseline");
    s.runs.sort = SortCol::Metric("loss".into());
    let fx = update(&mut s, Msg::Resize(120, 40)).effects;
    let h = loads(&fx).pop().expect("a load for tags and loss");
    assert!(h.tags && h.metrics.contains("loss") && h.params.contains("lr"));
}

#[test]
fn an_open_run_is_read_whole_and_read_again_when_the_store_changes() {
    let mut s = listed(4);
    let fx = press(&mut s, "enter");
    let id = s.runs.detail.clone().unwrap();
    assert!(
        fx.contains(&Effect::LoadRecords(vec![id.clone()])),
        "{fx:?}"
    );
    // Asked once.
    assert!(
        !update(&mut s, Msg::Resize(120, 40))
            .effects
            .iter()
            .any(|e| matches!(e, Effect::LoadRecords(_)))
    );
    let whole = common::some_records(4)
        .into_iter()
        .find(|r| r.run.id == id)
        .unwrap();
    let fx = update(&mut s, Msg::RecordsLoaded(vec![whole])).effects;
    assert_eq!(s.runs.record(&id).unwrap().params["bs"], "64");
    // Its metrics are known now: their series are asked for.
    assert!(
        fx.iter().any(|e| matches!(e, Effect::LoadSeries(_))),
        "{fx:?}"
    );
    let fx = update(&mut s, Msg::StoreChanged).effects;
    assert!(
        fx.contains(&Effect::LoadRecords(vec![id.clone()])),
        "{fx:?}"
    );
    assert_eq!(loads(&fx).len(), 1);
}

#[test]
fn the_column_chooser_reads_every_name_once() {
    let mut s = listed(3);
    let fx = press(&mut s, "c");
    assert_eq!(
        fx.iter().filter(|e| **e == Effect::LoadKeys).count(),
        1,
        "{fx:?}"
    );
    assert!(!press(&mut s, "j").contains(&Effect::LoadKeys));
    update(
        &mut s,
        Msg::KeysLoaded(vec!["acc".into(), "loss".into()], vec!["lr".into()]),
    );
    assert_eq!(
        s.runs.column_choices(),
        vec![
            ("metric", "acc".to_string()),
            ("metric", "loss".to_string()),
            ("param", "lr".to_string())
        ]
    );
    // Choosing loss as a column reads loss for every run.
    press(&mut s, "k");
    let fx = press(&mut s, "space");
    let h = loads(&fx).pop().expect("a load for the new column");
    assert!(
        h.metrics.contains("acc") || h.metrics.contains("loss"),
        "{h:?}"
    );
}

/// Two runs with gantry's own metrics and hardware: one on an H200 with bench history, one on an
/// A100 without.
fn with_gpu_use() -> State {
    use gantry::domain::SeriesSummary;
    use gantry::domain::efficiency::{Fingerprint, Hardware, HardwareGpu};
    let mut recs = common::some_records(2);
    let gpus = [
        ("NVIDIA H200", Some(712.4), 49.1, 62.3, 2410.0, 3.2, 8.72),
        ("NVIDIA A100-SXM4-80GB", None, 31.0, 0.0, 1830.0, 4.1, 10.76),
    ];
    for (r, (name, bench, mfu, measured, wh, gh, cost)) in recs.iter_mut().zip(gpus) {
        let mut put = |k: &str, v: f64| {
            r.metrics.insert(
                k.into(),
                SeriesSummary {
                    key: k.into(),
                    n_points: 40,
                    last_step: Some(99),
                    last: Some(v),
                    min: Some(v * 0.9),
                    max: Some(v),
                    min_step: Some(1),
                    max_step: Some(99),
                },
            );
        };
        put("gantry/mfu", mfu);
        if bench.is_some() {
            put("gantry/mfu_measured", measured);
        }
        put("gantry/tflops", mfu * 9.894);
        put("gantry/energy_wh", wh);
        put("gantry/gpu_hours", gh);
        put("gantry/cost", cost);
        let hw = Hardware {
            host: "gpu01".into(),
            gpus: vec![HardwareGpu {
                name: name.into(),
                uuid: format!("GPU-{name}"),
                driver: Some("580.95.05".into()),
                cuda: Some("13.0".into()),
                power_limit_w: Some(700.0),
                pcie_gen: Some(5),
                pcie_width: Some(16),
                bench: bench.map(|t| Fingerprint {
                    gemm_bf16_tflops: Some(t),
                    membw_gbs: Some(4113.0),
                    at_ms: common::NOW_MS - 3 * 86_400_000,
                }),
            }],
        };
        r.tags.insert(
            "gantry.hardware".into(),
            serde_json::to_string(&hw).unwrap(),
        );
        r.tags.insert("gantry.currency".into(), "EUR".into());
    }
    let mut s = common::state();
    update(&mut s, Msg::RunsLoaded(Ok(recs)));
    s
}

#[test]
fn snapshot_detail_and_compare_with_gpu_use() {
    let mut s = with_gpu_use();
    let fx = press(&mut s, "enter");
    load_all(&mut s, &fx);
    let screen = text(&draw(&s, 140, 40));
    assert!(
        screen.contains(
            "MFU 49.1% · 62.3% of measured · 485.8 TFLOP/s · 2.41 kWh · 3.20 GPU-h · 8.72 EUR"
        ),
        "{screen}"
    );
    assert!(
        screen.contains("NVIDIA H200 · driver 580.95.05"),
        "{screen}"
    );
    assert!(
        !screen.contains("gantry.hardware="),
        "the tag is shown in words: {screen}"
    );
    insta::assert_snapshot!("detail_with_gpu_use", screen);
    press(&mut s, "esc");
    let fx = press(&mut s, "space j space C");
    load_all(&mut s, &fx);
    // The comparison asks for the runs' conditions once; they come back as a message.
    let ids = s.runs.compared();
    assert!(fx.contains(&Effect::LoadConditions(ids.clone())), "{fx:?}");
    assert!(!press(&mut s, "j").contains(&Effect::LoadConditions(ids.clone())));
    use gantry::domain::conditions::RunConditions;
    let cond = |i: usize, rate: f64, capped: f64, limit: f64| RunConditions {
        id: ids[i].clone(),
        name: s.runs.record(&ids[i]).unwrap().run.name.clone(),
        steps_per_s: Some(rate),
        gpu: Some("NVIDIA H200".into()),
        peak_tflops: Some(989.4),
        sm_clock_mhz: Some(1980.0 - capped * 600.0),
        power_limit_w: Some(limit),
        throttled: if capped > 0.0 {
            vec![("power-capped".into(), capped)]
        } else {
            Vec::new()
        },
        others: Some(0.0),
        host_cpu: Some(31.0),
        ..Default::default()
    };
    let both = vec![cond(0, 10.0, 0.0, 700.0), cond(1, 8.2, 0.4, 300.0)];
    let out = update(&mut s, Msg::ConditionsLoaded(ids.clone(), both));
    assert!(out.redraw);
    let t = draw(&s, 140, 40);
    let screen = text(&t);
    assert!(screen.contains("* (gpu)"), "the GPUs differ: {screen}");
    assert!(
        screen.contains(
            "! resnet50-trial-001: 18% slower than resnet50-trial-000; its GPU spent 40% of the time power-capped at 300 W"
        ),
        "{screen}"
    );
    assert!(
        screen.contains("* (power limit)") && screen.contains("power-capped 40%"),
        "{screen}"
    );
    assert!(
        screen.contains("2.41 kWh") && screen.contains("10.76 EUR"),
        "{screen}"
    );
    // Less energy is better: the second run's 1.83 kWh is good against 2.41.
    assert_eq!(
        fg_at(t.backend().buffer(), "-580"),
        s.theme.color(Role::Good)
    );
    insta::assert_snapshot!("compare_with_gpu_use", screen);
}

/// trial-000 with a stall alert at step 40 (cleared), a NaN alert at step 120 (active) and the
/// flight recorder's NaN event with it.
fn with_alerts() -> Vec<gantry::domain::RunRecord> {
    use gantry::domain::alerts::{Alert, Kind};
    let mut recs = common::some_records(3);
    let stall = Alert {
        kind: Kind::Stall,
        message: "no new step for 10 min (threshold 10 min)".into(),
        step: Some(40),
        raised_ms: common::NOW_MS - 160_000,
        cleared_ms: Some(common::NOW_MS - 150_000),
    };
    let nan = Alert {
        kind: Kind::Nan,
        message: "loss is not a number at step 120".into(),
        step: Some(120),
        raised_ms: common::NOW_MS - 80_000,
        cleared_ms: None,
    };
    let event = gantry::domain::flight::Event {
        trigger: gantry::domain::flight::Trigger::Nan,
        at_ms: nan.raised_ms,
        step: nan.step,
        message: nan.message.clone(),
        file: "flight-nan-1.jsonl".into(),
        frames: 60,
        from_ms: Some(nan.raised_ms - 300_000),
    };
    let tags = &mut recs[0].tags;
    tags.insert(Kind::Stall.tag(), serde_json::to_string(&stall).unwrap());
    tags.insert(Kind::Nan.tag(), serde_json::to_string(&nan).unwrap());
    tags.insert(
        gantry::domain::flight::TAG.into(),
        serde_json::to_string(&vec![event]).unwrap(),
    );
    recs
}

#[test]
fn alerts_have_a_badge_a_toast_and_marks_the_cursor_jumps_to() {
    let mut s = common::state();
    update(&mut s, Msg::RunsLoaded(Ok(common::some_records(3))));
    assert!(s.toast.is_none());
    // The next listing brings trial-000's alerts: the new active one is told.
    update(&mut s, Msg::RunsLoaded(Ok(with_alerts())));
    assert_eq!(
        s.toast.as_deref(),
        Some("⚠ nan alert on resnet50-trial-000: loss is not a number at step 120")
    );
    let t = draw(&s, 120, 20);
    let screen = text(&t);
    assert!(screen.contains("running !"), "{screen}");
    assert_eq!(fg_at(t.backend().buffer(), "!"), s.theme.color(Role::Bad));
    // The same alerts again are no news.
    press(&mut s, "j k");
    update(&mut s, Msg::RunsLoaded(Ok(with_alerts())));
    assert!(s.toast.is_none());

    // The detail marks both on its charts; e puts the cursor on each in turn.
    let row = s
        .runs
        .visible
        .iter()
        .position(|&i| s.runs.records[i].run.name == "resnet50-trial-000");
    s.runs.cursor = row.unwrap();
    let fx = press(&mut s, "enter");
    load_all(&mut s, &fx);
    // Opened, the charts jump to the run's latest flight-recorder event: the NaN at step 120.
    let opened = text(&draw(&s, 120, 40));
    assert!(opened.contains("└ 120 ▲ nan"), "{opened}");
    press(&mut s, "0 e");
    let first = text(&draw(&s, 120, 40));
    assert!(first.contains("▲ stall"), "{first}");
    press(&mut s, "e");
    let t = draw(&s, 120, 40);
    let second = text(&t);
    assert!(second.contains("▲ nan"), "{second}");
    assert!(!second.contains("▲ stall"), "{second}");
    assert_eq!(
        fg_at(t.backend().buffer(), "▲ nan"),
        s.theme.color(Role::Bad)
    );
    insta::assert_snapshot!(second);
    // Past the last, back to the first.
    press(&mut s, "e");
    assert!(text(&draw(&s, 120, 40)).contains("▲ stall"));
}
