//! The Models tab against a remote, through the real effect runner: each version's place (local,
//! remote, both) and how far the registry is ahead or behind; `P` pushes and `L` pulls, each
//! after a yes, with a progress bar, and the places read true afterwards.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gantry::app::{Effect, EffectRunner, Msg, State, update};
use gantry::config::KeyChord;
use gantry::store::Store;
use gantry::workspace::Workspace;

use common::screen;

struct Open {
    state: State,
    runner: EffectRunner,
    rx: tokio::sync::mpsc::UnboundedReceiver<Msg>,
}

async fn open(ws: &Workspace) -> Open {
    let store = Store::open(&ws.db_path()).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let runner = EffectRunner::new(store, tx, ws.dir());
    let mut state = common::state();
    state.size = (140, 30);
    let mut o = Open { state, runner, rx };
    settle(&mut o, Msg::Resize(140, 30)).await;
    o
}

/// Apply `msg`, run what it asks for, and apply what comes back, until nothing more comes.
async fn settle(o: &mut Open, msg: Msg) {
    let mut effects: Vec<Effect> = update(&mut o.state, msg).effects;
    loop {
        for e in effects.drain(..) {
            o.runner.run(e);
        }
        match tokio::time::timeout(Duration::from_millis(1500), o.rx.recv()).await {
            Ok(Some(m)) => effects = update(&mut o.state, m).effects,
            _ => return,
        }
    }
}

async fn keys(o: &mut Open, ks: &str) {
    for k in ks.split(' ') {
        settle(o, Msg::Key(KeyChord::parse(k).unwrap())).await;
    }
}

fn gantry(ws: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(args)
        .current_dir(ws)
        .output()
        .unwrap();
    assert!(out.status.success(), "gantry {args:?}: {out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_show_where_they_are_and_p_pushes_and_l_pulls() {
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("models.git");
    let st = Command::new("git")
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(&bare)
        .status()
        .unwrap();
    assert!(st.success());
    let remote = format!("file://{}", bare.display());
    let objects = dir.path().join("objects");
    let (pa, pb) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&pa).unwrap();
    std::fs::create_dir_all(&pb).unwrap();
    let (a, b) = (Workspace::init(&pa).unwrap(), Workspace::init(&pb).unwrap());
    for ws in [&pa, &pb] {
        gantry(
            ws,
            &[
                "model",
                "remote",
                "add",
                "origin",
                &remote,
                "--objects",
                objects.to_str().unwrap(),
            ],
        );
    }
    std::fs::write(pa.join("weights.bin"), vec![7u8; 300_000]).unwrap();
    gantry(&pa, &["model", "add", "unet", "weights.bin"]);

    // On a: the version is local, the remote never fetched.
    let mut o = open(&a).await;
    keys(&mut o, "2 enter").await;
    let text = screen(&o.state, 140, 30);
    assert!(text.contains("unet · origin: never fetched"), "{text}");
    assert!(text.contains("local"), "{text}");
    // P asks, then pushes; the version is then on both sides, in sync.
    keys(&mut o, "P").await;
    assert!(o.state.modal.is_some(), "P asks first");
    keys(&mut o, "y").await;
    let text = screen(&o.state, 140, 30);
    assert!(text.contains("unet · origin: in sync"), "{text}");
    assert!(text.contains("both"), "{text}");
    assert!(
        o.state
            .toast
            .as_deref()
            .is_some_and(|t| t.contains("pushed to origin: 1 files sent")),
        "{:?}",
        o.state.toast
    );

    // On b, after a fetch: the version is on the remote only; L asks, then pulls it.
    gantry(&pb, &["model", "fetch"]);
    let mut o = open(&b).await;
    keys(&mut o, "2 enter").await;
    let text = screen(&o.state, 140, 30);
    assert!(text.contains("remote"), "{text}");
    keys(&mut o, "L").await;
    let asked = o.state.modal.is_some();
    keys(&mut o, "y").await;
    assert!(asked, "L asks first");
    let text = screen(&o.state, 140, 30);
    assert!(text.contains("both"), "{text}");
    assert!(
        o.state
            .toast
            .as_deref()
            .is_some_and(|t| t.contains("pulled unet@v1: 1 files")),
        "{:?}",
        o.state.toast
    );
    // A "no" changes nothing.
    keys(&mut o, "P n").await;
    assert_eq!(o.state.toast.as_deref(), Some("nothing pushed"));
}

#[test]
fn the_transfer_bar_reads_what_and_how_far() {
    let mut s = common::state();
    s.tab = gantry::app::Tab::Models;
    s.models.loaded = true;
    s.models.models = vec![gantry::domain::ModelSummary {
        name: "unet".into(),
        latest: 1,
        versions: 1,
        aliases: Default::default(),
    }];
    s.models.versions_of = "unet".into();
    update(&mut s, Msg::Transfer("pushing".into(), 3 << 20, 12 << 20));
    let text = screen(&s, 140, 30);
    assert!(text.contains("pushing 3.0 MiB/12.0 MiB █████"), "{text}");
}
