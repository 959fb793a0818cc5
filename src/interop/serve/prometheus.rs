//! `/metrics` in the Prometheus text format (version 0.0.4): per-GPU gauges named and labelled
//! after the DCGM exporter's habits (gpu index, UUID, model name, and `Hostname`: this box's name,
//! `GANTRY_HOST` or the config's `host` where set, so a fleet tells two servers on one machine
//! apart; base units: bytes, watts, hertz), the runs running now, and what this server has
//! ingested since it started.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::Served;
use crate::gpu::source::GpuSample;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escape a label value: backslash, double quote and newline.
pub fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A number as the text format writes it (NaN and ±Inf included).
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(val));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", num(v));
    }
}

/// The per-GPU gauges: (name, help, value getter).
type Gauge = (&'static str, &'static str, fn(&GpuSample) -> Option<f64>);

const GPU_GAUGES: &[Gauge] = &[
    ("gantry_gpu_utilization_percent", "SM utilisation", |g| {
        g.util.map(f64::from)
    }),
    (
        "gantry_gpu_memory_utilization_percent",
        "Memory controller utilisation",
        |g| g.mem_util.map(f64::from),
    ),
    (
        "gantry_gpu_memory_used_bytes",
        "Device memory in use",
        |g| g.mem_used.map(|b| b as f64),
    ),
    (
        "gantry_gpu_memory_total_bytes",
        "Device memory in all",
        |g| g.mem_total.map(|b| b as f64),
    ),
    ("gantry_gpu_temperature_celsius", "GPU temperature", |g| {
        g.temp.map(f64::from)
    }),
    ("gantry_gpu_power_watts", "Power draw", |g| g.power),
    (
        "gantry_gpu_power_limit_watts",
        "Enforced power limit",
        |g| g.power_limit,
    ),
    ("gantry_gpu_sm_clock_hertz", "SM clock", |g| {
        g.sm_clock.map(|m| f64::from(m) * 1e6)
    }),
    ("gantry_gpu_sm_clock_max_hertz", "Highest SM clock", |g| {
        g.sm_clock_max.map(|m| f64::from(m) * 1e6)
    }),
    ("gantry_gpu_memory_clock_hertz", "Memory clock", |g| {
        g.mem_clock.map(|m| f64::from(m) * 1e6)
    }),
    ("gantry_gpu_fan_percent", "Fan speed", |g| {
        g.fan.map(f64::from)
    }),
    (
        "gantry_gpu_pcie_rx_bytes_per_second",
        "PCIe receive throughput",
        |g| g.pcie_rx.map(|k| f64::from(k) * 1024.0),
    ),
    (
        "gantry_gpu_pcie_tx_bytes_per_second",
        "PCIe transmit throughput",
        |g| g.pcie_tx.map(|k| f64::from(k) * 1024.0),
    ),
    (
        "gantry_gpu_ecc_uncorrected_errors",
        "Volatile uncorrected ECC errors",
        |g| g.ecc_uncorrected.map(|e| e as f64),
    ),
];

/// The whole page.
pub async fn render(s: &Served) -> anyhow::Result<String> {
    let running = s.store.count_running().await?;
    let snap = s
        .gpu
        .lock()
        .map(|g| g.clone())
        .unwrap_or_else(|_| Err("the GPU sampler failed".into()));
    let mut out = String::with_capacity(4096);
    let mut f = Family { out: &mut out };

    f.head(
        "gantry_runs_running",
        "gauge",
        "Runs in the workspace whose status is running",
    );
    f.sample("gantry_runs_running", &[], running as f64);

    // The latest value and step of each metric of each running run, whatever logs it: a
    // dashboard can chart training beside the GPUs it runs on.
    let mut live = Vec::new();
    for run in s
        .store
        .runs_with_status(crate::domain::RunStatus::Running)
        .await?
    {
        live.push(s.store.run_record(&run.id).await?.0);
    }
    for (name, help, step) in [
        (
            "gantry_run_metric",
            "The last value of each metric of each running run",
            false,
        ),
        (
            "gantry_run_metric_step",
            "The step of that last value",
            true,
        ),
    ] {
        f.head(name, "gauge", help);
        for rec in &live {
            let r = &rec.run;
            for m in rec.metrics.values() {
                let v = if step {
                    m.last_step.map(|x| x as f64)
                } else {
                    m.last
                };
                if let Some(v) = v {
                    let labels = [
                        ("run_id", r.id.as_str()),
                        ("run", r.name.as_str()),
                        ("experiment", r.experiment.as_str()),
                        ("key", m.key.as_str()),
                    ];
                    f.sample(name, &labels, v);
                }
            }
        }
    }

    // The newest result of each benchmark on each device, from the bench history: a rule can
    // alert on a GPU that benchmarks slower than it used to.
    let history = s.store.bench_history(None).await?;
    let mut groups: Vec<(&str, &str, &crate::bench::Spec)> = Vec::new();
    for h in &history {
        let k = (h.device_uuid.as_str(), h.host.as_str(), &h.spec);
        if !groups.contains(&k) {
            groups.push(k);
        }
    }
    let mut newest = Vec::new();
    for (uuid, host, spec) in groups {
        let runs: Vec<&crate::store::StoredBench> = history
            .iter()
            .filter(|h| h.device_uuid == uuid && h.host == host && &h.spec == spec)
            .collect();
        let Some(last) = runs.last() else { continue };
        let before: Vec<f64> = runs[..runs.len() - 1]
            .iter()
            .map(|h| h.stats.median)
            .collect();
        let drop = crate::bench::drop_below(last.stats.median, last.unit, &before);
        newest.push((*last, spec.label(), drop));
    }
    for (name, help) in [
        (
            "gantry_bench_result",
            "The median of the newest result of each benchmark on each device, in its unit",
        ),
        (
            "gantry_bench_result_timestamp_seconds",
            "When that result was measured",
        ),
        (
            "gantry_bench_below_median",
            "1 when that result is more than 5% worse than the median of the device's earlier ones",
        ),
    ] {
        f.head(name, "gauge", help);
        for (h, label, drop) in &newest {
            let labels = [
                ("device", h.device.as_str()),
                ("uuid", h.device_uuid.as_str()),
                ("host", h.host.as_str()),
                ("benchmark", label.as_str()),
                ("unit", h.unit.as_str()),
            ];
            let v = match name {
                "gantry_bench_result" => h.stats.median,
                "gantry_bench_result_timestamp_seconds" => h.started_ms as f64 / 1000.0,
                _ => f64::from(u8::from(drop.is_some())),
            };
            f.sample(name, &labels, v);
        }
    }

    let c = &s.counters;
    for (name, help, v) in [
        (
            "gantry_ingest_points_total",
            "Metric points stored through the API",
            &c.points,
        ),
        (
            "gantry_ingest_params_total",
            "Params stored through the API",
            &c.params,
        ),
        (
            "gantry_ingest_tags_total",
            "Tags stored through the API",
            &c.tags,
        ),
        (
            "gantry_ingest_runs_created_total",
            "Runs created through the API",
            &c.runs_created,
        ),
    ] {
        f.head(name, "counter", help);
        f.sample(name, &[], v.load(Ordering::Relaxed) as f64);
    }
    let requests = c.requests.lock().map(|m| m.clone()).unwrap_or_default();
    f.head(
        "gantry_http_requests_total",
        "counter",
        "MLflow API requests answered, by endpoint and HTTP status",
    );
    for ((endpoint, status), n) in &requests {
        f.sample(
            "gantry_http_requests_total",
            &[("endpoint", endpoint), ("status", &status.to_string())],
            *n as f64,
        );
    }

    // Who holds each GPU: the runs owning its processes, and the processes' users and commands.
    let (owners, about) = match &snap {
        Ok(snap) => {
            let owners = crate::capture::owners::owners(&s.store, snap).await;
            let pids: Vec<u32> = snap.processes.iter().map(|p| p.pid).collect();
            let about = crate::capture::procs::Describer::default().describe(&pids);
            (owners, about)
        }
        Err(_) => Default::default(),
    };
    let mut f = Family { out: &mut out };
    f.head(
        "gantry_gpu_up",
        "gauge",
        "1 when GPUs could be sampled, 0 when not (no driver, no permission)",
    );
    match &snap {
        Ok(snap) => {
            f.sample("gantry_gpu_up", &[], 1.0);
            f.head(
                "gantry_gpu_info",
                "gauge",
                "One per GPU, with its driver and CUDA version as labels",
            );
            let driver = snap.driver.clone().unwrap_or_default();
            let cuda = snap.cuda.clone().unwrap_or_default();
            for g in &snap.gpus {
                let idx = g.index.to_string();
                f.sample(
                    "gantry_gpu_info",
                    &[
                        ("gpu", &idx),
                        ("uuid", &g.uuid),
                        ("name", &g.name),
                        ("bus_id", &g.bus_id),
                        ("driver", &driver),
                        ("cuda", &cuda),
                        ("Hostname", &crate::host::hostname()),
                    ],
                    1.0,
                );
            }
            let host = crate::host::hostname();
            for (name, help, get) in GPU_GAUGES {
                let values: Vec<(&GpuSample, f64)> = snap
                    .gpus
                    .iter()
                    .filter_map(|g| Some((g, get(g)?)))
                    .collect();
                if values.is_empty() {
                    continue;
                }
                f.head(name, "gauge", help);
                for (g, v) in values {
                    let idx = g.index.to_string();
                    let labels = [
                        ("gpu", idx.as_str()),
                        ("uuid", &g.uuid),
                        ("name", &g.name),
                        ("Hostname", &host),
                    ];
                    f.sample(name, &labels, v);
                }
            }
            f.head("gantry_gpu_processes", "gauge", "Processes using each GPU");
            for g in &snap.gpus {
                let idx = g.index.to_string();
                let n = snap.processes.iter().filter(|p| p.gpu == g.index).count();
                let labels = [
                    ("gpu", idx.as_str()),
                    ("uuid", &g.uuid),
                    ("name", &g.name),
                    ("Hostname", &host),
                ];
                f.sample("gantry_gpu_processes", &labels, n as f64);
            }
            // Each process on a GPU: its pid, user and command, and the run that owns it, so a
            // fleet shows who holds each GPU.
            f.head(
                "gantry_gpu_process_memory_bytes",
                "gauge",
                "GPU memory of each process on each GPU, with its pid, user, command and run",
            );
            for p in &snap.processes {
                let Some(g) = snap.gpus.iter().find(|g| g.index == p.gpu) else {
                    continue;
                };
                let (idx, pid) = (g.index.to_string(), p.pid.to_string());
                let info = about.get(&p.pid);
                let (run_id, run) = owners
                    .get(&p.pid)
                    .map_or(("", ""), |(id, name)| (id.as_str(), name.as_str()));
                let labels = [
                    ("gpu", idx.as_str()),
                    ("uuid", &g.uuid),
                    ("Hostname", &host),
                    ("pid", &pid),
                    ("user", info.map_or("", |i| i.user.as_str())),
                    ("command", info.map_or("", |i| i.command.as_str())),
                    ("run_id", run_id),
                    ("run", run),
                ];
                f.sample(
                    "gantry_gpu_process_memory_bytes",
                    &labels,
                    p.mem_used.map_or(0.0, |m| m as f64),
                );
            }
            f.head(
                "gantry_gpu_throttle_reason",
                "gauge",
                "1 for each reason a GPU's clocks are held down now (NVML's clock event reasons)",
            );
            for g in &snap.gpus {
                let idx = g.index.to_string();
                for r in &g.throttle {
                    let labels = [
                        ("gpu", idx.as_str()),
                        ("uuid", &g.uuid),
                        ("name", &g.name),
                        ("Hostname", &host),
                        ("reason", r),
                    ];
                    f.sample("gantry_gpu_throttle_reason", &labels, 1.0);
                }
            }
        }
        Err(why) => {
            f.sample("gantry_gpu_up", &[], 0.0);
            tracing::debug!("metrics: no GPUs: {why}");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
    }

    #[test]
    fn special_numbers_use_the_format_words() {
        assert_eq!(num(f64::NAN), "NaN");
        assert_eq!(num(f64::INFINITY), "+Inf");
        assert_eq!(num(2.5), "2.5");
        assert_eq!(num(1e6), "1000000");
    }
}
