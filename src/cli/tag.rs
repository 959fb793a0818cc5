use super::out::outln;
use std::process::ExitCode;

use crate::error::UserError;

/// `gantry tag RUN k=v...`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A run id, a unique id prefix, or a run name
    pub run: String,
    /// Tags to set, as key=value
    #[arg(value_name = "K=V")]
    pub tags: Vec<String>,
    /// Remove a tag (repeatable)
    #[arg(short, long = "delete", value_name = "KEY")]
    pub delete: Vec<String>,
}

pub async fn run(args: Args, workspace: &Option<std::path::PathBuf>) -> anyhow::Result<ExitCode> {
    if args.tags.is_empty() && args.delete.is_empty() {
        return Err(UserError::new("no tags given")
            .hint("gantry tag RUN key=value [key=value...] or --delete KEY")
            .into());
    }
    let tags = super::common::pairs(&args.tags, "tag")?;
    let (_, store) = super::common::open(workspace).await?;
    let run = store.resolve_run(&args.run).await?;
    store.set_tags(&run.id, &tags).await?;
    store.delete_tags(&run.id, &args.delete).await?;
    let now: Vec<String> = store
        .tags(&run.id)
        .await?
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    outln!(
        "{} ({}): {}",
        run.short_id(),
        run.name,
        if now.is_empty() {
            "no tags".into()
        } else {
            now.join(" ")
        }
    );
    Ok(ExitCode::SUCCESS)
}
