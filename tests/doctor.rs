//! `gantry doctor`, the real binary: no driver here is a warning that says what to do (exit 1);
//! a GPU recording lists its GPUs and the readings each lacks; broken config lines, a dumb
//! terminal, python's packages (found, not imported) and a team store near and away.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// gantry in a workspace of its own, with its own config directory and a terminal type.
fn doctor(ws: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gantry"));
    c.current_dir(ws)
        .env("HOME", ws)
        .env("XDG_CONFIG_HOME", ws.join("config"))
        .env("TERM", "xterm-256color")
        .env_remove("GANTRY_STORE")
        .env_remove("GANTRY_WORKSPACE")
        .env_remove("SSH_CONNECTION")
        .env_remove("SSH_CLIENT")
        .env_remove("SSH_TTY");
    c
}

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["init"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    dir
}

fn json(c: &mut Command) -> (Option<i32>, Value) {
    let out = c.args(["doctor", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), v)
}

fn problems(v: &Value, level: &str, area: &str) -> Vec<String> {
    v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["level"] == level && p["area"] == area)
        .map(|p| {
            format!(
                "{} → {}",
                p["what"].as_str().unwrap(),
                p["fix"].as_str().unwrap()
            )
        })
        .collect()
}

/// The highest GLIBC_ version objdump finds in `bin`'s dynamic symbols.
fn objdump_floor(bin: &Path) -> Option<String> {
    let out = Command::new("objdump").arg("-T").arg(bin).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut versions: Vec<Vec<u32>> = text
        .split_whitespace()
        .filter_map(|w| {
            w.trim_matches(|c| c == '(' || c == ')')
                .strip_prefix("GLIBC_")
        })
        .map(|v| {
            v.split('.')
                .map_while(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .filter(|v| !v.is_empty())
        .collect();
    versions.sort();
    versions
        .last()
        .map(|v| v.iter().map(u32::to_string).collect::<Vec<_>>().join("."))
}

#[test]
fn no_driver_is_a_warning_that_says_what_to_do() {
    let ws = workspace();
    let (code, v) = json(&mut doctor(ws.path()));
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["gantry"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["gantry"]["target"], "x86_64-linux-gnu");
    let root = std::fs::canonicalize(ws.path()).unwrap();
    assert_eq!(v["workspace"]["root"], root.display().to_string());
    assert_eq!(v["store"]["kind"], "sqlite");
    assert_eq!(v["terminal"]["term"], "xterm-256color");
    assert_eq!(v["terminal"]["over_ssh"], false);
    assert_eq!(v["nvidia"]["source"], "NVML");
    let nvidia = problems(&v, "warning", "nvidia");
    assert_eq!(nvidia.len(), 1, "{nvidia:?}");
    assert!(nvidia[0].starts_with("no NVIDIA driver"), "{nvidia:?}");
    assert!(nvidia[0].contains("gantry bench --cpu"), "{nvidia:?}");
    let cuda: Vec<&str> = v["cuda"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(cuda, ["libcuda", "libcublas", "libcublasLt", "libnvrtc"]);
    // The same problem on the screen, with its fix on the next line.
    let out = doctor(ws.path()).arg("doctor").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("! nvidia: no NVIDIA driver"), "{text}");
    assert!(
        text.contains("→ `gantry gpu` and `gantry bench` need"),
        "{text}"
    );
}

#[test]
fn the_glibc_floor_is_the_one_objdump_reads() {
    let bin = Path::new(env!("CARGO_BIN_EXE_gantry"));
    let Some(want) = objdump_floor(bin) else {
        return common::skip("objdump (binutils) is not installed");
    };
    let ws = workspace();
    let (_, v) = json(&mut doctor(ws.path()));
    assert_eq!(
        v["gantry"]["glibc_floor"],
        want.as_str(),
        "{:#}",
        v["gantry"]
    );
    assert!(v["gantry"]["glibc_here"].as_str().is_some());
}

#[test]
fn a_recording_lists_its_gpus_and_what_each_lacks() {
    let ws = workspace();
    let rec = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gpu/h200-x1.made-up.jsonl");
    let (_, v) = json(doctor(ws.path()).arg("--gpu-replay").arg(&rec));
    let n = &v["nvidia"];
    assert_eq!(n["driver"], "580.95.05");
    assert_eq!(n["cuda"], "13.0");
    assert!(
        n["source"].as_str().unwrap().starts_with("replay of"),
        "{n}"
    );
    let gpus = n["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 1);
    assert_eq!(gpus[0]["name"], "NVIDIA H200");
    // An H200 has no fan: NVML gives no fan speed, and doctor names it.
    assert_eq!(gpus[0]["unsupported"], serde_json::json!(["fan"]));
    assert!(problems(&v, "warning", "nvidia").is_empty(), "{v:#}");
    // The recording has a driver, but this box has no CUDA library: each is named, with a fix.
    let cuda = problems(&v, "warning", "cuda");
    assert!(
        cuda.iter()
            .any(|p| p.starts_with("libcublas.so not found") && p.contains("nvidia-cublas-cu13")),
        "{cuda:?}"
    );
}

#[test]
fn broken_config_lines_and_a_dumb_terminal_are_named() {
    let ws = workspace();
    let cfg = ws.path().join("config/gantry");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("config.toml"), "refresh_ms = 250\ntheme = [\n").unwrap();
    std::fs::write(ws.path().join(".gantry/config.toml"), "store = 42\n").unwrap();
    let (code, v) = json(doctor(ws.path()).env("TERM", "dumb"));
    assert_eq!(code, Some(1));
    let config = problems(&v, "warning", "config");
    assert!(
        config.iter().any(|p| p.contains("gantry/config.toml:2:")),
        "{config:?}"
    );
    // The workspace's own config chooses the store: its error is the store's problem.
    let errors = v["config"]["errors"].to_string();
    assert!(errors.contains(".gantry/config.toml"), "{errors}");
    let store = problems(&v, "warning", "store");
    assert!(
        store.iter().any(|p| p.contains("bad workspace config")),
        "{store:?}"
    );
    assert_eq!(v["config"]["config_exists"], true);
    let term = problems(&v, "warning", "terminal");
    assert!(
        term.iter().any(|p| p.contains("TERM=xterm-256color")),
        "{term:?}"
    );
}

#[test]
fn python_packages_are_found_without_importing_them() {
    let ws = workspace();
    let site = ws.path().join("site");
    std::fs::create_dir_all(site.join("mlflow")).unwrap();
    std::fs::write(site.join("mlflow/__init__.py"), "").unwrap();
    std::fs::create_dir_all(site.join("mlflow-9.9.9.dist-info")).unwrap();
    std::fs::write(
        site.join("mlflow-9.9.9.dist-info/METADATA"),
        "Metadata-Version: 2.1\nName: mlflow\nVersion: 9.9.9\n",
    )
    .unwrap();
    // A torch whose import would leave a mark: doctor must not import it.
    std::fs::create_dir_all(site.join("torch")).unwrap();
    let mark = ws.path().join("imported");
    std::fs::write(
        site.join("torch/__init__.py"),
        format!("open({:?}, 'w').write('x')\n", mark.display().to_string()),
    )
    .unwrap();
    let (_, v) = json(doctor(ws.path()).env("PYTHONPATH", &site));
    let p = &v["python"];
    assert_eq!(p["mlflow"], "9.9.9", "{p}");
    assert_eq!(p["torch"], "unknown version", "{p}");
    assert!(p["version"].as_str().unwrap().starts_with('3'), "{p}");
    assert!(!mark.exists(), "doctor imported torch");
    assert!(problems(&v, "note", "python").is_empty(), "{v:#}");

    // No python3 at all: a note, which does not change the exit code.
    let empty = ws.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let (_, v) = json(doctor(ws.path()).env("PATH", &empty));
    assert_eq!(v["python"]["error"], "python3 is not on PATH");
    let notes = problems(&v, "note", "python");
    assert_eq!(notes.len(), 1, "{notes:?}");
}

#[test]
fn a_team_store_is_reached_with_its_latency_or_named_away() {
    let Some(url) = common::postgres::fresh_db() else {
        return;
    };
    let ws = workspace();
    let (_, v) = json(doctor(ws.path()).env("GANTRY_STORE", &url));
    let s = &v["store"];
    assert_eq!(s["kind"], "postgres", "{s}");
    assert_eq!(s["reached"], true, "{s}");
    assert!(
        s["server"].as_str().unwrap().starts_with("PostgreSQL "),
        "{s}"
    );
    assert!(s["latency_ms"].as_f64().unwrap() >= 0.0, "{s}");
    assert!(s["host"].as_str().unwrap().starts_with("127.0.0.1:"), "{s}");
    assert!(problems(&v, "warning", "store").is_empty(), "{v:#}");

    // A port nobody listens on: a warning that says runs are kept meanwhile.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let away = format!("postgres://gantry@127.0.0.1:{port}/nope");
    let (code, v) = json(doctor(ws.path()).env("GANTRY_STORE", &away));
    assert_eq!(code, Some(1));
    assert_eq!(v["store"]["reached"], false);
    let store = problems(&v, "warning", "store");
    assert!(
        store
            .iter()
            .any(|p| p.contains("cannot be reached") && p.contains("gantry sync")),
        "{store:?}"
    );
}
