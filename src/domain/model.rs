//! The model registry's types: a version's manifest (files, the run it came from), a model's
//! summary, a log entry and a verify problem.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::UserError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub blake3: String,
}

/// The run a version came from, as it was when registered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRef {
    pub id: String,
    pub name: String,
    pub experiment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_commit: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Final (last) value of each metric.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// The GPUs it ran on (its `gantry.hardware` tag), where it used any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<super::efficiency::Hardware>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: u32,
    pub created: String,
    pub author: String,
    #[serde(default)]
    pub notes: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunRef>,
    /// The version it was made from (fine-tuned, distilled, pruned): "NAME@vN".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub files: Vec<FileEntry>,
}

impl Manifest {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    pub name: String,
    pub latest: u32,
    pub versions: usize,
    pub aliases: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    pub commit: String,
    pub time: i64,
    pub author: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub model: String,
    pub version: u32,
    pub path: String,
    pub blake3: String,
    /// "missing" or "corrupt"
    pub problem: &'static str,
}

/// A model name: letters, digits, `.`, `_`, `-`; not starting with `-` or `.`, without `..`
/// and not ending in `.lock` or `.`, so that its tags (`NAME@vN`) are valid git ref names and it
/// is never read as an option (`-x`, `--help`). Checked before anything is written.
pub fn check_name(name: &str) -> Result<(), UserError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !name.contains("..")
        && !name.ends_with(".lock")
        && !name.ends_with('.')
        && git2::Reference::is_valid_name(&format!("refs/tags/{name}@v1"));
    if ok {
        Ok(())
    } else {
        Err(UserError::new(format!("`{name}` is not a model name"))
            .hint("use letters, digits, `.`, `_` and `-`, not starting with `-` or `.`, without `..` and not ending in `.` or `.lock`"))
    }
}

/// An alias name: as a model name, and not one that resolving `NAME@…` reads otherwise (a
/// version number such as `3` or `v3`, or `latest`).
pub fn check_alias(alias: &str) -> Result<(), UserError> {
    check_name(alias).map_err(|_| {
        UserError::new(format!("`{alias}` is not an alias name"))
            .hint("use letters, digits, `.`, `_` and `-`, not starting with `-` or `.`")
    })?;
    let digits = alias.strip_prefix('v').unwrap_or(alias);
    if digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(UserError::new(format!("`{alias}` looks like a version"))
            .hint("choose a word: production, staging, ..."));
    }
    if alias == "latest" {
        return Err(UserError::new("`latest` always means the newest version")
            .hint("choose another word: production, staging, ..."));
    }
    Ok(())
}

/// Where a version's files are, as of the last fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    /// Here only: not pushed.
    Local,
    /// On the remote only: its files are not here (fetched, or freed by `gc --local-only`).
    Remote,
    Both,
}

/// A model against the remote, as of the last fetch: commits each side has that the other lacks,
/// and where each version is.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncState {
    pub remote: String,
    /// Whether the remote was ever fetched (else nothing is known of it).
    pub fetched: bool,
    pub ahead: usize,
    pub behind: usize,
    pub versions: std::collections::BTreeMap<u32, Where>,
}

/// What a version cost to make: its own run's energy, GPU-hours and cost, and those of the runs
/// behind the versions it was made from (`from`), each run counted once.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Lineage {
    pub own: super::efficiency::RunEfficiency,
    pub total: super::efficiency::RunEfficiency,
    /// The versions counted, this one first: "NAME@vN".
    pub versions: Vec<String>,
    /// Runs counted in the total.
    pub runs: usize,
    /// Ancestors named by `from` that the registry lacks, or a cycle's repeat.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}
