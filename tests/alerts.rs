//! Alerts under `gantry run`, the real binary: a NaN, a divergence and a stall each raised by a
//! fixture script and cleared when it ends, a hook command receiving the alert as JSON, a webhook
//! reaching a local HTTP server, and a webhook that never answers not holding the run up.

use std::io::{Read, Write};
use std::net::TcpListener;
mod common;

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// Three steps, then a NaN loss, a loss four times its best, and a 2-second pause; then more.
const SCRIPT: &str = r#"
import json, os, time
m = open(os.environ["GANTRY_METRICS"], "a")
def log(step, loss):
    m.write(json.dumps({"step": step, "loss": loss}) + "\n"); m.flush()
for step, loss in enumerate([1.0, 0.5, 0.4]):
    log(step, loss); time.sleep(0.3)
m.write('{"step": 3, "loss": NaN}\n'); m.flush(); time.sleep(0.8)
log(4, 1.6); time.sleep(0.8)
time.sleep(2.0)
for step in range(5, 10):
    log(step, 0.3); time.sleep(0.3)
"#;

use common::gantry_in as gantry;

fn workspace() -> tempfile::TempDir {
    let dir = common::initialized();
    std::fs::write(dir.path().join("train.py"), SCRIPT).unwrap();
    dir
}

fn run(ws: &Path, name: &str, alerts: &[&str]) -> std::process::Output {
    let mut c = gantry(ws);
    c.args(["run", "-n", name, "--sample-every", "0.25"]);
    for a in alerts {
        c.args(["--alert", a]);
    }
    c.args(["--", "python3", "train.py"]).output().unwrap()
}

fn show(ws: &Path, name: &str) -> Value {
    let out = gantry(ws).args(["show", "--json", name]).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn nan_divergence_and_stall_are_raised_once_cleared_and_sent_to_the_hook() {
    let ws = workspace();
    let out = run(
        ws.path(),
        "t",
        &["stall_minutes=0.02", "on_alert=cat >> hook.jsonl"],
    );
    assert!(out.status.success(), "{out:?}");
    let v = show(ws.path(), "t");
    let alerts = v["alerts"].as_array().unwrap();
    let of = |kind: &str| {
        alerts
            .iter()
            .find(|a| a["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} alert in {alerts:?}"))
    };
    assert_eq!(of("nan")["message"], "loss is not a number at step 3");
    assert!(
        !of("nan")["cleared_ms"].is_null(),
        "cleared once no NaN came"
    );
    assert!(
        of("divergence")["message"]
            .as_str()
            .unwrap()
            .starts_with("loss is 1.6000, 4.0× its best 0.4000"),
        "{alerts:?}"
    );
    assert!(
        of("stall")["message"]
            .as_str()
            .unwrap()
            .starts_with("no new step for")
    );
    assert!(!of("stall")["cleared_ms"].is_null(), "steps came again");
    // Every change went to the hook as one JSON line: raised, then cleared.
    let text = std::fs::read_to_string(ws.path().join("hook.jsonl")).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let nan: Vec<&Value> = lines.iter().filter(|l| l["alert"] == "nan").collect();
    assert_eq!(nan.len(), 2, "{text}");
    assert_eq!(nan[0]["state"], "raised");
    assert_eq!(nan[1]["state"], "cleared");
    assert_eq!(nan[0]["run"], "t");
    // The filter finds runs by their alerts; `show` prints them.
    let listed = gantry(ws.path())
        .args(["runs", "--json", "--filter", "alert:nan"])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let text = gantry(ws.path()).args(["show", "t"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("alert    nan (cleared): loss is not a number at step 3"),
        "{text}"
    );
    let bad = gantry(ws.path())
        .args(["runs", "--filter", "alert:nope"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown alert `nope`"));
}

#[test]
fn alerts_can_be_turned_off_and_a_typo_is_an_error_before_the_run() {
    let ws = workspace();
    let out = run(
        ws.path(),
        "quiet",
        &[
            "nan=off",
            "divergence=off",
            "stall_minutes=off",
            "throughput_drop=off",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(show(ws.path(), "quiet")["alerts"], serde_json::json!([]));
    let out = run(ws.path(), "typo", &["stal_minutes=1"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown alert setting `stal_minutes`"));
}

#[test]
fn a_webhook_gets_the_alert_and_one_that_never_answers_holds_nothing_up() {
    let ws = workspace();
    // A server that answers 200 and hands over each body.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = vec![0u8; 65536];
            let mut got = Vec::new();
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            while let Ok(n) = c.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some(i) = text.find("\r\n\r\n")
                    && let Some(len) = text[..i].lines().find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    && got.len() >= i + 4 + len
                {
                    let _ = tx.send(text[i + 4..i + 4 + len].to_string());
                    let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                    break;
                }
            }
        }
    });
    let out = run(
        ws.path(),
        "hooked",
        &["webhook=".to_string() + &url, "webhook_format=slack".into()]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{out:?}");
    let body = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the webhook was called");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .starts_with("gantry: run hooked — nan raised: loss is not a number"),
        "{v}"
    );
    // A server that accepts and never answers: the run still ends as the script does.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let conns: Vec<_> = silent.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(60));
        drop(conns);
    });
    let started = std::time::Instant::now();
    let out = run(
        ws.path(),
        "silent",
        &[&format!("webhook={url}"), "hook_timeout_s=60"],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "the run waited on the webhook: {:?}",
        started.elapsed()
    );
    assert!(
        !held.is_finished(),
        "the webhook never answered while the run ran"
    );
}

/// 50 steps logged 0.1 s apart in real time; their `time` fields 0.1 s apart for the first 30,
/// then 0.4 s apart: the step rate the run logs falls by three quarters.
const SLOWING: &str = r#"
import json, os, time
m = open(os.environ["GANTRY_METRICS"], "a")
t = 1_700_000_000.0
for step in range(50):
    t += 0.1 if step < 30 else 0.4
    m.write(json.dumps({"step": step, "time": t, "loss": 1.0}) + "\n"); m.flush()
    time.sleep(0.1)
"#;

/// A recording made for the GPU alerts: the run's process holds memory at 0% SM, the clocks are
/// held by a power cap, and from the third frame the GPU has two more uncorrected ECC errors.
fn gpu_faults(dir: &Path) -> std::path::PathBuf {
    let mut lines = Vec::new();
    for i in 0..8 {
        let mut snap = common::gpu_recording("h200-x1");
        snap.time_ms += i * 1_000;
        let g = &mut snap.gpus[0];
        g.util = Some(0);
        g.throttle = vec!["power cap".into()];
        g.throttle_known = Some(true);
        g.ecc_uncorrected = Some(if i >= 2 { 2 } else { 0 });
        for p in &mut snap.processes {
            p.sm_util = Some(0);
        }
        lines.push(serde_json::to_string(&snap).unwrap());
    }
    let p = dir.join("faults.jsonl");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

#[test]
fn an_idle_gpu_throttling_ecc_errors_and_a_throughput_drop_from_a_recording() {
    let ws = workspace();
    std::fs::write(ws.path().join("slowing.py"), SLOWING).unwrap();
    let rec = gpu_faults(ws.path());
    let out = gantry(ws.path())
        .arg("--gpu-replay")
        .arg(&rec)
        .args(["--gpu-replay-speed", "0"])
        .args(["run", "-n", "gpu", "--sample-every", "0.2"])
        .args(["--alert", "idle_minutes=0.005"])
        .args(["--", "python3", "slowing.py"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v = show(ws.path(), "gpu");
    let alerts = v["alerts"].as_array().unwrap();
    let find = |kind: &str| {
        alerts
            .iter()
            .find(|a| a["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} alert in {alerts:?}"))
    };
    assert!(
        find("idle_gpu")["message"]
            .as_str()
            .unwrap()
            .starts_with("holds GPU memory at 0% SM"),
        "{alerts:?}"
    );
    assert_eq!(
        find("throttle")["message"],
        "GPU clocks held down: power cap"
    );
    assert_eq!(
        find("gpu_errors")["message"],
        "2 new uncorrected ECC errors on GPU-h200-00-made-up"
    );
    let drop = find("throughput_drop")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(drop.contains("below its median"), "{drop}");
    // Each is found by the filter of its kind.
    for kind in ["idle_gpu", "throttle", "gpu_errors", "throughput_drop"] {
        let o = gantry(ws.path())
            .args(["runs", "--json", "--filter", &format!("alert:{kind}")])
            .output()
            .unwrap();
        let listed: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(listed.as_array().unwrap().len(), 1, "{kind}");
    }
}
