//! `gantry serve`: the MLflow tracking REST API and Prometheus `/metrics` over this workspace.

use super::out::outln;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::interop::serve::{self, ServeOptions, Served};

/// `gantry serve`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on. Anything but loopback needs --token
    #[arg(long, default_value = "127.0.0.1:5000", value_name = "ADDR:PORT")]
    pub bind: SocketAddr,
    /// A secret every request must carry as `Authorization: Bearer TOKEN` (the mlflow client
    /// sends MLFLOW_TRACKING_TOKEN so)
    #[arg(
        long,
        env = "GANTRY_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Seconds between samples: GPUs for /metrics, and the scripts that own running runs (CPU,
    /// memory and GPU use, as `gantry run` records them)
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub gpu_interval: f64,
    /// Seconds a client may take to send a request's headers, and a kept-alive connection may
    /// stay idle, before the connection is closed
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub idle_timeout: f64,
}

pub async fn run(
    args: Args,
    workspace: &Option<PathBuf>,
    replay: Option<(PathBuf, f64)>,
) -> anyhow::Result<ExitCode> {
    serve::check_bind(&args.bind, &args.token)?;
    if !(args.gpu_interval.is_finite() && args.gpu_interval >= 0.1) {
        return Err(crate::error::UserError::new(format!(
            "--gpu-interval {} is not a number of seconds of at least 0.1",
            args.gpu_interval
        ))
        .into());
    }
    if !(args.idle_timeout.is_finite() && args.idle_timeout >= 0.1) {
        return Err(crate::error::UserError::new(format!(
            "--idle-timeout {} is not a number of seconds of at least 0.1",
            args.idle_timeout
        ))
        .into());
    }
    let (ws, store) = super::common::open(workspace).await?;
    let opts = ServeOptions {
        bind: args.bind,
        token: args.token,
        runs_dir: ws.runs_dir(),
        gpu_interval: Duration::from_secs_f64(args.gpu_interval),
    };
    let gpu = serve::spawn_gpu_sampler(move || super::gpu::open_source(&replay), opts.gpu_interval);
    let state = Arc::new(Served::new(
        store.clone(),
        opts.token.clone(),
        opts.runs_dir,
        gpu,
    ));
    serve::spawn_client_sampler(state.clone(), opts.gpu_interval, super::common::sampling());
    let label = ws.label();
    let auth = opts.token.is_some();
    let idle = Duration::from_secs_f64(args.idle_timeout);
    serve::serve_with(state, opts.bind, idle, move |addr| {
        // The first line on stdout is the address, for scripts (and `--bind 127.0.0.1:0`).
        outln!("listening on http://{addr}");
        eprintln!(
            "gantry serve: workspace {label}\n  MLflow clients: MLFLOW_TRACKING_URI=http://{addr}{}\n  \
             Prometheus:     http://{addr}/metrics\n  Ctrl-C stops",
            if auth { " MLFLOW_TRACKING_TOKEN=…" } else { "" }
        );
    })
    .await?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
