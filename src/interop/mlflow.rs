//! MLflow's two stores. The FileStore tree: `mlruns/<experiment>/<run>/{meta.yaml, metrics/, params/,
//! tags/}`, metric files of `timestamp value [step]` lines, keys that may hold `/` (nested folders),
//! run status codes 1-5. The SQLite store (`mlflow.db`, MLflow's default since 3.x): tables
//! experiments, runs, params, tags, metrics (with `is_nan`; infinities stored as ±f64::MAX).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use serde::Deserialize;

use super::{ImportedRun, run_id_from};
use crate::domain::{RunStatus, Series};

/// The host recorded for imported MLflow runs (MLflow does not keep one).
pub const HOST: &str = "mlflow";

pub fn status_from_code(code: i64) -> Option<RunStatus> {
    match code {
        1 | 2 => Some(RunStatus::Running), // RUNNING, SCHEDULED
        3 => Some(RunStatus::Finished),
        4 => Some(RunStatus::Failed),
        5 => Some(RunStatus::Killed),
        _ => None,
    }
}

pub fn status_from_name(name: &str) -> Option<RunStatus> {
    match name {
        "RUNNING" | "SCHEDULED" => Some(RunStatus::Running),
        "FINISHED" => Some(RunStatus::Finished),
        "FAILED" => Some(RunStatus::Failed),
        "KILLED" => Some(RunStatus::Killed),
        _ => None,
    }
}

#[derive(Deserialize)]
struct ExperimentMeta {
    experiment_id: serde_yaml_ng::Value,
    name: String,
    #[serde(default)]
    lifecycle_stage: Option<String>,
}

#[derive(Deserialize)]
struct RunMeta {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    run_uuid: Option<String>,
    #[serde(default)]
    run_name: Option<String>,
    #[serde(default)]
    start_time: Option<i64>,
    #[serde(default)]
    end_time: Option<i64>,
    #[serde(default)]
    status: Option<i64>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    lifecycle_stage: Option<String>,
    #[serde(default)]
    source_name: Option<String>,
}

/// Where the FileStore tree is: PATH itself, or PATH/mlruns.
pub fn find_file_store(path: &Path) -> Option<PathBuf> {
    let looks = |p: &Path| p.join("0").join("meta.yaml").is_file() || has_experiment(p);
    if looks(path) {
        return Some(path.to_path_buf());
    }
    let nested = path.join("mlruns");
    looks(&nested).then_some(nested)
}

fn has_experiment(p: &Path) -> bool {
    std::fs::read_dir(p)
        .map(|d| {
            d.flatten().any(|e| {
                e.path().join("meta.yaml").is_file()
                    && !e.file_name().to_string_lossy().starts_with('.')
            })
        })
        .unwrap_or(false)
}

/// (experiment, run dir) pairs; deleted experiments skipped; experiment folders without meta.yaml.
pub type FileStoreRuns = (Vec<(String, PathBuf)>, usize, Vec<PathBuf>);

/// The run directories of a FileStore tree, with their experiment names: (experiment, run dir).
/// Also returns how many deleted experiments were skipped, and the folders that look like
/// experiments (they hold folders) but have no meta.yaml, so were not read.
pub fn file_store_runs(root: &Path) -> Result<FileStoreRuns> {
    let mut out = Vec::new();
    let mut deleted = 0;
    let mut no_meta = Vec::new();
    let mut exps: Vec<PathBuf> = std::fs::read_dir(root)
        .with_context(|| format!("reading {}", root.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    exps.sort();
    for exp in exps {
        let meta_path = exp.join("meta.yaml");
        let Ok(text) = std::fs::read_to_string(&meta_path) else {
            // `.trash` and other folders without runs are not worth a word; one with run
            // folders is an experiment whose meta.yaml went missing.
            let holds_runs = std::fs::read_dir(&exp).is_ok_and(|mut d| {
                d.any(|e| e.is_ok_and(|e| e.path().join("meta.yaml").is_file()))
            });
            if holds_runs {
                no_meta.push(exp);
            }
            continue;
        };
        let meta: ExperimentMeta =
            serde_yaml_ng::from_str(&text).with_context(|| format!("{}", meta_path.display()))?;
        let _ = meta.experiment_id;
        if meta.lifecycle_stage.as_deref() == Some("deleted") {
            deleted += 1;
            continue;
        }
        let mut runs: Vec<PathBuf> = std::fs::read_dir(&exp)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("meta.yaml").is_file())
            .collect();
        runs.sort();
        for r in runs {
            out.push((meta.name.clone(), r));
        }
    }
    Ok((out, deleted, no_meta))
}

/// Read one FileStore run. None when the run is deleted.
pub fn read_file_run(experiment: &str, dir: &Path) -> Result<Option<ImportedRun>> {
    let meta_path = dir.join("meta.yaml");
    let text = std::fs::read_to_string(&meta_path)
        .with_context(|| format!("reading {}", meta_path.display()))?;
    let meta: RunMeta =
        serde_yaml_ng::from_str(&text).with_context(|| format!("{}", meta_path.display()))?;
    if meta.lifecycle_stage.as_deref() == Some("deleted") {
        return Ok(None);
    }
    let source_id = meta
        .run_id
        .or(meta.run_uuid)
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .ok_or_else(|| anyhow!("{} has no run id", meta_path.display()))?;
    let params = read_key_files(&dir.join("params"))?;
    let tags = read_key_files(&dir.join("tags"))?;
    let mut metrics = Vec::new();
    let mut problems = Vec::new();
    for (key, path) in key_files(&dir.join("metrics"))? {
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let (series, bad) = parse_metric_file(&text);
        problems.extend(bad.into_iter().map(|b| format!("{}: {b}", path.display())));
        metrics.push((key, series));
    }
    let tag = |k: &str| tags.iter().find(|(t, _)| t == k).map(|(_, v)| v.clone());
    let name = meta
        .run_name
        .filter(|n| !n.is_empty())
        .or_else(|| tag("mlflow.runName"))
        .unwrap_or_else(|| source_id.clone());
    Ok(Some(ImportedRun {
        id: run_id_from(&source_id, "mlflow"),
        experiment: experiment.to_string(),
        name,
        status: meta.status.and_then(status_from_code),
        started_ms: meta.start_time.unwrap_or(0),
        ended_ms: meta.end_time,
        user: meta.user_id.unwrap_or_default(),
        host: HOST.into(),
        command: meta
            .source_name
            .filter(|s| !s.is_empty())
            .into_iter()
            .collect(),
        git_commit: tag("mlflow.source.git.commit"),
        git_branch: tag("mlflow.source.git.branch"),
        params,
        tags,
        metrics,
        problems,
    }))
}

/// Files under `dir`, recursively, with their key: the path relative to `dir` joined by `/`.
fn key_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                let key = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((key, p));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn read_key_files(dir: &Path) -> Result<Vec<(String, String)>> {
    key_files(dir)?
        .into_iter()
        .map(|(k, p)| {
            Ok((
                k,
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
            ))
        })
        .collect()
}

/// `timestamp value [step]` lines. Values may be `nan`, `inf`, `-inf`. A line that does not parse
/// is skipped and described (with its line number); the others are kept.
pub fn parse_metric_file(text: &[u8]) -> (Series, Vec<String>) {
    let mut s = Series::with_capacity(text.len() / 24);
    let mut bad_lines = Vec::new();
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            bad_lines.push(format!("line {}: invalid UTF-8", i + 1));
            continue;
        };
        let mut f = line.split_ascii_whitespace();
        let parsed = (|| {
            let ts: i64 = f.next()?.parse().ok()?;
            let value = parse_value(f.next()?)?;
            let step: i64 = match f.next() {
                Some(x) => x.parse().ok()?,
                None => 0,
            };
            Some((ts, value, step))
        })();
        match parsed {
            Some((ts, value, step)) => s.push(step, ts, value),
            None => bad_lines.push(format!(
                "line {}: expected `timestamp value [step]`, got `{}`",
                i + 1,
                line.escape_default()
            )),
        }
    }
    (s, bad_lines)
}

fn parse_value(x: &str) -> Option<f64> {
    match x {
        "nan" | "NaN" => Some(f64::NAN),
        "inf" | "Infinity" => Some(f64::INFINITY),
        "-inf" | "-Infinity" => Some(f64::NEG_INFINITY),
        _ => x.parse().ok(),
    }
}

/// Read every run of an MLflow SQLite store (deleted ones left out). Returns the runs and how
/// many deleted ones were skipped. Read with rusqlite on a blocking thread: it steps rows in about
/// 100 ns where an async driver's per-row hand-off costs microseconds, and metrics tables hold
/// millions of rows.
pub async fn read_db(path: &Path) -> Result<(Vec<ImportedRun>, usize)> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || read_db_blocking(&path)).await?
}

fn read_db_blocking(path: &Path) -> Result<(Vec<ImportedRun>, usize)> {
    use rusqlite::{Connection, OpenFlags};
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", path.display()))?;
    let has_runs: bool = db
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'runs'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .with_context(|| format!("reading {}", path.display()))?;
    if !has_runs {
        return Err(anyhow!(
            "{} is not an MLflow database (no runs table)",
            path.display()
        ));
    }
    let mut exps: HashMap<i64, String> = HashMap::new();
    let mut q = db.prepare("SELECT experiment_id, name FROM experiments")?;
    for r in q.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
        let (id, name) = r?;
        exps.insert(id, name);
    }
    let mut runs: Vec<ImportedRun> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut deleted = 0;
    let mut q = db.prepare(
        "SELECT run_uuid, name, status, start_time, end_time, user_id, lifecycle_stage, experiment_id, source_name \
         FROM runs ORDER BY start_time, run_uuid",
    )?;
    let mut rows = q.query([])?;
    while let Some(r) = rows.next()? {
        let uuid: String = r.get(0)?;
        if r.get::<_, Option<String>>(6)?.as_deref() == Some("deleted") {
            deleted += 1;
            continue;
        }
        let exp_id: Option<i64> = r.get(7)?;
        index.insert(uuid.clone(), runs.len());
        runs.push(ImportedRun {
            id: run_id_from(&uuid, "mlflow"),
            experiment: exp_id
                .and_then(|e| exps.get(&e).cloned())
                .unwrap_or_else(|| "Default".into()),
            name: r
                .get::<_, Option<String>>(1)?
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| uuid.clone()),
            status: r
                .get::<_, Option<String>>(2)?
                .as_deref()
                .and_then(status_from_name),
            started_ms: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
            ended_ms: r.get(4)?,
            user: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
            host: HOST.into(),
            command: r
                .get::<_, Option<String>>(8)?
                .filter(|s| !s.is_empty())
                .into_iter()
                .collect(),
            ..ImportedRun::default()
        });
    }
    drop(rows);
    for (sql, is_param) in [
        (
            "SELECT run_uuid, key, value FROM params ORDER BY run_uuid, key",
            true,
        ),
        (
            "SELECT run_uuid, key, value FROM tags ORDER BY run_uuid, key",
            false,
        ),
    ] {
        let mut q = db.prepare(sql)?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            let uuid: String = r.get(0)?;
            let Some(&i) = index.get(&uuid) else { continue };
            let pair = (
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?.unwrap_or_default(),
            );
            if is_param {
                runs[i].params.push(pair);
            } else {
                runs[i].tags.push(pair);
            }
        }
    }
    for run in &mut runs {
        let tag = |k: &str| {
            run.tags
                .iter()
                .find(|(t, _)| t == k)
                .map(|(_, v)| v.clone())
        };
        run.git_commit = tag("mlflow.source.git.commit");
        run.git_branch = tag("mlflow.source.git.branch");
    }
    // Read in storage order and sorted here: SQLite's sorter over millions of rows costs more
    // than reading them. Points of one series are ordered by step, then time; equal ones keep
    // the order they were logged in.
    let mut q = db.prepare("SELECT run_uuid, key, value, timestamp, step, is_nan FROM metrics")?;
    let mut rows = q.query([])?;
    // (step, time, value) of each series, by run (its index in `runs`) and key. Rows come in
    // logging order: the run is most often the last row's, and the key the one after the last
    // row's, so most rows are placed without hashing.
    type Points = Vec<(i64, i64, f64)>;
    let mut series: Vec<Vec<(String, Points)>> = vec![Vec::new(); runs.len()];
    let (mut last_uuid, mut last_run, mut last_key) = (String::new(), None::<usize>, 0usize);
    while let Some(r) = rows.next()? {
        let uuid = r.get_ref(0)?.as_str()?;
        if uuid != last_uuid {
            last_uuid.clear();
            last_uuid.push_str(uuid);
            last_run = index.get(uuid).copied();
            last_key = 0;
        }
        let Some(i) = last_run else { continue };
        let key = r.get_ref(1)?.as_str()?;
        let keys = &mut series[i];
        let slot = [last_key + 1, last_key]
            .into_iter()
            .find(|&k| keys.get(k).is_some_and(|(name, _)| name == key))
            .or_else(|| keys.iter().position(|(name, _)| name == key))
            .unwrap_or_else(|| {
                keys.push((key.to_string(), Vec::new()));
                keys.len() - 1
            });
        last_key = slot;
        let mut value: f64 = r.get(2)?;
        if r.get::<_, bool>(5)? {
            value = f64::NAN;
        } else if value == f64::MAX {
            value = f64::INFINITY; // MLflow stores infinities as the largest finite double
        } else if value == f64::MIN {
            value = f64::NEG_INFINITY;
        }
        keys[slot].1.push((r.get(4)?, r.get(3)?, value));
    }
    for (run, mut keys) in runs.iter_mut().zip(series) {
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, mut points) in keys {
            points.sort_by_key(|&(step, time, _)| (step, time));
            let mut s = Series::with_capacity(points.len());
            for (step, time, v) in points {
                s.push(step, time, v);
            }
            run.metrics.push((key, s));
        }
    }
    Ok((runs, deleted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines_with_and_without_step() {
        let (s, bad) =
            parse_metric_file(b"1700000000000 0.5 3\n1700000000001 nan 4\n1700000000002 -inf\n\n");
        assert!(bad.is_empty());
        assert_eq!(s.steps, [3, 4, 0]);
        assert_eq!(
            s.times_ms,
            [1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_002]
        );
        assert!(s.values[1].is_nan() && s.values[2] == f64::NEG_INFINITY);
        // One bad line is counted and skipped; the lines around it are kept.
        let (s, bad) = parse_metric_file(b"1 2 3\nbroken\n4 5 6\n");
        assert_eq!(s.steps, [3, 6]);
        assert_eq!(bad.len(), 1);
        assert!(
            bad[0].contains("line 2") && bad[0].contains("broken"),
            "{bad:?}"
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(status_from_code(3), Some(RunStatus::Finished));
        assert_eq!(status_from_code(5), Some(RunStatus::Killed));
        assert_eq!(status_from_name("FAILED"), Some(RunStatus::Failed));
        assert_eq!(status_from_code(9), None);
    }
}
