//! The rows of runs as a listing reads them, folded into one JSON value by each backend's
//! `fold_rows` (see lite.rs and pg.rs), and doubles read back from their bits (`real`).

use super::*;

/// A REAL read through a backend's `exact_real!`.
pub(super) fn real(bits: Option<i64>) -> Option<f64> {
    bits.map(|b| f64::from_bits(b as u64))
}

/// Records by run id, for filling in their parts.
pub(super) struct ById<'a> {
    pub recs: &'a mut [RunRecord],
    pub index: &'a std::collections::HashMap<String, usize>,
}

impl ById<'_> {
    pub fn get_mut(&mut self, id: &str) -> Option<&mut RunRecord> {
        self.index.get(id).map(|&i| &mut self.recs[i])
    }
}

/// One run as `folded` reads it: the columns of `run_select!`, in order.
#[derive(serde::Deserialize)]
pub(super) struct RunRow(
    String,
    String,
    String,
    String,
    Option<i32>,
    i64,
    Option<i64>,
    String,
    String,
    Option<i64>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    String,
    Option<i64>,
    String,
    String,
    String,
    Option<i64>,
);

impl RunRow {
    /// The listing's columns as a listing reads them, then the rest.
    pub fn into_run(self) -> Result<Run> {
        let mut run = ListingRow(
            self.0, self.1, self.2, self.3, self.4, self.5, self.6, self.7, self.20,
        )
        .into_run()?;
        run.user = self.8;
        run.pid = self.9;
        run.command = serde_json::from_str(&self.10).unwrap_or_else(|_| vec![self.10.clone()]);
        run.cwd = self.11;
        run.git_commit = self.12;
        run.git_branch = self.13;
        run.git_dirty = self.14.map(|d| d != 0);
        run.notes = self.15;
        run.pid_start = self.16;
        run.run_dir = self.17;
        run.env = serde_json::from_str(&self.18).unwrap_or_default();
        run.gpus = serde_json::from_str(&self.19).unwrap_or_default();
        Ok(run)
    }
}

/// One run as a listing reads it (see `Parts::listing`): id, experiment, name, status, exit code,
/// start, end, host and heartbeat; the rest of the run is left empty.
#[derive(serde::Deserialize)]
pub(super) struct ListingRow(
    String,
    String,
    String,
    String,
    Option<i32>,
    i64,
    Option<i64>,
    String,
    Option<i64>,
);

impl ListingRow {
    pub fn into_run(self) -> Result<Run> {
        Ok(Run {
            id: self.0,
            experiment: self.1,
            name: self.2,
            status: RunStatus::from_str(&self.3).map_err(|e| anyhow!(e))?,
            exit_code: self.4,
            started_ms: self.5,
            ended_ms: self.6,
            host: self.7,
            user: String::new(),
            pid: None,
            command: Vec::new(),
            cwd: String::new(),
            git_commit: None,
            git_branch: None,
            git_dirty: None,
            notes: String::new(),
            pid_start: None,
            run_dir: String::new(),
            env: Default::default(),
            gpus: Vec::new(),
            heartbeat_ms: self.8,
        })
    }
}
