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
}

impl Run {
    /// Duration so far (running) or in all (ended), in milliseconds.
    pub fn duration_ms(&self, now_ms: i64) -> i64 {
        self.ended_ms
            .unwrap_or(now_ms)
            .saturating_sub(self.started_ms)
            .max(0)
    }
    pub fn is_ended(&self) -> bool {
        self.status != RunStatus::Running
    }
    /// The 8-character prefix people type and read.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(8)]
    }
}
