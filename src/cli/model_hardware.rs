//! `gantry model verify --hardware SPEC`: the GPUs a version was trained on (its run's hardware,
//! carried in the manifest) against the box you are on: the same GPU model or another, how much
//! faster or slower by each GPU's bench results (the fingerprint recorded with the run, and this
//! box's bench history; the datasheets where either is missing), and driver or CUDA differences.
//! Exit 0 when nothing differs, 1 when something does, 3 without a GPU here.

use std::process::ExitCode;

use serde_json::json;

use super::out::{self, outln};
use crate::domain::GpuSample;
use crate::domain::efficiency::{Fingerprint, Hardware, HardwareGpu};
use crate::error::UserError;
use crate::registry::Registry;
use crate::store::Store;

/// One trained-on GPU against the one here that stands for it.
#[derive(Debug, serde::Serialize)]
struct Pair {
    then: HardwareGpu,
    here: Option<Here>,
    same_model: bool,
    /// This box's bf16 GEMM over the trained-on GPU's, and where the figures came from.
    speed_ratio: Option<f64>,
    speed_from: &'static str,
    differences: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
struct Here {
    name: String,
    uuid: String,
    driver: Option<String>,
    cuda: Option<String>,
    bench: Option<Fingerprint>,
}

pub async fn run(
    spec: &str,
    json_out: bool,
    reg: &Registry,
    store: &Store,
    replay: &Option<std::path::PathBuf>,
) -> anyhow::Result<ExitCode> {
    let m = reg.resolve(spec)?;
    let Some(hw) = m.run.as_ref().and_then(|r| r.hardware.clone()) else {
        return Err(UserError::new(format!(
            "{}@v{} records no hardware",
            m.name, m.version
        ))
        .hint(
            "versions record the GPUs of the run they came from (gantry model add --run RUN) when \
             that run used a GPU under gantry run or gantry serve",
        )
        .into());
    };
    let source = super::gpu::open_source(&replay.clone().map(|p| (p, 0.0)));
    let snap = match source.and_then(|mut s| s.sample()) {
        Ok(s) if !s.gpus.is_empty() => s,
        Ok(_) => return no_gpu("NVML lists no GPU", json_out),
        Err(why) => return no_gpu(&why, json_out),
    };
    let mut pairs = Vec::new();
    let mut used = Vec::new();
    for then in &hw.gpus {
        // The GPU here of the same model not yet paired, else the first not yet paired.
        let pick = snap
            .gpus
            .iter()
            .filter(|g| !used.contains(&g.uuid))
            .find(|g| g.name == then.name)
            .or_else(|| snap.gpus.iter().find(|g| !used.contains(&g.uuid)));
        let here = match pick {
            Some(g) => {
                used.push(g.uuid.clone());
                let history = store.bench_history(Some(&g.uuid)).await?;
                Some(here_of(
                    g,
                    &snap.driver,
                    &snap.cuda,
                    Fingerprint::of(&history),
                ))
            }
            None => None,
        };
        pairs.push(compare(then, here));
    }
    let differs = pairs
        .iter()
        .any(|p| !p.differences.is_empty() || p.here.is_none());
    if json_out {
        out::json(&json!({
            "model": m.name,
            "version": m.version,
            "trained_on": hw,
            "gpus": pairs,
            "differs": differs,
        }))?;
    } else {
        print(&m.name, m.version, &hw, &pairs);
    }
    Ok(ExitCode::from(u8::from(differs)))
}

fn no_gpu(why: &str, json_out: bool) -> anyhow::Result<ExitCode> {
    if json_out {
        out::json(&json!({"error": why}))?;
    } else {
        eprintln!("gantry: no GPU here to compare with: {why}");
    }
    Ok(ExitCode::from(3))
}

fn here_of(
    g: &GpuSample,
    driver: &Option<String>,
    cuda: &Option<String>,
    bench: Option<Fingerprint>,
) -> Here {
    Here {
        name: g.name.clone(),
        uuid: g.uuid.clone(),
        driver: driver.clone(),
        cuda: cuda.clone(),
        bench,
    }
}

fn compare(then: &HardwareGpu, here: Option<Here>) -> Pair {
    let Some(h) = here else {
        return Pair {
            then: then.clone(),
            here: None,
            same_model: false,
            speed_ratio: None,
            speed_from: "",
            differences: vec!["no GPU here for it (this box has fewer GPUs)".into()],
        };
    };
    let mut differences = Vec::new();
    let same_model = h.name == then.name;
    if !same_model {
        differences.push(format!("GPU {} here, {} then", h.name, then.name));
    }
    let measured = |f: &Option<Fingerprint>| f.as_ref().and_then(|b| b.gemm_bf16_tflops);
    let datasheet = |name: &str| {
        crate::bench::peaks::tensor_peaks(name).and_then(|(_, t)| t.bf16.map(|b| b / 1e12))
    };
    let (speed_ratio, speed_from) = match (measured(&h.bench), measured(&then.bench)) {
        (Some(a), Some(b)) if b > 0.0 => (Some(a / b), "bench"),
        _ => match (datasheet(&h.name), datasheet(&then.name)) {
            (Some(a), Some(b)) if b > 0.0 => (Some(a / b), "datasheet"),
            _ => (None, ""),
        },
    };
    if let Some(r) = speed_ratio
        && (r - 1.0).abs() > 0.05
    {
        differences.push(format!("{} by {speed_from} bf16 GEMM", ratio_text(r)));
    }
    for (what, now, was) in [
        ("driver", &h.driver, &then.driver),
        ("CUDA", &h.cuda, &then.cuda),
    ] {
        if let (Some(a), Some(b)) = (now, was)
            && a != b
        {
            differences.push(format!("{what} {a} here, {b} then"));
        }
    }
    Pair {
        then: then.clone(),
        here: Some(h),
        same_model,
        speed_ratio,
        speed_from,
        differences,
    }
}

/// "12% slower", "1.8× faster".
fn ratio_text(r: f64) -> String {
    if r >= 1.5 {
        format!("{r:.1}× faster here")
    } else if r >= 1.0 {
        format!("{:.0}% faster here", (r - 1.0) * 100.0)
    } else {
        format!("{:.0}% slower here", (1.0 - r) * 100.0)
    }
}

fn print(name: &str, version: u32, hw: &Hardware, pairs: &[Pair]) {
    outln!(
        "{name}@v{version} was trained on {} at {}",
        hw.summary(),
        hw.host
    );
    for p in pairs {
        let here = p
            .here
            .as_ref()
            .map_or("-".to_string(), |h| format!("{} ({})", h.name, h.uuid));
        outln!("  {} ({})  →  here {here}", p.then.name, p.then.uuid);
        match (p.speed_ratio, &p.here) {
            (Some(r), _) => outln!(
                "    speed    {} (bf16 GEMM, {})",
                if (r - 1.0).abs() <= 0.05 {
                    "the same within 5%".to_string()
                } else {
                    ratio_text(r)
                },
                if p.speed_from == "bench" {
                    "bench results of both GPUs"
                } else {
                    "datasheets: `gantry bench` here measures this box"
                }
            ),
            (None, Some(_)) => {
                outln!("    speed    unknown: no bench results or datasheet figure for one of them")
            }
            (None, None) => {}
        }
        if p.differences.is_empty() {
            outln!("    same     GPU model, driver and CUDA");
        }
        for d in &p.differences {
            outln!("    differs  {d}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(name: &str, driver: &str, tflops: Option<f64>) -> HardwareGpu {
        HardwareGpu {
            name: name.into(),
            uuid: format!("GPU-{name}"),
            driver: Some(driver.into()),
            cuda: Some("13.0".into()),
            bench: tflops.map(|t| Fingerprint {
                gemm_bf16_tflops: Some(t),
                membw_gbs: None,
                at_ms: 0,
            }),
            ..Default::default()
        }
    }

    fn here(g: &HardwareGpu) -> Here {
        Here {
            name: g.name.clone(),
            uuid: g.uuid.clone(),
            driver: g.driver.clone(),
            cuda: g.cuda.clone(),
            bench: g.bench.clone(),
        }
    }

    #[test]
    fn same_gpu_slower_gpu_and_driver_changes() {
        let then = gpu("NVIDIA H200", "580.95.05", Some(720.0));
        let p = compare(&then, Some(here(&then)));
        assert!(p.same_model && p.differences.is_empty());
        // The same model measuring 12% lower, with another driver.
        let p = compare(
            &then,
            Some(here(&gpu("NVIDIA H200", "570.10", Some(633.6)))),
        );
        assert_eq!(
            p.differences,
            [
                "12% slower here by bench bf16 GEMM",
                "driver 570.10 here, 580.95.05 then"
            ]
        );
        // Another model with no bench history: the datasheets speak.
        let p = compare(
            &then,
            Some(here(&gpu("NVIDIA A100-SXM4-80GB", "580.95.05", None))),
        );
        assert!(!p.same_model);
        assert_eq!(p.speed_from, "datasheet");
        assert!(
            p.differences[1].contains("slower here by datasheet"),
            "{:?}",
            p.differences
        );
        assert_eq!(compare(&then, None).differences.len(), 1);
    }
}
