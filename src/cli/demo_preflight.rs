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
    let started_ms = now_ms - 26 * 60 * 60_000;
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
