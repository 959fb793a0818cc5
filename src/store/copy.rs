//! Copying between stores (`gantry store copy`, `gantry sync`): experiments by name, runs whole
//! (the run row, params, tags, ingest state, malformed lines, series with their chunks as they
//! are, output), the models index and the bench history. Each run is replaced in the target, so
//! copying again updates and never duplicates.

use std::collections::HashMap;

use anyhow::Result;

use super::{Cell, Col, RunsBatch, Store, Table};

const RUNS: Table = Table {
    name: "runs",
    cols: &[
        ("id", Col::Text),
        ("experiment_id", Col::Text),
        ("name", Col::Text),
        ("status", Col::Text),
        ("exit_code", Col::I32),
        ("started_ms", Col::I64),
        ("ended_ms", Col::I64),
        ("host", Col::Text),
        ("user_name", Col::Text),
        ("pid", Col::I64),
        ("pid_start", Col::I64),
        ("command", Col::Text),
        ("cwd", Col::Text),
        ("git_commit", Col::Text),
        ("git_branch", Col::Text),
        ("git_dirty", Col::I64),
        ("notes", Col::Text),
        ("run_dir", Col::Text),
        ("env", Col::Text),
        ("gpus", Col::Text),
        ("supervisor_pid", Col::I64),
        ("supervisor_start", Col::I64),
        ("heartbeat_ms", Col::I64),
    ],
    key: &["id"],
};

const EXPERIMENTS: Table = Table {
    name: "experiments",
    cols: &[("id", Col::Text), ("name", Col::Text)],
    key: &["id"],
};

const PAIRS: [Table; 2] = [
    Table {
        name: "params",
        cols: &[
            ("run_id", Col::Text),
            ("key", Col::Text),
            ("value", Col::Text),
        ],
        key: &["run_id", "key"],
    },
    Table {
        name: "tags",
        cols: &[
            ("run_id", Col::Text),
            ("key", Col::Text),
            ("value", Col::Text),
        ],
        key: &["run_id", "key"],
    },
];

const INGEST: [Table; 4] = [
    Table {
        name: "ingest_sources",
        cols: &[
            ("run_id", Col::Text),
            ("source", Col::Text),
            ("byte_offset", Col::I64),
            ("line_count", Col::I64),
            ("malformed", Col::I64),
            ("head", Col::Blob),
            ("rewrites", Col::I64),
            ("reread", Col::I64),
        ],
        key: &["run_id", "source"],
    },
    Table {
        name: "malformed_lines",
        cols: &[
            ("run_id", Col::Text),
            ("source", Col::Text),
            ("line_no", Col::I64),
            ("reason", Col::Text),
        ],
        key: &["run_id", "source", "line_no"],
    },
    Table {
        name: "run_logs",
        cols: &[
            ("run_id", Col::Text),
            ("byte_offset", Col::I64),
            ("n_bytes", Col::I64),
            ("data", Col::Blob),
        ],
        key: &["run_id", "byte_offset"],
    },
    Table {
        name: "run_gpus",
        cols: &[
            ("run_id", Col::Text),
            ("uuid", Col::Text),
            ("first_ms", Col::I64),
        ],
        key: &["run_id", "uuid"],
    },
];

const SERIES: Table = Table {
    name: "series",
    cols: &[
        ("run_id", Col::Text),
        ("kind", Col::Text),
        ("key", Col::Text),
        ("n_points", Col::I64),
        ("n_chunks", Col::I64),
        ("last_step", Col::I64),
        ("last_value", Col::F64),
        ("min_value", Col::F64),
        ("max_value", Col::F64),
        ("min_step", Col::I64),
        ("max_step", Col::I64),
    ],
    key: &["run_id", "kind", "key"],
};

/// Each series' run and point count: what a batch of runs holds.
const SERIES_POINTS: Table = Table {
    name: "series",
    cols: &[("run_id", Col::Text), ("n_points", Col::I64)],
    key: &["run_id", "kind", "key"],
};

/// Runs copied in one transaction: at most this many, and at most `BATCH_POINTS` points (about
/// 16 MB of chunks) unless one run alone holds more.
const BATCH_RUNS: usize = 256;
const BATCH_POINTS: i64 = 4_000_000;

const CHUNKS: Table = Table {
    name: "series_chunks",
    cols: &[
        ("seq", Col::I64),
        ("first_step", Col::I64),
        ("last_step", Col::I64),
        ("n_points", Col::I64),
        ("data", Col::Blob),
    ],
    key: &["series_id", "seq"],
};

const MODELS: Table = Table {
    name: "model_versions",
    cols: &[
        ("model", Col::Text),
        ("version", Col::I64),
        ("commit_id", Col::Text),
        ("run_id", Col::Text),
        ("created_ms", Col::I64),
        ("author", Col::Text),
        ("notes", Col::Text),
        ("total_bytes", Col::I64),
    ],
    key: &["model", "version"],
};

const BENCH: Table = Table {
    name: "bench_results",
    cols: &[
        ("id", Col::Text),
        ("started_ms", Col::I64),
        ("host", Col::Text),
        ("backend", Col::Text),
        ("device", Col::Text),
        ("benchmark", Col::Text),
        ("config", Col::Text),
        ("unit", Col::Text),
        ("median", Col::F64),
        ("min_value", Col::F64),
        ("max_value", Col::F64),
        ("stddev", Col::F64),
        ("repetitions", Col::I64),
        ("peak", Col::F64),
        ("device_uuid", Col::Text),
        ("driver", Col::Text),
        ("cuda_version", Col::Text),
        ("pct_of_peak", Col::F64),
        ("check_ok", Col::I64),
        ("max_rel_err", Col::F64),
        ("conditions", Col::Text),
    ],
    key: &["id"],
};

/// What a copy moved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    pub runs: usize,
    pub points: i64,
    pub model_versions: usize,
    pub bench_results: usize,
}

fn text(c: &Cell) -> Option<&str> {
    match c {
        Cell::Text(Some(s)) => Some(s),
        _ => None,
    }
}

/// Copy runs `ids` (every run when None), in id order, from `from` into `to`, in batches of
/// runs each written in one transaction, with the models
/// index rows that can go with them and (for a whole copy) the bench history. `progress` is told
/// each run copied, and how many there are.
pub async fn copy(
    from: &Store,
    to: &Store,
    ids: Option<&[String]>,
    mut progress: impl FnMut(usize, usize),
) -> Result<Copied> {
    let experiments: HashMap<String, String> = from
        .rows(&EXPERIMENTS, "1 = 1", None)
        .await?
        .iter()
        .filter_map(|r| Some((text(&r[0])?.to_string(), text(&r[1])?.to_string())))
        .collect();
    let runs: Vec<Vec<Cell>> = match ids {
        None => from.rows(&RUNS, "1 = 1", None).await?,
        Some(ids) => from.rows_in(&RUNS, "id", ids).await?,
    };
    // Points per run, to cut the runs into batches that each fit in memory.
    let mut points: HashMap<String, i64> = HashMap::new();
    for r in from.rows(&SERIES_POINTS, "1 = 1", None).await? {
        if let (Some(id), Cell::I64(Some(n))) = (text(&r[0]), &r[1]) {
            *points.entry(id.to_string()).or_default() += n;
        }
    }
    let total = runs.len();
    let mut done = Copied::default();
    let mut target_exp: HashMap<String, String> = HashMap::new();
    let exp_at = RUNS.at("experiment_id");
    let mut left = runs.into_iter().peekable();
    while left.peek().is_some() {
        // A batch: up to BATCH_RUNS runs and BATCH_POINTS points (at least one run).
        let mut batch = Vec::new();
        let mut batch_points = 0;
        while let Some(run) = left.next_if(|r| {
            let n = points
                .get(text(&r[0]).unwrap_or_default())
                .copied()
                .unwrap_or(0);
            batch.is_empty() || (batch.len() < BATCH_RUNS && batch_points + n <= BATCH_POINTS)
        }) {
            batch_points += points
                .get(text(&run[0]).unwrap_or_default())
                .copied()
                .unwrap_or(0);
            batch.push(run);
        }
        let ids: Vec<String> = batch
            .iter()
            .map(|r| text(&r[0]).unwrap_or_default().to_string())
            .collect();
        for run in &mut batch {
            // Experiments go by name: the target may know one by another id.
            let name = text(&run[exp_at])
                .and_then(|e| experiments.get(e))
                .cloned()
                .unwrap_or_else(|| "default".to_string());
            let exp = match target_exp.get(&name) {
                Some(e) => e.clone(),
                None => {
                    let e = to.experiment_id(&name).await?;
                    target_exp.insert(name, e.clone());
                    e
                }
            };
            run[exp_at] = Cell::Text(Some(exp));
        }
        let mut tables = Vec::new();
        for t in PAIRS.iter().chain(INGEST.iter()) {
            tables.push((t, from.rows_in(t, "run_id", &ids).await?));
        }
        let series = from.series_of(&ids, &SERIES, &CHUNKS).await?;
        let n_at = SERIES.at("n_points");
        done.points += series
            .iter()
            .map(|(s, _)| match s[n_at] {
                Cell::I64(Some(n)) if text(&s[1]) == Some("metric") => n,
                _ => 0,
            })
            .sum::<i64>();
        let n = batch.len();
        to.put_runs(&RunsBatch {
            ids: &ids,
            runs: (&RUNS, batch),
            tables,
            series: &SERIES,
            chunks: &CHUNKS,
            series_rows: series,
        })
        .await?;
        done.runs += n;
        progress(done.runs, total);
    }
    // The models index: versions made from a copied run, and those made from no run.
    let run_at = MODELS.at("run_id");
    let copied: std::collections::HashSet<String> = match ids {
        Some(ids) => ids.iter().cloned().collect(),
        None => Default::default(),
    };
    let models: Vec<Vec<Cell>> = from
        .rows(&MODELS, "1 = 1", None)
        .await?
        .into_iter()
        .filter(|m| match text(&m[run_at]) {
            None => true,
            Some(r) => ids.is_none() || copied.contains(r),
        })
        .collect();
    done.model_versions = models.len();
    to.put_rows(&MODELS, None, &models).await?;
    if ids.is_none() {
        let bench = from.rows(&BENCH, "1 = 1", None).await?;
        done.bench_results = bench.len();
        to.put_rows(&BENCH, None, &bench).await?;
    }
    Ok(done)
}
