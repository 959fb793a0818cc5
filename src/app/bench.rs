//! The Bench tab's state: which benchmarks are checked, the size and backend chosen, the run in
//! progress (a row per benchmark with its progress), its results, and the stored history.

use super::effect::Effect;
use crate::domain::bench::StoredBench;
use crate::domain::bench::{
    self, BenchResult, Burn, DeviceInfo, Event, Kind, Precision, Request, Window,
};

/// GEMM sizes the tab offers; None runs the backend's defaults.
pub const SIZES: [Option<u64>; 6] = [
    None,
    Some(1024),
    Some(2048),
    Some(4096),
    Some(8192),
    Some(16384),
];

/// One row of the checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Kind(Kind),
    Precision(Precision),
    Size,
    /// Which GPU (CUDA's numbering) the CUDA backend runs on.
    Gpu,
    /// A sustained load after the benchmarks, and for how long.
    Burn,
}

/// Lengths of the sustained load the tab offers, in seconds; None runs none.
pub const BURNS: [Option<u32>; 4] = [None, Some(30), Some(60), Some(300)];

/// The checklist, top to bottom.
pub const ITEMS: [Item; 12] = [
    Item::Kind(Kind::Gemm),
    Item::Precision(Precision::Fp32),
    Item::Precision(Precision::Tf32),
    Item::Precision(Precision::Fp16),
    Item::Precision(Precision::Bf16),
    Item::Size,
    Item::Kind(Kind::Membw),
    Item::Kind(Kind::H2d),
    Item::Kind(Kind::D2h),
    Item::Kind(Kind::Launch),
    Item::Burn,
    Item::Gpu,
];

/// Whether CUDA can be used here, as far as known.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Cuda {
    #[default]
    Unknown,
    /// Asked, no answer yet.
    Probing,
    /// The libraries load; the device is named after the first run.
    Available,
    /// Why not: "CUDA not available: libcuda.so …".
    Unavailable(String),
}

/// A benchmark of the run in progress or just ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub label: String,
    pub done: usize,
    pub reps: usize,
    pub result: Option<BenchResult>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BenchState {
    pub cursor: usize,
    pub kinds: Vec<Kind>,
    pub precisions: Vec<Precision>,
    /// Index into SIZES.
    pub size: usize,
    /// Run the CPU backend.
    pub cpu: bool,
    pub cuda: Cuda,
    /// The device of the last run.
    pub device: Option<DeviceInfo>,
    pub running: bool,
    /// Esc was pressed during the run.
    pub cancelled: bool,
    /// How many benchmarks the run has, once known.
    pub total: usize,
    pub rows: Vec<Row>,
    pub history: Vec<StoredBench>,
    pub history_loaded: bool,
    pub pending: bool,
    /// The GPUs CUDA sees (name, UUID), once probed.
    pub gpus: Vec<(String, String)>,
    /// The chosen one, in CUDA's numbering.
    pub gpu: usize,
    /// Index into BURNS.
    pub burn: usize,
    /// The sustained load's seconds so far, and its summary once done (or why it failed).
    pub windows: Vec<Window>,
    pub burned: Option<Result<Burn, String>>,
}

impl Default for BenchState {
    fn default() -> Self {
        BenchState {
            cursor: 0,
            kinds: Kind::ALL.to_vec(),
            precisions: Precision::GPU.to_vec(),
            size: 0,
            cpu: false,
            cuda: Cuda::Unknown,
            device: None,
            running: false,
            cancelled: false,
            total: 0,
            rows: Vec::new(),
            history: Vec::new(),
            history_loaded: false,
            pending: false,
            gpus: Vec::new(),
            gpu: 0,
            burn: 0,
            windows: Vec::new(),
            burned: None,
        }
    }
}

impl BenchState {
    pub fn checked(&self, item: Item) -> bool {
        match item {
            Item::Kind(k) => self.kinds.contains(&k),
            Item::Precision(p) => self.precisions.contains(&p),
            Item::Size | Item::Gpu => true,
            Item::Burn => BURNS[self.burn].is_some(),
        }
    }

    /// Space on the row under the cursor: toggle a box, or step the size.
    pub fn toggle(&mut self) {
        match ITEMS.get(self.cursor) {
            Some(Item::Kind(k)) => flip(&mut self.kinds, *k),
            Some(Item::Precision(p)) => flip(&mut self.precisions, *p),
            Some(Item::Size) => self.size = (self.size + 1) % SIZES.len(),
            Some(Item::Gpu) if !self.cpu && self.gpus.len() > 1 => {
                self.gpu = (self.gpu + 1) % self.gpus.len();
            }
            Some(Item::Burn) => self.burn = (self.burn + 1) % BURNS.len(),
            Some(Item::Gpu) | None => {}
        }
    }

    pub fn size_text(&self) -> String {
        match SIZES[self.size] {
            None if self.cpu => "256, 512, 1024".into(),
            None => "1024 to 16384".into(),
            Some(n) => n.to_string(),
        }
    }

    /// The sustained load `r` runs after the benchmarks: its GEMM (the fastest precision checked,
    /// bf16 first, and the size chosen; bf16 8192 on a GPU, fp32 512 on the CPU) and seconds.
    pub fn burn_spec(&self) -> Option<(bench::Spec, f64)> {
        let secs = BURNS[self.burn]?;
        let p = if self.cpu {
            Precision::Fp32
        } else {
            Precision::GPU
                .into_iter()
                .rev()
                .find(|p| self.precisions.contains(p))
                .unwrap_or(Precision::Bf16)
        };
        let n = SIZES[self.size].unwrap_or(if self.cpu { 512 } else { 8192 });
        let variant = if self.cpu { "matrixmultiply" } else { "cublas" };
        Some((bench::Spec::gemm(p, n, variant), f64::from(secs)))
    }

    /// "Sustained load 60 s", the checklist's row.
    pub fn burn_text(&self) -> String {
        match BURNS[self.burn] {
            Some(s) => format!("[x] Sustained load {s} s"),
            None => "[ ] Sustained load".into(),
        }
    }

    /// What `r` runs.
    pub fn request(&self) -> Request {
        let mut precisions = self.precisions.clone();
        if self.cpu && precisions.contains(&Precision::Fp32) {
            precisions.push(Precision::Fp64);
        }
        Request {
            only: self.kinds.clone(),
            sizes: SIZES[self.size].into_iter().collect(),
            precisions,
            reps: bench::MIN_REPS,
        }
    }

    pub fn start(&mut self) {
        self.running = true;
        self.cancelled = false;
        self.total = 0;
        self.rows.clear();
        self.windows.clear();
        self.burned = None;
    }

    pub fn event(&mut self, e: Event) {
        match e {
            Event::Started { index, total, spec } => {
                self.total = total;
                self.rows.truncate(index);
                self.rows.push(Row {
                    label: spec.label(),
                    done: 0,
                    reps: bench::MIN_REPS,
                    result: None,
                    error: None,
                });
            }
            Event::Progress { index, done, reps } => {
                if let Some(r) = self.rows.get_mut(index) {
                    r.done = done;
                    r.reps = reps;
                }
            }
            Event::Finished { index, result } => {
                if let Some(r) = self.rows.get_mut(index) {
                    r.done = r.reps;
                    r.result = Some(result);
                }
            }
            Event::Failed { index, error, .. } => {
                if let Some(r) = self.rows.get_mut(index) {
                    r.error = Some(error);
                }
            }
        }
    }

    /// The device whose history is shown: the chosen GPU's, else the last run's, else the
    /// newest stored.
    pub fn history_device(&self) -> Option<String> {
        if !self.cpu
            && let Some((_, uuid)) = self.gpus.get(self.gpu)
        {
            return Some(uuid.clone());
        }
        self.device
            .as_ref()
            .map(|d| d.uuid.clone())
            .or_else(|| self.history.last().map(|h| h.device_uuid.clone()))
    }

    /// "GPU 2/8: H100 80GB HBM3", the checklist's last row.
    pub fn gpu_text(&self) -> String {
        match self.gpus.get(self.gpu) {
            Some((name, _)) => format!(
                "GPU {}/{}: {}",
                self.gpu,
                self.gpus.len(),
                name.trim_start_matches("NVIDIA ")
            ),
            None => format!("GPU {}", self.gpu),
        }
    }

    /// Past medians of `spec` on `device`, oldest first, and whether the newest is a drop of
    /// more than 5% below the median of those before it.
    pub fn trend(&self, device: &str, spec: &bench::Spec) -> (Vec<f64>, Option<f64>) {
        let past: Vec<&StoredBench> = self
            .history
            .iter()
            .filter(|h| h.device_uuid == device && &h.spec == spec)
            .collect();
        let values: Vec<f64> = past.iter().map(|h| h.stats.median).collect();
        let drop = match (values.split_last(), past.last()) {
            (Some((last, before)), Some(h)) => bench::drop_below(*last, h.unit, before),
            _ => None,
        };
        (values, drop)
    }

    /// The newest stored result of `spec` on `device`.
    pub fn newest(&self, device: &str, spec: &bench::Spec) -> Option<&StoredBench> {
        self.history
            .iter()
            .rev()
            .find(|h| h.device_uuid == device && &h.spec == spec)
    }

    /// The specs the history panel lists: the last run's, else the newest stored ones.
    pub fn history_specs(&self) -> Vec<bench::Spec> {
        let mut v: Vec<bench::Spec> = self
            .rows
            .iter()
            .filter_map(|r| r.result.as_ref().map(|x| x.spec.clone()))
            .collect();
        if v.is_empty()
            && let Some(dev) = self.history_device()
        {
            for h in self.history.iter().rev().filter(|h| h.device_uuid == dev) {
                if !v.contains(&h.spec) {
                    v.push(h.spec.clone());
                }
            }
            v.sort_by_key(spec_order);
        }
        v
    }
}

/// The order a run gives results in: by kind, precision, size.
fn spec_order(s: &bench::Spec) -> (Option<usize>, Option<usize>, u64) {
    let kind = Kind::ALL.iter().position(|x| *x == s.kind);
    let prec = s
        .precision
        .and_then(|p| Precision::GPU.iter().position(|x| *x == p));
    (kind, prec, s.size)
}

impl BenchState {
    /// What the results panel shows: this session's rows, else (nothing has run since the
    /// workbench opened) the chosen GPU's newest stored run, with that run's first result (its
    /// time and device).
    pub fn shown_rows(&self) -> (std::borrow::Cow<'_, [Row]>, Option<&StoredBench>) {
        use std::borrow::Cow;
        if !self.rows.is_empty() || self.running {
            return (Cow::Borrowed(&self.rows), None);
        }
        let Some(uuid) = self.history_device() else {
            return (Cow::Borrowed(&self.rows), None);
        };
        let Some(newest) = self.history.iter().rev().find(|h| h.device_uuid == uuid) else {
            return (Cow::Borrowed(&self.rows), None);
        };
        let mut run: Vec<&StoredBench> = self
            .history
            .iter()
            .filter(|h| h.device_uuid == uuid && h.started_ms == newest.started_ms)
            .collect();
        run.sort_by_key(|h| spec_order(&h.spec));
        let rows = run
            .into_iter()
            .map(|h| Row {
                label: h.spec.label(),
                done: bench::MIN_REPS,
                reps: bench::MIN_REPS,
                result: Some(BenchResult {
                    spec: h.spec.clone(),
                    unit: h.unit,
                    stats: h.stats,
                    peak: h.peak,
                    pct_of_peak: h.pct_of_peak,
                    check: h.check_ok.map(|ok| bench::Check {
                        max_rel_err: h.max_rel_err.unwrap_or(0.0),
                        bound: 0.0,
                        samples: 0,
                        ok,
                    }),
                    conditions: h.conditions.clone(),
                }),
                error: None,
            })
            .collect();
        (Cow::Owned(rows), Some(newest))
    }

    /// The headline of the newest stored run on the GPU `uuid`: its bf16 GEMM at the largest size
    /// when there is one, else its first GEMM, else its first result; with the drop, if flagged.
    pub fn headline(&self, uuid: &str) -> Option<(&StoredBench, Option<f64>)> {
        let newest = self.history.iter().rev().find(|h| h.device_uuid == uuid)?;
        let run: Vec<&StoredBench> = self
            .history
            .iter()
            .filter(|h| h.device_uuid == uuid && h.started_ms == newest.started_ms)
            .collect();
        let gemm = |p: Option<Precision>| {
            run.iter()
                .filter(|h| h.spec.kind == Kind::Gemm && (p.is_none() || h.spec.precision == p))
                .max_by_key(|h| h.spec.size)
                .copied()
        };
        let pick = gemm(Some(Precision::Bf16))
            .or_else(|| gemm(None))
            .or_else(|| run.first().copied())?;
        let (_, drop) = self.trend(uuid, &pick.spec);
        Some((pick, drop))
    }
}

fn flip<T: PartialEq + Copy>(v: &mut Vec<T>, x: T) {
    if let Some(i) = v.iter().position(|y| *y == x) {
        v.remove(i);
    } else {
        v.push(x);
    }
}

/// The Bench tab's actions: check a row, switch the backend, run, cancel.
pub(super) fn bench_action(
    state: &mut super::State,
    action: super::Action,
    mut effects: Vec<super::Effect>,
) -> super::Outcome {
    use super::{Action, Effect, Modal};
    match action {
        Action::BenchToggle => {
            let before = state.bench.gpu;
            state.bench.toggle();
            if state.bench.gpu != before {
                // Name the newly chosen GPU, its driver and libraries, and show its history.
                effects.push(Effect::ProbeCuda {
                    gpu: state.bench.gpu,
                });
            }
        }
        Action::BenchCpu => {
            state.bench.cpu = !state.bench.cpu;
            state.toast = Some(if state.bench.cpu {
                "the CPU backend runs the benchmarks".into()
            } else {
                "the CUDA backend runs the benchmarks".into()
            });
        }
        Action::BenchCancel if state.bench.running => {
            state.bench.cancelled = true;
            effects.push(Effect::CancelBench);
            state.toast = Some("cancelling after the current repetition".into());
        }
        Action::BenchRun => {
            let b = &state.bench;
            if b.running {
                state.toast = Some("benchmarks are running; esc cancels them".into());
            } else if let (false, super::bench::Cuda::Unavailable(why)) = (b.cpu, &b.cuda) {
                state.toast = Some(format!("{why} · c switches to the CPU backend"));
            } else if b.kinds.is_empty() && b.burn_spec().is_none() {
                state.toast = Some("check at least one benchmark (space)".into());
            } else {
                // The chosen GPU's processes, found by its UUID (NVML's numbering is not CUDA's).
                let uuid = b.gpus.get(b.gpu).map_or("", |(_, u)| u.as_str());
                let busy: Vec<String> = match (&state.gpus.snapshot, b.cpu) {
                    (Some(snap), false) => snap
                        .processes_on(uuid, b.gpu as u32, state.own_pid)
                        .into_iter()
                        .map(|p| {
                            let cmd = state
                                .gpus
                                .procs
                                .get(&p.pid)
                                .map(|i| i.command.clone())
                                .unwrap_or_default();
                            format!("pid {} {}", p.pid, cmd)
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                if busy.is_empty() {
                    effects.push(start_bench(&mut state.bench));
                } else {
                    let mut lines = vec![format!(
                        "{} other processes use GPU {}:",
                        busy.len(),
                        state.bench.gpu
                    )];
                    lines.extend(busy.iter().take(6).map(|p| format!("  {p}")));
                    state.modal = Some(Modal::Confirm {
                        lines,
                        question:
                            "They would slow the benchmarks, and the benchmarks them. Run anyway?"
                                .into(),
                        yes: super::state::Yes::StartBench,
                        no: "not run: the GPU is in use".into(),
                    });
                }
            }
        }
        _ => {}
    }
    super::Outcome {
        redraw: false,
        effects,
    }
}

/// Start what the Bench tab's checklist asks for: the benchmarks checked, then the sustained
/// load when one is chosen.
pub(super) fn start_bench(b: &mut super::bench::BenchState) -> Effect {
    b.start();
    Effect::RunBench {
        request: (!b.kinds.is_empty()).then(|| b.request()),
        cpu: b.cpu,
        gpu: b.gpu,
        burn: b.burn_spec(),
    }
}

/// The Bench tab's messages: the GPUs CUDA sees, the probed device, a run's events and windows, its end, the stored history.
pub(super) fn on_msg(state: &mut super::State, msg: super::Msg) -> super::Outcome {
    use super::{Effect, Msg, Outcome, Tab};
    match msg {
        Msg::BenchGpus(gpus) => {
            state.bench.gpus = gpus;
            if state.bench.gpu >= state.bench.gpus.len() {
                state.bench.gpu = 0;
            }
            Outcome::redraw()
        }
        Msg::BenchProbed(probed) => {
            match probed {
                Ok(device) => {
                    state.bench.cuda = super::bench::Cuda::Available;
                    // A run's own device stands until the run ends.
                    if state.bench.device.is_none() || !state.bench.running {
                        state.bench.device = Some(device);
                    }
                }
                Err(why) => state.bench.cuda = super::bench::Cuda::Unavailable(why),
            }
            Outcome::redraw()
        }
        Msg::BenchEvent(e) => {
            state.bench.event(e);
            Outcome {
                redraw: state.tab == Tab::Bench,
                effects: Vec::new(),
            }
        }
        Msg::BenchWindow(w) => {
            state.bench.windows.push(w);
            Outcome {
                redraw: state.tab == Tab::Bench,
                effects: Vec::new(),
            }
        }
        Msg::BenchBurned(b) => {
            state.bench.burned = Some(b);
            Outcome {
                redraw: state.tab == Tab::Bench,
                effects: Vec::new(),
            }
        }
        Msg::BenchDone(r) => {
            state.bench.running = false;
            match r {
                Ok(device) => {
                    let failed = state
                        .bench
                        .rows
                        .iter()
                        .filter(|r| r.error.is_some())
                        .count();
                    let wrong = state
                        .bench
                        .rows
                        .iter()
                        .filter(|r| r.result.as_ref().is_some_and(|x| !x.correct()))
                        .count();
                    let done = state
                        .bench
                        .rows
                        .iter()
                        .filter(|r| r.result.is_some())
                        .count();
                    let mut toast = match (failed, wrong) {
                        _ if state.bench.cancelled => {
                            format!("cancelled: {done} of {} benchmarks ran", state.bench.total)
                        }
                        _ if state.bench.rows.is_empty() => format!("{}:", device.name),
                        (0, 0) => format!(
                            "{} benchmarks done on {}",
                            state.bench.rows.len(),
                            device.name
                        ),
                        (f, 0) => format!("{f} benchmarks failed"),
                        (_, w) => format!("{w} results failed the correctness check"),
                    };
                    let sep = if toast.ends_with(':') { " " } else { " · " };
                    match &state.bench.burned {
                        Some(Ok(b)) if !b.correct() => {
                            toast.push_str(&format!(
                                "{sep}the sustained load computed a wrong result"
                            ));
                        }
                        Some(Ok(b)) => toast.push_str(&format!(
                            "{sep}sustained load held {:.1}% ({} → {} {})",
                            100.0 * b.sustained,
                            crate::format::four_digits(b.start),
                            crate::format::four_digits(b.end),
                            b.unit.as_str()
                        )),
                        Some(Err(e)) => toast.push_str(&format!("{sep}sustained load: {e}")),
                        None => {}
                    }
                    state.toast = Some(toast);
                    state.bench.device = Some(device);
                }
                Err(why) => {
                    if why.starts_with("CUDA not available") {
                        state.bench.cuda = super::bench::Cuda::Unavailable(why.clone());
                    }
                    state.toast = Some(why);
                }
            }
            Outcome {
                redraw: true,
                effects: vec![Effect::LoadBenchHistory],
            }
        }
        Msg::BenchHistory(r) => {
            state.bench.pending = false;
            state.bench.history_loaded = true;
            match r {
                Ok(h) => state.bench.history = h,
                Err(e) => state.toast = Some(format!("cannot read benchmark history: {e}")),
            }
            Outcome::redraw()
        }
        _ => Outcome::none(),
    }
}
