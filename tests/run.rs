//! `gantry run` end to end: the real binary runs fixtures/scripts/train.py and other small
//! commands; every value is read back through `gantry show --json` and friends. Tests that need
//! python3 say so and skip where it is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const TRAIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/scripts/train.py");

struct Ws {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Ws {
    fn new() -> Ws {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let ws = Ws { _dir: dir, root };
        let out = ws.cmd(&["init"]).output().unwrap();
        assert!(out.status.success());
        common::postgres::team_store_for(&ws.root);
        ws
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gantry"));
        c.arg("--workspace")
            .arg(&self.root)
            .args(args)
            .current_dir(&self.root);
        c.env_remove("GANTRY_WORKSPACE")
            .env("XDG_CONFIG_HOME", self.root.join("cfg"));
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }
    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }
    fn show(&self, run: &str) -> Value {
        self.json(&["show", run, "--json"])
    }
    /// `show --json`, or Null while the run does not exist yet.
    fn peek(&self, run: &str) -> Value {
        let out = self.run(&["show", run, "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }
}

fn python() -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        common::skip("python3 is not installed, and this test runs Python training scripts");
    }
    ok
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_training_script_becomes_a_run_with_every_value_stored() {
    if !python() {
        return;
    }
    let ws = Ws::new();
    let out = ws.run(&[
        "run",
        "-n",
        "base",
        "-e",
        "vision",
        "--param",
        "note=first",
        "--tag",
        "baseline=yes",
        "--notes",
        "hello",
        "--",
        "python3",
        TRAIN,
        "--lr",
        "0.01",
        "--batch-size=16",
        "--epochs",
        "2",
        "--steps-per-epoch",
        "10",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("training with lr=0.01 batch_size=16"),
        "output is passed through: {stdout}"
    );
    let v = ws.show("base");
    assert_eq!(v["status"], "finished");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["experiment"], "vision");
    assert_eq!(v["notes"], "hello");
    assert_eq!(v["tags"]["baseline"], "yes");
    for (k, want) in [
        ("lr", "0.01"),
        ("batch_size", "16"),
        ("epochs", "2"),
        ("steps_per_epoch", "10"),
        ("note", "first"),
    ] {
        assert_eq!(v["params"][k], want, "param {k}");
    }
    assert_eq!(v["command"][0], "python3");
    assert_eq!(v["cwd"], ws.root.display().to_string());
    let m = &v["metrics"];
    assert_eq!(m["train/loss"]["points"], 20, "from $GANTRY_METRICS");
    assert_eq!(m["train/loss"]["last_step"], 19);
    assert_eq!(m["lr"]["last"], 0.01);
    assert_eq!(
        m["val/acc"]["points"], 4,
        "JSON lines with a step on stdout"
    );
    assert_eq!(m["epoch"]["points"], 2, "gantry: lines");
    assert_eq!(m["epoch"]["last"], 1.0);
    assert_eq!(v["malformed"]["total"], 0);
    let log = std::fs::read_to_string(Path::new(v["run_dir"].as_str().unwrap()).join("output.log"))
        .unwrap();
    assert!(
        log.contains("epoch 1 done") && log.contains("done\n"),
        "stdout and stderr both logged"
    );
    let logs = ws.run(&["logs", "base"]);
    assert_eq!(String::from_utf8_lossy(&logs.stdout), log);
}

#[test]
fn exit_codes_and_statuses_carry_through() {
    let ws = Ws::new();
    let out = ws.run(&[
        "run",
        "-n",
        "bad",
        "--",
        "sh",
        "-c",
        "echo oops >&2; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
    let v = ws.show("bad");
    assert_eq!(
        (v["status"].as_str(), v["exit_code"].as_i64()),
        (Some("failed"), Some(7))
    );
    let out = ws.run(&["run", "-n", "sig", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(143), "128 + SIGTERM, like a shell");
    let v = ws.show("sig");
    assert_eq!(
        (v["status"].as_str(), v["exit_code"].as_i64()),
        (Some("killed"), Some(-15))
    );
    let out = ws.run(&["run", "-n", "ghost", "--", "no-such-program-xyz"]);
    assert_eq!(out.status.code(), Some(2));
    let t = text(&out);
    assert!(
        t.contains("cannot start `no-such-program-xyz`") && t.contains("recorded as failed"),
        "{t}"
    );
    assert_eq!(ws.show("ghost")["exit_code"], 127);
    let out = ws.run(&["run"]);
    assert!(
        text(&out).contains("put the command after --"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_child_gets_the_run_environment_and_no_shell() {
    let ws = Ws::new();
    let out = ws
        .cmd(&[
            "run",
            "-n",
            "env",
            "--",
            "sh",
            "-c",
            "echo \"$GANTRY_RUN_ID|$GANTRY_RUN_DIR|$GANTRY_METRICS|$CUDA_VISIBLE_DEVICES\"",
            "a;b",
        ])
        .env("CUDA_VISIBLE_DEVICES", "1,3")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let v = ws.show("env");
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dir = v["run_dir"].as_str().unwrap();
    assert_eq!(
        line,
        format!(
            "{}|{dir}|{dir}/metrics.jsonl|1,3",
            v["id"].as_str().unwrap()
        )
    );
    assert_eq!(v["env"]["CUDA_VISIBLE_DEVICES"], "1,3");
    assert_eq!(
        v["command"][3], "a;b",
        "arguments are passed as they are, with no shell"
    );
}

#[test]
fn sigterm_to_gantry_reaches_the_command_and_is_recorded() {
    if !python() {
        return;
    }
    let ws = Ws::new();
    let mut child = ws
        .cmd(&[
            "run", "-n", "term", "--", "python3", TRAIN, "--sleep", "0.05", "--epochs", "100",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the run to log metrics", || {
        ws.peek("term")["metrics"]["train/loss"]["points"]
            .as_i64()
            .unwrap_or(0)
            > 3
    });
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(st.code(), Some(143), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("saving a checkpoint"),
        "the script saw SIGTERM"
    );
    let v = ws.show("term");
    assert_eq!(
        (v["status"].as_str(), v["exit_code"].as_i64()),
        (Some("failed"), Some(143))
    );
}

#[test]
fn sigkill_of_gantry_loses_nothing_and_the_run_is_marked_crashed() {
    if !python() {
        return;
    }
    let ws = Ws::new();
    let mut child = ws
        .cmd(&[
            "run",
            "-n",
            "orphan",
            "--",
            "python3",
            TRAIN,
            "--sleep",
            "0.02",
            "--epochs",
            "3",
            "--steps-per-epoch",
            "25",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the run to log metrics", || {
        ws.peek("orphan")["metrics"]["train/loss"]["points"]
            .as_i64()
            .unwrap_or(0)
            >= 5
    });
    let v = ws.show("orphan");
    let pid = v["pid"].as_i64().unwrap() as i32;
    child.kill().unwrap(); // SIGKILL: gantry gets no chance to clean up
    child.wait().unwrap();
    // Without gantry its output pipe is closed: the script dies at its next print, as it would
    // under `tee`. What it wrote to $GANTRY_METRICS until then must all be stored.
    wait_until(
        "the orphaned command to end",
        || unsafe { libc::kill(pid, 0) } != 0,
    );
    let out = ws.run(&["runs"]);
    assert!(
        text(&out).contains("marked crashed: its process"),
        "{}",
        text(&out)
    );
    let v = ws.show("orphan");
    assert_eq!(v["status"], "crashed");
    let written =
        std::fs::read_to_string(Path::new(v["run_dir"].as_str().unwrap()).join("metrics.jsonl"))
            .unwrap();
    assert_eq!(
        v["metrics"]["train/loss"]["points"].as_u64().unwrap() as usize,
        written.lines().count(),
        "every line in the file is stored, none twice"
    );
}

#[test]
fn detached_runs_survive_and_logs_follow_them() {
    if !python() {
        return;
    }
    let ws = Ws::new();
    let out = ws.run(&[
        "run", "-d", "-n", "bg", "--", "python3", TRAIN, "--sleep", "0.01", "--epochs", "2",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 32, "prints the run id: {id}");
    let follow = ws.run(&["logs", "-f", &id[..8]]);
    let log = String::from_utf8_lossy(&follow.stdout);
    // Followed to the end. The script writes "epoch N done" to stderr and the rest to stdout,
    // each line in two writes; two pipes into one log give no order between them, so a newline
    // of one may land after a line of the other.
    assert!(
        log.starts_with("training with") && log.trim_end().ends_with("done"),
        "{log}"
    );
    for line in ["epoch 0 done", "epoch 1 done", "gantry: epoch=1 step=39"] {
        assert!(log.contains(line), "{line} in {log}");
    }
    let v = ws.show(&id);
    assert_eq!(v["status"], "finished");
    assert_eq!(v["metrics"]["train/loss"]["points"], 40);
}

#[test]
fn malformed_metrics_never_stop_the_run_and_are_listed() {
    let ws = Ws::new();
    let script = r#"
        printf '{"a": 1}\nnot json\n{"a": "high"}\n' >> "$GANTRY_METRICS"
        printf '\377\376\n' >> "$GANTRY_METRICS"
        head -c 10485760 /dev/zero | tr '\0' 7 >> "$GANTRY_METRICS"
        printf '\n{"a": 2}\n{"a": NaN, "b": Infinity}\n' >> "$GANTRY_METRICS"
        echo 'gantry: a=banana'
        echo done
    "#;
    let out = ws.run(&["run", "-n", "messy", "--", "sh", "-c", script]);
    assert!(out.status.success(), "{}", text(&out));
    let v = ws.show("messy");
    assert_eq!(v["metrics"]["a"]["points"], 3);
    assert_eq!(v["metrics"]["a"]["last"], "NaN");
    assert_eq!(v["metrics"]["b"]["last"], "Infinity");
    assert_eq!(v["malformed"]["total"], 5);
    let first: Vec<String> = v["malformed"]["first"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}:{}:{}",
                m["source"].as_str().unwrap(),
                m["line"],
                m["reason"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(first[0], "metrics:2:not a JSON object");
    assert_eq!(first[1], "metrics:3:no numeric fields");
    assert!(first[2].starts_with("metrics:4:invalid UTF-8"), "{first:?}");
    assert_eq!(first[3], "metrics:5:line longer than 1 MiB");
    assert!(
        first[4].starts_with("stdout:1:") && first[4].contains("non-numeric"),
        "{first:?}"
    );
    let human = text(&ws.run(&["show", "messy"]));
    assert!(
        human.contains("malformed metric lines: 5")
            && human.contains("metrics.jsonl line 2: not a JSON object"),
        "{human}"
    );
}

#[test]
fn a_deleted_metrics_file_is_reported_and_the_run_goes_on() {
    let ws = Ws::new();
    let script = r#"
        echo '{"x": 1}' >> "$GANTRY_METRICS"; sleep 0.6
        rm "$GANTRY_METRICS"; sleep 0.6
        echo '{"x": 2}' >> "$GANTRY_METRICS"; sleep 0.6
        echo finished-ok
    "#;
    let out = ws.run(&["run", "-n", "del", "--", "sh", "-c", script]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("metrics file ($GANTRY_METRICS) was deleted"),
        "{t}"
    );
    assert!(t.contains("finished-ok"));
    let v = ws.show("del");
    assert_eq!(
        v["metrics"]["x"]["points"], 2,
        "the recreated file is read too"
    );
}

#[test]
fn an_unwritable_workspace_is_refused_before_the_command_starts() {
    let ws = Ws::new();
    // runs/ replaced by a file: no run directory can be made, as on a read-only filesystem.
    let runs = ws.root.join(".gantry/runs");
    std::fs::remove_dir_all(&runs).unwrap();
    std::fs::write(&runs, "x").unwrap();
    let marker = ws.root.join("started");
    let out = ws.run(&["run", "--", "touch", marker.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("cannot create the run directory"),
        "{}",
        text(&out)
    );
    assert!(!marker.exists(), "the command was not started");
}

#[test]
fn system_samples_are_stored_as_the_runs_system_series() {
    let ws = Ws::new();
    // A grandchild burns CPU for a second: the samples follow the whole process tree.
    let out = ws.run(&[
        "run",
        "-n",
        "busy",
        "--sample-every",
        "0.2",
        "--",
        "sh",
        "-c",
        "timeout 1 sh -c 'while :; do :; done'; exit 0",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let v = ws.show("busy");
    let sys = &v["system"];
    assert!(sys["rss_mb"]["points"].as_i64().unwrap_or(0) >= 2, "{sys}");
    assert!(
        sys["cpu_percent"]["max"].as_f64().unwrap_or(0.0) > 20.0,
        "a busy loop uses CPU: {sys}"
    );
}

#[test]
fn git_state_is_captured_with_the_diff() {
    let ws = Ws::new();
    let git = |args: &[&str]| {
        let st = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&ws.root)
            .output()
            .unwrap();
        assert!(st.status.success());
    };
    git(&["init", "-q"]);
    std::fs::write(ws.root.join("model.py"), "layers = 4\n").unwrap();
    std::fs::write(ws.root.join(".gitignore"), ".gantry/\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-qm", "init"]);
    std::fs::write(ws.root.join("model.py"), "layers = 8\n").unwrap();
    ws.run(&["run", "-n", "g", "--", "true"]);
    let v = ws.show("g");
    assert_eq!(v["git"]["branch"], "main");
    assert_eq!(v["git"]["dirty"], true);
    assert_eq!(v["git"]["commit"].as_str().unwrap().len(), 40);
    let diff = std::fs::read_to_string(Path::new(v["run_dir"].as_str().unwrap()).join("git.diff"))
        .unwrap();
    assert!(diff.contains("+layers = 8"), "{diff}");
}

#[test]
fn runs_filter_sort_compare_tag_and_rm() {
    let ws = Ws::new();
    for (name, lr, loss) in [
        ("a", "0.1", "0.5"),
        ("b", "0.01", "0.3"),
        ("c", "0.001", "0.9"),
    ] {
        let script = format!("echo '{{\"val_loss\": {loss}}}' >> \"$GANTRY_METRICS\"");
        let out = ws.run(&[
            "run",
            "-n",
            name,
            "-e",
            "lr-sweep",
            "--param",
            &format!("lr={lr}"),
            "--",
            "sh",
            "-c",
            &script,
        ]);
        assert!(out.status.success());
    }
    ws.run(&["run", "-n", "d", "--", "false"]);
    let names = |v: Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(ws.json(&["runs", "--json", "--filter", "param.lr>=0.01"])),
        ["b", "a"],
        "newest first"
    );
    assert_eq!(
        names(ws.json(&[
            "runs",
            "--json",
            "--filter",
            "metric.val_loss<0.6",
            "--sort",
            "metric.val_loss"
        ])),
        ["b", "a"]
    );
    assert_eq!(
        names(ws.json(&["runs", "--json", "--sort", "-metric.val_loss"])),
        ["c", "a", "b", "d"],
        "missing values last"
    );
    assert_eq!(
        names(ws.json(&[
            "runs",
            "--json",
            "--filter",
            "status:failed | name:c",
            "--sort",
            "name"
        ])),
        ["c", "d"]
    );
    assert_eq!(
        names(ws.json(&["runs", "--json", "--sort", "name", "--limit", "2"])),
        ["a", "b"]
    );
    let bad = ws.run(&["runs", "--filter", "param.lr>="]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad).contains("at column 11: expected a value after `>=`"),
        "{}",
        text(&bad)
    );
    let table = String::from_utf8_lossy(&ws.run(&["runs"]).stdout).to_string();
    assert!(
        table.lines().all(|l| l.chars().count() <= 80),
        "fits 80 columns:\n{table}"
    );
    assert!(table.contains("failed (1)"));

    let cmp = ws.json(&["compare", "a", "b", "c", "--json"]);
    let m = &cmp["metrics"][0];
    assert_eq!(
        (m["key"].as_str(), m["direction"].as_str()),
        (Some("val_loss"), Some("lower"))
    );
    assert!((m["runs"][1]["delta_last"].as_f64().unwrap() + 0.2).abs() < 1e-12);
    assert_eq!(cmp["params"][0]["differs"], true);
    let human =
        String::from_utf8_lossy(&ws.run(&["compare", "a", "b", "--diff-only"]).stdout).to_string();
    assert!(
        human.contains("* lr") && human.contains("val_loss (lower is better)"),
        "{human}"
    );
    assert!(human.lines().all(|l| l.chars().count() <= 80), "{human}");

    ws.run(&["tag", "a", "keep=1", "stage=dev"]);
    ws.run(&["tag", "a", "--delete", "stage"]);
    assert_eq!(ws.show("a")["tags"], serde_json::json!({"keep": "1"}));
    assert_eq!(
        names(ws.json(&["runs", "--json", "--filter", "tag:keep"])),
        ["a"]
    );

    let c = ws.show("c");
    let (dir, c_id) = (
        c["run_dir"].as_str().unwrap().to_string(),
        c["id"].as_str().unwrap().to_string(),
    );
    let refused = ws.run(&["rm", "c"]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "no confirmation possible without a terminal"
    );
    assert!(text(&refused).contains("--yes"));
    let out = ws.run(&["rm", "c", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!Path::new(&dir).exists(), "its files went too");
    assert!(
        text(&ws.run(&["show", &c_id])).contains(&format!("no run has the id or name `{c_id}`"))
    );
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

use common::Tmpfs;

#[test]
fn a_full_disk_keeps_the_command_running_and_is_reported() {
    let ws = Ws::new();
    let runs = ws.root.join(".gantry/runs");
    // The run directory on a 256 KiB filesystem; the store stays on the real disk.
    let Some(_fs) = Tmpfs::mount(&runs, "256k") else {
        return common::skip(
            "cannot mount a small tmpfs here (needs root), which this test fills up",
        );
    };
    let script = "head -c 600000 /dev/zero | tr '\\0' x | fold -w 99; echo '{\"step\": 1, \"late\": 1}'; echo all-done";
    let out = ws.run(&["run", "-n", "full", "--", "sh", "-c", script]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout.lines().count(),
        6062,
        "all output still reached the terminal"
    );
    assert!(stdout.ends_with("all-done\n"));
    assert!(
        stderr.contains("cannot write the run log") && stderr.contains("No space left"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("cannot write the run log").count(),
        1,
        "reported once: {stderr}"
    );
    let v = ws.show("full");
    assert_eq!(v["status"], "finished", "the run's end is still recorded");
}

#[test]
fn runs_json_carries_every_part_whatever_the_filter_reads() {
    let ws = Ws::new();
    let out = ws.run(&[
        "run",
        "-n",
        "parts",
        "--param",
        "lr=0.1",
        "--tag",
        "stage=test",
        "--",
        "sh",
        "-c",
        "echo '{\"loss\": 0.5}' >> \"$GANTRY_METRICS\"",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // A filter on the status alone reads no params, tags or metrics; the JSON still has them.
    for filter in [
        "",
        "status:finished",
        "param.lr>=0.1",
        "metric.loss<1",
        "stage",
    ] {
        let v = ws.json(&["runs", "--json", "--filter", filter]);
        let r = &v[0];
        assert_eq!(r["params"]["lr"], "0.1", "{filter}: {r}");
        assert_eq!(r["tags"]["stage"], "test", "{filter}: {r}");
        assert_eq!(r["metrics"]["loss"]["points"], 1, "{filter}: {r}");
    }
    let v = ws.json(&["runs", "--json", "--sort", "-metric.loss"]);
    assert_eq!(v[0]["name"], "parts");
}

#[test]
fn a_listing_paged_by_the_database_matches_the_full_listing() {
    let ws = Ws::new();
    for (name, exp, code) in [
        ("b", "x", "0"),
        ("a", "y", "1"),
        ("c", "x", "0"),
        ("a", "z", "0"),
        ("e", "y", "2"),
    ] {
        let out = ws.run(&[
            "run",
            "-n",
            name,
            "-e",
            exp,
            "--",
            "sh",
            "-c",
            &format!("exit {code}"),
        ]);
        assert_eq!(
            out.status.code().map(|c| c.to_string()),
            Some(code.to_string())
        );
    }
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    for key in [
        "started", "-started", "name", "-name", "status", "-status", "exp", "-exp", "id", "-id",
    ] {
        // --limit 3 without a filter is read a page at a time; --limit 0 reads every run.
        let page = ws.json(&["runs", "--json", "--limit", "3", "--sort", key]);
        let all = ws.json(&["runs", "--json", "--limit", "0", "--sort", key]);
        assert_eq!(ids(&page), ids(&all)[..3].to_vec(), "--sort {key}");
        assert_eq!(
            page[0]["params"], all[0]["params"],
            "pages carry every part"
        );
    }
    let out = ws.run(&["runs", "--limit", "2"]);
    assert!(text(&out).contains("… 3 more"), "{}", text(&out));
}
