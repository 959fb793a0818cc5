//! Plain data types shared by every room: runs, series, imported runs, GPU snapshots, benchmark
//! results, model manifests. No I/O here: whatever crosses rooms is defined here, so a consumer
//! never has to reach into the worker room that produces it.

pub mod alerts;
pub mod bench;
pub mod conditions;
pub mod efficiency;
pub mod flight;
mod gpu;
mod imported;
pub mod model;
pub mod preflight;
mod process;
mod record;
mod run;
mod series;
pub mod store;

/// The tag keys a runs table reads even when its filter and columns name no tag: each alert's
/// (the badge), the currency of a cost column, the preflight's outcome. Whole keys, so the store
/// finds them through its index on the key.
pub fn table_tags() -> Vec<String> {
    let mut keys: Vec<String> = alerts::Kind::ALL.iter().map(|k| k.tag()).collect();
    keys.push(efficiency::CURRENCY_TAG.to_string());
    keys.push(preflight::OUTCOME_TAG.to_string());
    keys
}

pub use gpu::{GpuProbe, GpuProcess, GpuSample, GpuSnapshot, MigInstance};
pub use imported::ImportedRun;
pub use model::{FileEntry, LogEntry, Manifest, ModelSummary, Problem, RunRef};
pub use process::ProcInfo;
pub use record::{Direction, RunRecord, SeriesSummary};
pub use run::{
    CRASHED_AFTER_MS, LOST_AFTER_MS, NewRun, Run, RunStatus, crashed_after_ms, lost_after_ms,
    set_crashed_after_ms, set_lost_after_ms,
};
pub use series::{Series, SeriesKind};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A new run id: 32 lowercase hex digits, random.
pub fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
