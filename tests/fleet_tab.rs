//! The fleet in the GPUs tab, through update() and snapshots: the host table with a throttling
//! host, a stale one and a free GPU; opening a host and coming back; sort and filter; a failed
//! read keeping the host's last GPUs, marked stale; 80×24.

mod common;

use gantry::app::fleet::{FleetSort, FleetView, Opened};
use gantry::app::{Msg, State, update};
use gantry::config::KeyChord;
use gantry::domain::GpuSnapshot;
use gantry::fleet::{FleetGpu, Host};

use common::{NOW_MS, screen};

fn key(s: &str) -> Msg {
    Msg::Key(KeyChord::parse(s).unwrap())
}

fn recording(name: &str) -> GpuSnapshot {
    common::gpu_recording(name)
}

fn host(name: &str, snap: &GpuSnapshot, age_ms: i64) -> Host {
    Host {
        name: name.into(),
        source: format!("{name}:5000"),
        gpus: snap
            .gpus
            .iter()
            .map(|g| FleetGpu {
                sample: g.clone(),
                processes: Some(snap.processes.iter().filter(|p| p.gpu == g.index).count() as u32),
                driver: snap.driver.clone(),
                cuda: snap.cuda.clone(),
                ..FleetGpu::default()
            })
            .collect(),
        seen_ms: Some(NOW_MS - age_ms),
        error: None,
    }
}

/// box-a: two A100s, one held down by a thermal slowdown; box-b: eight H100s, one with a Slurm
/// job; box-c: one idle H200 (free); gpu07: never answered.
fn fleet() -> Vec<Host> {
    let mut a = host("box-a", &recording("a100-x2"), 1_000);
    a.gpus[1].sample.throttle = vec!["hw thermal".into()];
    let mut b = host("box-b", &recording("h100-x8"), 2_000);
    b.gpus[3].job = Some("slurm 8812".into());
    let mut c = host("box-c", &recording("h200-x1"), 1_000);
    c.gpus[0].processes = Some(0);
    c.gpus[0].sample.util = Some(0);
    c.gpus[0].sample.mem_used = Some(300 << 20);
    c.gpus[0].sample.power = Some(75.0);
    let stale = Host {
        name: "gpu07".into(),
        source: "gpu07:9400".into(),
        gpus: Vec::new(),
        seen_ms: None,
        error: Some("http://gpu07:9400/metrics: no answer in time".into()),
    };
    vec![a, b, c, stale]
}

fn on_the_fleet() -> State {
    let mut s = common::state();
    s.gpus.fleet = Some(FleetView::new(
        "scrape 4 targets".into(),
        Default::default(),
    ));
    update(&mut s, key("3"));
    update(&mut s, Msg::Fleet(fleet()));
    s
}

#[test]
fn the_host_table_shows_each_host_free_gpus_and_trouble() {
    let s = on_the_fleet();
    let wide = screen(&s, 160, 20);
    insta::assert_snapshot!("fleet_hosts", wide);
    assert!(
        wide.contains("4 hosts · 11 GPUs · 1 free · 1 stale"),
        "{wide}"
    );
    assert!(wide.contains("throttled: hw thermal"), "{wide}");
    assert!(wide.contains("slurm 8812"), "{wide}");
    assert!(
        wide.contains("stale: http://gpu07:9400/metrics: no answer"),
        "{wide}"
    );
    insta::assert_snapshot!("fleet_hosts_80x24", screen(&s, 80, 24));
}

#[test]
fn enter_opens_a_host_and_esc_comes_back() {
    let mut s = on_the_fleet();
    // Row 0 is this box; row 1 is box-a.
    update(&mut s, key("down"));
    update(&mut s, key("enter"));
    let f = s.gpus.fleet.as_ref().unwrap();
    assert_eq!(f.open, Some(Opened::Host("box-a".into())));
    let opened = screen(&s, 120, 30);
    insta::assert_snapshot!("fleet_host_opened", opened);
    assert!(opened.contains("driver 580.95.05 · CUDA 13.0"), "{opened}");
    assert!(opened.contains("box-a (esc: all hosts)"), "{opened}");
    assert!(opened.contains("A100"), "{opened}");
    update(&mut s, key("esc"));
    assert_eq!(s.gpus.fleet.as_ref().unwrap().open, None);
    assert!(screen(&s, 120, 30).contains("Hosts (enter: open"));
    // This box opens as the tab shows it without a fleet.
    update(&mut s, key("up"));
    update(&mut s, key("enter"));
    assert_eq!(s.gpus.fleet.as_ref().unwrap().open, Some(Opened::Local));
}

#[test]
fn sort_and_filter_the_hosts() {
    let mut s = on_the_fleet();
    let names = |s: &State| -> Vec<String> {
        let f = s.gpus.fleet.as_ref().unwrap();
        f.rows(s.now_ms)
            .iter()
            .map(|r| match r {
                gantry::app::fleet::Row::Local => "this box".to_string(),
                gantry::app::fleet::Row::Host(h) => h.name.clone(),
            })
            .collect()
    };
    assert_eq!(names(&s), ["this box", "box-a", "box-b", "box-c", "gpu07"]);
    update(&mut s, key("s"));
    assert_eq!(s.gpus.fleet.as_ref().unwrap().sort, FleetSort::Util);
    update(&mut s, key("s"));
    assert_eq!(names(&s)[1], "box-c", "most free GPUs first");
    for k in ["/", "s", "t", "a", "l", "e", "enter"] {
        update(&mut s, key(k));
    }
    assert_eq!(names(&s), ["gpu07"]);
    // Esc in the prompt puts the filter back as it was.
    update(&mut s, key("/"));
    update(&mut s, key("backspace"));
    update(&mut s, key("esc"));
    assert_eq!(s.gpus.fleet.as_ref().unwrap().filter, "stale");
    for k in ["/", "ctrl-u", "f", "r", "e", "e", "enter"] {
        update(&mut s, key(k));
    }
    assert_eq!(names(&s), ["box-c"]);
}

#[test]
fn a_failed_read_keeps_the_hosts_last_gpus_marked_stale() {
    let mut s = on_the_fleet();
    let mut next = fleet();
    next[0] = Host {
        gpus: Vec::new(),
        error: Some("http://box-a:5000/metrics: connection refused".into()),
        seen_ms: None,
        ..next[0].clone()
    };
    s.now_ms += 5_000;
    update(&mut s, Msg::Fleet(next));
    let f = s.gpus.fleet.as_ref().unwrap();
    let a = f.hosts.iter().find(|h| h.name == "box-a").unwrap();
    assert_eq!(a.gpus.len(), 2);
    assert_eq!(a.seen_ms, Some(NOW_MS - 1_000));
    let shown = screen(&s, 160, 20);
    assert!(
        shown.contains("stale: http://box-a:5000/metrics: connection"),
        "{shown}"
    );
    assert!(shown.contains("6s"), "box-a's data is 6 s old: {shown}");
}

#[test]
fn the_fleet_keys_are_in_the_keymap_and_the_help() {
    let s = on_the_fleet();
    let keys = |name: &str| {
        s.keymap
            .entries()
            .iter()
            .find(|(i, _)| i.name == name)
            .map(|(_, k)| k.iter().map(|k| k.to_string()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(keys("fleet_open"), ["enter"]);
    assert_eq!(keys("fleet_sort"), ["s"]);
    assert_eq!(keys("fleet_filter"), ["/"]);
    assert_eq!(keys("fleet_back"), ["esc"]);
    // The help overlay is drawn from the same entries.
    let mut s = s;
    update(&mut s, key("?"));
    let help = screen(&s, 220, 90);
    assert!(help.contains("Fleet (GPUs tab)"), "{help}");
    assert!(
        help.contains("Open the host: its GPU panels and processes"),
        "{help}"
    );
}

#[test]
fn a_process_on_another_host_shows_its_run_and_opens_it() {
    let mut s = common::state();
    update(&mut s, Msg::RunsLoaded(Ok(common::some_records(2))));
    let run = s.runs.records[0].run.clone();
    s.gpus.fleet = Some(FleetView::new(
        "scrape 4 targets".into(),
        Default::default(),
    ));
    update(&mut s, key("3"));
    let mut hosts = fleet();
    hosts[0].gpus[0].procs = vec![gantry::fleet::FleetProcess {
        pid: 4242,
        mem_used: Some(60 << 30),
        user: Some("ana".into()),
        command: Some("python train.py".into()),
        run_id: Some(run.id.clone()),
        run: Some(run.name.clone()),
    }];
    update(&mut s, Msg::Fleet(hosts));
    // The host table says who holds box-a.
    let table = screen(&s, 160, 20);
    assert!(table.contains(&run.name[..10]), "{table}");
    update(&mut s, key("down"));
    update(&mut s, key("enter"));
    let opened = screen(&s, 160, 40);
    assert!(
        opened.contains("4242") && opened.contains("ana"),
        "{opened}"
    );
    assert!(opened.contains(&run.name), "{opened}");
    // No signal to another host's process from here.
    update(&mut s, key("k"));
    assert!(s.modal.is_none());
    assert!(
        s.toast
            .as_deref()
            .unwrap_or_default()
            .contains("another host")
    );
    // Enter on the process opens its run (a team store holds every host's runs).
    update(&mut s, key("enter"));
    assert_eq!(s.tab, gantry::app::Tab::Runs);
    assert_eq!(s.runs.detail.as_deref(), Some(run.id.as_str()));
}

#[test]
fn an_opened_host_asks_for_its_history_once_and_puts_it_before_its_samples() {
    use gantry::app::Effect;
    let mut s = on_the_fleet();
    update(&mut s, key("down"));
    let out = update(&mut s, key("enter"));
    let asked: Vec<String> = out
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::FleetHistory(h) => Some(h.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(asked, ["box-a"]);
    // Back and in again: asked once.
    update(&mut s, key("esc"));
    let again = update(&mut s, key("enter"));
    assert!(
        !again
            .effects
            .iter()
            .any(|e| matches!(e, Effect::FleetHistory(_))),
        "{:?}",
        again.effects
    );
    // The live sample box-a has (util 91 and 0 in the recording), then the hour before it.
    let live: Vec<f64> = s.gpus.fleet.as_ref().unwrap().boxes["box-a"].history[0]
        .util
        .iter()
        .copied()
        .collect();
    assert_eq!(live.len(), 1);
    let first = s.gpus.fleet.as_ref().unwrap().boxes["box-a"]
        .first_ms
        .unwrap();
    let older: Vec<GpuSnapshot> = (0..5)
        .map(|i| {
            let mut snap = recording("a100-x2");
            // The newest is not older than the live sample: left out.
            snap.time_ms = first - 24_000 + i * 6_000;
            snap.gpus[0].util = Some(10 * i as u32);
            snap
        })
        .collect();
    update(&mut s, Msg::FleetHistory("box-a".into(), Ok(older)));
    let b = &s.gpus.fleet.as_ref().unwrap().boxes["box-a"];
    let util: Vec<f64> = b.history[0].util.iter().copied().collect();
    assert_eq!(util, [0.0, 10.0, 20.0, 30.0, live[0]]);
    assert_eq!(b.history[1].util.len(), 5);
    // Drawn whole across the chart, the hour before the live sample.
    let opened = screen(&s, 120, 30);
    assert!(opened.contains("box-a (esc: all hosts)"), "{opened}");
    insta::assert_snapshot!("fleet_host_with_history", opened);
    // A failed fetch says why and keeps what there is.
    update(
        &mut s,
        Msg::FleetHistory(
            "box-a".into(),
            Err("http://prom:9090: no answer in time".into()),
        ),
    );
    assert_eq!(
        s.toast.as_deref(),
        Some("no history for box-a: http://prom:9090: no answer in time")
    );
    assert_eq!(
        s.gpus.fleet.as_ref().unwrap().boxes["box-a"].history[0]
            .util
            .len(),
        5
    );
}

#[test]
fn an_opened_host_names_the_job_holding_each_gpu() {
    let mut s = on_the_fleet();
    // Rows: this box, box-a, box-b.
    update(&mut s, key("down"));
    update(&mut s, key("down"));
    update(&mut s, key("enter"));
    assert_eq!(
        s.gpus.fleet.as_ref().unwrap().open,
        Some(Opened::Host("box-b".into()))
    );
    let opened = screen(&s, 160, 60);
    let line = opened
        .lines()
        .find(|l| l.contains("job slurm 8812"))
        .unwrap_or_else(|| panic!("{opened}"));
    assert!(line.contains(" 3 H100"), "{line}");
    assert_eq!(opened.matches("job slurm").count(), 1, "{opened}");
}
