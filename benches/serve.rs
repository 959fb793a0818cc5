//! The mlflow client's logging throughput against three servers, side by side in one run:
//! `gantry serve`, `mlflow server` (its SQLite store) and a stub that only answers `{}`, the
//! client's own limit. Rounds alternate between the servers; medians are reported, with gantry's
//! share of the stub's throughput (target: at least 80% for log_batch).
//!
//! `GANTRY_BENCH_SERVE_MODES=batch,single,search` measures only those.
//! `GANTRY_BENCH_SERVE_STORE=postgres` puts both real servers on PostgreSQL (each its own fresh
//! database on the test server, tests/common/postgres.rs; `mlflow server` through psycopg 3,
//! `pip install 'psycopg[binary]'` in target/bench-venv), and adds a filtered, ordered
//! search_runs over 100 runs.
//!
//! Needs Python: the mlflow client from target/interop-venv (made by the tests) or
//! target/bench-venv, and `mlflow server` from target/bench-venv (`python3 -m venv
//! target/bench-venv && target/bench-venv/bin/pip install mlflow==3.17.2`). A server whose Python
//! is missing is skipped with a line saying so.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let _ = self.0.wait();
    }
}

fn python_with(module: &str) -> Option<PathBuf> {
    ["target/bench-venv", "target/interop-venv"]
        .iter()
        .map(|v| Path::new(ROOT).join(v).join("bin/python"))
        .find(|py| {
            Command::new(py)
                .args(["-c", &format!("import {module}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_healthy(url: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if ureq::get(format!("{url}/health")).call().is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// A server that answers `{}` to everything, on a thread of its own.
fn stub() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new().fallback(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    "{}",
                )
            });
            axum::serve(l, app).await.unwrap();
        });
    });
    format!("http://{addr}")
}

fn gantry_serve(ws: &Path) -> (Proc, String) {
    let bin = env!("CARGO_BIN_EXE_gantry");
    std::fs::create_dir_all(ws).unwrap();
    assert!(
        Command::new(bin)
            .arg("--workspace")
            .arg(ws)
            .arg("init")
            .output()
            .unwrap()
            .status
            .success()
    );
    if on_postgres() {
        let url = common::postgres::fresh_db().expect("a PostgreSQL server");
        std::fs::write(
            ws.join(".gantry/config.toml"),
            format!("store = \"{url}\"\n"),
        )
        .unwrap();
    }
    let mut child = Command::new(bin)
        .arg("--workspace")
        .arg(ws)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    (Proc(child), url)
}

fn mlflow_server(dir: &Path) -> Option<(Proc, String)> {
    let mlflow = Path::new(ROOT).join("target/bench-venv/bin/mlflow");
    if !mlflow.exists() {
        eprintln!(
            "skipped mlflow server: target/bench-venv has no mlflow (see the top of benches/serve.rs)"
        );
        return None;
    }
    let port = free_port();
    let child = Command::new(mlflow)
        .args([
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--workers",
            "1",
        ])
        .arg("--backend-store-uri")
        .arg(if on_postgres() {
            let url = common::postgres::fresh_db().expect("a PostgreSQL server");
            url.replacen("postgres://", "postgresql+psycopg://", 1)
        } else {
            format!("sqlite:///{}", dir.join("mlflow.db").display())
        })
        .arg("--default-artifact-root")
        .arg(dir.join("artifacts"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let url = format!("http://127.0.0.1:{port}");
    let p = Proc(child);
    if !wait_healthy(&url) {
        eprintln!("skipped mlflow server: it did not answer /health within 120 s");
        return None;
    }
    Some((p, url))
}

/// Whether the real servers keep their runs in PostgreSQL (`GANTRY_BENCH_SERVE_STORE=postgres`).
fn on_postgres() -> bool {
    std::env::var("GANTRY_BENCH_SERVE_STORE").as_deref() == Ok("postgres")
}

/// One timed client run: points (or searches) per second.
fn client(py: &Path, url: &str, mode: &str, n: usize, create: bool) -> f64 {
    let out = Command::new(py)
        .arg(Path::new(ROOT).join("benches/serve_client.py"))
        .args([
            url,
            mode,
            &n.to_string(),
            if create { "create" } else { "nocreate" },
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "client against {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The client may print its own lines (links to the run) before ours, the last.
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or("")).unwrap();
    v["pps"].as_f64().unwrap()
}

fn main() {
    let quick = common::quick();
    let Some(py) = python_with("mlflow") else {
        eprintln!(
            "serve bench skipped: no Python with the mlflow client in target/interop-venv or target/bench-venv"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let stub_url = stub();
    let (_g, gantry_url) = gantry_serve(&dir.path().join("ws"));
    let ml = if quick {
        None
    } else {
        mlflow_server(dir.path())
    };
    let rounds = if quick { 1 } else { 5 };
    let mut servers: Vec<(&str, String, bool)> = vec![
        ("stub ({} only)", stub_url, false),
        ("gantry serve", gantry_url, true),
    ];
    if let Some((_, url)) = &ml {
        servers.push((
            if on_postgres() {
                "mlflow server (Postgres)"
            } else {
                "mlflow server (SQLite)"
            },
            url.clone(),
            true,
        ));
    }
    let mut modes = vec![
        (
            "batch",
            "log_batch, 1,000 points a call: points/s",
            if quick { 2 } else { 40 },
            6,
        ),
        (
            "single",
            "log_metric, 1 point a call: points/s",
            if quick { 20 } else { 1000 },
            200,
        ),
    ];
    if on_postgres() {
        modes.push((
            "search",
            "search_runs with a filter and an order over 100 runs: searches/s",
            if quick { 3 } else { 50 },
            if quick { 3 } else { 50 },
        ));
    }
    for (mode, what, n_fast, n_slow) in modes {
        let search = mode == "search";
        if std::env::var("GANTRY_BENCH_SERVE_MODES").is_ok_and(|m| !m.split(',').any(|x| x == mode))
        {
            continue;
        }
        let mut results: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
        for _ in 0..rounds {
            for (i, (name, url, create)) in servers.iter().enumerate() {
                let n = if name.starts_with("mlflow") {
                    n_slow
                } else {
                    n_fast
                };
                results[i].push(client(&py, url, mode, n, *create));
            }
        }
        println!("mlflow client {what}, median of {rounds} (min-max)");
        let mut stub_median = 0.0;
        for (i, (name, _, _)) in servers.iter().enumerate() {
            let (med, lo, hi) = common::median(results[i].clone());
            if i == 0 {
                stub_median = med;
            }
            let share = if search {
                format!("{:.1} ms a search", 1e3 / med)
            } else {
                format!("{:>5.1}% of the stub", 100.0 * med / stub_median)
            };
            let share = if search && i > 0 {
                format!(
                    "{share}, {:.1} ms past the client's own",
                    1e3 / med - 1e3 / stub_median
                )
            } else {
                share
            };
            println!("  {name:<24} {med:>10.0}  ({lo:.0}-{hi:.0})  {share}");
        }
    }
    drop(ml);
}
