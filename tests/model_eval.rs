//! `gantry model eval` through the binary: three versions of a fixture model (a file holding its
//! accuracy), a stdlib eval script that reports it with samples and per-request latencies, every
//! value, delta and verdict checked; `--repeat` interleaved; a failing version; the gate's exit
//! codes and its caret; the checkout cache; `--gpu free` on a recording; `promote --if-eval`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const EVAL: &str = r#"
import json, os, sys
d = sys.argv[1]
acc = float(open(os.path.join(d, "score.txt")).read())
with open(os.environ["EVAL_LOG"], "a") as log:
    log.write("%s %s %s\n" % (acc, os.environ["GANTRY_MODEL_DIR"] == d, os.environ.get("CUDA_VISIBLE_DEVICES", "-")))
if acc < 0:
    sys.exit(3)
m = open(os.environ["GANTRY_METRICS"], "a")
# 100 requests: latencies 1..100 ms, scaled by the version's "speed".
scale = 2.0 if acc > 0.92 else 1.0
for i in range(100):
    m.write(json.dumps({"step": i, "latency_ms": (i + 1) * scale}) + "\n")
m.write(json.dumps({"step": 100, "val/acc": acc, "samples": 500}) + "\n")
"#;

struct Ws {
    dir: tempfile::TempDir,
}

impl Ws {
    /// A workspace with model `clf` at v1 0.90, v2 0.93, v3 0.88 (or the scores given).
    fn new(scores: &[&str]) -> Ws {
        let dir = tempfile::tempdir().unwrap();
        let ws = Ws { dir };
        assert!(ws.gantry(&["init", "."]).status.success());
        for s in scores {
            let m = ws.path().join("m");
            std::fs::create_dir_all(&m).unwrap();
            std::fs::write(m.join("score.txt"), s).unwrap();
            let out = ws.gantry(&["model", "add", "clf", "m"]);
            assert!(out.status.success(), "{out:?}");
        }
        std::fs::write(ws.path().join("eval.py"), EVAL).unwrap();
        ws
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gantry"));
        c.current_dir(self.path())
            .env("HOME", self.path())
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env("EVAL_LOG", self.path().join("eval.log"))
            .env_remove("GANTRY_STORE")
            .env_remove("GANTRY_WORKSPACE")
            .env_remove("CUDA_VISIBLE_DEVICES");
        c
    }
    fn gantry(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }
    fn eval(&self, extra: &[&str]) -> (Option<i32>, Value, String) {
        let mut args = vec!["model", "eval"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--json", "--", "python3", "eval.py", "{model}"]);
        let out = self.gantry(&args);
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (
            out.status.code(),
            v,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.path().join("eval.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn metric(v: &Value, version: usize, name: &str) -> f64 {
    v["versions"][version]["metrics"][name]["median"]
        .as_f64()
        .unwrap_or_else(|| panic!("no {name} for version {version}: {v:#}"))
}

#[test]
fn three_versions_compared_gated_and_cached() {
    let ws = Ws::new(&["0.90", "0.93", "0.88"]);
    let (code, v, err) = ws.eval(&[
        "clf@v1",
        "clf@v2",
        "clf@v3",
        "--gate",
        "val/acc>=baseline-0.005",
        "--gate",
        "latency_ms_p99<=2.5*baseline",
    ]);
    // v3 is 0.02 below the baseline: its accuracy gate fails, and so does the eval.
    assert_eq!(code, Some(1), "{v:#}\n{err}");
    assert_eq!(v["model"], "clf");
    assert_eq!(v["baseline"], "clf@v1");
    assert_eq!(v["passed"], false);
    assert_eq!(metric(&v, 0, "val/acc"), 0.90);
    assert_eq!(metric(&v, 1, "val/acc"), 0.93);
    assert_eq!(metric(&v, 2, "val/acc"), 0.88);
    // Latency percentiles by nearest rank over 100 requests of 1..100 ms (v2 twice as slow).
    assert_eq!(metric(&v, 0, "latency_ms_p50"), 50.0);
    assert_eq!(metric(&v, 0, "latency_ms_p90"), 90.0);
    assert_eq!(metric(&v, 0, "latency_ms_p99"), 99.0);
    assert_eq!(metric(&v, 1, "latency_ms_p99"), 198.0);
    // Throughput from the samples counter over the wall time; both recorded on the run.
    let wall = metric(&v, 0, "wall_s");
    assert!(wall > 0.0 && wall < 30.0, "{wall}");
    let rate = metric(&v, 0, "samples_per_s");
    assert!((rate - 500.0 / wall).abs() < 1e-6, "{rate} vs {wall}");
    let gates = v["gates"].as_array().unwrap();
    assert_eq!(gates.len(), 4, "two gates on two candidates: {gates:#?}");
    let verdict = |g: &str, ver: &str| {
        gates
            .iter()
            .find(|x| x["gate"] == g && x["version"] == ver)
            .map(|x| (x["ok"].as_bool().unwrap(), x["bound"].as_f64().unwrap()))
            .unwrap()
    };
    let (ok, bound) = verdict("val/acc>=baseline-0.005", "clf@v2");
    assert!(ok && (bound - 0.895).abs() < 1e-12);
    assert!(!verdict("val/acc>=baseline-0.005", "clf@v3").0);
    // 198 <= 2.5 × 99 = 247.5
    assert_eq!(
        verdict("latency_ms_p99<=2.5*baseline", "clf@v2"),
        (true, 247.5)
    );
    // Each version checked out once; the script saw the checkout as {model} and GANTRY_MODEL_DIR.
    for ver in v["versions"].as_array().unwrap() {
        assert_eq!(ver["copied"], true, "{ver}");
        assert!(
            Path::new(ver["dir"].as_str().unwrap())
                .join("score.txt")
                .is_file()
        );
    }
    assert_eq!(
        ws.log(),
        ["0.9 True -", "0.93 True -", "0.88 True -"],
        "in order, each with its own checkout"
    );
    // The runs: experiment eval/clf, tagged with the model, the eval and the verdict.
    let id = v["eval"].as_str().unwrap();
    let out = ws.gantry(&["runs", "--filter", &format!("tag:eval={id}"), "--json"]);
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 3, "{runs:#?}");
    for r in runs {
        assert_eq!(r["experiment"], "eval/clf", "{r}");
    }
    let tag_of = |ver: &str| {
        runs.iter()
            .find(|r| r["tags"]["model"] == ver)
            .map(|r| r["tags"]["eval_gate"].clone())
            .unwrap()
    };
    assert_eq!(tag_of("clf@v1"), "baseline");
    assert_eq!(tag_of("clf@v2"), "pass");
    assert_eq!(tag_of("clf@v3"), "fail");

    // A second eval copies nothing: the cache is keyed by the files' content.
    let (code, v2, _) = ws.eval(&["clf@v1", "clf@v2"]);
    assert_eq!(code, Some(0));
    for ver in v2["versions"].as_array().unwrap() {
        assert_eq!(ver["copied"], false, "{ver}");
    }

    // promote --if-eval: the passing candidate goes, the failing one is refused.
    let ok = ws.gantry(&["model", "promote", "clf@v2", "production", "--if-eval", id]);
    assert!(ok.status.success(), "{ok:?}");
    let no = ws.gantry(&["model", "promote", "clf@v3", "production", "--if-eval", id]);
    assert_eq!(no.status.code(), Some(2));
    let err = String::from_utf8_lossy(&no.stderr);
    assert!(
        err.contains("clf@v3 failed eval") && err.contains("not promoted"),
        "{err}"
    );
    let show = ws.gantry(&["model", "show", "clf@production", "--json"]);
    let shown: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(shown["version"], 2);
    // Lineage: the version names the evals that ran it (this one and the second).
    let by = shown["evaluated_by"].as_array().unwrap();
    assert_eq!(by.len(), 2, "{by:#?}");
    assert_eq!(by[0]["eval"], id);
    assert_eq!(by[0]["gate"], "pass");
    let nope = ws.gantry(&[
        "model",
        "promote",
        "clf@v2",
        "staging",
        "--if-eval",
        "nosuch",
    ]);
    assert!(String::from_utf8_lossy(&nope.stderr).contains("there is no eval nosuch"));
}

#[test]
fn repeats_interleave_and_a_failing_version_does_not_stop_the_others() {
    // v2's score is negative: the script exits 3 for it.
    let ws = Ws::new(&["0.90", "-1", "0.91"]);
    let (code, v, err) = ws.eval(&["clf@v1", "clf@v2", "clf@v3", "--repeat", "3"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("clf@v2 exited 3"), "{err}");
    let order: Vec<String> = ws
        .log()
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(
        order,
        [
            "0.9", "-1.0", "0.91", "0.9", "-1.0", "0.91", "0.9", "-1.0", "0.91"
        ],
        "A B C A B C A B C"
    );
    assert_eq!(v["versions"][1]["exit_codes"], serde_json::json!([3, 3, 3]));
    assert_eq!(v["versions"][0]["exit_codes"], serde_json::json!([0, 0, 0]));
    assert_eq!(v["versions"][0]["runs"].as_array().unwrap().len(), 3);
    // Three repeats of the same accuracy: the median, and no spread.
    let acc = &v["versions"][2]["metrics"]["val/acc"];
    assert_eq!(
        (
            acc["median"].as_f64(),
            acc["min"].as_f64(),
            acc["max"].as_f64()
        ),
        (Some(0.91), Some(0.91), Some(0.91))
    );
    assert!(v["versions"][1]["metrics"].get("val/acc").is_none());
}

#[test]
fn a_gate_that_does_not_parse_exits_2_with_a_caret() {
    let ws = Ws::new(&["0.90", "0.93"]);
    let out = ws.gantry(&[
        "model",
        "eval",
        "clf@v1",
        "clf@v2",
        "--gate",
        "val/acc >= basline",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at column 12"), "{err}");
    assert!(
        err.contains("  val/acc >= basline\n             ^"),
        "{err}"
    );
    assert!(ws.log().is_empty(), "nothing ran");
}

#[test]
fn gpu_free_picks_the_idle_gpu_of_a_recording() {
    let ws = Ws::new(&["0.90", "0.93"]);
    // Two GPUs: GPU 0 busy with a process, GPU 1 idle.
    let rec: PathBuf = ws.path().join("two.jsonl");
    let gpu = |i: u32, util: u32, used: u64| {
        serde_json::json!({"index": i, "name": "NVIDIA H200", "uuid": format!("GPU-{i}-made-up"),
            "bus_id": format!("0000000{i}:00:00.0"), "util": util, "mem_used": used, "mem_total": 150u64 << 30})
    };
    let snap = serde_json::json!({"time_ms": 1, "driver": "580.95.05", "cuda": "13.0",
        "gpus": [gpu(0, 95, 80 << 30), gpu(1, 0, 300 << 20)],
        "processes": [{"pid": 4242, "gpu": 0, "mem_used": 80u64 << 30}]});
    std::fs::write(&rec, format!("{snap}\n")).unwrap();
    let (code, v, err) = ws.eval(&[
        "--gpu-replay",
        rec.to_str().unwrap(),
        "clf@v1",
        "clf@v2",
        "--gpu",
        "free",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["gpu"], "GPU-1-made-up");
    assert!(
        ws.log().iter().all(|l| l.ends_with(" GPU-1-made-up")),
        "{:?}",
        ws.log()
    );
}
