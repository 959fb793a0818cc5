//! Sharing the registry between workspaces through a bare git remote (`file://`) and a directory
//! objects store, through the binary: push, pull, fetch and checkout on demand; the git CLI reads
//! the remote (`git fsck`); aliases moved on two hosts at once (replayed, or a real conflict);
//! immutable versions; a damaged remote object refused; an interrupted push resumed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Box_ {
    ws: PathBuf,
    host: &'static str,
    /// Environment for ssh: GIT_SSH_COMMAND and GANTRY_SSH naming the test's ssh config.
    env: Vec<(String, String)>,
}

fn gantry(b: &Box_, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(args)
        .current_dir(&b.ws)
        .env("GANTRY_HOST", b.host)
        .env("XDG_CONFIG_HOME", b.ws.join(".config-home"))
        .envs(b.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
}

fn ok(b: &Box_, args: &[&str]) -> String {
    let out = gantry(b, args);
    assert!(
        out.status.success(),
        "{} `gantry {}`: {}{}",
        b.host,
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn fails(b: &Box_, args: &[&str]) -> String {
    let out = gantry(b, args);
    assert!(
        !out.status.success(),
        "{} `gantry {}` should fail: {}",
        b.host,
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

struct Team {
    dir: tempfile::TempDir,
    remote: String,
    objects: PathBuf,
}

fn team() -> Team {
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("models.git");
    let out = Command::new("git")
        .args(["init", "--bare", "-b", "main"])
        .arg(&bare)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let objects = dir.path().join("shared-objects");
    Team {
        remote: format!("file://{}", bare.display()),
        objects,
        dir,
    }
}

fn workspace(t: &Team, host: &'static str) -> Box_ {
    workspace_on(t, host, &t.remote, t.objects.to_str().unwrap(), Vec::new())
}

fn workspace_on(
    t: &Team,
    host: &'static str,
    remote: &str,
    objects: &str,
    env: Vec<(String, String)>,
) -> Box_ {
    let ws = t.dir.path().join(host);
    std::fs::create_dir_all(&ws).unwrap();
    let b = Box_ { ws, host, env };
    ok(&b, &["init", "."]);
    ok(
        &b,
        &[
            "model",
            "remote",
            "add",
            "origin",
            remote,
            "--objects",
            objects,
        ],
    );
    b
}

/// A model's files in `b`'s workspace: `weights.bin` of `n` bytes made from `seed`.
fn files(b: &Box_, seed: u8, n: usize) -> PathBuf {
    let d = b.ws.join(format!("out-{seed}"));
    std::fs::create_dir_all(&d).unwrap();
    let bytes: Vec<u8> = (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    std::fs::write(d.join("weights.bin"), bytes).unwrap();
    std::fs::write(d.join("config.json"), format!("{{\"seed\": {seed}}}")).unwrap();
    d
}

#[test]
fn push_pull_fetch_and_checkout_on_demand_between_two_workspaces() {
    let t = team();
    let a = workspace(&t, "gpu01");
    let b = workspace(&t, "laptop");
    let v1 = files(&a, 1, 300_000);
    ok(&a, &["model", "add", "resnet", v1.to_str().unwrap()]);
    let listed = ok(&a, &["model", "remote", "ls"]);
    assert!(
        listed.contains("origin") && listed.contains("shared-objects"),
        "{listed}"
    );
    let pushed = ok(&a, &["model", "push"]);
    assert!(pushed.contains("2 objects sent"), "{pushed}");
    // Pushing again sends nothing.
    assert!(ok(&a, &["model", "push"]).contains("0 objects sent"));
    // An object cut short on the remote (a crash while it was written) is sent again.
    let cut = walk(&t.objects)
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .unwrap();
    let mut perm = std::fs::metadata(&cut).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&cut, perm).unwrap();
    std::fs::write(&cut, b"cut").unwrap();
    assert!(ok(&a, &["model", "push"]).contains("1 objects sent"));
    assert!(std::fs::metadata(&cut).unwrap().len() > 1000);
    // The git CLI reads what was pushed.
    let clone = t.dir.path().join("clone");
    let out = Command::new("git")
        .args(["clone", "-q", &t.remote])
        .arg(&clone)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    git(&clone, &["fsck", "--strict"]);
    assert!(git(&clone, &["tag"]).contains("resnet@v1"));
    assert!(clone.join("resnet/model.toml").is_file());
    // The other workspace pulls and checks out the same bytes.
    let pulled = ok(&b, &["model", "pull", "resnet"]);
    assert!(
        pulled.contains("resnet@v1") && pulled.contains("2 objects"),
        "{pulled}"
    );
    let to = b.ws.join("checked");
    ok(
        &b,
        &[
            "model",
            "checkout",
            "resnet@v1",
            "--to",
            to.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read(to.join("weights.bin")).unwrap(),
        std::fs::read(v1.join("weights.bin")).unwrap()
    );
    // A second version: fetched as a manifest, its files brought by checkout.
    let v2 = files(&a, 2, 200_000);
    ok(&a, &["model", "add", "resnet", v2.to_str().unwrap()]);
    ok(&a, &["model", "push"]);
    assert!(ok(&b, &["model", "fetch"]).contains("fast-forwarded"));
    assert!(ok(&b, &["model", "ls"]).contains("v2"));
    let to2 = b.ws.join("checked2");
    ok(
        &b,
        &[
            "model",
            "checkout",
            "resnet@v2",
            "--to",
            to2.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read(to2.join("weights.bin")).unwrap(),
        std::fs::read(v2.join("weights.bin")).unwrap()
    );
    ok(&b, &["model", "verify"]);
    // Files the remote holds can be freed here, and come back on checkout.
    let listed = ok(&a, &["model", "gc", "--local-only"]);
    assert!(
        listed.contains("4 local objects are also in origin's store"),
        "{listed}"
    );
    let freed = ok(&a, &["model", "gc", "--local-only", "--delete"]);
    assert!(freed.contains("removed 4 objects"), "{freed}");
    ok(&a, &["model", "verify"]);
    let back = a.ws.join("back");
    ok(
        &a,
        &[
            "model",
            "checkout",
            "resnet@v1",
            "--to",
            back.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read(back.join("weights.bin")).unwrap(),
        std::fs::read(v1.join("weights.bin")).unwrap()
    );
    // A plain gc never removes what a version needs.
    assert!(ok(&a, &["model", "gc", "--delete"]).contains("removed 0 objects"));
}

#[test]
fn aliases_moved_on_two_hosts_are_replayed_or_named_as_a_conflict() {
    let t = team();
    let a = workspace(&t, "gpu01");
    let b = workspace(&t, "gpu02");
    for s in [1, 2, 3] {
        let d = files(&a, s, 1000);
        ok(&a, &["model", "add", "bert", d.to_str().unwrap()]);
    }
    ok(&a, &["model", "push"]);
    ok(&b, &["model", "fetch"]);
    // Two aliases, one on each host, without a fetch between: both end up on the remote.
    ok(
        &a,
        &[
            "model",
            "promote",
            "bert@v1",
            "production",
            "--reason",
            "eval ok",
        ],
    );
    ok(&b, &["model", "promote", "bert@v2", "staging"]);
    ok(&a, &["model", "push"]);
    ok(&b, &["model", "push"]);
    ok(&a, &["model", "fetch"]);
    let shown = ok(&a, &["model", "ls"]);
    assert!(
        shown.contains("production") && shown.contains("staging"),
        "{shown}"
    );
    // Who moved what, where: the log keeps both authors' commits.
    let log = ok(&a, &["model", "log", "bert"]);
    assert!(
        log.contains("promote bert@v1 to production: eval ok"),
        "{log}"
    );
    assert!(log.contains("promote bert@v2 to staging"), "{log}");
    // The same alias moved differently on both: a conflict naming both; nothing overwritten.
    ok(&b, &["model", "fetch"]);
    ok(&a, &["model", "promote", "bert@v2", "production"]);
    ok(&a, &["model", "push"]);
    ok(&b, &["model", "promote", "bert@v1", "canary"]);
    ok(&b, &["model", "promote", "bert@v3", "production"]);
    let err = fails(&b, &["model", "push"]);
    assert!(
        err.contains("alias bert@production: this registry moved it to v3 and origin to v2"),
        "{err}"
    );
    // b's registry is as it was before the push: production still v3 there.
    assert!(ok(&b, &["model", "show", "bert@production"]).contains("bert@v3"));
    // The remote keeps a's.
    let clone = t.dir.path().join("clone");
    Command::new("git")
        .args(["clone", "-q", &t.remote])
        .arg(&clone)
        .output()
        .unwrap();
    let aliases = std::fs::read_to_string(clone.join("bert/aliases.toml")).unwrap();
    assert!(aliases.contains("production = 2"), "{aliases}");
}

#[test]
fn a_version_is_never_replaced_and_a_damaged_object_is_refused() {
    let t = team();
    let a = workspace(&t, "gpu01");
    let b = workspace(&t, "gpu02");
    let da = files(&a, 7, 5000);
    let db = files(&b, 8, 5000);
    ok(&a, &["model", "add", "vit", da.to_str().unwrap()]);
    ok(&b, &["model", "add", "vit", db.to_str().unwrap()]);
    ok(&a, &["model", "push"]);
    let err = fails(&b, &["model", "push"]);
    assert!(
        err.contains("vit@v1 is a different version on origin"),
        "{err}"
    );
    // a's version is what the remote holds.
    let c = workspace(&t, "laptop");
    // Damage a's weights on the remote: the pull refuses it, by name, and keeps nothing of it.
    let m = ok(&c, &["model", "fetch"]);
    assert!(m.contains("fast-forwarded"), "{m}");
    let show = ok(&c, &["model", "show", "vit@v1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&show).unwrap();
    let weights = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "weights.bin")
        .unwrap()["blake3"]
        .as_str()
        .unwrap()
        .to_string();
    let on_remote = t.objects.join(&weights[..2]).join(&weights[2..]);
    let mut perm = std::fs::metadata(&on_remote).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&on_remote, perm).unwrap();
    std::fs::write(&on_remote, b"not the weights").unwrap();
    let err = fails(&c, &["model", "pull", "vit@v1"]);
    assert!(err.contains(&format!("refused object {weights}")), "{err}");
    assert!(
        !c.ws
            .join(".gantry/objects")
            .join(&weights[..2])
            .join(&weights[2..])
            .exists()
    );
    // Pushed again from a good copy, the pull goes on.
    std::fs::remove_file(&on_remote).unwrap();
    ok(&a, &["model", "push"]);
    ok(&c, &["model", "pull", "vit@v1"]);
    ok(&c, &["model", "verify"]);
}

#[test]
fn an_interrupted_push_resumes_and_verifies() {
    let t = team();
    let a = workspace(&t, "gpu01");
    // Many objects, so the push is killed with some sent and some not.
    let d = a.ws.join("many");
    std::fs::create_dir_all(&d).unwrap();
    for i in 0..200u32 {
        let bytes: Vec<u8> = (0..200_000u32).map(|j| (j ^ i) as u8).collect();
        std::fs::write(d.join(format!("shard-{i:03}.bin")), bytes).unwrap();
    }
    ok(&a, &["model", "add", "big", d.to_str().unwrap()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["model", "push"])
        .current_dir(&a.ws)
        .env("XDG_CONFIG_HOME", a.ws.join(".config-home"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once some objects are there.
    let count = || {
        walk(&t.objects)
            .iter()
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while count() < 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    let before = count();
    assert!(before >= 20, "{before}");
    let pushed = ok(&a, &["model", "push"]);
    let sent: usize = pushed
        .split(" objects sent")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(sent, 200 - before.min(200), "{pushed}");
    let b = workspace(&t, "laptop");
    ok(&b, &["model", "pull", "big"]);
    assert!(ok(&b, &["model", "verify"]).contains("checked 200 files: 0 problems"));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn a_remote_and_its_objects_over_ssh() {
    let t = team();
    let keys = t.dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    if common::sshd::keys(&keys).is_none() {
        return common::skip("no ssh-keygen here; apt-get install openssh-client");
    }
    let server = match common::sshd::start(&keys, "models", Path::new("/usr/bin")) {
        Ok(s) => s,
        Err(e) => return common::skip(&format!("no sshd to run: {e}")),
    };
    let config = common::sshd::client_config(&keys, &[("models", server.port)]);
    // git and gantry both go through the user's ssh, here with the test's config.
    let env = common::sshd::env_for(&keys, &config);
    let bare = t.dir.path().join("models.git");
    let remote = format!("models:{}", bare.display());
    let objects = format!("ssh://models{}", t.dir.path().join("ssh-objects").display());
    let a = workspace_on(&t, "gpu01", &remote, &objects, env.clone());
    let b = workspace_on(&t, "laptop", &remote, &objects, env);
    let v1 = files(&a, 5, 400_000);
    ok(&a, &["model", "add", "llama", v1.to_str().unwrap()]);
    assert!(ok(&a, &["model", "push"]).contains("2 objects sent"));
    assert!(ok(&a, &["model", "push"]).contains("0 objects sent"));
    assert!(t.dir.path().join("ssh-objects").is_dir());
    let pulled = ok(&b, &["model", "pull", "llama"]);
    assert!(pulled.contains("2 objects"), "{pulled}");
    ok(&b, &["model", "verify"]);
    let to = b.ws.join("out");
    ok(
        &b,
        &[
            "model",
            "checkout",
            "llama@v1",
            "--to",
            to.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read(to.join("weights.bin")).unwrap(),
        std::fs::read(v1.join("weights.bin")).unwrap()
    );
}

/// moto's S3 server on a loopback port, killed when dropped.
struct Moto(std::process::Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_objects_store_on_s3() {
    let Some(py) = common::python::python_with_moto() else {
        return;
    };
    let port = common::sshd::free_port();
    let _server = Moto(
        Command::new(&py)
            .args(["-m", "moto.server", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "moto never listened");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let aws = |k: &str, v: &str| (k.to_string(), v.to_string());
    let env = vec![
        aws("AWS_ACCESS_KEY_ID", "testing"),
        aws("AWS_SECRET_ACCESS_KEY", "testing"),
        aws("AWS_REGION", "us-east-1"),
    ];
    let boto = |code: &str| {
        let out = Command::new(&py)
            .args([
                "-c",
                &format!(
                    "import boto3; s3 = boto3.client('s3', endpoint_url='{endpoint}'); {code}"
                ),
            ])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    boto("s3.create_bucket(Bucket='models')");
    let t = team();
    let objects = format!("s3://models/team/objects?endpoint={endpoint}");
    let a = workspace_on(&t, "gpu01", &t.remote, &objects, env.clone());
    let b = workspace_on(&t, "laptop", &t.remote, &objects, env.clone());
    let v1 = files(&a, 9, 700_000);
    ok(&a, &["model", "add", "whisper", v1.to_str().unwrap()]);
    assert!(ok(&a, &["model", "push"]).contains("2 objects sent"));
    assert!(ok(&a, &["model", "push"]).contains("0 objects sent"));
    // S3's own client lists what gantry put, where it says.
    let keys = boto("print([o['Key'] for o in s3.list_objects_v2(Bucket='models')['Contents']])");
    assert!(keys.contains("team/objects/"), "{keys}");
    ok(&b, &["model", "pull", "whisper"]);
    ok(&b, &["model", "verify"]);
    // Damaged in the bucket: refused on pull, by name.
    let c = workspace_on(&t, "laptop2", &t.remote, &objects, env.clone());
    let show = ok(&a, &["model", "show", "whisper@v1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&show).unwrap();
    let h = v["files"][0]["blake3"].as_str().unwrap().to_string();
    boto(&format!(
        "s3.put_object(Bucket='models', Key='team/objects/{}/{}', Body=b'garbage')",
        &h[..2],
        &h[2..]
    ));
    let err = fails(&c, &["model", "pull", "whisper"]);
    assert!(err.contains(&format!("refused object {h}")), "{err}");
}
