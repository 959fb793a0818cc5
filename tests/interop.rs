//! Importing the fixtures made by the real tools (fixtures/interop, see
//! scripts/make-interop-fixtures.py) and checking every value against expected.json; exporting;
//! and MLflow itself reading what gantry exports, where a Python with mlflow can be set up.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use gantry::domain::{RunRecord, SeriesKind};
use gantry::interop;
use gantry::store::Store;
use serde_json::Value;

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/interop");

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{FIX}/expected.json")).unwrap()).unwrap()
}

async fn fresh() -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&d.path().join("g.db")).await.unwrap();
    (d, s)
}

fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) if s == "nan" => f64::NAN,
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        v => v.as_f64().unwrap(),
    }
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

async fn by_name(store: &Store) -> BTreeMap<String, RunRecord> {
    store
        .run_records()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.run.name.clone(), r))
        .collect()
}

/// Every run, param, tag and metric point of expected.json is in the store.
async fn check_mlflow_runs(store: &Store, ids: &Value) {
    let runs = by_name(store).await;
    assert_eq!(
        runs.len(),
        3,
        "the deleted run is left out: {:?}",
        runs.keys()
    );
    for want in expected()["mlflow_runs"].as_array().unwrap() {
        let name = want["name"].as_str().unwrap();
        let rec = &runs[name];
        assert_eq!(
            rec.run.id,
            ids[name].as_str().unwrap(),
            "the MLflow run id is kept"
        );
        assert_eq!(rec.run.experiment, want["experiment"].as_str().unwrap());
        let status = match want["status"].as_str().unwrap() {
            "FINISHED" => "finished",
            "FAILED" => "failed",
            "KILLED" => "killed",
            s => panic!("{s}"),
        };
        assert_eq!(rec.run.status.as_str(), status, "{name}");
        assert!(rec.run.ended_ms.unwrap() >= rec.run.started_ms);
        for (k, v) in want["params"].as_object().unwrap() {
            assert_eq!(
                rec.params.get(k).map(String::as_str),
                v.as_str(),
                "{name} param {k}"
            );
        }
        for (k, v) in want["tags"].as_object().unwrap() {
            assert_eq!(
                rec.tags.get(k).map(String::as_str),
                v.as_str(),
                "{name} tag {k}"
            );
        }
        assert_eq!(
            rec.tags.get("mlflow.runName").map(String::as_str),
            Some(name),
            "MLflow's own tags are kept"
        );
        let metrics = want["metrics"].as_object().unwrap();
        assert_eq!(rec.metrics.len(), metrics.len(), "{name}");
        for (k, pts) in metrics {
            let s = store
                .load_series(&rec.run.id, SeriesKind::Metric, k)
                .await
                .unwrap();
            let pts = pts.as_array().unwrap();
            assert_eq!(s.len(), pts.len(), "{name} {k}");
            for (i, p) in pts.iter().enumerate() {
                assert_eq!(s.steps[i], p[0].as_i64().unwrap(), "{name} {k} point {i}");
                assert!(
                    same(s.values[i], num(&p[1])),
                    "{name} {k} point {i}: {} vs {}",
                    s.values[i],
                    p[1]
                );
            }
        }
    }
}

#[tokio::test]
async fn mlflow_file_store_every_value() {
    let (_d, store) = fresh().await;
    let sum = interop::import_mlflow(&store, Path::new(&format!("{FIX}/mlruns")), &|_, _| {})
        .await
        .unwrap();
    assert_eq!((sum.created, sum.updated, sum.skipped_deleted), (3, 0, 1));
    check_mlflow_runs(&store, &expected()["mlflow_file_ids"]).await;
    // The folder holding mlruns/ works too, and importing again updates without duplicates.
    let sum = interop::import_mlflow(&store, Path::new(FIX), &|_, _| {})
        .await
        .unwrap();
    assert_eq!((sum.created, sum.updated), (0, 3));
    check_mlflow_runs(&store, &expected()["mlflow_file_ids"]).await;
}

#[tokio::test]
async fn mlflow_sqlite_store_every_value() {
    let (_d, store) = fresh().await;
    let sum = interop::import_mlflow(&store, Path::new(&format!("{FIX}/mlflow.db")), &|_, _| {})
        .await
        .unwrap();
    assert_eq!((sum.created, sum.skipped_deleted), (3, 1));
    check_mlflow_runs(&store, &expected()["mlflow_db_ids"]).await;
    let sum = interop::import_mlflow(&store, Path::new(&format!("{FIX}/mlflow.db")), &|_, _| {})
        .await
        .unwrap();
    assert_eq!((sum.created, sum.updated), (0, 3));
    assert_eq!(store.run_records().await.unwrap().len(), 3);
}

#[tokio::test]
async fn tensorboard_both_scalar_forms_and_a_broken_file() {
    let (_d, store) = fresh().await;
    let sum =
        interop::import_tensorboard(&store, Path::new(&format!("{FIX}/tb")), "tb", &|_, _| {})
            .await
            .unwrap();
    let want = &expected()["tensorboard"];
    assert_eq!(
        (sum.created, sum.bad_records, sum.truncated_files),
        (3, 1, 1)
    );
    let runs = by_name(&store).await;
    for run in ["run_a", "run_b", "broken"] {
        let rec = &runs[run];
        for (tag, pts) in want[run].as_object().unwrap() {
            let pts = pts.as_array().unwrap();
            if pts.is_empty() {
                assert!(
                    !rec.metrics.contains_key(tag),
                    "{run} {tag}: cut off with the truncated end"
                );
                continue;
            }
            let s = store
                .load_series(&rec.run.id, SeriesKind::Metric, tag)
                .await
                .unwrap();
            let got: Vec<(i64, f64)> = s
                .steps
                .iter()
                .copied()
                .zip(s.values.iter().copied())
                .collect();
            let want: Vec<(i64, f64)> = pts
                .iter()
                .map(|p| (p[0].as_i64().unwrap(), num(&p[1])))
                .collect();
            assert_eq!(got.len(), want.len(), "{run} {tag}: {got:?}");
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    g.0 == w.0 && same(g.1, w.1),
                    "{run} {tag}: {got:?} vs {want:?}"
                );
            }
            assert!(
                s.times_ms.iter().all(|t| *t > 1_700_000_000_000),
                "wall time kept"
            );
        }
    }
    let again =
        interop::import_tensorboard(&store, Path::new(&format!("{FIX}/tb")), "tb", &|_, _| {})
            .await
            .unwrap();
    assert_eq!(
        (again.created, again.updated),
        (0, 3),
        "one run per folder, stable across imports"
    );
}

#[tokio::test]
async fn export_csv_jsonl_and_an_mlflow_tree_that_imports_back() {
    let (dir, store) = fresh().await;
    interop::import_mlflow(&store, Path::new(&format!("{FIX}/mlruns")), &|_, _| {})
        .await
        .unwrap();
    let recs = store.run_records().await.unwrap();
    let b: Vec<RunRecord> = recs
        .iter()
        .filter(|r| r.run.name == "resnet-b")
        .cloned()
        .collect();
    let mut csv = Vec::new();
    assert_eq!(interop::export::csv(&store, &b, &mut csv).await.unwrap(), 4);
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "run_id,run_name,experiment,key,step,time_ms,value"
    );
    assert!(
        lines[3].contains(",train/loss,2,") && lines[3].ends_with(",NaN"),
        "{csv}"
    );
    assert!(lines[4].ends_with(",inf"), "{csv}");
    let mut jl = Vec::new();
    interop::export::jsonl(&store, &b, &mut jl).await.unwrap();
    let first: Value =
        serde_json::from_str(String::from_utf8(jl).unwrap().lines().nth(2).unwrap()).unwrap();
    assert_eq!(
        (
            first["key"].as_str(),
            first["step"].as_i64(),
            first["value"].as_str()
        ),
        (Some("train/loss"), Some(2), Some("NaN"))
    );

    let tree = dir.path().join("out/mlruns");
    interop::export::mlflow(&store, &recs, &tree).await.unwrap();
    let (_d2, other) = fresh().await;
    let sum = interop::import_mlflow(&other, &tree, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(sum.created, 3);
    check_mlflow_runs(&other, &expected()["mlflow_file_ids"]).await;
    if let Some(py) = common::python::python_with_mlflow(&[]) {
        let script = r#"
import json, os, sys
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
from mlflow.tracking import MlflowClient
c = MlflowClient("file:" + sys.argv[1])
out = {}
for e in c.search_experiments():
    for r in c.search_runs([e.experiment_id]):
        h = c.get_metric_history(r.info.run_id, "train/loss") if "train/loss" in r.data.metrics else []
        out[r.info.run_name] = {"status": r.info.status, "params": r.data.params, "experiment": e.name,
                                "loss": [[m.step, str(m.value)] for m in h]}
print(json.dumps(out))
"#;
        let o = Command::new(&py)
            .arg("-c")
            .arg(script)
            .arg(&tree)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "mlflow could not read the tree: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let got: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(got["resnet-b"]["status"], "FAILED");
        assert_eq!(got["resnet-b"]["experiment"], "vision");
        assert_eq!(got["resnet-a"]["params"]["lr"], "0.1");
        assert_eq!(
            got["resnet-b"]["loss"],
            serde_json::json!([[0, "2.1"], [1, "1.7"], [2, "nan"], [3, "inf"]])
        );
        assert_eq!(got["gpt-small"]["status"], "KILLED");
    }
}

#[test]
fn cli_import_errors_say_what_to_give() {
    let t = tempfile::tempdir().unwrap();
    let g = |args: &[&str]| gantry_in(t.path(), args);
    assert!(g(&["init"]).status.success());
    let empty = t.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = g(&["import", "mlflow", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds no MLflow tracking data"));
    let notdb = t.path().join("notes.txt");
    std::fs::write(&notdb, "hello").unwrap();
    let o = g(&["import", "mlflow", notdb.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot import"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = g(&["import", "tensorboard", empty.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no tfevents files"));
    let o = g(&["import", "mlflow", &format!("{FIX}/mlruns")]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("imported 3 runs")
            && out.contains("3 new")
            && out.contains("skipped 1 deleted"),
        "{out}"
    );
    let o = g(&["export", "resnet-a", "--format", "csv"]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .starts_with("run_id,run_name,experiment,key,step,time_ms,value\n")
    );
}

#[test]
fn an_mlflow_tree_with_a_bad_metric_line_and_a_lost_meta_yaml_imports_the_rest_and_says_so() {
    let t = tempfile::tempdir().unwrap();
    let g = |args: &[&str]| gantry_in(t.path(), args);
    assert!(g(&["init"]).status.success());
    let root = t.path().join("mlruns");
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let run_meta = |id: &str| {
        format!(
            "run_id: {id}\nrun_name: {id}\nstatus: 3\nstart_time: 1700000000000\nend_time: 1700000001000\nlifecycle_stage: active\n"
        )
    };
    write(
        "0/meta.yaml",
        "experiment_id: '0'\nname: Default\nlifecycle_stage: active\n",
    );
    write(
        "1/meta.yaml",
        "experiment_id: '1'\nname: vision\nlifecycle_stage: active\n",
    );
    write("1/good/meta.yaml", &run_meta("good"));
    write(
        "1/good/metrics/loss",
        "1700000000000 0.9 0\nthis line is broken\n1700000000500 0.5 1\n",
    );
    // An experiment whose meta.yaml was lost: its run is not imported, and that is said.
    write("2/orphan/meta.yaml", &run_meta("orphan"));
    let o = g(&["import", "mlflow", root.to_str().unwrap()]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{all}");
    assert!(all.contains("imported 1 runs"), "{all}");
    assert!(all.contains("skipped 1 corrupt records"), "{all}");
    assert!(
        all.contains("line 2") && all.contains("this line is broken"),
        "{all}"
    );
    assert!(all.contains("has no meta.yaml"), "{all}");
    let o = g(&["show", "good", "--json", "--points"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["series"]["loss"]["steps"], serde_json::json!([0, 1]));
}

#[test]
fn export_refuses_keys_mlflow_cannot_hold_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let g = |args: &[&str]| gantry_in(t.path(), args);
    assert!(g(&["init"]).status.success());
    for (name, line) in [
        ("empty", r#"{"": 1}"#),
        ("slash", r#"{"x/": 1}"#),
        ("double", r#"{"a//b": 1}"#),
        ("collide", r#"{"a": 1, "a/b": 2}"#),
    ] {
        let o = g(&[
            "run",
            "-n",
            name,
            "--",
            "sh",
            "-c",
            &format!("echo '{line}' >> \"$GANTRY_METRICS\""),
        ]);
        assert!(o.status.success());
        let out = t.path().join(format!("out-{name}"));
        let o = g(&[
            "export",
            name,
            "--format",
            "mlflow",
            "--output",
            out.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains("cannot be a file name") || stderr.contains("collide"),
            "{name}: {stderr}"
        );
        assert!(!out.exists(), "{name}: no partial tree");
    }
}

/// `gantry --workspace DIR ARGS`, its output.
fn gantry_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("--workspace")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}
