//! Which gantry run owns a process: the `GANTRY_RUN_ID` in its environment, else being in a
//! running run's process tree on this host, else (a container's process seen from the host)
//! being that run's process or under it by the pid and start time inside its own namespace.

use std::collections::HashMap;

use crate::domain::RunStatus;
use crate::gpu::source::GpuSnapshot;
use crate::store::Store;

/// pid -> (run id, run name): from GANTRY_RUN_ID in the process's environment, else from being in a
/// running run's process tree on this host.
pub async fn owners(store: &Store, snap: &GpuSnapshot) -> HashMap<u32, (String, String)> {
    owners_with(store, snap, &|pid| {
        crate::capture::procs::gantry_run_id(i64::from(pid))
    })
    .await
}

/// `owners`, with the GANTRY_RUN_ID of a pid known by `run_id_of` (the sampler's cache).
pub async fn owners_with(
    store: &Store,
    snap: &GpuSnapshot,
    run_id_of: &(dyn Fn(u32) -> Option<String> + Sync),
) -> HashMap<u32, (String, String)> {
    let mut out = HashMap::new();
    let Ok(runs) = store.runs_with_status(RunStatus::Running).await else {
        return out;
    };
    let host = crate::host::hostname();
    let mut tree: HashMap<i64, usize> = HashMap::new();
    for (i, r) in runs.iter().enumerate() {
        if let Some(pid) = r.pid.filter(|_| r.host == host) {
            for p in crate::capture::procs::tree(pid) {
                tree.insert(p, i);
            }
        }
    }
    for p in &snap.processes {
        let by_env = run_id_of(p.pid);
        let run = match by_env {
            Some(id) => runs.iter().find(|r| r.id == id),
            None => tree.get(&i64::from(p.pid)).map(|i| &runs[*i]).or_else(|| {
                // A container's process seen from the host (NVML gives host pids): a run that a
                // gantry inside it recorded by its own pid and start time.
                crate::capture::procs::nested_match(i64::from(p.pid), |inner, start| {
                    runs.iter()
                        .find(|r| r.pid == Some(inner) && r.pid_start == Some(start))
                })
            }),
        };
        if let Some(r) = run {
            out.insert(p.pid, (r.id.clone(), r.name.clone()));
        }
    }
    out
}
