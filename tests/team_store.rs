//! The PostgreSQL team store, against a real server (tests/common/postgres.rs): choosing the
//! store, `gantry where --check`, migrations from several processes at once, and the errors for a
//! store that cannot be reached.

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
    assert_eq!(v["schema"], 5);

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
        assert_eq!(v["schema"], 5, "{v}");
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
        assert_eq!(got, (1..=5).map(|v| (v, true)).collect::<Vec<_>>());
        let t: String = sqlx::query_scalar(
            "SELECT data_type FROM information_schema.columns \
             WHERE table_name = 'series_chunks' AND column_name = 'data'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!(t, "bytea");
    });

    // A command that keeps runs says plainly that it cannot use a team store yet.
    let out = gantry(ws.path())
        .env("GANTRY_STORE", &url)
        .arg("runs")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot keep runs in it yet"), "{stderr}");
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
