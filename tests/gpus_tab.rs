//! The GPUs tab, driven by the made-up recordings: snapshots with 1, 2 and 8 GPUs, without a
//! driver and at 80x24; process sort and run linkage; the kill dialog against a real child.

mod common;

use std::collections::HashMap;

use gantry::app::gpus::{GpuTick, ProcSort};
use gantry::app::{Effect, EffectRunner, GpuProbe, Modal, Msg, State, Tab, update};
use gantry::config::KeyChord;
use gantry::gpu::source::{GpuProcess, GpuSnapshot};

fn key(s: &str) -> Msg {
    Msg::Key(KeyChord::parse(s).unwrap())
}

fn recording(name: &str) -> GpuSnapshot {
    common::gpu_recording(name)
}

fn with(snap: GpuSnapshot, owners: HashMap<u32, (String, String)>) -> State {
    let mut s = common::state();
    update(&mut s, Msg::RunsLoaded(Ok(common::some_records(2))));
    update(&mut s, key("3"));
    let tick = GpuTick {
        snapshot: snap,
        owners,
        procs: HashMap::new(),
        host: Some((12.0, 8 << 30, 64 << 30)),
        source: "replay".into(),
    };
    // A few ticks, so the history chart has something to draw.
    for _ in 0..5 {
        update(&mut s, Msg::GpuSample(Box::new(tick.clone())));
    }
    s
}

/// A state with two runs, on the GPUs tab, and the first run (to own processes).
fn on_the_gpus_tab() -> (State, gantry::domain::Run) {
    let mut s = common::state();
    update(&mut s, Msg::RunsLoaded(Ok(common::some_records(2))));
    let run = s.runs.records[0].run.clone();
    update(&mut s, key("3"));
    (s, run)
}

use common::screen;

#[test]
fn snapshots_of_one_two_and_eight_gpus() {
    let one = with(recording("h200-x1"), HashMap::new());
    insta::assert_snapshot!("one_gpu", screen(&one, 120, 40));
    let two = with(recording("a100-x2"), HashMap::new());
    insta::assert_snapshot!("two_gpus", screen(&two, 120, 40));
    let eight = with(recording("h100-x8"), HashMap::new());
    let text = screen(&eight, 120, 40);
    assert!(text.contains(" 8 GPUs "), "eight GPUs are one line each");
    insta::assert_snapshot!("eight_gpus", text);
    insta::assert_snapshot!("narrow", screen(&eight, 80, 24));
}

#[test]
fn a_gpu_in_mig_mode_lists_its_instances() {
    use gantry::gpu::source::MigInstance;
    let mut snap = recording("h200-x1");
    let g = &mut snap.gpus[0];
    g.mig = Some(true);
    g.util = None;
    g.mig_instances = (0..3)
        .map(|i| MigInstance {
            index: i,
            name: "NVIDIA H200 2g.35gb".into(),
            uuid: format!("MIG-0000000{i}-made-up"),
            mem_used: Some((u64::from(i) + 1) << 30),
            mem_total: Some(35 << 30),
        })
        .collect();
    let s = with(snap.clone(), HashMap::new());
    let text = screen(&s, 120, 40);
    assert!(text.contains("MIG on (3 devices)"), "{text}");
    for i in 0..3 {
        assert!(text.contains(&format!("MIG {i}  H200 2g.35gb")), "{text}");
    }
    insta::assert_snapshot!("mig", text);
    // More devices than rows: the rest are counted.
    snap.gpus[0].mig_instances = (0..7)
        .map(|i| MigInstance {
            index: i,
            name: "NVIDIA H200 1g.18gb".into(),
            ..Default::default()
        })
        .collect();
    let text = screen(&with(snap, HashMap::new()), 120, 16);
    assert!(
        text.contains("more MIG devices (gantry gpu lists them all)"),
        "{text}"
    );
}

#[test]
fn wide_terminals_chart_two_metrics_per_gpu() {
    let mut two = with(recording("a100-x2"), HashMap::new());
    assert!(screen(&two, 120, 40).contains("chart: utilisation %"));
    let wide = screen(&two, 160, 40);
    assert!(wide.contains("charts: utilisation % | memory %"), "{wide}");
    insta::assert_snapshot!("two_gpus_wide", wide);
    update(&mut two, key("m"));
    assert!(screen(&two, 160, 40).contains("charts: memory % | power W"));
}

#[test]
fn without_a_driver_the_tab_says_why() {
    let mut s = common::state();
    update(&mut s, key("3"));
    update(
        &mut s,
        Msg::GpuProbed(GpuProbe::Absent(
            "no NVIDIA driver (libnvidia-ml.so.1 could not be loaded)".into(),
        )),
    );
    let text = screen(&s, 120, 40);
    assert!(
        text.contains("No GPU data: no NVIDIA driver") && text.contains("--gpu-replay"),
        "{text}"
    );
}

#[test]
fn processes_sort_and_jump_to_their_run() {
    let mut snap = recording("a100-x2");
    snap.processes = vec![
        GpuProcess {
            pid: 10,
            gpu: 1,
            mem_used: Some(5 << 30),
            sm_util: Some(90),
        },
        GpuProcess {
            pid: 20,
            gpu: 0,
            mem_used: Some(9 << 30),
            sm_util: Some(10),
        },
    ];
    let mut s = common::state();
    update(&mut s, Msg::RunsLoaded(Ok(common::some_records(2))));
    let run = s.runs.records[0].run.clone();
    let owners = HashMap::from([(10, (run.id.clone(), run.name.clone()))]);
    s = with(snap, owners);
    let pids = |s: &State| s.gpus.processes().iter().map(|p| p.pid).collect::<Vec<_>>();
    assert_eq!(s.gpus.sort, ProcSort::Memory);
    assert_eq!(pids(&s), [20, 10], "most GPU memory first");
    update(&mut s, key("s"));
    assert_eq!(pids(&s), [10, 20], "then by SM");
    assert!(screen(&s, 120, 40).contains(&format!("{} ({})", run.name, &run.id[..8])));
    update(&mut s, key("enter"));
    assert_eq!(s.tab, Tab::Runs);
    assert_eq!(s.runs.detail.as_deref(), Some(run.id.as_str()));
}

#[tokio::test]
async fn the_kill_dialog_asks_then_signals_a_real_process() {
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut snap = recording("h200-x1");
    snap.processes = vec![GpuProcess {
        pid,
        gpu: 0,
        mem_used: Some(1 << 30),
        sm_util: Some(5),
    }];
    let mut s = with(snap, HashMap::new());
    assert!(update(&mut s, key("k")).effects.is_empty());
    assert!(
        matches!(&s.modal, Some(Modal::Confirm { question, .. }) if question.starts_with("Send SIGTERM")),
        "asks first"
    );
    assert!(screen(&s, 120, 40).contains(&format!("Send SIGTERM to process {pid}? y/N")));
    assert!(update(&mut s, key("n")).effects.is_empty());
    assert!(child.try_wait().unwrap().is_none(), "n leaves it running");
    update(&mut s, key("k"));
    let fx = update(&mut s, key("y")).effects;
    assert_eq!(
        fx,
        vec![Effect::Kill {
            pid,
            signal: libc::SIGTERM
        }]
    );
    // Carried out by the real effect runner.
    let dir = tempfile::tempdir().unwrap();
    let store = gantry::store::Store::open(&dir.path().join("g.db"))
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let runner = EffectRunner::new(store, tx, dir.path().to_path_buf());
    runner.run(fx[0].clone());
    let note = match rx.recv().await {
        Some(Msg::Notice(n)) => n,
        other => panic!("{other:?}"),
    };
    assert_eq!(note, format!("sent SIGTERM to process {pid}"));
    let st = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGTERM));
    runner.run(Effect::Kill {
        pid,
        signal: libc::SIGKILL,
    });
    match rx.recv().await {
        Some(Msg::Notice(n)) => assert!(n.contains("already gone (ESRCH)"), "{n}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_process_filter_matches_pid_gpu_user_command_and_run() {
    use gantry::capture::procs::ProcInfo;
    let mut snap = recording("a100-x2");
    let proc = |pid, gpu| GpuProcess {
        pid,
        gpu,
        mem_used: Some(u64::from(pid) << 20),
        sm_util: Some(1),
    };
    snap.processes = vec![proc(10, 1), proc(20, 0), proc(30, 1)];
    let info = |user: &str, command: &str| ProcInfo {
        user: user.into(),
        command: command.into(),
        ..Default::default()
    };
    let (mut s, run) = on_the_gpus_tab();
    let tick = GpuTick {
        snapshot: snap,
        owners: HashMap::from([(10, (run.id.clone(), run.name.clone()))]),
        procs: HashMap::from([
            (10, info("bob", "python train.py --lr 3e-4")),
            (
                20,
                ProcInfo {
                    job: Some("slurm 4242".into()),
                    ..info("alice", "python eval.py")
                },
            ),
            (
                30,
                ProcInfo {
                    cpu: Some(153.4),
                    ..info("bob", "torchrun bench.py")
                },
            ),
        ]),
        host: None,
        source: "replay".into(),
    };
    update(&mut s, Msg::GpuSample(Box::new(tick)));
    let pids = |s: &State| s.gpus.processes().iter().map(|p| p.pid).collect::<Vec<_>>();
    assert_eq!(pids(&s), [30, 20, 10]);
    update(&mut s, key("/"));
    assert!(matches!(s.modal, Some(Modal::ProcFilter { .. })));
    for c in "BOB".chars() {
        update(&mut s, key(&c.to_string()));
    }
    assert_eq!(
        pids(&s),
        [30, 10],
        "a user, case-insensitively, as it is typed"
    );
    update(&mut s, key("space"));
    update(&mut s, key("g"));
    update(&mut s, key("p"));
    update(&mut s, key("u"));
    update(&mut s, key("1"));
    assert_eq!(pids(&s), [30, 10], "every word must match: bob and gpu1");
    let text = screen(&s, 120, 40);
    assert!(text.contains("Processes (2 of 3)"), "{text}");
    assert!(text.contains("153%"), "CPU % of the process: {text}");
    assert!(
        !text.contains("slurm 4242"),
        "alice's process is filtered out: {text}"
    );
    assert!(
        text.contains("filter processes"),
        "the prompt is open: {text}"
    );
    update(&mut s, key("enter"));
    assert_eq!(s.modal, None);
    assert_eq!(s.gpus.filter, "BOB gpu1");
    assert!(screen(&s, 120, 40).contains("filter: BOB gpu1"));
    // A part of the owning run's name; a pid; Esc brings back the filter from before.
    update(&mut s, key("/"));
    update(&mut s, key("ctrl-u"));
    for c in run.name.chars() {
        update(&mut s, key(&c.to_string()));
    }
    assert_eq!(pids(&s), [10], "the run's name finds its process");
    update(&mut s, key("esc"));
    assert_eq!(s.gpus.filter, "BOB gpu1", "esc restores the filter");
    update(&mut s, key("/"));
    update(&mut s, key("ctrl-u"));
    update(&mut s, key("2"));
    update(&mut s, key("0"));
    assert_eq!(pids(&s), [20], "a pid");
    update(&mut s, key("space"));
    for c in "slurm".chars() {
        update(&mut s, key(&c.to_string()));
    }
    assert_eq!(pids(&s), [20], "its batch job");
    update(&mut s, key("enter"));
    assert!(
        screen(&s, 120, 40).contains("slurm 4242"),
        "a process of no run shows its job in the run column"
    );
    update(&mut s, key("/"));
    update(&mut s, key("ctrl-u"));
    update(&mut s, key("enter"));
    assert_eq!(pids(&s), [30, 20, 10], "an empty filter shows all");
}

#[test]
fn the_tree_puts_processes_under_their_parents_and_launchers() {
    use gantry::capture::procs::ProcInfo;
    let mut snap = recording("a100-x2");
    let proc = |pid, mem: u64| GpuProcess {
        pid,
        gpu: 0,
        mem_used: Some(mem << 30),
        sm_util: Some(1),
    };
    // torchrun (100, no GPU) with workers 101 and 102; 103 a child of 101; 200 alone under a shell.
    snap.processes = vec![proc(101, 8), proc(102, 9), proc(103, 1), proc(200, 4)];
    let info = |ppid: u32, command: &str| ProcInfo {
        ppid,
        user: "bob".into(),
        command: command.into(),
        ..Default::default()
    };
    let (mut s, run) = on_the_gpus_tab();
    let tick = GpuTick {
        snapshot: snap,
        owners: HashMap::from([(101, (run.id.clone(), run.name.clone()))]),
        procs: HashMap::from([
            (100, info(1, "torchrun --nproc-per-node 2 train.py")),
            (101, info(100, "python train.py --rank 0")),
            (102, info(100, "python train.py --rank 1")),
            (103, info(101, "python dataloader")),
            (50, info(1, "bash")),
            (200, info(50, "python eval.py")),
        ]),
        host: None,
        source: "replay".into(),
    };
    update(&mut s, Msg::GpuSample(Box::new(tick)));
    let rows = |s: &State| {
        s.gpus
            .rows()
            .iter()
            .map(|r| (r.pid, r.prefix.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        rows(&s).iter().map(|r| r.0).collect::<Vec<_>>(),
        [102, 101, 200, 103],
        "flat: by GPU memory"
    );
    update(&mut s, key("t"));
    assert_eq!(
        rows(&s),
        [
            (100, "".into()),
            (102, "├─ ".into()),
            (101, "└─ ".into()),
            (103, "   └─ ".into()),
            (200, "".into()),
        ],
        "the launcher holds its workers; a lone process under a shell stays a root"
    );
    let text = screen(&s, 120, 40);
    assert!(
        text.contains("Processes (4) · by GPU memory · tree"),
        "{text}"
    );
    assert!(text.contains("└─ python train.py"), "{text}");
    assert!(text.contains("   └─ python dataloader"), "{text}");
    // The launcher row has no GPU figures, and the run of its workers.
    let launcher = text.lines().find(|l| l.contains("torchrun")).unwrap();
    assert!(launcher.contains(&run.name), "{launcher}");
    // A filter keeps a launcher while one of its processes shows.
    update(&mut s, key("/"));
    for c in "dataloader".chars() {
        update(&mut s, key(&c.to_string()));
    }
    update(&mut s, key("enter"));
    assert_eq!(
        rows(&s),
        [(103, "".into())],
        "103's parent is filtered out, so it is a root"
    );
    update(&mut s, key("/"));
    update(&mut s, key("ctrl-u"));
    update(&mut s, key("enter"));
    // Enter on the launcher opens the run of its workers; k asks about the launcher itself.
    update(&mut s, key("k"));
    assert!(
        matches!(&s.modal, Some(Modal::Confirm { question, .. }) if question.contains("process 100") && question.contains(&run.name)),
        "{:?}",
        s.modal
    );
    update(&mut s, key("n"));
    update(&mut s, key("enter"));
    assert_eq!(s.tab, Tab::Runs);
    assert_eq!(s.runs.detail.as_deref(), Some(run.id.as_str()));
}

#[test]
fn each_gpu_panel_names_its_newest_benchmark_and_a_drop() {
    use gantry::bench::{Kind, Precision, Spec, Stats};
    use gantry::store::StoredBench;
    let mut s = with(recording("a100-x2"), HashMap::new());
    let stored = |spec: Spec, median: f64, when: i64| StoredBench {
        id: format!("{when}-{}", spec.label()),
        started_ms: when,
        host: "gpu01".into(),
        backend: "cuda".into(),
        device: "NVIDIA A100-SXM4-80GB".into(),
        device_uuid: "GPU-a100-00-made-up".into(),
        driver: "580.95.05".into(),
        cuda: "13.0".into(),
        unit: spec.kind.unit(),
        spec,
        stats: Stats {
            median,
            min: median,
            max: median,
            stddev: 0.0,
            reps: 20,
        },
        peak: Some(312.0),
        pct_of_peak: Some(100.0 * median / 312.0),
        check_ok: Some(true),
        max_rel_err: None,
        // The newest ran hot: the panel says what held its clocks down.
        conditions: (median < 270.0).then(|| gantry::bench::Conditions {
            samples: 10,
            sm_clock_mhz: Some(1245),
            throttle: vec!["sw thermal".into()],
            ..Default::default()
        }),
    };
    let day = 86_400_000;
    let mut h = Vec::new();
    for (i, m) in [281.0, 283.0, 280.0, 259.0].iter().enumerate() {
        let when = common::NOW_MS - (4 - i as i64) * day;
        h.push(stored(
            Spec::gemm(Precision::Bf16, 8192, "cublas"),
            *m,
            when,
        ));
        h.push(stored(
            Spec::gemm(Precision::Bf16, 4096, "cublas"),
            250.0,
            when,
        ));
        h.push(stored(Spec::other(Kind::Launch, 1000, "events"), 2.3, when));
    }
    let out = update(&mut s, Msg::BenchHistory(Ok(h)));
    assert!(out.redraw);
    let text = screen(&s, 140, 40);
    assert!(
        text.contains(
            "bench 1d ago: gemm bf16 8192 259 TFLOP/s · 83% of peak ▼ 7.8% below median (sw thermal)"
        ),
        "{text}"
    );
    // GPU 1 has no benchmark: its panel says nothing of one.
    assert_eq!(text.matches("bench 1d ago").count(), 1);
}

#[test]
fn the_gpus_tab_asks_for_the_benchmark_history_once() {
    let mut s = common::state();
    let out = update(&mut s, key("3"));
    assert!(out.effects.contains(&Effect::LoadBenchHistory));
    assert!(
        !out.effects
            .iter()
            .any(|e| matches!(e, Effect::ProbeCuda { .. })),
        "CUDA is the Bench tab's business"
    );
    let again = update(&mut s, key("1"));
    assert!(!again.effects.contains(&Effect::LoadBenchHistory));
}
