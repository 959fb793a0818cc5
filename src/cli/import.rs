use super::out::outln;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::interop;

/// `gantry import mlflow|tensorboard PATH`
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub source: Source,
}

#[derive(clap::Subcommand, Debug)]
pub enum Source {
    /// An MLflow store: a tracking directory (mlruns/, or a folder holding one) or a SQLite database (mlflow.db)
    Mlflow {
        /// mlruns/ or mlflow.db
        path: PathBuf,
    },
    /// TensorBoard event files: one run per folder of tfevents files under DIR
    Tensorboard {
        dir: PathBuf,
        /// Experiment to file the runs under
        #[arg(short, long, default_value = "tensorboard")]
        experiment: String,
    },
}

pub async fn run(args: Args, workspace: &Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let (_, store) = super::common::open(workspace).await?;
    let t = Instant::now();
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template("{spinner} importing {pos}/{len} runs {wide_bar} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = |done: usize, total: usize| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    };
    let (sum, what) = match &args.source {
        Source::Mlflow { path } => (
            interop::import_mlflow(&store, path, &progress).await?,
            format!("MLflow {}", path.display()),
        ),
        Source::Tensorboard { dir, experiment } => (
            interop::import_tensorboard(&store, dir, experiment, &progress).await?,
            format!("TensorBoard {}", dir.display()),
        ),
    };
    pb.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    outln!(
        "imported {} runs from {what}: {} new, {} updated; {} points in {secs:.2} s ({:.0} points/s)",
        sum.created + sum.updated,
        sum.created,
        sum.updated,
        sum.points,
        sum.points as f64 / secs.max(1e-9)
    );
    if sum.skipped_deleted > 0 {
        outln!(
            "skipped {} deleted runs or experiments",
            sum.skipped_deleted
        );
    }
    for note in &sum.notes {
        eprintln!("gantry: {}", crate::format::printable(note));
    }
    if sum.bad_records > 0 || sum.truncated_files > 0 {
        outln!(
            "skipped {} corrupt records and the cut-off ends of {} files",
            sum.bad_records,
            sum.truncated_files
        );
    }
    Ok(ExitCode::SUCCESS)
}
