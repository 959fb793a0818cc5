//! The GPUs a run used, by UUID, on SQLite and PostgreSQL (kept once each, gone with the run,
//! copied with it), and what the fleet makes of them: a dcgm-exporter host lists no processes,
//! so the running run the store says is on a GPU is shown holding it, through the binary.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use gantry::domain::{NewRun, RunStatus};
use gantry::store::Store;

/// dcgm-exporter's documented output: one A100 on host ub20-a100-k8s.
const UUID: &str = "GPU-34319582-d595-d1c7-d1d2-179bcfa61660";

fn new_run(name: &str, host: &str) -> NewRun {
    NewRun {
        experiment: "default".into(),
        name: name.into(),
        started_ms: 1_700_000_000_000,
        host: host.into(),
        user: "ana".into(),
        pid: Some(4242),
        command: vec!["python".into(), "train.py".into()],
        ..NewRun::default()
    }
}

async fn gpus_are_kept_once_each_and_go_with_their_run(store: Store) {
    let a = store.create_run(&new_run("a", "gpu01")).await.unwrap();
    let b = store.create_run(&new_run("b", "gpu02")).await.unwrap();
    store
        .add_run_gpus(&a.id, &["GPU-1".into(), "GPU-0".into()], 10)
        .await
        .unwrap();
    // Seen again later, with a new one: the first time is kept.
    store
        .add_run_gpus(&a.id, &["GPU-0".into(), "GPU-2".into()], 20)
        .await
        .unwrap();
    store
        .add_run_gpus(&b.id, &["GPU-9".into()], 10)
        .await
        .unwrap();
    assert_eq!(
        store.run_gpus(&a.id).await.unwrap(),
        ["GPU-0", "GPU-1", "GPU-2"]
    );
    let mut running = store.running_gpus().await.unwrap();
    running.sort();
    assert_eq!(running.len(), 4);
    // An ended run holds no GPU any more.
    store
        .finish_run(&b.id, RunStatus::Finished, Some(0), 30)
        .await
        .unwrap();
    assert!(
        store
            .running_gpus()
            .await
            .unwrap()
            .iter()
            .all(|(r, _)| r == &a.id)
    );
    assert_eq!(store.run_gpus(&b.id).await.unwrap(), ["GPU-9"]);
    // Copied with its run.
    let dir = tempfile::tempdir().unwrap();
    let to = Store::open(&dir.path().join("copy.db")).await.unwrap();
    gantry::store::copy::copy(&store, &to, None, |_, _| {})
        .await
        .unwrap();
    assert_eq!(
        to.run_gpus(&a.id).await.unwrap(),
        ["GPU-0", "GPU-1", "GPU-2"]
    );
    // Gone with it.
    store
        .delete_runs(std::slice::from_ref(&a.id))
        .await
        .unwrap();
    assert!(store.run_gpus(&a.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn run_gpus_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("gantry.db")).await.unwrap();
    gpus_are_kept_once_each_and_go_with_their_run(store).await;
}

#[tokio::test]
async fn run_gpus_on_postgres() {
    let Some(url) = tokio::task::spawn_blocking(common::postgres::fresh_db)
        .await
        .unwrap()
    else {
        return;
    };
    let store = Store::open_team(&url).await.unwrap();
    gpus_are_kept_once_each_and_go_with_their_run(store).await;
}

/// An exporter serving `page` as its /metrics, on a loopback port.
fn exporter(page: String) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    addr
}

#[tokio::test]
async fn a_dcgm_host_shows_the_run_the_store_says_holds_its_gpu() {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fleet/dcgm-exporter-docs.prom"),
    )
    .unwrap();
    // Utilisation 0 and little memory in use: free by its readings alone.
    let page = page.replace("DCGM_FI_DEV_FB_USED{", "DCGM_FI_DEV_FB_USED_X{")
        + &format!(
            "DCGM_FI_DEV_GPU_UTIL{{gpu=\"0\",UUID=\"{UUID}\",Hostname=\"ub20-a100-k8s\"}} 0\n\
             DCGM_FI_DEV_FB_USED{{gpu=\"0\",UUID=\"{UUID}\",Hostname=\"ub20-a100-k8s\"}} 300\n"
        );
    let target = exporter(page);
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let workspace = gantry::workspace::Workspace::init(&ws).unwrap();
    let fleet = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
            .args(["gpu", "--scrape", &target])
            .args(args)
            .current_dir(&ws)
            .env("XDG_CONFIG_HOME", dir.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    // No run holds it: free.
    let (code, free) = fleet(&["--free", "--json"]);
    assert_eq!(code, Some(0), "{free}");
    assert!(free.contains(UUID), "{free}");
    // A running run of that host (by its short name) on that GPU: held, and named.
    let store = Store::open(&workspace.db_path()).await.unwrap();
    let run = store
        .create_run(&new_run("lr-3e-4", "UB20-A100-K8S.lab.example"))
        .await
        .unwrap();
    store
        .add_run_gpus(&run.id, &[UUID.to_string()], 1)
        .await
        .unwrap();
    let (code, _) = fleet(&["--free", "--json"]);
    assert_eq!(code, Some(1));
    let (code, text) = fleet(&["--fleet", "--json"]);
    assert_eq!(code, Some(0), "{text}");
    let hosts: serde_json::Value = serde_json::from_str(&text).unwrap();
    let p = &hosts[0]["gpus"][0]["procs"][0];
    assert_eq!(p["run"], "lr-3e-4", "{text}");
    assert_eq!(p["run_id"], run.id.as_str());
    assert_eq!(p["pid"], 4242);
    assert_eq!(p["user"], "ana");
    let (_, table) = fleet(&["--fleet"]);
    assert!(table.contains("lr-3e-4"), "{table}");
    // Ended: nobody holds it.
    store
        .finish_run(&run.id, RunStatus::Finished, Some(0), 2)
        .await
        .unwrap();
    let (code, _) = fleet(&["--free"]);
    assert_eq!(code, Some(0));
}
