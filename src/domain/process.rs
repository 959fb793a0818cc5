//! What a process table shows of a process (read from /proc by capture/procs.rs).

/// What a process table shows of a process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcInfo {
    /// The parent's pid (0 when unknown).
    pub ppid: u32,
    pub user: String,
    /// CPU use since the previous description, in % of one core (over 100 with several threads).
    pub cpu: Option<f64>,
    pub rss: u64,
    pub elapsed_secs: u64,
    pub command: String,
    /// GANTRY_RUN_ID in its environment, when readable.
    pub run_id: Option<String>,
    /// The batch job or container it belongs to, when it says: "slurm 4242" (SLURM_JOB_ID),
    /// "pbs …", "lsf …", or "container 3f2a9c1b0d4e" from its cgroup.
    pub job: Option<String>,
}
