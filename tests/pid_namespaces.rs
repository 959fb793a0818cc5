//! A process in a pid namespace of its own, as a container's is (`unshare --pid --fork`, as
//! root): seen from here, its NSpid line names it by both pids, and `nested_match` finds the run
//! that a gantry inside would have recorded by the inner pid and the start time.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gantry::capture::procs;

#[test]
fn a_process_in_its_own_pid_namespace_is_matched_by_its_inner_pid_and_start() {
    // Only root may make a pid namespace here (no user namespaces asked for).
    let mut outer = match Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "sleep", "30"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return common::skip(&format!("unshare (util-linux) cannot run: {e}")),
    };
    // The sleep is unshare's child: pid 1 of the new namespace.
    let deadline = Instant::now() + Duration::from_secs(5);
    let child = loop {
        let kids = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", outer.id()))
            .unwrap_or_default();
        if let Some(k) = kids.split_whitespace().next() {
            break k.parse::<i64>().unwrap();
        }
        if let Ok(Some(status)) = outer.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            let _ = outer.stderr.take().unwrap().read_to_string(&mut err);
            return common::skip(&format!(
                "unshare --pid could not make a namespace ({status}): {}",
                err.trim()
            ));
        }
        assert!(Instant::now() < deadline, "unshare started no child");
        std::thread::sleep(Duration::from_millis(20));
    };
    let ns = procs::ns_pids(child);
    assert_eq!(ns, [child, 1], "NSpid of a namespace's first process");
    let start = procs::start_ticks(child).unwrap();
    // A run recorded inside as pid 1 with that start: found. Another start (pid 1 of another
    // container): not.
    assert_eq!(
        procs::nested_match(child, |inner, s| (inner == 1 && s == start)
            .then_some("run-a")),
        Some("run-a")
    );
    assert_eq!(
        procs::nested_match(child, |inner, s| (inner == 1 && s == start + 1)
            .then_some("run-b")),
        None
    );
    let _ = outer.kill();
    let _ = outer.wait();
}
