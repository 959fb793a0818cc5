//! The real binary from the command line: help, init, where, demo, and the errors a person meets.

mod common;

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::Path;

fn gantry(home: &Path) -> Command {
    let mut c = Command::cargo_bin("gantry").unwrap();
    c.env_remove("GANTRY_WORKSPACE")
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("HOME", home);
    c
}

fn no_panic() -> impl Predicate<str> {
    predicate::str::contains("panicked").not()
}

#[test]
fn help_lists_every_subcommand_with_a_line() {
    let t = tempfile::tempdir().unwrap();
    let out = gantry(t.path())
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    for (cmd, words) in [
        ("init", "Create a .gantry/ workspace"),
        ("where", "Print the workspace in use"),
        ("demo", "Build a demo workspace"),
    ] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(cmd))
            .unwrap_or_else(|| panic!("{cmd} missing:\n{text}"));
        assert!(line.contains(words), "{line}");
    }
}

#[test]
fn init_then_where_from_a_subdirectory() {
    let t = tempfile::tempdir().unwrap();
    let proj = t.path().join("proj");
    std::fs::create_dir_all(proj.join("src/deep")).unwrap();
    gantry(t.path())
        .current_dir(&proj)
        .arg("init")
        .assert()
        .success()
        .stdout(predicate::str::contains("created workspace"));
    assert!(proj.join(".gantry/gantry.db").is_file());
    gantry(t.path())
        .current_dir(&proj)
        .arg("init")
        .assert()
        .success()
        .stdout(predicate::str::contains("already present"));
    let out = gantry(t.path())
        .current_dir(proj.join("src/deep"))
        .args(["where", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["root"], proj.display().to_string());
    assert!(v["source"].as_str().unwrap().contains("nearest .gantry/"));
    assert_eq!(
        v["store"],
        proj.join(".gantry/gantry.db").display().to_string()
    );
}

#[test]
fn where_follows_flag_then_env_then_user_data() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    for d in [&a, &b] {
        std::fs::create_dir_all(d).unwrap();
        gantry(t.path()).arg("init").arg(d).assert().success();
    }
    let elsewhere = t.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let run = |args: &[&str], env: Option<&Path>| {
        let mut c = gantry(t.path());
        c.current_dir(&elsewhere).arg("where").args(args);
        if let Some(e) = env {
            c.env("GANTRY_WORKSPACE", e);
        }
        String::from_utf8(c.assert().success().get_output().stdout.clone()).unwrap()
    };
    let out = run(&["--workspace", a.to_str().unwrap()], Some(&b));
    assert!(
        out.starts_with(&a.display().to_string()) && out.contains("--workspace"),
        "{out}"
    );
    let out = run(&[], Some(&b));
    assert!(
        out.starts_with(&b.display().to_string()) && out.contains("GANTRY_WORKSPACE"),
        "{out}"
    );
    let out = run(&[], None);
    assert!(out.contains("user's data directory"), "{out}");
    assert!(
        out.starts_with(&t.path().join("data/gantry").display().to_string()),
        "{out}"
    );
}

#[test]
fn a_workspace_that_is_a_file_is_a_clear_error() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("notes.txt");
    std::fs::write(&file, "x").unwrap();
    gantry(t.path())
        .args(["--workspace", file.to_str().unwrap(), "where"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(file.display().to_string()))
        .stderr(predicate::str::contains("is a file, not a directory"))
        .stderr(predicate::str::contains("to fix:"))
        .stderr(no_panic());
}

#[test]
fn a_workspace_without_gantry_says_to_init() {
    let t = tempfile::tempdir().unwrap();
    gantry(t.path())
        .args(["where"])
        .env("GANTRY_WORKSPACE", t.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("holds no .gantry/"))
        .stderr(predicate::str::contains(format!(
            "gantry init {}",
            t.path().display()
        )));
}

#[test]
fn an_unreadable_workspace_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    gantry(t.path())
        .arg("init")
        .arg(t.path())
        .assert()
        .success();
    let dir = t.path().join(".gantry");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads every directory: as root, gantry runs as `nobody` for this check (setpriv),
    // so the case runs under every user.
    let mut cmd = if unsafe { libc::geteuid() } == 0 {
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_gantry"))
            .env("HOME", t.path());
        c
    } else {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_gantry"));
        c.env_remove("GANTRY_WORKSPACE").env("HOME", t.path());
        c
    };
    let out = cmd
        .args(["--workspace", t.path().to_str().unwrap(), "where"])
        .output()
        .unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
    assert!(stderr.contains("ermission"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_corrupt_database_is_a_clear_error() {
    let t = tempfile::tempdir().unwrap();
    gantry(t.path())
        .arg("init")
        .arg(t.path())
        .assert()
        .success();
    let db = t.path().join(".gantry/gantry.db");
    for f in ["gantry.db-wal", "gantry.db-shm"] {
        let _ = std::fs::remove_file(t.path().join(".gantry").join(f));
    }
    std::fs::write(
        &db,
        b"this is not a database, it is a shopping list\n".repeat(200),
    )
    .unwrap();
    gantry(t.path())
        .args(["--workspace", t.path().to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(db.display().to_string()))
        .stderr(predicate::str::contains("not a database"))
        .stderr(predicate::str::contains("move it aside"))
        .stderr(no_panic());
    // Nothing was overwritten.
    assert!(
        std::fs::read(&db)
            .unwrap()
            .starts_with(b"this is not a database")
    );
}

#[test]
fn the_workbench_without_a_terminal_says_so() {
    let t = tempfile::tempdir().unwrap();
    gantry(t.path())
        .arg("init")
        .arg(t.path())
        .assert()
        .success();
    gantry(t.path())
        .args(["--workspace", t.path().to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("needs a terminal"));
}

#[test]
fn demo_seeds_once_and_is_readable_by_sqlite3() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("demo");
    for _ in 0..2 {
        gantry(t.path())
            .args(["demo", "--no-open"])
            .arg(&dir)
            .assert()
            .success()
            .stdout(predicate::str::contains(format!(
                "demo workspace: {}",
                dir.display()
            )));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let records = rt.block_on(async {
        let s = gantry::store::Store::open(&dir.join(".gantry/gantry.db"))
            .await
            .unwrap();
        s.run_records().await.unwrap()
    });
    assert_eq!(records.len(), 9, "seeded once, not twice");
    // One run was refused by its preflight before its command started: no metrics, its report
    // kept as a tag SQLite can read below.
    let (refused, records): (Vec<_>, Vec<_>) = records
        .into_iter()
        .partition(|r| r.tags.get("preflight").is_some_and(|o| o == "refused"));
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].run.exit_code, Some(4));
    assert!(refused[0].metrics.is_empty());
    // The fixtures' metrics, and gantry's own (MFU, energy, cost…) beside them.
    let own = |k: &String| k.starts_with("gantry/");
    let series: usize = records
        .iter()
        .map(|r| r.metrics.keys().filter(|k| !own(k)).count())
        .sum();
    let points: i64 = records
        .iter()
        .flat_map(|r| r.metrics.iter())
        .filter(|(k, _)| !own(k))
        .map(|(_, s)| s.n_points)
        .sum();
    assert_eq!(series, 32);
    for r in &records {
        for k in [
            "gantry/mfu",
            "gantry/energy_wh",
            "gantry/gpu_hours",
            "gantry/cost",
        ] {
            assert!(r.metrics.contains_key(k), "{} has {k}", r.run.name);
        }
        assert!(r.tags.contains_key("gantry.hardware"), "{}", r.run.name);
    }
    assert!(
        records.iter().all(|r| std::path::Path::new(&r.run.run_dir)
            .join("output.log")
            .is_file()),
        "every demo run has a log"
    );
    let mut want = 0;
    for f in std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/demo/metrics"
    ))
    .unwrap()
    .map(|f| f.unwrap().path())
    {
        let text = std::fs::read_to_string(f).unwrap();
        for line in text.lines() {
            want += gantry::capture::protocol::parse_line(line)
                .unwrap()
                .metrics
                .len() as i64;
        }
    }
    assert_eq!(
        points, want,
        "every numeric field of fixtures/demo/metrics is a point"
    );
    match std::process::Command::new("sqlite3")
        .arg(dir.join(".gantry/gantry.db"))
        .arg("SELECT status, COUNT(*) FROM runs GROUP BY status ORDER BY status;")
        .output()
    {
        Ok(o) if o.status.success() => {
            assert_eq!(
                String::from_utf8_lossy(&o.stdout),
                "crashed|1\nfailed|2\nfinished|3\nkilled|1\nrunning|2\n"
            );
            let o = std::process::Command::new("sqlite3")
                .arg(dir.join(".gantry/gantry.db"))
                .arg(
                    "SELECT json_extract(value, '$.findings[0].kind') FROM tags \
                     WHERE key = 'gantry.preflight';",
                )
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&o.stdout), "pcie\n");
            // The GPU conditions of each benchmark are JSON that SQLite itself can read: one
            // result, the last day's bf16 GEMM, ran with its clocks held down.
            let o = std::process::Command::new("sqlite3")
                .arg(dir.join(".gantry/gantry.db"))
                .arg(
                    "SELECT json_extract(config, '$.precision'), \
                     json_extract(conditions, '$.throttle[0]'), \
                     json_extract(conditions, '$.sm_clock_mhz') FROM bench_results \
                     WHERE json_array_length(conditions, '$.throttle') > 0;",
                )
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&o.stdout), "bf16|sw thermal|1245\n");
        }
        _ => common::skip("the sqlite3 check: the sqlite3 tool is not installed"),
    }
}

#[test]
fn demo_without_a_dir_goes_under_the_cache() {
    let t = tempfile::tempdir().unwrap();
    let out = gantry(t.path())
        .args(["demo", "--no-open"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(&t.path().join("cache/gantry/demo-").display().to_string()),
        "{text}"
    );
}

/// `gantry compare` takes each metric's best from the summaries; for series stored before the
/// summaries kept the best's step it reads the points, and says the same.
#[test]
fn compare_finds_the_same_best_with_or_without_the_summarys_steps() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("demo");
    gantry(t.path())
        .args(["demo", "--no-open"])
        .arg(&dir)
        .assert()
        .success();
    let ws = dir.to_str().unwrap();
    let ids: Vec<String> = {
        let out = gantry(t.path())
            .args(["--workspace", ws, "runs", "--json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .take(3)
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let compare = || {
        let out = gantry(t.path())
            .args(["--workspace", ws, "compare", "--json"])
            .args(&ids)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let with_steps = compare();
    let bests = with_steps["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["runs"].as_array().unwrap())
        .filter(|c| c["best_step"].is_i64())
        .count();
    assert!(bests > 3, "{with_steps}");
    let db = rusqlite::Connection::open(dir.join(".gantry/gantry.db")).unwrap();
    db.execute("UPDATE series SET min_step = NULL, max_step = NULL", [])
        .unwrap();
    drop(db);
    assert_eq!(compare(), with_steps);
}
