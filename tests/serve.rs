//! `gantry serve`: the real mlflow client logging into it and every value read back through
//! `gantry show --json`, the MLflow API's answers and errors over HTTP, the token and body limits,
//! and /metrics read by the Prometheus Python client's own parser.

mod common;

use std::path::Path;
use std::process::Command;

use common::serve::Server;
use serde_json::{Value, json};

fn workspace() -> (tempfile::TempDir, std::path::PathBuf) {
    let home = tempfile::tempdir().unwrap();
    let ws = home.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let st = gantry(&ws, &["init"]);
    assert!(st.status.success());
    common::postgres::team_store_for(&ws);
    (home, ws)
}

fn gantry(ws: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("--workspace")
        .arg(ws)
        .args(args)
        .env_remove("GANTRY_TOKEN")
        .output()
        .unwrap()
}

fn show(ws: &Path, run: &str) -> Value {
    let out = gantry(ws, &["show", run, "--json", "--points"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_mlflow_client_logs_10k_points_and_every_value_reads_back() {
    let Some(py) = common::python::python_with_mlflow(&[]) else {
        return;
    };
    let (_home, ws) = workspace();
    let server = Server::start(&ws, &[], &["--gpu-interval", "0.2"]);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/serve/log_with_mlflow.py"
    );
    let child = Command::new(py)
        .arg(script)
        .arg("served")
        .env("MLFLOW_TRACKING_URI", &server.url)
        .env_remove("MLFLOW_TRACKING_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let script_pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the mlflow script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ids: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let run_id = ids["run_id"].as_str().unwrap();

    let v = show(&ws, run_id);
    assert_eq!(v["id"], run_id);
    assert_eq!(v["name"], "mlflow-client");
    assert_eq!(v["experiment"], "served");
    assert_eq!(v["status"], "finished");
    assert_eq!(
        v["params"],
        json!({"batch": "64", "lr": "0.001", "optimizer": "adamw"})
    );
    assert_eq!(v["tags"]["stage"], "test");
    assert_eq!(v["tags"]["mlflow.runName"], "mlflow-client");
    // The script connected over loopback: the run is its process's, as under `gantry run`.
    assert_eq!(v["pid"].as_i64(), Some(i64::from(script_pid)));
    assert!(
        v["command"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str() == Some(script)),
        "{}",
        v["command"]
    );
    // ... and its CPU and memory were sampled while it ran, as `gantry run` samples its command.
    for key in ["rss_mb", "cpu_percent"] {
        let n = v["system"][key]["points"].as_i64().unwrap_or(0);
        assert!(n >= 1, "{key}: {}", v["system"]);
    }
    assert!(
        v["system"]["rss_mb"]["max"].as_f64().unwrap() > 10.0,
        "a Python with mlflow loaded"
    );
    let t0 = 1_700_000_000_000i64;
    let check = |key: &str, n: usize, value: &dyn Fn(usize) -> f64| {
        let s = &v["series"][key];
        let steps = s["steps"].as_array().unwrap();
        let times = s["times_ms"].as_array().unwrap();
        let values = s["values"].as_array().unwrap();
        assert_eq!(steps.len(), n, "{key}");
        for i in 0..n {
            assert_eq!(steps[i].as_i64(), Some(i as i64), "{key} step {i}");
            assert_eq!(times[i].as_i64(), Some(t0 + i as i64), "{key} time {i}");
            assert_eq!(values[i].as_f64(), Some(value(i)), "{key} value {i}");
        }
    };
    check("loss", 2000, &|s| 1.0 / (s as f64 + 1.0));
    check("acc", 8000, &|s| s as f64 / 8000.0);
    let points: usize = ["loss", "acc"]
        .iter()
        .map(|k| v["series"][k]["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(points, 10_000);
}

/// Alerts run inside serve for the runs its clients log: a NaN logged through the mlflow client
/// raises the nan alert on that run, and the flight recorder keeps the event.
#[test]
fn a_nan_logged_through_the_mlflow_client_raises_the_alert_in_serve() {
    let Some(py) = common::python::python_with_mlflow(&[]) else {
        return;
    };
    let (_home, ws) = workspace();
    let server = Server::start(&ws, &[], &["--gpu-interval", "0.2"]);
    let script = r#"
import math, time, mlflow
mlflow.set_experiment("alerts")
with mlflow.start_run(run_name="nan-served") as r:
    for s in range(3):
        mlflow.log_metric("train/loss", 1 / (s + 1), step=s)
    mlflow.log_metric("train/loss", float("nan"), step=3)
    time.sleep(2.5)
    print("RUN", r.info.run_id, flush=True)
"#;
    let out = Command::new(py)
        .args(["-c", script])
        .env("MLFLOW_TRACKING_URI", &server.url)
        .env_remove("MLFLOW_TRACKING_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let run_id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RUN "))
        .unwrap()
        .trim()
        .to_string();
    let v = show(&ws, &run_id);
    let alerts = v["alerts"].as_array().unwrap();
    let nan = alerts.iter().find(|a| a["kind"] == "nan");
    assert!(nan.is_some(), "{alerts:?}");
    assert_eq!(
        nan.unwrap()["message"],
        "train/loss is not a number at step 3"
    );
    let events = v["events"].as_array().unwrap();
    assert_eq!(events[0]["trigger"], "nan", "{events:?}");
    assert_eq!(events[0]["step"], 3);
}

#[test]
fn errors_carry_mlflow_codes_and_statuses() {
    let (_home, ws) = workspace();
    let s = Server::start(&ws, &[], &[]);
    let run = s.new_run("errors", "r1");

    let (st, e) = s.get(
        "runs/get",
        &[("run_id", "0123456789abcdef0123456789abcdef")],
    );
    assert_eq!(
        (st, e["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST"))
    );
    let (st, e) = s.post(
        "runs/log-metric",
        json!({"run_id": "nope", "key": "loss", "value": 1.0, "timestamp": 1}),
    );
    assert_eq!(
        (st, e["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST"))
    );

    // A param logged again: the same value is fine, another value is refused and nothing changes.
    let p = |v: &str| {
        s.post(
            "runs/log-parameter",
            json!({"run_id": run, "key": "lr", "value": v}),
        )
    };
    assert_eq!(p("0.1").0, 200);
    assert_eq!(p("0.1").0, 200);
    let (st, e) = p("0.2");
    assert_eq!(
        (st, e["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE"))
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("Changing param values is not allowed"),
        "{e}"
    );
    assert_eq!(show(&ws, &run)["params"]["lr"], "0.1");

    // log-batch limits, as MLflow enforces them.
    let metrics: Vec<Value> = (0..1001)
        .map(|i| json!({"key": "m", "value": 1.0, "timestamp": 1, "step": i}))
        .collect();
    let (st, e) = s.post("runs/log-batch", json!({"run_id": run, "metrics": metrics}));
    assert_eq!(
        (st, e["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE"))
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("at most 1000 metrics"),
        "{e}"
    );
    let params: Vec<Value> = (0..101)
        .map(|i| json!({"key": format!("p{i}"), "value": "x"}))
        .collect();
    let (st, e) = s.post("runs/log-batch", json!({"run_id": run, "params": params}));
    assert_eq!(st, 400);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("at most 100 params"),
        "{e}"
    );
    let mixed = json!({"run_id": run,
        "metrics": (0..950).map(|i| json!({"key": "m", "value": 1.0, "timestamp": 1, "step": i})).collect::<Vec<_>>(),
        "params": (0..60).map(|i| json!({"key": format!("q{i}"), "value": "x"})).collect::<Vec<_>>()});
    let (st, e) = s.post("runs/log-batch", mixed);
    assert_eq!(st, 400);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("at most 1000 metrics, params, and tags"),
        "{e}"
    );
    let (st, e) = s.post(
        "runs/log-batch",
        json!({"run_id": run, "params": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]}),
    );
    assert_eq!(st, 400);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("Duplicate parameter keys"),
        "{e}"
    );
    let long = "x".repeat(6001);
    let (st, _) = s.post(
        "runs/log-parameter",
        json!({"run_id": run, "key": "long", "value": long}),
    );
    assert_eq!(st, 400);
    // A refused batch stores nothing of itself.
    assert!(show(&ws, &run)["series"].as_object().unwrap().is_empty());

    // Names that would read as other paths, bad values, bad JSON, unknown endpoints.
    let (st, e) = s.post(
        "runs/log-metric",
        json!({"run_id": run, "key": "../../etc/passwd", "value": 1.0, "timestamp": 1}),
    );
    assert_eq!(
        (st, e["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE"))
    );
    let (st, _) = s.post(
        "runs/log-metric",
        json!({"run_id": run, "key": "m", "value": "high", "timestamp": 1}),
    );
    assert_eq!(st, 400);
    let (st, body) = s.raw(
        "/api/2.0/mlflow/runs/log-metric",
        &[("Content-Type", "application/json")],
        b"{not json".to_vec(),
    );
    assert_eq!(st, 400);
    assert!(body.contains("BAD_REQUEST"), "{body}");
    let (st, e) = s.post("runs/delete", json!({"run_id": run}));
    assert_eq!(
        (st, e["error_code"].as_str()),
        (404, Some("ENDPOINT_NOT_FOUND"))
    );
    let (st, e) = s.post("experiments/create", json!({"name": "errors"}));
    assert_eq!(
        (st, e["error_code"].as_str()),
        (400, Some("RESOURCE_ALREADY_EXISTS"))
    );
    let (st, e) = s.get("experiments/get-by-name", &[("experiment_name", "nope")]);
    assert_eq!(
        (st, e["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST"))
    );
    let (st, e) = s.post(
        "runs/delete-tag",
        json!({"run_id": run, "key": "never-set"}),
    );
    assert_eq!(
        (st, e["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST"))
    );
    let (st, e) = s.post("runs/search", json!({"filter": "metrics.acc >"}));
    assert_eq!(
        (st, e["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE"))
    );

    // A body declared over the limit is refused before it is sent.
    let addr = s.url.strip_prefix("http://").unwrap();
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    use std::io::{Read, Write};
    write!(
        tcp,
        "POST /api/2.0/mlflow/runs/log-batch HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        3 * 1024 * 1024
    )
    .unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&got).contains("RESOURCE_EXHAUSTED") {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&got);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("RESOURCE_EXHAUSTED"), "{head}");
}

#[test]
fn runs_are_searched_filtered_ordered_and_paged() {
    let (_home, ws) = workspace();
    let s = Server::start(&ws, &[], &[]);
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = s.new_run("sweep", &format!("r{i}"));
        let (st, e) = s.post(
            "runs/log-batch",
            json!({"run_id": id,
                   "metrics": [{"key": "acc", "value": 0.5 + i as f64 / 10.0, "timestamp": 1, "step": 0}],
                   "params": [{"key": "lr", "value": format!("0.{i}")}],
                   "tags": [{"key": "group", "value": if i % 2 == 0 { "even" } else { "odd" }}]}),
        );
        assert_eq!(st, 200, "{e}");
        ids.push(id);
    }
    let (_, e) = s.get("experiments/get-by-name", &[("experiment_name", "sweep")]);
    let exp = e["experiment"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let names = |v: &Value| -> Vec<String> {
        v["runs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| r["info"]["run_name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (st, v) = s.post(
        "runs/search",
        json!({"experiment_ids": [exp], "filter": "metrics.acc > 0.6 and tags.group = 'even'",
               "order_by": ["metrics.acc DESC"]}),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(names(&v), ["r4", "r2"]);
    let (_, v) = s.post(
        "runs/search",
        json!({"experiment_ids": [exp], "filter": "params.lr LIKE '0.%'", "order_by": ["params.lr ASC"], "max_results": 2}),
    );
    assert_eq!(names(&v), ["r0", "r1"]);
    let token = v["next_page_token"].as_str().unwrap().to_string();
    let (_, v2) = s.post(
        "runs/search",
        json!({"experiment_ids": [exp], "filter": "params.lr LIKE '0.%'", "order_by": ["params.lr ASC"], "max_results": 2, "page_token": token}),
    );
    assert_eq!(names(&v2), ["r2", "r3"]);
    let (_, other) = s.post("runs/search", json!({"experiment_ids": ["0"]}));
    assert!(
        names(&other).is_empty(),
        "the default experiment holds none of them"
    );

    // Run update ends a run, renames it, and the history pages.
    let (st, u) = s.post(
        "runs/update",
        json!({"run_id": ids[0], "status": "KILLED", "end_time": 1_700_000_100_000i64, "run_name": "renamed"}),
    );
    assert_eq!(st, 200, "{u}");
    assert_eq!(u["run_info"]["status"], "KILLED");
    assert_eq!(u["run_info"]["end_time"], 1_700_000_100_000i64);
    let shown = show(&ws, &ids[0]);
    assert_eq!(
        (shown["name"].as_str(), shown["status"].as_str()),
        (Some("renamed"), Some("killed"))
    );
    for step in 1..5 {
        s.post(
            "runs/log-metric",
            json!({"run_id": ids[1], "key": "acc", "value": "NaN", "timestamp": 2, "step": step}),
        );
    }
    let (_, h) = s.get(
        "metrics/get-history",
        &[
            ("run_id", &ids[1]),
            ("metric_key", "acc"),
            ("max_results", "3"),
        ],
    );
    assert_eq!(h["metrics"].as_array().unwrap().len(), 3);
    let token = h["next_page_token"].as_str().unwrap().to_string();
    let (_, h2) = s.get(
        "metrics/get-history",
        &[
            ("run_id", &ids[1]),
            ("metric_key", "acc"),
            ("page_token", &token),
        ],
    );
    let rest = h2["metrics"].as_array().unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[1]["value"], "NaN");
    assert_eq!(rest[1]["step"], 4);

    let (st, none) = s.get(
        "metrics/get-history",
        &[("run_id", &ids[1]), ("metric_key", "never")],
    );
    assert_eq!(
        (st, none["metrics"].as_array().map(Vec::len)),
        (200, Some(0))
    );

    // set-tag on mlflow.runName renames; delete-tag removes.
    s.post(
        "runs/set-tag",
        json!({"run_id": ids[2], "key": "mlflow.runName", "value": "tagged"}),
    );
    s.post("runs/delete-tag", json!({"run_id": ids[2], "key": "group"}));
    let shown = show(&ws, &ids[2]);
    assert_eq!(shown["name"], "tagged");
    assert!(shown["tags"].get("group").is_none());

    // Experiments: the default is "0", search filters by name.
    let (_, d) = s.get("experiments/get", &[("experiment_id", "0")]);
    assert_eq!(d["experiment"]["name"], "default");
    let (_, found) = s.post("experiments/search", json!({"filter": "name LIKE 'sw%'"}));
    let found: Vec<&str> = found["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["sweep"]);
}

#[test]
fn a_token_guards_every_endpoint_and_other_addresses_need_one() {
    let (_home, ws) = workspace();
    let out = gantry(&ws, &["serve", "--bind", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("without a token") && err.contains("--token"),
        "{err}"
    );

    let mut s = Server::start(&ws, &[], &["--token", "s3cret"]);
    let run = s.new_run("guarded", "g");
    assert_eq!(s.text("/metrics").0, 200);
    s.token = None;
    let (st, e) = s.get("runs/get", &[("run_id", &run)]);
    assert_eq!(
        (st, e["error_code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    assert_eq!(s.text("/metrics").0, 401);
    s.token = Some("guess".into());
    assert_eq!(s.get("runs/get", &[("run_id", &run)]).0, 401);
    s.token = None;
    assert_eq!(s.text("/health"), (200, "OK".to_string()));
}

#[test]
fn prometheus_parses_metrics_with_gpu_gauges_runs_and_counters() {
    let Some(py) =
        common::python::python_with_mlflow(&[("prometheus_client", "prometheus-client")])
    else {
        return;
    };
    let (_home, ws) = workspace();
    let replay = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/gpu/a100-x2.made-up.jsonl"
    );
    let s = Server::start(&ws, &["--gpu-replay", replay], &["--gpu-interval", "0.1"]);
    let run = s.new_run("prom", "p");
    let pts: Vec<Value> = (0..250)
        .map(|i| json!({"key": "loss", "value": 1.0, "timestamp": 1, "step": i}))
        .collect();
    assert_eq!(
        s.post("runs/log-batch", json!({"run_id": run, "metrics": pts}))
            .0,
        200
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (st, text) = s.text("/metrics");
    assert_eq!(st, 200);
    let parser = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for smp in fam.samples:
        out.append({"family": fam.name, "type": fam.type, "name": smp.name, "labels": smp.labels, "value": smp.value})
print(json.dumps(out))
"#;
    let mut child = Command::new(py)
        .args(["-c", parser])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let find = |name: &str, gpu: Option<&str>| -> Vec<&Value> {
        samples
            .iter()
            .filter(|s| s["name"] == name && gpu.is_none_or(|g| s["labels"]["gpu"] == g))
            .collect()
    };
    let one = |name: &str, gpu: Option<&str>| -> f64 {
        let f = find(name, gpu);
        assert_eq!(f.len(), 1, "{name} {gpu:?}:\n{text}");
        f[0]["value"].as_f64().unwrap()
    };
    assert_eq!(one("gantry_gpu_up", None), 1.0);
    assert_eq!(one("gantry_runs_running", None), 1.0);
    assert_eq!(one("gantry_ingest_points_total", None), 250.0);
    assert_eq!(one("gantry_ingest_runs_created_total", None), 1.0);
    // The running run's metric, its last value and step (gantry's own, its energy and GPU-hours
    // from the replayed GPU, are beside it).
    let metric: Vec<&Value> = find("gantry_run_metric", None)
        .into_iter()
        .filter(|m| {
            !m["labels"]["key"]
                .as_str()
                .unwrap_or("")
                .starts_with("gantry/")
        })
        .collect();
    assert_eq!(metric.len(), 1, "{text}");
    assert_eq!(metric[0]["labels"]["run"], "p");
    assert_eq!(metric[0]["labels"]["key"], "loss");
    assert_eq!(metric[0]["labels"]["run_id"].as_str(), Some(run.as_str()));
    assert_eq!(metric[0]["value"].as_f64(), Some(1.0));
    let steps: Vec<&Value> = find("gantry_run_metric_step", None)
        .into_iter()
        .filter(|m| m["labels"]["key"] == "loss")
        .collect();
    assert_eq!(steps[0]["value"].as_f64(), Some(249.0), "{text}");
    let batches = find("gantry_http_requests_total", None)
        .into_iter()
        .find(|s| s["labels"]["endpoint"] == "runs/log-batch")
        .unwrap();
    assert_eq!(
        (
            batches["labels"]["status"].as_str(),
            batches["value"].as_f64()
        ),
        (Some("200"), Some(1.0))
    );

    // GPU gauges: both GPUs of the recording, with values it holds.
    let rec: Vec<Value> = std::fs::read_to_string(replay)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(find("gantry_gpu_info", None).len(), 2);
    for gpu in ["0", "1"] {
        let g = gpu.parse::<usize>().unwrap();
        let seen = |field: &str| -> Vec<f64> {
            rec.iter()
                .filter_map(|r| r["gpus"][g][field].as_f64())
                .collect()
        };
        assert_eq!(
            one("gantry_gpu_memory_total_bytes", Some(gpu)),
            seen("mem_total")[0]
        );
        assert!(seen("util").contains(&one("gantry_gpu_utilization_percent", Some(gpu))));
        assert!(seen("power").contains(&one("gantry_gpu_power_watts", Some(gpu))));
        assert!(seen("temp").contains(&one("gantry_gpu_temperature_celsius", Some(gpu))));
        assert_eq!(
            one("gantry_gpu_sm_clock_hertz", Some(gpu)),
            seen("sm_clock")[0] * 1e6
        );
        let info = find("gantry_gpu_info", Some(gpu))[0];
        assert_eq!(info["labels"]["uuid"], rec[0]["gpus"][g]["uuid"]);
        assert_eq!(info["labels"]["driver"], "580.95.05");
    }
    let types: Vec<(&str, &str)> = samples
        .iter()
        .map(|s| (s["family"].as_str().unwrap(), s["type"].as_str().unwrap()))
        .collect();
    assert!(
        types.contains(&("gantry_ingest_points", "counter")),
        "{types:?}"
    );
    assert!(types.contains(&("gantry_gpu_power_watts", "gauge")));
}

#[test]
fn without_a_driver_metrics_say_gpu_down_and_the_api_still_serves() {
    let (_home, ws) = workspace();
    let s = Server::start(&ws, &[], &[]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (st, text) = s.text("/metrics");
    assert_eq!(st, 200);
    // This test machine has no NVIDIA driver; where one exists the gauge is 1.
    let has_driver = Path::new("/proc/driver/nvidia").exists();
    assert!(
        text.contains(if has_driver {
            "gantry_gpu_up 1"
        } else {
            "gantry_gpu_up 0"
        }),
        "{text}"
    );
    assert_eq!(s.get("experiments/get", &[("experiment_id", "0")]).0, 200);
}

#[test]
fn metrics_carry_the_newest_benchmark_of_each_device_and_its_drop() {
    let home = tempfile::tempdir().unwrap();
    let ws = home.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["demo", "--no-open"])
        .arg(&ws)
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let s = Server::start(&ws, &[], &[]);
    let (st, text) = s.text("/metrics");
    assert_eq!(st, 200);
    let line = |name: &str, bench: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(&format!("{name}{{")) && l.contains(&format!("benchmark=\"{bench}\""))
            })
            .unwrap_or_else(|| panic!("no {name} for {bench}:\n{text}"))
            .to_string()
    };
    // The demo's A100: bf16 dropped 8% on its last day, the triad held.
    let bf16 = line("gantry_bench_result", "gemm bf16 8192");
    assert!(
        bf16.contains("device=\"NVIDIA A100-SXM4-80GB\"") && bf16.contains("unit=\"TFLOP/s\""),
        "{bf16}"
    );
    assert!(bf16.ends_with(" 259.4"), "{bf16}");
    assert!(line("gantry_bench_below_median", "gemm bf16 8192").ends_with(" 1"));
    assert!(line("gantry_bench_below_median", "membw sm-triad 1 GiB").ends_with(" 0"));
    assert!(text.contains("# TYPE gantry_bench_result_timestamp_seconds gauge"));
}

#[test]
fn a_script_that_dies_without_ending_its_run_leaves_it_crashed() {
    let (_home, ws) = workspace();
    let s = Server::start(&ws, &[], &[]);
    // A client of its own (plain urllib), which makes a run over loopback and exits.
    let script = r#"
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/api/2.0/mlflow/runs/create",
    data=json.dumps({"experiment_id": "0", "run_name": "orphan"}).encode(),
    headers={"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req))["run"]["info"]["run_id"])
"#;
    let out = Command::new("python3")
        .args(["-c", script, &s.url])
        .output();
    let Some(out) = out.ok().filter(|o| o.status.success()) else {
        return common::skip("python3 is needed to play a client of its own");
    };
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // The server still runs; the script is gone: the next command catches up.
    let v = show(&ws, &id);
    assert_eq!(v["status"], "crashed", "{v}");
    // A run made by a process still alive (this test) stays running.
    let mine = s.new_run("default", "mine");
    assert_eq!(show(&ws, &mine)["status"], "running");
}

#[test]
fn a_script_under_gantry_run_logs_into_that_run() {
    let (_home, ws) = workspace();
    let s = Server::start(&ws, &[], &[]);
    // What an MLflow-instrumented script does, with urllib: start a run, log, end it.
    let script = r#"
import json, sys, time, urllib.request
def call(path, body):
    req = urllib.request.Request(sys.argv[1] + "/api/2.0/mlflow/" + path,
        data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
run = call("runs/create", {"experiment_id": "0", "run_name": "from-mlflow",
                           "tags": [{"key": "mlflow.source.type", "value": "LOCAL"}]})["run"]["info"]["run_id"]
for step in range(3):
    call("runs/log-metric", {"run_id": run, "key": "acc", "value": 0.5 + step / 10,
                             "timestamp": int(time.time() * 1000), "step": step})
call("runs/log-parameter", {"run_id": run, "key": "lr", "value": "0.01"})
call("runs/update", {"run_id": run, "status": "FINISHED"})
print("logged into", run)
"#;
    let python = Command::new("python3").arg("--version").output();
    if !python.is_ok_and(|o| o.status.success()) {
        return common::skip("python3 is needed to play an MLflow-instrumented script");
    }
    let out = gantry(
        &ws,
        &["run", "-n", "both", "--", "python3", "-c", script, &s.url],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs = gantry(&ws, &["runs", "--json"]);
    let runs: Value = serde_json::from_slice(&runs.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "one run, not two: {runs:?}");
    let v = show(&ws, "both");
    assert_eq!(v["status"], "finished");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["params"]["lr"], "0.01");
    assert_eq!(v["tags"]["mlflow.source.type"], "LOCAL");
    assert!(
        v["tags"].get("mlflow.runName").is_none(),
        "gantry's name stays"
    );
    assert_eq!(v["series"]["acc"]["values"], json!([0.5, 0.6, 0.7]));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!("logged into {}", v["id"].as_str().unwrap())),
        "{printed}"
    );
}

/// Send raw bytes over one TCP connection and read until the server answers or closes.
fn raw_tcp(url: &str, send: &[&[u8]], pause: std::time::Duration) -> (String, std::time::Duration) {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let t = std::time::Instant::now();
    for part in send {
        let _ = s.write_all(part);
        std::thread::sleep(pause);
    }
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    (String::from_utf8_lossy(&got).into_owned(), t.elapsed())
}

#[test]
fn slow_headers_and_idle_connections_are_closed() {
    let (_h, ws) = workspace();
    let srv = Server::start(&ws, &[], &["--idle-timeout", "1"]);
    // Headers that never finish: closed after the timeout, not held for ever.
    let (_, took) = raw_tcp(
        &srv.url,
        &[b"GET /health HTTP/1.1\r\nHost: x\r\n"],
        Default::default(),
    );
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    // A kept-alive connection that goes quiet after a request is closed too.
    let (answer, took) = raw_tcp(
        &srv.url,
        &[b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"],
        Default::default(),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    assert_eq!(
        srv.text("/health").0,
        200,
        "the server still answers others"
    );
}

#[test]
fn malformed_bodies_and_bad_values_are_400_with_a_reason() {
    let (_h, ws) = workspace();
    let srv = Server::start(&ws, &[], &[]);
    // Chunked framing that is not hex: a client error, not "too large".
    let (answer, _) = raw_tcp(
        &srv.url,
        &[b"POST /api/2.0/mlflow/experiments/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"],
        Default::default(),
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(!answer.contains("larger than"), "{answer}");
    let exp = srv.post("experiments/create", json!({"name": "e"})).1["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    for t in ["start_time", "end_time"] {
        let mut body = json!({"experiment_id": exp});
        body[t] = json!(-5);
        let (status, v) = if t == "start_time" {
            srv.post("runs/create", body)
        } else {
            let run = srv.new_run("e", "r");
            srv.post(
                "runs/update",
                json!({"run_id": run, "end_time": -5, "status": "FINISHED"}),
            )
        };
        assert_eq!(status, 400, "{t}: {v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("cannot be negative"),
            "{v}"
        );
    }
    srv.new_run("e", "kept");
    let (status, v) = srv.post("runs/search", json!({"experiment_ids": [null]}));
    assert_eq!(status, 400, "[null] does not match every experiment: {v}");
    let (status, v) = srv.post("runs/search", json!({"experiment_ids": [exp]}));
    assert_eq!(status, 200);
    assert!(!v["runs"].as_array().unwrap().is_empty());
    let (status, v) = srv.post(
        "runs/search",
        json!({"experiment_ids": [exp], "filter": "(".repeat(10_000)}),
    );
    assert_eq!(
        status, 400,
        "a deep search filter is refused, not a crash: {v}"
    );
    assert_eq!(srv.text("/health").0, 200);
}
