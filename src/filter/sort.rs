//! Sorting a listing of runs: `gantry runs --sort` and the store's SQL order give the same
//! order (ties keep the listing's order: newest first, then id).

use std::cmp::Ordering;

use crate::domain::RunRecord;
use crate::error::UserError;
use crate::filter::{Expr, Subject};

/// A listing's sort: a key and a direction, as `gantry runs --sort` and the workbench name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// started, name, status, exp, duration, id, param.NAME or metric.NAME
    pub key: String,
    pub desc: bool,
}

impl SortKey {
    pub fn parse(s: &str) -> Result<SortKey, UserError> {
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
    pub fn sort(&self, rows: &mut Vec<&RunRecord>, now: i64) {
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

    pub fn compare(&self, a: &RunRecord, b: &RunRecord, now: i64) -> Ordering {
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

/// The records `expr` matches, in `sort`'s order: what a listing shows, read in Rust.
pub fn matching_sorted<'a>(
    records: impl IntoIterator<Item = &'a RunRecord>,
    expr: &Expr,
    sort: &SortKey,
    now: i64,
) -> Vec<&'a RunRecord> {
    let mut shown: Vec<&RunRecord> = records
        .into_iter()
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
    shown
}
