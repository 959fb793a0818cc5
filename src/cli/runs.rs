use super::out::{self, out, outln};
use std::process::ExitCode;

use crate::domain::{RunRecord, now_ms};
use crate::error::UserError;
use crate::filter::{self, SortKey};
use crate::format::{ago, duration, fit};
use crate::store::{PageOrder, Parts, RunOrder};

use super::common::{run_json, run_status_text};

/// `gantry runs`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only runs matching this filter (see docs/filter.md), e.g. 'status:finished param.lr>=1e-3'
    #[arg(short, long, default_value = "")]
    pub filter: String,
    /// Sort key: started, name, status, exp, duration, id, param.NAME, metric.NAME; a leading `-`
    /// sorts descending
    #[arg(short, long, default_value = "-started", allow_hyphen_values = true)]
    pub sort: String,
    /// Show at most this many runs (0: all)
    #[arg(short, long, default_value_t = 50)]
    pub limit: usize,
    /// Print JSON: an array of runs (docs/cli-json.md)
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args, workspace: &Option<std::path::PathBuf>) -> anyhow::Result<ExitCode> {
    let expr = filter::parse(&args.filter).map_err(|e| {
        UserError::new(format!("bad --filter {}", e.pointed(&args.filter)))
            .hint("see docs/filter.md for the filter language")
    })?;
    let sort = SortKey::parse(&args.sort)?;
    let (_, store) = super::common::open(workspace).await?;
    let now = now_ms();
    // The database picks, orders and cuts the page where it can (SQLite: every filter, every
    // sort but a param's), so only the page is read.
    let filter = (!args.filter.trim().is_empty()).then_some(&expr);
    let page = match PageOrder::of(&sort) {
        Some(order) => {
            store
                .runs_page(filter, &order, sort.desc, args.limit, now)
                .await?
        }
        None => None,
    };
    let (shown, matched, any) = match page {
        Some((runs, total)) => {
            let any = total > 0
                || store
                    .runs_page(None, &PageOrder::Column(RunOrder::Id), false, 1, now)
                    .await?
                    .is_some_and(|(_, n)| n > 0);
            let shown: Vec<RunRecord> = runs.into_iter().map(RunRecord::bare).collect();
            (shown, total as usize, any)
        }
        None => {
            // Read only what the filter and the sort need; what is shown is filled in afterwards.
            let records = store.run_records_with(needed_parts(&expr, &sort)).await?;
            let mut shown = filter::matching_sorted(&records, &expr, &sort, now);
            let matched = shown.len();
            if args.limit > 0 {
                shown.truncate(args.limit);
            }
            let shown = shown.into_iter().cloned().collect();
            (shown, matched, !records.is_empty())
        }
    };
    if args.json {
        // The JSON form carries every part: fill in, for the shown runs only, what was not read.
        let mut full = shown;
        store.fill_records(&mut full, &Parts::ALL).await?;
        let v: Vec<_> = full.iter().map(|r| run_json(r, now)).collect();
        out::json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<&RunRecord> = shown.iter().collect();
    out!("{}", table(&rows, now));
    if matched > shown.len() {
        outln!("… {} more (--limit 0 shows all)", matched - shown.len());
    }
    if matched == 0 {
        eprintln!(
            "{}",
            if any {
                "no run matches the filter"
            } else {
                "no runs yet: start one with `gantry run -- CMD`"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The parts of run records a filter and sort read (the listing's columns, and only the params
/// and metrics they name); `--json` fills in the shown runs whole afterwards.
fn needed_parts(expr: &filter::Expr, sort: &SortKey) -> Parts {
    let mut reads = expr.reads();
    if let Some(p) = sort.key.strip_prefix("param.") {
        reads.params.insert(p.to_string());
    }
    if let Some(m) = sort.key.strip_prefix("metric.") {
        reads.metrics.insert(m.to_string());
    }
    Parts {
        listing: true,
        params: !reads.params.is_empty(),
        tags: reads.tags,
        own_tags: false,
        metrics: !reads.metrics.is_empty(),
        only_params: Some(reads.params.into_iter().collect()),
        only_metrics: Some(reads.metrics.into_iter().collect()),
    }
}

/// The human table: fits 80 columns. Runs from more than one host get a HOST column (the name
/// and experiment narrower to make room).
pub fn table(rows: &[&RunRecord], now: i64) -> String {
    let many_hosts = rows
        .first()
        .is_some_and(|f| rows.iter().any(|r| r.run.host != f.run.host));
    let (name_w, exp_w) = if many_hosts { (16, 8) } else { (24, 10) };
    let host = |h: &str| {
        if many_hosts {
            format!("{:<8}  ", fit(h, 8))
        } else {
            String::new()
        }
    };
    let mut out = format!(
        "{:<8}  {:<name_w$}  {:<12}  {:<exp_w$}  {}{:>8}  {:>8}\n",
        "ID",
        "NAME",
        "STATUS",
        "EXP",
        host("HOST"),
        "STARTED",
        "TIME"
    );
    for r in rows {
        let run = &r.run;
        out += &format!(
            "{:<8}  {:<name_w$}  {:<12}  {:<exp_w$}  {}{:>8}  {:>8}\n",
            run.short_id(),
            fit(&run.name, name_w),
            fit(&run_status_text(run, now), 12),
            fit(&run.experiment, exp_w),
            host(&run.host),
            ago(run.started_ms, now)
                .replace(" ago", "")
                .replace("just now", "now"),
            duration(run.duration_ms(now)),
        );
    }
    out
}
