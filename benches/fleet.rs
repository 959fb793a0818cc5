//! The fleet at 64 hosts × 8 GPUs (512 GPUs), measured side by side in one run:
//! - through a real Prometheus server scraping 64 exporters: one refresh's CPU (target ≤ 50 ms)
//!   and wall time;
//! - scraping the 64 exporters directly: one refresh's wall time (target: within a 1 s refresh);
//! - a frame of the fleet's host table (target ≤ 10 ms);
//! - the workbench's CPU on the fleet view, whole process in a pty (target < 1% of a core).
//!
//! The exporters are one server on 64 loopback ports, each page `gantry serve`'s gauges for 8
//! GPUs of one host. `cargo bench --bench fleet`; under `cargo test --benches` a small smoke run.
//! Needs `prometheus` on PATH (else the Prometheus half says why and is skipped).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use gantry::app::{Drawer, Msg, State, update};
use gantry::config::{ColorMode, Config, KeyChord, Theme};
use gantry::fleet::{prometheus, scrape};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

#[path = "../tests/common/pty.rs"]
#[allow(dead_code)]
mod pty;

/// A gauge's value on host h, GPU g.
type Value = fn(usize, usize) -> f64;

/// `gantry serve`'s GPU gauges for 8 GPUs of host `h`.
fn page(h: usize) -> String {
    let mut out = String::new();
    let gauges: [(&str, Value); 9] = [
        ("gantry_gpu_utilization_percent", |h, g| {
            ((h * 7 + g * 13) % 101) as f64
        }),
        ("gantry_gpu_memory_utilization_percent", |h, g| {
            ((h + g * 5) % 60) as f64
        }),
        ("gantry_gpu_memory_used_bytes", |h, g| {
            ((h + g) % 80) as f64 * 1e9
        }),
        ("gantry_gpu_memory_total_bytes", |_, _| 85_899_345_920.0),
        ("gantry_gpu_temperature_celsius", |h, g| {
            (35 + (h + g) % 50) as f64
        }),
        ("gantry_gpu_power_watts", |h, g| {
            80.0 + ((h * 3 + g) % 600) as f64
        }),
        ("gantry_gpu_power_limit_watts", |_, _| 700.0),
        ("gantry_gpu_sm_clock_hertz", |h, _| {
            (1200 + h % 780) as f64 * 1e6
        }),
        ("gantry_gpu_processes", |h, g| ((h + g) % 3) as f64),
    ];
    for (name, value) in gauges {
        out.push_str(&format!("# TYPE {name} gauge\n"));
        for g in 0..8 {
            out.push_str(&format!(
                "{name}{{gpu=\"{g}\",uuid=\"GPU-{h:03}-{g}\",name=\"NVIDIA H100 80GB HBM3\",Hostname=\"host{h:02}\"}} {}\n",
                value(h, g)
            ));
        }
    }
    out
}

/// 64 exporters on loopback ports, each serving its host's page until the process ends.
fn exporters(n: usize) -> Vec<String> {
    (0..n)
        .map(|h| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap().to_string();
            let body = page(h);
            std::thread::spawn(move || {
                for mut c in l.incoming().flatten() {
                    let mut buf = [0u8; 2048];
                    let _ = c.read(&mut buf);
                    let _ = write!(
                        c,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            });
            addr
        })
        .collect()
}

/// CPU time of the calling thread (a Prometheus read runs on it alone; the exporters' threads
/// serving Prometheus's scrapes meanwhile are not counted).
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

struct Prom(std::process::Child);

impl Drop for Prom {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let quick = common::quick();
    let (hosts, reps) = if quick { (4, 3) } else { (64, 20) };
    let targets = exporters(hosts);
    let dir = tempfile::tempdir().unwrap();

    // Scraping the exporters directly (a thread a target: wall time only).
    let mut wall = Vec::new();
    let mut read = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        read = scrape::read(&targets, None, Duration::from_secs(5), 0);
        wall.push(t.elapsed().as_secs_f64() * 1e3);
    }
    assert_eq!(read.iter().map(|h| h.gpus.len()).sum::<usize>(), hosts * 8);
    let (m, lo, hi) = common::median(wall);
    println!(
        "scrape   {hosts} exporters x 8 GPUs, one refresh: median {m:.1} ms wall (min {lo:.1}, max {hi:.1})"
    );

    // A frame of the host table.
    let (keymap, _) = gantry::app::Keymap::build(&Config::defaults());
    let mut state = State::new(
        keymap,
        Theme::load("default-dark", ColorMode::TrueColor, None).0,
    );
    state.size = (160, 50);
    state.gpus.fleet = Some(gantry::app::fleet::FleetView::new(
        "bench".into(),
        Default::default(),
    ));
    update(&mut state, Msg::Key(KeyChord::parse("3").unwrap()));
    update(&mut state, Msg::Fleet(read.clone()));
    let mut term = Terminal::new(TestBackend::new(160, 50)).unwrap();
    let mut frames = Vec::new();
    for i in 0..reps * 5 {
        let t = Instant::now();
        update(
            &mut state,
            Msg::Key(KeyChord::parse(if i % 2 == 0 { "down" } else { "up" }).unwrap()),
        );
        Drawer::draw(&mut term, &state).unwrap();
        frames.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (m, lo, hi) = common::median(frames);
    println!(
        "frame    the host table of {hosts} hosts, keypress to frame: median {m:.2} ms (min {lo:.2}, max {hi:.2})"
    );
    let mut reads = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        update(&mut state, Msg::Fleet(read.clone()));
        reads.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (m, _, hi) = common::median(reads);
    println!("update   a read of {hosts} hosts into the view: median {m:.2} ms (max {hi:.2})");

    // Through Prometheus.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: gpus\n    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        ),
    )
    .unwrap();
    let child = std::process::Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(child) = child else {
        return common::skip("no prometheus on PATH: the Prometheus half is not measured");
    };
    let _prom = Prom(child);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = prometheus::read(&url, &prometheus::Auth::None, Duration::from_secs(5));
        if r.as_ref()
            .is_ok_and(|h| h.iter().map(|h| h.gpus.len()).sum::<usize>() == hosts * 8)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never had every GPU: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let (t, c) = (Instant::now(), thread_cpu_ms());
        let r = prometheus::read(&url, &prometheus::Auth::None, Duration::from_secs(5)).unwrap();
        cpu.push(thread_cpu_ms() - c);
        wall.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(r.len(), hosts);
    }
    let (m, lo, hi) = common::median(wall);
    let (c, clo, chi) = common::median(cpu);
    println!(
        "prom     {hosts} hosts x 8 GPUs through Prometheus, one refresh: {c:.1} ms CPU (min {clo:.1}, max {chi:.1}); median {m:.1} ms wall (min {lo:.1}, max {hi:.1})"
    );

    // The workbench on the fleet view, whole process.
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join("config/gantry")).unwrap();
    std::fs::write(
        home.join("config/gantry/config.toml"),
        format!("[fleet]\nprometheus = \"{url}\"\n"),
    )
    .unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("init")
        .arg(&ws)
        .output()
        .unwrap();
    assert!(st.status.success());
    let mut s = pty::Session::start_sized(&home, &["--workspace", ws.to_str().unwrap()], 50, 160);
    s.send("3");
    s.wait_text(&format!("fleet: {hosts} hosts"));
    let pid = s.child.process_id().unwrap();
    let cpu_s = || common::proc_cpu_seconds(pid);
    let secs = if quick { 2.0 } else { 30.0 };
    let c0 = cpu_s();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let c1 = cpu_s();
    println!(
        "idle     the workbench on the fleet view of {hosts} hosts (Prometheus, read every 5 s): {:.3} s CPU over {secs} s = {:.2}% of one core",
        c1 - c0,
        (c1 - c0) / secs * 100.0
    );
    s.send("q");
    let _ = s.wait_exit();
}
