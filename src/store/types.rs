//! The store's own types, shared by both backends: what a page of runs is ordered by, which
//! parts of run records to read, ingest state and batches, experiment rows, model version rows.

use crate::domain::{Series, SeriesKind};

/// The run columns a page of runs can be ordered by in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOrder {
    Started,
    Name,
    Status,
    Experiment,
    Id,
}

/// What a page of runs is ordered by in SQL: a run column, the run's duration so far, or a
/// metric's last value (runs without the metric after the others, either way; NaN above every
/// number, as `f64::total_cmp` has it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageOrder {
    Column(RunOrder),
    Duration,
    Metric(String),
}

impl PageOrder {
    /// The order the store can give a page in for this sort (none for a param's).
    pub fn of(sort: &crate::filter::SortKey) -> Option<PageOrder> {
        Some(match sort.key.as_str() {
            "started" => PageOrder::Column(RunOrder::Started),
            "name" => PageOrder::Column(RunOrder::Name),
            "status" => PageOrder::Column(RunOrder::Status),
            "exp" => PageOrder::Column(RunOrder::Experiment),
            "id" => PageOrder::Column(RunOrder::Id),
            "duration" => PageOrder::Duration,
            k => PageOrder::Metric(k.strip_prefix("metric.")?.to_string()),
        })
    }
}

/// Which parts of run records to read besides the runs: params, tags, metric summaries. Params
/// and metrics may be limited to some keys (`only_params`, `only_metrics`; None is every key);
/// metrics limited so are read as a listing shows them: point count, last step and last value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    /// Only the run columns a listing shows, filters and sorts on: id, experiment, name, status,
    /// exit code, start, end and host (the command, environment, folders and git state left
    /// empty). A listing of 10,000 runs reads a third of the bytes.
    pub listing: bool,
    pub params: bool,
    pub tags: bool,
    /// Without `tags`: only gantry's own tags the runs table shows (`domain::table_tags`: the
    /// alerts' badge, the currency of a cost, the preflight's outcome).
    pub own_tags: bool,
    pub metrics: bool,
    pub only_params: Option<Vec<String>>,
    pub only_metrics: Option<Vec<String>>,
}

impl Parts {
    pub const ALL: Parts = Parts {
        listing: false,
        params: true,
        tags: true,
        own_tags: true,
        metrics: true,
        only_params: None,
        only_metrics: None,
    };
    pub const NONE: Parts = Parts {
        listing: false,
        params: false,
        tags: false,
        own_tags: false,
        metrics: false,
        only_params: None,
        only_metrics: None,
    };
    /// Whether every key of every part asked for is read.
    pub fn whole(&self) -> bool {
        self.only_params.is_none() && self.only_metrics.is_none()
    }
}

#[derive(Debug, Clone, Copy)]
pub enum PairTable {
    Params,
    Tags,
}

/// How far one metrics file of a run has been stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestState {
    pub byte_offset: i64,
    pub line_count: i64,
    pub malformed: i64,
    /// How often the file was found rewritten in place and read again from its start.
    pub rewrites: i64,
    /// Lines read again from the start of a rewritten file (they had been read once before).
    pub reread: i64,
}

/// What one ingest step stores: points per series, the file position after them, and the
/// malformed lines to remember (line number, reason).
#[derive(Debug, Default)]
pub struct IngestBatch {
    /// Where the source stood when this batch was read.
    pub from_offset: i64,
    pub series: Vec<(SeriesKind, String, Series)>,
    pub state: IngestState,
    pub malformed: Vec<(i64, String)>,
    /// The file's first bytes as read (at most 256), to tell a rewrite from an append.
    pub head: Vec<u8>,
}

/// An experiment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentRow {
    pub id: String,
    pub name: String,
    pub created_ms: i64,
}

/// A param that a run already has with another value: (key, stored value, new value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamConflict {
    pub key: String,
    pub stored: String,
    pub new: String,
}

/// A registered model version, as the store indexes it.
#[derive(Debug, Clone, Default)]
pub struct ModelVersionRow {
    pub model: String,
    pub version: i64,
    pub commit: String,
    pub run_id: Option<String>,
    pub author: String,
    pub notes: String,
    pub total_bytes: i64,
}

/// The most a chunk holds; a writer with more stores several.
pub const LOG_CHUNK_BYTES: usize = 256 * 1024;

/// One value of a row copied between stores, with its column's type (so a NULL is typed too).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    I32(Option<i32>),
    I64(Option<i64>),
    F64(Option<f64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

/// A column's type as Rust reads it from both backends: I32 only where both declare INTEGER
/// (PostgreSQL's is 32 bits, and it declares BIGINT wherever SQLite's INTEGER holds an i64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    I32,
    I64,
    F64,
    Text,
    Blob,
}

/// A table as `gantry store copy` moves it: its columns and its key.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub cols: &'static [(&'static str, Col)],
    pub key: &'static [&'static str],
}

impl Table {
    /// Where column `name` is in a row.
    pub fn at(&self, name: &str) -> usize {
        self.cols
            .iter()
            .position(|(c, _)| *c == name)
            .unwrap_or_else(|| panic!("{} has no column {name}", self.name))
    }
}

/// A batch of whole runs as `put_runs` writes them: the run rows, the rows of each table kept by
/// run (each replaced for the batch's runs), and the series with their chunks.
pub struct RunsBatch<'a> {
    pub ids: &'a [String],
    pub runs: (&'a Table, Vec<Vec<Cell>>),
    pub tables: Vec<(&'a Table, Vec<Vec<Cell>>)>,
    pub series: &'a Table,
    pub chunks: &'a Table,
    pub series_rows: Vec<(Vec<Cell>, Vec<Vec<Cell>>)>,
}
