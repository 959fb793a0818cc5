//! `gantry bench --burn SECS`: a sustained GEMM load on one GPU or all at once, second by second, with how much of it held.

use super::*;

/// `--burn SECS`: a sustained GEMM on the CPU, one GPU, or every GPU at once, each on a thread of
/// its own with its own monitor; a progress bar per device, then how each held up.
pub(super) async fn burn(
    args: &Args,
    req: &Request,
    secs: f64,
    cancel: &Arc<AtomicBool>,
) -> anyhow::Result<ExitCode> {
    let gpus: Vec<(usize, String)> = if args.cpu {
        vec![(0, String::new())]
    } else {
        match chosen_gpus(args.gpu).await? {
            Ok(g) => g,
            Err(code) => return Ok(code),
        }
    };
    if !args.cpu {
        for (i, uuid) in &gpus {
            if !go_ahead(uuid, &format!("GPU {i}"), args.yes)? {
                return Err(UserError::new(format!("not run: GPU {i} is in use"))
                    .hint("wait for those processes, or pass --yes to run anyway")
                    .into());
            }
        }
    }
    let spec = bench::Spec::gemm(
        req.precisions.first().copied().unwrap_or(if args.cpu {
            Precision::Fp32
        } else {
            Precision::Bf16
        }),
        req.sizes
            .first()
            .copied()
            .unwrap_or(if args.cpu { 512 } else { 8192 }),
        if args.cpu { "matrixmultiply" } else { "cublas" },
    );
    let bars = MultiProgress::new();
    if args.json && !std::io::stderr().is_terminal() {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template("{prefix:<10} {bar:30} {pos:>5}/{len} s {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut threads = Vec::new();
    for (i, _) in &gpus {
        let pb = bars.add(ProgressBar::new(secs.ceil() as u64));
        pb.set_style(style.clone());
        pb.set_prefix(device_name(args.cpu, *i));
        let (i, cpu, spec, cancel) = (*i, args.cpu, spec.clone(), cancel.clone());
        threads.push(std::thread::spawn(move || {
            let mut backend = bench::open_backend(cpu, i)?;
            let mut on = |w: &bench::Window| {
                pb.set_position(w.t.round() as u64);
                let gpu = w.conditions.as_ref().map_or(String::new(), |c| c.brief());
                pb.set_message(format!(
                    "{} {} {gpu}",
                    crate::format::four_digits(w.value),
                    bench::Unit::TflopS.as_str()
                ));
            };
            let burned = bench::burn_sampled(backend.as_mut(), &spec, secs, &mut on, &cancel);
            pb.finish();
            burned.map(|b| (backend.device().clone(), b))
        }));
    }
    let mut done: Vec<(usize, DeviceInfo, bench::Burn)> = Vec::new();
    let mut failed = false;
    for ((i, _), t) in gpus.iter().zip(threads) {
        let joined = tokio::task::spawn_blocking(move || t.join()).await?;
        match joined {
            Ok(Ok((device, b))) => done.push((*i, device, b)),
            Ok(Err(why)) => {
                failed = true;
                eprintln!("gantry: {}: {why}", device_name(args.cpu, *i));
            }
            Err(_) => {
                failed = true;
                eprintln!(
                    "gantry: {}: the load's thread ended abruptly",
                    device_name(args.cpu, *i)
                );
            }
        }
    }
    let ends: Vec<f64> = done.iter().map(|(_, _, b)| b.end).collect();
    let behind = |b: &bench::Burn| {
        if done.len() > 1 {
            bench::drop_below(b.end, b.unit, &ends)
        } else {
            None
        }
    };
    if args.json {
        let out = json!({
            "burn": {"seconds": secs, "label": spec.label(), "spec": spec},
            "devices": done.iter().map(|(i, d, b)| json!({
                "gpu": (d.backend != "cpu").then_some(*i), "device": d, "result": b,
                "behind_pct": behind(b).map(|x| 100.0 * x),
            })).collect::<Vec<_>>(),
        });
        out::json(&out)?;
    } else {
        out!("{}", burn_table(&spec, secs, &done, &behind));
    }
    if done.iter().any(|(_, _, b)| !b.correct()) {
        eprintln!(
            "gantry: a correctness check failed: the GPU or its libraries computed a wrong result"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// How each device held up under the load.
pub(super) fn burn_table(
    spec: &bench::Spec,
    secs: f64,
    done: &[(usize, DeviceInfo, bench::Burn)],
    behind: &dyn Fn(&bench::Burn) -> Option<f64>,
) -> String {
    use std::fmt::Write;
    let n = crate::format::four_digits;
    let mut o = String::new();
    let unit = spec.kind.unit().as_str();
    let _ = writeln!(
        o,
        "sustained load: {} for {secs} s, {unit} each second",
        spec.label()
    );
    let _ = writeln!(
        o,
        "{:<4} {:<22} {:>9} {:>9} {:>6} {:>9} {:>11} {:>6} {:>5}  throttled / check",
        "GPU", "DEVICE", "START", "END", "HELD", "MIN", "SM MHz", "POWER", "TEMP"
    );
    for (i, d, b) in done {
        let c = b.conditions.clone().unwrap_or_default();
        let clock = match (c.sm_clock_mhz, c.sm_clock_min_mhz) {
            (Some(m), Some(lo)) if lo < m => format!("{m} ({lo})"),
            (Some(m), _) => m.to_string(),
            _ => "-".into(),
        };
        let check = match b.check {
            None => "-".to_string(),
            Some(k) if k.ok => "ok".to_string(),
            Some(k) => format!("WRONG ({:.1e})", k.max_rel_err),
        };
        let mut notes = Vec::new();
        if c.throttled() || c.throttle_unknown {
            notes.push(c.throttle_words());
        }
        notes.push(check);
        if let Some(x) = behind(b) {
            notes.push(format!("▼ {:.1}% behind the others", 100.0 * x));
        }
        let _ = writeln!(
            o,
            "{:<4} {:<22} {:>9} {:>9} {:>5.1}% {:>9} {:>11} {:>6} {:>5}  {}",
            if d.backend == "cpu" {
                "-".to_string()
            } else {
                i.to_string()
            },
            crate::format::fit(d.name.trim_start_matches("NVIDIA "), 22),
            n(b.start),
            n(b.end),
            100.0 * b.sustained,
            n(b.min),
            clock,
            c.power_w.map_or("-".into(), |p| format!("{p:.0} W")),
            c.temp_max_c.map_or("-".into(), |t| format!("{t}C")),
            notes.join(" · ")
        );
    }
    o
}
