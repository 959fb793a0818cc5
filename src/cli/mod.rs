//! The command line: one file per subcommand, each with its arguments and its output. `main`
//! parses, starts logging into the workspace, runs the command and turns errors into exit codes.

mod bench;
mod common;
mod compare;
pub mod demo;
mod demo_efficiency;
mod demo_health;
mod doctor;
mod efficiency;
mod export;
mod fleet;
pub mod gpu;
mod import;
mod init;
mod logs;
pub mod model;
mod model_eval;
mod model_hardware;
mod out;
mod rm;
mod run;
mod runs;
mod serve;
mod show;
mod store;
mod sync;
mod tag;
mod where_is;
mod workbench;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::UserError;
use crate::format::printable;
use crate::workspace::{Lookup, Workspace};

#[derive(Parser, Debug)]
#[command(
    name = "gantry",
    version,
    about = "A terminal workbench for the local ML loop: runs, models, GPUs and benchmarks",
    long_about = "A terminal workbench for the local ML loop: runs, models, GPUs and benchmarks.\n\n\
        With no command, opens the workbench on the workspace in use (see `gantry where`)."
)]
pub struct Cli {
    /// Directory that holds the .gantry/ workspace [default: GANTRY_WORKSPACE, else the nearest
    /// .gantry/ above the current directory, else the user's data directory]
    #[arg(long, global = true, value_name = "DIR")]
    pub workspace: Option<PathBuf>,

    /// The store to use: postgres://USER@HOST:PORT/DATABASE for a team store, or sqlite:PATH
    /// [default: GANTRY_STORE, else `store` in the workspace's .gantry/config.toml, else the
    /// workspace's own SQLite file]
    #[arg(long, global = true, value_name = "URL")]
    pub store: Option<String>,

    /// Colour theme: default-dark, light, high-contrast, a user theme's name or a .toml path
    #[arg(long, global = true, value_name = "NAME")]
    pub theme: Option<String>,

    /// Play a GPU recording (JSON lines from `gantry gpu --record`) instead of asking NVML
    #[arg(long, global = true, value_name = "FILE")]
    pub gpu_replay: Option<PathBuf>,

    /// How fast to play --gpu-replay: 1 is real time, 10 ten times faster, 0 as fast as asked
    #[arg(long, global = true, default_value_t = 1.0, value_name = "X")]
    pub gpu_replay_speed: f64,

    /// Under --gpu-replay, the recorded pid that stands for a run's process (repeatable; none:
    /// every recorded process is the run's), for `gantry run`'s energy split
    #[arg(long, global = true, value_name = "PID")]
    pub gpu_replay_pid: Vec<u32>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a .gantry/ workspace in DIR (default: the current directory)
    Init(init::Args),
    /// Print the workspace in use, why it was chosen, and its files
    Where(where_is::Args),
    /// Build a demo workspace from bundled fixtures and open the workbench on it
    Demo(demo::Args),
    /// Run a command as a tracked run: gantry run [options] -- python train.py --lr 3e-4
    Run(run::Args),
    /// List runs, with a filter and sorting
    Runs(runs::Args),
    /// Show one run: command, git, params, tags, metrics, malformed lines
    Show(show::Args),
    /// Compare runs: params side by side, metric summaries and deltas
    Compare(compare::Args),
    /// Set or remove tags on a run
    Tag(tag::Args),
    /// Delete runs and their files
    Rm(rm::Args),
    /// Print a run's output, or follow it with -f
    Logs(logs::Args),
    /// Import runs from MLflow (mlruns/ or mlflow.db) or TensorBoard event files
    Import(import::Args),
    /// Export runs as CSV, JSON lines or an MLflow tracking tree
    Export(export::Args),
    /// The model registry: add, ls, show, diff, promote, checkout, verify, gc, log
    Model(model::Args),
    /// NVIDIA GPUs and their processes, with the runs that own them (exit 3 without a driver)
    Gpu(gpu::Args),
    /// CUDA micro-benchmarks against the GPU's peak, with history (--cpu: the CPU backend)
    Bench(bench::Args),
    /// Serve the MLflow tracking REST API (so `mlflow` scripts log here) and Prometheus /metrics
    Serve(serve::Args),
    /// Copy runs, models index and bench history between stores (store copy --to URL)
    Store(store::Args),
    /// Push the runs kept in this workspace while the team store could not be reached
    Sync(sync::Args),
    /// Check this box for gantry: build, workspace, store, config, terminal, GPUs, CUDA
    /// libraries, python; each problem with what to do (exit 1 with warnings)
    Doctor(doctor::Args),
    /// Print shell completions: `gantry completions bash > ~/.local/share/bash-completion/completions/gantry`
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff): `gantry man > ~/.local/share/man/man1/gantry.1`
    Man,
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            match e.downcast_ref::<UserError>() {
                Some(u) => eprintln!("error: {}", printable(&u.to_string())),
                None => {
                    eprintln!("error: {}", printable(&format!("{e:#}")));
                    if crate::store::refused_a_right(&e) {
                        eprintln!(
                            "  to fix: the store's role may not do this; grant it SELECT, INSERT, \
                             UPDATE and DELETE on gantry's tables (docs/team.md, Security)"
                        );
                    }
                }
            }
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let _ = common::STORE_FLAG.set(cli.store.clone());
    // The user's config names this box where its host name clashes with another's; a broken
    // config is reported by the workbench, not by every command.
    let (config, problems) = crate::config::Config::load();
    let _ = common::CONFIG_PROBLEMS.set(
        problems
            .iter()
            .filter(|d| {
                ["[alerts]", "[cost]", "[preflight]", "built-in config"]
                    .iter()
                    .any(|s| d.message.contains(s))
            })
            .map(|d| d.to_string())
            .collect(),
    );
    if let Some(h) = &config.host {
        crate::host::set_configured(h);
    }
    crate::domain::set_lost_after_ms(config.lost_after_s as i64 * 1000);
    crate::domain::set_crashed_after_ms(config.crashed_after_s as i64 * 1000);
    let _ = common::PREFLIGHT.set(config.preflight.clone());
    let _ = common::SAMPLING.set(crate::capture::sampler::SamplerOptions {
        replay: cli.gpu_replay.clone().map(|p| (p, cli.gpu_replay_speed)),
        replay_pids: cli.gpu_replay_pid.clone(),
        prices: config.cost.clone(),
        alerts: Some(config.alerts.clone()),
        ..Default::default()
    });
    let code = match cli.command {
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory;
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "gantry", &mut buf);
            out::raw(&String::from_utf8_lossy(&buf));
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Man) => {
            use clap::CommandFactory;
            let mut buf = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut buf)?;
            out::raw(&String::from_utf8_lossy(&buf));
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Doctor(a)) => {
            rt.block_on(doctor::run(a, &cli.workspace, cli.theme, &cli.gpu_replay))
        }
        Some(Command::Init(a)) => init::run(a, &cli.workspace),
        Some(Command::Where(a)) => {
            let ws = resolve(&cli.workspace)?;
            rt.block_on(where_is::run(a, &ws))
        }
        Some(Command::Demo(a)) => rt.block_on(demo::run(
            a,
            cli.theme,
            cli.gpu_replay.map(|p| (p, cli.gpu_replay_speed)),
        )),
        Some(Command::Run(a)) => rt.block_on(run::run(a, &cli.workspace)),
        Some(Command::Runs(a)) => rt.block_on(runs::run(a, &cli.workspace)),
        Some(Command::Show(a)) => rt.block_on(show::run(a, &cli.workspace)),
        Some(Command::Compare(a)) => rt.block_on(compare::run(a, &cli.workspace)),
        Some(Command::Tag(a)) => rt.block_on(tag::run(a, &cli.workspace)),
        Some(Command::Rm(a)) => rt.block_on(rm::run(a, &cli.workspace)),
        Some(Command::Logs(a)) => rt.block_on(logs::run(a, &cli.workspace)),
        Some(Command::Import(a)) => rt.block_on(import::run(a, &cli.workspace)),
        Some(Command::Export(a)) => rt.block_on(export::run(a, &cli.workspace)),
        Some(Command::Model(a)) => rt.block_on(model::run(a, &cli.workspace, &cli.gpu_replay)),
        Some(Command::Gpu(a)) => rt.block_on(gpu::run(
            a,
            &cli.workspace,
            &cli.gpu_replay,
            cli.gpu_replay_speed,
        )),
        Some(Command::Bench(a)) => rt.block_on(bench::run(a, &cli.workspace)),
        Some(Command::Store(a)) => rt.block_on(store::run(a, &cli.workspace)),
        Some(Command::Sync(a)) => rt.block_on(sync::run(a, &cli.workspace)),
        Some(Command::Serve(a)) => rt.block_on(serve::run(
            a,
            &cli.workspace,
            cli.gpu_replay.map(|p| (p, cli.gpu_replay_speed)),
        )),
        None => {
            let ws = resolve(&cli.workspace)?;
            rt.block_on(workbench::open(
                &ws,
                cli.theme,
                cli.gpu_replay.map(|p| (p, cli.gpu_replay_speed)),
            ))
        }
    };
    // Whatever is left on the runtime (a task blocked on a store or a terminal that went away)
    // must not keep the process from ending.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    code
}

/// The workspace for this command, with logging started in it.
fn resolve(flag: &Option<PathBuf>) -> Result<Workspace, UserError> {
    let ws = Workspace::resolve(&Lookup::from_process(flag.clone())?)?;
    start_logging(&ws);
    Ok(ws)
}

/// Log to `.gantry/logs/gantry.log`, never to the terminal. `GANTRY_LOG` sets the filter
/// (default `info`). A log file that cannot be opened means no log, not a failed command.
pub fn start_logging(ws: &Workspace) {
    use tracing_subscriber::EnvFilter;
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ws.log_file())
    else {
        return;
    };
    let filter = EnvFilter::try_from_env("GANTRY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
}
