//! `gantry run`: record the run, start the command, tee its output, store its metrics at most
//! 250 ms behind, sample its processes, forward signals, and record how it ended.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

use crate::domain::{NewRun, Run, RunStatus, Series, SeriesKind, now_ms};
use crate::error::UserError;
use crate::store::Store;
use crate::workspace::Workspace;

use super::ingest::{SOURCE_METRICS, SOURCE_STDOUT, Tail};
use super::output::{MetricLines, Reporter, Sink, pump};
use super::spawn::{self, Options};
use super::{git, params, procs};

/// How far behind the metrics files the store may be.
pub const INGEST_EVERY: Duration = Duration::from_millis(250);
/// How often the supervisor tells the store the run is alive (see `Run::lost_for`): every 10 s,
/// or a sixth of `lost_after_s` where that is shorter, so a live run is never shown lost.
pub fn heartbeat_every() -> Duration {
    Duration::from_millis((crate::domain::lost_after_ms() / 6).clamp(500, 10_000) as u64)
}

/// Environment variables recorded with a run: exact names, and prefixes ending in `_`.
pub const ENV_RECORDED: &[&str] = &[
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "CUDA_LAUNCH_BLOCKING",
    "PYTORCH_CUDA_ALLOC_CONF",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "VIRTUAL_ENV",
    "CONDA_DEFAULT_ENV",
    "HF_HOME",
    "NCCL_",
    "SLURM_JOB_",
    "TORCH_",
    "XLA_",
];

pub struct RunRequest {
    pub name: Option<String>,
    pub experiment: String,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub notes: String,
    pub auto_params: bool,
    pub command: Vec<String>,
}

/// Record a run and make its directory; nothing is started yet.
pub async fn prepare(ws: &Workspace, store: &Store, req: &RunRequest) -> Result<Run> {
    let id = crate::domain::new_run_id();
    let dir = ws.runs_dir().join(&id);
    std::fs::create_dir_all(&dir).map_err(|e| {
        UserError::new(format!("cannot create the run directory {}", dir.display()))
            .cause(&e)
            .hint("the workspace must be writable; choose another with --workspace DIR")
    })?;
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let git = git::inspect(&cwd);
    if let Some(g) = &git
        && !g.diff.is_empty()
    {
        std::fs::write(dir.join("git.diff"), &g.diff)
            .with_context(|| format!("writing {}", dir.join("git.diff").display()))?;
    }
    let name = match &req.name {
        Some(n) => n.clone(),
        None => format!(
            "{}-{}",
            stem(&req.command),
            store.count_runs_in(&req.experiment).await? + 1
        ),
    };
    let new = NewRun {
        id: id.clone(),
        experiment: req.experiment.clone(),
        name,
        started_ms: now_ms(),
        host: crate::host::hostname(),
        user: crate::host::user_name(),
        pid: None,
        command: req.command.clone(),
        cwd: cwd.display().to_string(),
        git_commit: git.as_ref().and_then(|g| g.commit.clone()),
        git_branch: git.as_ref().and_then(|g| g.branch.clone()),
        git_dirty: git.as_ref().map(|g| g.dirty),
        notes: req.notes.clone(),
        run_dir: dir.display().to_string(),
        env: recorded_env(std::env::vars()),
        gpus: tokio::task::spawn_blocking(crate::gpu::names)
            .await
            .unwrap_or_default(),
    };
    let run = store.create_run(&new).await?;
    let mut all = if req.auto_params {
        params::from_args(req.command.get(1..).unwrap_or(&[]))
    } else {
        Vec::new()
    };
    for (k, v) in &req.params {
        all.retain(|(key, _)| key != k);
        all.push((k.clone(), v.clone()));
    }
    store.set_params(&run.id, &all).await?;
    store.set_tags(&run.id, &req.tags).await?;
    Ok(run)
}

/// The name part of a default run name: the script's stem (`train` for `python train.py`), else
/// the program's name.
fn stem(cmd: &[String]) -> String {
    let script = cmd
        .iter()
        .skip(1)
        .find(|a| {
            [".py", ".sh", ".jl", ".r", ".R"]
                .iter()
                .any(|ext| a.ends_with(ext))
        })
        .or(cmd.first());
    script
        .and_then(|s| Path::new(s).file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into())
}

pub fn recorded_env(
    vars: impl Iterator<Item = (String, String)>,
) -> std::collections::BTreeMap<String, String> {
    vars.filter(|(k, _)| {
        ENV_RECORDED.iter().any(|e| {
            if e.ends_with('_') {
                k.starts_with(e)
            } else {
                k == e
            }
        })
    })
    .collect()
}

/// Start `gantry run --attach-run ID` in its own session, detached from the terminal.
pub fn detach(ws: &Workspace, run: &Run, sampling: &SamplerOptions) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("finding the gantry executable")?;
    let log = std::fs::File::create(Path::new(&run.run_dir).join("supervisor.log"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--workspace").arg(&ws.root);
    if let Some((path, speed)) = &sampling.replay {
        cmd.arg("--gpu-replay")
            .arg(path)
            .arg("--gpu-replay-speed")
            .arg(speed.to_string());
        for pid in &sampling.replay_pids {
            cmd.arg("--gpu-replay-pid").arg(pid.to_string());
        }
    }
    cmd.args(["run", "--attach-run", &run.id])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().context("starting the detached supervisor")?;
    Ok(())
}

/// Run the recorded command to its end. Returns the exit code gantry should exit with: the
/// command's own, or 128 + the signal that killed it.
pub async fn supervise(
    store: &Store,
    run: &Run,
    detached: bool,
    sample_every: Duration,
) -> Result<i32> {
    supervise_with(store, run, detached, sample_every, &Extra::default()).await
}

/// What a caller other than `gantry run` adds: environment for the command, and its standard
/// output echoed to gantry's standard error (`gantry model eval` keeps its own stdout for the
/// comparison).
#[derive(Debug, Default, Clone)]
pub struct Extra {
    pub env: Vec<(String, String)>,
    pub stdout_to_stderr: bool,
    /// How the run's GPUs are read (`--gpu-replay`) and priced (`[cost]`).
    pub sampling: SamplerOptions,
}

/// `supervise`, with `extra`.
pub async fn supervise_with(
    store: &Store,
    run: &Run,
    detached: bool,
    sample_every: Duration,
    extra: &Extra,
) -> Result<i32> {
    let dir = PathBuf::from(&run.run_dir);
    let log_path = dir.join("output.log");
    let metrics_path = dir.join("metrics.jsonl");
    let captured_path = dir.join("stdout-metrics.jsonl");
    let reporter = Reporter {
        to_terminal: !detached,
    };
    // While this process lives, no other command takes the run for crashed, even in the moment
    // between the command's exit and its end being recorded.
    let me = i64::from(std::process::id());
    if let Err(e) = store
        .set_supervisor(&run.id, me, procs::start_ticks(me))
        .await
    {
        reporter.warn(&format!("cannot record gantry's pid in the store: {e:#}"));
    }
    if let Err(e) = super::ended::reserve(&dir) {
        reporter.warn(&format!(
            "cannot reserve {}: {e}; if the store fails at the end, how the run ended is lost",
            dir.join(super::ended::FILE).display()
        ));
    }
    // The command appends to this file; it exists from the start so `>>` and open("a") just work.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .with_context(|| format!("creating {}", metrics_path.display()))?;
    // What the store holds of the run is read before the command starts: once it runs, it may
    // fill the disk or the store may go, and nothing after the spawn may end gantry early.
    let mut tails = [
        Tail::open(store, &run.id, SOURCE_METRICS, &metrics_path).await?,
        Tail::open(store, &run.id, SOURCE_STDOUT, &captured_path).await?,
    ];
    // The output goes into the store as well, for other hosts; a store that fails costs only
    // that (the local log stays whole), said once in gantry's log.
    let mut log_tail = super::logs::LogTail::open(store, &run.id, &log_path)
        .await
        .ok();
    let mut env = vec![
        ("GANTRY_RUN_ID".to_string(), run.id.clone()),
        ("GANTRY_RUN_DIR".to_string(), dir.display().to_string()),
        (
            "GANTRY_METRICS".to_string(),
            metrics_path.display().to_string(),
        ),
    ];
    env.extend(extra.env.iter().cloned());
    if (detached || !io::stdout().is_terminal()) && std::env::var_os("PYTHONUNBUFFERED").is_none() {
        // Through a pipe Python would hold its output back in 8 KiB blocks.
        env.push(("PYTHONUNBUFFERED".into(), "1".into()));
    }
    let spawned = match spawn::spawn(&Options {
        argv: &run.command,
        env: &env,
        detached,
    }) {
        Ok(s) => s,
        Err(e) => {
            let code = if e.kind() == io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            store
                .finish_run(&run.id, RunStatus::Failed, Some(code), now_ms())
                .await?;
            return Err(UserError::new(format!("cannot start `{}`", run.command.join(" ")))
                .cause(&e)
                .hint(format!(
                    "check the program's name and your PATH; run {} is recorded as failed (exit {code})",
                    &run.id[..8]
                ))
                .into());
        }
    };
    let pid = i64::from(spawned.child.id());
    if let Err(e) = store.set_pid(&run.id, pid, procs::start_ticks(pid)).await {
        reporter.warn(&format!(
            "cannot record the command's pid in the store: {e:#}"
        ));
    }
    let pgid = spawned.pgid;
    let foreground = spawned.foreground;
    let ptys = spawned.ptys;
    let log = Arc::new(Mutex::new(Sink::open(
        &log_path,
        "run log",
        reporter.clone(),
    )));
    let captured = MetricLines::new(Sink::open(
        &captured_path,
        "captured metrics",
        reporter.clone(),
    ));
    let echo_out: Option<Box<dyn Write + Send>> = (!detached).then(|| {
        if extra.stdout_to_stderr {
            Box::new(io::stderr()) as _
        } else {
            Box::new(io::stdout()) as _
        }
    });
    let echo_err: Option<Box<dyn Write + Send>> = (!detached).then(|| Box::new(io::stderr()) as _);
    let (out, err) = (spawned.stdout, spawned.stderr);
    let log2 = log.clone();
    let pumps = [
        std::thread::spawn(move || pump(out, echo_out, log, Some(captured))),
        std::thread::spawn(move || pump(err, echo_err, log2, None)),
    ];
    let mut child = spawned.child;
    let mut waiter = tokio::task::spawn_blocking(move || child.wait());

    let mut log_warned = false;
    let mut problems = Problems::default();
    let mut sampling = extra.sampling.clone();
    match store.params(&run.id).await {
        Ok(p) => sampling.params.extend(p),
        Err(e) => tracing::warn!("the params of run {}: {e:#}", run.id),
    }
    sampling.run_name = run.name.clone();
    sampling.run_dir = Some(dir.clone());
    // The run's own alert settings (`--alert K=V`, kept as tags `alert.K`) win over the config's.
    if let Some(rules) = sampling.alerts.take() {
        let overrides: Vec<(String, String)> = store
            .tags(&run.id)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("alert.")?.to_string(), v)))
            .collect();
        sampling.alerts = Some(match rules.clone().with(&overrides) {
            Ok(r) => r,
            Err(e) => {
                reporter.warn(&format!("{e}; the configured alerts apply"));
                rules
            }
        });
    }
    let mut sampler = Some(Sampler::with(pid, sampling));
    let mut ingest_tick = tokio::time::interval(INGEST_EVERY);
    let mut retry = Retry::default();
    let mut sample_tick =
        tokio::time::interval_at(tokio::time::Instant::now() + sample_every, sample_every);
    let mut heartbeat_tick = tokio::time::interval_at(
        tokio::time::Instant::now() + heartbeat_every(),
        heartbeat_every(),
    );
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigwinch = signal(SignalKind::window_change())?;
    let status = loop {
        tokio::select! {
            res = &mut waiter => break res.context("waiting for the command")?.context("waiting for the command")?,
            _ = ingest_tick.tick() => {
                if !retry.due() {
                    continue;
                }
                let mut ok = ingest(&mut tails, store, false, &reporter, &mut problems).await;
                if let Some(t) = &mut log_tail
                    && let Err(e) = t.step(store, false).await
                {
                    ok = false;
                    if !std::mem::replace(&mut log_warned, true) {
                        tracing::warn!("storing the output of run {}: {e:#}", run.id);
                    }
                }
                retry.after(ok);
            }
            _ = sample_tick.tick() => {
                let Some(mut s) = sampler.take() else { continue };
                let mut clock = tails[0].clock().clone();
                clock.merge(tails[1].clock());
                let (mut s, sample) = tokio::task::spawn_blocking(move || { let p = s.sample(&clock); (s, p) }).await?;
                store_samples(store, &run.id, &sample.system, &reporter, &mut problems).await;
                // The GPUs it runs on, by UUID (which run holds a GPU, seen from other hosts),
                // their hardware, and the efficiency metrics.
                super::sampler::store_sample(store, &run.id, &mut s, &sample).await;
                for note in s.take_notes() {
                    reporter.warn(&note);
                }
                sampler = Some(s);
            }
            _ = heartbeat_tick.tick() => {
                // A store that cannot take it is reported by the ingest; the command runs on.
                if let Err(e) = store.heartbeat(&run.id, now_ms()).await {
                    tracing::warn!("heartbeat of run {}: {e:#}", run.id);
                }
            }
            _ = sigint.recv() => spawn::signal_group(pgid, libc::SIGINT),
            _ = sigterm.recv() => spawn::signal_group(pgid, libc::SIGTERM),
            _ = sighup.recv() => spawn::signal_group(pgid, libc::SIGHUP),
            _ = sigwinch.recv() => spawn::resize(&ptys),
        }
    };
    if foreground {
        spawn::reclaim_terminal();
    }
    // The output ends when the last process holding it exits; a daemon left behind by the command
    // may hold it longer, so wait a little, not forever.
    let deadline = Instant::now() + Duration::from_secs(3);
    for p in pumps {
        while !p.is_finished() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(ptys);
    let stored_all = ingest(&mut tails, store, true, &reporter, &mut problems).await;
    let crash = crash(&status);
    // The last sample: the GPUs' energy up to the command's end, and its last TFLOP/s; on a
    // crash, the flight recorder keeps the minutes before it.
    if let Some(mut s) = sampler.take() {
        let mut clock = tails[0].clock().clone();
        clock.merge(tails[1].clock());
        let step = clock.step;
        if let Ok((mut s, sample)) = tokio::task::spawn_blocking(move || {
            let p = s.last_sample(&clock);
            (s, p)
        })
        .await
        {
            super::sampler::store_sample(store, &run.id, &mut s, &sample).await;
            if let Some(how) = crash {
                let events = s.crashed(step, how);
                super::sampler::store_events(store, &run.id, &events).await;
                for note in s.take_notes() {
                    reporter.warn(&note);
                }
            }
        }
    }
    if let Some(t) = &mut log_tail
        && let Err(e) = t.step(store, true).await
    {
        tracing::warn!("storing the output of run {}: {e:#}", run.id);
    }
    let (run_status, exit_code, gantry_code) = outcome(&status);
    let end = super::ended::End {
        status: run_status,
        exit_code,
        ended_ms: now_ms(),
    };
    // The command's end is gantry's exit code whatever the store does: a store that fails costs
    // freshness, never the run's outcome.
    let recorded = if stored_all {
        store
            .finish_run(&run.id, end.status, end.exit_code, end.ended_ms)
            .await
            .map(|_| ())
    } else {
        Err(anyhow::anyhow!("metrics are still waiting to be stored"))
    };
    match recorded {
        Ok(()) => {
            super::ended::clear(&dir);
            if let Err(e) = store.compact(&run.id).await {
                tracing::warn!("compacting run {}: {e:#}", run.id);
            }
        }
        Err(e) => {
            // Kept in the run's folder; the next gantry command stores the waiting metrics, then
            // this end.
            let kept = super::ended::write(&dir, &end);
            let msg = match kept {
                Ok(()) => format!(
                    "cannot record how run {} ended in the store ({e:#}); it is kept in {} and the run's metrics stay in its files: the next gantry command stores both once the store can take them",
                    run.short_id(),
                    dir.join(super::ended::FILE).display()
                ),
                Err(k) => format!(
                    "cannot record how run {} ended ({e:#}; and in {}: {k})",
                    run.short_id(),
                    dir.join(super::ended::FILE).display()
                ),
            };
            reporter.warn(&msg);
            if detached {
                eprintln!("gantry: {msg}");
            }
        }
    }
    Ok(gantry_code)
}

/// (status, exit code to store, exit code for gantry). A signal is stored as its negative number.
/// How the command crashed, in words, if it did: a non-zero exit, or a signal other than the
/// interrupt, termination or hang-up a person (or gantry, forwarding theirs) sends.
fn crash(status: &std::process::ExitStatus) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => None,
        (Some(c), _) => Some(format!("the command exited with {c}")),
        (None, Some(libc::SIGINT | libc::SIGTERM | libc::SIGHUP)) => None,
        (None, Some(sig)) => Some(format!("the command was killed by signal {sig}")),
        (None, None) => Some("the command ended without an exit code".into()),
    }
}

pub fn outcome(status: &std::process::ExitStatus) -> (RunStatus, Option<i32>, i32) {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => (RunStatus::Finished, Some(0), 0),
        (Some(c), _) => (RunStatus::Failed, Some(c), c),
        (None, Some(sig)) => (RunStatus::Killed, Some(-sig), 128 + sig),
        (None, None) => (RunStatus::Failed, None, 1),
    }
}

/// What has been said already, so each problem is said once (and again only once it cleared).
#[derive(Default)]
struct Problems {
    /// Per metrics source: the store failed on its last step.
    store_failing: [bool; 2],
    /// System samples could not be stored.
    samples_failing: bool,
    metrics_missing: bool,
    rewritten: bool,
    /// Per metrics source: why the path cannot be read, as last said.
    unreadable: [Option<String>; 2],
}

/// When to try a store that failed again: after 0.5 s, then twice as long each time it fails
/// again, at most 8 s apart; at once after it succeeds. What is not stored meanwhile stays in
/// the run's files, read from the stored offsets when the store is back.
#[derive(Debug, Default)]
struct Retry {
    wait: Duration,
    at: Option<std::time::Instant>,
}

impl Retry {
    fn due(&self) -> bool {
        self.at.is_none_or(|at| std::time::Instant::now() >= at)
    }

    fn after(&mut self, ok: bool) {
        if ok {
            *self = Retry::default();
        } else {
            self.wait = (self.wait * 2).clamp(Duration::from_millis(500), Duration::from_secs(8));
            self.at = Some(std::time::Instant::now() + self.wait);
        }
    }
}

/// Store what the metrics files hold beyond the stored offsets. Returns whether everything read
/// was stored (false when the store failed on a source).
async fn ingest(
    tails: &mut [Tail; 2],
    store: &Store,
    at_end: bool,
    reporter: &Reporter,
    problems: &mut Problems,
) -> bool {
    let mut all = true;
    for (i, tail) in tails.iter_mut().enumerate() {
        loop {
            match tail.step(store, now_ms(), at_end).await {
                Ok(r) => {
                    if problems.store_failing[i] {
                        problems.store_failing[i] = false;
                        reporter.warn("storing metrics again");
                    }
                    if r.unreadable != problems.unreadable[i] {
                        if let Some(why) = &r.unreadable {
                            reporter.warn(&format!(
                                "{why}; metrics are not read from it (write them to a regular file at $GANTRY_METRICS)"
                            ));
                        }
                        problems.unreadable[i] = r.unreadable.clone();
                    }
                    if i == 0 && r.missing && !problems.metrics_missing {
                        problems.metrics_missing = true;
                        reporter.warn("the metrics file ($GANTRY_METRICS) was deleted; metrics written to it now are lost until it is created again");
                    }
                    if i == 0 && r.replaced {
                        problems.metrics_missing = false;
                        reporter.warn("the metrics file ($GANTRY_METRICS) was replaced; reading the new one from its start");
                    }
                    if i == 0 && r.rewritten && !problems.rewritten {
                        problems.rewritten = true;
                        reporter.warn("the metrics file ($GANTRY_METRICS) was rewritten in place, not appended to (`>` for `>>`, or open(path, \"w\") again); reading it again from its start each time (`gantry show` counts the lines read again)");
                    }
                    if !r.more {
                        break;
                    }
                }
                Err(e) => {
                    all = false;
                    if !problems.store_failing[i] {
                        problems.store_failing[i] = true;
                        reporter.warn(&format!(
                            "cannot store metrics ({e:#}); they stay in the run's files and are stored when this clears"
                        ));
                    }
                    break;
                }
            }
        }
    }
    all
}

async fn store_samples(
    store: &Store,
    run_id: &str,
    points: &[(&'static str, f64)],
    reporter: &Reporter,
    problems: &mut Problems,
) {
    let now = now_ms();
    let series: Vec<(&str, Series)> = points
        .iter()
        .map(|(k, v)| {
            (
                *k,
                Series {
                    steps: vec![now / 1000],
                    times_ms: vec![now],
                    values: vec![*v],
                },
            )
        })
        .collect();
    let batch: Vec<_> = series
        .iter()
        .map(|(k, s)| (SeriesKind::System, *k, s))
        .collect();
    match store.append(run_id, &batch).await {
        Err(e) if !problems.samples_failing => {
            problems.samples_failing = true;
            reporter.warn(&format!("cannot store system samples: {e:#}"));
        }
        Err(_) => {}
        Ok(()) => problems.samples_failing = false,
    }
}

pub use super::sampler::{Sample, Sampler, SamplerOptions};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_store_is_tried_again_later_and_later_then_at_once() {
        let mut r = Retry::default();
        assert!(r.due());
        let mut waits = Vec::new();
        for _ in 0..6 {
            r.after(false);
            assert!(!r.due());
            waits.push(r.wait.as_millis());
        }
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 8000]);
        r.after(true);
        assert!(r.due());
        assert_eq!(r.wait, Duration::ZERO);
    }

    #[test]
    fn default_names_come_from_the_script() {
        let v = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(stem(&v("python train.py --lr 1")), "train");
        assert_eq!(
            stem(&v("torchrun --nproc 8 scripts/pretrain.py")),
            "pretrain"
        );
        assert_eq!(stem(&v("/usr/bin/make all")), "make");
    }

    #[test]
    fn only_selected_environment_is_recorded() {
        let vars = [
            ("CUDA_VISIBLE_DEVICES", "0,1"),
            ("NCCL_DEBUG", "INFO"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("RANK", "0"),
            ("RANKX", "1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let env = recorded_env(vars.into_iter());
        assert_eq!(
            env.keys().collect::<Vec<_>>(),
            ["CUDA_VISIBLE_DEVICES", "NCCL_DEBUG", "RANK"]
        );
    }

    #[test]
    fn exit_statuses_map_to_run_statuses() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            outcome(&std::process::ExitStatus::from_raw(0)),
            (RunStatus::Finished, Some(0), 0)
        );
        assert_eq!(
            outcome(&std::process::ExitStatus::from_raw(3 << 8)),
            (RunStatus::Failed, Some(3), 3)
        );
        assert_eq!(
            outcome(&std::process::ExitStatus::from_raw(15)),
            (RunStatus::Killed, Some(-15), 143)
        );
    }
}
