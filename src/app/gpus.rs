//! The GPUs tab's state: the latest snapshot, per-GPU history in ring buffers, the processes'
//! owners, and the process table's sort and selection.

use std::collections::{HashMap, VecDeque};

use crate::domain::{GpuProcess, GpuSnapshot};

/// What the history chart shows; `m` cycles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GpuMetric {
    #[default]
    Util,
    Memory,
    Power,
    Temp,
}

impl GpuMetric {
    pub fn label(self) -> &'static str {
        match self {
            GpuMetric::Util => "utilisation %",
            GpuMetric::Memory => "memory %",
            GpuMetric::Power => "power W",
            GpuMetric::Temp => "temperature °C",
        }
    }
    pub fn next(self) -> GpuMetric {
        match self {
            GpuMetric::Util => GpuMetric::Memory,
            GpuMetric::Memory => GpuMetric::Power,
            GpuMetric::Power => GpuMetric::Temp,
            GpuMetric::Temp => GpuMetric::Util,
        }
    }
}

/// Samples kept per GPU: 10 minutes at 1 s.
pub const HISTORY: usize = 600;

/// One GPU's recent readings, column-wise.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub util: VecDeque<f64>,
    pub memory: VecDeque<f64>,
    pub power: VecDeque<f64>,
    pub temp: VecDeque<f64>,
}

impl History {
    fn push(q: &mut VecDeque<f64>, v: f64) {
        if q.len() == HISTORY {
            q.pop_front();
        }
        q.push_back(v);
    }
    /// One reading of a GPU (None: not known then).
    fn push_gpu(&mut self, g: Option<&crate::domain::GpuSample>) {
        let mem = match g.and_then(|g| Some((g.mem_used?, g.mem_total?))) {
            Some((u, t)) if t > 0 => u as f64 / t as f64 * 100.0,
            _ => f64::NAN,
        };
        History::push(
            &mut self.util,
            g.and_then(|g| g.util).map_or(f64::NAN, f64::from),
        );
        History::push(&mut self.memory, mem);
        History::push(&mut self.power, g.and_then(|g| g.power).unwrap_or(f64::NAN));
        History::push(
            &mut self.temp,
            g.and_then(|g| g.temp).map_or(f64::NAN, f64::from),
        );
    }

    pub fn of(&self, m: GpuMetric) -> &VecDeque<f64> {
        match m {
            GpuMetric::Util => &self.util,
            GpuMetric::Memory => &self.memory,
            GpuMetric::Power => &self.power,
            GpuMetric::Temp => &self.temp,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcSort {
    #[default]
    Memory,
    Util,
    Pid,
    Gpu,
}

/// One sampler tick: the snapshot, the runs owning its processes, /proc facts about them, and
/// the host's CPU % and memory.
#[derive(Debug, Clone, Default)]
pub struct GpuTick {
    pub snapshot: GpuSnapshot,
    pub owners: HashMap<u32, (String, String)>,
    pub procs: HashMap<u32, crate::domain::ProcInfo>,
    pub host: Option<(f64, u64, u64)>,
    pub source: String,
}

/// A row of the process table: a GPU process, or in the tree a launcher without a GPU.
pub struct ProcRow<'a> {
    pub pid: u32,
    pub gpu: Option<&'a GpuProcess>,
    /// Tree lines before the command.
    pub prefix: String,
}

#[derive(Default)]
pub struct GpusState {
    pub procs: HashMap<u32, crate::domain::ProcInfo>,
    pub snapshot: Option<GpuSnapshot>,
    pub history: Vec<History>,
    /// pid -> (run id, run name)
    pub owners: HashMap<u32, (String, String)>,
    pub metric: GpuMetric,
    pub sort: ProcSort,
    pub cursor: usize,
    /// Words that every shown process must match (see `matches`).
    pub filter: String,
    /// Processes as a tree: each under its parent, and GPU processes that share a parent without
    /// a GPU (a launcher such as torchrun) under that parent.
    pub tree: bool,
    /// Host CPU % and memory (used, total) bytes.
    pub host: Option<(f64, u64, u64)>,
    pub source: String,
    /// The fleet's host table, when the config names fleet sources (app/fleet.rs).
    pub fleet: Option<super::fleet::FleetView>,
    /// When the first snapshot was pushed (older history may be put before it), ms.
    pub first_ms: Option<i64>,
    /// The Slurm job or pod holding each GPU, by index, as a fleet host's exporter labels it.
    pub jobs: HashMap<u32, String>,
}

impl GpusState {
    /// The fleet host opened from the host table, when one is (this box is not one).
    pub fn remote(&self) -> Option<&str> {
        match self.fleet.as_ref()?.open.as_ref()? {
            super::fleet::Opened::Host(name) => Some(name),
            super::fleet::Opened::Local => None,
        }
    }

    /// Do `op` on the box the tab shows: a fleet host opened from the host table, else this box.
    pub fn with_shown<R>(&mut self, op: impl FnOnce(&mut GpusState) -> R) -> R {
        let name = self.remote().map(str::to_string);
        if let Some(n) = name
            && let Some(b) = self.fleet.as_mut().and_then(|f| f.boxes.get_mut(&n))
        {
            return op(b);
        }
        op(self)
    }

    /// Readings from before the first snapshot pushed (a fleet host's history from Prometheus),
    /// oldest first, put before the history; those from after it are left out. A GPU is matched
    /// by its index; the oldest are dropped past `HISTORY`.
    pub fn prepend(&mut self, older: &[GpuSnapshot]) {
        let first = self.first_ms.unwrap_or(i64::MAX);
        let older: Vec<&GpuSnapshot> = older.iter().filter(|s| s.time_ms < first).collect();
        let n = older
            .iter()
            .flat_map(|s| s.gpus.iter().map(|g| g.index as usize + 1))
            .max()
            .unwrap_or(0);
        if self.history.len() < n {
            self.history.resize_with(n, History::default);
        }
        for (i, h) in self.history.iter_mut().enumerate() {
            let mut before = History::default();
            for s in &older {
                let g = s.gpus.iter().find(|g| g.index as usize == i);
                before.push_gpu(g);
            }
            for (q, mut b) in [
                (&mut h.util, before.util),
                (&mut h.memory, before.memory),
                (&mut h.power, before.power),
                (&mut h.temp, before.temp),
            ] {
                b.extend(q.drain(..));
                while b.len() > HISTORY {
                    b.pop_front();
                }
                *q = b;
            }
        }
    }

    pub fn push(&mut self, snap: GpuSnapshot, owners: HashMap<u32, (String, String)>) {
        self.first_ms.get_or_insert(snap.time_ms);
        self.history.resize_with(snap.gpus.len(), History::default);
        for (h, g) in self.history.iter_mut().zip(&snap.gpus) {
            h.push_gpu(Some(g));
        }
        self.snapshot = Some(snap);
        self.owners = owners;
        self.clamp_cursor();
    }

    /// The processes in table order.
    pub fn processes(&self) -> Vec<&GpuProcess> {
        let Some(s) = &self.snapshot else {
            return Vec::new();
        };
        let words: Vec<String> = self
            .filter
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let mut v: Vec<&GpuProcess> = s
            .processes
            .iter()
            .filter(|p| words.iter().all(|w| self.matches(p, w)))
            .collect();
        match self.sort {
            ProcSort::Memory => v.sort_by_key(|p| std::cmp::Reverse(p.mem_used.unwrap_or(0))),
            ProcSort::Util => v.sort_by_key(|p| std::cmp::Reverse(p.sm_util.unwrap_or(0))),
            ProcSort::Pid => v.sort_by_key(|p| p.pid),
            ProcSort::Gpu => v.sort_by_key(|p| (p.gpu, p.pid)),
        }
        v
    }

    /// Whether a process matches one lower-case filter word: a pid, `gpuN`, or a part of its
    /// user, command line, job or container, or owning run's name or id.
    fn matches(&self, p: &GpuProcess, word: &str) -> bool {
        if p.pid.to_string() == word || format!("gpu{}", p.gpu) == word {
            return true;
        }
        let has = |s: &str| s.to_lowercase().contains(word);
        self.procs
            .get(&p.pid)
            .is_some_and(|i| has(&i.user) || has(&i.command) || i.job.as_deref().is_some_and(has))
            || self
                .owners
                .get(&p.pid)
                .is_some_and(|(id, name)| has(id) || has(name))
    }

    /// Sets the filter and keeps the cursor on the table.
    pub fn set_filter(&mut self, text: &str) {
        self.filter = text.to_string();
        self.clamp_cursor();
    }

    pub fn clamp_cursor(&mut self) {
        self.cursor = self.cursor.min(self.rows().len().saturating_sub(1));
    }

    /// The table's rows: the processes in order, or as a tree when `tree` is on.
    pub fn rows(&self) -> Vec<ProcRow<'_>> {
        let list = self.processes();
        if !self.tree {
            return list
                .into_iter()
                .map(|p| ProcRow {
                    pid: p.pid,
                    gpu: Some(p),
                    prefix: String::new(),
                })
                .collect();
        }
        let gpu: HashMap<u32, &GpuProcess> = list.iter().map(|p| (p.pid, *p)).collect();
        let ppid = |pid: u32| self.procs.get(&pid).map_or(0, |i| i.ppid);
        // Launchers: parents without a GPU that hold two or more of the GPU processes.
        let mut shared: HashMap<u32, usize> = HashMap::new();
        for p in &list {
            let pp = ppid(p.pid);
            if pp > 1 && !gpu.contains_key(&pp) && self.procs.contains_key(&pp) {
                *shared.entry(pp).or_default() += 1;
            }
        }
        let parent_of = |pid: u32| -> Option<u32> {
            let pp = ppid(pid);
            (gpu.contains_key(&pp) || shared.get(&pp).is_some_and(|n| *n >= 2)).then_some(pp)
        };
        // Children in table order; roots in the order of their first process.
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut roots: Vec<u32> = Vec::new();
        for p in &list {
            let mut node = p.pid;
            // A GPU process whose parent is a launcher: the launcher is the node that is a root.
            match parent_of(node) {
                Some(pp) => {
                    let c = children.entry(pp).or_default();
                    if !c.contains(&node) {
                        c.push(node);
                    }
                    if !gpu.contains_key(&pp) {
                        node = pp;
                        if !roots.contains(&node) {
                            roots.push(node);
                        }
                    }
                }
                None => roots.push(node),
            }
        }
        let mut rows = Vec::new();
        fn walk<'a>(
            pid: u32,
            lead: &str,
            glyph: &str,
            gpu: &HashMap<u32, &'a GpuProcess>,
            children: &HashMap<u32, Vec<u32>>,
            rows: &mut Vec<ProcRow<'a>>,
            depth: usize,
        ) {
            rows.push(ProcRow {
                pid,
                gpu: gpu.get(&pid).copied(),
                prefix: format!("{lead}{glyph}"),
            });
            if depth > 32 {
                return; // a loop in reused pids; never deeper than this
            }
            let kids = children.get(&pid).map_or(&[][..], |v| v.as_slice());
            let lead = match glyph {
                "├─ " => format!("{lead}│  "),
                "└─ " => format!("{lead}   "),
                _ => lead.to_string(),
            };
            for (i, k) in kids.iter().enumerate() {
                let g = if i + 1 == kids.len() {
                    "└─ "
                } else {
                    "├─ "
                };
                walk(*k, &lead, g, gpu, children, rows, depth + 1);
            }
        }
        for r in roots {
            walk(r, "", "", &gpu, &children, &mut rows, 0);
        }
        rows
    }

    /// The row under the cursor.
    pub fn selected(&self) -> Option<ProcRow<'_>> {
        self.rows().into_iter().nth(self.cursor)
    }

    /// The run that owns a row's process: its own, or for a launcher, that of a child.
    pub fn owner_of(&self, pid: u32) -> Option<&(String, String)> {
        self.owners.get(&pid).or_else(|| {
            self.procs
                .iter()
                .filter(|(_, i)| i.ppid == pid)
                .find_map(|(c, _)| self.owners.get(c))
        })
    }

    pub fn next_sort(&mut self) {
        self.sort = match self.sort {
            ProcSort::Memory => ProcSort::Util,
            ProcSort::Util => ProcSort::Pid,
            ProcSort::Pid => ProcSort::Gpu,
            ProcSort::Gpu => ProcSort::Memory,
        };
    }
}

/// The GPUs tab's actions: the chart's metric, the process table's sort, tree and filter, opening
/// the owning run, and the kill confirmation.
pub(super) fn gpus_action(
    state: &mut super::State,
    action: super::Action,
    effects: Vec<super::Effect>,
) -> super::Outcome {
    use super::{Action, Modal};
    match action {
        Action::GpuMetric => state.gpus.metric = state.gpus.metric.next(),
        Action::ProcSort => state.gpus.with_shown(|g| g.next_sort()),
        Action::ProcTree => state.gpus.with_shown(|g| {
            g.tree = !g.tree;
            g.clamp_cursor();
        }),
        Action::ProcFilter => {
            state.modal = Some(Modal::ProcFilter {
                before: state.gpus.with_shown(|g| g.filter.clone()),
            })
        }
        Action::ProcOpen => {
            // On another host too: with a team store, its runs are here.
            let owner = state.gpus.with_shown(|g| {
                g.selected()
                    .and_then(|p| g.owner_of(p.pid))
                    .map(|(id, _)| id.clone())
            });
            match owner {
                Some(id) if state.runs.record(&id).is_some() => {
                    super::update::open_run_detail(state, id)
                }
                _ => state.toast = Some("no gantry run owns this process".into()),
            }
        }
        Action::KillTerm | Action::KillKill if state.gpus.remote().is_some() => {
            state.toast =
                Some("a process on another host is signalled there, not from here".into());
        }
        Action::KillTerm | Action::KillKill => {
            if let Some(p) = state.gpus.selected() {
                let signal = if action == Action::KillTerm {
                    libc::SIGTERM
                } else {
                    libc::SIGKILL
                };
                let owner = state
                    .gpus
                    .owner_of(p.pid)
                    .map(|(_, n)| format!(" (run {n})"))
                    .unwrap_or_default();
                let what = format!("process {}{owner}", p.pid);
                let name = if signal == libc::SIGKILL {
                    "SIGKILL"
                } else {
                    "SIGTERM"
                };
                state.modal = Some(Modal::Confirm {
                    lines: Vec::new(),
                    question: format!("Send {name} to {what}?"),
                    yes: super::state::Yes::Effect(
                        super::Effect::Kill { pid: p.pid, signal },
                        None,
                    ),
                    no: format!("{what} left running"),
                });
            }
        }
        _ => {}
    }
    super::Outcome {
        redraw: false,
        effects,
    }
}

/// The GPUs tab's messages: a sample (with owners and process facts), or why there is no GPU.
pub(super) fn on_msg(state: &mut super::State, msg: super::Msg) -> super::Outcome {
    use super::{GpuProbe, Msg, Outcome, Tab};
    match msg {
        Msg::GpuSample(tick) => {
            let tick = *tick;
            state.gpu = GpuProbe::Present {
                driver: tick.snapshot.driver.clone().unwrap_or_else(|| "n/a".into()),
                names: tick.snapshot.gpus.iter().map(|g| g.name.clone()).collect(),
            };
            state.gpus.host = tick.host;
            state.gpus.procs = tick.procs;
            state.gpus.source = tick.source;
            state.gpus.push(tick.snapshot, tick.owners);
            // Only the GPUs tab shows the samples; elsewhere they are kept, not drawn.
            Outcome {
                redraw: state.tab == Tab::Gpus,
                effects: Vec::new(),
            }
        }
        Msg::GpuProbed(p) => {
            state.gpu = p;
            Outcome::redraw()
        }
        _ => Outcome::none(),
    }
}
