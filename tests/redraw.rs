//! Every key on every tab that changes the screen asks for a redraw: each bound key is pressed on
//! each tab, the screen drawn before and after on a TestBackend, and a changed screen must come
//! with `redraw`. (A key whose change waits for a redraw that never comes is a screen that lies.)

mod common;

use std::collections::HashMap;

use gantry::app::gpus::GpuTick;
use gantry::app::{Msg, State, update};
use gantry::config::KeyChord;
use gantry::domain::{ModelSummary, bench::StoredBench};
use gantry::gpu::source::{GpuSource, ReplaySource};

fn key(s: &str) -> Msg {
    Msg::Key(KeyChord::parse(s).unwrap())
}

/// The drawn cells, text and style: a moved highlight is a change too.
fn screen(s: &State) -> ratatui::buffer::Buffer {
    common::cells(s, 120, 40)
}

fn runs_tab() -> State {
    let mut s = common::state();
    update(&mut s, Msg::RunsLoaded(Ok(common::some_records(12))));
    s
}

fn gpus_tab() -> State {
    let mut s = runs_tab();
    update(&mut s, key("3"));
    let p = format!(
        "{}/fixtures/gpu/a100-x2.made-up.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut r = ReplaySource::open(std::path::Path::new(&p), 0.0).unwrap();
    let mut snapshot = r.sample().unwrap();
    snapshot.time_ms = common::NOW_MS;
    let tick = GpuTick {
        snapshot,
        owners: HashMap::new(),
        procs: HashMap::new(),
        host: Some((12.0, 8 << 30, 64 << 30)),
        source: "replay".into(),
    };
    for _ in 0..3 {
        update(&mut s, Msg::GpuSample(Box::new(tick.clone())));
    }
    s
}

fn models_tab() -> State {
    let mut s = runs_tab();
    update(&mut s, key("2"));
    let models = ["gpt2", "resnet", "vit"]
        .iter()
        .map(|n| ModelSummary {
            name: (*n).into(),
            latest: 2,
            versions: 2,
            aliases: Default::default(),
        })
        .collect();
    update(&mut s, Msg::ModelsLoaded(Ok(models)));
    s
}

fn run_detail() -> State {
    let mut s = runs_tab();
    update(&mut s, key("enter"));
    s
}

fn bench_tab() -> State {
    let mut s = runs_tab();
    update(&mut s, key("4"));
    update(&mut s, Msg::BenchHistory(Ok(Vec::<StoredBench>::new())));
    s
}

#[test]
fn every_key_that_changes_the_screen_redraws_it() {
    type Make = fn() -> State;
    let tabs: [(&str, Make); 5] = [
        ("Runs", runs_tab),
        ("Runs detail", run_detail),
        ("Models", models_tab),
        ("GPUs", gpus_tab),
        ("Bench", bench_tab),
    ];
    let keys: Vec<KeyChord> = common::state()
        .keymap
        .entries()
        .iter()
        .flat_map(|(_, ks)| ks.iter().copied())
        .collect();
    assert!(keys.len() > 30, "the keymap's keys");
    let mut silent = Vec::new();
    let mut checked = 0;
    for (tab, make) in tabs {
        let fresh = make();
        let before = screen(&fresh);
        for k in &keys {
            let mut s = make();
            let out = update(&mut s, Msg::Key(*k));
            if s.quit {
                continue;
            }
            if screen(&s) != before {
                checked += 1;
                if !out.redraw {
                    silent.push(format!(
                        "{tab} tab: `{k}` changed the screen without a redraw"
                    ));
                }
            }
        }
    }
    assert!(checked > 20, "keys that change a screen: {checked}");
    assert!(silent.is_empty(), "{}", silent.join("\n"));
}
