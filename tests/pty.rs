//! The real binary in a pseudo-terminal, read back through a vt100 parser: it switches tabs,
//! quits, and leaves the alternate screen, also when killed by SIGTERM or SIGHUP.

mod common;

use common::pty::Session;

use std::path::Path;
use std::time::Duration;

fn demo_workspace(home: &Path) -> String {
    let dir = home.join("demo");
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["demo", "--no-open"])
        .arg(&dir)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    dir.display().to_string()
}

#[test]
fn switches_tabs_by_key_and_mouse_then_quits_cleanly() {
    let home = tempfile::tempdir().unwrap();
    let ws = demo_workspace(home.path());
    let mut s = Session::start(home.path(), &["--workspace", &ws]);
    s.wait_text("Runs (9)");
    s.wait_text("resnet50-warmup");
    s.send("2");
    s.wait_text("Models (2)");
    s.wait_text("resnet50");
    s.send("3");
    s.wait_for("the GPUs tab", |t| {
        t.contains("No GPU data") || t.contains("GPUs (")
    });
    s.send("4");
    s.wait_text("History · NVIDIA A100-SXM4-80GB");
    s.wait_text("▼ 8.0% below median");
    s.send("\t");
    s.wait_text("Runs (9)");
    s.send("?");
    s.wait_text("Show or hide this help");
    s.send("\x1b");
    s.wait_for("help to close", |t| !t.contains("Show or hide this help"));
    // A left click (SGR mouse report, 1-based) on the " 2 Models " title.
    let (_, _, cols) = gantry::app::Tab::bar()[1].clone();
    s.send(&format!(
        "\x1b[<0;{};1M\x1b[<0;{};1m",
        cols.start + 2,
        cols.start + 2
    ));
    s.wait_text("Models (2)");
    s.send("q");
    let st = s.wait_exit();
    assert!(st.success(), "{st:?}");
    s.assert_terminal_restored();
}

#[test]
fn sigterm_restores_the_terminal() {
    killed_by(libc::SIGTERM);
}

#[test]
fn sighup_restores_the_terminal() {
    killed_by(libc::SIGHUP);
}

fn killed_by(sig: i32) {
    let home = tempfile::tempdir().unwrap();
    let ws = demo_workspace(home.path());
    let mut s = Session::start(home.path(), &["--workspace", &ws]);
    s.wait_text("Runs (9)");
    let pid = s.child.process_id().unwrap() as i32;
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    s.wait_exit();
    s.assert_terminal_restored();
}

#[test]
fn a_broken_config_is_named_with_its_line_and_defaults_carry_on() {
    let home = tempfile::tempdir().unwrap();
    let ws = demo_workspace(home.path());
    std::fs::create_dir_all(home.path().join("config/gantry")).unwrap();
    std::fs::write(
        home.path().join("config/gantry/config.toml"),
        "theme = \"light\"\nrefresh_ms = 1000\n[keymap]\nquit = [\"ctrl-nope\"]\n",
    )
    .unwrap();
    let mut s = Session::start(home.path(), &["--workspace", &ws]);
    s.wait_text("config.toml:4: keymap.quit: unknown key `nope`");
    s.send("2");
    s.wait_text("Models (2)");
    s.send("q");
    assert!(
        s.wait_exit().success(),
        "q still quits: the default keys were kept"
    );
    s.assert_terminal_restored();
}

#[test]
fn gantry_run_keeps_the_command_interactive_and_ctrl_c_reaches_it() {
    let ok = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        return common::skip(
            "python3 is not installed; this test runs an interactive Python command",
        );
    }
    let home = tempfile::tempdir().unwrap();
    let ws = home.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let init = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("init")
        .arg(&ws)
        .output()
        .unwrap();
    assert!(init.status.success());
    let script = "import os, sys, time\n\
                  print('ttys', os.isatty(0), os.isatty(1), os.isatty(2), flush=True)\n\
                  name = input('name? ')\n\
                  print('hello', name, flush=True)\n\
                  time.sleep(60)\n";
    let mut s = Session::start(
        home.path(),
        &[
            "--workspace",
            ws.to_str().unwrap(),
            "run",
            "-n",
            "chat",
            "--",
            "python3",
            "-c",
            script,
        ],
    );
    s.wait_text("ttys True True True");
    s.wait_text("name?");
    s.send("ana\r");
    s.wait_text("hello ana");
    s.send("\x03"); // Ctrl-C, through the terminal's line discipline
    let st = s.wait_exit();
    assert_eq!(st.exit_code(), 130, "128 + SIGINT");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args([
            "--workspace",
            ws.to_str().unwrap(),
            "show",
            "chat",
            "--json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "killed");
    assert_eq!(v["exit_code"], -2);
    let log = std::fs::read_to_string(
        std::path::Path::new(v["run_dir"].as_str().unwrap()).join("output.log"),
    )
    .unwrap();
    assert!(log.contains("hello ana"), "the log has the output: {log}");
}

#[test]
fn a_live_run_appears_and_updates_in_the_workbench_without_a_key() {
    let ok = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        return common::skip(
            "python3 is not installed; this test runs the fixture training script",
        );
    }
    let home = tempfile::tempdir().unwrap();
    let ws = home.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let gantry = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
            .arg("--workspace")
            .arg(&ws)
            .args(args)
            .output()
            .unwrap()
    };
    assert!(gantry(&["init"]).status.success());
    let mut s = Session::start(home.path(), &["--workspace", ws.to_str().unwrap()]);
    s.wait_text("No runs in this workspace yet.");
    let train = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/scripts/train.py");
    let out = gantry(&[
        "run",
        "-d",
        "-n",
        "live",
        "--",
        "python3",
        train,
        "--sleep",
        "0.1",
        "--epochs",
        "2",
        "--steps-per-epoch",
        "15",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No key pressed: the new run shows up through the store watcher.
    s.wait_for("the run to appear running", |t| {
        t.contains("live") && t.contains("running")
    });
    s.send("\r");
    s.wait_text("train/loss");
    s.wait_text("Log (following)");
    // Its metrics and log keep coming, and it ends, all without a key.
    s.wait_for("the log to reach the end", |t| t.contains("done"));
    s.wait_for("the run to finish", |t| t.contains("finished"));
    s.wait_text("Metrics 1-4 of 4");
    s.send("q");
    assert!(s.wait_exit().success());
    s.assert_terminal_restored();
}

#[test]
fn a_run_logged_through_gantry_serve_appears_live_in_the_workbench() {
    let home = tempfile::tempdir().unwrap();
    let ws = home.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let init = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("--workspace")
        .arg(&ws)
        .arg("init")
        .output()
        .unwrap();
    assert!(init.status.success());
    let mut s = Session::start(home.path(), &["--workspace", ws.to_str().unwrap()]);
    s.wait_text("No runs in this workspace yet.");
    let server = common::serve::Server::start(&ws, &[], &[]);
    let run = server.new_run("api", "via-mlflow-api");
    s.wait_for("the API's run to appear running", |t| {
        t.contains("via-mlflow-api") && t.contains("running")
    });
    let points: Vec<serde_json::Value> = (0..50)
        .map(|i| serde_json::json!({"key": "api/loss", "value": 1.0 / (i as f64 + 1.0), "timestamp": 1_700_000_000_000i64 + i, "step": i}))
        .collect();
    let (st, _) = server.post(
        "runs/log-batch",
        serde_json::json!({"run_id": run, "metrics": points, "params": [{"key": "lr", "value": "0.01"}]}),
    );
    assert_eq!(st, 200);
    s.send("\r");
    s.wait_text("api/loss");
    let (st, _) = server.post(
        "runs/update",
        serde_json::json!({"run_id": run, "status": "FINISHED"}),
    );
    assert_eq!(st, 200);
    s.wait_for("the run to finish", |t| t.contains("finished"));
    s.send("q");
    assert!(s.wait_exit().success());
    s.assert_terminal_restored();
}

#[test]
fn gantry_gpu_watch_redraws_in_place_on_a_terminal() {
    let home = tempfile::tempdir().unwrap();
    let rec = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/gpu/a100-x2.made-up.jsonl"
    );
    let mut s = Session::start(home.path(), &["--gpu-replay", rec, "gpu", "--watch", "0.1"]);
    s.wait_text("ctrl-c stops");
    // Several frames later the table still starts at the top: drawn over, not appended.
    std::thread::sleep(Duration::from_millis(800));
    let screen = s.screen();
    assert!(
        screen.starts_with("driver 580.95.05") && screen.matches("driver 580.95.05").count() == 1,
        "{screen}"
    );
    s.send("\x03");
    s.wait_exit();
}

#[test]
fn the_demo_shows_a_fleet_of_replayed_boxes_and_stops_them_on_exit() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("demo");
    let mut s = Session::start_sized(home.path(), &["demo", dir.to_str().unwrap()], 40, 160);
    s.wait_text("Runs (9)");
    s.send("3");
    s.wait_text("fleet: 4 hosts");
    s.wait_for("three boxes read, one free GPU, one stale", |t| {
        t.contains("box-a") && t.contains("box-c") && t.contains("1 free · 1 stale")
    });
    s.wait_text("throttled: hw thermal");
    s.wait_text("stale: http://127.0.0.1:1/metrics");
    // Rows: this box, 127.0.0.1:1, box-a…
    s.send("j");
    s.send("j");
    s.send("\r");
    s.wait_text("box-a (esc: all hosts)");
    s.wait_text("NVIDIA A100-SXM4-80GB");
    s.send("\x1b");
    s.wait_text("fleet: 4 hosts");
    let servers = || {
        std::process::Command::new("pgrep")
            .args(["-f", &format!("{}/.gantry/fleet-box", dir.display())])
            .output()
            .unwrap()
    };
    assert_eq!(
        String::from_utf8_lossy(&servers().stdout).lines().count(),
        3,
        "the three boxes' servers"
    );
    s.send("q");
    let st = s.wait_exit();
    assert!(st.success(), "{st:?}");
    s.assert_terminal_restored();
    // The boxes' servers went with the demo.
    let left = servers();
    assert!(
        left.stdout.is_empty(),
        "servers left running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn every_key_of_the_keymap_is_reachable_in_help_at_80x24() {
    use gantry::app::Keymap;
    use gantry::config::Config;
    let home = tempfile::tempdir().unwrap();
    let ws = demo_workspace(home.path());
    let mut s = Session::start_sized(home.path(), &["--workspace", &ws], 24, 80);
    s.wait_text("Runs (9)");
    s.send("?");
    s.wait_text("Show or hide this help");
    // Scroll a line at a time to the end, keeping every screen seen.
    let place = |t: &str| -> Option<(usize, usize)> {
        let t = t.lines().find(|l| l.contains(" scroll "))?;
        let at = t.find(" of ")?;
        let before = &t[..at];
        let dash = before.rfind('–')?;
        let last: usize = before[dash + '–'.len_utf8()..].trim().parse().ok()?;
        let total: usize = t[at + 4..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()?;
        Some((last, total))
    };
    s.wait_for("help to say where it is", |t| place(t).is_some());
    let mut seen = s.screen();
    let (mut last, total) = place(&seen).expect("help shows where it is at 80×24");
    while last < total {
        s.send("j");
        let want = last + 1;
        s.wait_for("help to scroll a line", |t| {
            place(t).is_some_and(|(l, _)| l == want)
        });
        seen.push_str(&s.screen());
        last = want;
    }
    let (keymap, _) = Keymap::build(&Config::defaults());
    for (info, keys) in keymap.entries() {
        for k in keys {
            assert!(
                seen.contains(&k.to_string()),
                "key {k} of `{}` never shown",
                info.name
            );
        }
        let start: String = info.description.chars().take(40).collect();
        let start = start.rsplit_once(' ').map_or(start.as_str(), |(a, _)| a);
        assert!(seen.contains(start), "`{}` never shown", info.description);
    }
    s.send("q");
    s.send("\x1b");
    s.send("q");
    let st = s.wait_exit();
    assert!(st.success(), "{st:?}");
    s.assert_terminal_restored();
}
