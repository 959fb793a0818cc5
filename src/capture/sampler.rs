//! Sampling a run's process tree: CPU % and RSS from /proc; through a `GpuSource` (NVML, or a
//! recording under `--gpu-replay`) its GPU memory and SM use, its share of each GPU's energy
//! counter, the time it held each GPU and the GPUs' facts; the host CPU's energy through RAPL;
//! and, from the metric stream's `StepClock`, achieved TFLOP/s and MFU. `gantry run`'s
//! supervisor and `gantry serve` sample with it. The formulas are in `domain::efficiency`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use crate::domain::GpuSnapshot;
use crate::domain::bench::Precision;
use crate::domain::efficiency::{
    self as eff, EnergyMeter, Fingerprint, GpuRead, Hardware, HardwareGpu, Measured, Prices,
    StepClock, Throughput, Work, keys,
};
use crate::domain::{Series, SeriesKind, now_ms};
use crate::gpu::source::{GpuSource, NvmlSource, ReplaySource};
use crate::store::Store;

use super::procs;
use crate::domain::alerts::{Alert, Observation, Rules, Watch};
use crate::domain::conditions::keys as conditions;

/// How a sampler reads the GPUs and prices what it finds.
#[derive(Debug, Clone, Default)]
pub struct SamplerOptions {
    /// A recording played instead of NVML, and its speed.
    pub replay: Option<(PathBuf, f64)>,
    /// Under a replay: the recorded pids that stand for the run's processes (none: every
    /// recorded process is the run's).
    pub replay_pids: Vec<u32>,
    pub prices: Prices,
    /// The run's params: its declared work and precision.
    pub params: BTreeMap<String, String>,
    /// Where RAPL's counters are (`/sys/class/powercap`).
    pub powercap: Option<PathBuf>,
    /// The alerts watched (`[alerts]`, with the run's `alert.KEY` tags applied); None: none.
    pub alerts: Option<Rules>,
    /// The run's name, for the alerts' hooks.
    pub run_name: String,
    /// The run's folder, where the flight recorder writes (None: events kept without samples).
    pub run_dir: Option<PathBuf>,
}

/// One sample: system series (kind System, step = seconds) and derived metrics (kind Metric, at
/// the run's latest step).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub system: Vec<(&'static str, f64)>,
    pub metrics: Vec<(&'static str, f64)>,
    pub step: i64,
    /// Alerts raised or cleared at this sample.
    pub alerts: Vec<Alert>,
    /// The run's flight-recorder events, when this sample added one.
    pub events: Option<Vec<crate::domain::flight::Event>>,
}

/// What is known of one GPU the run used.
#[derive(Debug, Clone, Default)]
struct GpuFacts {
    hw: HardwareGpu,
    datasheet: Option<f64>,
    measured: Option<Measured>,
}

/// Samples a run's process tree.
pub struct Sampler {
    pid: i64,
    opts: SamplerOptions,
    last: (Instant, f64),
    source: Option<Box<dyn GpuSource>>,
    source_tried: bool,
    /// The GPUs the run was seen on, and those not stored yet.
    gpus_seen: BTreeSet<String>,
    gpus_new: Vec<String>,
    facts: BTreeMap<String, GpuFacts>,
    meter: EnergyMeter,
    rapl: Option<Rapl>,
    cpu_j: f64,
    last_run_j: Option<(f64, Instant)>,
    throughput: Throughput,
    precision: Option<Precision>,
    /// Each GPU's last share and whether the run held it: the last interval, after the command
    /// ended, is the run's as the interval before it was.
    last_use: BTreeMap<String, (f64, bool)>,
    ending: bool,
    /// The host's busy and total CPU ticks at the previous sample.
    host: Option<(u64, u64)>,
    /// The alerts: the watch, what this sample saw of the GPUs, each GPU's uncorrected ECC
    /// count when first seen, the step clock at the previous sample, the NaN count seen.
    watch: Watch,
    seen: Observation,
    ecc_base: BTreeMap<String, u64>,
    prev_step: Option<(i64, i64)>,
    nonfinite_seen: u64,
    started_ms: i64,
    hook_failures: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Things to tell the user once: a precision it can't read, a GPU without bench history.
    notes: Vec<String>,
    /// The flight recorder; the XIDs seen on the run's GPUs, and those new at this sample; the
    /// NaN count it last saw.
    flight: super::flight::Recorder,
    xids_seen: Vec<(String, u64)>,
    xids_new: Vec<(String, u64)>,
    flight_nonfinite: u64,
}

impl Sampler {
    pub fn new(pid: i64) -> Sampler {
        Sampler::with(pid, SamplerOptions::default())
    }

    pub fn with(pid: i64, opts: SamplerOptions) -> Sampler {
        let (cpu, _) = procs::usage(&[pid]);
        let mut notes = Vec::new();
        let precision = match eff::precision(opts.params.get(eff::PRECISION).map(String::as_str)) {
            Ok(p) => Some(p),
            Err(e) => {
                notes.push(format!("{e}: no MFU for this run"));
                None
            }
        };
        let rapl = Rapl::open(
            opts.powercap
                .clone()
                .unwrap_or_else(|| PathBuf::from("/sys/class/powercap")),
        );
        Sampler {
            pid,
            last: (Instant::now(), cpu),
            source: None,
            source_tried: false,
            gpus_seen: BTreeSet::new(),
            gpus_new: Vec::new(),
            facts: BTreeMap::new(),
            meter: EnergyMeter::default(),
            rapl,
            cpu_j: 0.0,
            last_run_j: None,
            throughput: Throughput::default(),
            precision,
            last_use: BTreeMap::new(),
            ending: false,
            host: procs::host_busy_total(),
            watch: Watch::default(),
            seen: Observation::default(),
            ecc_base: BTreeMap::new(),
            prev_step: None,
            nonfinite_seen: 0,
            started_ms: crate::domain::now_ms(),
            hook_failures: Default::default(),
            notes,
            flight: super::flight::Recorder::new(opts.run_dir.clone()),
            xids_seen: Vec::new(),
            xids_new: Vec::new(),
            flight_nonfinite: 0,
            opts,
        }
    }

    /// The GPUs the run was first seen on since the last call (to be stored; put back with
    /// `unstored` when the store can't take them).
    pub fn new_gpus(&mut self) -> Vec<String> {
        std::mem::take(&mut self.gpus_new)
    }

    pub fn unstored(&mut self, gpus: Vec<String>) {
        self.gpus_new.extend(gpus);
    }

    /// What to tell the user, once each (hooks that failed since, too).
    pub fn take_notes(&mut self) -> Vec<String> {
        let mut n = std::mem::take(&mut self.notes);
        if let Ok(mut h) = self.hook_failures.lock() {
            n.append(&mut h);
        }
        n
    }

    /// The run's energy accounting so far.
    pub fn energy(&self) -> &EnergyMeter {
        &self.meter
    }

    /// A GPU's bench history arrived: its measured peak and its fingerprint.
    pub fn set_history(&mut self, uuid: &str, history: &[crate::domain::bench::StoredBench]) {
        let Some(f) = self.facts.get_mut(uuid) else {
            return;
        };
        f.measured = self.precision.and_then(|p| eff::measured_peak(history, p));
        f.hw.bench = Fingerprint::of(history);
        if f.measured.is_none() {
            self.notes.push(format!(
                "GPU {} ({}) has no {} GEMM results in the bench history, so this run has no \
                 measured MFU; `gantry bench` on that GPU makes them (`--gpu N` picks it)",
                f.hw.uuid,
                f.hw.name,
                self.precision.map_or("", |p| p.as_str()),
            ));
        }
    }

    /// The hardware the run used so far.
    pub fn hardware(&self) -> Hardware {
        Hardware {
            host: crate::host::hostname(),
            gpus: self.facts.values().map(|f| f.hw.clone()).collect(),
        }
    }

    fn open_source(&mut self) {
        if std::mem::replace(&mut self.source_tried, true) {
            return;
        }
        self.source = match &self.opts.replay {
            Some((path, speed)) => match ReplaySource::open(path, *speed) {
                Ok(r) => Some(Box::new(r)),
                Err(e) => {
                    self.notes.push(e);
                    None
                }
            },
            None => NvmlSource::open_light()
                .ok()
                .map(|n| Box::new(n) as Box<dyn GpuSource>),
        };
    }

    /// The last sample, when the command has ended: the energy and GPU time since the previous
    /// sample are counted as the run's as they were then (its processes are gone by now).
    pub fn last_sample(&mut self, clock: &StepClock) -> Sample {
        self.ending = true;
        self.sample(clock)
    }

    /// One sample, with what the metric stream says (`clock`).
    pub fn sample(&mut self, clock: &StepClock) -> Sample {
        let pids = procs::tree(self.pid);
        let (cpu, rss) = procs::usage(&pids);
        let now = Instant::now();
        let dt = now.duration_since(self.last.0).as_secs_f64();
        let mut out = Sample {
            system: vec![("rss_mb", rss as f64 / (1024.0 * 1024.0))],
            step: clock.step.unwrap_or(0),
            ..Sample::default()
        };
        let cpu_s = cpu - self.last.1;
        if dt > 0.0 {
            out.system
                .push(("cpu_percent", (cpu_s / dt * 100.0).max(0.0)));
        }
        self.last = (now, cpu);
        let host = procs::host_busy_total();
        if let (Some((b0, t0)), Some((b1, t1))) = (self.host, host)
            && t1 > t0
        {
            out.system.push((
                conditions::HOST_CPU,
                (b1.saturating_sub(b0)) as f64 / (t1 - t0) as f64 * 100.0,
            ));
        }
        self.host = host;
        if let Some(r) = self.rapl.as_mut()
            && let Some(j) = r.step(cpu_s.max(0.0))
        {
            self.cpu_j += j;
            out.metrics.push((keys::CPU_ENERGY_WH, self.cpu_j / 3600.0));
        }
        self.open_source();
        let snap = self.source.as_mut().and_then(|s| s.sample_now().ok());
        if let Some(snap) = &snap {
            self.account(snap, &pids, &mut out);
        }
        self.derive(clock, &mut out);
        self.watch_alerts(clock, &mut out);
        self.record(snap, clock, &mut out);
        out
    }

    /// Keep this sample in the flight recorder (`flight::Recorder::observe`).
    fn record(&mut self, snap: Option<GpuSnapshot>, clock: &StepClock, out: &mut Sample) {
        let xids = std::mem::take(&mut self.xids_new);
        let problems = self.flight.observe(
            snap,
            &self.gpus_seen,
            &out.system,
            clock,
            &mut self.flight_nonfinite,
            &xids,
        );
        self.notes.extend(problems);
        out.events = self.flight.take_changed();
    }

    /// The command crashed (`message` says how): keep the minutes before it as an event.
    pub fn crashed(
        &mut self,
        step: Option<i64>,
        message: String,
    ) -> Vec<crate::domain::flight::Event> {
        if let Some(why) = self.flight.trigger(
            crate::domain::flight::Trigger::Crash,
            step,
            message,
            crate::domain::now_ms(),
        ) {
            self.notes.push(why);
        }
        self.flight.take_changed().unwrap_or_default()
    }

    /// Send each alert to the hooks, each on a thread of its own: capture never waits on them.
    /// A hook that fails is logged and told at the next sample.
    fn send_alerts(&self, run_id: &str, alerts: &[Alert]) {
        let Some(rules) = &self.opts.alerts else {
            return;
        };
        for a in alerts {
            tracing::info!(run = run_id, alert = a.kind.as_str(), "{}", a.message);
            let body = crate::domain::alerts::hook_json(run_id, &self.opts.run_name, a);
            let timeout = std::time::Duration::from_secs_f64(rules.hook_timeout_s.max(0.1));
            let failures = self.hook_failures.clone();
            let (cmd, url) = (rules.on_alert.clone(), rules.webhook.clone());
            let slack = rules.webhook_format.as_deref() == Some("slack");
            let spawned = std::thread::Builder::new()
                .name("gantry-alert-hook".into())
                .spawn(move || {
                    let mut failed = Vec::new();
                    if let Some(cmd) = cmd
                        && let Err(e) = super::hooks::command(&cmd, &body, timeout)
                    {
                        failed.push(format!("alert hook `{cmd}` failed: {e}"));
                    }
                    if let Some(url) = url
                        && let Err(e) = super::hooks::webhook(&url, &body, slack, timeout)
                    {
                        failed.push(format!("alert webhook {url} failed: {e}"));
                    }
                    for f in &failed {
                        tracing::warn!("{f}");
                    }
                    if let Ok(mut v) = failures.lock() {
                        v.extend(failed);
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("no thread for the alert hooks: {e}");
            }
        }
    }

    /// The alerts' conditions at this sample (`Sample::alerts` gets those raised or cleared).
    fn watch_alerts(&mut self, clock: &StepClock, out: &mut Sample) {
        let Some(rules) = self.opts.alerts.clone() else {
            return;
        };
        let mut o = std::mem::take(&mut self.seen);
        o.now_ms = crate::domain::now_ms();
        o.started_ms = self.started_ms;
        o.step = clock.step.map(|s| (s, clock.time_ms));
        if clock.nonfinite.0 > self.nonfinite_seen {
            o.nonfinite.clone_from(&clock.nonfinite.1);
        }
        self.nonfinite_seen = clock.nonfinite.0;
        o.losses = clock
            .losses
            .iter()
            .map(|(k, (last, best))| (k.clone(), *last, *best))
            .collect();
        if let (Some((s1, t1)), Some((s0, t0))) = (o.step, self.prev_step)
            && t1 > t0
        {
            o.rate = Some((s1 - s0) as f64 / ((t1 - t0) as f64 / 1000.0));
        }
        if o.step.is_some() {
            self.prev_step = o.step;
        }
        if self.ending {
            // The command has ended: nothing stalls or idles any more.
            o.step = Some((o.step.map_or(0, |s| s.0), o.now_ms));
            o.gpu_held = false;
        }
        out.alerts = self.watch.observe(&rules, &o);
    }

    /// The run's use of each GPU in `snap`, its energy and the GPUs' facts.
    fn account(&mut self, snap: &GpuSnapshot, pids: &[i64], out: &mut Sample) {
        let replay = self.opts.replay.is_some();
        let is_run = |pid: u32| {
            if replay {
                self.opts.replay_pids.is_empty() || self.opts.replay_pids.contains(&pid)
            } else {
                pids.contains(&i64::from(pid))
            }
        };
        let (mut mem, mut sm) = (0u64, None::<f64>);
        let mut cond = Conditions::default();
        for g in &snap.gpus {
            let on: Vec<(bool, Option<f64>, Option<u64>)> = snap
                .processes
                .iter()
                .filter(|p| p.gpu == g.index)
                .map(|p| (is_run(p.pid), p.sm_util.map(f64::from), p.mem_used))
                .collect();
            let held = on.iter().any(|p| p.0);
            if held {
                cond.add(g, on.iter().filter(|p| !p.0).count());
                self.seen.gpu_held = true;
                for t in &g.throttle {
                    if !self.seen.throttled.contains(t) {
                        self.seen.throttled.push(t.clone());
                    }
                }
                if let Some(e) = g.ecc_uncorrected {
                    let base = *self.ecc_base.entry(g.uuid.clone()).or_insert(e);
                    if e > base {
                        self.seen.ecc_grown.push((g.uuid.clone(), e - base));
                    }
                }
                for x in &g.xids {
                    let seen = (g.uuid.clone(), *x);
                    if !self.xids_seen.contains(&seen) {
                        self.xids_seen.push(seen.clone());
                        self.xids_new.push(seen);
                    }
                }
                self.seen.xids.clone_from(&self.xids_seen);
            }
            for p in on.iter().filter(|p| p.0) {
                mem += p.2.unwrap_or(0);
                if let Some(u) = p.1 {
                    *sm.get_or_insert(0.0) += u;
                }
            }
            if held && !g.uuid.is_empty() && self.gpus_seen.insert(g.uuid.clone()) {
                self.gpus_new.push(g.uuid.clone());
                let datasheet = crate::bench::peaks::tensor_peaks(&g.name)
                    .and_then(|(_, t)| self.precision.and_then(|p| eff::datasheet_peak(&t, p)));
                self.facts.insert(
                    g.uuid.clone(),
                    GpuFacts {
                        hw: HardwareGpu {
                            name: g.name.clone(),
                            uuid: g.uuid.clone(),
                            driver: snap.driver.clone(),
                            cuda: snap.cuda.clone(),
                            power_limit_w: g.power_limit,
                            pcie_gen: g.pcie_gen,
                            pcie_width: g.pcie_width,
                            bench: None,
                        },
                        datasheet,
                        measured: None,
                    },
                );
            }
            if self.gpus_seen.contains(&g.uuid) {
                let at_us = g.read_us.unwrap_or(snap.time_ms * 1000);
                let (share, held) = match self.last_use.get(&g.uuid) {
                    Some(last) if self.ending => *last,
                    _ => (eff::run_share(&on), held),
                };
                self.last_use.insert(g.uuid.clone(), (share, held));
                self.meter.observe(
                    &g.uuid,
                    GpuRead {
                        energy_mj: g.energy_mj,
                        at_us,
                        power_w: g.power,
                        share,
                        held,
                    },
                );
            }
        }
        cond.push(out);
        if !self.gpus_seen.is_empty() || !snap.gpus.is_empty() {
            out.system
                .push(("gpu_mem_mb", mem as f64 / (1024.0 * 1024.0)));
            if let Some(u) = sm {
                out.system.push(("gpu_util_percent", u));
            }
            self.seen.sm_util = sm;
        }
    }

    /// The derived metrics: energy, GPU-hours, power, cost, TFLOP/s and MFU.
    fn derive(&mut self, clock: &StepClock, out: &mut Sample) {
        let now = Instant::now();
        if !self.gpus_seen.is_empty() {
            let run_wh = self.meter.run_wh();
            out.metrics.push((keys::ENERGY_WH, run_wh));
            out.metrics.push((keys::GPU_HOURS, self.meter.gpu_hours()));
            let run_j = run_wh * 3600.0;
            if let Some((j0, t0)) = self.last_run_j.replace((run_j, now)) {
                let dt = now.duration_since(t0).as_secs_f64();
                if dt > 0.0 {
                    out.metrics.push((keys::POWER_W, (run_j - j0) / dt));
                }
            }
        }
        let energy_wh = self.meter.run_wh() + self.cpu_j / 3600.0;
        if (!self.gpus_seen.is_empty() || self.cpu_j > 0.0)
            && let Some(c) = self.opts.prices.cost(energy_wh, self.meter.gpu_hours())
        {
            out.metrics.push((keys::COST, c));
        }
        let param = |k: &str| {
            clock
                .declared
                .get(k)
                .copied()
                .or_else(|| self.opts.params.get(k)?.trim().parse().ok())
        };
        let Some(work) = Work::declared(param, clock.logged) else {
            return;
        };
        let Some(flops) = self.throughput.tick(clock, &work) else {
            return;
        };
        out.metrics.push((keys::TFLOPS, flops / 1e12));
        if self.facts.is_empty() {
            return;
        }
        let sum = |f: fn(&GpuFacts) -> Option<f64>| -> Option<f64> {
            self.facts.values().map(f).sum::<Option<f64>>()
        };
        if let Some(m) = sum(|f| f.datasheet).and_then(|p| eff::mfu_percent(flops, p)) {
            out.metrics.push((keys::MFU, m));
        }
        if let Some(m) =
            sum(|f| f.measured.as_ref().map(|m| m.flops)).and_then(|p| eff::mfu_percent(flops, p))
        {
            out.metrics.push((keys::MFU_MEASURED, m));
        }
    }
}

/// The conditions of the GPUs a run holds at one sample, for "why was this run slower?".
#[derive(Default)]
struct Conditions {
    gpus: usize,
    clock: Option<(f64, usize)>,
    power: Option<f64>,
    limit: Option<f64>,
    temp: Option<u32>,
    /// Power, thermal, hardware: None where no GPU's reasons are known.
    throttle: [Option<bool>; 3],
    others: usize,
}

impl Conditions {
    fn add(&mut self, g: &crate::domain::GpuSample, others: usize) {
        self.gpus += 1;
        self.others += others;
        if let Some(c) = g.sm_clock {
            let (sum, n) = self.clock.unwrap_or((0.0, 0));
            self.clock = Some((sum + f64::from(c), n + 1));
        }
        if let Some(p) = g.power {
            *self.power.get_or_insert(0.0) += p;
        }
        if let Some(l) = g.power_limit {
            *self.limit.get_or_insert(0.0) += l;
        }
        self.temp = self.temp.max(g.temp);
        if g.throttle_known != Some(false) {
            let has = |words: &[&str]| g.throttle.iter().any(|t| words.contains(&t.as_str()));
            for (slot, words) in self.throttle.iter_mut().zip([
                &["power cap", "power brake"][..],
                &["sw thermal", "hw thermal"][..],
                &["hw slowdown"][..],
            ]) {
                *slot = Some(slot.unwrap_or(false) || has(words));
            }
        }
    }

    fn push(&self, out: &mut Sample) {
        if self.gpus == 0 {
            return;
        }
        let s = &mut out.system;
        if let Some((sum, n)) = self.clock {
            s.push((conditions::SM_CLOCK, sum / n as f64));
        }
        if let Some(p) = self.power {
            s.push((conditions::POWER, p));
        }
        if let Some(l) = self.limit {
            s.push((conditions::POWER_LIMIT, l));
        }
        if let Some(t) = self.temp {
            s.push((conditions::TEMP, f64::from(t)));
        }
        for ((key, _), on) in conditions::THROTTLES.iter().zip(self.throttle) {
            if let Some(on) = on {
                s.push((key, if on { 1.0 } else { 0.0 }));
            }
        }
        s.push((conditions::OTHER_PROCS, self.others as f64));
    }
}

/// What to store after a sample: its derived metrics, the GPUs first seen (with their bench
/// history, and the run's hardware tag). Errors are logged; the run goes on.
pub async fn store_sample(store: &Store, run_id: &str, s: &mut Sampler, sample: &Sample) {
    let now = now_ms();
    if !sample.metrics.is_empty() {
        let series: Vec<(&str, Series)> = sample
            .metrics
            .iter()
            .map(|(k, v)| {
                let mut s = Series::with_capacity(1);
                s.push(sample.step, now, *v);
                (*k, s)
            })
            .collect();
        let batch: Vec<_> = series
            .iter()
            .map(|(k, s)| (SeriesKind::Metric, *k, s))
            .collect();
        if let Err(e) = store.append(run_id, &batch).await {
            tracing::warn!("storing the efficiency metrics of run {run_id}: {e:#}");
        }
    }
    if let Some(events) = &sample.events {
        store_events(store, run_id, events).await;
    }
    if !sample.alerts.is_empty() {
        let tags: Vec<(String, String)> = sample
            .alerts
            .iter()
            .map(|a| (a.kind.tag(), serde_json::to_string(a).unwrap_or_default()))
            .collect();
        if let Err(e) = store.set_tags(run_id, &tags).await {
            tracing::warn!("storing the alerts of run {run_id}: {e:#}");
        }
        s.send_alerts(run_id, &sample.alerts);
    }
    let gpus = s.new_gpus();
    if gpus.is_empty() {
        return;
    }
    if let Err(e) = store.add_run_gpus(run_id, &gpus, now).await {
        tracing::warn!("storing the GPUs of run {run_id}: {e:#}");
        s.unstored(gpus.clone());
    }
    for uuid in &gpus {
        match store.bench_history(Some(uuid)).await {
            Ok(h) => s.set_history(uuid, &h),
            Err(e) => tracing::warn!("the bench history of {uuid}: {e:#}"),
        }
    }
    let mut tags = vec![(
        eff::HARDWARE_TAG.to_string(),
        serde_json::to_string(&s.hardware()).unwrap_or_default(),
    )];
    if let Some(c) = s.opts.prices.currency.clone()
        && s.opts.prices.cost(0.0, 0.0).is_some()
    {
        tags.push((eff::CURRENCY_TAG.to_string(), c));
    }
    if let Err(e) = store.set_tags(run_id, &tags).await {
        tracing::warn!("storing the hardware of run {run_id}: {e:#}");
    }
}

/// Keep the run's flight-recorder events as its `gantry.flight` tag.
pub async fn store_events(store: &Store, run_id: &str, events: &[crate::domain::flight::Event]) {
    let tag = (
        crate::domain::flight::TAG.to_string(),
        serde_json::to_string(events).unwrap_or_default(),
    );
    if let Err(e) = store.set_tags(run_id, &[tag]).await {
        tracing::warn!("storing the flight events of run {run_id}: {e:#}");
    }
}

/// The host's CPU packages through RAPL (`/sys/class/powercap/intel-rapl:N`, or AMD's
/// `amd-rapl` where the kernel names it so), split by the run's share of the host's busy CPU
/// time. None where no package counter can be read (most containers and VMs, or a kernel that
/// keeps `energy_uj` to root).
struct Rapl {
    zones: Vec<(PathBuf, u64, Option<u64>)>,
    host: Option<(u64, u64)>,
}

impl Rapl {
    fn open(root: PathBuf) -> Option<Rapl> {
        let mut zones = Vec::new();
        for e in std::fs::read_dir(&root).ok()?.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            // Top-level zones only (intel-rapl:0, not intel-rapl:0:0, which it contains).
            let top = name
                .strip_prefix("intel-rapl:")
                .or_else(|| name.strip_prefix("amd-rapl:"))
                .is_some_and(|n| !n.contains(':'));
            if !top {
                continue;
            }
            let dir = e.path();
            let Some(max) = read_u64(&dir.join("max_energy_range_uj")) else {
                continue;
            };
            if let Some(now) = read_u64(&dir.join("energy_uj")) {
                zones.push((dir, max, Some(now)));
            }
        }
        zones.sort();
        (!zones.is_empty()).then_some(Rapl {
            zones,
            host: host_cpu_ticks(),
        })
    }

    /// Joules of the run's share since the last step; `run_cpu_s` the CPU seconds its processes
    /// used in that time.
    fn step(&mut self, run_cpu_s: f64) -> Option<f64> {
        let mut uj = 0u64;
        for (dir, max, last) in &mut self.zones {
            let now = read_u64(&dir.join("energy_uj"))?;
            if let Some(prev) = last.replace(now) {
                match eff::counter_step(prev, now, *max) {
                    eff::CounterStep::Advanced(d) | eff::CounterStep::Wrapped(d) => uj += d,
                    eff::CounterStep::Reset => {}
                }
            }
        }
        let host = host_cpu_ticks();
        let share = match (self.host, host) {
            (Some((b0, _)), Some((b1, hz))) if b1 > b0 => {
                (run_cpu_s / ((b1 - b0) as f64 / hz as f64)).clamp(0.0, 1.0)
            }
            _ => 0.0,
        };
        self.host = host;
        Some(uj as f64 / 1e6 * share)
    }
}

fn read_u64(p: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// The host's busy CPU time in clock ticks (all CPUs, /proc/stat) and the ticks per second.
fn host_cpu_ticks() -> Option<(u64, u64)> {
    let (busy, _) = procs::host_busy_total()?;
    // Safety: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some((busy, u64::try_from(hz).ok().filter(|h| *h > 0)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rapl_is_read_from_top_level_zones_and_split_by_cpu_share() {
        let dir = tempfile::tempdir().unwrap();
        let zone = |name: &str, uj: u64| {
            let z = dir.path().join(name);
            std::fs::create_dir_all(&z).unwrap();
            std::fs::write(z.join("max_energy_range_uj"), "262143328850\n").unwrap();
            std::fs::write(z.join("energy_uj"), format!("{uj}\n")).unwrap();
        };
        zone("intel-rapl:0", 1_000_000);
        zone("intel-rapl:0:0", 5_000_000);
        zone("intel-rapl:1", 262_143_000_000);
        let mut r = Rapl::open(dir.path().to_path_buf()).unwrap();
        assert_eq!(r.zones.len(), 2, "sub-zones are inside their package");
        zone("intel-rapl:0", 11_000_000);
        // Package 1 wrapped: 328850 + 1000000 + 1 µJ.
        zone("intel-rapl:1", 1_000_000);
        // A share above the host's busy time is clamped to the whole.
        r.host = Some((0, 100));
        let j = r.step(1e9).unwrap();
        assert!((j - (10.0 + 1.328_851)).abs() < 1e-6, "{j}");
        assert!(Rapl::open(dir.path().join("none")).is_none());
    }
}
