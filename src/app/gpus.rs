//! The GPUs tab's state: the latest snapshot, per-GPU history in ring buffers, the processes'
//! owners, and the process table's sort and selection.

use std::collections::{HashMap, VecDeque};

use crate::gpu::source::{GpuProcess, GpuSnapshot};

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
    pub procs: HashMap<u32, crate::capture::procs::ProcInfo>,
    pub host: Option<(f64, u64, u64)>,
    pub source: String,
}

#[derive(Default)]
pub struct GpusState {
    pub procs: HashMap<u32, crate::capture::procs::ProcInfo>,
    pub snapshot: Option<GpuSnapshot>,
    pub history: Vec<History>,
    /// pid -> (run id, run name)
    pub owners: HashMap<u32, (String, String)>,
    pub metric: GpuMetric,
    pub sort: ProcSort,
    pub cursor: usize,
    /// Words that every shown process must match (see `matches`).
    pub filter: String,
    /// Host CPU % and memory (used, total) bytes.
    pub host: Option<(f64, u64, u64)>,
    pub source: String,
}

impl GpusState {
    pub fn push(&mut self, snap: GpuSnapshot, owners: HashMap<u32, (String, String)>) {
        self.history.resize_with(snap.gpus.len(), History::default);
        for (h, g) in self.history.iter_mut().zip(&snap.gpus) {
            History::push(&mut h.util, g.util.map_or(f64::NAN, f64::from));
            let mem = match (g.mem_used, g.mem_total) {
                (Some(u), Some(t)) if t > 0 => u as f64 / t as f64 * 100.0,
                _ => f64::NAN,
            };
            History::push(&mut h.memory, mem);
            History::push(&mut h.power, g.power.unwrap_or(f64::NAN));
            History::push(&mut h.temp, g.temp.map_or(f64::NAN, f64::from));
        }
        self.snapshot = Some(snap);
        self.owners = owners;
        self.cursor = self.cursor.min(self.processes().len().saturating_sub(1));
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
    /// user, command line, or owning run's name or id.
    fn matches(&self, p: &GpuProcess, word: &str) -> bool {
        if p.pid.to_string() == word || format!("gpu{}", p.gpu) == word {
            return true;
        }
        let has = |s: &str| s.to_lowercase().contains(word);
        self.procs
            .get(&p.pid)
            .is_some_and(|i| has(&i.user) || has(&i.command))
            || self
                .owners
                .get(&p.pid)
                .is_some_and(|(id, name)| has(id) || has(name))
    }

    /// Sets the filter and keeps the cursor on the table.
    pub fn set_filter(&mut self, text: &str) {
        self.filter = text.to_string();
        self.cursor = self.cursor.min(self.processes().len().saturating_sub(1));
    }

    pub fn selected(&self) -> Option<&GpuProcess> {
        self.processes().get(self.cursor).copied()
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
