use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::UserError;
use crate::interop::export::{self, Format};

/// `gantry export RUN... --format csv|jsonl|mlflow`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Runs to export: ids, unique id prefixes or names
    #[arg(required = true)]
    pub runs: Vec<String>,
    /// csv and jsonl: a row per point; mlflow: an MLflow FileStore tree (mlruns/) MLflow reads
    #[arg(short, long, value_enum)]
    pub format: Format,
    /// Where to write: a file for csv/jsonl [default: stdout], a folder for mlflow [default: ./mlruns]
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub async fn run(args: Args, workspace: &Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let (_, store) = super::common::open(workspace).await?;
    let mut recs = Vec::new();
    for r in &args.runs {
        let run = store.resolve_run(r).await?;
        if !recs
            .iter()
            .any(|x: &crate::domain::RunRecord| x.run.id == run.id)
        {
            recs.push(store.run_record(&run.id).await?.0);
        }
    }
    let n = match args.format {
        Format::Mlflow => {
            let dir = args.output.unwrap_or_else(|| PathBuf::from("mlruns"));
            let n = export::mlflow(&store, &recs, &dir).await?;
            eprintln!(
                "wrote {} runs ({n} points) to {}; read it with MLFLOW_TRACKING_URI=file:{}",
                recs.len(),
                dir.display(),
                dir.display()
            );
            n
        }
        f => {
            let mut out: Box<dyn Write> = match &args.output {
                Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(
                    |e| UserError::new(format!("cannot create {}", p.display())).cause(e),
                )?)),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let n = if f == Format::Csv {
                export::csv(&store, &recs, &mut out).await?
            } else {
                export::jsonl(&store, &recs, &mut out).await?
            };
            out.flush()?;
            n
        }
    };
    tracing::info!(runs = recs.len(), points = n, "exported");
    Ok(ExitCode::SUCCESS)
}
