//! `Effect`: work `update` asks for, as data, for the effect runner (or the loop's drawer) to do;
//! and `Outcome`, what one message did.

use super::runs::SeriesId;
use std::path::PathBuf;

/// Work for the effect runner; results come back as `Msg`.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Every run's record, holding the parts asked for (`Held::whole()`: everything).
    LoadRuns(super::runs::Held),
    /// These runs' whole records.
    LoadRecords(Vec<String>),
    /// The conditions of compared runs: "why was this run slower?".
    LoadConditions(Vec<String>),
    /// Every metric and param name, for the column chooser.
    LoadKeys,
    /// How many runs have each metric, for the table's default columns.
    LoadMetricCounts,
    LoadSeries(SeriesId),
    LoadLog(String),
    SetTag {
        run: String,
        key: String,
        value: String,
    },
    Rename {
        run: String,
        name: String,
    },
    Delete(String),
    /// Show a file in $PAGER, the terminal handed over meanwhile.
    Pager(PathBuf),
    /// Put text on the terminal's clipboard (OSC 52).
    Copy(String),
    LoadModels,
    LoadVersions(String),
    VerifyModel(String),
    Promote {
        model: String,
        version: u32,
        alias: String,
        reason: String,
    },
    /// Register a run's files (its run directory, gantry's own files left out) as a model version.
    Register {
        run: String,
        model: String,
    },
    /// How the selected model stands against the registry's remote.
    LoadSync(String),
    /// Push the registry to its remote (files, then branch and tags).
    PushModels,
    /// Fetch, then bring a version's files: `NAME@vN`.
    PullModel(String),
    /// Fetch a fleet host's recent history where its source keeps one (Prometheus).
    FleetHistory(Box<crate::fleet::Host>),
    /// Send a signal to a process.
    Kill {
        pid: u32,
        signal: i32,
    },
    /// Ask whether CUDA's libraries load, which GPUs CUDA sees, and what GPU `gpu` (CUDA's
    /// numbering) is.
    ProbeCuda {
        gpu: usize,
    },
    /// Run benchmarks on a thread of their own, storing the results, then a sustained load
    /// (its GEMM and seconds); on CUDA GPU `gpu`. None runs no benchmarks, only the load.
    RunBench {
        request: Option<crate::domain::bench::Request>,
        cpu: bool,
        gpu: usize,
        burn: Option<(crate::domain::bench::Spec, f64)>,
    },
    CancelBench,
    LoadBenchHistory,
}

/// What one message did: whether the screen must be redrawn, and the work it asks for.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub redraw: bool,
    pub effects: Vec<Effect>,
}

impl Outcome {
    pub(super) fn redraw() -> Self {
        Outcome {
            redraw: true,
            effects: Vec::new(),
        }
    }
    pub(super) fn none() -> Self {
        Outcome::default()
    }
}
