use super::out::{self, out, outln};
use std::cmp::Ordering;
use std::process::ExitCode;

use crate::domain::{RunRecord, now_ms};
use crate::error::UserError;
use crate::filter::{self, Subject};
use crate::format::{ago, duration, fit};
use crate::store::{Parts, RunOrder};

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
    // Read only what the filter and the sort need; what is shown is filled in afterwards.
    let mut reads = expr.reads();
    if let Some(p) = sort.key.strip_prefix("param.") {
        reads.params.insert(p.to_string());
    }
    if let Some(m) = sort.key.strip_prefix("metric.") {
        reads.metrics.insert(m.to_string());
    }
    let needed = Parts {
        // The table shows, and a filter or sort reads, only a listing's columns; `--json` fills
        // in the shown runs whole below.
        listing: true,
        params: !reads.params.is_empty(),
        tags: reads.tags,
        metrics: !reads.metrics.is_empty(),
        only_params: Some(reads.params.into_iter().collect()),
        only_metrics: Some(reads.metrics.into_iter().collect()),
    };
    let now = now_ms();
    // No filter and a sort on a run column: the database orders and cuts, and only the page is
    // read (a workspace of 10,000 runs lists 50 of them).
    let page = match (args.filter.trim().is_empty(), sort.run_order(), args.limit) {
        (true, Some(order), limit) if limit > 0 => {
            Some(store.runs_page(order, sort.desc, limit).await?)
        }
        _ => None,
    };
    let records = match &page {
        Some((runs, _)) => runs.iter().map(|r| RunRecord::bare(r.clone())).collect(),
        None => store.run_records_with(needed.clone()).await?,
    };
    let mut shown: Vec<&RunRecord> = records
        .iter()
        .filter(|r| {
            expr.matches(&Subject {
                run: &r.run,
                params: &r.params,
                tags: &r.tags,
                metrics: &r.metrics,
            })
        })
        .collect();
    sort.sort(&mut shown, now);
    let matched = page
        .as_ref()
        .map_or(shown.len(), |(_, total)| *total as usize);
    if args.limit > 0 {
        shown.truncate(args.limit);
    }
    if args.json {
        // The JSON form carries every part: fill in, for the shown runs only, what was not read.
        let mut full: Vec<RunRecord> = shown.iter().map(|r| (*r).clone()).collect();
        store.fill_records(&mut full, &Parts::ALL).await?;
        let v: Vec<_> = full.iter().map(|r| run_json(r, now)).collect();
        out::json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    out!("{}", table(&shown, now));
    if matched > shown.len() {
        outln!("… {} more (--limit 0 shows all)", matched - shown.len());
    }
    if matched == 0 {
        eprintln!(
            "{}",
            if records.is_empty() {
                "no runs yet: start one with `gantry run -- CMD`"
            } else {
                "no run matches the filter"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
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

struct SortKey {
    key: String,
    desc: bool,
}

impl SortKey {
    /// The run column the database can order by, where this key is one.
    fn run_order(&self) -> Option<RunOrder> {
        Some(match self.key.as_str() {
            "started" => RunOrder::Started,
            "name" => RunOrder::Name,
            "status" => RunOrder::Status,
            "exp" => RunOrder::Experiment,
            "id" => RunOrder::Id,
            _ => return None,
        })
    }

    fn parse(s: &str) -> Result<SortKey, UserError> {
        let (desc, key) = match s.strip_prefix('-') {
            Some(k) => (true, k),
            None => (false, s),
        };
        let ok = ["started", "name", "status", "exp", "duration", "id"].contains(&key)
            || key.strip_prefix("param.").is_some_and(|k| !k.is_empty())
            || key.strip_prefix("metric.").is_some_and(|k| !k.is_empty());
        if !ok {
            return Err(UserError::new(format!("unknown sort key `{key}`"))
                .hint("use started, name, status, exp, duration, id, param.NAME or metric.NAME; prefix - to reverse"));
        }
        Ok(SortKey {
            key: key.into(),
            desc,
        })
    }

    /// Sort rows by this key (stable: ties keep the listing's order). A metric's last values are
    /// looked up once per run, not once per comparison.
    fn sort(&self, rows: &mut Vec<&RunRecord>, now: i64) {
        if let Some(m) = self.key.strip_prefix("metric.") {
            let mut keyed: Vec<(Option<f64>, &RunRecord)> = rows
                .iter()
                .map(|r| (r.metrics.get(m).and_then(|s| s.last), *r))
                .collect();
            keyed.sort_by(|a, b| missing_last(a.0, b.0, self.desc, |x, y| x.total_cmp(&y)));
            *rows = keyed.into_iter().map(|(_, r)| r).collect();
        } else {
            rows.sort_by(|a, b| self.compare(a, b, now));
        }
    }

    fn compare(&self, a: &RunRecord, b: &RunRecord, now: i64) -> Ordering {
        let (ra, rb) = (&a.run, &b.run);
        let o = match self.key.as_str() {
            "started" => ra.started_ms.cmp(&rb.started_ms),
            "name" => ra.name.cmp(&rb.name),
            "status" => ra.status.as_str().cmp(rb.status.as_str()),
            "exp" => ra.experiment.cmp(&rb.experiment),
            "duration" => ra.duration_ms(now).cmp(&rb.duration_ms(now)),
            "id" => ra.id.cmp(&rb.id),
            k => {
                if let Some(p) = k.strip_prefix("param.") {
                    return missing_last(
                        a.params.get(p),
                        b.params.get(p),
                        self.desc,
                        |x, y| match (x.parse::<f64>(), y.parse::<f64>()) {
                            (Ok(x), Ok(y)) => x.total_cmp(&y),
                            _ => x.cmp(y),
                        },
                    );
                }
                let m = k.trim_start_matches("metric.");
                return missing_last(
                    a.metrics.get(m).and_then(|s| s.last),
                    b.metrics.get(m).and_then(|s| s.last),
                    self.desc,
                    |x, y| x.total_cmp(&y),
                );
            }
        };
        if self.desc { o.reverse() } else { o }
    }
}

/// Runs without the value sort after the others, whichever the direction.
fn missing_last<T>(
    a: Option<T>,
    b: Option<T>,
    desc: bool,
    cmp: impl Fn(T, T) -> Ordering,
) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => {
            let o = cmp(x, y);
            if desc { o.reverse() } else { o }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}
