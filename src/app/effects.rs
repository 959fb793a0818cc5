//! The effect runner: carries out `Effect`s on worker tasks that own their resource (the store,
//! NVML, the files) and sends results back as `Msg`. It never touches State. Also the workers that
//! produce messages on their own: the clock and the file watcher.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::store::Parts;
use crate::store::Store;

use super::{Effect, Msg};

/// How much of a log's end the log pane reads.
const LOG_TAIL_BYTES: u64 = 512 * 1024;

#[derive(Clone)]
pub struct EffectRunner {
    store: Store,
    tx: UnboundedSender<Msg>,
    /// The workspace's `.gantry/`.
    gantry_dir: PathBuf,
    /// Set to stop the benchmark run in progress.
    bench_cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The fleet's sources, for a host's history.
    fleet: Option<crate::fleet::Sources>,
}

impl EffectRunner {
    pub fn new(store: Store, tx: UnboundedSender<Msg>, gantry_dir: PathBuf) -> Self {
        EffectRunner {
            store,
            tx,
            gantry_dir,
            bench_cancel: Default::default(),
            fleet: None,
        }
    }

    /// Run registry work on the blocking pool and send its message.
    fn registry(
        &self,
        f: impl FnOnce(&crate::registry::Registry) -> anyhow::Result<Msg> + Send + 'static,
    ) {
        let (tx, dir) = (self.tx.clone(), self.gantry_dir.clone());
        tokio::task::spawn_blocking(move || {
            let msg = crate::registry::Registry::open(&dir)
                .and_then(|r| f(&r))
                .unwrap_or_else(|e| Msg::Notice(format!("{e:#}")));
            let _ = tx.send(msg);
        });
    }

    /// With the fleet's sources, for the hosts' histories.
    pub fn with_fleet(mut self, fleet: Option<crate::fleet::Sources>) -> Self {
        self.fleet = fleet;
        self
    }

    /// Start the work for one effect. Pager and Copy need the terminal: the loop hands them to
    /// its Drawer instead.
    pub fn run(&self, effect: Effect) {
        let tx = self.tx.clone();
        let store = self.store.clone();
        match effect {
            Effect::LoadRuns(held) => {
                tokio::spawn(async move {
                    let parts = if held.all {
                        Parts::ALL
                    } else {
                        Parts {
                            // The table's columns; an open run is read whole on its own.
                            listing: true,
                            params: !held.params.is_empty(),
                            tags: held.tags,
                            own_tags: true,
                            metrics: !held.metrics.is_empty(),
                            only_params: Some(held.params.iter().cloned().collect()),
                            only_metrics: Some(held.metrics.iter().cloned().collect()),
                        }
                    };
                    let res = store
                        .run_records_with(parts)
                        .await
                        .map(|r| (r, held))
                        .map_err(|e| format!("{e:#}"));
                    let _ = tx.send(Msg::RunsListed(res));
                });
            }
            Effect::LoadConditions(ids) => {
                tokio::spawn(async move {
                    let mut out = Vec::with_capacity(ids.len());
                    for id in &ids {
                        if let Ok((r, _)) = store.run_record(id).await
                            && let Ok(c) = crate::capture::conditions::load(&store, &r).await
                        {
                            out.push(c);
                        }
                    }
                    let _ = tx.send(Msg::ConditionsLoaded(ids, out));
                });
            }
            Effect::LoadRecords(ids) => {
                tokio::spawn(async move {
                    let mut recs = Vec::with_capacity(ids.len());
                    for id in ids {
                        // A run deleted meanwhile is simply not there.
                        if let Ok((r, _)) = store.run_record(&id).await {
                            recs.push(r);
                        }
                    }
                    let _ = tx.send(Msg::RecordsLoaded(recs));
                });
            }
            Effect::LoadMetricCounts => {
                tokio::spawn(async move {
                    let counts = store.metric_counts().await.unwrap_or_default();
                    let _ = tx.send(Msg::MetricCounts(counts));
                });
            }
            Effect::LoadKeys => {
                tokio::spawn(async move {
                    let (m, p) = store.column_keys().await.unwrap_or_default();
                    let _ = tx.send(Msg::KeysLoaded(m, p));
                });
            }
            Effect::LoadSeries(id) => {
                tokio::spawn(async move {
                    let res = store
                        .load_series(&id.run, id.kind, &id.key)
                        .await
                        .map(Arc::new)
                        .map_err(|e| format!("{e:#}"));
                    let _ = tx.send(Msg::SeriesLoaded(id, res));
                });
            }
            Effect::LoadLog(run) => {
                tokio::spawn(async move {
                    let dir = match store.run(&run).await {
                        Ok(r) => PathBuf::from(r.run_dir),
                        Err(_) => return,
                    };
                    let path = dir.join("output.log");
                    // This host's own file where it has it; else the output the run's host
                    // stored.
                    let lines = if path.is_file() {
                        tokio::task::spawn_blocking(move || read_log_tail(&path))
                            .await
                            .unwrap_or_default()
                    } else {
                        stored_log_tail(&store, &run).await
                    };
                    let _ = tx.send(Msg::LogLoaded { run, lines });
                });
            }
            Effect::SetTag { run, key, value } => {
                tokio::spawn(async move {
                    let msg = match store.set_tags(&run, &[(key.clone(), value.clone())]).await {
                        Ok(()) => format!("tagged {key}={value}"),
                        Err(e) => format!("cannot tag: {e:#}"),
                    };
                    let _ = tx.send(Msg::Notice(msg));
                    let _ = tx.send(Msg::StoreChanged);
                });
            }
            Effect::Rename { run, name } => {
                tokio::spawn(async move {
                    let msg = match store.rename_run(&run, &name).await {
                        Ok(()) => format!("renamed to {name}"),
                        Err(e) => format!("cannot rename: {e:#}"),
                    };
                    let _ = tx.send(Msg::Notice(msg));
                    let _ = tx.send(Msg::StoreChanged);
                });
            }
            Effect::LoadModels => {
                self.registry(|r| Ok(Msg::ModelsLoaded(r.models().map_err(|e| format!("{e:#}")))))
            }
            Effect::LoadVersions(name) => {
                let dir = self.gantry_dir.clone();
                tokio::spawn(async move {
                    let n = name.clone();
                    let read = tokio::task::spawn_blocking(move || {
                        let r = crate::registry::Registry::open(&dir)?;
                        let versions = r.versions(&n)?;
                        let chains: Vec<_> = versions
                            .iter()
                            .map(|m| (m.version, crate::registry::chain(&r, m)))
                            .collect();
                        anyhow::Ok((versions, chains))
                    })
                    .await;
                    let (versions, chains) = match read {
                        Ok(Ok(x)) => x,
                        Ok(Err(e)) => {
                            let _ = tx.send(Msg::VersionsLoaded(name, Err(format!("{e:#}"))));
                            return;
                        }
                        Err(e) => {
                            let _ = tx.send(Msg::VersionsLoaded(name, Err(format!("{e:#}"))));
                            return;
                        }
                    };
                    let _ = tx.send(Msg::VersionsLoaded(name.clone(), Ok(versions)));
                    // Then what each cost to make: the runs' figures come from the store.
                    let mut lineage = Vec::with_capacity(chains.len());
                    for (v, (chain, missing)) in chains {
                        lineage.push((v, crate::registry::lineage(&store, &chain, missing).await));
                    }
                    let _ = tx.send(Msg::LineageLoaded(name, lineage));
                });
            }
            Effect::VerifyModel(name) => self.registry(move |r| {
                use super::models::Badge;
                let (_, problems) = r.verify(Some(&name))?;
                let badges = r
                    .versions(&name)?
                    .iter()
                    .map(|v| {
                        let n = problems.iter().filter(|p| p.version == v.version).count();
                        (
                            v.version,
                            if n == 0 { Badge::Ok } else { Badge::Damaged(n) },
                        )
                    })
                    .collect();
                Ok(Msg::Verified(name, badges))
            }),
            Effect::LoadSync(name) => self.registry(move |r| {
                Ok(Msg::SyncLoaded(
                    name.clone(),
                    r.sync_state(&name).ok().flatten(),
                ))
            }),
            Effect::PushModels => {
                let tx2 = self.tx.clone();
                self.registry(move |r| {
                    let res = r.remote(None).and_then(|rem| {
                        let tick = |done: u64, total: u64| {
                            let _ = tx2.send(Msg::Transfer("pushing".into(), done, total));
                        };
                        let sent = r.push(&rem, None, &tick)?;
                        Ok(format!("pushed to {}: {sent} files sent", rem.name))
                    });
                    let _ = tx2.send(Msg::ModelsLoaded(r.models().map_err(|e| format!("{e:#}"))));
                    Ok(Msg::Transferred(res.map_err(|e| format!("{e:#}"))))
                })
            }
            Effect::PullModel(spec) => {
                let tx2 = self.tx.clone();
                self.registry(move |r| {
                    let res = r.remote(None).and_then(|rem| {
                        r.fetch(&rem)?;
                        let m = r.resolve(&spec)?;
                        let tick = |done: u64, total: u64| {
                            let _ = tx2.send(Msg::Transfer(format!("pulling {spec}"), done, total));
                        };
                        let got = r.get_objects(&rem, std::slice::from_ref(&m), &tick)?;
                        Ok(format!("pulled {}@v{}: {got} files", m.name, m.version))
                    });
                    let _ = tx2.send(Msg::ModelsLoaded(r.models().map_err(|e| format!("{e:#}"))));
                    Ok(Msg::Transferred(res.map_err(|e| format!("{e:#}"))))
                })
            }
            Effect::Promote {
                model,
                version,
                alias,
                reason,
            } => {
                let tx2 = self.tx.clone();
                self.registry(move |r| {
                    r.promote(&model, version, &alias, &reason, &crate::host::user_name())?;
                    let _ = tx2.send(Msg::ModelsLoaded(r.models().map_err(|e| format!("{e:#}"))));
                    let _ = tx2.send(Msg::VersionsLoaded(
                        model.clone(),
                        r.versions(&model).map_err(|e| format!("{e:#}")),
                    ));
                    Ok(Msg::Notice(format!("{alias} -> {model}@v{version}")))
                })
            }
            Effect::Register { run, model } => {
                let dir = self.gantry_dir.clone();
                tokio::spawn(async move {
                    let msg = match register(&store, &dir, &run, &model).await {
                        Ok(m) => format!(
                            "registered {}@v{} ({} files)",
                            m.name,
                            m.version,
                            m.files.len()
                        ),
                        Err(e) => format!("cannot register: {e:#}"),
                    };
                    let _ = tx.send(Msg::Notice(msg));
                    let _ = tx.send(Msg::StoreChanged);
                });
            }
            Effect::Delete(run) => {
                let runs_dir = self.gantry_dir.join("runs");
                tokio::spawn(async move {
                    let msg = match store.delete_runs(std::slice::from_ref(&run)).await {
                        Ok(_) => {
                            let _ = std::fs::remove_dir_all(runs_dir.join(&run));
                            format!("deleted run {}", &run[..run.len().min(8)])
                        }
                        Err(e) => format!("cannot delete: {e:#}"),
                    };
                    let _ = tx.send(Msg::Notice(msg));
                    let _ = tx.send(Msg::StoreChanged);
                });
            }
            Effect::ProbeCuda { gpu } => {
                tokio::task::spawn_blocking(move || {
                    // Open and close the backend once: the tab can then name the device, the
                    // driver's CUDA version and the library files loaded before any run.
                    let probed = match crate::bench::cuda::missing_library() {
                        Some(why) => Err(why),
                        None => {
                            if let Ok(Ok(gpus)) = crate::error::contain(
                                "listing the GPUs",
                                crate::bench::cuda::list_devices,
                            ) {
                                let _ = tx.send(Msg::BenchGpus(gpus));
                            }
                            crate::bench::open_backend(false, gpu).map(|b| b.device().clone())
                        }
                    };
                    let _ = tx.send(Msg::BenchProbed(probed));
                });
            }
            Effect::LoadBenchHistory => {
                tokio::spawn(async move {
                    let r = store
                        .bench_history(None)
                        .await
                        .map_err(|e| format!("{e:#}"));
                    let _ = tx.send(Msg::BenchHistory(r));
                });
            }
            Effect::CancelBench => {
                self.bench_cancel
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Effect::RunBench {
                request,
                cpu,
                gpu,
                burn,
            } => {
                let cancel = self.bench_cancel.clone();
                cancel.store(false, std::sync::atomic::Ordering::Relaxed);
                let rt = tokio::runtime::Handle::current();
                // The CUDA context lives on this thread for the whole run.
                let spawned = std::thread::Builder::new()
                    .name("bench".into())
                    .spawn(move || {
                        let mut backend = match crate::bench::open_backend(cpu, gpu) {
                            Ok(b) => b,
                            Err(why) => {
                                let _ = tx.send(Msg::BenchDone(Err(why)));
                                return;
                            }
                        };
                        let started = crate::domain::now_ms();
                        let ran = match &request {
                            Some(request) => {
                                crate::bench::run_sampled(
                                    backend.as_mut(),
                                    request,
                                    &mut |e| {
                                        let _ = tx.send(Msg::BenchEvent(e));
                                    },
                                    &cancel,
                                )
                                .0
                            }
                            None => Ok(Vec::new()),
                        };
                        let results = match ran {
                            Ok(r) => r,
                            Err(why) => {
                                let _ = tx.send(Msg::BenchDone(Err(why)));
                                return;
                            }
                        };
                        let device = backend.device().clone();
                        let host = crate::host::hostname();
                        for r in &results {
                            if let Err(e) =
                                rt.block_on(store.record_bench(started, &host, &device, r))
                            {
                                let _ =
                                    tx.send(Msg::Notice(format!("cannot store a result: {e:#}")));
                            }
                        }
                        if let Some((spec, secs)) = burn
                            && !cancel.load(std::sync::atomic::Ordering::Relaxed)
                        {
                            let burned = crate::bench::burn_sampled(
                                backend.as_mut(),
                                &spec,
                                secs,
                                &mut |w| {
                                    let _ = tx.send(Msg::BenchWindow(w.clone()));
                                },
                                &cancel,
                            );
                            let _ = tx.send(Msg::BenchBurned(burned));
                        }
                        let _ = tx.send(Msg::BenchDone(Ok(device)));
                    });
                if let Err(e) = spawned {
                    let _ = self.tx.send(Msg::BenchDone(Err(format!(
                        "cannot start the benchmarks: {e}"
                    ))));
                }
            }
            Effect::FleetHistory(host) => {
                let Some(src) = self.fleet.clone().filter(|s| s.has_history(&host)) else {
                    return;
                };
                tokio::task::spawn_blocking(move || {
                    let res = src.history(&host, crate::domain::now_ms());
                    let _ = tx.send(Msg::FleetHistory(host.name.clone(), res));
                });
            }
            Effect::Kill { pid, signal } => {
                let name = if signal == libc::SIGKILL {
                    "SIGKILL"
                } else {
                    "SIGTERM"
                };
                // SAFETY: kill has no memory-safety preconditions.
                let rc = unsafe { libc::kill(pid as i32, signal) };
                let msg = if rc == 0 {
                    format!("sent {name} to process {pid}")
                } else {
                    match std::io::Error::last_os_error().raw_os_error() {
                        Some(libc::EPERM) => format!(
                            "not allowed to signal process {pid} (EPERM: another user's process)"
                        ),
                        Some(libc::ESRCH) => format!("process {pid} is already gone (ESRCH)"),
                        _ => format!(
                            "cannot signal process {pid}: {}",
                            std::io::Error::last_os_error()
                        ),
                    }
                };
                let _ = tx.send(Msg::Notice(msg));
            }
            Effect::Pager(_) | Effect::Copy(_) => {}
        }
    }
}

/// Register the files of a run's directory (gantry's own left out) as the next version of `model`.
async fn register(
    store: &Store,
    gantry_dir: &Path,
    run: &str,
    model: &str,
) -> anyhow::Result<crate::registry::Manifest> {
    use crate::registry::{NewVersion, RUN_FILES, collect_files, run_ref};
    let rec = store.run(run).await?;
    let root = gantry_dir.parent().unwrap_or(gantry_dir).to_path_buf();
    let files: Vec<(String, PathBuf)> = collect_files(&[PathBuf::from(&rec.run_dir)], &root)?
        .into_iter()
        .filter(|(rel, _)| !RUN_FILES.contains(&rel.as_str()))
        .collect();
    if files.is_empty() {
        anyhow::bail!(
            "run {} saved no files of its own in {} (save checkpoints to $GANTRY_RUN_DIR)",
            rec.short_id(),
            rec.run_dir
        );
    }
    let rr = run_ref(store, run).await?;
    let req = NewVersion {
        name: model.to_string(),
        files,
        run: Some(rr),
        author: crate::host::user_name(),
        ..Default::default()
    };
    crate::registry::register(gantry_dir, store, req, |_| {}).await
}

/// The last lines of a log, as plain text: ANSI escapes removed, and of a line rewritten with
/// carriage returns (a progress bar) only its last state.
pub fn read_log_tail(path: &Path) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(LOG_TAIL_BYTES);
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(start)).is_err() || f.read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    tail_lines(&buf, start > 0)
}

/// The last lines of a run's output as the store holds it.
async fn stored_log_tail(store: &crate::store::Store, run: &str) -> Vec<String> {
    let Ok(end) = store.log_end(run).await else {
        return Vec::new();
    };
    let start = end.saturating_sub(LOG_TAIL_BYTES as i64);
    match store.log_from(run, start, LOG_TAIL_BYTES as usize).await {
        Ok((buf, _)) => tail_lines(&buf, start > 0),
        Err(_) => Vec::new(),
    }
}

/// Lines of the end of a log, without a partial first line (`cut`) or a final empty one.
fn tail_lines(buf: &[u8], cut: bool) -> Vec<String> {
    let text = String::from_utf8_lossy(buf);
    let mut lines: Vec<String> = text.split('\n').map(plain_line).collect();
    if cut && !lines.is_empty() {
        lines.remove(0);
    }
    if lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

fn plain_line(line: &str) -> String {
    let last = line
        .trim_end_matches('\r')
        .rsplit('\r')
        .next()
        .unwrap_or("");
    let mut out = String::with_capacity(last.len());
    let mut chars = last.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ params final-byte; OSC: ESC ] ... BEL or ESC \
            match chars.peek() {
                Some('[') => {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\x07' || (c == '\x1b' && chars.peek() == Some(&'\\')) {
                            break;
                        }
                    }
                }
                _ => {
                    chars.next();
                }
            }
        } else if c == '\t' {
            out.push_str("    ");
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// The runs the store says hold the GPUs of hosts whose exporters list no processes (a team
/// store holds every host's runs); a store that can't say leaves the hosts as read.
pub async fn attach_runs(store: &Store, hosts: &mut [crate::fleet::Host]) {
    if !hosts
        .iter()
        .flat_map(|h| &h.gpus)
        .any(|g| g.procs.is_empty())
    {
        return;
    }
    let Ok(gpus) = store.running_gpus().await else {
        return;
    };
    if gpus.is_empty() {
        return;
    }
    if let Ok(running) = store
        .runs_with_status(crate::domain::RunStatus::Running)
        .await
    {
        crate::fleet::attach_runs(hosts, &running, &gpus);
    }
}

/// Read the fleet every `every` on a thread of its own (each source with its own timeout), name
/// the runs the store says hold GPUs of hosts that list no processes, and send each read as
/// `Msg::Fleet`, until the workbench is gone.
pub fn spawn_fleet_reader(
    sources: crate::fleet::Sources,
    store: Store,
    tx: UnboundedSender<Msg>,
    every: Duration,
) {
    let rt = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        loop {
            let t = std::time::Instant::now();
            let mut hosts = sources.read(crate::domain::now_ms());
            rt.block_on(attach_runs(&store, &mut hosts));
            if tx.send(Msg::Fleet(hosts)).is_err() {
                return;
            }
            std::thread::sleep(every.saturating_sub(t.elapsed()));
        }
    });
}

/// The GPU sampler: a thread that owns the source (NVML must stay on one thread), samples every
/// `every`, names the processes' runs, reads the host's CPU and memory, and sends it all as one
/// message. Without a source it sends the reason once and ends.
pub fn spawn_gpu_sampler(
    open: impl FnOnce() -> Result<Box<dyn crate::gpu::source::GpuSource>, String> + Send + 'static,
    store: Store,
    tx: UnboundedSender<Msg>,
    every: Duration,
) {
    let rt = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        let mut src = match open() {
            Ok(s) => s,
            Err(why) => {
                let _ = tx.send(Msg::GpuProbed(crate::domain::GpuProbe::Absent(why)));
                return;
            }
        };
        let mut cpu = HostCpu::default();
        let mut describer = crate::capture::procs::Describer::default();
        loop {
            let t = std::time::Instant::now();
            let snap = match src.sample() {
                Ok(s) => s,
                Err(why) => {
                    let _ = tx.send(Msg::GpuProbed(crate::domain::GpuProbe::Absent(why)));
                    return;
                }
            };
            let pids: Vec<u32> = snap.processes.iter().map(|p| p.pid).collect();
            let procs = describer.describe_with_parents(&pids);
            let run_id_of = |pid: u32| procs.get(&pid).and_then(|i| i.run_id.clone());
            let owners = rt.block_on(crate::capture::owners::owners_with(
                &store, &snap, &run_id_of,
            ));
            let tick = super::gpus::GpuTick {
                snapshot: snap,
                owners,
                procs,
                host: cpu.sample(),
                source: src.describe(),
            };
            if tx.send(Msg::GpuSample(Box::new(tick))).is_err() {
                return;
            }
            if let Some(left) = every.checked_sub(t.elapsed()) {
                std::thread::sleep(left);
            }
        }
    });
}

/// The host's CPU % (from /proc/stat, between two calls) and memory used and total.
#[derive(Default)]
pub struct HostCpu {
    last: Option<(u64, u64)>,
}

impl HostCpu {
    pub fn sample(&mut self) -> Option<(f64, u64, u64)> {
        let (busy, total) = crate::capture::procs::host_busy_total()?;
        let idle = total - busy;
        let pct = match self.last.replace((idle, total)) {
            Some((i0, t0)) if total > t0 => {
                100.0 * (1.0 - (idle - i0) as f64 / (total - t0) as f64)
            }
            _ => 0.0,
        };
        let mem = std::fs::read_to_string("/proc/meminfo").ok()?;
        let kb = |key: &str| {
            mem.lines()
                .find(|l| l.starts_with(key))?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        };
        let (total_kb, avail_kb) = (kb("MemTotal:")?, kb("MemAvailable:")?);
        Some((pct, (total_kb - avail_kb) * 1024, total_kb * 1024))
    }
}

/// Once a second: the wall time and the HH:MM clock. `update` redraws only when what is shown
/// changed, so an idle screen is not redrawn.
pub fn spawn_clock(tx: UnboundedSender<Msg>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            every.tick().await;
            let now = chrono::Local::now();
            let msg = Msg::Tick {
                now_ms: now.timestamp_millis(),
                clock: now.format("%H:%M").to_string(),
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
    })
}

/// Watch the workspace: a write to the store (its WAL changes on every commit, including the
/// supervisor's ingest of a running run) becomes `StoreChanged`, a run's growing output.log
/// `LogChanged`. Events are gathered for 100 ms, so a burst is one message. Nothing changes,
/// nothing is sent. Returns the watcher, which stops when dropped.
pub fn spawn_watcher(
    gantry_dir: &Path,
    tx: UnboundedSender<Msg>,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let (raw_tx, raw_rx) = std::sync::mpsc::channel::<notify::Event>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            let _ = raw_tx.send(ev);
        }
    })?;
    watcher.watch(gantry_dir, RecursiveMode::NonRecursive)?;
    let runs = gantry_dir.join("runs");
    if runs.is_dir() {
        watcher.watch(&runs, RecursiveMode::Recursive)?;
    }
    std::thread::spawn(move || {
        while let Ok(first) = raw_rx.recv() {
            let mut events = vec![first];
            let until = std::time::Instant::now() + Duration::from_millis(100);
            while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
                match raw_rx.recv_timeout(left) {
                    Ok(e) => events.push(e),
                    Err(_) => break,
                }
            }
            let mut store = false;
            let mut logs: Vec<String> = Vec::new();
            for ev in &events {
                if matches!(ev.kind, notify::EventKind::Access(_)) {
                    continue;
                }
                for p in &ev.paths {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    if name.starts_with("gantry.db") && !name.ends_with(".lock") {
                        store = true;
                    } else if name == "output.log"
                        && let Some(run) = p
                            .parent()
                            .and_then(|d| d.file_name())
                            .and_then(|n| n.to_str())
                        && !logs.iter().any(|l| l == run)
                    {
                        logs.push(run.to_string());
                    }
                }
            }
            if store && tx.send(Msg::StoreChanged).is_err() {
                return;
            }
            for run in logs {
                if tx.send(Msg::LogChanged(run)).is_err() {
                    return;
                }
            }
        }
    });
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_plain_text() {
        assert_eq!(plain_line("\x1b[32mok\x1b[0m done"), "ok done");
        assert_eq!(
            plain_line(" 10%|#   |\r 50%|#####|\r100%|########|"),
            "100%|########|"
        );
        assert_eq!(plain_line("a\tb\r"), "a    b");
        assert_eq!(plain_line("\x1b]0;title\x07text"), "text");
    }
}
