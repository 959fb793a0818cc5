use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Finished,
    Failed,
    Killed,
    Crashed,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Running,
        RunStatus::Finished,
        RunStatus::Failed,
        RunStatus::Killed,
        RunStatus::Crashed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
            RunStatus::Killed => "killed",
            RunStatus::Crashed => "crashed",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown run status `{s}`"))
    }
}

/// What is known of a run when it starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewRun {
    /// Empty: the store makes one.
    pub id: String,
    pub experiment: String,
    pub name: String,
    pub started_ms: i64,
    pub host: String,
    pub user: String,
    pub pid: Option<i64>,
    pub command: Vec<String>,
    pub cwd: String,
    pub git_commit: Option<String>,
    pub git_branch: Option<String>,
    pub git_dirty: Option<bool>,
    pub notes: String,
    pub run_dir: String,
    pub env: BTreeMap<String, String>,
    pub gpus: Vec<String>,
}

/// How long a running run's heartbeat may be silent before it is shown `lost`, unless the user's
/// config says otherwise (`lost_after_s`).
pub const LOST_AFTER_MS: i64 = 60_000;

static LOST_AFTER: std::sync::OnceLock<i64> = std::sync::OnceLock::new();

/// Set, for this process, how long a heartbeat may be silent (from the user's config).
pub fn set_lost_after_ms(ms: i64) {
    let _ = LOST_AFTER.set(ms.max(3_000));
}

/// How long a heartbeat may be silent before its run is `lost`.
pub fn lost_after_ms() -> i64 {
    LOST_AFTER.get().copied().unwrap_or(LOST_AFTER_MS)
}

/// How long a heartbeat may be silent before any host takes the run for crashed (its own host
/// does so as soon as it finds the process gone), unless the config says otherwise
/// (`crashed_after_s`).
pub const CRASHED_AFTER_MS: i64 = 24 * 3_600_000;

static CRASHED_AFTER: std::sync::OnceLock<i64> = std::sync::OnceLock::new();

/// Set, for this process, how long a heartbeat may be silent before its run counts as crashed.
pub fn set_crashed_after_ms(ms: i64) {
    let _ = CRASHED_AFTER.set(ms.max(3_000));
}

/// How long a heartbeat may be silent before its run counts as crashed, from any host.
pub fn crashed_after_ms() -> i64 {
    CRASHED_AFTER.get().copied().unwrap_or(CRASHED_AFTER_MS)
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    pub experiment: String,
    pub name: String,
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub host: String,
    pub user: String,
    pub pid: Option<i64>,
    pub pid_start: Option<i64>,
    pub command: Vec<String>,
    pub cwd: String,
    pub git_commit: Option<String>,
    pub git_branch: Option<String>,
    pub git_dirty: Option<bool>,
    pub notes: String,
    pub run_dir: String,
    pub env: BTreeMap<String, String>,
    pub gpus: Vec<String>,
    /// The last time the `gantry run` supervising it said it was alive; None where nothing
    /// supervises it (served through the MLflow API, imported) or for a gantry before heartbeats.
    #[serde(default)]
    pub heartbeat_ms: Option<i64>,
}

impl Run {
    /// Duration so far (running) or in all (ended), in milliseconds.
    pub fn duration_ms(&self, now_ms: i64) -> i64 {
        self.ended_ms
            .unwrap_or(now_ms)
            .saturating_sub(self.started_ms)
            .max(0)
    }
    /// How long ago a running run's supervisor last said it was alive, when that is longer than
    /// `lost_after_ms()`: the run is `lost`, its host may still be running it. None for ended runs,
    /// runs with a fresh heartbeat and runs nothing heartbeats for.
    pub fn lost_for(&self, now_ms: i64) -> Option<i64> {
        if self.status != RunStatus::Running {
            return None;
        }
        let age = now_ms - self.heartbeat_ms?;
        (age > lost_after_ms()).then_some(age)
    }
    pub fn is_ended(&self) -> bool {
        self.status != RunStatus::Running
    }
    /// The 8-character prefix people type and read.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(8)]
    }
}
