//! Regression tests for the ways gantry could lose data, hang or corrupt (docs/reliability.md):
//! each drives the real binary the way a user or a hostile script would.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Ws {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Ws {
    fn new() -> Ws {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let ws = Ws { _dir: dir, root };
        let out = ws.run(&["init"]);
        assert!(out.status.success(), "{}", text(&out));
        ws
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gantry"));
        c.arg("--workspace")
            .arg(&self.root)
            .args(args)
            .current_dir(&self.root)
            .env_remove("GANTRY_WORKSPACE")
            .env("XDG_CONFIG_HOME", self.root.join("cfg"))
            .stdin(Stdio::null());
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run `f` on a thread; fail if it has not returned within `secs` (a hang).
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what} hung for {secs} s"))
}

// 1. A metrics file rewritten in place loses lines.
#[test]
fn a_metrics_file_rewritten_with_gt_keeps_every_line() {
    let ws = Ws::new();
    let script = r#"for i in 1 2 3 4 5 6 7 8; do echo "{\"step\": $i, \"loss\": $i}" > "$GANTRY_METRICS"; sleep 0.3; done"#;
    let out = ws.run(&["run", "-n", "gt", "--", "sh", "-c", script]);
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("rewritten in place").count(),
        1,
        "said once: {stderr}"
    );
    let v = ws.json(&["show", "gt", "--json", "--points"]);
    assert_eq!(
        v["series"]["loss"]["steps"],
        serde_json::json!([1, 2, 3, 4, 5, 6, 7, 8]),
        "every line stored: {v}"
    );
    let rw = &v["rewritten"][0];
    assert_eq!(rw["source"], "metrics");
    assert!(rw["rewrites"].as_i64().unwrap() >= 1, "{v}");
    let shown = String::from_utf8_lossy(&ws.run(&["show", "gt"]).stdout).into_owned();
    assert_eq!(
        shown.matches("was rewritten in place").count(),
        1,
        "{shown}"
    );
}

// 3. Another gantry command can mark a healthy run `crashed`.
#[test]
fn listing_runs_beside_gantry_run_never_marks_a_healthy_run_crashed() {
    let ws = Ws::new();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lister = {
        let stop = stop.clone();
        let root = ws.root.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = Command::new(env!("CARGO_BIN_EXE_gantry"))
                    .arg("--workspace")
                    .arg(&root)
                    .args(["runs", "--json"])
                    .stdin(Stdio::null())
                    .output();
            }
        })
    };
    let runs: Vec<_> = (0..10)
        .map(|i| {
            ws.cmd(&[
                "run",
                "-n",
                &format!("r{i}"),
                "--",
                "sh",
                "-c",
                "echo '{\"x\": 1}' >> \"$GANTRY_METRICS\"",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for r in runs {
        let out = r.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    lister.join().unwrap();
    let v = ws.json(&["runs", "--json", "--limit", "0"]);
    let statuses: Vec<(String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(statuses.len(), 10);
    assert!(
        statuses.iter().all(|(_, s)| s == "finished"),
        "{statuses:?}"
    );
}

// 4. A FIFO at $GANTRY_METRICS hangs every command in the workspace.
#[test]
fn a_fifo_at_the_metrics_path_blocks_no_command() {
    let ws = Ws::new();
    let script = r#"rm "$GANTRY_METRICS"; mkfifo "$GANTRY_METRICS"; sleep 2"#;
    let root = ws.root.clone();
    let out = within(60, "gantry run with a FIFO", move || {
        Command::new(env!("CARGO_BIN_EXE_gantry"))
            .arg("--workspace")
            .arg(&root)
            .args(["run", "-n", "fifo", "--", "sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    });
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("FIFO").count(), 1, "reported once: {stderr}");
    let root = ws.root.clone();
    let listed = within(30, "gantry runs", move || {
        Command::new(env!("CARGO_BIN_EXE_gantry"))
            .arg("--workspace")
            .arg(&root)
            .args(["runs", "--json"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    });
    assert!(listed.status.success());
    assert_eq!(ws.json(&["show", "fifo", "--json"])["status"], "finished");
}

// 4, while the run lives: a detached run whose metrics path is a FIFO.
#[test]
fn a_fifo_left_by_a_live_run_blocks_neither_listing_nor_sigterm() {
    let ws = Ws::new();
    let script = r#"rm "$GANTRY_METRICS"; mkfifo "$GANTRY_METRICS"; sleep 30"#;
    let mut child = ws
        .cmd(&["run", "-n", "live", "--", "sh", "-c", script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = ws.run(&["show", "live", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let dir = PathBuf::from(v["run_dir"].as_str().unwrap_or("/nonexistent"));
        if std::fs::symlink_metadata(dir.join("metrics.jsonl"))
            .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the FIFO never appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(600)); // a few ingest ticks on the FIFO
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = within(30, "the supervisor after SIGTERM", move || {
        child.wait().unwrap()
    });
    assert_eq!(status.code(), Some(143), "the command got SIGTERM");
    assert_eq!(ws.json(&["show", "live", "--json"])["status"], "killed");
}

// 5. Deep nesting in a filter overflows the stack.
#[test]
fn a_deeply_nested_filter_is_an_error_not_an_abort() {
    let ws = Ws::new();
    for f in ["(".repeat(10_000), format!("{}x", "-".repeat(50_000))] {
        let out = ws.run(&["runs", &format!("--filter={f}")]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("nested more than 64 deep"),
            "{}",
            text(&out)
        );
    }
}

// 7. Control characters reach the terminal.
#[test]
fn control_characters_in_names_never_reach_the_terminal_raw() {
    let ws = Ws::new();
    let evil = "x\x1b]52;c;cHduZWQ=\x07\x1b[2J\ry";
    let out = ws.run(&[
        "run",
        "-n",
        evil,
        "-e",
        &format!("exp{evil}"),
        "--tag",
        &format!("t{evil}=v{evil}"),
        "--",
        "sh",
        "-c",
        "printf '{\"k\\\\u001b[31m\": 1}\\n' >> \"$GANTRY_METRICS\"",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let plain = ws.run(&["run", "-n", "plain", "--", "true"]);
    assert!(plain.status.success(), "{}", text(&plain));
    let v = ws.json(&["runs", "--json", "--sort", "started"]);
    assert_eq!(v[0]["name"], evil, "JSON stays exact");
    let id = v[0]["id"].as_str().unwrap().to_string();
    for args in [
        vec!["runs"],
        vec!["show", &id],
        vec!["compare", &id, "plain"],
    ] {
        let out = ws.run(&args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        let all = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
        assert!(
            !all.iter().any(|b| matches!(b, 0x1b | 0x07 | b'\r')),
            "{args:?} printed a raw control character: {:?}",
            String::from_utf8_lossy(&all)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("\\x1b"),
            "{args:?} shows it escaped: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

// 8. A closed output pipe panics.
#[test]
fn a_closed_pipe_ends_json_output_quietly() {
    let ws = Ws::new();
    let script = "for i in $(seq 1 3000); do echo \"{\\\"a_long_metric_name_$((i % 50))\\\": $i}\"; done >> \"$GANTRY_METRICS\"";
    for i in 0..3 {
        let out = ws.run(&["run", "-n", &format!("p{i}"), "--", "sh", "-c", script]);
        assert!(out.status.success(), "{}", text(&out));
    }
    for args in [
        vec!["runs", "--json"],
        vec!["show", "p0", "--json", "--points"],
    ] {
        let mut child = ws
            .cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut ten = [0u8; 10];
        std::io::Read::read_exact(&mut stdout, &mut ten).unwrap();
        drop(stdout); // `| head -c 10`
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {stderr}");
        assert!(out.status.success(), "{args:?} ends quietly: {stderr}");
    }
}

use common::Tmpfs;

/// A workspace whose store lives on a small tmpfs (`fill` fills it) and whose run folders stay
/// on the real disk, so the command can still write its metrics while the store cannot.
fn full_disk_workspace() -> Option<(Ws, Tmpfs, PathBuf)> {
    let ws = Ws::new();
    let gantry = ws.root.join(".gantry");
    let small = ws.root.join("small");
    std::fs::create_dir(&small).unwrap();
    let fs = Tmpfs::mount(&small, "2m")?;
    // Move the store onto the tmpfs: the runs folder stays where it is.
    for f in ["gantry.db", "gantry.db-wal", "gantry.db-shm"] {
        let from = gantry.join(f);
        if from.exists() {
            std::fs::copy(&from, small.join(f)).unwrap();
            std::fs::remove_file(&from).unwrap();
            std::os::unix::fs::symlink(small.join(f), &from).unwrap();
        }
    }
    Some((ws, fs, small.join("fill")))
}

// 2. A full disk loses metrics for good and breaks the store connection.
#[test]
fn a_full_disk_loses_no_metric_and_the_run_ends_as_its_command_did() {
    let Some((ws, _fs, fill)) = full_disk_workspace() else {
        return common::skip("cannot mount a 2 MiB tmpfs here (needs root) to fill it");
    };
    let script = format!(
        r#"dd if=/dev/zero of={fill} bs=64k 2>/dev/null; for i in $(seq 0 49); do echo "{{\"step\": $i, \"x\": $i}}" >> "$GANTRY_METRICS"; sleep 0.02; done; sleep 1; rm {fill}; for i in $(seq 50 99); do echo "{{\"step\": $i, \"x\": $i}}" >> "$GANTRY_METRICS"; sleep 0.02; done"#,
        fill = fill.display()
    );
    let out = ws.run(&["run", "-n", "full", "--", "sh", "-c", &script]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(!all.contains("transaction depth"), "{all}");
    assert!(
        all.contains("cannot store metrics"),
        "the full disk was reported: {all}"
    );
    let v = ws.json(&["show", "full", "--json", "--points"]);
    assert_eq!(v["status"], "finished", "{all}");
    assert_eq!(
        v["series"]["x"]["steps"],
        serde_json::json!((0..100).collect::<Vec<i64>>()),
        "every line stored once"
    );
}

#[test]
fn a_disk_that_stays_full_keeps_the_commands_exit_and_stores_it_later() {
    let Some((ws, _fs, fill)) = full_disk_workspace() else {
        return common::skip("cannot mount a 2 MiB tmpfs here (needs root) to fill it");
    };
    let script = format!(
        r#"dd if=/dev/zero of={fill} bs=64k 2>/dev/null; for i in $(seq 0 49); do echo "{{\"step\": $i, \"x\": $i}}" >> "$GANTRY_METRICS"; done"#,
        fill = fill.display()
    );
    let out = ws.run(&["run", "-n", "stays", "--", "sh", "-c", &script]);
    let all = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the command's exit, not gantry's: {all}"
    );
    assert!(all.contains("end.json"), "{all}");
    std::fs::remove_file(&fill).unwrap();
    let v = ws.json(&["show", "stays", "--json", "--points"]);
    assert_eq!(v["status"], "finished");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(
        v["series"]["x"]["steps"],
        serde_json::json!((0..50).collect::<Vec<i64>>())
    );
}

// The disk filled before the store got the command's pid: the run's end, kept in its folder, is
// what recovery goes by, not the grace a just-started run gets.
#[test]
fn an_end_kept_in_the_run_folder_settles_a_run_whose_pid_never_reached_the_store() {
    let ws = Ws::new();
    let dir = ws.root.join("run-dir");
    std::fs::create_dir(&dir).unwrap();
    let now = gantry::domain::now_ms();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = rt.block_on(async {
        let store = gantry::store::Store::open(&ws.root.join(".gantry/gantry.db"))
            .await
            .unwrap();
        let run = store
            .create_run(&gantry::domain::NewRun {
                name: "no-pid".into(),
                experiment: "default".into(),
                started_ms: now - 1_000,
                host: gantry::host::hostname(),
                user: "u".into(),
                run_dir: dir.display().to_string(),
                ..Default::default()
            })
            .await
            .unwrap();
        store.close().await;
        run.id
    });
    // Without an end, a run this young (and without a pid) is taken to be starting.
    assert_eq!(ws.json(&["show", &id, "--json"])["status"], "running");
    gantry::capture::ended::reserve(&dir).unwrap();
    gantry::capture::ended::write(
        &dir,
        &gantry::capture::ended::End {
            status: gantry::domain::RunStatus::Failed,
            exit_code: Some(3),
            ended_ms: now,
        },
    )
    .unwrap();
    let v = ws.json(&["show", &id, "--json"]);
    assert_eq!(
        (&v["status"], &v["exit_code"], &v["ended_ms"]),
        (&"failed".into(), &3.into(), &now.into())
    );
}

// Smaller: a read-only workspace could not be read, because listing created a lock file.
#[test]
fn a_read_only_workspace_can_be_listed_and_shown() {
    let ws = Ws::new();
    let ro = ws.root.join("ro");
    std::fs::create_dir(&ro).unwrap();
    let Some(fs) = Tmpfs::mount(&ro, "16m") else {
        return common::skip("cannot mount a tmpfs here (needs root) to make it read-only");
    };
    let g = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gantry"))
            .arg("--workspace")
            .arg(&ro)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    assert!(g(&["init"]).status.success());
    let out = g(&[
        "run",
        "-n",
        "kept",
        "--",
        "sh",
        "-c",
        "echo '{\"loss\": 1}' >> \"$GANTRY_METRICS\"",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // Read-only for everyone, root included: remount the filesystem read-only.
    let remount = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&fs.0)
        .output()
        .unwrap();
    assert!(remount.status.success(), "{}", text(&remount));
    let out = g(&["runs", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["name"], "kept");
    assert_eq!(v[0]["metrics"]["loss"]["points"], 1);
    let out = g(&["show", "kept"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("error"),
        "{}",
        text(&out)
    );
}
