//! The model registry through the real binary, and read by the real git CLI.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Ws {
    _t: tempfile::TempDir,
    root: PathBuf,
}

impl Ws {
    fn new() -> Ws {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().to_path_buf();
        let ws = Ws { _t: t, root };
        assert!(ws.g(&["init"]).status.success());
        ws
    }
    fn g(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_gantry"))
            .arg("--workspace")
            .arg(&self.root)
            .args(args)
            .current_dir(&self.root)
            .output()
            .unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.g(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }
    fn err(&self, args: &[&str]) -> String {
        let o = self.g(args);
        assert!(!o.status.success(), "{args:?} should fail");
        String::from_utf8(o.stderr).unwrap()
    }
    fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }
    fn git(&self, args: &[&str]) -> String {
        let o = Command::new("git")
            .arg("-C")
            .arg(self.root.join(".gantry/registry"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }
}

#[test]
fn versions_aliases_diff_and_checkout_round_trip() {
    let ws = Ws::new();
    // A run to link: its params and final metrics go into the manifest.
    ws.ok(&[
        "run",
        "-n",
        "train",
        "--param",
        "lr=0.1",
        "--",
        "sh",
        "-c",
        "echo '{\"val/loss\": 0.5}' >> \"$GANTRY_METRICS\"",
    ]);
    ws.write("ckpt/model.safetensors", b"weights one");
    ws.write("ckpt/config.json", b"{}");
    ws.ok(&[
        "model", "add", "resnet", "ckpt", "--run", "train", "--notes", "first",
    ]);
    ws.write("ckpt/model.safetensors", b"weights two, longer"); // in place, as torch.save does
    ws.write("ckpt/tokenizer.json", b"[]");
    std::fs::remove_file(ws.root.join("ckpt/config.json")).unwrap();
    ws.ok(&["model", "add", "resnet", "ckpt"]);
    ws.ok(&[
        "model",
        "promote",
        "resnet@v1",
        "production",
        "--reason",
        "passed eval",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&ws.ok(&["model", "show", "resnet@production", "--json"])).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["aliases"], serde_json::json!(["production"]));
    assert_eq!(v["run"]["name"], "train");
    assert_eq!(v["run"]["params"]["lr"], "0.1");
    assert_eq!(v["run"]["metrics"]["val/loss"], 0.5);
    assert_eq!(v["framework"], "huggingface (safetensors)");
    let ls: serde_json::Value = serde_json::from_str(&ws.ok(&["model", "ls", "--json"])).unwrap();
    assert_eq!(ls[0]["latest"], 2);
    let diff = ws.ok(&["model", "diff", "resnet@v1", "resnet@v2"]);
    assert!(
        diff.contains("~ model.safetensors (11 B -> 19 B)"),
        "{diff}"
    );
    assert!(
        diff.contains("+ tokenizer.json") && diff.contains("- config.json"),
        "{diff}"
    );
    ws.ok(&["model", "checkout", "resnet@production", "--to", "out"]);
    assert_eq!(
        std::fs::read(ws.root.join("out/model.safetensors")).unwrap(),
        b"weights one",
        "v1 survived the overwrite"
    );
    // Lineage the other way: the run lists the version made from it.
    let run: serde_json::Value =
        serde_json::from_str(&ws.ok(&["show", "train", "--json"])).unwrap();
    assert_eq!(run["models"], serde_json::json!(["resnet@v1"]));
    let log = ws.ok(&["model", "log", "resnet"]);
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines[0].contains("promote resnet@v1 to production: passed eval"),
        "{log}"
    );
    assert!(lines[2].contains("add resnet@v1: first"), "{log}");
    assert!(
        ws.ok(&["model", "verify"])
            .contains("checked 4 files: 0 problems"),
        "two versions of two files each"
    );
}

#[test]
fn the_git_cli_reads_the_registry_and_a_clone_is_a_registry() {
    let ws = Ws::new();
    ws.write("m/w.bin", b"1");
    ws.ok(&["model", "add", "m", "m"]);
    ws.write("m/w.bin", b"22");
    ws.ok(&["model", "add", "m", "m", "--notes", "second"]);
    let log = ws.git(&["log", "--format=%s"]);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        ["add m@v2: second", "add m@v1"]
    );
    let toml = ws.git(&["show", "m@v2:m/model.toml"]);
    assert!(
        toml.contains("version = 2") && toml.contains("path = \"w.bin\""),
        "{toml}"
    );
    assert!(ws.git(&["tag", "-n1", "-l"]).contains("m@v2"));
    ws.git(&["fsck", "--strict"]);
    // A clone is a registry: manifests and history come along (the files do not: verify says so).
    let other = tempfile::tempdir().unwrap();
    let st = Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(ws.root.join(".gantry/registry"))
        .arg(other.path().join(".gantry/registry"))
        .output()
        .unwrap();
    assert!(st.status.success());
    let o = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("--workspace")
        .arg(other.path())
        .args(["model", "show", "m@v2", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["notes"], "second");
    let o = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("--workspace")
        .arg(other.path())
        .args(["model", "verify"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("missing m@v1 w.bin"));
}

#[test]
fn a_corrupt_object_is_reported_and_not_checked_out() {
    let ws = Ws::new();
    ws.write("m/w.bin", b"good bytes");
    ws.ok(&["model", "add", "m", "m/w.bin"]);
    let v: serde_json::Value =
        serde_json::from_str(&ws.ok(&["model", "show", "m", "--json"])).unwrap();
    let h = v["files"][0]["blake3"].as_str().unwrap();
    let obj = ws.root.join(".gantry/objects").join(&h[..2]).join(&h[2..]);
    std::fs::write(&obj, b"bad bytes!").unwrap();
    let o = ws.g(&["model", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("corrupt m@v1 w.bin"));
    let e = ws.err(&["model", "checkout", "m@v1", "--to", "out"]);
    assert!(e.contains("refusing to check out w.bin of m@v1"), "{e}");
    assert!(!ws.root.join("out/w.bin").exists());
}

#[test]
fn two_processes_adding_at_once_get_two_versions() {
    let ws = Ws::new();
    ws.write("a/w.bin", b"from a");
    ws.write("b/w.bin", b"from b");
    let spawn = |dir: &str| {
        Command::new(env!("CARGO_BIN_EXE_gantry"))
            .arg("--workspace")
            .arg(&ws.root)
            .args(["model", "add", "shared", dir])
            .current_dir(&ws.root)
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn("a"), spawn("b"));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let v1: serde_json::Value =
        serde_json::from_str(&ws.ok(&["model", "show", "shared@v1", "--json"])).unwrap();
    let v2: serde_json::Value =
        serde_json::from_str(&ws.ok(&["model", "show", "shared@v2", "--json"])).unwrap();
    assert_ne!(v1["files"][0]["blake3"], v2["files"][0]["blake3"]);
    ws.git(&["fsck"]);
}

#[test]
fn bad_input_is_refused_and_leaves_the_registry_consistent() {
    let ws = Ws::new();
    ws.write("m/w.bin", b"x");
    ws.ok(&["model", "add", "m", "m"]);
    assert!(
        ws.err(&["model", "show", "nope"])
            .contains("no model named `nope`")
    );
    assert!(
        ws.err(&["model", "show", "m@v9"])
            .contains("m has no version 9")
    );
    assert!(
        ws.err(&["model", "show", "m@staging"])
            .contains("no version or alias `staging`")
    );
    assert!(
        ws.err(&["model", "promote", "m@v9", "prod"])
            .contains("no version 9")
    );
    assert!(
        ws.err(&["model", "add", "bad/name", "m"])
            .contains("is not a model name")
    );
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("w.bin"), b"y").unwrap();
    assert!(
        ws.err(&[
            "model",
            "add",
            "m",
            outside.path().join("w.bin").to_str().unwrap()
        ])
        .contains("outside the workspace")
    );
    std::os::unix::fs::symlink(ws.root.join("m/w.bin"), ws.root.join("link.bin")).unwrap();
    assert!(
        ws.err(&["model", "add", "m", "link.bin"])
            .contains("is a symbolic link")
    );
    assert!(
        ws.err(&["model", "add", "m", "missing.bin"])
            .contains("cannot read")
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let p = ws.write("secret/w.bin", b"z");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
        let stderr = if unsafe { libc::geteuid() } != 0 {
            ws.err(&["model", "add", "m", "secret/w.bin"])
        } else {
            // Root reads every file: the workspace goes to `nobody`, who runs gantry (setpriv)
            // and owns the file but may not read it, so the case runs under every user.
            let chown = |owner: &str| {
                let o = Command::new("chown")
                    .args(["-R", owner])
                    .arg(&ws.root)
                    .output()
                    .unwrap();
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            };
            chown("65534:65534");
            std::fs::set_permissions(&ws.root, std::fs::Permissions::from_mode(0o755)).unwrap();
            let o = Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(env!("CARGO_BIN_EXE_gantry"))
                .arg("--workspace")
                .arg(&ws.root)
                .args(["model", "add", "m", "secret/w.bin"])
                .current_dir(&ws.root)
                .env("HOME", &ws.root)
                .output()
                .unwrap();
            chown("0:0");
            assert!(!o.status.success());
            String::from_utf8(o.stderr).unwrap()
        };
        assert!(stderr.contains("cannot read"), "{stderr}");
    }
    // Nothing above added a version.
    assert!(ws.err(&["model", "show", "m@v2"]).contains("no version 2"));
    ws.git(&["fsck"]);
}

#[test]
fn a_hand_edited_or_dirty_registry_is_named_not_trusted() {
    let ws = Ws::new();
    ws.write("m/w.bin", b"x");
    ws.ok(&["model", "add", "m", "m"]);
    // Hand-edit: commit a broken manifest through a clone and push it back.
    let work = tempfile::tempdir().unwrap();
    let w = work.path().join("w");
    let git = |dir: &Path, args: &[&str]| {
        let o = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    git(
        work.path(),
        &[
            "clone",
            "-q",
            ws.root.join(".gantry/registry").to_str().unwrap(),
            "w",
        ],
    );
    std::fs::write(w.join("m/model.toml"), "this is = = not toml").unwrap();
    git(&w, &["commit", "-qam", "oops"]);
    git(&w, &["tag", "-f", "m@v1"]);
    git(
        &w,
        &["push", "-q", "--force", "origin", "main", "refs/tags/m@v1"],
    );
    let e = ws.err(&["model", "show", "m@v1"]);
    assert!(
        e.contains("m@v1:m/model.toml cannot be read") && e.contains("edited by hand"),
        "{e}"
    );
    // A registry with a working tree holding uncommitted edits: writes are refused.
    let reg = ws.root.join(".gantry/registry");
    std::fs::remove_dir_all(&reg).unwrap();
    git(
        work.path(),
        &["clone", "-q", w.to_str().unwrap(), reg.to_str().unwrap()],
    );
    std::fs::write(reg.join("m/model.toml"), "edited").unwrap();
    let e = ws.err(&["model", "add", "m", "m"]);
    assert!(e.contains("has uncommitted edits"), "{e}");
}

#[test]
fn names_git_cannot_tag_are_refused_before_anything_is_written() {
    let ws = Ws::new();
    ws.write("m/w.bin", b"x");
    ws.ok(&["model", "add", "m", "m"]);
    let head = ws.git(&["rev-parse", "main"]);
    for bad in ["-x", "--help", "a..b", "w.lock", "dot.", ".hidden"] {
        let e = ws.err(&["model", "add", "--", bad, "m"]);
        assert!(e.contains("is not a model name"), "{bad}: {e}");
    }
    assert_eq!(
        ws.git(&["rev-parse", "main"]),
        head,
        "no commit left behind"
    );
    assert_eq!(ws.git(&["tag"]).trim(), "m@v1");
    ws.git(&["fsck"]);
}

#[test]
fn aliases_that_resolve_as_versions_are_refused_and_latest_is_the_newest() {
    let ws = Ws::new();
    ws.write("m/w.bin", b"1");
    ws.ok(&["model", "add", "m", "m"]);
    ws.write("m/w.bin", b"2");
    ws.ok(&["model", "add", "m", "m"]);
    for bad in ["3", "v3", "latest"] {
        let e = ws.err(&["model", "promote", "m@v1", bad]);
        assert!(
            e.contains("looks like a version") || e.contains("always means the newest"),
            "{bad}: {e}"
        );
    }
    let shown = ws.ok(&["model", "show", "m@latest", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["version"], 2);
}

#[test]
fn a_file_rewritten_while_it_is_added_is_refused_not_registered_corrupt() {
    use gantry::registry::{NewVersion, Registry};
    let t = tempfile::tempdir().unwrap();
    let gantry_dir = t.path().join(".gantry");
    std::fs::create_dir_all(&gantry_dir).unwrap();
    let file = t.path().join("ckpt.pt");
    std::fs::write(&file, vec![1u8; 4 << 20]).unwrap();
    let reg = Registry::open(&gantry_dir).unwrap();
    let req = NewVersion {
        name: "m".into(),
        files: vec![("ckpt.pt".into(), file.clone())],
        run: None,
        from: None,
        notes: String::new(),
        author: "t".into(),
        hard_link: false,
    };
    // The training script is still saving: the checkpoint changes after gantry hashed it.
    let seen = std::cell::Cell::new(0u64);
    let err = reg
        .add(&req, &|n| {
            seen.set(seen.get() + n);
            if seen.get() == 4 << 20 {
                std::fs::write(&file, vec![2u8; 4 << 20]).unwrap();
            }
        })
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("changed while it was being stored"),
        "{err:#}"
    );
    assert!(reg.versions("m").unwrap().is_empty(), "nothing registered");
    // Once the file is whole, it registers and checks out.
    let m = reg.add(&req, &|_| {}).unwrap();
    assert_eq!(m.version, 1);
    let (checked, problems) = reg.verify(None).unwrap();
    assert_eq!((checked, problems.len()), (1, 0));
}
