use super::{RunStatus, Series};

/// A run read from another tool, ready to store. Its id is stable across imports (the source's
/// own run id, or a hash of where it came from), so importing again updates it.
#[derive(Debug, Clone, Default)]
pub struct ImportedRun {
    pub id: String,
    pub experiment: String,
    pub name: String,
    pub status: Option<RunStatus>,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub user: String,
    pub host: String,
    pub command: Vec<String>,
    pub git_commit: Option<String>,
    pub git_branch: Option<String>,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub metrics: Vec<(String, Series)>,
    /// What could not be read and was skipped (a bad metric line, with its file and line).
    pub problems: Vec<String>,
}

impl ImportedRun {
    pub fn points(&self) -> usize {
        self.metrics.iter().map(|(_, s)| s.len()).sum()
    }
}
