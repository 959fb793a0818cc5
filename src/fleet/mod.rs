//! The fleet: the GPUs of many boxes, read from the engines that already collect them. A
//! Prometheus server's HTTP API (`prometheus.rs`) or exporters' `/metrics` pages read directly
//! (`scrape.rs`), each carrying dcgm-exporter's gauges (`DCGM_FI_DEV_*`) or `gantry serve`'s
//! (`gantry_gpu_*`). Both give Prometheus samples; `hosts_from_samples` groups them into hosts
//! and GPUs (`GpuSample`, as the local GPUs tab shows them), so every source reads the same.
//!
//! A host is named by the exporter's `Hostname` label (dcgm-exporter's, and `gantry serve`'s: the
//! box's name, `GANTRY_HOST` or the config's `host` where set), else by Prometheus's `instance`
//! label, else by the scrape target. Two endpoints that report the same name are two hosts, shown
//! as `NAME@ENDPOINT`: two exporters on one machine never merge.

pub mod prometheus;
pub mod scrape;
pub mod ssh;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::{GpuSample, GpuSnapshot};
use crate::interop::promtext::Sample;

/// One host of the fleet as its source last saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Host {
    pub name: String,
    /// Where it was read: "prometheus http://prom:9090 (instance gpu01:9400)", "gpu01:9400".
    pub source: String,
    pub gpus: Vec<FleetGpu>,
    /// When its data was measured (the newest sample's time where the source gives one, else
    /// when it was read), ms since the epoch; None when it never answered.
    pub seen_ms: Option<i64>,
    /// Why the last read failed; its GPUs are then those of the last good read, if any.
    pub error: Option<String>,
}

/// A GPU of a fleet host: its readings, and what uses it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FleetGpu {
    #[serde(flatten)]
    pub sample: GpuSample,
    /// Processes on it, where the exporter counts them (`gantry serve` does, dcgm-exporter not).
    pub processes: Option<u32>,
    /// The Slurm job (`hpc_job`) or Kubernetes pod (`namespace/pod`) holding it, from
    /// dcgm-exporter's labels.
    pub job: Option<String>,
    /// XID error code last reported (dcgm-exporter's `DCGM_FI_DEV_XID_ERRORS`), 0 for none.
    pub xid: Option<u64>,
    /// The driver and the CUDA version it supports, where the exporter says (`gantry serve`'s
    /// `gantry_gpu_info`, dcgm-exporter's `DCGM_FI_DRIVER_VERSION` label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda: Option<String>,
    /// The processes on it, where the exporter lists them (`gantry serve` does), in pid order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub procs: Vec<FleetProcess>,
}

/// A process on a fleet GPU, as its host's `gantry serve` tells: who runs it, and the run that
/// owns it (by the same rules as on this box).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FleetProcess {
    pub pid: u32,
    pub mem_used: Option<u64>,
    pub user: Option<String>,
    pub command: Option<String>,
    pub run_id: Option<String>,
    pub run: Option<String>,
}

/// When a GPU counts as free: no process and no job on it, memory and utilisation under these.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FreeRule {
    pub max_mem_used: u64,
    pub max_util: u32,
}

impl Default for FreeRule {
    fn default() -> Self {
        FreeRule {
            max_mem_used: 1 << 30,
            max_util: 5,
        }
    }
}

impl FleetGpu {
    /// Whether nobody uses it: no process (counted, or a run the store says is on it), no job,
    /// memory and utilisation under the rule's
    /// bounds. A reading that is missing counts against it (free must be known).
    pub fn is_free(&self, rule: &FreeRule) -> bool {
        let s = &self.sample;
        self.processes.unwrap_or(0) == 0
            && self.procs.is_empty()
            && self.job.is_none()
            && s.mem_used.is_some_and(|m| m <= rule.max_mem_used)
            && s.util.is_some_and(|u| u <= rule.max_util)
    }

    /// Device memory not in use, bytes.
    pub fn mem_free(&self) -> Option<u64> {
        Some(self.sample.mem_total?.saturating_sub(self.sample.mem_used?))
    }
}

impl Host {
    /// How old its data is at `now_ms`, in ms.
    pub fn age_ms(&self, now_ms: i64) -> Option<i64> {
        self.seen_ms.map(|s| (now_ms - s).max(0))
    }
}

/// What a gauge sets on a GPU: a metric name and how its value lands in the GPU.
type Setter = fn(&mut FleetGpu, f64);

/// Every gauge read, dcgm-exporter's and `gantry serve`'s, with its unit converted to the GPU
/// sample's (percent, bytes, degrees C, watts, MHz, KB/s).
pub const GAUGES: &[(&str, Setter)] = &[
    ("DCGM_FI_DEV_GPU_UTIL", |g, v| {
        g.sample.util = Some(v as u32)
    }),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", |g, v| {
        g.sample.mem_util = Some(v as u32)
    }),
    ("DCGM_FI_DEV_FB_USED", |g, v| {
        g.sample.mem_used = Some((v * MIB) as u64);
        add_total(g, v * MIB);
    }),
    ("DCGM_FI_DEV_FB_FREE", |g, v| add_total(g, v * MIB)),
    ("DCGM_FI_DEV_FB_RESERVED", |g, v| add_total(g, v * MIB)),
    ("DCGM_FI_DEV_GPU_TEMP", |g, v| {
        g.sample.temp = Some(v as u32)
    }),
    ("DCGM_FI_DEV_POWER_USAGE", |g, v| g.sample.power = Some(v)),
    ("DCGM_FI_DEV_POWER_MGMT_LIMIT", |g, v| {
        g.sample.power_limit = Some(v)
    }),
    ("DCGM_FI_DEV_SM_CLOCK", |g, v| {
        g.sample.sm_clock = Some(v as u32)
    }),
    ("DCGM_FI_DEV_MEM_CLOCK", |g, v| {
        g.sample.mem_clock = Some(v as u32)
    }),
    ("DCGM_FI_DEV_XID_ERRORS", |g, v| g.xid = Some(v as u64)),
    ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", |g, v| {
        g.sample.ecc_uncorrected = Some(v as u64)
    }),
    ("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", set_reasons),
    ("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", set_reasons),
    ("gantry_gpu_utilization_percent", |g, v| {
        g.sample.util = Some(v as u32)
    }),
    ("gantry_gpu_memory_utilization_percent", |g, v| {
        g.sample.mem_util = Some(v as u32)
    }),
    ("gantry_gpu_memory_used_bytes", |g, v| {
        g.sample.mem_used = Some(v as u64)
    }),
    ("gantry_gpu_memory_total_bytes", |g, v| {
        g.sample.mem_total = Some(v as u64)
    }),
    ("gantry_gpu_temperature_celsius", |g, v| {
        g.sample.temp = Some(v as u32)
    }),
    ("gantry_gpu_power_watts", |g, v| g.sample.power = Some(v)),
    ("gantry_gpu_power_limit_watts", |g, v| {
        g.sample.power_limit = Some(v)
    }),
    ("gantry_gpu_sm_clock_hertz", |g, v| {
        g.sample.sm_clock = Some((v / 1e6).round() as u32)
    }),
    ("gantry_gpu_sm_clock_max_hertz", |g, v| {
        g.sample.sm_clock_max = Some((v / 1e6).round() as u32)
    }),
    ("gantry_gpu_memory_clock_hertz", |g, v| {
        g.sample.mem_clock = Some((v / 1e6).round() as u32)
    }),
    ("gantry_gpu_fan_percent", |g, v| {
        g.sample.fan = Some(v as u32)
    }),
    ("gantry_gpu_pcie_rx_bytes_per_second", |g, v| {
        g.sample.pcie_rx = Some((v / 1024.0).round() as u32)
    }),
    ("gantry_gpu_pcie_tx_bytes_per_second", |g, v| {
        g.sample.pcie_tx = Some((v / 1024.0).round() as u32)
    }),
    ("gantry_gpu_ecc_uncorrected_errors", |g, v| {
        g.sample.ecc_uncorrected = Some(v as u64)
    }),
    ("gantry_gpu_processes", |g, v| g.processes = Some(v as u32)),
];

/// `gantry serve`'s clock event reasons: one sample a reason, named by its `reason` label.
const REASON: &str = "gantry_gpu_throttle_reason";

/// `gantry serve`'s processes: one sample a process, its memory, labelled with pid, user,
/// command and run.
const PROCESS: &str = "gantry_gpu_process_memory_bytes";

const MIB: f64 = 1024.0 * 1024.0;

fn add_total(g: &mut FleetGpu, bytes: f64) {
    g.sample.mem_total = Some(g.sample.mem_total.unwrap_or(0) + bytes as u64);
}

/// NVML's clock event reasons (a bitmask) in words, as the local GPUs tab gives them.
fn set_reasons(g: &mut FleetGpu, v: f64) {
    use nvml_wrapper::bitmasks::device::ThrottleReasons;
    g.sample.throttle =
        crate::gpu::source::throttle_words(ThrottleReasons::from_bits_truncate(v as u64))
            .into_iter()
            .filter(|w| w != "idle")
            .collect();
}

/// Whether a sample is one of the gauges read.
pub fn is_read(name: &str) -> bool {
    GAUGES.iter().any(|(n, _)| *n == name)
        || name == "gantry_gpu_info"
        || name == REASON
        || name == PROCESS
}

/// Samples read from one endpoint (`endpoint` names it: the scrape target, or the `instance`
/// label under Prometheus), grouped into hosts by their `Hostname` label (else `fallback`), and
/// into GPUs by UUID (else index). GPUs in index order; samples of MIG instances (with a
/// `GPU_I_ID` label) are left to their parent.
pub fn hosts_from_samples<'a>(
    samples: impl IntoIterator<Item = &'a Sample>,
    fallback: &str,
) -> BTreeMap<String, Vec<FleetGpu>> {
    let mut hosts: BTreeMap<String, BTreeMap<String, FleetGpu>> = BTreeMap::new();
    for s in samples {
        if !is_read(&s.name) {
            continue;
        }
        let set = GAUGES.iter().find(|(n, _)| *n == s.name).map(|(_, f)| *f);
        if s.label("GPU_I_ID").is_some() {
            continue;
        }
        let host = s.label("Hostname").unwrap_or(fallback).to_string();
        let uuid = s.label("UUID").or_else(|| s.label("uuid")).unwrap_or("");
        let index = s.label("gpu").and_then(|i| i.parse::<u32>().ok());
        let key = if uuid.is_empty() {
            format!("#{}", index.unwrap_or(0))
        } else {
            uuid.to_string()
        };
        let g = hosts.entry(host).or_default().entry(key).or_default();
        g.sample.uuid = uuid.to_string();
        if let Some(i) = index {
            g.sample.index = i;
        }
        if let Some(m) = s.label("modelName").or_else(|| s.label("name")) {
            g.sample.name = m.to_string();
        }
        if let Some(b) = s.label("pci_bus_id").or_else(|| s.label("bus_id")) {
            g.sample.bus_id = b.to_string();
        }
        let job = s
            .label("hpc_job")
            .filter(|j| !j.is_empty())
            .map(str::to_string)
            .or_else(|| {
                let pod = s.label("pod").filter(|p| !p.is_empty())?;
                Some(match s.label("namespace").filter(|n| !n.is_empty()) {
                    Some(ns) => format!("{ns}/{pod}"),
                    None => pod.to_string(),
                })
            });
        if job.is_some() {
            g.job = job;
        }
        let text = |k: &str| s.label(k).filter(|v| !v.is_empty()).map(str::to_string);
        if let Some(d) = text("driver").or_else(|| text("DCGM_FI_DRIVER_VERSION")) {
            g.driver = Some(d);
        }
        if let Some(c) = text("cuda") {
            g.cuda = Some(c);
        }
        match set {
            Some(set) if s.value.is_finite() => set(g, s.value),
            _ => {}
        }
        if s.name == PROCESS
            && let Some(pid) = s.label("pid").and_then(|p| p.parse::<u32>().ok())
            && !g.procs.iter().any(|p| p.pid == pid)
        {
            let text = |k: &str| s.label(k).filter(|v| !v.is_empty()).map(str::to_string);
            g.procs.push(FleetProcess {
                pid,
                mem_used: (s.value.is_finite() && s.value >= 0.0).then_some(s.value as u64),
                user: text("user"),
                command: text("command"),
                run_id: text("run_id"),
                run: text("run"),
            });
        }
        // An idle GPU's clocks are down for want of work: no throttling.
        if s.name == REASON
            && s.value > 0.0
            && let Some(r) = s.label("reason")
            && r != "idle"
            && !g.sample.throttle.iter().any(|t| t == r)
        {
            g.sample.throttle.push(r.to_string());
        }
    }
    hosts
        .into_iter()
        .map(|(h, gpus)| {
            let mut gpus: Vec<FleetGpu> = gpus.into_values().collect();
            gpus.sort_by_key(|g| g.sample.index);
            for g in &mut gpus {
                g.procs.sort_by_key(|p| p.pid);
            }
            (h, gpus)
        })
        .collect()
}

/// Whether a run recorded on host `run_host` ran on the fleet host `host` (`NAME` or
/// `NAME@ENDPOINT`): the same name, ignoring case, or the same short name (`gpu01` and
/// `gpu01.lab.example`).
pub fn same_host(host: &str, run_host: &str) -> bool {
    let host = host.split_once('@').map_or(host, |(h, _)| h);
    let short = |h: &str| h.split('.').next().unwrap_or(h).to_ascii_lowercase();
    host.eq_ignore_ascii_case(run_host) || (!run_host.is_empty() && short(host) == short(run_host))
}

/// Name the runs holding GPUs whose exporter lists no processes (dcgm-exporter): a running run
/// of that host seen on the GPU's UUID (`running`: every running run; `gpus`: (run id, UUID), as
/// the store keeps them) becomes a process of the GPU, with its pid, user, command and run.
pub fn attach_runs(hosts: &mut [Host], running: &[crate::domain::Run], gpus: &[(String, String)]) {
    for h in hosts.iter_mut() {
        for g in h.gpus.iter_mut() {
            if !g.procs.is_empty() || g.sample.uuid.is_empty() {
                continue;
            }
            for (run_id, _) in gpus.iter().filter(|(_, u)| *u == g.sample.uuid) {
                let Some(r) = running
                    .iter()
                    .find(|r| &r.id == run_id && same_host(&h.name, &r.host))
                else {
                    continue;
                };
                let Some(pid) = r.pid.and_then(|p| u32::try_from(p).ok()) else {
                    continue;
                };
                g.procs.push(FleetProcess {
                    pid,
                    mem_used: None,
                    user: Some(r.user.clone()),
                    command: Some(r.command.join(" ")),
                    run_id: Some(r.id.clone()),
                    run: Some(r.name.clone()),
                });
            }
        }
    }
}

/// Hosts read from several endpoints, each named by its own hosts' names; a name two endpoints
/// report becomes `NAME@ENDPOINT` on each.
pub fn merge_endpoints(
    reads: Vec<(String, BTreeMap<String, Vec<FleetGpu>>)>,
) -> Vec<(String, String, Vec<FleetGpu>)> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, hosts) in &reads {
        for h in hosts.keys() {
            *count.entry(h.as_str()).or_default() += 1;
        }
    }
    let shared: Vec<String> = count
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(h, _)| h.to_string())
        .collect();
    let mut out = Vec::new();
    for (endpoint, hosts) in reads {
        for (name, gpus) in hosts {
            let name = if shared.contains(&name) {
                format!("{name}@{endpoint}")
            } else {
                name
            };
            out.push((name, endpoint.clone(), gpus));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The free GPUs of `hosts` with at least `min_mem` bytes of memory free: (host, GPU), most
/// memory free first.
pub fn free_gpus<'a>(
    hosts: &'a [Host],
    rule: &FreeRule,
    min_mem: u64,
) -> Vec<(&'a Host, &'a FleetGpu)> {
    let mut out: Vec<(&Host, &FleetGpu)> = hosts
        .iter()
        .filter(|h| h.error.is_none())
        .flat_map(|h| h.gpus.iter().map(move |g| (h, g)))
        .filter(|(_, g)| g.is_free(rule) && g.mem_free().is_some_and(|m| m >= min_mem))
        .collect();
    out.sort_by(|a, b| {
        b.1.mem_free()
            .cmp(&a.1.mem_free())
            .then_with(|| a.0.name.cmp(&b.0.name))
            .then_with(|| a.1.sample.index.cmp(&b.1.sample.index))
    });
    out
}

/// Where the fleet is read, and how long each source may take. Clones share the ssh
/// connections, which open at the first read and close with the last clone.
#[derive(Debug, Clone)]
pub struct Sources {
    pub prometheus: Option<(String, prometheus::Auth)>,
    pub scrape: Vec<String>,
    pub scrape_token: Option<String>,
    pub ssh: Option<ssh::SshConfig>,
    pub timeout: std::time::Duration,
    pool: std::sync::Arc<std::sync::OnceLock<ssh::Pool>>,
}

impl Sources {
    pub fn new(
        prometheus: Option<(String, prometheus::Auth)>,
        scrape: Vec<String>,
        scrape_token: Option<String>,
        ssh: Option<ssh::SshConfig>,
        timeout: std::time::Duration,
    ) -> Sources {
        Sources {
            prometheus,
            scrape,
            scrape_token,
            ssh: ssh.filter(|s| !s.hosts.is_empty()),
            timeout,
            pool: Default::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.prometheus.is_none() && self.scrape.is_empty() && self.ssh.is_none()
    }

    /// In words: "prometheus http://prom:9090 · scrape 2 targets".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some((url, _)) = &self.prometheus {
            parts.push(format!("prometheus {url}"));
        }
        match self.scrape.len() {
            0 => {}
            1 => parts.push(format!("scrape {}", self.scrape[0])),
            n => parts.push(format!("scrape {n} targets")),
        }
        match self.ssh.as_ref().map_or(&[][..], |s| &s.hosts[..]) {
            [] => {}
            [one] => parts.push(format!("ssh {one}")),
            many => parts.push(format!("ssh {} hosts", many.len())),
        }
        parts.join(" · ")
    }

    /// Read every source (blocking: HTTP on threads of its own, each with the timeout). A source
    /// that fails is a host with its error; the others are read all the same.
    pub fn read(&self, now_ms: i64) -> Vec<Host> {
        let mut hosts = Vec::new();
        if let Some((url, auth)) = &self.prometheus {
            match prometheus::read(url, auth, self.timeout) {
                Ok(h) => hosts.extend(h),
                Err(why) => hosts.push(Host {
                    name: url.clone(),
                    source: format!("prometheus {url}"),
                    gpus: Vec::new(),
                    seen_ms: None,
                    error: Some(why),
                }),
            }
        }
        if !self.scrape.is_empty() {
            hosts.extend(scrape::read(
                &self.scrape,
                self.scrape_token.as_deref(),
                self.timeout,
                now_ms,
            ));
        }
        if let Some(cfg) = &self.ssh {
            let pool = self.pool.get_or_init(|| ssh::Pool::start(cfg.clone()));
            for mut h in pool.hosts(now_ms) {
                // A host another source already names is a second view of it: kept apart.
                if hosts.iter().any(|o| o.name == h.name) {
                    h.name = format!("{}@ssh", h.name);
                }
                hosts.push(h);
            }
        }
        hosts
    }
}

impl Sources {
    /// Whether `host` has a history to fetch: it was read through this Prometheus server.
    pub fn has_history(&self, host: &Host) -> bool {
        self.instance_of(host).is_some()
    }

    /// The Prometheus instance a host was read from (its source says
    /// `prometheus URL (instance INSTANCE)`).
    fn instance_of<'a>(&self, host: &'a Host) -> Option<(&str, &prometheus::Auth, &'a str)> {
        let (url, auth) = self.prometheus.as_ref()?;
        let inst = host
            .source
            .strip_prefix(&format!("prometheus {url} (instance "))?
            .strip_suffix(')')?;
        Some((url, auth, inst))
    }

    /// The last hour of `host`'s charted readings, from Prometheus (`prometheus::history`):
    /// snapshots, oldest first. An error says why, for a person.
    pub fn history(&self, host: &Host, now_ms: i64) -> Result<Vec<GpuSnapshot>, String> {
        let Some((url, auth, inst)) = self.instance_of(host) else {
            return Err(format!("{}: no history to fetch", host.name));
        };
        let points = prometheus::history(url, auth, self.timeout, inst, &host.name, now_ms)?;
        Ok(points
            .into_iter()
            .map(|(t, gpus)| GpuSnapshot {
                time_ms: t,
                gpus: gpus.into_iter().map(|g| g.sample).collect(),
                ..GpuSnapshot::default()
            })
            .collect())
    }
}

/// What a table shows of a host: its GPUs and model, mean utilisation, memory, power, the
/// hottest GPU, free GPUs, jobs, and what is wrong (`stale: why` first, then throttling and
/// errors).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub gpus: usize,
    /// The first GPU's model, without "NVIDIA ".
    pub model: String,
    pub util: Option<f64>,
    /// Memory (used, total), bytes.
    pub mem: Option<(u64, u64)>,
    pub power: Option<f64>,
    pub temp: Option<u32>,
    pub free: usize,
    /// Who holds its GPUs: the runs owning their processes, the Slurm jobs or pods, and the
    /// users of processes no run owns.
    pub who: Vec<String>,
    pub stale: bool,
    /// Throttling and errors, in words.
    pub trouble: Vec<String>,
}

impl Summary {
    /// The note a table prints: `stale: why`, then the trouble.
    pub fn note(&self, error: Option<&str>) -> String {
        error
            .map(|e| format!("stale: {e}"))
            .into_iter()
            .chain(self.trouble.iter().cloned())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Host {
    pub fn summary(&self, rule: &FreeRule) -> Summary {
        let g = &self.gpus;
        let util: Vec<f64> = g
            .iter()
            .filter_map(|x| x.sample.util.map(f64::from))
            .collect();
        let used: u64 = g.iter().filter_map(|x| x.sample.mem_used).sum();
        let total: u64 = g.iter().filter_map(|x| x.sample.mem_total).sum();
        let mut throttle: Vec<&str> = g
            .iter()
            .flat_map(|x| x.sample.throttle.iter().map(String::as_str))
            .filter(|t| *t != "idle")
            .collect();
        throttle.sort_unstable();
        throttle.dedup();
        let mut trouble = Vec::new();
        if !throttle.is_empty() {
            trouble.push(format!("throttled: {}", throttle.join(", ")));
        }
        let ecc: u64 = g.iter().filter_map(|x| x.sample.ecc_uncorrected).sum();
        if ecc > 0 {
            trouble.push(format!("{ecc} uncorrected ECC errors"));
        }
        if let Some(x) = g.iter().filter_map(|x| x.xid.filter(|&v| v > 0)).max() {
            trouble.push(format!("XID {x}"));
        }
        let mut who: Vec<String> = Vec::new();
        let procs = g.iter().flat_map(|x| x.procs.iter());
        for w in procs
            .clone()
            .filter_map(|p| p.run.clone())
            .chain(g.iter().filter_map(|x| x.job.clone()))
            .chain(
                procs
                    .filter(|p| p.run.is_none())
                    .filter_map(|p| p.user.clone()),
            )
        {
            if !who.contains(&w) {
                who.push(w);
            }
        }
        let stale = self.error.is_some();
        Summary {
            gpus: g.len(),
            model: g.first().map_or(String::new(), |x| {
                x.sample.name.trim_start_matches("NVIDIA ").to_string()
            }),
            util: (!util.is_empty()).then(|| util.iter().sum::<f64>() / util.len() as f64),
            mem: (total > 0).then_some((used, total)),
            power: g
                .iter()
                .any(|x| x.sample.power.is_some())
                .then(|| g.iter().filter_map(|x| x.sample.power).sum()),
            temp: g.iter().filter_map(|x| x.sample.temp).max(),
            // A stale host's GPUs are last known, not free now.
            free: if stale {
                0
            } else {
                g.iter().filter(|x| x.is_free(rule)).count()
            },
            who,
            stale,
            trouble,
        }
    }

    /// This box as a fleet host, from its own snapshot: a GPU with a process on it is in use.
    pub fn local(name: &str, snap: &crate::domain::GpuSnapshot) -> Host {
        Host {
            name: name.to_string(),
            source: "this box".into(),
            gpus: snap
                .gpus
                .iter()
                .map(|g| FleetGpu {
                    sample: g.clone(),
                    processes: Some(
                        snap.processes.iter().filter(|p| p.gpu == g.index).count() as u32
                    ),
                    ..FleetGpu::default()
                })
                .collect(),
            seen_ms: Some(snap.time_ms),
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_host_is_the_fleet_host_by_name_or_short_name() {
        assert!(same_host("gpu01", "gpu01"));
        assert!(same_host("GPU01", "gpu01.lab.example"));
        assert!(same_host("gpu01.lab.example@10.0.0.1:9400", "gpu01"));
        assert!(!same_host("gpu01", "gpu010"));
        assert!(!same_host("gpu1", "gpu10.lab"));
        assert!(!same_host("gpu01", ""));
    }
}
