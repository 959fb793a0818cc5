//! The Models tab: update() tests and snapshots, on manifests made in the test.

mod common;

use gantry::app::models::{Badge, ModelsFocus};
use gantry::app::{Drawer, Effect, Modal, Msg, State, Tab, update};
use gantry::config::KeyChord;
use gantry::registry::{FileEntry, Manifest, ModelSummary, RunRef};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn key(s: &str) -> Msg {
    Msg::Key(KeyChord::parse(s).unwrap())
}

fn press(s: &mut State, keys: &str) -> Vec<Effect> {
    keys.split_whitespace()
        .flat_map(|k| update(s, key(k)).effects)
        .collect()
}

fn manifest(name: &str, version: u32, run: Option<&str>, loss: f64) -> Manifest {
    Manifest {
        name: name.into(),
        version,
        created: format!("2026-11-2{version}T10:00:00Z"),
        author: "ana".into(),
        notes: format!("v{version} notes"),
        framework: Some("pytorch".into()),
        run: run.map(|r| RunRef {
            id: r.into(),
            name: format!("run-{version}"),
            experiment: "vision".into(),
            code_commit: Some(format!("{version:040}")),
            params: [("lr".to_string(), format!("0.{version}"))].into(),
            metrics: [
                ("val/loss".to_string(), loss),
                ("val/acc".to_string(), 1.0 - loss),
            ]
            .into(),
            hardware: None,
        }),
        from: None,
        files: vec![FileEntry {
            path: "model.pt".into(),
            size: 1024 * u64::from(version),
            blake3: format!("{version:064}"),
        }],
    }
}

fn loaded() -> State {
    let mut s = common::state();
    update(&mut s, Msg::RunsLoaded(Ok(common::some_records(3))));
    let fx = update(&mut s, key("2")).effects;
    assert!(
        fx.contains(&Effect::LoadModels),
        "opening the tab loads the models"
    );
    let models = vec![
        ModelSummary {
            name: "gpt2".into(),
            latest: 1,
            versions: 1,
            aliases: Default::default(),
        },
        ModelSummary {
            name: "resnet".into(),
            latest: 3,
            versions: 3,
            aliases: [("production".to_string(), 2)].into(),
        },
    ];
    let fx = update(&mut s, Msg::ModelsLoaded(Ok(models))).effects;
    assert_eq!(
        fx,
        vec![
            Effect::LoadVersions("gpt2".into()),
            Effect::LoadSync("gpt2".into())
        ],
        "the selected model's versions follow, and where they are against the remote"
    );
    s
}

fn versions(s: &mut State, name: &str) {
    let run = s.runs.records[0].run.id.clone();
    let v = (1..=3)
        .map(|i| manifest(name, i, Some(&run), 1.0 / f64::from(i)))
        .collect();
    update(s, Msg::VersionsLoaded(name.into(), Ok(v)));
}

#[test]
fn selecting_marking_and_diffing_versions() {
    let mut s = loaded();
    let fx = press(&mut s, "j");
    assert_eq!(
        fx,
        vec![
            Effect::LoadVersions("resnet".into()),
            Effect::LoadSync("resnet".into())
        ]
    );
    versions(&mut s, "resnet");
    assert_eq!(s.models.versions[0].version, 3, "newest first");
    let out = update(&mut s, key("enter"));
    assert!(out.redraw);
    assert_eq!(s.models.focus, ModelsFocus::Versions);
    press(&mut s, "space j j space");
    assert_eq!(s.models.marked, vec![3, 1]);
    let (a, b) = s.models.diff_pair().unwrap();
    assert_eq!((a.version, b.version), (1, 3), "older first");
    press(&mut s, "esc");
    assert_eq!(s.models.focus, ModelsFocus::Models);
    assert!(s.models.marked.is_empty());
}

#[test]
fn promote_asks_then_acts_and_verify_and_jump_to_run() {
    let mut s = loaded();
    press(&mut s, "j");
    versions(&mut s, "resnet");
    press(&mut s, "enter j a");
    assert!(matches!(s.modal, Some(Modal::Promote { version: 2, .. })));
    for c in "staging better val/loss".chars() {
        update(
            &mut s,
            Msg::Key(
                KeyChord::parse(&if c == ' ' {
                    "space".to_string()
                } else {
                    c.to_string()
                })
                .unwrap(),
            ),
        );
    }
    assert!(press(&mut s, "enter").is_empty());
    assert!(
        matches!(&s.modal, Some(Modal::Confirm { question, .. }) if question.starts_with("Point ")),
        "asks first"
    );
    let fx = press(&mut s, "y");
    assert_eq!(
        fx,
        vec![Effect::Promote {
            model: "resnet".into(),
            version: 2,
            alias: "staging".into(),
            reason: "better val/loss".into()
        }]
    );
    assert_eq!(
        press(&mut s, "v"),
        vec![Effect::VerifyModel("resnet".into())]
    );
    update(
        &mut s,
        Msg::Verified(
            "resnet".into(),
            vec![(1, Badge::Ok), (2, Badge::Damaged(1)), (3, Badge::Ok)],
        ),
    );
    assert_eq!(s.toast.as_deref(), Some("resnet: 1 versions damaged"));
    press(&mut s, "enter");
    assert_eq!(s.tab, Tab::Runs, "enter on a version opens its run");
    assert_eq!(
        s.runs.detail.as_deref(),
        Some(s.runs.records[0].run.id.as_str())
    );
}

#[test]
fn m_registers_a_runs_files_under_a_name() {
    let mut s = common::state();
    update(&mut s, Msg::RunsLoaded(Ok(common::some_records(2))));
    let id = s.runs.current().unwrap().run.id.clone();
    press(&mut s, "M ctrl-u");
    for c in "resnet".chars() {
        update(&mut s, key(&c.to_string()));
    }
    assert_eq!(
        press(&mut s, "enter"),
        vec![Effect::Register {
            run: id,
            model: "resnet".into()
        }]
    );
}

#[test]
fn snapshot_models_with_versions_badges_and_a_diff() {
    let mut s = loaded();
    press(&mut s, "j");
    versions(&mut s, "resnet");
    update(
        &mut s,
        Msg::Verified(
            "resnet".into(),
            vec![(1, Badge::Ok), (2, Badge::Ok), (3, Badge::Damaged(1))],
        ),
    );
    press(&mut s, "enter space j space");
    let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
    Drawer::draw(&mut t, &s).unwrap();
    insta::assert_snapshot!(t.backend().to_string());
}

#[test]
fn snapshot_a_version_with_its_cost_lineage_and_hardware() {
    use gantry::domain::efficiency::{Fingerprint, Hardware, HardwareGpu, RunEfficiency};
    use gantry::domain::model::Lineage;
    let mut s = loaded();
    press(&mut s, "j");
    let run = s.runs.records[0].run.id.clone();
    let mut v: Vec<Manifest> = (1..=3)
        .map(|i| manifest("resnet", i, Some(&run), 1.0 / f64::from(i)))
        .collect();
    v[2].from = Some("resnet@v2".into());
    if let Some(r) = v[2].run.as_mut() {
        r.hardware = Some(Hardware {
            host: "gpu01".into(),
            gpus: vec![HardwareGpu {
                name: "NVIDIA H200".into(),
                uuid: "GPU-1".into(),
                driver: Some("580.95.05".into()),
                cuda: Some("13.0".into()),
                power_limit_w: Some(700.0),
                pcie_gen: Some(5),
                pcie_width: Some(16),
                bench: Some(Fingerprint {
                    gemm_bf16_tflops: Some(712.4),
                    membw_gbs: Some(4113.0),
                    at_ms: s.now_ms - 3 * 86_400_000,
                }),
            }],
        });
    }
    update(&mut s, Msg::VersionsLoaded("resnet".into(), Ok(v)));
    let own = RunEfficiency {
        energy_wh: Some(2410.0),
        gpu_hours: Some(3.2),
        cost: Some(8.72),
        currency: Some("EUR".into()),
        ..Default::default()
    };
    let mut total = own.clone();
    total.add(&RunEfficiency {
        energy_wh: Some(5100.0),
        gpu_hours: Some(6.8),
        cost: Some(18.3),
        ..Default::default()
    });
    let out = update(
        &mut s,
        Msg::LineageLoaded(
            "resnet".into(),
            vec![(
                3,
                Lineage {
                    own,
                    total,
                    versions: vec!["resnet@v3".into(), "resnet@v2".into()],
                    runs: 2,
                    missing: Vec::new(),
                },
            )],
        ),
    );
    assert!(out.redraw, "the figures arriving are drawn");
    press(&mut s, "enter");
    let mut t = Terminal::new(TestBackend::new(140, 34)).unwrap();
    Drawer::draw(&mut t, &s).unwrap();
    let screen = t.backend().to_string();
    assert!(
        screen.contains("7.51 kWh · 10.00 GPU-h · 27.02 EUR over 2 runs"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
}
