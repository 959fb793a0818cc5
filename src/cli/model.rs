use super::out::{self, out, outln};
use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::error::UserError;
use crate::format::compact;
use crate::registry::{Manifest, NewVersion, Registry, RunRef};
use crate::store::Store;
use crate::workspace::Workspace;

/// `gantry model ...`
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Register files (or folders) as the next version of a model
    Add {
        name: String,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The run that produced it (id, prefix or name): its params, final metrics, code commit
        /// and hardware go in the manifest
        #[arg(long)]
        run: Option<String>,
        /// The version it was made from (NAME@vN or NAME@alias: fine-tuned, distilled, pruned):
        /// its lineage, whose runs' energy, GPU-hours and cost `model show` adds up
        #[arg(long, value_name = "SPEC")]
        from: Option<String>,
        #[arg(long, default_value = "")]
        notes: String,
        /// Share the files' bytes by hard link instead of copying (instant; the files become
        /// read-only, since writing them in place would change the stored version)
        #[arg(long)]
        hardlink: bool,
    },
    /// List models with their latest version and aliases
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Show a version: NAME (the latest), NAME@vN or NAME@alias
    Show {
        spec: String,
        #[arg(long)]
        json: bool,
    },
    /// Compare two versions: metrics and params, files, code commits
    Diff { a: String, b: String },
    /// Run one evaluation command on several versions (each a tracked run, on one GPU) and
    /// compare them: gantry model eval NAME@v1 NAME@v2 [--gate EXPR] -- python eval.py {model}
    Eval(super::model_eval::EvalArgs),
    /// Point an alias (production, staging, ...) at a version
    Promote {
        spec: String,
        alias: String,
        #[arg(long, default_value = "")]
        reason: String,
        /// Only if this `gantry model eval` evaluated the version and its gates passed
        #[arg(long, value_name = "EVAL_ID")]
        if_eval: Option<String>,
    },
    /// Write a version's files to a folder, each checked against its hash
    Checkout {
        spec: String,
        #[arg(long)]
        to: PathBuf,
    },
    /// Re-hash stored files and report corrupt or missing ones (exit 1 if any); with
    /// --hardware SPEC, compare the GPUs the version was trained on with this box's (exit 1 if
    /// they differ, 3 without a GPU here)
    Verify {
        name: Option<String>,
        /// Compare the version's training hardware with this box's GPUs, driver and CUDA
        #[arg(long)]
        hardware: bool,
        /// With --hardware: print JSON
        #[arg(long, requires = "hardware")]
        json: bool,
    },
    /// Remove stored files no version refers to (lists them unless --delete)
    Gc {
        #[arg(long)]
        delete: bool,
        /// Also free the local copies of files a remote's objects store holds (they come back
        /// on checkout or pull)
        #[arg(long)]
        local_only: bool,
        /// The remote whose store is checked, with --local-only
        #[arg(long, requires = "local_only")]
        remote: Option<String>,
    },
    /// The history of a model: versions added and aliases moved, with who, when and why
    Log { name: String },
    /// The registry's remotes: a git URL for the manifests, tags and aliases, and an objects
    /// store for the files
    Remote {
        #[command(subcommand)]
        cmd: RemoteCmd,
    },
    /// Send the versions' files the remote's objects store lacks, then the registry's commits
    /// and tags (every version, or those of NAME, NAME@vN)
    Push {
        spec: Option<String>,
        #[arg(long)]
        remote: Option<String>,
    },
    /// Bring the remote's manifests, tags and aliases (no files)
    Fetch {
        #[arg(long)]
        remote: Option<String>,
    },
    /// Fetch, then bring the files of NAME (its latest version), NAME@vN or NAME@alias
    Pull {
        spec: String,
        #[arg(long)]
        remote: Option<String>,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum RemoteCmd {
    /// Add a remote: GIT_URL is anything git reaches (a path, file://, ssh://, user@host:path,
    /// https://); --objects is a directory (a shared mount) for the files
    Add {
        name: String,
        git_url: String,
        #[arg(long, value_name = "URL")]
        objects: Option<String>,
    },
    /// List the remotes
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Remove a remote (nothing on it is touched)
    Rm { name: String },
}

use crate::format::size;

fn progress(total: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} {{bytes}}/{{total_bytes}} {{wide_bar}} {{bytes_per_sec}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

/// The lines of `model show` about what made the version: its run's energy, GPU-hours and cost,
/// those of its lineage, and its hardware.
fn lineage_lines(m: &Manifest, l: &crate::domain::model::Lineage) -> Vec<(&'static str, String)> {
    use crate::format::efficiency::{hardware_line, totals};
    let mut out = Vec::new();
    if let Some(f) = &m.from {
        let line = if l.versions.len() > 1 {
            l.versions[1..].join(" ← ")
        } else {
            f.clone()
        };
        out.push(("from", line));
    }
    let own = totals(&l.own);
    if !own.is_empty() {
        out.push(("energy", format!("{} (its run)", own.join(" · "))));
    }
    if l.versions.len() > 1 {
        let all = totals(&l.total);
        if !all.is_empty() {
            out.push((
                "lineage",
                format!(
                    "{} over {} runs of {} versions",
                    all.join(" · "),
                    l.runs,
                    l.versions.len()
                ),
            ));
        }
    }
    for x in &l.missing {
        out.push((
            "missing",
            format!("{x}: not in this registry (not counted)"),
        ));
    }
    if let Some(h) = m.run.as_ref().and_then(|r| r.hardware.as_ref())
        && let Some(line) = hardware_line(h, crate::domain::now_ms())
    {
        out.push(("hardware", line));
    }
    out
}

async fn run_ref(store: &Store, spec: &str) -> anyhow::Result<RunRef> {
    let run = store.resolve_run(spec).await?;
    crate::registry::run_ref(store, &run.id).await
}

/// Register files as a new version; shared with the workbench's `M`.
#[allow(clippy::too_many_arguments)]
pub async fn add(
    ws: &Workspace,
    store: &Store,
    name: &str,
    files: &[(String, PathBuf)],
    run: Option<RunRef>,
    from: Option<String>,
    notes: &str,
    hard_link: bool,
    show_progress: bool,
) -> anyhow::Result<Manifest> {
    let total: u64 = files
        .iter()
        .filter_map(|(_, p)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let pb = if show_progress {
        progress(total, "hashing")
    } else {
        ProgressBar::hidden()
    };
    let req = NewVersion {
        name: name.into(),
        files: files.to_vec(),
        run,
        from,
        notes: notes.into(),
        author: crate::host::user_name(),
        hard_link,
    };
    let bar = pb.clone();
    let m = crate::registry::register(&ws.dir(), store, req, move |n| bar.inc(n)).await?;
    pb.finish_and_clear();
    Ok(m)
}

pub async fn run(
    args: Args,
    workspace: &Option<PathBuf>,
    replay: &Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let (ws, store) = super::common::open(workspace).await?;
    let reg = Registry::open(&ws.dir())?;
    match args.cmd {
        Cmd::Eval(a) => return super::model_eval::run(a, &ws, &store, &reg, replay).await,
        Cmd::Add {
            name,
            paths,
            run,
            from,
            notes,
            hardlink,
        } => {
            let files = crate::registry::collect_files(&paths, &ws.root)?;
            let run = match run {
                Some(r) => Some(run_ref(&store, &r).await?),
                None => None,
            };
            // Named by its number, so a later alias move does not change the lineage.
            let from = match from {
                Some(f) => {
                    let p = reg.resolve(&f)?;
                    Some(format!("{}@v{}", p.name, p.version))
                }
                None => None,
            };
            let m = add(
                &ws, &store, &name, &files, run, from, &notes, hardlink, true,
            )
            .await?;
            outln!(
                "{}@v{}: {} files, {} ({})",
                m.name,
                m.version,
                m.files.len(),
                size(m.total_bytes()),
                m.framework.as_deref().unwrap_or("format unknown")
            );
        }
        Cmd::Ls { json } => {
            let models = reg.models()?;
            if json {
                out::json(&models)?;
            } else if models.is_empty() {
                outln!("no models yet: gantry model add NAME PATH...");
            } else {
                outln!("{:<24} {:>7} {:>9}  ALIASES", "MODEL", "LATEST", "VERSIONS");
                for m in models {
                    let al: Vec<String> =
                        m.aliases.iter().map(|(a, v)| format!("{a}=v{v}")).collect();
                    outln!(
                        "{:<24} {:>7} {:>9}  {}",
                        crate::format::fit(&m.name, 24),
                        format!("v{}", m.latest),
                        m.versions,
                        al.join(" ")
                    );
                }
            }
        }
        Cmd::Show { spec, json } => {
            let m = reg.resolve(&spec)?;
            let aliases: Vec<String> = reg
                .aliases(&m.name)?
                .into_iter()
                .filter(|(_, v)| *v == m.version)
                .map(|(a, _)| a)
                .collect();
            let evals = super::model_eval::evaluated_by(&store, &m).await?;
            let (chain, missing) = crate::registry::chain(&reg, &m);
            let lineage = crate::registry::lineage(&store, &chain, missing).await;
            if json {
                let mut v = serde_json::to_value(&m)?;
                v["aliases"] = json!(aliases);
                v["lineage"] = serde_json::to_value(&lineage)?;
                v["commit"] = json!(reg.commit_of(&m.name, m.version)?);
                v["evaluated_by"] = json!(
                    evals
                        .iter()
                        .map(|(e, run, verdict)| json!({"eval": e, "run": run, "gate": verdict}))
                        .collect::<Vec<_>>()
                );
                out::json(&v)?;
            } else {
                outln!(
                    "{}@v{}{}",
                    m.name,
                    m.version,
                    if aliases.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", aliases.join(", "))
                    }
                );
                outln!("created  {} by {}", m.created, m.author);
                if !m.notes.is_empty() {
                    outln!("notes    {}", m.notes);
                }
                outln!("format   {}", m.framework.as_deref().unwrap_or("unknown"));
                if let Some(r) = &m.run {
                    outln!(
                        "run      {} {} ({}) code {}",
                        &r.id[..8.min(r.id.len())],
                        r.name,
                        r.experiment,
                        r.code_commit
                            .as_deref()
                            .map_or("-", |c| &c[..c.len().min(12)])
                    );
                    if !r.metrics.is_empty() {
                        outln!(
                            "metrics  {}",
                            r.metrics
                                .iter()
                                .map(|(k, v)| format!("{k}={}", compact(*v)))
                                .collect::<Vec<_>>()
                                .join(" ")
                        );
                    }
                }
                for (e, run, verdict) in &evals {
                    outln!("evaluated by eval {e}: run {run} ({verdict})");
                }
                for (label, text) in lineage_lines(&m, &lineage) {
                    outln!("{label:<8} {text}");
                }
                outln!("files    {} in all", size(m.total_bytes()));
                for f in &m.files {
                    outln!("  {:>10}  {}  {}", size(f.size), &f.blake3[..12], f.path);
                }
            }
        }
        Cmd::Diff { a, b } => {
            let (ma, mb) = (reg.resolve(&a)?, reg.resolve(&b)?);
            out!("{}", crate::format::manifest_diff(&ma, &mb));
        }
        Cmd::Promote {
            spec,
            alias,
            reason,
            if_eval,
        } => {
            let m = reg.resolve(&spec)?;
            if let Some(id) = if_eval {
                super::model_eval::gate_passed(&store, &id, &m).await?;
            }
            reg.promote(
                &m.name,
                m.version,
                &alias,
                &reason,
                &crate::host::user_name(),
            )?;
            outln!("{alias} -> {}@v{}", m.name, m.version);
        }
        Cmd::Checkout { spec, to } => {
            let m = reg.resolve(&spec)?;
            let pb = progress(m.total_bytes(), "checking out");
            reg.checkout(&m, &to, &|n| pb.inc(n))?;
            pb.finish_and_clear();
            outln!(
                "{}@v{}: {} files verified into {}",
                m.name,
                m.version,
                m.files.len(),
                to.display()
            );
        }
        Cmd::Verify {
            name,
            hardware: true,
            json,
        } => {
            let spec = name.ok_or_else(|| {
                UserError::new("--hardware needs a version")
                    .hint("gantry model verify --hardware NAME@vN")
            })?;
            return super::model_hardware::run(&spec, json, &reg, &store, replay).await;
        }
        Cmd::Verify { name, .. } => {
            let (checked, problems) = reg.verify(name.as_deref())?;
            for p in &problems {
                outln!(
                    "{} {}@v{} {} ({})",
                    p.problem,
                    p.model,
                    p.version,
                    p.path,
                    &p.blake3[..12]
                );
            }
            outln!("checked {checked} files: {} problems", problems.len());
            if !problems.is_empty() {
                return Ok(ExitCode::from(1));
            }
        }
        Cmd::Gc {
            delete,
            local_only,
            remote,
        } => {
            let mut unused = reg.unreferenced()?;
            if local_only {
                // Files of versions that the remote's store holds: fetched again when needed.
                let r = reg.remote(remote.as_deref())?;
                let held = reg.held_remotely(&r)?;
                outln!(
                    "{} local objects are also in {}'s store",
                    held.len(),
                    r.name
                );
                unused.extend(held);
            }
            let total: u64 = unused.iter().map(|(_, n)| n).sum();
            for (h, n) in &unused {
                outln!(
                    "{} {:>10}  {h}",
                    if delete { "removed" } else { "unused " },
                    size(*n)
                );
                if delete {
                    reg.objects.remove(h)?;
                }
            }
            if delete {
                outln!("removed {} objects, {}", unused.len(), size(total));
            } else {
                outln!(
                    "{} unused objects, {}; `gantry model gc --delete` removes them",
                    unused.len(),
                    size(total)
                );
            }
        }
        Cmd::Remote { cmd } => remote_cmd(&reg, cmd)?,
        Cmd::Push { spec, remote } => {
            let r = reg.remote(remote.as_deref())?;
            let only = spec.as_deref().map(|s| reg.resolve(s)).transpose()?;
            let pb = progress(0, "sending");
            let sent = reg.push(&r, only.as_ref(), &|done, total| {
                pb.set_length(total);
                pb.set_position(done);
            })?;
            pb.finish_and_clear();
            outln!(
                "pushed to {} ({}): {} objects sent, branch and tags up to date",
                r.name,
                r.url,
                sent
            );
        }
        Cmd::Fetch { remote } => {
            let r = reg.remote(remote.as_deref())?;
            let how = reg.fetch(&r)?;
            outln!("fetched {}: {}", r.name, integrated(how));
        }
        Cmd::Pull { spec, remote } => {
            let r = reg.remote(remote.as_deref())?;
            let how = reg.fetch(&r)?;
            let m = reg.resolve(&spec)?;
            let pb = progress(m.total_bytes(), "pulling");
            let got = reg.get_objects(&r, std::slice::from_ref(&m), &|done, total| {
                pb.set_length(total);
                pb.set_position(done);
            })?;
            pb.finish_and_clear();
            outln!(
                "pulled {}@v{} from {} ({}): {got} objects, {} files ready",
                m.name,
                m.version,
                r.name,
                integrated(how),
                m.files.len()
            );
        }
        Cmd::Log { name } => {
            crate::registry::check_name(&name)?;
            let log = reg.log(&name)?;
            if log.is_empty() {
                return Err(UserError::new(format!("no model named `{name}`"))
                    .hint("`gantry model ls` lists the models")
                    .into());
            }
            for e in log {
                let when = chrono::DateTime::from_timestamp(e.time, 0)
                    .map(|t| {
                        t.with_timezone(&chrono::Local)
                            .format("%Y-%m-%d %H:%M")
                            .to_string()
                    })
                    .unwrap_or_default();
                outln!(
                    "{}  {when}  {:<10} {}",
                    &e.commit[..10],
                    e.author,
                    e.message
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn integrated(how: crate::registry::remote::Integrated) -> String {
    use crate::registry::remote::Integrated;
    match how {
        Integrated::UpToDate => "up to date".into(),
        Integrated::Ahead => "nothing new".into(),
        Integrated::FastForward => "fast-forwarded".into(),
        Integrated::Replayed(n) => format!("{n} local changes replayed on the remote's"),
    }
}

fn remote_cmd(reg: &Registry, cmd: RemoteCmd) -> anyhow::Result<()> {
    match cmd {
        RemoteCmd::Add {
            name,
            git_url,
            objects,
        } => {
            reg.add_remote(&name, &git_url, objects.as_deref())?;
            outln!(
                "remote {name}: {git_url}{}",
                objects.map_or(String::new(), |o| format!(" · objects {o}"))
            );
        }
        RemoteCmd::Ls { json } => {
            let all = reg.remotes()?;
            if json {
                out::json(&serde_json::to_value(&all)?)?;
            } else {
                for r in all {
                    outln!(
                        "{:<10} {}  objects: {}",
                        r.name,
                        r.url,
                        r.objects.as_deref().unwrap_or("(none)")
                    );
                }
            }
        }
        RemoteCmd::Rm { name } => {
            reg.remove_remote(&name)?;
            outln!("removed remote {name}");
        }
    }
    Ok(())
}
