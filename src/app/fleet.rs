//! The fleet in the GPUs tab: a host table (this box first, then every host the fleet sources
//! read), sorted and filtered; Enter opens a host as the tab shows a box (its GPU panels with a
//! history of their own), Esc comes back. Hosts arrive from the fleet reader's thread as
//! `Msg::Fleet`; a host whose read failed keeps its last GPUs, marked stale with the error.

use std::collections::BTreeMap;

use crate::domain::GpuSnapshot;
use crate::fleet::{FreeRule, Host};

use super::gpus::GpusState;

/// The host table's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FleetSort {
    #[default]
    Name,
    Util,
    Free,
    Temp,
    Age,
}

impl FleetSort {
    pub fn next(self) -> FleetSort {
        match self {
            FleetSort::Name => FleetSort::Util,
            FleetSort::Util => FleetSort::Free,
            FleetSort::Free => FleetSort::Temp,
            FleetSort::Temp => FleetSort::Age,
            FleetSort::Age => FleetSort::Name,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            FleetSort::Name => "name",
            FleetSort::Util => "utilisation",
            FleetSort::Free => "free GPUs",
            FleetSort::Temp => "temperature",
            FleetSort::Age => "age",
        }
    }
}

/// The host opened from the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// This box, as the GPUs tab shows it without a fleet.
    Local,
    Host(String),
}

/// A row of the host table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Row<'a> {
    Local,
    Host(&'a Host),
}

#[derive(Default)]
pub struct FleetView {
    /// What is read: "prometheus http://prom:9090 · scrape 2 targets".
    pub sources: String,
    pub hosts: Vec<Host>,
    /// When the last read came back; None before the first.
    pub read_ms: Option<i64>,
    pub cursor: usize,
    pub sort: FleetSort,
    /// Words every shown host must match (see `matches`).
    pub filter: String,
    pub open: Option<Opened>,
    pub rule: FreeRule,
    /// Each host as the tab shows a box: its GPUs and their history.
    pub boxes: BTreeMap<String, GpusState>,
    /// Hosts whose history was asked for (once each, when first opened).
    pub asked: std::collections::BTreeSet<String>,
}

impl FleetView {
    pub fn new(sources: String, rule: FreeRule) -> FleetView {
        FleetView {
            sources,
            rule,
            ..FleetView::default()
        }
    }

    /// A new read. A host that failed with no GPUs keeps what the last read had of it (found by
    /// its source: a Prometheus server that fails keeps all its hosts), marked with the error.
    pub fn update(&mut self, hosts: Vec<Host>, now_ms: i64) {
        let mut next: Vec<Host> = Vec::new();
        for h in hosts {
            if h.error.is_some() && h.gpus.is_empty() {
                let before: Vec<Host> = self
                    .hosts
                    .iter()
                    .filter(|p| !p.gpus.is_empty())
                    .filter(|p| {
                        p.source == h.source || p.source.starts_with(&format!("{} (", h.source))
                    })
                    .cloned()
                    .collect();
                if !before.is_empty() {
                    next.extend(before.into_iter().map(|mut p| {
                        p.error = h.error.clone();
                        p
                    }));
                    continue;
                }
            }
            next.push(h);
        }
        next.sort_by(|a, b| a.name.cmp(&b.name));
        next.dedup_by(|a, b| a.name == b.name);
        for h in &next {
            if h.error.is_some() {
                continue;
            }
            // The processes its exporter lists, with their users, commands and runs, so the
            // opened host's process table reads as this box's does.
            let mut owners = std::collections::HashMap::new();
            let mut procs = std::collections::HashMap::new();
            let mut processes = Vec::new();
            for g in &h.gpus {
                for p in &g.procs {
                    processes.push(crate::domain::GpuProcess {
                        pid: p.pid,
                        gpu: g.sample.index,
                        mem_used: p.mem_used,
                        sm_util: None,
                    });
                    if let (Some(id), Some(run)) = (&p.run_id, &p.run) {
                        owners.insert(p.pid, (id.clone(), run.clone()));
                    }
                    procs.insert(
                        p.pid,
                        crate::domain::ProcInfo {
                            user: p.user.clone().unwrap_or_default(),
                            command: p.command.clone().unwrap_or_default(),
                            run_id: p.run_id.clone(),
                            ..Default::default()
                        },
                    );
                }
            }
            let snap = GpuSnapshot {
                time_ms: h.seen_ms.unwrap_or(now_ms),
                driver: h.gpus.iter().find_map(|g| g.driver.clone()),
                cuda: h.gpus.iter().find_map(|g| g.cuda.clone()),
                gpus: h.gpus.iter().map(|g| g.sample.clone()).collect(),
                processes,
            };
            let b = self.boxes.entry(h.name.clone()).or_default();
            b.source = h.source.clone();
            b.procs = procs;
            b.jobs = h
                .gpus
                .iter()
                .filter_map(|g| Some((g.sample.index, g.job.clone()?)))
                .collect();
            b.push(snap, owners);
        }
        self.boxes
            .retain(|name, _| next.iter().any(|h| &h.name == name));
        self.hosts = next;
        self.read_ms = Some(now_ms);
        self.clamp(now_ms);
    }

    /// Whether a host matches every word of the filter: its name, model, jobs, source or error,
    /// or `free` (it has a free GPU), `stale` (its last read failed), `throttled`.
    pub fn matches(&self, h: &Host) -> bool {
        self.filter.split_whitespace().all(|w| {
            let c = |s: &str| crate::filter::contains(s, w);
            c(&h.name)
                || c(&h.source)
                || h.error.as_deref().is_some_and(c)
                || h.gpus.iter().any(|g| {
                    c(&g.sample.name)
                        || g.job.as_deref().is_some_and(c)
                        || g.sample.throttle.iter().any(|t| c(t))
                })
                || (w.eq_ignore_ascii_case("free") && h.gpus.iter().any(|g| g.is_free(&self.rule)))
                || (w.eq_ignore_ascii_case("stale") && h.error.is_some())
                || (w.eq_ignore_ascii_case("throttled")
                    && h.gpus.iter().any(|g| !g.sample.throttle.is_empty()))
        })
    }

    /// The table's rows: this box first (unless the filter leaves it out), then the hosts that
    /// match, in the chosen order.
    pub fn rows(&self, now_ms: i64) -> Vec<Row<'_>> {
        let mut hosts: Vec<&Host> = self.hosts.iter().filter(|h| self.matches(h)).collect();
        let sum = |h: &Host| h.summary(&self.rule);
        match self.sort {
            FleetSort::Name => {}
            FleetSort::Util => hosts.sort_by(|a, b| {
                let u = |h: &Host| sum(h).util.unwrap_or(-1.0);
                u(b).total_cmp(&u(a))
            }),
            FleetSort::Free => hosts.sort_by_key(|h| std::cmp::Reverse(sum(h).free)),
            FleetSort::Temp => hosts.sort_by_key(|h| std::cmp::Reverse(sum(h).temp)),
            FleetSort::Age => {
                hosts.sort_by_key(|h| std::cmp::Reverse(h.age_ms(now_ms).unwrap_or(i64::MAX)))
            }
        }
        let local = self.filter.trim().is_empty()
            || self
                .filter
                .split_whitespace()
                .all(|w| crate::filter::contains("this box local", w));
        local
            .then_some(Row::Local)
            .into_iter()
            .chain(hosts.into_iter().map(Row::Host))
            .collect()
    }

    pub fn clamp(&mut self, now_ms: i64) {
        let n = self.rows(now_ms).len();
        self.cursor = self.cursor.min(n.saturating_sub(1));
    }

    /// The host under the cursor.
    pub fn selected(&self, now_ms: i64) -> Option<Row<'_>> {
        self.rows(now_ms).get(self.cursor).copied()
    }
}

/// The fleet's keys: open the host under the cursor, sort, filter, and back to the table.
pub(super) fn fleet_action(
    state: &mut super::State,
    action: super::Action,
    effects: Vec<super::Effect>,
) -> super::Outcome {
    use super::{Action, Modal, Outcome};
    let now = state.now_ms;
    let Some(f) = state.gpus.fleet.as_mut() else {
        if action == Action::FleetBack {
            state.help = false;
        }
        return Outcome {
            redraw: true,
            effects,
        };
    };
    let mut effects = effects;
    match action {
        Action::FleetOpen => {
            f.open = match f.selected(now) {
                Some(Row::Local) => Some(Opened::Local),
                Some(Row::Host(h)) => {
                    // The last hour, where its source keeps one (Prometheus), fetched once.
                    if !f.asked.contains(&h.name) {
                        effects.push(super::Effect::FleetHistory(Box::new(h.clone())));
                    }
                    Some(Opened::Host(h.name.clone()))
                }
                None => None,
            };
            if let Some(Opened::Host(name)) = &f.open {
                f.asked.insert(name.clone());
            }
        }
        Action::FleetSort => {
            f.sort = f.sort.next();
            state.toast = Some(format!("hosts sorted by {}", f.sort.label()));
        }
        Action::FleetFilter => {
            state.modal = Some(Modal::FleetFilter {
                before: f.filter.clone(),
            })
        }
        Action::FleetBack => {
            if state.help {
                state.help = false;
            } else {
                f.open = None;
            }
        }
        _ => {}
    }
    Outcome {
        redraw: true,
        effects,
    }
}

/// A host's history from its source: put before what the box has sampled since it opened.
pub(super) fn on_history(
    state: &mut super::State,
    host: &str,
    res: Result<Vec<GpuSnapshot>, String>,
) -> super::Outcome {
    match res {
        Ok(snaps) => {
            if let Some(b) = state
                .gpus
                .fleet
                .as_mut()
                .and_then(|f| f.boxes.get_mut(host))
            {
                b.prepend(&snaps);
            }
        }
        Err(why) => state.toast = Some(format!("no history for {host}: {why}")),
    }
    super::Outcome {
        redraw: state.tab == super::Tab::Gpus,
        effects: Vec::new(),
    }
}

/// A read of the fleet.
pub(super) fn on_msg(state: &mut super::State, hosts: Vec<Host>) -> super::Outcome {
    let now = state.now_ms;
    if let Some(f) = state.gpus.fleet.as_mut() {
        f.update(hosts, now);
    }
    super::Outcome {
        redraw: state.tab == super::Tab::Gpus,
        effects: Vec::new(),
    }
}
