//! `gantry demo`: a workspace seeded from the bundled fixtures (fixtures/demo, embedded in the
//! binary so it works anywhere), then the workbench on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use serde::Deserialize;

use crate::capture::protocol::parse_line;
use crate::domain::{NewRun, RunStatus, Series, SeriesKind};
use crate::error::UserError;
use crate::store::Store;
use crate::workspace::Workspace;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to build it [default: a new folder under the user's cache directory]
    pub dir: Option<PathBuf>,
    /// Build and seed the workspace, print its path, and do not open the workbench
    #[arg(long)]
    pub no_open: bool,
}

/// The demo's runs come from another machine, so no local process check marks them crashed.
const DEMO_HOST: &str = "gpu01";

/// A small training script that reports metrics, written into the demo folder to try `gantry run`.
const TRAIN_SCRIPT: &str = include_str!("../../fixtures/scripts/train.py");

const RUNS_JSON: &str = include_str!("../../fixtures/demo/runs.json");

macro_rules! metrics_files {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../fixtures/demo/metrics/", $name, ".jsonl")))),*]
    };
}
const METRICS: &[(&str, &str)] = metrics_files![
    "resnet50-baseline",
    "resnet50-cosine",
    "resnet50-warmup",
    "vit-small-adamw",
    "gpt2-124m-lr3e-4",
    "gpt2-124m-lr6e-4",
    "gpt2-124m-bs32",
];

#[derive(Deserialize)]
struct DemoRun {
    name: String,
    experiment: String,
    status: RunStatus,
    exit_code: Option<i32>,
    started_min_ago: i64,
    step_ms: i64,
    command: Vec<String>,
    params: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    git_commit: String,
    git_branch: String,
    git_dirty: bool,
}

pub async fn run(args: Args, theme: Option<String>) -> Result<ExitCode> {
    let dir = match args.dir {
        Some(d) => d,
        None => default_dir()?,
    };
    std::fs::create_dir_all(&dir).map_err(|e| {
        UserError::new(format!(
            "cannot create the demo directory {}",
            dir.display()
        ))
        .cause(e)
        .hint("give a writable directory: gantry demo DIR")
    })?;
    let ws = Workspace::init(&dir)?;
    super::start_logging(&ws);
    let store = Store::open(&ws.db_path()).await?;
    let (runs, _, _) = store.counts().await?;
    if runs == 0 {
        let n = seed(&store, crate::domain::now_ms()).await?;
        tracing::info!(runs = n, "demo workspace seeded");
    }
    store.close().await;
    if !args.no_open {
        super::workbench::open(&ws, theme).await?;
    }
    let train = ws.root.join("train.py");
    if !train.exists() {
        std::fs::write(&train, TRAIN_SCRIPT)
            .with_context(|| format!("writing {}", train.display()))?;
    }
    let w = format!("gantry --workspace {}", shell_path(&ws.root));
    println!("demo workspace: {}", ws.root.display());
    println!("open it again with: {w}");
    println!("try:");
    println!("  {w} runs --filter 'exp:vision' --sort -metric.val/acc");
    println!("  {w} show resnet50-cosine");
    println!("  {w} compare resnet50-baseline resnet50-cosine resnet50-warmup");
    println!(
        "  cd {} && gantry run -- python3 train.py --lr 1e-3 --epochs 2",
        shell_path(&ws.root)
    );
    Ok(ExitCode::SUCCESS)
}

fn default_dir() -> Result<PathBuf> {
    let cache = directories::ProjectDirs::from("", "", "gantry")
        .map(|d| d.cache_dir().to_path_buf())
        .ok_or_else(|| {
            anyhow!(
                UserError::new("no user cache directory is known")
                    .hint("give one: gantry demo DIR")
            )
        })?;
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    Ok(cache.join(format!("demo-{stamp}")))
}

fn shell_path(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+~".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Put the bundled demo runs into a store, with start times relative to `now_ms`. Returns how
/// many runs were written.
pub async fn seed(store: &Store, now_ms: i64) -> Result<usize> {
    let runs: Vec<DemoRun> = serde_json::from_str(RUNS_JSON).context("fixtures/demo/runs.json")?;
    for r in &runs {
        let started_ms = now_ms - r.started_min_ago * 60_000;
        let new = NewRun {
            experiment: r.experiment.clone(),
            name: r.name.clone(),
            started_ms,
            host: DEMO_HOST.into(),
            user: "demo".into(),
            pid: None,
            command: r.command.clone(),
            cwd: "/home/demo/project".into(),
            git_commit: Some(r.git_commit.clone()),
            git_branch: Some(r.git_branch.clone()),
            git_dirty: Some(r.git_dirty),
            notes: String::new(),
            ..NewRun::default()
        };
        let run = store.create_run(&new).await?;
        let pairs = |m: &BTreeMap<String, String>| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        store.set_params(&run.id, &pairs(&r.params)).await?;
        store.set_tags(&run.id, &pairs(&r.tags)).await?;
        let text = METRICS
            .iter()
            .find(|(n, _)| *n == r.name)
            .map(|(_, t)| *t)
            .ok_or_else(|| anyhow!("no metrics fixture for demo run {}", r.name))?;
        let mut series: BTreeMap<String, Series> = BTreeMap::new();
        let mut last_step = 0;
        for (i, line) in text.lines().enumerate() {
            let rec = parse_line(line)
                .map_err(|e| anyhow!("fixtures/demo/metrics/{}.jsonl:{}: {e}", r.name, i + 1))?;
            let step = rec.step.unwrap_or(i as i64);
            last_step = step;
            for (k, v) in rec.metrics {
                series
                    .entry(k)
                    .or_default()
                    .push(step, started_ms + step * r.step_ms, v);
            }
        }
        let batch: Vec<(SeriesKind, &str, &Series)> = series
            .iter()
            .map(|(k, s)| (SeriesKind::Metric, k.as_str(), s))
            .collect();
        store.append(&run.id, &batch).await?;
        if r.status != RunStatus::Running {
            store
                .finish_run(
                    &run.id,
                    r.status,
                    r.exit_code,
                    started_ms + last_step * r.step_ms,
                )
                .await?;
        }
    }
    Ok(runs.len())
}
