//! The PostgreSQL team store, against a real server (tests/common/postgres.rs): choosing the
//! store, `gantry where --check`, migrations from several processes at once, the errors for a
//! store that cannot be reached, and every command on one store from two boxes.

mod common;

use std::process::Command;

fn gantry(ws: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gantry"));
    c.arg("--workspace")
        .arg(ws)
        .env_remove("GANTRY_STORE")
        .env_remove("PGPASSWORD")
        .env("HOME", ws);
    c
}

fn workspace() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("init")
        .arg(d.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    d
}

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn where_names_the_store_in_use_and_why_without_its_password() {
    let ws = workspace();
    let w = |c: &mut Command| {
        let out = c.args(["where", "--json"]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let v = w(&mut gantry(ws.path()));
    assert_eq!(v["store_kind"], "sqlite");
    assert_eq!(v["store_source"], "the workspace's own SQLite file");
    assert!(v["store"].as_str().unwrap().ends_with(".gantry/gantry.db"));
    let out = gantry(ws.path())
        .args(["where", "--check", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["server"].as_str().unwrap().starts_with("SQLite 3."),
        "{v}"
    );
    assert_eq!(v["schema"], 9);

    std::fs::write(
        ws.path().join(".gantry/config.toml"),
        "store = \"postgres://alice:s3cret@db.example:5433/team\"\n",
    )
    .unwrap();
    let v = w(&mut gantry(ws.path()));
    assert_eq!(v["store_kind"], "postgres");
    assert_eq!(v["store"], "postgres://alice:***@db.example:5433/team");
    assert!(v["store_source"].as_str().unwrap().contains("config.toml"));

    let v = w(gantry(ws.path()).env("GANTRY_STORE", "postgres://bob:pw2@h/x?password=pw3"));
    assert_eq!(v["store_source"], "given with GANTRY_STORE");
    assert_eq!(v["store"], "postgres://bob:***@h/x?password=***");

    let v = w(gantry(ws.path())
        .env("GANTRY_STORE", "postgres://bob@h/x")
        .args(["--store", "sqlite:other.db"]));
    assert_eq!(v["store_source"], "given with --store");
    assert_eq!(v["store_kind"], "sqlite");

    // The human form never shows the password either.
    let out = gantry(ws.path()).arg("where").output().unwrap();
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("postgres://alice:***@db.example:5433/team"),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cret"), "{stdout}");

    // A bad config is an error with its line, not a silent fall back to the local store.
    std::fs::write(ws.path().join(".gantry/config.toml"), "\nstor = \"x\"\n").unwrap();
    let out = gantry(ws.path()).arg("where").output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("config.toml:2"), "{stderr}");
}

#[test]
fn a_store_that_cannot_be_reached_names_host_port_and_reason() {
    let ws = workspace();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for args in [vec!["where", "--check"], vec!["runs"]] {
        let out = gantry(ws.path())
            .env(
                "GANTRY_STORE",
                format!("postgres://alice:s3cret@127.0.0.1:{port}/team"),
            )
            .args(&args)
            .output()
            .unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot reach the team store at 127.0.0.1:{port}")),
            "{stderr}"
        );
        assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
        assert!(!stderr.contains("s3cret"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let out = gantry(ws.path())
        .args(["--store", "mysql://u@h/db", "runs"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("is not a store URL"), "{stderr}");
}

#[test]
fn four_hosts_starting_at_once_migrate_the_team_store_once() {
    let Some(url) = common::postgres::fresh_db() else {
        return;
    };
    let ws = workspace();
    let children: Vec<_> = (0..4)
        .map(|_| {
            gantry(ws.path())
                .env("GANTRY_STORE", &url)
                .args(["where", "--check", "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert!(
            v["server"].as_str().unwrap().starts_with("PostgreSQL "),
            "{v}"
        );
        assert_eq!(v["schema"], 9, "{v}");
    }
    // Each migration applied once, and the tables are PostgreSQL's own (chunks as BYTEA).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Row};
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        let rows = sqlx::query("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut c)
            .await
            .unwrap();
        let got: Vec<(i64, bool)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(got, (1..=9).map(|v| (v, true)).collect::<Vec<_>>());
        let t: String = sqlx::query_scalar(
            "SELECT data_type FROM information_schema.columns \
             WHERE table_name = 'series_chunks' AND column_name = 'data'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!(t, "bytea");
    });

    // The commands that keep runs work on it: an empty store lists no runs.
    let out = gantry(ws.path())
        .env("GANTRY_STORE", &url)
        .args(["runs", "--json"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), "[]");
}

#[test]
fn host_names_can_be_set_and_recovery_ends_only_this_hosts_runs() {
    let ws = workspace();
    let cfg = tempfile::tempdir().unwrap();
    let run_as = |host: Option<&str>, name: &str| {
        let mut c = gantry(ws.path());
        c.env("XDG_CONFIG_HOME", cfg.path());
        if let Some(h) = host {
            c.env("GANTRY_HOST", h);
        }
        let out = c.args(["run", "-n", name, "--", "true"]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    run_as(Some("gpu-a"), "on-a");
    // The user's config names the box; GANTRY_HOST wins over it.
    std::fs::create_dir_all(cfg.path().join("gantry")).unwrap();
    std::fs::write(cfg.path().join("gantry/config.toml"), "host = \"gpu-b\"\n").unwrap();
    run_as(None, "on-b");
    run_as(Some("gpu-c"), "on-c");
    let runs = |filter: &str| {
        let out = gantry(ws.path())
            .args(["runs", "--json", "--filter", filter])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_string(),
                    r["host"].as_str().unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        runs(""),
        [("on-c", "gpu-c"), ("on-b", "gpu-b"), ("on-a", "gpu-a")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(
        runs("host:GPU-B"),
        [("on-b".to_string(), "gpu-b".to_string())]
    );

    // The table shows a HOST column only when its runs come from more than one host.
    let table = |filter: &str| {
        let out = gantry(ws.path())
            .args(["runs", "--filter", filter])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let all = table("");
    assert!(all.lines().next().unwrap().contains("HOST"), "{all}");
    assert!(all.contains("gpu-a") && all.contains("gpu-c"), "{all}");
    assert!(all.lines().all(|l| l.chars().count() <= 80), "{all}");
    assert!(!table("host:gpu-a").contains("HOST"));

    // A running run of another host whose pid is dead here stays running: only its own host
    // may end it from a pid.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let pid = i64::from(dead.id());
    dead.wait().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = rt.block_on(async {
        let store = gantry::store::Store::open(&ws.path().join(".gantry/gantry.db"))
            .await
            .unwrap();
        let run = store
            .create_run(&gantry::domain::NewRun {
                name: "elsewhere".into(),
                experiment: "default".into(),
                started_ms: gantry::domain::now_ms() - 60_000,
                host: "gpu-z".into(),
                user: "u".into(),
                pid: Some(pid),
                ..Default::default()
            })
            .await
            .unwrap();
        store.close().await;
        run.id
    });
    let status = |host: &str| {
        let out = gantry(ws.path())
            .env("GANTRY_HOST", host)
            .args(["show", &id, "--json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["status"].as_str().unwrap().to_string()
    };
    assert_eq!(status("gpu-y"), "running");
    assert_eq!(status("gpu-z"), "crashed");
}

/// `gantry show RUN --json` as `host` sees it, with the user config in `cfg`.
fn show_as(
    ws: &std::path::Path,
    cfg: &std::path::Path,
    host: &str,
    run: &str,
) -> serde_json::Value {
    let out = gantry(ws)
        .env("XDG_CONFIG_HOME", cfg)
        .env("GANTRY_HOST", host)
        .args(["show", run, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_run_whose_gantry_is_killed_is_lost_elsewhere_and_crashed_only_by_its_host() {
    let ws = workspace();
    let cfg = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(cfg.path().join("gantry")).unwrap();
    let config = |text: &str| std::fs::write(cfg.path().join("gantry/config.toml"), text).unwrap();
    config("lost_after_s = 3\ncrashed_after_s = 600\n");
    let mut gantry_a = gantry(ws.path())
        .env("XDG_CONFIG_HOME", cfg.path())
        .env("GANTRY_HOST", "gpu-a")
        .args(["run", "-n", "long", "--", "sleep", "120"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the command to start, then kill its gantry outright.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let pid = loop {
        let out = gantry(ws.path())
            .env("GANTRY_HOST", "gpu-b")
            .args(["show", "long", "--json"])
            .output()
            .unwrap();
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if let Some(p) = v["pid"].as_i64() {
                assert_eq!(v["status"], "running");
                assert!(v["heartbeat_ms"].is_i64(), "{v}");
                assert!(v["lost_ms"].is_null(), "{v}");
                break p;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // Alive, its heartbeat stays fresh past lost_after_s.
    std::thread::sleep(std::time::Duration::from_millis(3_500));
    let v = show_as(ws.path(), cfg.path(), "gpu-b", "long");
    assert!(v["lost_ms"].is_null(), "a live run is never lost: {v}");

    gantry_a.kill().unwrap();
    gantry_a.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(4_000));
    // Another host: lost, still running; its pid table says nothing about gpu-a's processes.
    let v = show_as(ws.path(), cfg.path(), "gpu-b", "long");
    assert_eq!(v["status"], "running", "{v}");
    assert!(v["lost_ms"].as_i64().unwrap() > 3_000, "{v}");
    let out = gantry(ws.path())
        .env("XDG_CONFIG_HOME", cfg.path())
        .env("GANTRY_HOST", "gpu-b")
        .args(["runs"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("lost ("), "{table}");
    let out = gantry(ws.path())
        .env("XDG_CONFIG_HOME", cfg.path())
        .env("GANTRY_HOST", "gpu-b")
        .args(["runs", "--json", "--filter", "status:lost"])
        .output()
        .unwrap();
    let lost: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(lost.as_array().unwrap().len(), 1, "{lost}");
    assert_eq!(lost[0]["name"], "long");
    // Its own host: the command still runs, so the run is not crashed...
    let v = show_as(ws.path(), cfg.path(), "gpu-a", "long");
    assert_eq!(v["status"], "running", "{v}");
    // ...until the command is gone.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let v = show_as(ws.path(), cfg.path(), "gpu-a", "long");
    assert_eq!(v["status"], "crashed", "{v}");
}

#[test]
fn another_hosts_run_silent_past_crashed_after_is_crashed_at_its_last_heartbeat() {
    let ws = workspace();
    let cfg = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(cfg.path().join("gantry")).unwrap();
    std::fs::write(
        cfg.path().join("gantry/config.toml"),
        "lost_after_s = 3\ncrashed_after_s = 5\n",
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let now = gantry::domain::now_ms();
    let (silent, fresh) = rt.block_on(async {
        let store = gantry::store::Store::open(&ws.path().join(".gantry/gantry.db"))
            .await
            .unwrap();
        let mut ids = Vec::new();
        for (name, beat) in [("silent", now - 6_000), ("fresh", now)] {
            let run = store
                .create_run(&gantry::domain::NewRun {
                    name: name.into(),
                    experiment: "default".into(),
                    started_ms: now - 60_000,
                    host: "gpu-z".into(),
                    user: "u".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            store.heartbeat(&run.id, beat).await.unwrap();
            ids.push(run.id);
        }
        store.close().await;
        (ids[0].clone(), ids[1].clone())
    });
    let v = show_as(ws.path(), cfg.path(), "gpu-y", &silent);
    assert_eq!(v["status"], "crashed", "{v}");
    assert_eq!(v["ended_ms"], now - 6_000, "ended at its last heartbeat");
    let v = show_as(ws.path(), cfg.path(), "gpu-y", &fresh);
    assert_eq!(v["status"], "running", "{v}");
}

#[test]
fn a_runs_output_is_read_from_another_host_and_followed_while_it_runs() {
    let ws = workspace();
    let script =
        "for i in $(seq 1 30); do echo \"line $i of the output\"; sleep 0.05; done; echo done";
    let mut on_a = gantry(ws.path())
        .env("GANTRY_HOST", "gpu-a")
        .args(["run", "-n", "talky", "--", "sh", "-c", script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Follow from another host as soon as the run exists.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !gantry(ws.path())
        .env("GANTRY_HOST", "gpu-b")
        .args(["show", "talky"])
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let followed = gantry(ws.path())
        .env("GANTRY_HOST", "gpu-b")
        .args(["logs", "-f", "talky"])
        .output()
        .unwrap();
    assert!(on_a.wait().unwrap().success());
    let want: String = (1..=30)
        .map(|i| format!("line {i} of the output\n"))
        .chain(["done\n".to_string()])
        .collect();
    // The command ran in a pseudo-terminal or not; either way the bytes are the log file's.
    let v = show_as(ws.path(), ws.path(), "gpu-b", "talky");
    let file =
        std::fs::read(std::path::Path::new(v["run_dir"].as_str().unwrap()).join("output.log"))
            .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&file).replace("\r\n", "\n"),
        want,
        "the local log"
    );
    assert_eq!(
        followed.stdout, file,
        "followed from another host, byte for byte"
    );
    // Read again, whole, from the other host; and from this host once its file is gone.
    let again = gantry(ws.path())
        .env("GANTRY_HOST", "gpu-b")
        .args(["logs", "talky"])
        .output()
        .unwrap();
    assert_eq!(again.stdout, file);
    std::fs::remove_file(std::path::Path::new(v["run_dir"].as_str().unwrap()).join("output.log"))
        .unwrap();
    let own = gantry(ws.path())
        .env("GANTRY_HOST", "gpu-a")
        .args(["logs", "talky"])
        .output()
        .unwrap();
    assert_eq!(own.stdout, file, "stored exactly once");
}

/// Every command on one team store from two boxes: a run made on gpu01 is listed, shown,
/// compared, tagged, exported, read back and deleted from gpu02's workspace; models, bench
/// history and imports land in the same database; and a second store takes an export.
#[test]
fn every_command_works_on_a_team_store_from_two_boxes() {
    let Some(url) = common::postgres::fresh_db() else {
        return;
    };
    let (gpu01, gpu02) = (workspace(), workspace());
    let on = |ws: &tempfile::TempDir, host: &str, args: &[&str]| {
        let out = gantry(ws.path())
            .env("GANTRY_STORE", &url)
            .env("GANTRY_HOST", host)
            .args(args)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success(),
            "{host}: gantry {args:?}\n{stdout}{stderr}"
        );
        stdout
    };
    let json = |ws: &tempfile::TempDir, host: &str, args: &[&str]| -> serde_json::Value {
        serde_json::from_str(&on(ws, host, args)).unwrap()
    };
    on(
        &gpu01,
        "gpu01",
        &[
            "run",
            "-n",
            "a1",
            "--param",
            "lr=0.1",
            "--",
            "sh",
            "-c",
            "for i in 1 2 3; do echo \"{\\\"step\\\":$i,\\\"loss\\\":0.$i}\"; done; echo said-on-gpu01",
        ],
    );
    on(
        &gpu02,
        "gpu02",
        &[
            "run",
            "-n",
            "b1",
            "--param",
            "lr=0.2",
            "--",
            "sh",
            "-c",
            "echo '{\"step\":1,\"loss\":0.9}'",
        ],
    );

    // Each box lists both runs, with the host each ran on.
    for (ws, host) in [(&gpu01, "gpu01"), (&gpu02, "gpu02")] {
        let runs = json(ws, host, &["runs", "--json"]);
        let got: Vec<(String, String, String)> = runs
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let s = |k: &str| r[k].as_str().unwrap().to_string();
                (s("name"), s("host"), s("status"))
            })
            .collect();
        let want = [("b1", "gpu02"), ("a1", "gpu01")]
            .map(|(n, h)| (n.to_string(), h.to_string(), "finished".to_string()));
        assert_eq!(got, want, "as {host} sees them");
    }
    // gpu02 reads gpu01's run whole: params, metrics and its output.
    let a1 = json(&gpu02, "gpu02", &["show", "a1", "--json"]);
    assert_eq!(a1["host"], "gpu01", "{a1}");
    assert_eq!(a1["params"]["lr"], "0.1", "{a1}");
    let loss = &a1["metrics"]["loss"];
    assert_eq!(
        (loss["points"].as_i64(), loss["last"].as_f64()),
        (Some(3), Some(0.3)),
        "{a1}"
    );
    assert!(on(&gpu02, "gpu02", &["logs", "a1"]).contains("said-on-gpu01"));
    let cmp = on(&gpu02, "gpu02", &["compare", "a1", "b1"]);
    assert!(cmp.contains("0.1") && cmp.contains("0.2"), "{cmp}");
    on(&gpu02, "gpu02", &["tag", "a1", "team=yes"]);
    let tagged = json(
        &gpu01,
        "gpu01",
        &["runs", "--json", "--filter", "tag:team=yes"],
    );
    assert_eq!(tagged.as_array().unwrap().len(), 1, "{tagged}");
    let rows = on(&gpu02, "gpu02", &["export", "-f", "jsonl", "a1"]);
    assert_eq!(rows.lines().count(), 3, "{rows}");

    // A model made from gpu01's run is linked to it for everyone.
    std::fs::write(gpu01.path().join("w.bin"), b"weights").unwrap();
    let w = gpu01.path().join("w.bin");
    on(
        &gpu01,
        "gpu01",
        &["model", "add", "net", w.to_str().unwrap(), "--run", "a1"],
    );
    let a1 = json(&gpu02, "gpu02", &["show", "a1", "--json"]);
    assert_eq!(a1["models"], serde_json::json!(["net@v1"]), "{a1}");

    // Bench history is the team's: a result from gpu01 is read on gpu02.
    on(
        &gpu01,
        "gpu01",
        &["bench", "--cpu", "--only", "membw", "--reps", "20"],
    );
    let hist = on(&gpu02, "gpu02", &["bench", "--history"]);
    assert!(hist.contains("membw") && hist.contains("gpu01"), "{hist}");

    // An MLflow tree exported from the team store imports into another one.
    let tree = gpu02.path().join("mlruns");
    on(
        &gpu02,
        "gpu02",
        &[
            "export",
            "-f",
            "mlflow",
            "-o",
            tree.to_str().unwrap(),
            "a1",
            "b1",
        ],
    );
    let Some(other) = common::postgres::fresh_db() else {
        return;
    };
    let out = gantry(gpu02.path())
        .env("GANTRY_STORE", &other)
        .args(["import", "mlflow", tree.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = gantry(gpu02.path())
        .env("GANTRY_STORE", &other)
        .args(["runs", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");

    // rm from either box removes it for both.
    on(&gpu01, "gpu01", &["rm", "b1", "-y"]);
    let runs = json(&gpu02, "gpu02", &["runs", "--json"]);
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(runs[0]["name"], "a1");
}

/// A run started on one box shows up in the workbench open on another, and updates there
/// without a key: the workbench listens to the team store (LISTEN/NOTIFY), as nothing in its
/// own workspace changes.
#[test]
fn a_run_on_one_box_appears_live_in_the_workbench_on_another() {
    let Some(url) = common::postgres::fresh_db() else {
        return;
    };
    let (gpu01, gpu02) = (workspace(), workspace());
    let home = tempfile::tempdir().unwrap();
    let mut s = common::pty::Session::start(
        home.path(),
        &[
            "--workspace",
            gpu02.path().to_str().unwrap(),
            "--store",
            &url,
        ],
    );
    s.wait_text("No runs in this workspace yet.");
    let script = "for i in 1 2 3 4 5 6; do echo \"{\\\"step\\\":$i,\\\"loss\\\":0.$i}\"; \
                  echo line-$i; sleep 0.3; done; echo all-done";
    let mut run = gantry(gpu01.path())
        .env("GANTRY_STORE", &url)
        .env("GANTRY_HOST", "gpu01")
        .args(["run", "-n", "far-away", "--", "sh", "-c", script])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    s.wait_for("the run from gpu01 to appear running", |t| {
        t.contains("far-away") && t.contains("running")
    });
    s.send("\r");
    s.wait_text("loss");
    assert!(run.wait().unwrap().success());
    s.wait_for("the run to finish", |t| t.contains("finished"));
    s.wait_for("its output, read from the store", |t| {
        t.contains("all-done")
    });
    s.send("q");
    assert!(s.wait_exit().success());
    s.assert_terminal_restored();
}

/// `gantry store copy` takes a SQLite workspace's history into the team store and back: the same
/// `show --json --points` everywhere, and a second copy updates without duplicating.
#[test]
fn store_copy_there_and_back_keeps_every_run_exactly() {
    let Some(url) = common::postgres::fresh_db() else {
        return;
    };
    let ws = workspace();
    let g = |store: Option<&str>, args: &[&str]| {
        let mut c = gantry(ws.path());
        if let Some(s) = store {
            c.env("GANTRY_STORE", s);
        }
        let out = c.args(args).output().unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "gantry {args:?}\n{stdout}{stderr}");
        stdout
    };
    let script = "for i in $(seq 1 5000); do echo \"{\\\"step\\\":$i,\\\"loss\\\":1.$i,\\\"acc\\\":0.$i}\"; done; \
                  echo 'not a metric' >> \"$GANTRY_METRICS\"; echo finished-output";
    g(
        None,
        &[
            "run", "-n", "one", "--param", "lr=0.1", "--tag", "k=v", "--", "sh", "-c", script,
        ],
    );
    let failed = gantry(ws.path())
        .args([
            "run", "-n", "two", "-e", "other", "--", "sh", "-c", "exit 3",
        ])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(3), "{failed:?}");
    std::fs::write(ws.path().join("w.bin"), b"weights").unwrap();
    let w = ws.path().join("w.bin");
    g(
        None,
        &["model", "add", "net", w.to_str().unwrap(), "--run", "one"],
    );
    g(None, &["bench", "--cpu", "--only", "membw", "--reps", "20"]);

    let back = format!("sqlite:{}", ws.path().join("back.db").display());
    let copied = g(None, &["store", "copy", "--to", &url]);
    assert!(
        copied.contains("copied 2 runs (10000 points), 1 model versions and 1 bench results"),
        "{copied}"
    );
    g(Some(&url), &["store", "copy", "--to", &back]);
    for run in ["one", "two"] {
        let args = ["show", run, "--json", "--points"];
        let here = g(None, &args);
        assert_eq!(here, g(Some(&url), &args), "{run} in the team store");
        assert_eq!(here, g(Some(&back), &args), "{run} copied back");
    }
    assert!(g(Some(&url), &["logs", "one"]).contains("finished-output"));
    let hist = |s: Option<&str>| g(s, &["bench", "--history", "--json"]);
    assert_eq!(hist(None), hist(Some(&url)));

    // Again, after a change here: updated there, nothing duplicated.
    g(None, &["tag", "one", "k=w"]);
    g(None, &["store", "copy", "--to", &url]);
    let runs: serde_json::Value =
        serde_json::from_str(&g(Some(&url), &["runs", "--json"])).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 2, "{runs}");
    let one: serde_json::Value =
        serde_json::from_str(&g(Some(&url), &["show", "one", "--json"])).unwrap();
    assert_eq!(one["tags"]["k"], "w", "{one}");
    assert_eq!(one["metrics"]["loss"]["points"], 5000, "{one}");
    assert_eq!(one["models"], serde_json::json!(["net@v1"]), "{one}");
    assert_eq!(one["malformed"]["total"], 1, "{one}");

    // The store in use is not a place to copy to.
    let out = gantry(ws.path())
        .args([
            "store",
            "copy",
            "--to",
            &format!("sqlite:{}", ws.path().join(".gantry/gantry.db").display()),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// The team store goes away in the middle of a run logging 50,000 points, and again as another
/// run ends: the commands run on, and once the store is back every point, the output and the
/// exit status are there, once.
#[test]
fn a_team_store_outage_mid_run_loses_nothing() {
    let Some(url) = common::postgres::fresh_db() else {
        return;
    };
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        return common::skip("python3 is not installed; this test's training script needs it");
    }
    let proxy = common::postgres::Proxy::start(&url);
    let ws = workspace();
    // 50 batches of 1,000 points, 0.1 s apart, each followed by a line of output.
    let script = "import json, os, time\n\
                  f = open(os.environ['GANTRY_METRICS'], 'a')\n\
                  for b in range(50):\n\
                  \x20   for i in range(1000):\n\
                  \x20       s = b * 1000 + i\n\
                  \x20       f.write(json.dumps({'step': s, 'loss': 1.0 / (s + 1)}) + '\\n')\n\
                  \x20   f.flush()\n\
                  \x20   print('batch', b, flush=True)\n\
                  \x20   time.sleep(0.1)\n\
                  print('all-done', flush=True)\n";
    let start = |name: &str| {
        gantry(ws.path())
            .env("GANTRY_STORE", &proxy.url)
            .args(["run", "-n", name, "--", "python3", "-c", script])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let check = |name: &str| {
        let out = gantry(ws.path())
            .env("GANTRY_STORE", &url)
            .args(["show", name, "--json", "--points"])
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["status"], "finished", "{name}: {}", v["status"]);
        assert_eq!(v["exit_code"], 0);
        let loss = &v["series"]["loss"];
        let steps: Vec<i64> = loss["steps"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no points in {}", &stdout[..stdout.len().min(2000)]))
            .iter()
            .map(|s| s.as_i64().unwrap())
            .collect();
        assert_eq!(
            steps,
            (0..50_000).collect::<Vec<i64>>(),
            "{name}: every step once, in order"
        );
        let out = gantry(ws.path())
            .env("GANTRY_STORE", &url)
            .args(["logs", name])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(log.matches("batch 25\n").count(), 1, "{log}");
        assert!(log.ends_with("all-done\n"), "{log}");
    };

    // Cut for 3 s in the middle of the run.
    let run = start("through-an-outage");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    proxy.cut();
    std::thread::sleep(std::time::Duration::from_secs(3));
    // gantry kept trying while the store was away.
    assert!(proxy.refused() > 0);
    proxy.restore();
    let out = run.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check("through-an-outage");

    // Cut as the run ends, back after: the next command settles it.
    let run = start("ends-in-an-outage");
    std::thread::sleep(std::time::Duration::from_millis(3000));
    proxy.cut();
    let out = run.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    proxy.restore();
    let out = gantry(ws.path())
        .env("GANTRY_STORE", &proxy.url)
        .arg("runs")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    check("ends-in-an-outage");
}

/// A team store that cannot be reached when a run starts: the command starts anyway, the run
/// is kept in the workspace, and `gantry sync` (or any later command) pushes it once.
#[test]
fn a_run_started_while_the_team_store_is_away_is_kept_and_synced() {
    let Some(url) = common::postgres::fresh_db() else {
        return;
    };
    let proxy = common::postgres::Proxy::start(&url);
    let ws = workspace();
    let g = |args: &[&str]| {
        gantry(ws.path())
            .env("GANTRY_STORE", &proxy.url)
            .args(args)
            .output()
            .unwrap()
    };
    proxy.cut();
    let script = "for i in $(seq 1 2000); do echo \"{\\\"step\\\":$i,\\\"loss\\\":0.$i}\"; done; echo kept-here";
    let out = g(&["run", "-n", "offline", "--", "sh", "-c", script]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("kept-here"));
    assert!(stderr.contains("cannot reach the team store"), "{stderr}");
    assert!(stderr.contains("is kept in this workspace"), "{stderr}");
    // Still away: sync says so.
    let out = g(&["sync"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out).1.contains("cannot reach the team store"));
    proxy.restore();
    let out = g(&["sync"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("pushed run")
            && stdout.contains("offline")
            && stdout.contains("2000 points"),
        "{stdout}"
    );
    let out = g(&["sync"]);
    assert!(text(&out).0.contains("nothing to sync"), "{out:?}");
    let out = g(&["show", "offline", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "finished", "{v}");
    assert_eq!(v["metrics"]["loss"]["points"], 2000, "{v}");
    assert!(text(&g(&["logs", "offline"])).0.contains("kept-here"));
    let runs: serde_json::Value = serde_json::from_slice(&g(&["runs", "--json"]).stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
}

/// Four hosts write 100,000 points each into one team store at once: nothing lost, nothing
/// duplicated.
#[test]
fn four_hosts_write_at_once_and_every_point_is_stored_once() {
    let Some(url) = common::postgres::fresh_db() else {
        return;
    };
    let ws = workspace();
    let script = "seq 0 99999 | awk '{printf \"{\\\"step\\\":%d,\\\"loss\\\":%d.5}\\n\", $1, $1}' \
                  >> \"$GANTRY_METRICS\"";
    let runs: Vec<_> = (1..=4)
        .map(|h| {
            gantry(ws.path())
                .env("GANTRY_STORE", &url)
                .env("GANTRY_HOST", format!("gpu0{h}"))
                .args([
                    "run",
                    "-n",
                    &format!("writer-{h}"),
                    "--",
                    "sh",
                    "-c",
                    script,
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
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
    for h in 1..=4 {
        let out = gantry(ws.path())
            .env("GANTRY_STORE", &url)
            .args(["show", &format!("writer-{h}"), "--json", "--points"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["host"], format!("gpu0{h}"));
        let s = &v["series"]["loss"];
        let steps: Vec<i64> = s["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect();
        assert_eq!(steps, (0..100_000).collect::<Vec<i64>>(), "writer-{h}");
        let values = s["values"].as_array().unwrap();
        assert!(
            values
                .iter()
                .enumerate()
                .all(|(i, x)| x.as_f64() == Some(i as f64 + 0.5))
        );
    }
}

/// A role that may only read lists and shows runs: a schema already up to date is not migrated
/// again (the migrator would need CREATE rights).
#[test]
fn a_read_only_role_reads_a_store_that_is_up_to_date() {
    let Some(url) = common::postgres::fresh_db() else {
        return;
    };
    let ws = workspace();
    let out = gantry(ws.path())
        .env("GANTRY_STORE", &url)
        .args(["run", "-n", "seen", "--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let db = url.rsplit_once('/').unwrap().1.to_string();
    let role = format!("ro_{db}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        for sql in [
            format!("CREATE ROLE {role} LOGIN"),
            format!("GRANT CONNECT ON DATABASE {db} TO {role}"),
            format!("GRANT USAGE ON SCHEMA public TO {role}"),
            format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"),
            format!("REVOKE CREATE ON SCHEMA public FROM PUBLIC, {role}"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut c)
                .await
                .unwrap();
        }
    });
    let ro_url = format!("postgres://{role}@{}", url.split_once('@').unwrap().1);
    let out = gantry(ws.path())
        .env("GANTRY_STORE", &ro_url)
        .args(["runs", "--json"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v[0]["name"], "seen", "{v}");
    // Writing is refused with what to do.
    let out = gantry(ws.path())
        .env("GANTRY_STORE", &ro_url)
        .args(["tag", "seen", "k=v"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert!(stderr.contains("grant it SELECT, INSERT"), "{stderr}");
}
