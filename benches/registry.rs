//! Sharing a 2 GiB model version, measured side by side in one run, whole processes:
//! - `gantry model push` to a directory objects store against `cp` of the same bytes, and
//!   `gantry model pull` from it against `cp` back (target: at least 80% of cp's throughput);
//! - the same through ssh (a real sshd on loopback) against `scp` (target: 80% of scp's);
//! - gantry's peak RSS in each (target: 64 MB or less).
//!
//! Each side runs three times, alternating, onto an empty target; medians are printed. The file
//! is in the page cache for both. `cargo bench --bench registry`; under `cargo test --benches` a
//! 64 MiB smoke run. The ssh half says why and is left out where no sshd can be started.

mod common;

#[path = "../tests/common/sshd.rs"]
mod sshd;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Run a command, its output left out: (seconds, peak RSS in MB).
fn run(cmd: &mut Command) -> (f64, f64) {
    common::run_reaped(cmd.stdout(std::process::Stdio::null()))
}

fn gantry(ws: &Path, args: &[&str], env: &[(String, String)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gantry"));
    c.args(args)
        .current_dir(ws)
        .envs(env.iter().map(|(k, v)| (k, v)));
    c
}

fn empty(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
}

/// Two workspaces sharing a bare git remote and `objects` (as the URL gantry is given).
fn pair(root: &Path, name: &str, objects: &str, env: &[(String, String)]) -> (PathBuf, PathBuf) {
    let bare = root.join(format!("{name}.git"));
    assert!(
        Command::new("git")
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&bare)
            .status()
            .unwrap()
            .success()
    );
    let url = format!("file://{}", bare.display());
    let mut out = Vec::new();
    for side in ["a", "b"] {
        let ws = root.join(format!("{name}-{side}"));
        std::fs::create_dir_all(&ws).unwrap();
        run(&mut gantry(&ws, &["init", "."], env));
        run(&mut gantry(
            &ws,
            &[
                "model",
                "remote",
                "add",
                "origin",
                &url,
                "--objects",
                objects,
            ],
            env,
        ));
        out.push(ws);
    }
    (out.remove(0), out.remove(0))
}

struct Side {
    secs: Vec<f64>,
    rss: Vec<f64>,
}

impl Side {
    fn new() -> Side {
        Side {
            secs: Vec::new(),
            rss: Vec::new(),
        }
    }
    fn add(&mut self, (s, r): (f64, f64)) {
        self.secs.push(s);
        self.rss.push(r);
    }
    fn median(&self) -> f64 {
        common::median(self.secs.clone()).0
    }
    fn peak(&self) -> f64 {
        self.rss.iter().copied().fold(0.0, f64::max)
    }
}

fn report(what: &str, mib: usize, g: &Side, base: &Side, base_name: &str) {
    let (gt, bt) = (mib as f64 / g.median(), mib as f64 / base.median());
    println!(
        "{what:<5} {mib} MiB: gantry {:.2} s ({gt:.0} MiB/s, peak RSS {:.1} MB) vs {base_name} {:.2} s ({bt:.0} MiB/s): {:.0}% of {base_name}",
        g.median(),
        g.peak(),
        base.median(),
        100.0 * gt / bt
    );
}

fn main() {
    let quick = common::quick();
    let mib: usize = if quick { 64 } else { 2048 };
    let reps = if quick { 1 } else { 3 };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let big = root.join("weights.bin");
    common::write_noise(&big, mib);

    // A directory store.
    let store = root.join("objects");
    let (a, b) = pair(root, "dir", store.to_str().unwrap(), &[]);
    std::fs::copy(&big, a.join("weights.bin")).unwrap();
    run(&mut gantry(
        &a,
        &["model", "add", "big", "weights.bin"],
        &[],
    ));
    let (mut push, mut cp_to, mut pull, mut cp_back) =
        (Side::new(), Side::new(), Side::new(), Side::new());
    let copy_dir = root.join("cp-target");
    for _ in 0..reps {
        empty(&store);
        push.add(run(&mut gantry(&a, &["model", "push"], &[])));
        empty(&copy_dir);
        cp_to.add(run(Command::new("cp").arg(&big).arg(copy_dir.join("w"))));
        let _ = std::fs::remove_dir_all(b.join(".gantry/objects"));
        pull.add(run(&mut gantry(&b, &["model", "pull", "big"], &[])));
        cp_back.add(run(Command::new("cp")
            .arg(copy_dir.join("w"))
            .arg(root.join("back.bin"))));
    }
    report("push", mib, &push, &cp_to, "cp");
    report("pull", mib, &pull, &cp_back, "cp");

    // Through ssh.
    let keys = root.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let server = sshd::keys(&keys)
        .ok_or_else(|| "no ssh-keygen".to_string())
        .and_then(|_| sshd::start(&keys, "bench", Path::new("/usr/bin")));
    let server = match server {
        Ok(s) => s,
        Err(e) => return common::skip(&format!("the ssh half: {e}")),
    };
    let config = sshd::client_config(&keys, &[("models", server.port)]);
    let env = sshd::env_for(&keys, &config);
    let ssh_store = root.join("ssh-objects");
    let url = format!("ssh://models{}", ssh_store.display());
    let (a, b) = pair(root, "ssh", &url, &env);
    std::fs::copy(&big, a.join("weights.bin")).unwrap();
    run(&mut gantry(
        &a,
        &["model", "add", "big", "weights.bin"],
        &env,
    ));
    let (mut push, mut scp_to, mut pull, mut scp_back) =
        (Side::new(), Side::new(), Side::new(), Side::new());
    let scp_dir = root.join("scp-target");
    for _ in 0..reps {
        empty(&ssh_store);
        push.add(run(&mut gantry(&a, &["model", "push"], &env)));
        empty(&scp_dir);
        scp_to.add(run(Command::new("scp")
            .args(["-q", "-F"])
            .arg(&config)
            .arg(&big)
            .arg(format!("models:{}/w", scp_dir.display()))));
        let _ = std::fs::remove_dir_all(b.join(".gantry/objects"));
        pull.add(run(&mut gantry(&b, &["model", "pull", "big"], &env)));
        scp_back.add(run(Command::new("scp")
            .args(["-q", "-F"])
            .arg(&config)
            .arg(format!("models:{}/w", scp_dir.display()))
            .arg(root.join("back-scp.bin"))));
    }
    report("push", mib, &push, &scp_to, "scp");
    report("pull", mib, &pull, &scp_back, "scp");
}
