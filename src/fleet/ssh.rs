//! Agentless hosts, through the user's own `ssh` (so `~/.ssh/config`, jump hosts and agents
//! work): one connection a host, kept open, running `gantry gpu --json --watch SECS` there, or
//! `nvidia-smi --query-gpu=… --format=csv -l SECS` where gantry isn't installed. Each connection
//! has a thread of its own that reads its lines as they come and reconnects after a failure,
//! waiting longer each time (up to a minute). A read never waits on a connection for longer than
//! the timeout: a host that hasn't answered is shown with why.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{FleetGpu, FleetProcess, Host};
use crate::domain::{GpuSample, GpuSnapshot};

/// What to run where: the hosts (as `ssh` takes them: `gpu01`, `me@gpu02`, `ssh://gpu03:2222`),
/// extra options for `ssh` (`-F FILE`, `-J JUMP`), the gantry command on the hosts, and how often
/// they report.
#[derive(Debug, Clone, PartialEq)]
pub struct SshConfig {
    pub hosts: Vec<String>,
    pub options: Vec<String>,
    pub gantry: String,
    pub every: Duration,
    pub timeout: Duration,
}

/// The nvidia-smi fields read where gantry isn't installed, in order (docs/fleet.md lists them).
pub const SMI_FIELDS: &[&str] = &[
    "index",
    "uuid",
    "name",
    "pci.bus_id",
    "driver_version",
    "utilization.gpu",
    "utilization.memory",
    "memory.used",
    "memory.total",
    "temperature.gpu",
    "power.draw",
    "power.limit",
    "clocks.sm",
    "clocks.max.sm",
    "clocks.mem",
    "fan.speed",
    "clocks_throttle_reasons.active",
    "ecc.errors.uncorrected.volatile.total",
];

/// What a host's connection runs, as a script read by `sh -s` there (so the user's login shell,
/// whatever it is, only starts `sh`): the first gantry found runs, else nvidia-smi, else it says
/// neither is there (exit 127).
pub fn script(gantry: &str, every: Duration) -> String {
    let secs = every.as_secs_f64().max(1.0);
    let mut tries = vec![quote(gantry)];
    if gantry == "gantry" {
        // Where `pip install --user` and `cargo install` put it, off a non-login PATH.
        tries.push("\"$HOME/.local/bin/gantry\"".into());
        tries.push("\"$HOME/.cargo/bin/gantry\"".into());
    }
    format!(
        "for g in {tries}; do\n  if command -v \"$g\" >/dev/null 2>&1; then exec \"$g\" gpu --json --watch {secs}; fi\ndone\n\
         if command -v nvidia-smi >/dev/null 2>&1; then\n  exec nvidia-smi --query-gpu={fields} --format=csv,noheader,nounits -l {smi}\nfi\n\
         echo \"gantry fleet: neither {shown} nor nvidia-smi is on this host's PATH\" >&2\nexit 127\n",
        tries = tries.join(" "),
        fields = SMI_FIELDS.join(","),
        smi = secs.ceil() as u64,
        shown = gantry.replace(['"', '\\', '$', '`'], ""),
    )
}

/// `s` as one sh word.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// What a host's connection reads: gantry's JSON, or nvidia-smi's CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Gantry,
    NvidiaSmi,
}

/// A host's GPUs as its connection last told, by index.
#[derive(Debug, Default)]
struct Seen {
    gpus: BTreeMap<u32, FleetGpu>,
    via: Option<Via>,
    /// When the last line came, ms since the epoch.
    seen_ms: Option<i64>,
    /// Why the connection is down, until a line comes again.
    error: Option<String>,
    /// Whether it has answered at all (a line or an error).
    answered: bool,
}

struct Conn {
    target: String,
    seen: Mutex<Seen>,
    changed: Condvar,
    child: Mutex<Option<Child>>,
}

/// The connections, one a host, each with its reader thread; dropping it ends them.
pub struct Pool {
    cfg: SshConfig,
    conns: Vec<Arc<Conn>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ssh pool of {} hosts", self.conns.len())
    }
}

impl Pool {
    /// Connect to every host (each on its own thread; this returns at once).
    pub fn start(cfg: SshConfig) -> Pool {
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Vec<Arc<Conn>> = cfg
            .hosts
            .iter()
            .map(|t| {
                Arc::new(Conn {
                    target: t.clone(),
                    seen: Mutex::new(Seen::default()),
                    changed: Condvar::new(),
                    child: Mutex::new(None),
                })
            })
            .collect();
        for c in &conns {
            let (c, stop, cfg) = (c.clone(), stop.clone(), cfg.clone());
            std::thread::spawn(move || keep_reading(&c, &cfg, &stop));
        }
        Pool { cfg, conns, stop }
    }

    /// Every host as its connection last told, waiting up to the timeout for hosts that have
    /// not answered yet. A host whose connection is down keeps its last GPUs, with the error.
    pub fn hosts(&self, now_ms: i64) -> Vec<Host> {
        let deadline = Instant::now() + self.cfg.timeout;
        for c in &self.conns {
            let mut seen = lock(&c.seen);
            while !seen.answered {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                seen = match c.changed.wait_timeout(seen, left) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
        }
        // A connection that is up but silent for three reports (and the timeout) is stale.
        let silent = (self.cfg.every * 3 + self.cfg.timeout).as_millis() as i64;
        self.conns
            .iter()
            .map(|c| {
                let seen = lock(&c.seen);
                let error = match (&seen.error, seen.seen_ms, seen.answered) {
                    (Some(e), ..) => Some(e.clone()),
                    (None, Some(t), _) if now_ms - t > silent => Some(format!(
                        "ssh {}: no report for {}",
                        c.target,
                        crate::format::duration(now_ms - t)
                    )),
                    (None, None, _) => Some(format!(
                        "ssh {}: no answer in {}s",
                        c.target,
                        self.cfg.timeout.as_secs_f64()
                    )),
                    _ => None,
                };
                Host {
                    name: host_name(&c.target),
                    source: match seen.via {
                        Some(Via::Gantry) => format!("ssh {} (gantry)", c.target),
                        Some(Via::NvidiaSmi) => format!("ssh {} (nvidia-smi)", c.target),
                        None => format!("ssh {}", c.target),
                    },
                    gpus: seen.gpus.values().cloned().collect(),
                    seen_ms: seen.seen_ms,
                    error,
                }
            })
            .collect()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for c in &self.conns {
            if let Some(child) = lock(&c.child).as_mut() {
                let _ = child.kill();
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A target as a host's name: `me@gpu01` and `ssh://me@gpu01:22` are `gpu01`.
pub fn host_name(target: &str) -> String {
    let t = target.strip_prefix("ssh://").unwrap_or(target);
    let t = t.rsplit_once('@').map_or(t, |(_, h)| h);
    let t = if target.starts_with("ssh://") {
        t.split_once(':').map_or(t, |(h, _)| h)
    } else {
        t
    };
    t.trim_end_matches('/').to_string()
}

/// The `ssh` command for one host: never a prompt (the workbench holds the terminal), a dead
/// link noticed within 30 s, no terminal, the script on stdin.
fn command(cfg: &SshConfig, target: &str) -> Command {
    let ssh = std::env::var("GANTRY_SSH").unwrap_or_else(|_| "ssh".into());
    let mut cmd = Command::new(ssh);
    let connect = cfg.timeout.as_secs_f64().ceil().max(1.0) as u64;
    cmd.args(["-T", "-o", "BatchMode=yes"])
        .arg("-o")
        .arg(format!("ConnectTimeout={connect}"))
        .args([
            "-o",
            "ServerAliveInterval=10",
            "-o",
            "ServerAliveCountMax=3",
        ])
        .args(&cfg.options)
        .arg(target)
        .args(["sh", "-s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A connection's life: connect, read lines until it ends, say why, wait, connect again.
fn keep_reading(c: &Conn, cfg: &SshConfig, stop: &AtomicBool) {
    let mut wait = cfg.every.max(Duration::from_secs(1));
    while !stop.load(Ordering::SeqCst) {
        let began = Instant::now();
        let why = read_once(c, cfg, stop);
        if stop.load(Ordering::SeqCst) {
            return;
        }
        {
            let mut seen = lock(&c.seen);
            seen.error = Some(why);
            seen.answered = true;
        }
        c.changed.notify_all();
        if began.elapsed() > Duration::from_secs(120) {
            wait = cfg.every.max(Duration::from_secs(1));
        }
        let until = Instant::now() + wait;
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
        wait = (wait * 2).min(Duration::from_secs(60));
    }
}

/// One connection, until it ends: why it ended, for a person.
fn read_once(c: &Conn, cfg: &SshConfig, stop: &AtomicBool) -> String {
    let mut child = match command(cfg, &c.target).spawn() {
        Ok(ch) => ch,
        Err(e) => return format!("ssh {}: can't start ssh ({e}); is it installed?", c.target),
    };
    let script = script(&cfg.gantry, cfg.every);
    if let Some(mut stdin) = child.stdin.take() {
        // Written whole, then closed: `sh -s` runs it and execs the reader.
        let _ = std::io::Write::write_all(&mut stdin, script.as_bytes());
    }
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        return format!("ssh {}: no output pipe", c.target);
    };
    *lock(&c.child) = Some(child);
    if stop.load(Ordering::SeqCst)
        && let Some(ch) = lock(&c.child).as_mut()
    {
        let _ = ch.kill();
    }
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = (&mut stderr).take(64 << 10).read_to_string(&mut text);
        text
    });
    let mut reader = Reader::default();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Some(update) = reader.line(&line) else {
            continue;
        };
        let mut seen = lock(&c.seen);
        match update {
            Update::Snapshot(gpus) => seen.gpus = gpus,
            Update::Gpu(g) => {
                seen.gpus.insert(g.sample.index, *g);
            }
        }
        seen.via = reader.via;
        seen.seen_ms = Some(crate::domain::now_ms());
        seen.error = None;
        seen.answered = true;
        drop(seen);
        c.changed.notify_all();
    }
    let status = lock(&c.child).take().and_then(|mut ch| {
        let _ = ch.kill();
        ch.wait().ok()
    });
    let text = errors.join().unwrap_or_default();
    why_ended(
        &c.target,
        status.and_then(|s| s.code()),
        &text,
        reader.last_bad,
    )
}

/// Why a connection ended, from ssh's exit code and the last lines it (or the host) wrote.
fn why_ended(target: &str, code: Option<i32>, stderr: &str, bad: Option<String>) -> String {
    let last = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("");
    let last = last.strip_prefix("gantry: ").unwrap_or(last);
    match code {
        // ssh's own failures: the host is unreachable or refuses the key.
        Some(255) => format!(
            "ssh {target}: {}; `ssh {target} true` must work without a prompt",
            if last.is_empty() {
                "the connection failed"
            } else {
                last
            }
        ),
        _ if !last.is_empty() => format!("ssh {target}: {last}"),
        _ => match bad {
            Some(b) => format!("ssh {target}: the host sent what isn't a GPU report: {b}"),
            None => format!(
                "ssh {target}: the connection ended{}",
                code.map_or(String::new(), |c| format!(" (exit {c})"))
            ),
        },
    }
}

/// What one line changes.
#[derive(Debug, PartialEq)]
enum Update {
    /// Every GPU at once (gantry's JSON).
    Snapshot(BTreeMap<u32, FleetGpu>),
    /// One GPU (a line of nvidia-smi's CSV).
    Gpu(Box<FleetGpu>),
}

/// Reads a connection's lines: which kind it is comes from the first.
#[derive(Default)]
struct Reader {
    via: Option<Via>,
    /// The last line that was neither, shortened, for the error should the connection end.
    last_bad: Option<String>,
}

impl Reader {
    fn line(&mut self, line: &str) -> Option<Update> {
        let line = line.trim();
        if line.is_empty() {
            return None;
        }
        let update = if line.starts_with('{') {
            snapshot(line).map(|s| {
                self.via = Some(Via::Gantry);
                Update::Snapshot(s)
            })
        } else {
            smi_line(line).map(|g| {
                self.via = Some(Via::NvidiaSmi);
                Update::Gpu(Box::new(g))
            })
        };
        if update.is_none() {
            self.last_bad = Some(line.chars().take(120).collect());
        }
        update
    }
}

/// A process as `gantry gpu --json` lists it: the snapshot's, with user, command and run.
#[derive(serde::Deserialize)]
struct Proc {
    pid: u32,
    gpu: u32,
    mem_used: Option<u64>,
    user: Option<String>,
    command: Option<String>,
    run: Option<RunRef>,
}

#[derive(serde::Deserialize)]
struct RunRef {
    id: String,
    name: String,
}

#[derive(serde::Deserialize)]
struct Report {
    #[serde(flatten)]
    snapshot: GpuSnapshot,
    #[serde(default, rename = "processes")]
    procs: Vec<Proc>,
}

/// A line of `gantry gpu --json --watch`: the host's GPUs with their processes.
fn snapshot(line: &str) -> Option<BTreeMap<u32, FleetGpu>> {
    let r: Report = serde_json::from_str(line).ok()?;
    let snap = r.snapshot;
    Some(
        snap.gpus
            .iter()
            .map(|g| {
                let procs: Vec<FleetProcess> = r
                    .procs
                    .iter()
                    .filter(|p| p.gpu == g.index)
                    .map(|p| FleetProcess {
                        pid: p.pid,
                        mem_used: p.mem_used,
                        user: p.user.clone(),
                        command: p.command.clone(),
                        run_id: p.run.as_ref().map(|r| r.id.clone()),
                        run: p.run.as_ref().map(|r| r.name.clone()),
                    })
                    .collect();
                let gpu = FleetGpu {
                    sample: g.clone(),
                    processes: Some(procs.len() as u32),
                    driver: snap.driver.clone(),
                    cuda: snap.cuda.clone(),
                    procs,
                    ..FleetGpu::default()
                };
                (g.index, gpu)
            })
            .collect(),
    )
}

/// A line of nvidia-smi's CSV (`SMI_FIELDS`, no header, no units): one GPU. Fields it can't give
/// (`[N/A]`, `[Not Supported]`) are unknown.
fn smi_line(line: &str) -> Option<FleetGpu> {
    let f: Vec<&str> = line.split(',').map(str::trim).collect();
    if f.len() != SMI_FIELDS.len() {
        return None;
    }
    let known = |i: usize| {
        let v = f[i];
        (!(v.is_empty() || v.starts_with('[') || v.eq_ignore_ascii_case("n/a"))).then_some(v)
    };
    let num = |i: usize| known(i).and_then(|v| v.parse::<f64>().ok());
    let int = |i: usize| num(i).map(|v| v.round() as u32);
    let mib = |i: usize| num(i).map(|v| (v * 1024.0 * 1024.0) as u64);
    let index: u32 = f[0].parse().ok()?;
    let throttle = known(16)
        .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
        .map(|bits| {
            use nvml_wrapper::bitmasks::device::ThrottleReasons;
            crate::gpu::source::throttle_words(ThrottleReasons::from_bits_truncate(bits))
                .into_iter()
                .filter(|w| w != "idle")
                .collect()
        })
        .unwrap_or_default();
    Some(FleetGpu {
        sample: GpuSample {
            index,
            uuid: known(1).unwrap_or("").to_string(),
            name: known(2).unwrap_or("").to_string(),
            bus_id: known(3).unwrap_or("").to_string(),
            util: int(5),
            mem_util: int(6),
            mem_used: mib(7),
            mem_total: mib(8),
            temp: int(9),
            power: num(10),
            power_limit: num(11),
            sm_clock: int(12),
            sm_clock_max: int(13),
            mem_clock: int(14),
            fan: int(15),
            throttle,
            ecc_uncorrected: num(17).map(|v| v as u64),
            ..GpuSample::default()
        },
        driver: known(4).map(str::to_string),
        ..FleetGpu::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_hosts() {
        assert_eq!(host_name("gpu01"), "gpu01");
        assert_eq!(host_name("me@gpu01"), "gpu01");
        assert_eq!(host_name("ssh://me@gpu01:2222"), "gpu01");
        assert_eq!(host_name("ssh://gpu02"), "gpu02");
    }

    #[test]
    fn nvidia_smi_lines_become_gpus() {
        // The shape nvidia-smi writes for SMI_FIELDS with csv,noheader,nounits.
        let line = "1, GPU-5ad3c9e6-0e1f-4c3e-8f2a-0d5b2f6c9a11, NVIDIA H100 80GB HBM3, \
                    00000000:1B:00.0, 550.54.15, 97, 41, 79862, 81559, 71, 688.35, 700.00, \
                    1755, 1980, 2619, [N/A], 0x0000000000000004, 0";
        let g = smi_line(line).unwrap();
        assert_eq!(g.sample.index, 1);
        assert_eq!(g.sample.name, "NVIDIA H100 80GB HBM3");
        assert_eq!(g.sample.util, Some(97));
        assert_eq!(g.sample.mem_used, Some(79862 << 20));
        assert_eq!(g.sample.mem_total, Some(81559 << 20));
        assert_eq!(g.sample.power, Some(688.35));
        assert_eq!(g.sample.sm_clock_max, Some(1980));
        assert_eq!(g.sample.fan, None);
        assert_eq!(g.sample.throttle, vec!["power cap".to_string()]);
        assert_eq!(g.sample.ecc_uncorrected, Some(0));
        assert_eq!(g.driver.as_deref(), Some("550.54.15"));
        assert!(smi_line("1, 2, 3").is_none());
        assert!(smi_line("Field \"x\" is not a valid field to query.").is_none());
    }

    #[test]
    fn a_gantry_line_names_processes_and_runs() {
        let line = r#"{"time_ms":1,"driver":"580.65","cuda":"13.0","gpus":[{"index":0,"uuid":"GPU-a","name":"NVIDIA H200","util":88}],"processes":[{"pid":42,"gpu":0,"mem_used":1024,"sm_util":null,"user":"ana","command":"python train.py","run":{"id":"r1","name":"lr-3e-4"}}]}"#;
        let mut r = Reader::default();
        let Some(Update::Snapshot(gpus)) = r.line(line) else {
            panic!("not a snapshot")
        };
        assert_eq!(r.via, Some(Via::Gantry));
        let g = &gpus[&0];
        assert_eq!(g.sample.util, Some(88));
        assert_eq!(g.processes, Some(1));
        assert_eq!(g.cuda.as_deref(), Some("13.0"));
        assert_eq!(g.procs[0].run.as_deref(), Some("lr-3e-4"));
        assert_eq!(g.procs[0].user.as_deref(), Some("ana"));
        assert!(r.line("bash: gantry: command not found").is_none());
        assert_eq!(
            r.last_bad.as_deref(),
            Some("bash: gantry: command not found")
        );
    }

    #[test]
    fn the_script_tries_gantry_then_nvidia_smi() {
        let s = script("gantry", Duration::from_secs(5));
        assert!(s.contains("'gantry' \"$HOME/.local/bin/gantry\""), "{s}");
        assert!(s.contains("gpu --json --watch 5"), "{s}");
        assert!(s.contains("-l 5"), "{s}");
        let s = script("/opt/it's/gantry", Duration::from_millis(2500));
        assert!(s.contains("'/opt/it'\\''s/gantry'"), "{s}");
        assert!(!s.contains(".local"), "{s}");
        assert!(s.contains("-l 3"), "{s}");
    }

    #[test]
    fn why_a_connection_ended_is_said() {
        let w = why_ended(
            "gpu01",
            Some(255),
            "ssh: connect to host gpu01 port 22: Connection refused\n",
            None,
        );
        assert!(
            w.contains("Connection refused") && w.contains("without a prompt"),
            "{w}"
        );
        let w = why_ended(
            "gpu01",
            Some(127),
            "gantry fleet: neither gantry nor nvidia-smi is on this host's PATH\n",
            None,
        );
        assert!(w.contains("neither gantry nor nvidia-smi"), "{w}");
        let w = why_ended(
            "gpu01",
            Some(3),
            "gantry: no NVIDIA driver: libnvidia-ml.so\n",
            None,
        );
        assert_eq!(w, "ssh gpu01: no NVIDIA driver: libnvidia-ml.so");
    }
}
