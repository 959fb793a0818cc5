//! The flight recorder through the real binary: a script under `gantry run --gpu-replay` logs a
//! NaN, its GPU reports an XID, and it exits with 3. Each is an event of the run, with the
//! minutes before it kept in the run's folder as a recording that `gantry gpu` plays back; the
//! XID also raises the gpu_errors alert.

mod common;

use std::path::Path;

use serde_json::Value;

use common::gantry_in as gantry;

const SCRIPT: &str = r#"
import json, os, sys, time
m = open(os.environ["GANTRY_METRICS"], "a")
for step in range(6):
    m.write(json.dumps({"step": step, "loss": 1 / (step + 1)}) + "\n"); m.flush(); time.sleep(0.25)
m.write('{"step": 6, "loss": NaN}\n'); m.flush()
time.sleep(1.5)
sys.exit(3)
"#;

/// The H200 recording's first frame six times, a second apart; the fifth reports XID 79.
fn recording(dir: &Path) -> std::path::PathBuf {
    let mut lines = Vec::new();
    for i in 0..6 {
        let mut snap = common::gpu_recording("h200-x1");
        snap.time_ms += i * 1_000;
        if i == 4 {
            snap.gpus[0].xids = vec![79];
        }
        lines.push(serde_json::to_string(&snap).unwrap());
    }
    let p = dir.join("xid.jsonl");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

#[test]
fn a_nan_an_xid_and_a_crash_each_keep_the_minutes_before() {
    let ws = common::initialized();
    let dir = ws.path();
    std::fs::write(dir.join("train.py"), SCRIPT).unwrap();
    let rec = recording(dir);
    let out = gantry(dir)
        .arg("--gpu-replay")
        .arg(&rec)
        .args(["--gpu-replay-speed", "0"])
        .args([
            "run",
            "-n",
            "bad",
            "--sample-every",
            "0.2",
            "--",
            "python3",
            "train.py",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let show = gantry(dir)
        .args(["show", "--json", "bad"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&show.stdout).unwrap();
    let events = v["events"].as_array().unwrap();
    let mut triggers: Vec<&str> = events
        .iter()
        .map(|e| e["trigger"].as_str().unwrap())
        .collect();
    triggers.sort();
    assert_eq!(triggers, ["crash", "nan", "xid"], "{events:?}");
    let find = |t: &str| events.iter().find(|e| e["trigger"] == t).unwrap();
    assert_eq!(find("crash")["message"], "the command exited with 3");
    assert_eq!(find("nan")["message"], "loss is not a number at step 6");
    assert_eq!(find("nan")["step"], 6);
    assert_eq!(find("xid")["message"], "XID 79 on GPU-h200-00-made-up");
    let run_dir = Path::new(v["run_dir"].as_str().unwrap());
    for e in events {
        let file = run_dir.join(e["file"].as_str().unwrap());
        let frames = std::fs::read_to_string(&file).unwrap().lines().count();
        assert!(
            frames >= 1 && frames as u64 == e["frames"].as_u64().unwrap(),
            "{e}"
        );
        // The samples play back as a GPU recording.
        let played = gantry(dir)
            .arg("--gpu-replay")
            .arg(&file)
            .args(["gpu", "--json", "--once"])
            .output()
            .unwrap();
        assert!(played.status.success(), "{played:?}");
        let snap: Value = serde_json::from_slice(&played.stdout).unwrap();
        assert_eq!(snap["gpus"][0]["uuid"], "GPU-h200-00-made-up", "{snap}");
    }
    // The XID is an alert too, and the text of `show` lists the events.
    let alert = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "gpu_errors")
        .unwrap();
    assert!(
        alert["message"].as_str().unwrap().contains("XID 79"),
        "{alert}"
    );
    let text = gantry(dir).args(["show", "bad"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("event    crash"), "{text}");
    assert!(text.contains("flight-xid-"), "{text}");
}
