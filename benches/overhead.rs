//! The wrapper's cost: `gantry run` around a script that logs 10,000 points/s (1,000 JSON lines
//! of 10 metrics per second) for 10 s. Reports gantry's own CPU time (from /proc, excluding its
//! children) as a share of one core and of the script's CPU time. Target: < 1% added CPU.
//! Side by side, in turns (three rounds each): without and with a declared `flops_per_step`,
//! which adds the step clock to the ingest and TFLOP/s and MFU to every sample; at the default
//! sample interval (5 s) and at 0.5 s, where the per-sample work shows ten times over; and at
//! 5 s with every alert off, against the default where they are watched.
//! `cargo bench --bench overhead` (needs python3); under `cargo test --benches` a 1 s smoke run.
//! `GANTRY_BENCH_EXE=BIN` measures another gantry binary instead; `GANTRY_BENCH_BASELINE=BIN`
//! adds that binary's runs at 5 s and 0.5 s (no flops_per_step, alerts on) to the turns, side by
//! side with this one's.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WRITER: &str = r#"
import json, os, resource, sys, time
seconds = float(sys.argv[1])
out = open(os.environ["GANTRY_METRICS"], "a")
start = time.time()
step = 0
while time.time() - start < seconds:
    tick = time.time()
    for _ in range(10):  # 10 lines x 10 metrics every 10 ms = 10,000 points/s
        out.write(json.dumps({"step": step, **{f"m{k}": step * 0.001 * k for k in range(10)}}) + "\n")
        step += 1
    out.flush()
    time.sleep(max(0.0, 0.01 - (time.time() - tick)))
ru = resource.getrusage(resource.RUSAGE_SELF)
print(f"gantry: writer_cpu_s={ru.ru_utime + ru.ru_stime} lines={step}")
"#;

fn cpu_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = text[text.rfind(')')? + 2..].split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().ok()? + f[12].parse::<f64>().ok()?;
    Some(ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64)
}

/// One `gantry run` of the writer: (gantry's CPU s, wall s, the writer's CPU s, points stored).
fn measure(
    exe: &str,
    ws: &std::path::Path,
    name: &str,
    (declared, every, alerts): (bool, &str, bool),
    seconds: f64,
) -> (f64, f64, f64, i64) {
    let t = Instant::now();
    let mut cmd = Command::new(exe);
    cmd.args([
        "--workspace",
        ws.to_str().unwrap(),
        "run",
        "-n",
        name,
        "--sample-every",
        every,
    ]);
    if declared {
        cmd.args(["--param", "flops_per_step=1e12"]);
    }
    if !alerts {
        for a in [
            "nan=off",
            "divergence=off",
            "stall_minutes=off",
            "idle_minutes=off",
            "throughput_drop=off",
            "throttle=off",
            "gpu_errors=off",
        ] {
            cmd.args(["--alert", a]);
        }
    }
    let mut child = cmd
        .args(["--", "python3", "-c", WRITER])
        .arg(seconds.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut gantry_cpu = 0.0;
    loop {
        if let Some(c) = cpu_seconds(pid) {
            gantry_cpu = c;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let wall = t.elapsed().as_secs_f64();
    let out = Command::new(exe)
        .args(["--workspace", ws.to_str().unwrap(), "show", name, "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let writer_cpu = v["metrics"]["writer_cpu_s"]["last"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let points = v["metrics"]["m0"]["points"].as_i64().unwrap_or(0) * 10;
    if declared {
        assert!(
            v["metrics"]["gantry/tflops"]["points"]
                .as_i64()
                .unwrap_or(0)
                > 0
                || seconds < 2.0,
            "a declared run derives TFLOP/s: {}",
            v["metrics"]
        );
    }
    (gantry_cpu, wall, writer_cpu, points)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = common::quick();
    if !Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        println!("overhead: skipped, python3 is not installed");
        return;
    }
    let seconds = if quick { 1.0 } else { 10.0 };
    let rounds = if quick { 1 } else { 3 };
    let dir = tempfile::tempdir().unwrap();
    // GANTRY_BENCH_EXE=BIN measures another gantry binary the same way (an earlier build, for a
    // before-and-after figure).
    let exe_var = std::env::var("GANTRY_BENCH_EXE").ok();
    let exe = exe_var.as_deref().unwrap_or(env!("CARGO_BIN_EXE_gantry"));
    assert!(
        Command::new(exe)
            .arg("init")
            .arg(dir.path())
            .output()
            .unwrap()
            .status
            .success()
    );
    // (flops_per_step declared, sample interval, alerts watched, what)
    const SETUPS: [(bool, &str, bool, &str); 5] = [
        (
            false,
            "5",
            true,
            "without flops_per_step, sampled every 5 s",
        ),
        (true, "5", true, "with flops_per_step, sampled every 5 s"),
        (
            false,
            "0.5",
            true,
            "without flops_per_step, sampled every 0.5 s",
        ),
        (
            true,
            "0.5",
            true,
            "with flops_per_step, sampled every 0.5 s",
        ),
        (false, "5", false, "every alert off, sampled every 5 s"),
    ];
    let mut by: [Vec<(f64, f64, f64, i64)>; 5] = Default::default();
    // The baseline binary keeps a workspace of its own (an older build may not read a newer
    // store).
    let baseline = std::env::var("GANTRY_BENCH_BASELINE").ok();
    let base_dir = tempfile::tempdir().unwrap();
    if let Some(b) = &baseline {
        assert!(
            Command::new(b)
                .arg("init")
                .arg(base_dir.path())
                .output()
                .unwrap()
                .status
                .success()
        );
    }
    let mut base: [Vec<(f64, f64, f64, i64)>; 2] = Default::default();
    for round in 0..rounds {
        for (i, (declared, every, alerts, _)) in SETUPS.into_iter().enumerate() {
            let name = format!("load-{round}-{i}");
            by[i].push(measure(
                exe,
                dir.path(),
                &name,
                (declared, every, alerts),
                seconds,
            ));
        }
        if let Some(b) = &baseline {
            for (i, every) in ["5", "0.5"].into_iter().enumerate() {
                let name = format!("base-{round}-{i}");
                base[i].push(measure(
                    b,
                    base_dir.path(),
                    &name,
                    (false, every, true),
                    seconds,
                ));
            }
        }
    }
    if let Some(b) = &baseline {
        for (i, (every, mine)) in [("5 s", 0), ("0.5 s", 2)].into_iter().enumerate() {
            let runs = &base[i];
            let theirs = median(runs.iter().map(|r| r.0 / r.1 * 100.0).collect());
            let ours = median(by[mine].iter().map(|r| r.0 / r.1 * 100.0).collect());
            println!(
                "overhead: sampled every {every}, the baseline {b} used a median {theirs:.2}% of one core \
                 (runs: {}); this build {ours:.2}%: {:+.2} points ({:.2}x)",
                runs.iter()
                    .map(|r| format!("{:.2}%", r.0 / r.1 * 100.0))
                    .collect::<Vec<_>>()
                    .join(" "),
                ours - theirs,
                ours / theirs
            );
        }
    }
    let mut core = [0.0; 5];
    for (i, (_, _, _, what)) in SETUPS.iter().enumerate() {
        let runs = &by[i];
        core[i] = median(runs.iter().map(|r| r.0 / r.1 * 100.0).collect());
        let added = median(runs.iter().map(|r| r.0 / r.2 * 100.0).collect());
        let points = median(runs.iter().map(|r| r.3 as f64).collect());
        println!(
            "overhead {what}: {:.0} points/s for {seconds} s, {rounds} runs: gantry used a median {:.2}% of one core \
             (runs: {}); it adds {added:.2}% to the script's CPU",
            points / seconds,
            core[i],
            runs.iter()
                .map(|r| format!("{:.2}%", r.0 / r.1 * 100.0))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    for (i, every) in [(0, "5 s"), (2, "0.5 s")] {
        println!(
            "overhead: sampled every {every}, declaring flops_per_step changes gantry's CPU by {:+.2} points of one core ({:.2}x)",
            core[i + 1] - core[i],
            core[i + 1] / core[i]
        );
    }
    println!(
        "overhead: sampled every 5 s, watching the alerts costs {:+.2} points of one core against every alert off ({:.2}x)",
        core[0] - core[4],
        core[0] / core[4]
    );
}
