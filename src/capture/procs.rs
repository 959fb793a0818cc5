//! Processes on this host, through /proc: whether a pid is still the process we started (its start
//! time guards against pid reuse), the process tree under a pid, and its CPU time and memory.

pub use crate::domain::ProcInfo;
use std::collections::HashMap;

/// Start time of a process in clock ticks after boot (field 22 of /proc/PID/stat).
pub fn start_ticks(pid: i64) -> Option<i64> {
    stat(pid).map(|s| s.start)
}

/// Whether `pid` is alive and is the process that started at `start` (when known).
pub fn is_same_process(pid: i64, start: Option<i64>) -> bool {
    match (stat(pid), start) {
        (None, _) => false,
        (Some(s), Some(want)) => s.start == want && s.state != 'Z',
        (Some(s), None) => s.state != 'Z',
    }
}

/// A process's pid in each pid namespace from this /proc's down to its own (the `NSpid` line of
/// /proc/PID/status): one entry for a process of our namespace, more for one in a container.
pub fn ns_pids(pid: i64) -> Vec<i64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| parse_nspid(&s))
        .unwrap_or_default()
}

/// The `NSpid:` line of a /proc/PID/status text; empty where there is none (kernels before 4.1).
pub fn parse_nspid(status: &str) -> Vec<i64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The parent of `pid`, as this /proc sees it.
pub fn parent(pid: i64) -> Option<i64> {
    stat(pid).map(|s| s.ppid).filter(|p| *p > 0)
}

/// For a process in a nested pid namespace (a container, seen from the host, where NVML's pids
/// are the host's): it or its nearest ancestor that `is_run` takes, by (pid inside its own
/// namespace, start time), which a gantry inside the container recorded. Start times count from
/// the one kernel's boot, so they agree across namespaces.
pub fn nested_match<T>(pid: i64, is_run: impl Fn(i64, i64) -> Option<T>) -> Option<T> {
    let mut at = pid;
    for _ in 0..64 {
        let ns = ns_pids(at);
        if ns.len() < 2 {
            return None; // in our own namespace: matched by pid already, or not a container's
        }
        if let (Some(inner), Some(start)) = (ns.last(), start_ticks(at))
            && let Some(hit) = is_run(*inner, start)
        {
            return Some(hit);
        }
        at = parent(at)?;
    }
    None
}

#[derive(Debug, Clone, Copy)]
struct Stat {
    ppid: i64,
    state: char,
    /// utime + stime, in clock ticks.
    cpu: u64,
    start: i64,
    rss_pages: i64,
}

fn stat(pid: i64) -> Option<Stat> {
    read_stat(&open_stat(pid)?)
}

/// /proc/PID/stat, opened. The open file stays bound to that process: read again, it gives the
/// process's figures of the moment, and once the process is reaped it gives an error, also when a
/// new process has taken the pid.
fn open_stat(pid: i64) -> Option<std::fs::File> {
    // Format into the stack, without an allocation: the GPU sampler opens this for every new GPU
    // process.
    let mut path = [0u8; 32];
    let mut w = &mut path[..];
    std::io::Write::write_fmt(&mut w, format_args!("/proc/{pid}/stat")).ok()?;
    let len = 32 - w.len();
    let path = std::str::from_utf8(&path[..len]).ok()?;
    std::fs::File::open(path).ok()
}

/// Reads an open /proc/PID/stat from its start (the kernel writes it anew for each read there).
fn read_stat(f: &std::fs::File) -> Option<Stat> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 1024];
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    parse_stat(std::str::from_utf8(&buf[..n]).ok()?)
}

fn parse_stat(text: &str) -> Option<Stat> {
    // The command name is in parentheses and may hold spaces and parentheses: split after the last ')'.
    let rest = text.get(text.rfind(')')? + 2..)?;
    // rest starts at field 3 (state); field N is item N - 3.
    let mut f = rest.split_ascii_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let utime = f.nth(9)?.parse::<u64>().ok()?; // field 14
    let stime = f.next()?.parse::<u64>().ok()?; // 15
    let start = f.nth(6)?.parse().ok()?; // 22
    let rss_pages = f.nth(1)?.parse().ok()?; // 24
    Some(Stat {
        state,
        ppid,
        cpu: utime + stime,
        start,
        rss_pages,
    })
}

/// Describes processes for a table, tick after tick. What does not change while a process lives
/// (its user, command line and GANTRY_RUN_ID) is read once per process; each tick reads only
/// /proc/PID/stat, for CPU time and resident memory. That file is kept open between ticks (up to
/// `MAX_OPEN` of them), which halves the cost of a look, and an open one cannot be confused with a
/// process that reuses the pid: it fails once its own process is reaped.
#[derive(Default)]
pub struct Describer {
    users: std::collections::HashMap<u32, String>,
    fixed: std::collections::HashMap<u32, Fixed>,
    /// The parents of the last call's processes, described along with them by
    /// `describe_with_parents`.
    parents: Vec<u32>,
}

/// At most this many /proc/PID/stat files are kept open (fewer under a low open-file limit: a
/// quarter of it); further processes are read by path.
const MAX_OPEN: usize = 512;

fn max_open() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
            MAX_OPEN.min((r.rlim_cur / 4) as usize)
        } else {
            64
        }
    })
}

struct Fixed {
    start: i64,
    /// /proc/PID/stat, open (None past `MAX_OPEN`).
    file: Option<std::fs::File>,
    user: String,
    command: String,
    run: Option<String>,
    job: Option<String>,
    /// CPU ticks and when they were read, for the next tick's CPU %.
    cpu: u64,
    at: std::time::Instant,
}

impl Describer {
    /// `describe` for `pids` and for their parents (other than init), for a process tree: the
    /// parents found at one call are described from the next on.
    pub fn describe_with_parents(
        &mut self,
        pids: &[u32],
    ) -> std::collections::HashMap<u32, ProcInfo> {
        let mut all = pids.to_vec();
        all.extend(self.parents.iter().filter(|p| !pids.contains(p)));
        let out = self.describe(&all);
        let mut parents: Vec<u32> = pids
            .iter()
            .filter_map(|p| out.get(p).map(|i| i.ppid))
            .filter(|pp| *pp > 1 && !pids.contains(pp))
            .collect();
        parents.sort_unstable();
        parents.dedup();
        self.parents = parents;
        out
    }

    /// User, CPU %, resident memory, time since start, command line and GANTRY_RUN_ID of each pid
    /// that still exists. CPU % is over the time since the previous call, so a process's first
    /// description has none.
    pub fn describe(&mut self, pids: &[u32]) -> std::collections::HashMap<u32, ProcInfo> {
        use std::os::unix::fs::MetadataExt;
        let mut out = std::collections::HashMap::new();
        let Some(uptime) = std::fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|u| u.split_whitespace().next()?.parse::<f64>().ok())
        else {
            return out;
        };
        let (tick, page) = (clock_ticks_per_second(), page_size());
        let now = std::time::Instant::now();
        let mut seen = std::collections::HashSet::new();
        let mut open = self.fixed.values().filter(|f| f.file.is_some()).count();
        for &pid in pids {
            // A process on several GPUs is listed once per GPU: describe it once, or its second
            // look, an instant after the first, would show no CPU use.
            if !seen.insert(pid) {
                continue;
            }
            // The open file of a process seen before; failing, the process is gone, and the pid is
            // looked up afresh in case another process has it now.
            let known = match self.fixed.get(&pid).map(|f| f.file.as_ref()) {
                Some(Some(file)) => match read_stat(file) {
                    Some(s) => Some(s),
                    None => {
                        self.fixed.remove(&pid);
                        open -= 1;
                        None
                    }
                },
                _ => None,
            };
            let mut file = None;
            let s = match known {
                Some(s) => s,
                None if !self.fixed.contains_key(&pid) && open < max_open() => {
                    let Some(f) = open_stat(i64::from(pid)) else {
                        continue;
                    };
                    let Some(s) = read_stat(&f) else {
                        continue;
                    };
                    file = Some(f);
                    s
                }
                None => {
                    let Some(s) = stat(i64::from(pid)) else {
                        self.fixed.remove(&pid);
                        continue;
                    };
                    s
                }
            };
            let mut cpu = None;
            match self.fixed.get_mut(&pid) {
                Some(f) if f.start == s.start => {
                    let dt = now.duration_since(f.at).as_secs_f64();
                    if dt > 0.0 {
                        cpu = Some(s.cpu.saturating_sub(f.cpu) as f64 / tick / dt * 100.0);
                    }
                    f.cpu = s.cpu;
                    f.at = now;
                    // Only a young process can be mid-exec; a kernel thread's stays empty.
                    if f.command.is_empty() && uptime - f.start as f64 / tick < 5.0 {
                        (f.command, f.run, f.job) = command_and_run(pid);
                    }
                }
                _ => {
                    let Ok(meta) = std::fs::metadata(format!("/proc/{pid}")) else {
                        continue;
                    };
                    let user = self
                        .users
                        .entry(meta.uid())
                        .or_insert_with(|| user_of(meta.uid()))
                        .clone();
                    let (command, run, job) = command_and_run(pid);
                    if file.is_some() {
                        open += 1;
                    }
                    if let Some(old) = self.fixed.insert(
                        pid,
                        Fixed {
                            start: s.start,
                            file,
                            user,
                            command,
                            run,
                            job,
                            cpu: s.cpu,
                            at: now,
                        },
                    ) && old.file.is_some()
                    {
                        open -= 1;
                    }
                }
            }
            let f = &self.fixed[&pid];
            out.insert(
                pid,
                ProcInfo {
                    ppid: u32::try_from(s.ppid).unwrap_or(0),
                    user: f.user.clone(),
                    cpu,
                    rss: s.rss_pages.max(0) as u64 * page,
                    elapsed_secs: (uptime - f.start as f64 / tick).max(0.0) as u64,
                    command: f.command.clone(),
                    run_id: f.run.clone(),
                    job: f.job.clone(),
                },
            );
        }
        self.fixed.retain(|pid, _| seen.contains(pid));
        out
    }
}

/// GANTRY_RUN_ID from a process's environment, when it is there and readable.
pub fn gantry_run_id(pid: i64) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|b| *b == 0).find_map(|kv| {
        kv.strip_prefix(b"GANTRY_RUN_ID=")
            .map(|v| String::from_utf8_lossy(v).into_owned())
    })
}

/// A process's command line, GANTRY_RUN_ID from its environment, and the job or container it
/// belongs to. The first two are empty while exec is still setting the process up.
fn command_and_run(pid: u32) -> (String, Option<String>, Option<String>) {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let command = cmd
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let var = |name: &str| {
        env.split(|b| *b == 0).find_map(|kv| {
            kv.strip_prefix(name.as_bytes())?
                .strip_prefix(b"=")
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })
    };
    let job = [
        ("SLURM_JOB_ID", "slurm"),
        ("PBS_JOBID", "pbs"),
        ("LSB_JOBID", "lsf"),
    ]
    .iter()
    .find_map(|(v, what)| var(v).map(|id| format!("{what} {id}")))
    .or_else(|| {
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        container_of(&cgroup).map(|id| format!("container {id}"))
    });
    (command, var("GANTRY_RUN_ID"), job)
}

/// The short id (12 hex digits, as docker ps shows it) of the container a /proc/PID/cgroup
/// names: docker, containerd, CRI-O and podman paths, with cgroup v1 or v2.
fn container_of(cgroup: &str) -> Option<String> {
    for line in cgroup.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        for part in path.rsplit('/') {
            // "docker-<id>.scope", "cri-containerd-<id>.scope", "crio-<id>.scope",
            // "libpod-<id>.scope", or a bare "<id>" under /docker/ or /kubepods/.
            let id = part
                .trim_end_matches(".scope")
                .rsplit('-')
                .next()
                .unwrap_or("");
            if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Some(id[..12].to_string());
            }
        }
    }
    None
}

fn user_of(uid: u32) -> String {
    // SAFETY: getpwuid_r writes into our buffer and record; the name is copied out before return.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) == 0
            && !out.is_null()
        {
            return std::ffi::CStr::from_ptr(pw.pw_name)
                .to_string_lossy()
                .into_owned();
        }
    }
    uid.to_string()
}

/// `pid` and all its descendants.
pub fn tree(pid: i64) -> Vec<i64> {
    let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<i64>().ok()) else {
                continue;
            };
            if let Some(s) = stat(p) {
                children.entry(s.ppid).or_default().push(p);
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend(c);
        }
        i += 1;
    }
    out
}

/// CPU time (seconds) and resident memory (bytes) of a set of processes; missing ones count 0.
pub fn usage(pids: &[i64]) -> (f64, u64) {
    let tick = clock_ticks_per_second();
    let page = page_size();
    let mut cpu = 0u64;
    let mut rss = 0u64;
    for &p in pids {
        if let Some(s) = stat(p) {
            cpu += s.cpu;
            rss += s.rss_pages.max(0) as u64 * page;
        }
    }
    (cpu as f64 / tick, rss)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

/// The host's busy and total CPU ticks (/proc/stat's first line: user to steal;
/// guest time is inside user already).
pub fn host_busy_total() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    let idle = f.get(3)? + f.get(4).unwrap_or(&0);
    let total: u64 = f.iter().sum();
    Some((total - idle, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nspid_lists_a_pid_in_each_namespace() {
        let host = "Name:\tpython\nTgid:\t4021\nPid:\t4021\nNSpid:\t4021\t57\nNSpgid:\t4021\t57\n";
        assert_eq!(parse_nspid(host), [4021, 57]);
        assert_eq!(parse_nspid("Pid:\t12\nNSpid:\t12\n"), [12]);
        // Kernels before 4.1 have no NSpid line.
        assert_eq!(parse_nspid("Name:\tx\nPid:\t12\n"), Vec::<i64>::new());
        // This process is in our own namespace: one entry, its pid.
        let me = i64::from(std::process::id());
        assert_eq!(ns_pids(me).last(), Some(&me));
        assert_eq!(nested_match(me, |_, _| Some(())), None);
    }

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 98765 1000000 300 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(
            (s.state, s.ppid, s.cpu, s.start, s.rss_pages),
            ('S', 1, 300, 98765, 300)
        );
    }

    #[test]
    fn containers_are_named_from_the_cgroup() {
        let id = "3f2a9c1b0d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4";
        for cgroup in [
            format!("0::/system.slice/docker-{id}.scope\n"),
            format!("12:memory:/docker/{id}\n1:name=systemd:/docker/{id}\n"),
            format!("0::/kubepods.slice/kubepods-burstable.slice/cri-containerd-{id}.scope\n"),
            format!("0::/machine.slice/libpod-{id}.scope/container\n"),
        ] {
            assert_eq!(
                container_of(&cgroup).as_deref(),
                Some("3f2a9c1b0d4e"),
                "{cgroup}"
            );
        }
        assert_eq!(
            container_of("0::/user.slice/user-1000.slice/session-3.scope\n"),
            None
        );
    }

    #[test]
    fn the_describer_reads_a_process_and_forgets_it_when_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .env("GANTRY_RUN_ID", "abc")
            .env("SLURM_JOB_ID", "4242")
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut d = Describer::default();
        // The first look may come while exec is still setting up the command line: it is read
        // again until it is there.
        let info = d.describe(&[pid]).remove(&pid).unwrap();
        assert_eq!(info.cpu, None, "no CPU % before a second look");
        std::thread::sleep(std::time::Duration::from_millis(200));
        let again = d.describe(&[pid]).remove(&pid).unwrap();
        assert_eq!(again.command, "sleep 5");
        assert_eq!(again.run_id.as_deref(), Some("abc"));
        assert_eq!(again.job.as_deref(), Some("slurm 4242"));
        assert!(again.rss > 0);
        assert!(again.cpu.is_some_and(|c| c < 50.0), "sleep hardly runs");
        assert!(d.fixed[&pid].file.is_some(), "its stat file stays open");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            d.describe(&[pid]).is_empty(),
            "a reaped process is not described"
        );
        assert!(d.fixed.is_empty());
    }

    #[test]
    fn parents_are_described_from_the_next_look_on() {
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 5; true"])
            .spawn()
            .unwrap();
        let parent = sh.id();
        let mut child = None;
        for _ in 0..100 {
            child = tree(i64::from(parent))
                .into_iter()
                .find(|p| *p != i64::from(parent));
            if child.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let child = child.expect("sh starts sleep") as u32;
        let mut d = Describer::default();
        let first = d.describe_with_parents(&[child]);
        assert_eq!(first[&child].ppid, parent);
        assert!(!first.contains_key(&parent));
        let second = d.describe_with_parents(&[child]);
        assert!(second[&parent].command.starts_with("sh -c"), "{second:?}");
        sh.kill().unwrap();
        sh.wait().unwrap();
    }

    #[test]
    fn the_describer_measures_cpu_between_looks() {
        let mut busy = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let pid = busy.id();
        let mut d = Describer::default();
        d.describe(&[pid]);
        std::thread::sleep(std::time::Duration::from_millis(300));
        // Listed twice, as a process on two GPUs is: the CPU % is still over the 300 ms.
        let cpu = d.describe(&[pid, pid])[&pid].cpu;
        busy.kill().unwrap();
        busy.wait().unwrap();
        assert!(
            cpu.is_some_and(|c| c > 0.0),
            "a busy loop uses CPU: {cpu:?}"
        );
    }

    #[test]
    fn this_process_is_itself_and_a_child_is_in_its_tree() {
        let me = std::process::id() as i64;
        let start = start_ticks(me);
        assert!(start.is_some());
        assert!(is_same_process(me, start));
        assert!(
            !is_same_process(me, start.map(|s| s + 1)),
            "another start time is another process"
        );
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let cpid = child.id() as i64;
        assert!(tree(me).contains(&cpid));
        let (_, rss) = usage(&[me]);
        assert!(rss > 0);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!is_same_process(cpid, None), "a reaped child is gone");
    }
}
