//! `Msg`: everything that can happen, from the terminal or any worker, as one type on one channel.

use std::sync::Arc;

use crate::config::KeyChord;
use crate::domain::{RunRecord, Series};

use super::runs::SeriesId;
use super::state::GpuProbe;

/// Everything that can happen, from any worker, as one type on one channel.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyChord),
    /// A left click at (column, row).
    Click(u16, u16),
    /// Mouse wheel: negative is up.
    Scroll(i8),
    /// Horizontal wheel or touchpad swipe: negative is left.
    ScrollX(i8),
    Resize(u16, u16),
    /// The clock worker: wall time and the HH:MM to show.
    Tick {
        now_ms: i64,
        clock: String,
    },
    /// Whole records of every run.
    RunsLoaded(Result<Vec<RunRecord>, String>),
    /// Every run's record holding the parts a `LoadRuns` asked for.
    RunsListed(Result<(Vec<RunRecord>, super::runs::Held), String>),
    /// Whole records of some runs (those open in a detail or comparison).
    RecordsLoaded(Vec<RunRecord>),
    /// The conditions of the runs compared (their ids as asked).
    ConditionsLoaded(Vec<String>, Vec<crate::domain::conditions::RunConditions>),
    /// Every metric name and every param name.
    KeysLoaded(Vec<String>, Vec<String>),
    SeriesLoaded(SeriesId, Result<Arc<Series>, String>),
    LogLoaded {
        run: String,
        lines: Vec<String>,
    },
    /// The store was written (a run logged, a run started or ended).
    StoreChanged,
    /// A run's output log grew.
    LogChanged(String),
    /// The result of an action, to show in the status line.
    Notice(String),
    ModelsLoaded(Result<Vec<crate::domain::ModelSummary>, String>),
    VersionsLoaded(String, Result<Vec<crate::domain::Manifest>, String>),
    /// What each version of a model cost to make, along its lineage, by version.
    LineageLoaded(String, Vec<(u32, crate::domain::model::Lineage)>),
    /// Verify results of one model: (version, badge).
    Verified(String, Vec<(u32, super::models::Badge)>),
    GpuProbed(GpuProbe),
    /// A GPU sample, the runs owning its processes, and the host's CPU % and memory.
    GpuSample(Box<super::gpus::GpuTick>),
    /// A model against the registry's remote (None: no remote).
    SyncLoaded(String, Option<crate::domain::model::SyncState>),
    /// A push or pull under way: what, bytes done, bytes in all.
    Transfer(String, u64, u64),
    /// A push or pull ended: what it did, or why not.
    Transferred(Result<String, String>),
    /// A read of the fleet: every host its sources reached, or why not.
    Fleet(Vec<crate::fleet::Host>),
    /// How many runs have each metric.
    MetricCounts(Vec<(String, i64)>),
    /// A fleet host's recent history (snapshots, oldest first), or why not.
    FleetHistory(String, Result<Vec<crate::domain::GpuSnapshot>, String>),
    /// The GPUs CUDA sees, in its numbering: name and UUID.
    BenchGpus(Vec<(String, String)>),
    /// The CUDA device the Bench tab would use, or why there is none.
    BenchProbed(Result<crate::domain::bench::DeviceInfo, String>),
    BenchEvent(crate::domain::bench::Event),
    /// A second of the sustained load.
    BenchWindow(crate::domain::bench::Window),
    /// The sustained load's summary, or why it failed.
    BenchBurned(Result<crate::domain::bench::Burn, String>),
    /// A benchmark run ended (its results are stored), or could not start.
    BenchDone(Result<crate::domain::bench::DeviceInfo, String>),
    BenchHistory(Result<Vec<crate::domain::bench::StoredBench>, String>),
    /// The terminal went away or we were asked to stop (SIGTERM, SIGHUP).
    Terminate(&'static str),
}

impl From<crate::tui::Input> for Msg {
    fn from(i: crate::tui::Input) -> Msg {
        use crate::tui::Input;
        match i {
            Input::Key(k) => Msg::Key(k),
            Input::Click(x, y) => Msg::Click(x, y),
            Input::Scroll(d) => Msg::Scroll(d),
            Input::ScrollX(d) => Msg::ScrollX(d),
            Input::Resize(w, h) => Msg::Resize(w, h),
            Input::Terminate(why) => Msg::Terminate(why),
        }
    }
}
