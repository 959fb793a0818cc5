//! The fleet sources against real servers: three `gantry serve --gpu-replay` boxes on loopback
//! ports, read straight from their `/metrics` and through a real Prometheus server scraping them,
//! every value checked against the recordings; dcgm-exporter's output as NVIDIA documents it; a
//! source that hangs or answers garbage; `gantry gpu --fleet` and `--free` through the binary.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::serve::Server;
use gantry::domain::{GpuSample, GpuSnapshot};
use gantry::fleet::{FleetGpu, FleetProcess, Host, prometheus, scrape};

/// Three boxes, each a one-frame recording (so what is served never moves) taken from a
/// fixture: box-a with two A100s, box-b with eight H100s, box-c with one idle H200.
fn boxes(dir: &Path) -> Vec<(String, GpuSnapshot)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gpu");
    [
        ("box-a", "a100-x2.made-up.jsonl"),
        ("box-b", "h100-x8.made-up.jsonl"),
        ("box-c", "h200-x1.made-up.jsonl"),
    ]
    .iter()
    .map(|(name, file)| {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let mut snap: GpuSnapshot = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        if *name == "box-c" {
            // Idle, nothing on it: a free GPU.
            snap.processes.clear();
            for g in &mut snap.gpus {
                g.util = Some(0);
                g.mem_used = Some(300 << 20);
            }
        }
        if *name == "box-a" {
            snap.gpus[1].throttle = vec!["idle".into(), "sw thermal".into()];
        }
        let path = dir.join(format!("{name}.jsonl"));
        std::fs::write(&path, serde_json::to_string(&snap).unwrap() + "\n").unwrap();
        (name.to_string(), snap)
    })
    .collect()
}

fn serve_boxes(dir: &Path, boxes: &[(String, GpuSnapshot)]) -> Vec<Server> {
    boxes
        .iter()
        .map(|(name, _)| {
            let ws = dir.join(format!("ws-{name}"));
            std::fs::create_dir_all(&ws).unwrap();
            let init = Command::new(env!("CARGO_BIN_EXE_gantry"))
                .arg("init")
                .arg(&ws)
                .output()
                .unwrap();
            assert!(init.status.success(), "{init:?}");
            let replay = dir.join(format!("{name}.jsonl"));
            Server::start_with_env(
                &ws,
                &["--gpu-replay", replay.to_str().unwrap()],
                &["--gpu-interval", "0.2"],
                &[("GANTRY_HOST", name.as_str())],
            )
        })
        .collect()
}

/// What a fleet source can know of a GPU the box recorded: the readings `gantry serve` exports,
/// the others left empty; throttling without "idle".
fn expected(snap: &GpuSnapshot) -> Vec<FleetGpu> {
    snap.gpus
        .iter()
        .map(|g| FleetGpu {
            sample: GpuSample {
                index: g.index,
                name: g.name.clone(),
                uuid: g.uuid.clone(),
                bus_id: g.bus_id.clone(),
                util: g.util,
                mem_util: g.mem_util,
                mem_used: g.mem_used,
                mem_total: g.mem_total,
                temp: g.temp,
                power: g.power,
                power_limit: g.power_limit,
                sm_clock: g.sm_clock,
                sm_clock_max: g.sm_clock_max,
                mem_clock: g.mem_clock,
                fan: g.fan,
                pcie_rx: g.pcie_rx,
                pcie_tx: g.pcie_tx,
                throttle: g
                    .throttle
                    .iter()
                    .filter(|t| *t != "idle")
                    .cloned()
                    .collect(),
                ecc_uncorrected: g.ecc_uncorrected,
                ..GpuSample::default()
            },
            processes: Some(snap.processes.iter().filter(|p| p.gpu == g.index).count() as u32),
            job: None,
            xid: None,
            driver: snap.driver.clone(),
            cuda: snap.cuda.clone(),
            // The recording's pids, with their memory; no run owns them (user and command come
            // from this machine's /proc, where a recorded pid may be anybody's: left out).
            procs: {
                let mut v: Vec<FleetProcess> = snap
                    .processes
                    .iter()
                    .filter(|p| p.gpu == g.index)
                    .map(|p| FleetProcess {
                        pid: p.pid,
                        mem_used: Some(p.mem_used.unwrap_or(0)),
                        ..FleetProcess::default()
                    })
                    .collect();
                v.sort_by_key(|p| p.pid);
                v
            },
        })
        .collect()
}

fn check(hosts: &[Host], boxes: &[(String, GpuSnapshot)], how: &str) {
    for (name, snap) in boxes {
        let h = hosts
            .iter()
            .find(|h| &h.name == name)
            .unwrap_or_else(|| panic!("{how}: no host {name} in {hosts:#?}"));
        assert_eq!(h.error, None, "{how}: {name}");
        let mut read = h.gpus.clone();
        for p in read.iter_mut().flat_map(|g| g.procs.iter_mut()) {
            (p.user, p.command) = (None, None);
        }
        assert_eq!(read, expected(snap), "{how}: {name}'s GPUs");
        assert!(h.seen_ms.is_some(), "{how}: {name} has no time");
    }
}

fn now_ms() -> i64 {
    gantry::domain::now_ms()
}

#[test]
fn scraping_three_boxes_reads_every_value_they_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let boxes = boxes(dir.path());
    let servers = serve_boxes(dir.path(), &boxes);
    let targets: Vec<String> = servers
        .iter()
        .map(|s| s.url.trim_start_matches("http://").to_string())
        .collect();
    // The sampler takes its first snapshot just after the server starts.
    let deadline = Instant::now() + Duration::from_secs(20);
    let hosts = loop {
        let hosts = scrape::read(&targets, None, Duration::from_secs(5), now_ms());
        if hosts.iter().filter(|h| !h.gpus.is_empty()).count() == 3 || Instant::now() > deadline {
            break hosts;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    check(&hosts, &boxes, "scrape");
    assert_eq!(
        hosts[0].gpus[1].sample.throttle,
        vec!["sw thermal".to_string()]
    );
}

/// A Prometheus server on a free port, scraping `targets` every second.
struct Prom {
    child: Child,
    url: String,
}

impl Drop for Prom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_prometheus(dir: &Path, targets: &[String]) -> Option<Prom> {
    let bin = std::env::var("GANTRY_TEST_PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
    let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: gpus\n    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(&bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        Ok(child) => Some(Prom {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }),
        Err(e) => {
            common::skip(&format!(
                "no Prometheus server to run ({bin}: {e}); apt-get install prometheus"
            ));
            None
        }
    }
}

#[test]
fn prometheus_reads_every_value_and_names_a_box_it_cannot_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let boxes = boxes(dir.path());
    let servers = serve_boxes(dir.path(), &boxes);
    let mut targets: Vec<String> = servers
        .iter()
        .map(|s| s.url.trim_start_matches("http://").to_string())
        .collect();
    // A fourth target that takes connections and never answers (held for the whole test, so no
    // other process can take its port).
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = held.local_addr().unwrap().to_string();
    targets.push(gone.clone());
    let Some(prom) = start_prometheus(dir.path(), &targets) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let hosts = loop {
        let read = prometheus::read(&prom.url, &prometheus::Auth::None, Duration::from_secs(5));
        if let Ok(hosts) = &read
            && hosts.iter().filter(|h| !h.gpus.is_empty()).count() == 3
            && hosts.iter().any(|h| h.name == gone)
        {
            break hosts.clone();
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never had the three boxes: {read:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    check(&hosts, &boxes, "prometheus");
    // Each host's history, one range query: every point its recording's readings.
    let sources = gantry::fleet::Sources::new(
        Some((prom.url.clone(), prometheus::Auth::None)),
        Vec::new(),
        None,
        None,
        Duration::from_secs(5),
    );
    for (name, snap) in &boxes {
        let h = hosts.iter().find(|h| &h.name == name).unwrap();
        assert!(sources.has_history(h));
        let past = sources.history(h, now_ms()).unwrap();
        assert!(!past.is_empty(), "{name}: no history");
        for p in &past {
            let read: Vec<_> = p
                .gpus
                .iter()
                .map(|g| (g.index, g.util, g.mem_used, g.mem_total, g.power, g.temp))
                .collect();
            let want: Vec<_> = snap
                .gpus
                .iter()
                .map(|g| (g.index, g.util, g.mem_used, g.mem_total, g.power, g.temp))
                .collect();
            assert_eq!(read, want, "{name} at {}", p.time_ms);
        }
    }
    let down = hosts.iter().find(|h| h.name == gone).unwrap();
    assert!(!sources.has_history(&Host {
        source: "gpu01:9400".into(),
        ..down.clone()
    }));
    let why = down.error.as_deref().unwrap();
    assert!(why.starts_with("Prometheus cannot scrape it: "), "{why}");
    assert!(down.gpus.is_empty());
    // A wrong address is an error that names it, not a hang.
    let none = format!("http://127.0.0.1:{}", free_port());
    let err = prometheus::read(&none, &prometheus::Auth::None, Duration::from_secs(2)).unwrap_err();
    assert!(err.contains(&none), "{err}");
}

/// A server that accepts and never answers, and one that answers garbage.
fn bad_servers() -> (String, String) {
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage = TcpListener::bind("127.0.0.1:0").unwrap();
    let (h, g) = (
        hang.local_addr().unwrap().to_string(),
        garbage.local_addr().unwrap().to_string(),
    );
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in hang.incoming().flatten() {
            held.push(c);
        }
    });
    std::thread::spawn(move || {
        for mut c in garbage.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let body = "<html>\u{1b}[31mnot metrics{{{\n";
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (h, g)
}

#[test]
fn a_source_that_hangs_or_answers_garbage_is_a_stale_host_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let boxes = boxes(dir.path());
    let servers = serve_boxes(dir.path(), &boxes[..1]);
    let good = servers[0].url.trim_start_matches("http://").to_string();
    let (hang, garbage) = bad_servers();
    let targets = vec![good, hang.clone(), garbage.clone()];
    let deadline = Instant::now() + Duration::from_secs(20);
    let hosts = loop {
        let hosts = scrape::read(&targets, None, Duration::from_secs(1), now_ms());
        if hosts.iter().any(|h| !h.gpus.is_empty()) || Instant::now() > deadline {
            break hosts;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    check(&hosts, &boxes[..1], "scrape beside bad sources");
    let by = |n: &str| hosts.iter().find(|h| h.name == n).unwrap();
    assert!(
        by(&hang)
            .error
            .as_deref()
            .unwrap()
            .contains("no answer in time")
    );
    assert!(
        by(&garbage)
            .error
            .as_deref()
            .unwrap()
            .contains("not a metrics page")
    );
    // Through the binary: the bad sources are named, escaped, and the good box is listed.
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["gpu", "--fleet", "--timeout", "1"])
        .args(targets.iter().flat_map(|t| ["--scrape", t.as_str()]))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("box-a") && text.contains("A100-SXM4-80GB"),
        "{text}"
    );
    assert!(
        text.contains("stale: ") && !text.contains('\u{1b}'),
        "{text}"
    );
}

#[test]
fn dcgm_exporter_output_as_nvidia_documents_it_is_read() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fleet/dcgm-exporter-docs.prom"),
    )
    .unwrap();
    let e = gantry::interop::promtext::parse(&text);
    assert!(e.problems.is_empty(), "{:?}", e.problems);
    let hosts = gantry::fleet::hosts_from_samples(&e.samples, "fallback");
    assert_eq!(hosts.keys().collect::<Vec<_>>(), ["ub20-a100-k8s"]);
    let gpus = &hosts["ub20-a100-k8s"];
    // The MIG instance's samples stay with their parent: one GPU.
    assert_eq!(gpus.len(), 1);
    let g = &gpus[0];
    assert_eq!(g.sample.uuid, "GPU-34319582-d595-d1c7-d1d2-179bcfa61660");
    assert_eq!(g.sample.sm_clock, Some(1215));
    assert_eq!(g.sample.mem_clock, Some(1215));
    assert_eq!(g.sample.temp, Some(61));
    assert_eq!(g.sample.power, Some(409.692));
    assert_eq!(g.sample.mem_used, Some(4845 << 20));
    assert_eq!(g.sample.mem_total, Some((4845 + 35690) << 20));
    assert_eq!(g.xid, Some(0));
    assert_eq!(g.processes, None);
    // No utilisation in that output: not known to be free.
    assert!(!g.is_free(&Default::default()));
}

#[test]
fn free_gpus_across_the_fleet_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let boxes = boxes(dir.path());
    let servers = serve_boxes(dir.path(), &boxes);
    let mut args: Vec<String> = vec!["gpu".into(), "--free".into(), "--json".into()];
    for s in &servers {
        args.push("--scrape".into());
        args.push(s.url.trim_start_matches("http://").to_string());
    }
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gantry"))
            .args(&args)
            .args(extra)
            .output()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let out = loop {
        let out = run(&[]);
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let free: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Only box-c's idle H200 is free; the A100s and H100s are busy.
    let h200 = &boxes[2].1.gpus[0];
    assert_eq!(
        free,
        serde_json::json!([{
            "host": "box-c", "index": 0, "uuid": h200.uuid, "name": h200.name,
            "mem_free": h200.mem_total.unwrap() - (300 << 20), "mem_total": h200.mem_total,
        }])
    );
    // Two asked for, one free: exit 1 and say so.
    let out = run(&["--count", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 free GPU of the 2 asked for"));
    // More memory than any has free: none.
    let out = run(&["--min-mem", "100000G"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    // No source at all: a clear error.
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["gpu", "--fleet"])
        .env("XDG_CONFIG_HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no fleet to read"));
}
