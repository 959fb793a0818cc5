//! Plain data types shared by every room: runs, series. No I/O here.

mod gpu;
mod record;
mod run;
mod series;

pub use gpu::GpuProbe;
pub use record::{Direction, RunRecord, SeriesSummary};
pub use run::{NewRun, Run, RunStatus};
pub use series::{Series, SeriesKind};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A new run id: 32 lowercase hex digits, random.
pub fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
