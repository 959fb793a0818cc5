use super::out::outln;
use std::process::ExitCode;
use std::time::Duration;

use crate::capture::supervise::{self, RunRequest};
use crate::domain::preflight::{Mode, OUTCOME_TAG, Outcome, TAG};
use crate::error::UserError;

/// `gantry run [options] -- CMD ARGS...`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run name [default: the script's name and a number, like train-7]
    #[arg(short, long)]
    pub name: Option<String>,
    /// Experiment to file the run under
    #[arg(short, long, default_value = "default")]
    pub experiment: String,
    /// A param to record (repeatable); wins over one parsed from the command's flags
    #[arg(long = "param", value_name = "K=V")]
    pub params: Vec<String>,
    /// A tag to set (repeatable)
    #[arg(long = "tag", value_name = "K=V")]
    pub tags: Vec<String>,
    /// An alert setting for this run (repeatable): stall_minutes=5, divergence=off, on_alert=CMD,
    /// webhook=URL… (docs/alerts.md); kept as the tag alert.K
    #[arg(long = "alert", value_name = "K=V")]
    pub alerts: Vec<String>,
    /// Free text kept with the run
    #[arg(long, default_value = "")]
    pub notes: String,
    /// Do not read params from the command's own --key value flags
    #[arg(long)]
    pub no_auto_params: bool,
    /// Start in the background, detached from the terminal; print the run id and return
    #[arg(short, long)]
    pub detach: bool,
    /// Seconds between samples of the run's CPU, memory and GPU use
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub sample_every: f64,
    /// Check the GPUs before the command starts (docs/preflight.md): a bf16 GEMM, memory
    /// bandwidth and a host-to-device copy against each GPU's history, its PCIe link, retired
    /// memory, ECC and XID errors. `block` (the default) refuses a degraded GPU with exit 4;
    /// `warn` starts the run tagged preflight=degraded
    #[arg(long, value_name = "block|warn", num_args = 0..=1, require_equals = true, default_missing_value = "block")]
    pub preflight: Option<String>,
    /// Seconds the preflight may take in all [default: 30, or [preflight] seconds]
    #[arg(long, value_name = "N", requires = "preflight")]
    pub preflight_secs: Option<f64>,
    /// Benchmark the preflight on the CPU backend (a box without CUDA); the GPUs' NVML facts
    /// are still checked
    #[arg(long, requires = "preflight")]
    pub preflight_cpu: bool,
    /// (internal) supervise an already recorded run; used by --detach
    #[arg(long, hide = true, value_name = "ID")]
    pub attach_run: Option<String>,
    /// The command and its arguments, after `--`
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub async fn run(args: Args, workspace: &Option<std::path::PathBuf>) -> anyhow::Result<ExitCode> {
    if !(0.1..=3600.0).contains(&args.sample_every) {
        return Err(UserError::new(format!(
            "--sample-every {} is outside 0.1..=3600 seconds",
            args.sample_every
        ))
        .into());
    }
    let every = Duration::from_secs_f64(args.sample_every);
    if let Some(id) = &args.attach_run {
        // The detached supervisor works on the store its run was made in: the workspace's
        // own file for a run kept here while the team store was away.
        let ws = super::resolve(workspace)?;
        let store = if super::sync::pending(&ws).contains(id) {
            crate::store::Store::open(&ws.db_path()).await?
        } else {
            super::common::open(workspace).await?.1
        };
        let run = store.run(id).await?;
        let code = supervise::supervise_with(&store, &run, true, every, &extra()).await?;
        return Ok(exit(code));
    }
    for p in super::common::CONFIG_PROBLEMS.get().into_iter().flatten() {
        let then = if p.contains("built-in") {
            ""
        } else {
            "; the built-in setting applies"
        };
        eprintln!("gantry: warning: {}{then}", crate::format::printable(p));
    }
    let (ws, store, away) = super::common::open_for_run(workspace, TEAM_CONNECT).await?;
    if args.command.is_empty() {
        return Err(UserError::new("no command to run")
            .hint("put the command after --, for example: gantry run -- python train.py --lr 3e-4")
            .into());
    }
    let req = RunRequest {
        name: args.name,
        experiment: args.experiment,
        params: super::common::pairs(&args.params, "param")?,
        tags: {
            let mut t = super::common::pairs(&args.tags, "tag")?;
            let alerts = super::common::pairs(&args.alerts, "alert")?;
            // Checked now: a typo is an error before the command starts, not a warning after.
            crate::domain::alerts::Rules::default()
                .with(&alerts)
                .map_err(UserError::new)?;
            t.extend(alerts.into_iter().map(|(k, v)| (format!("alert.{k}"), v)));
            t
        },
        notes: args.notes,
        auto_params: !args.no_auto_params,
        command: args.command,
    };
    // After the request is checked (a typo in --alert fails at once), before the run exists.
    let preflight = match &args.preflight {
        None => None,
        Some(m) => Some(preflight(&store, m, args.preflight_secs, args.preflight_cpu).await?),
    };
    if let Some(r) = &preflight
        && r.outcome == Outcome::Unchecked
        && r.mode == Mode::Block
    {
        eprintln!(
            "gantry: preflight: nothing could be benchmarked: {}; the run was not started\n  \
             to fix: --preflight=warn starts it anyway, --preflight-cpu benchmarks the CPU",
            crate::format::printable(&r.notes.join("; "))
        );
        return Ok(ExitCode::from(3));
    }
    let run = supervise::prepare(&ws, &store, &req).await?;
    tracing::info!(run = %run.id, command = ?run.command, "run started");
    if let Some(why) = &away {
        super::sync::mark(&ws, &run.id)?;
        eprintln!(
            "gantry: {}\ngantry: run {} ({}) is kept in this workspace meanwhile; it goes to the \
             team store when it ends, with `gantry sync`, or with the next gantry command here",
            crate::format::printable(&why.to_string()),
            run.short_id(),
            run.name
        );
    }
    if let Some(r) = &preflight {
        store
            .set_tags(
                &run.id,
                &[
                    (OUTCOME_TAG.to_string(), r.outcome.as_str().to_string()),
                    (TAG.to_string(), serde_json::to_string(r)?),
                ],
            )
            .await?;
        if r.outcome == Outcome::Refused {
            // Why, in the run's log too: `gantry logs` and the workbench's log pane show it.
            let text: String = crate::format::preflight::lines(r)
                .iter()
                .map(|l| format!("gantry: preflight {l}\n"))
                .collect();
            let log = std::path::Path::new(&run.run_dir).join("output.log");
            if let Err(e) = std::fs::write(&log, &text) {
                tracing::warn!("writing {}: {e}", log.display());
            }
            store.append_log(&run.id, 0, text.as_bytes()).await?;
            store
                .finish_run(
                    &run.id,
                    crate::domain::RunStatus::Failed,
                    Some(REFUSED),
                    crate::domain::now_ms(),
                )
                .await?;
            eprintln!(
                "gantry: preflight refused run {} ({}): the command was not started\n  \
                 to fix: use another GPU (CUDA_VISIBLE_DEVICES), find the cause (`gantry bench \
                 --history`, `gantry gpu`), or start it anyway with --preflight=warn",
                run.short_id(),
                run.name
            );
            store.close().await;
            if away.is_some() {
                push_when_back(&ws).await;
            }
            return Ok(exit(REFUSED));
        }
    }
    if args.detach {
        supervise::detach(&ws, &run, &super::common::sampling())?;
        outln!("{}", run.id);
        eprintln!(
            "gantry: run {} ({}) started in the background; follow it with: gantry logs -f {}",
            run.short_id(),
            run.name,
            run.short_id()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let code = supervise::supervise_with(&store, &run, false, every, &extra()).await?;
    store.close().await;
    if away.is_some() {
        push_when_back(&ws).await;
    }
    Ok(exit(code))
}

/// The exit code of a run the preflight refused.
const REFUSED: i32 = 4;

/// Check the GPUs as `--preflight=MODE` asks, and print what was found on stderr.
async fn preflight(
    store: &crate::store::Store,
    mode: &str,
    secs: Option<f64>,
    cpu: bool,
) -> anyhow::Result<crate::domain::preflight::Report> {
    let mode = Mode::parse(mode).ok_or_else(|| {
        UserError::new(format!("--preflight={mode}: not a mode"))
            .hint("give --preflight (block), --preflight=block or --preflight=warn")
    })?;
    let mut settings = super::common::PREFLIGHT.get().cloned().unwrap_or_default();
    if let Some(s) = secs {
        if !(1.0..=3600.0).contains(&s) {
            return Err(
                UserError::new(format!("--preflight-secs {s} is out of range"))
                    .hint("give the seconds the whole check may take, from 1 to 3600")
                    .into(),
            );
        }
        settings.seconds = s;
    }
    let plan = crate::capture::preflight::Plan {
        mode,
        settings,
        cpu,
        replay: super::common::sampling().replay.map(|(p, _)| p),
        visible: std::env::var("CUDA_VISIBLE_DEVICES").ok(),
    };
    eprintln!(
        "gantry: preflight: checking the GPUs (up to {} s)…",
        plan.settings.seconds
    );
    let report = crate::capture::preflight::check(store, &plan).await?;
    for line in crate::format::preflight::lines(&report) {
        eprintln!("gantry: preflight {}", crate::format::printable(&line));
    }
    Ok(report)
}

/// How long `gantry run` waits for a team store before keeping the run here instead.
const TEAM_CONNECT: Duration = Duration::from_secs(3);

/// After a run kept here: push it if the team store is back (else it waits for `gantry sync`).
async fn push_when_back(ws: &crate::workspace::Workspace) {
    let Ok(loc) = super::common::store_location(ws) else {
        return;
    };
    let crate::domain::store::StoreKind::Postgres(url) = &loc.kind else {
        return;
    };
    match crate::store::Store::open_team_within(url, TEAM_CONNECT).await {
        Ok(team) => {
            super::common::tell(
                super::sync::push_pending(ws, &team).await,
                "the team store is back but took no runs",
            );
            team.close().await;
        }
        Err(_) => eprintln!(
            "gantry: the team store is still away; `gantry sync` pushes the run when it is back"
        ),
    }
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from((code & 0xff) as u8)
}

/// How this process's runs sample their GPUs and price them.
fn extra() -> supervise::Extra {
    supervise::Extra {
        sampling: super::common::sampling(),
        ..Default::default()
    }
}
