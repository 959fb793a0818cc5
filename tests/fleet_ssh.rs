//! The ssh fleet source against a real `sshd` on loopback ports, through the real `ssh` client:
//! one host runs gantry there (a `gantry gpu --json --watch` replaying a recording), one has
//! only nvidia-smi (its CSV as nvidia-smi writes it), one refuses connections and one takes them
//! and never answers. Every value read is checked against what the host has.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::sshd::{Sshd, free_port, keys};

use gantry::domain::GpuSnapshot;
use gantry::fleet::Sources;
use gantry::fleet::ssh::SshConfig;

fn exe(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// nvidia-smi's CSV for SMI_FIELDS (csv,noheader,nounits), a line a GPU every `-l` seconds:
/// GPU 0 idle and empty, GPU 1 busy and held at its power cap.
const SMI_LINES: &str = "0, GPU-7d1c2a4e-5b3f-4e21-9c1a-2b6f0e8d4c10, NVIDIA A100-SXM4-80GB, \
00000000:07:00.0, 535.104.05, 0, 0, 4, 81920, 31, 62.18, 400.00, 210, 1410, 1593, [N/A], \
0x0000000000000001, 0
1, GPU-9e3a0b7c-1d2f-4a5b-8c6d-3e4f5a6b7c8d, NVIDIA A100-SXM4-80GB, 00000000:0F:00.0, \
535.104.05, 98, 57, 76310, 81920, 74, 398.51, 400.00, 1275, 1410, 1593, [N/A], \
0x0000000000000004, 0";

struct Fleet {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    _servers: Vec<Sshd>,
    /// box-a's recording.
    snap: GpuSnapshot,
    _silent: TcpListener,
}

/// box-a runs gantry, box-b has only nvidia-smi, box-c refuses, box-d never answers; an ssh
/// config names them all.
fn fleet() -> Option<Fleet> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    if keys(&dir).is_none() {
        common::skip("no ssh-keygen here; apt-get install openssh-client");
        return None;
    }
    let (with_gantry, smi_only) = (dir.join("bin-a"), dir.join("bin-b"));
    for d in [&with_gantry, &smi_only] {
        std::fs::create_dir_all(d).unwrap();
        exe(
            &d.join("nvidia-smi"),
            // Like nvidia-smi, it ends when nobody reads it any more.
            &format!(
                "#!/bin/sh\nwhile :; do\ncat <<'EOF' || exit 1\n{SMI_LINES}\nEOF\nsleep 1\ndone\n"
            ),
        );
    }
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gpu/h100-x8.made-up.jsonl"),
    )
    .unwrap();
    let first = text.lines().next().unwrap();
    let snap: GpuSnapshot = serde_json::from_str(first).unwrap();
    std::fs::write(dir.join("box-a.jsonl"), format!("{first}\n")).unwrap();
    exe(
        &with_gantry.join("gantry"),
        &format!(
            "#!/bin/sh\nexec {} --gpu-replay {} \"$@\"\n",
            env!("CARGO_BIN_EXE_gantry"),
            dir.join("box-a.jsonl").display()
        ),
    );
    let servers = match (
        common::sshd::start(&dir, "a", &with_gantry),
        common::sshd::start(&dir, "b", &smi_only),
    ) {
        (Ok(a), Ok(b)) => vec![a, b],
        (Err(e), _) | (_, Err(e)) => {
            common::skip(&format!("no sshd to run: {e}"));
            return None;
        }
    };
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    common::sshd::client_config(
        &dir,
        &[
            ("box-a", servers[0].port),
            ("box-b", servers[1].port),
            ("box-c", free_port()),
            ("box-d", silent.local_addr().unwrap().port()),
        ],
    );
    Some(Fleet {
        _dir: tmp,
        dir,
        _servers: servers,
        snap,
        _silent: silent,
    })
}

#[test]
fn ssh_hosts_report_through_gantry_or_nvidia_smi_and_a_dead_host_says_why() {
    let Some(f) = fleet() else { return };
    let sources = Sources::new(
        None,
        Vec::new(),
        None,
        Some(SshConfig {
            hosts: ["box-a", "box-b", "box-c", "box-d"]
                .map(String::from)
                .to_vec(),
            options: vec!["-F".into(), f.dir.join("ssh_config").display().to_string()],
            gantry: "gantry".into(),
            every: Duration::from_secs(1),
            timeout: Duration::from_secs(3),
        }),
        Duration::from_secs(3),
    );
    assert_eq!(sources.describe(), "ssh 4 hosts");
    // The connections stay open: read until both hosts have reported.
    let deadline = Instant::now() + Duration::from_secs(60);
    let hosts = loop {
        let hosts = sources.read(gantry::domain::now_ms());
        if hosts.iter().filter(|h| h.error.is_none()).count() == 2 || Instant::now() > deadline {
            break hosts;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["box-a", "box-b", "box-c", "box-d"]);
    let (a, b, c, d) = (&hosts[0], &hosts[1], &hosts[2], &hosts[3]);
    // box-a: every GPU as its gantry reports it, with the processes on each.
    assert_eq!(a.error, None, "{a:#?}");
    assert_eq!(a.source, "ssh box-a (gantry)");
    let read: Vec<_> = a.gpus.iter().map(|g| g.sample.clone()).collect();
    assert_eq!(read, f.snap.gpus);
    for g in &a.gpus {
        let pids: Vec<u32> = g.procs.iter().map(|p| p.pid).collect();
        let mut want: Vec<u32> = f
            .snap
            .processes
            .iter()
            .filter(|p| p.gpu == g.sample.index)
            .map(|p| p.pid)
            .collect();
        want.sort();
        let mut got = pids.clone();
        got.sort();
        assert_eq!(got, want, "GPU {}", g.sample.index);
        assert_eq!(g.driver, f.snap.driver);
    }
    // box-b: nvidia-smi's two GPUs; the idle one is free, the busy one power-capped.
    assert_eq!(b.error, None, "{b:#?}");
    assert_eq!(b.source, "ssh box-b (nvidia-smi)");
    assert_eq!(b.gpus.len(), 2);
    assert_eq!(b.gpus[1].sample.util, Some(98));
    assert_eq!(b.gpus[1].sample.mem_used, Some(76310 << 20));
    assert_eq!(b.gpus[1].sample.throttle, ["power cap"]);
    assert_eq!(b.gpus[0].sample.power, Some(62.18));
    assert!(b.gpus[0].is_free(&Default::default()));
    assert!(!b.gpus[1].is_free(&Default::default()));
    // box-c refuses: ssh's own words, and what must hold.
    let why = c.error.as_deref().unwrap();
    assert!(
        why.contains("Connection refused") && why.contains("without a prompt"),
        "{why}"
    );
    // box-d takes the connection and never answers: no report, in words, and nothing waits on it.
    let why = d.error.as_deref().unwrap();
    assert!(why.starts_with("ssh box-d: "), "{why}");
    assert!(c.gpus.is_empty() && d.gpus.is_empty());
}

#[test]
fn gantry_gpu_fleet_over_ssh_through_the_binary() {
    let Some(f) = fleet() else { return };
    let cfg = f.dir.join("xdg/gantry");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.toml"),
        format!(
            "[fleet]\nssh = [\"box-b\", \"box-a\"]\nssh_options = [\"-F\", \"{}\"]\nrefresh_s = 1\ntimeout_s = 20\n",
            f.dir.join("ssh_config").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["gpu", "--free", "--json"])
        .env("XDG_CONFIG_HOME", f.dir.join("xdg"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let free: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Of box-a's eight busy H100s and box-b's two A100s, only box-b's idle GPU 0 is free.
    assert_eq!(free.as_array().unwrap().len(), 1, "{free}");
    assert_eq!(free[0]["host"], "box-b");
    assert_eq!(free[0]["index"], 0);
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["gpu", "--fleet"])
        .env("XDG_CONFIG_HOME", f.dir.join("xdg"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("box-a") && text.contains("H100"), "{text}");
    assert!(text.contains("box-b") && text.contains("A100"), "{text}");
}
