//! Processes on this host, through /proc: whether a pid is still the process we started (its start
//! time guards against pid reuse), the process tree under a pid, and its CPU time and memory.

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
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<Stat> {
    // The command name is in parentheses and may hold spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); field N is f[N - 3].
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        cpu: f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
        start: f.get(19)?.parse().ok()?,
        rss_pages: f.get(21)?.parse().ok()?,
    })
}

/// What a process table shows of a process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcInfo {
    pub user: String,
    pub rss: u64,
    pub elapsed_secs: u64,
    pub command: String,
    /// GANTRY_RUN_ID in its environment, when readable.
    pub run_id: Option<String>,
}

/// Describes processes for a table, tick after tick. What does not change while a process lives
/// (its start, user, command line and GANTRY_RUN_ID) is read once per process; each tick reads
/// only /proc/PID/statm for memory, which is much cheaper than /proc/PID/stat. Every
/// `RECHECK` ticks the start time is read again, so a reused pid is noticed.
#[derive(Default)]
pub struct Describer {
    users: std::collections::HashMap<u32, String>,
    fixed: std::collections::HashMap<u32, Fixed>,
    tick: u64,
}

struct Fixed {
    start: i64,
    user: String,
    command: String,
    run: Option<String>,
    checked: u64,
}

/// Ticks between checks of a pid's start time.
const RECHECK: u64 = 30;

impl Describer {
    /// User, resident memory, time since start, command line and GANTRY_RUN_ID of each pid that
    /// still exists.
    pub fn describe(&mut self, pids: &[u32]) -> std::collections::HashMap<u32, ProcInfo> {
        use std::os::unix::fs::MetadataExt;
        self.tick += 1;
        let mut out = std::collections::HashMap::new();
        let Some(uptime) = std::fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|u| u.split_whitespace().next()?.parse::<f64>().ok())
        else {
            return out;
        };
        let (tick, page) = (clock_ticks_per_second(), page_size());
        let mut seen = std::collections::HashSet::new();
        for &pid in pids {
            seen.insert(pid);
            let stale = self
                .fixed
                .get(&pid)
                .is_none_or(|f| self.tick - f.checked >= RECHECK);
            if stale {
                let Some(s) = stat(i64::from(pid)) else {
                    self.fixed.remove(&pid);
                    continue;
                };
                match self.fixed.get_mut(&pid) {
                    Some(f) if f.start == s.start => f.checked = self.tick,
                    _ => {
                        let Ok(meta) = std::fs::metadata(format!("/proc/{pid}")) else {
                            continue;
                        };
                        let user = self
                            .users
                            .entry(meta.uid())
                            .or_insert_with(|| user_of(meta.uid()))
                            .clone();
                        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                        let command = cmd
                            .split(|b| *b == 0)
                            .filter(|a| !a.is_empty())
                            .map(|a| String::from_utf8_lossy(a).into_owned())
                            .collect::<Vec<_>>()
                            .join(" ");
                        let run =
                            std::fs::read(format!("/proc/{pid}/environ"))
                                .ok()
                                .and_then(|env| {
                                    env.split(|b| *b == 0).find_map(|kv| {
                                        kv.strip_prefix(b"GANTRY_RUN_ID=")
                                            .map(|v| String::from_utf8_lossy(v).into_owned())
                                    })
                                });
                        self.fixed.insert(
                            pid,
                            Fixed {
                                start: s.start,
                                user,
                                command,
                                run,
                                checked: self.tick,
                            },
                        );
                    }
                }
            }
            // statm: size resident shared ...; resident is in pages.
            let Some(rss_pages) = std::fs::read_to_string(format!("/proc/{pid}/statm"))
                .ok()
                .and_then(|t| t.split_whitespace().nth(1)?.parse::<u64>().ok())
            else {
                self.fixed.remove(&pid);
                continue;
            };
            let f = &self.fixed[&pid];
            out.insert(
                pid,
                ProcInfo {
                    user: f.user.clone(),
                    rss: rss_pages * page,
                    elapsed_secs: (uptime - f.start as f64 / tick).max(0.0) as u64,
                    command: f.command.clone(),
                    run_id: f.run.clone(),
                },
            );
        }
        self.fixed.retain(|pid, _| seen.contains(pid));
        out
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_describer_reads_a_process_and_forgets_it_when_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .env("GANTRY_RUN_ID", "abc")
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut d = Describer::default();
        let info = d.describe(&[pid]).remove(&pid).unwrap();
        assert_eq!(info.command, "sleep 5");
        assert_eq!(info.run_id.as_deref(), Some("abc"));
        assert!(info.rss > 0);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            d.describe(&[pid]).is_empty(),
            "a reaped process is not described"
        );
        assert!(d.fixed.is_empty());
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
