//! The preflight check before `gantry run --preflight` starts its command: the GPUs the run will
//! use (CUDA_VISIBLE_DEVICES, else all), a bf16 GEMM, the device memory bandwidth and a
//! host-to-device copy on each within a time budget, their results against that GPU's history
//! (then stored in it), and NVML's facts (PCIe link against its maximum, retired memory, ECC
//! errors since the last check, XID errors). `domain::preflight` judges; docs/preflight.md.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::bench::{self, BenchBackend, BenchResult, DeviceInfo, Kind, Precision, Request, Spec};
use crate::domain::GpuSnapshot;
use crate::domain::preflight::{BenchCheck, GpuCheck, Mode, Outcome, Report, Settings, TAG};
use crate::gpu::source::{GpuSource, NvmlSource, ReplaySource};
use crate::store::Store;

/// What to check and how.
#[derive(Debug, Clone)]
pub struct Plan {
    pub mode: Mode,
    pub settings: Settings,
    /// Benchmark on the CPU backend instead of CUDA (a box without CUDA, and the tests).
    pub cpu: bool,
    /// Read the GPUs' facts from this recording instead of NVML.
    pub replay: Option<PathBuf>,
    /// CUDA_VISIBLE_DEVICES as the run will see it.
    pub visible: Option<String>,
}

/// Timed repetitions per benchmark: the fewest a median is kept from.
const REPS: usize = bench::MIN_REPS;

/// Run the check and judge it. Never fails: what could not be checked is a note in the report.
pub async fn check(store: &Store, plan: &Plan) -> Result<Report> {
    let started = Instant::now();
    let checked_ms = crate::domain::now_ms();
    let deadline = started + Duration::from_secs_f64(plan.settings.seconds);
    let p = plan.clone();
    let measured = tokio::task::spawn_blocking(move || measure(&p, deadline)).await?;
    let Measured {
        mut gpus,
        runs,
        backend,
        mut notes,
    } = measured;

    // Each result against the history of its device, then kept in it.
    let host = crate::host::hostname();
    let mut benchmarks = Vec::new();
    for (device, label, results) in &runs {
        let history = store.bench_history(Some(&device.uuid)).await?;
        for r in results {
            let past: Vec<f64> = history
                .iter()
                .filter(|h| h.spec == r.spec && h.check_ok != Some(false))
                .map(|h| h.stats.median)
                .collect();
            let c = r.conditions.as_ref();
            // Named as NVML and `gantry gpu` number it, not by CUDA's ordinal.
            let named = gpus
                .iter()
                .find(|g| g.uuid == device.uuid)
                .map_or_else(|| label.clone(), |g| format!("GPU {}", g.index));
            benchmarks.push(BenchCheck {
                device: named,
                name: device.name.clone(),
                uuid: device.uuid.clone(),
                label: r.spec.label(),
                unit: r.unit,
                value: r.stats.median,
                median: crate::domain::bench::median(&past),
                past: past.len(),
                correct: r.correct(),
                conditions: c.map(|c| c.brief()).filter(|b| !b.is_empty()),
                held_by: c.map(|c| c.throttle.join(", ")).unwrap_or_default(),
            });
            if let Err(e) = store.record_bench(checked_ms, &host, device, r).await {
                notes.push(format!(
                    "{label}: its result was not kept in the history: {e:#}"
                ));
            }
            // Under load the link trains to its best: that is the link judged.
            if let Some(g) = gpus.iter_mut().find(|g| g.uuid == device.uuid)
                && let Some(c) = c
            {
                g.pcie_gen = g.pcie_gen.max(c.pcie_gen);
                g.pcie_width = g.pcie_width.max(c.pcie_width);
            }
        }
    }
    for (uuid, ecc, retired) in last_facts(store).await? {
        if let Some(g) = gpus.iter_mut().find(|g| g.uuid == uuid) {
            g.ecc_before = ecc;
            g.retired_before = retired;
        }
    }
    let mut report = Report {
        checked_ms,
        mode: plan.mode,
        seconds: started.elapsed().as_secs_f64(),
        backend,
        outcome: Outcome::Passed,
        gpus,
        benchmarks,
        findings: Vec::new(),
        notes,
    };
    report.judge(&plan.settings);
    Ok(report)
}

/// What the blocking half measured: the GPUs' facts, each device's results, the backend used.
struct Measured {
    gpus: Vec<GpuCheck>,
    runs: Vec<(DeviceInfo, String, Vec<BenchResult>)>,
    backend: String,
    notes: Vec<String>,
}

fn measure(plan: &Plan, deadline: Instant) -> Measured {
    let mut notes = Vec::new();
    let mut source: Option<Box<dyn GpuSource>> = match &plan.replay {
        Some(path) => match ReplaySource::open(path, 0.0) {
            Ok(s) => Some(Box::new(s)),
            Err(why) => {
                notes.push(why);
                None
            }
        },
        None => match crate::error::contain("opening NVML", NvmlSource::open_light) {
            Ok(Ok(s)) => Some(Box::new(s)),
            Ok(Err(why)) | Err(why) => {
                notes.push(format!("no GPU facts: {why}"));
                None
            }
        },
    };
    let before = source.as_mut().and_then(|s| s.sample_now().ok());

    let mut runs = Vec::new();
    let backend;
    let cancel = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    {
        let (cancel, done) = (cancel.clone(), done.clone());
        // The budget: past it, the benchmark running stops and the rest are not run.
        let _ = std::thread::Builder::new()
            .name("gantry-preflight-budget".into())
            .spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if Instant::now() >= deadline {
                        cancel.store(true, Ordering::Relaxed);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
    }
    let mut cuda_uuids: Option<Vec<String>> = None;
    if plan.cpu {
        backend = "cpu".to_string();
        let mut b = bench::open_cpu();
        let specs = chosen(b.as_ref());
        let results = run(b.as_mut(), specs, &cancel);
        runs.push((b.device().clone(), "CPU".to_string(), results));
    } else {
        match crate::error::contain("listing the GPUs", bench::cuda::list_devices).and_then(|r| r) {
            Ok(list) if !list.is_empty() => {
                backend = "cuda".to_string();
                cuda_uuids = Some(list.iter().map(|(_, u)| u.clone()).collect());
                for (ordinal, (name, _)) in list.iter().enumerate() {
                    if cancel.load(Ordering::Relaxed) {
                        notes.push(format!(
                            "GPU {ordinal} ({name}): not benchmarked within {} s",
                            plan.settings.seconds
                        ));
                        continue;
                    }
                    match bench::open_backend(false, ordinal) {
                        Ok(mut b) => {
                            let specs = chosen(b.as_ref());
                            let monitor = bench::monitor_for(b.device());
                            let results = crate::error::contain("the preflight", || {
                                bench::run_specs(
                                    b.as_mut(),
                                    specs,
                                    REPS,
                                    monitor.as_ref(),
                                    &mut |_| {},
                                    &cancel,
                                )
                            })
                            .unwrap_or_else(|why| {
                                notes.push(format!("GPU {ordinal} ({name}): {why}"));
                                Vec::new()
                            });
                            runs.push((b.device().clone(), format!("GPU {ordinal}"), results));
                        }
                        Err(why) => notes.push(format!("GPU {ordinal} ({name}): {why}")),
                    }
                }
            }
            Ok(_) => {
                backend = "none".to_string();
                notes.push("CUDA not available: the driver sees no GPU".into());
            }
            Err(why) => {
                backend = "none".to_string();
                notes.push(why);
            }
        }
    }
    let timed_out = cancel.load(Ordering::Relaxed);
    done.store(true, Ordering::Relaxed);
    if timed_out {
        notes.push(format!(
            "the benchmarks ran out of their {} s; what finished is judged",
            plan.settings.seconds
        ));
    }
    let after = source.as_mut().and_then(|s| s.sample_now().ok());
    let gpus = facts(
        before.as_ref(),
        after.as_ref(),
        cuda_uuids.as_deref(),
        plan.visible.as_deref(),
    );
    Measured {
        gpus,
        runs,
        backend,
        notes,
    }
}

/// Run `specs`, a panic inside the libraries contained (what finished is kept).
fn run(b: &mut dyn BenchBackend, specs: Vec<Spec>, cancel: &AtomicBool) -> Vec<BenchResult> {
    crate::error::contain("the preflight", || {
        bench::run_specs(b, specs, REPS, None, &mut |_| {}, cancel)
    })
    .unwrap_or_default()
}

/// The preflight's benchmarks from those a backend offers: its GEMM at bf16 8192 (fp32 512 on
/// the CPU), the SM triad (else the first memory benchmark), and the largest pinned
/// host-to-device copy. The same specs as `gantry bench` runs, so the history is shared.
pub fn chosen(b: &dyn BenchBackend) -> Vec<Spec> {
    let cpu = b.device().backend == "cpu";
    let req = Request {
        only: vec![Kind::Gemm, Kind::Membw, Kind::H2d],
        sizes: vec![if cpu { 512 } else { 8192 }],
        precisions: vec![if cpu {
            Precision::Fp32
        } else {
            Precision::Bf16
        }],
        reps: REPS,
    };
    let all = b.specs(&req);
    let mut out: Vec<Spec> = all
        .iter()
        .filter(|s| s.kind == Kind::Gemm)
        .take(1)
        .cloned()
        .collect();
    let membw = all.iter().filter(|s| s.kind == Kind::Membw);
    if let Some(m) = membw
        .clone()
        .find(|s| s.variant == "sm-triad")
        .or(membw.clone().next())
    {
        out.push(m.clone());
    }
    if let Some(h) = all
        .iter()
        .filter(|s| s.kind == Kind::H2d && s.variant == "pinned")
        .max_by_key(|s| s.size)
    {
        out.push(h.clone());
    }
    out
}

/// The GPUs the run will use and their facts: CUDA's list where CUDA answered (it applies
/// CUDA_VISIBLE_DEVICES itself), else the NVML GPUs that `visible` names (indexes or UUID
/// prefixes), else all. Each GPU's link is the best of both readings; its XIDs those of both.
fn facts(
    before: Option<&GpuSnapshot>,
    after: Option<&GpuSnapshot>,
    cuda: Option<&[String]>,
    visible: Option<&str>,
) -> Vec<GpuCheck> {
    let Some(first) = before.or(after) else {
        return Vec::new();
    };
    let used: Vec<&crate::domain::GpuSample> = first
        .gpus
        .iter()
        .filter(|g| match (cuda, visible) {
            (Some(uuids), _) => uuids.contains(&g.uuid),
            (None, Some(v)) => visible_names(v, g.index, &g.uuid),
            (None, None) => true,
        })
        .collect();
    used.into_iter()
        .map(|g| {
            let later = after.and_then(|a| a.gpus.iter().find(|x| x.uuid == g.uuid));
            let mut xids = g.xids.clone();
            for x in later.map(|l| l.xids.clone()).unwrap_or_default() {
                if !xids.contains(&x) {
                    xids.push(x);
                }
            }
            let newest = later.unwrap_or(g);
            let others = first
                .processes_on(&g.uuid, g.index, std::process::id())
                .len();
            GpuCheck {
                index: g.index,
                name: g.name.clone(),
                uuid: g.uuid.clone(),
                pcie_gen: g.pcie_gen.max(later.and_then(|l| l.pcie_gen)),
                pcie_width: g.pcie_width.max(later.and_then(|l| l.pcie_width)),
                pcie_gen_max: g.pcie_gen_max,
                pcie_width_max: g.pcie_width_max,
                ecc_uncorrected: newest.ecc_uncorrected,
                retired_pages: newest.retired_pages,
                retired_pending: newest.retired_pending.or(g.retired_pending),
                xids,
                other_processes: Some(others),
                ..Default::default()
            }
        })
        .collect()
}

/// Whether CUDA_VISIBLE_DEVICES (`v`) names the GPU at NVML `index` with `uuid`: by index, or by
/// a UUID or its prefix. An empty value hides every GPU, as it does for CUDA.
pub fn visible_names(v: &str, index: u32, uuid: &str) -> bool {
    v.split(',').map(str::trim).any(|item| {
        if item.is_empty() {
            return false;
        }
        match item.parse::<u32>() {
            Ok(i) => i == index,
            Err(_) => {
                uuid.starts_with(item)
                    || uuid
                        .strip_prefix("GPU-")
                        .is_some_and(|u| u.starts_with(item))
            }
        }
    })
}

/// Each GPU's ECC count and retired memory at its latest preflight, from the reports kept with
/// runs: (UUID, ECC, retired).
async fn last_facts(store: &Store) -> Result<Vec<(String, Option<u64>, Option<u64>)>> {
    let mut newest: Vec<(String, i64, Option<u64>, Option<u64>)> = Vec::new();
    for (_, _, value) in store.tags_with_key(TAG).await? {
        let Ok(r) = serde_json::from_str::<Report>(&value) else {
            continue;
        };
        for g in r.gpus {
            match newest.iter_mut().find(|n| n.0 == g.uuid) {
                Some(n) if n.1 >= r.checked_ms => {}
                Some(n) => *n = (g.uuid, r.checked_ms, g.ecc_uncorrected, g.retired_pages),
                None => newest.push((g.uuid, r.checked_ms, g.ecc_uncorrected, g.retired_pages)),
            }
        }
    }
    Ok(newest.into_iter().map(|(u, _, e, r)| (u, e, r)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::GpuSample;

    #[test]
    fn visible_devices_by_index_and_uuid() {
        assert!(visible_names("0,2", 2, "GPU-x"));
        assert!(!visible_names("0,2", 1, "GPU-x"));
        assert!(visible_names("GPU-abc", 5, "GPU-abcdef"));
        assert!(visible_names("abc", 5, "GPU-abcdef"));
        assert!(!visible_names("", 0, "GPU-abcdef"));
    }

    #[test]
    fn the_facts_join_both_readings() {
        let g = |link: u32, xids: Vec<u64>| GpuSample {
            index: 1,
            name: "H".into(),
            uuid: "GPU-1".into(),
            pcie_gen: Some(link),
            pcie_gen_max: Some(5),
            xids,
            ecc_uncorrected: Some(u64::from(link)),
            ..Default::default()
        };
        let snap = |s: GpuSample| GpuSnapshot {
            gpus: vec![
                GpuSample {
                    index: 0,
                    uuid: "GPU-0".into(),
                    ..Default::default()
                },
                s,
            ],
            ..Default::default()
        };
        let (a, b) = (snap(g(1, vec![])), snap(g(5, vec![79])));
        let f = facts(Some(&a), Some(&b), None, Some("1"));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].pcie_gen, Some(5));
        assert_eq!(f[0].xids, vec![79]);
        assert_eq!(f[0].ecc_uncorrected, Some(5));
        let all = facts(Some(&a), None, None, None);
        assert_eq!(all.len(), 2);
        let by_cuda = facts(Some(&a), None, Some(&["GPU-0".to_string()]), Some("1"));
        assert_eq!(by_cuda[0].uuid, "GPU-0");
    }

    #[test]
    fn the_cpu_backend_offers_a_gemm_and_a_copy() {
        let b = bench::open_cpu();
        let specs = chosen(b.as_ref());
        let kinds: Vec<Kind> = specs.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, [Kind::Gemm, Kind::Membw]);
        assert_eq!(specs[0].precision, Some(Precision::Fp32));
    }
}
