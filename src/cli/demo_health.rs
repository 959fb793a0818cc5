//! The demo's preflight refusal: a GPT-2 run on gpu02 whose second H200 trained its PCIe link to
//! x8 of x16 under load, refused before its command started, as `gantry run --preflight` keeps
//! it (failed, exit 4, the report as its `gantry.preflight` tag). Judged by the same code.

use anyhow::{Context, Result};

use crate::domain::preflight::{
    BenchCheck, GpuCheck, Mode, OUTCOME_TAG, Outcome, Report, Settings, TAG,
};
use crate::domain::{NewRun, RunStatus, bench::Unit};
use crate::store::Store;
use crate::workspace::Workspace;

pub const NAME: &str = "gpt2-124m-lr1e-3";

pub async fn seed(ws: &Workspace, store: &Store, now_ms: i64) -> Result<()> {
    let started_ms = now_ms - 27 * 60 * 60_000;
    let id = crate::domain::new_run_id();
    let dir = ws.runs_dir().join(&id);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let command: Vec<String> = ["python", "train.py", "--lr", "0.001", "--batch-size", "64"]
        .map(String::from)
        .to_vec();
    let uuid = "GPU-h200-01-made-up";
    let new = NewRun {
        id: id.clone(),
        experiment: "lm".into(),
        name: NAME.into(),
        started_ms,
        host: "gpu02".into(),
        user: "demo".into(),
        pid: None,
        command: command.clone(),
        cwd: "/home/demo/project".into(),
        git_commit: Some("d0f9a6b39164e4d2a36c813ba9a84e68c426c093".into()),
        git_branch: Some("main".into()),
        git_dirty: Some(false),
        notes: String::new(),
        run_dir: dir.display().to_string(),
        env: [("CUDA_VISIBLE_DEVICES".to_string(), "1".to_string())].into(),
        gpus: vec!["NVIDIA H200".into()],
    };
    let run = store.create_run(&new).await?;
    let bench = |label: &str, unit: Unit, value: f64, c: &str| BenchCheck {
        device: "GPU 1".into(),
        name: "NVIDIA H200".into(),
        uuid: uuid.into(),
        label: label.into(),
        unit,
        value,
        median: None,
        past: 0,
        correct: true,
        conditions: Some(c.into()),
        held_by: String::new(),
    };
    let mut report = Report {
        checked_ms: started_ms,
        mode: Mode::Block,
        seconds: 21.4,
        backend: "cuda".into(),
        outcome: Outcome::Passed,
        gpus: vec![GpuCheck {
            index: 1,
            name: "NVIDIA H200".into(),
            uuid: uuid.into(),
            pcie_gen: Some(5),
            pcie_width: Some(8),
            pcie_gen_max: Some(5),
            pcie_width_max: Some(16),
            ecc_uncorrected: Some(0),
            retired_pages: Some(0),
            retired_pending: Some(false),
            ..Default::default()
        }],
        benchmarks: vec![
            bench("gemm bf16 8192", Unit::TflopS, 702.0, "1980 MHz 688 W 71C"),
            bench(
                "membw sm-triad 1 GiB",
                Unit::GbS,
                4310.0,
                "1980 MHz 540 W 66C",
            ),
            bench("h2d pinned 1 GiB", Unit::GbS, 27.9, "1980 MHz 160 W 58C"),
        ],
        findings: Vec::new(),
        notes: Vec::new(),
    };
    report.judge(&Settings::default());
    let mut log = format!("{}\n", command.join(" "));
    for line in crate::format::preflight::lines(&report) {
        log += &format!("gantry: preflight {line}\n");
    }
    std::fs::write(dir.join("output.log"), log)?;
    store
        .set_tags(
            &run.id,
            &[
                (OUTCOME_TAG.into(), report.outcome.as_str().into()),
                (TAG.into(), serde_json::to_string(&report)?),
            ],
        )
        .await?;
    store
        .finish_run(&run.id, RunStatus::Failed, Some(4), started_ms + 21_400)
        .await?;
    Ok(())
}

/// The flight recorder's events of the demo's runs, made by the recorder itself from samples
/// like the runs' own: the ViT's NaN and the crash after it, and the XID on the GPT-2 whose
/// supervisor went silent.
pub async fn seed_events(
    store: &Store,
    run_id: &str,
    name: &str,
    dir: &std::path::Path,
    last_step: i64,
    last_t: i64,
) -> Result<()> {
    use crate::domain::flight::Trigger;
    let (gpu, uuid, events): (&str, &str, Vec<(Trigger, String)>) = match name {
        "vit-small-adamw" => (
            "NVIDIA A100-SXM4-80GB",
            "GPU-a100-00-made-up",
            vec![
                (
                    Trigger::Nan,
                    format!("train/loss is not a number at step {last_step}"),
                ),
                (Trigger::Crash, "the command exited with 1".into()),
            ],
        ),
        "gpt2-124m-bs32" => (
            "NVIDIA H200",
            "GPU-h200-00-made-up",
            vec![(Trigger::Xid, format!("XID 79 on {}", "GPU-h200-00-made-up"))],
        ),
        _ => return Ok(()),
    };
    let mut rec = crate::capture::flight::Recorder::new(Some(dir.to_path_buf()));
    // Five minutes at the default 5 s: the last minute hotter and, for the XID, falling off.
    for i in 0..60i64 {
        let late = i >= 48;
        let t = last_t - (59 - i) * 5_000;
        let snap = crate::domain::GpuSnapshot {
            time_ms: t,
            driver: Some("580.95.05".into()),
            cuda: Some("13.0".into()),
            gpus: vec![crate::domain::GpuSample {
                index: 0,
                name: gpu.into(),
                uuid: uuid.into(),
                util: Some(if late && name.starts_with("gpt2") {
                    0
                } else {
                    97
                }),
                power: Some(if late { 612.0 } else { 548.0 } - (i % 5) as f64 * 3.0),
                sm_clock: Some(if late { 1755 } else { 1980 }),
                temp: Some(if late { 83 } else { 71 }),
                ..Default::default()
            }],
            processes: Vec::new(),
        };
        rec.push(snap, &[("cpu_percent", 101.0 + (i % 7) as f64)]);
    }
    for (k, (trigger, message)) in events.into_iter().enumerate() {
        rec.trigger(trigger, Some(last_step), message, last_t + k as i64 * 2_000);
    }
    crate::capture::sampler::store_events(store, run_id, rec.events()).await;
    Ok(())
}
