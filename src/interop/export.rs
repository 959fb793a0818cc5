//! Runs out: CSV and JSON lines (one row per point), or an MLflow FileStore tree that MLflow reads.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::domain::{RunRecord, RunStatus, Series, SeriesKind};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
    Mlflow,
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// NaN and infinities spelled as MLflow and pandas read them.
fn value_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v}")
    }
}

async fn each_series(
    store: &Store,
    rec: &RunRecord,
    mut f: impl FnMut(&str, &Series) -> Result<()>,
) -> Result<()> {
    for key in rec.metrics.keys() {
        let s = store
            .load_series(&rec.run.id, SeriesKind::Metric, key)
            .await?;
        f(key, &s)?;
    }
    Ok(())
}

/// `run_id,run_name,experiment,key,step,time_ms,value`, one row per point.
pub async fn csv(store: &Store, runs: &[RunRecord], out: &mut impl Write) -> Result<usize> {
    writeln!(out, "run_id,run_name,experiment,key,step,time_ms,value")?;
    let mut n = 0;
    for rec in runs {
        let prefix = format!(
            "{},{},{}",
            rec.run.id,
            csv_field(&rec.run.name),
            csv_field(&rec.run.experiment)
        );
        each_series(store, rec, |key, s| {
            let key = csv_field(key);
            for i in 0..s.len() {
                writeln!(
                    out,
                    "{prefix},{key},{},{},{}",
                    s.steps[i],
                    s.times_ms[i],
                    value_text(s.values[i])
                )?;
            }
            n += s.len();
            Ok(())
        })
        .await?;
    }
    Ok(n)
}

/// One JSON object per point: `{"run", "name", "experiment", "key", "step", "time", "value"}`;
/// `time` in seconds; NaN and infinities as the strings "NaN", "Infinity", "-Infinity".
pub async fn jsonl(store: &Store, runs: &[RunRecord], out: &mut impl Write) -> Result<usize> {
    let mut n = 0;
    for rec in runs {
        each_series(store, rec, |key, s| {
            for i in 0..s.len() {
                let v = s.values[i];
                let value = if v.is_finite() {
                    serde_json::json!(v)
                } else {
                    serde_json::json!(if v.is_nan() { "NaN" } else if v > 0.0 { "Infinity" } else { "-Infinity" })
                };
                let line = serde_json::json!({
                    "run": rec.run.id, "name": rec.run.name, "experiment": rec.run.experiment,
                    "key": key, "step": s.steps[i], "time": s.times_ms[i] as f64 / 1000.0, "value": value,
                });
                writeln!(out, "{line}")?;
            }
            n += s.len();
            Ok(())
        })
        .await?;
    }
    Ok(n)
}

/// An MLflow FileStore tree under `root` (made if missing): an experiment folder per experiment
/// with MLflow's numeric ids, and per run meta.yaml, params/, tags/ and metrics/ (keys with `/`
/// become folders, as MLflow writes them).
pub async fn mlflow(store: &Store, runs: &[RunRecord], root: &Path) -> Result<usize> {
    let write = |p: &Path, text: &str| -> Result<()> {
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))
    };
    let now = crate::domain::now_ms();
    let exp_meta = |id: &str, name: &str, dir: &Path| {
        format!(
            "artifact_location: file://{}\ncreation_time: {now}\nexperiment_id: '{id}'\nlast_update_time: {now}\n\
             lifecycle_stage: active\nname: {}\n",
            dir.display(),
            yaml_str(name)
        )
    };
    // Every key is checked before anything is written: a key that cannot be a file leaves no
    // partial tree behind.
    for rec in runs {
        for (what, keys) in [
            ("param", rec.params.keys().collect::<Vec<_>>()),
            ("tag", rec.tags.keys().collect()),
            ("metric", rec.metrics.keys().collect()),
        ] {
            check_keys(&rec.run, what, &keys)?;
        }
    }
    let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    if !root.join("0").join("meta.yaml").exists() {
        write(
            &root.join("0").join("meta.yaml"),
            &exp_meta("0", "Default", &root.join("0")),
        )?;
    }
    let mut n = 0;
    for rec in runs {
        let r = &rec.run;
        // MLflow's file store wants numeric experiment ids: a stable one from the name.
        let exp_id =
            (u64::from_str_radix(&blake3::hash(r.experiment.as_bytes()).to_hex()[..15], 16)
                .unwrap_or(1))
            .to_string();
        let exp_dir = root.join(&exp_id);
        if !exp_dir.join("meta.yaml").exists() {
            write(
                &exp_dir.join("meta.yaml"),
                &exp_meta(&exp_id, &r.experiment, &exp_dir),
            )?;
        }
        let run_dir = exp_dir.join(&r.id);
        let status = match r.status {
            RunStatus::Running => 1,
            RunStatus::Finished => 3,
            RunStatus::Failed | RunStatus::Crashed => 4,
            RunStatus::Killed => 5,
        };
        let end = r
            .ended_ms
            .map_or_else(|| "null".to_string(), |e| e.to_string());
        write(
            &run_dir.join("meta.yaml"),
            &format!(
                "artifact_uri: file://{}/artifacts\nend_time: {end}\nentry_point_name: ''\nexperiment_id: '{exp_id}'\n\
                 lifecycle_stage: active\nrun_id: {id}\nrun_name: {name}\nrun_uuid: {id}\nsource_name: {src}\n\
                 source_type: 4\nsource_version: ''\nstart_time: {start}\nstatus: {status}\ntags: []\nuser_id: {user}\n",
                run_dir.display(),
                id = r.id,
                name = yaml_str(&r.name),
                src = yaml_str(&r.command.join(" ")),
                start = r.started_ms,
                user = yaml_str(&r.user),
            ),
        )?;
        std::fs::create_dir_all(run_dir.join("artifacts"))?;
        for (k, v) in &rec.params {
            write(&run_dir.join("params").join(safe_key(k)?), v)?;
        }
        let mut tags: Vec<(String, String)> = rec
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !tags.iter().any(|(k, _)| k == "mlflow.runName") {
            tags.push(("mlflow.runName".into(), r.name.clone()));
        }
        if let Some(c) = &r.git_commit {
            tags.push(("mlflow.source.git.commit".into(), c.clone()));
        }
        for (k, v) in &tags {
            write(&run_dir.join("tags").join(safe_key(k)?), v)?;
        }
        let mut metrics = Vec::new();
        each_series(store, rec, |key, s| {
            let mut text = String::with_capacity(s.len() * 24);
            for i in 0..s.len() {
                let v = s.values[i];
                let v = if v.is_nan() {
                    "nan".to_string()
                } else {
                    value_text(v)
                };
                text += &format!("{} {v} {}\n", s.times_ms[i], s.steps[i]);
            }
            n += s.len();
            metrics.push((key.to_string(), text));
            Ok(())
        })
        .await?;
        for (key, text) in metrics {
            write(&run_dir.join("metrics").join(safe_key(&key)?), &text)?;
        }
    }
    Ok(n)
}

/// A key as a relative path inside the run: not empty, no absolute paths, no `.` or `..`, no
/// empty part (`x/`, `a//b`).
fn safe_key(key: &str) -> Result<std::path::PathBuf> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        anyhow::bail!(crate::error::UserError::new(format!(
            "the key `{}` cannot be a file name in an MLflow tree",
            key.escape_default()
        ))
        .hint("MLflow keeps each key as a file: rename it, or export with --format csv or jsonl, which keep any key"));
    }
    Ok(std::path::PathBuf::from(key))
}

/// Keys of one kind of one run: each a safe file name, and none a folder of another (`a` and
/// `a/b` cannot both be files).
fn check_keys(run: &crate::domain::Run, what: &str, keys: &[&String]) -> Result<()> {
    let in_run = |e: anyhow::Error| e.context(format!("{what} of run {}", run.short_id()));
    let mut sorted: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
    sorted.sort_unstable();
    for k in &sorted {
        safe_key(k).map_err(in_run)?;
    }
    let all: std::collections::BTreeSet<&str> = sorted.iter().copied().collect();
    for k in &sorted {
        for (i, _) in k.match_indices('/') {
            let folder = &k[..i];
            if all.contains(folder) {
                return Err(in_run(anyhow::anyhow!(crate::error::UserError::new(format!(
                    "the keys `{folder}` and `{k}` collide in an MLflow tree: the first would be both a file and a folder"
                ))
                .hint("rename one, or export with --format csv or jsonl"))));
            }
        }
    }
    Ok(())
}

fn yaml_str(s: &str) -> String {
    serde_yaml_ng::to_string(s)
        .map(|y| y.trim_end().to_string())
        .unwrap_or_else(|_| format!("'{s}'"))
}
