use super::out::{self, out};
use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::json;

use crate::domain::{SeriesKind, now_ms};
use crate::format::duration;

use super::common::{json_num, opt_num, run_json, when};

/// `gantry show RUN`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A run id, a unique id prefix, or a run name
    pub run: String,
    /// Print JSON (docs/cli-json.md)
    #[arg(long)]
    pub json: bool,
    /// With --json: every point of every metric, as step, time and value columns
    #[arg(long, requires = "json")]
    pub points: bool,
}

/// The run's preflight report, where it had one.
fn preflight(rec: &crate::domain::RunRecord) -> Option<crate::domain::preflight::Report> {
    serde_json::from_str(rec.tags.get(crate::domain::preflight::TAG)?).ok()
}

/// How many malformed lines `show` lists.
const SHOW_MALFORMED: usize = 5;

pub async fn run(args: Args, workspace: &Option<std::path::PathBuf>) -> anyhow::Result<ExitCode> {
    let (_, store) = super::common::open(workspace).await?;
    let run = store.resolve_run(&args.run).await?;
    let (rec, system) = store.run_record(&run.id).await?;
    let (bad, bad_total) = store.malformed(&run.id).await?;
    let rewrites = store.rewrites(&run.id).await?;
    let now = now_ms();
    let report = super::efficiency::Report::of(&store, &rec).await?;
    if args.json {
        let mut v = run_json(&rec, now);
        v["alerts"] = serde_json::to_value(crate::domain::alerts::of_tags(&rec.tags))?;
        v["events"] = serde_json::to_value(crate::domain::flight::of_tags(&rec.tags))?;
        v["preflight"] = preflight(&rec)
            .map(|p| serde_json::to_value(p).unwrap_or_default())
            .unwrap_or_default();
        v["efficiency"] = if report.is_empty() {
            serde_json::Value::Null
        } else {
            report.json(rec.run.started_ms)
        };
        v["system"] = system
            .iter()
            .map(|s| (s.key.clone(), json!({"points": s.n_points, "last": json_num(s.last), "min": json_num(s.min), "max": json_num(s.max)})))
            .collect::<serde_json::Map<_, _>>()
            .into();
        v["malformed"] = json!({
            "total": bad_total,
            "first": bad.iter().map(|(src, line, reason)| json!({"source": src, "line": line, "reason": reason})).collect::<Vec<_>>(),
        });
        v["rewritten"] = rewrites
            .iter()
            .map(|(src, n, again)| json!({"source": src, "rewrites": n, "lines_read_again": again}))
            .collect::<Vec<_>>()
            .into();
        if args.points {
            let mut series = serde_json::Map::new();
            for key in rec.metrics.keys() {
                let s = store.load_series(&run.id, SeriesKind::Metric, key).await?;
                let values: Vec<serde_json::Value> =
                    s.values.iter().map(|v| json_num(Some(*v))).collect();
                series.insert(
                    key.clone(),
                    json!({"steps": s.steps, "times_ms": s.times_ms, "values": values}),
                );
            }
            v["series"] = series.into();
        }
        out::json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let r = &rec.run;
    let mut o = String::new();
    let _ = writeln!(o, "run      {} {} ({})", r.short_id(), r.name, r.experiment);
    let ended = match r.ended_ms {
        Some(e) => format!("ended {}", when(e)),
        None => "still running".into(),
    };
    let _ = writeln!(
        o,
        "status   {} · ran {} · started {} · {ended}",
        super::common::run_status_text(r, now),
        duration(r.duration_ms(now)),
        when(r.started_ms)
    );
    let _ = writeln!(o, "command  {}", shell_words(&r.command));
    let _ = writeln!(o, "cwd      {}", r.cwd);
    let pid = r.pid.map_or_else(|| "-".into(), |p| p.to_string());
    let _ = writeln!(o, "host     {} · user {} · pid {pid}", r.host, r.user);
    let git = match (&r.git_commit, &r.git_branch, r.git_dirty) {
        (None, None, None) => "not in a git repository".to_string(),
        (c, b, d) => format!(
            "{} @ {}{}",
            b.as_deref().unwrap_or("(detached)"),
            c.as_deref()
                .map_or("(no commit)", |c| &c[..c.len().min(12)]),
            if d == Some(true) {
                " · dirty (uncommitted diff in git.diff)"
            } else {
                ""
            }
        ),
    };
    let _ = writeln!(o, "git      {git}");
    if !r.gpus.is_empty() {
        let _ = writeln!(o, "gpus     {}", r.gpus.join(", "));
    }
    for (label, text) in report.lines(now) {
        let _ = writeln!(o, "{label:<8} {text}");
    }
    if let Some(p) = preflight(&rec) {
        for (i, line) in crate::format::preflight::lines(&p).iter().enumerate() {
            let _ = writeln!(o, "{:<8} {line}", if i == 0 { "preflight" } else { "" });
        }
    }
    for a in crate::domain::alerts::of_tags(&rec.tags) {
        let _ = writeln!(
            o,
            "alert    {} {}: {}{}",
            a.kind.as_str(),
            if a.active() { "(active)" } else { "(cleared)" },
            a.message,
            a.step.map_or(String::new(), |s| format!(" (step {s})"))
        );
    }
    for e in crate::domain::flight::of_tags(&rec.tags) {
        let kept = if e.file.is_empty() {
            String::new()
        } else {
            format!(
                " · {} samples from {} in {}",
                e.frames,
                e.from_ms.map_or_else(|| "-".into(), when),
                e.file
            )
        };
        let _ = writeln!(
            o,
            "event    {} {}: {}{}{kept}",
            e.trigger.as_str(),
            when(e.at_ms),
            e.message,
            e.step.map_or(String::new(), |s| format!(" (step {s})"))
        );
    }
    if !r.env.is_empty() {
        let _ = writeln!(
            o,
            "env      {}",
            r.env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if !r.notes.is_empty() {
        let _ = writeln!(o, "notes    {}", r.notes);
    }
    let _ = writeln!(o, "files    {}", r.run_dir);
    if !rec.models.is_empty() {
        let made: Vec<String> = rec
            .models
            .iter()
            .map(|(m, v)| format!("{m}@v{v}"))
            .collect();
        let _ = writeln!(o, "models   {}", made.join(" "));
    }
    pairs_block(&mut o, "params", rec.params.iter());
    pairs_block(
        &mut o,
        "tags",
        rec.tags
            .iter()
            .filter(|(k, _)| !crate::domain::efficiency::is_internal_tag(k)),
    );
    if !rec.metrics.is_empty() {
        let _ = writeln!(
            o,
            "\n{:<28} {:>8} {:>10} {:>10} {:>10} {:>8}",
            "METRIC", "POINTS", "LAST", "MIN", "MAX", "STEP"
        );
        for (k, s) in &rec.metrics {
            let _ = writeln!(
                o,
                "{:<28} {:>8} {:>10} {:>10} {:>10} {:>8}",
                crate::format::fit(k, 28),
                s.n_points,
                opt_num(s.last),
                opt_num(s.min),
                opt_num(s.max),
                s.last_step.map_or_else(|| "-".into(), |x| x.to_string())
            );
        }
    }
    if !system.is_empty() {
        let _ = writeln!(
            o,
            "\n{:<28} {:>8} {:>10} {:>10} {:>10}",
            "SYSTEM", "SAMPLES", "LAST", "MIN", "MAX"
        );
        for s in &system {
            let _ = writeln!(
                o,
                "{:<28} {:>8} {:>10} {:>10} {:>10}",
                s.key,
                s.n_points,
                opt_num(s.last),
                opt_num(s.min),
                opt_num(s.max)
            );
        }
    }
    if bad_total > 0 {
        let _ = writeln!(
            o,
            "\nmalformed metric lines: {bad_total} (skipped; the run went on)"
        );
        for (src, line, reason) in bad.iter().take(SHOW_MALFORMED) {
            let file = if src == "stdout" {
                "output"
            } else {
                "metrics.jsonl"
            };
            let _ = writeln!(o, "  {file} line {line}: {reason}");
        }
    }
    for (src, n, again) in &rewrites {
        let file = if src == "stdout" {
            "stdout-metrics.jsonl"
        } else {
            "metrics.jsonl"
        };
        let _ = writeln!(
            o,
            "\n{file} was rewritten in place {n} time{} (written with `>` or open(path, \"w\"), not appended to): read again from its start each time; {again} line{} came again",
            if *n == 1 { "" } else { "s" },
            if *again == 1 { "" } else { "s" },
        );
    }
    out!("{o}");
    Ok(ExitCode::SUCCESS)
}

fn pairs_block<'a>(
    o: &mut String,
    title: &str,
    pairs: impl Iterator<Item = (&'a String, &'a String)>,
) {
    let items: Vec<String> = pairs.map(|(k, v)| format!("{k}={v}")).collect();
    if items.is_empty() {
        return;
    }
    let mut line = format!("{title:<8}");
    for it in items {
        if line.len() + it.len() + 1 > 80 && line.trim().len() > title.len() {
            let _ = writeln!(o, "{line}");
            line = " ".repeat(8);
        }
        line.push(' ');
        line.push_str(&it);
    }
    let _ = writeln!(o, "{line}");
}

/// The argv as a person would type it, quoting what needs quotes.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
