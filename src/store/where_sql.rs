//! A run filter (`filter::Expr`) and a listing's order as SQLite SQL, so the database picks,
//! orders and cuts a page of runs and the rest of 10,000 runs are never read.
//!
//! The SQL gives exactly the runs, in exactly the order, that matching each run record with
//! `Expr::matches` and sorting with `filter::SortKey` give (tests/store.rs checks both ways over
//! random filters). Where SQL has no exact equivalent it calls the same Rust code through SQL
//! functions added to each connection (lite.rs): `gantry_contains` (the filter's
//! case-insensitive substring) and `gantry_param` (a param against a value, as numbers where both
//! read as one, else as text). SQLite's `COLLATE NOCASE` folds ASCII letters only, as
//! `eq_ignore_ascii_case` does; a metric's NaN is stored as NULL with points behind it.

use crate::domain::lost_after_ms;
use crate::filter::{Expr, Op, Term};

use super::{PageOrder, RunOrder};

/// A value bound to a `?` of the SQL, in order.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Arg {
    Text(String),
    Int(i64),
    Real(f64),
}

/// SQL text with its arguments, bound in order to its `?`s.
#[derive(Debug, Default)]
pub(super) struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn arg(&mut self, a: Arg) {
        self.args.push(a);
    }

    fn text_arg(&mut self, text: &str, a: &str) {
        self.push(text);
        self.arg(Arg::Text(a.to_string()));
    }
}

/// The page's query: the columns of a run (as `run_select!` reads them) for the runs `filter`
/// matches, in `order`, at most `limit` of them (0: all). Without a filter, a page in a column's
/// order reads that column's index and stops at the limit.
pub(super) fn page_query(
    columns: &str,
    filter: Option<&Expr>,
    order: &PageOrder,
    desc: bool,
    limit: usize,
    now_ms: i64,
) -> Sql {
    let mut q = Sql::default();
    q.push("SELECT ");
    q.push(columns);
    q.push(" FROM runs r JOIN experiments e ON e.id = r.experiment_id");
    if let PageOrder::Metric(key) = order {
        q.text_arg(
            " LEFT JOIN series s INDEXED BY series_by_key ON s.key = ? AND s.kind = 'metric' \
             AND s.run_id = r.id",
            key,
        );
    }
    if let Some(f) = filter {
        q.push(" WHERE ");
        expr(&mut q, f, now_ms);
    }
    q.push(" ORDER BY ");
    let dir = if desc { " DESC" } else { " ASC" };
    match order {
        PageOrder::Column(c) => {
            q.push(match c {
                RunOrder::Started => "r.started_ms",
                RunOrder::Name => "r.name",
                RunOrder::Status => "r.status",
                RunOrder::Experiment => "e.name",
                RunOrder::Id => "r.id",
            });
            q.push(dir);
        }
        PageOrder::Duration => {
            q.push("max(COALESCE(r.ended_ms, ?) - r.started_ms, 0)");
            q.arg(Arg::Int(now_ms));
            q.push(dir);
        }
        PageOrder::Metric(_) => {
            // Runs without the metric (no series, or one with no points) last either way; a NaN
            // (NULL with points) above every number; then the numbers.
            q.push("(s.last_value IS NULL AND COALESCE(s.n_points, 0) = 0) ASC, ");
            q.push("(s.last_value IS NULL)");
            q.push(dir);
            q.push(", s.last_value");
            q.push(dir);
        }
    }
    // A listing's own order breaks ties, as the stable sort in Rust keeps it.
    q.push(", r.started_ms DESC, r.id ASC LIMIT ?");
    q.arg(Arg::Int(if limit == 0 { -1 } else { limit as i64 }));
    q
}

/// How many runs `filter` matches.
pub(super) fn count_query(filter: Option<&Expr>, now_ms: i64) -> Sql {
    let mut q = Sql::default();
    match filter {
        None => q.push("SELECT COUNT(*) FROM runs"),
        Some(f) => {
            q.push(
                "SELECT COUNT(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE ",
            );
            expr(&mut q, f, now_ms);
        }
    }
    q
}

fn expr(q: &mut Sql, e: &Expr, now_ms: i64) {
    match e {
        Expr::And(v) | Expr::Or(v) if v.is_empty() => {
            q.push(if matches!(e, Expr::And(_)) { "1" } else { "0" })
        }
        Expr::And(v) | Expr::Or(v) => {
            let join = if matches!(e, Expr::And(_)) {
                " AND "
            } else {
                " OR "
            };
            q.push("(");
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    q.push(join);
                }
                expr(q, x, now_ms);
            }
            q.push(")");
        }
        Expr::Not(x) => {
            q.push("NOT (");
            expr(q, x, now_ms);
            q.push(")");
        }
        Expr::Term(t) => term(q, t, now_ms),
    }
}

/// `substr(col, 1, n) = prefix`: `col` starts with `prefix` (counted in characters on both
/// sides, which is the same test as bytes).
fn starts_with(q: &mut Sql, col: &str, prefix: &str) {
    q.push("substr(");
    q.push(col);
    q.push(", 1, ?) = ?");
    q.arg(Arg::Int(prefix.chars().count() as i64));
    q.arg(Arg::Text(prefix.to_string()));
}

fn term(q: &mut Sql, t: &Term, now_ms: i64) {
    match t {
        Term::Word(w) => {
            q.text_arg("(gantry_contains(r.name, ?) OR ", w);
            starts_with(q, "r.id", &w.to_lowercase());
            q.text_arg(" OR gantry_contains(e.name, ?)", w);
            q.text_arg(
                " OR EXISTS (SELECT 1 FROM tags t WHERE t.run_id = r.id AND \
                 (gantry_contains(t.key, ?)",
                w,
            );
            q.text_arg(" OR gantry_contains(t.value, ?))))", w);
        }
        Term::Status(st) if st == "lost" => {
            q.push(
                "(r.status = 'running' AND r.heartbeat_ms IS NOT NULL AND ? - r.heartbeat_ms > ?)",
            );
            q.arg(Arg::Int(now_ms));
            q.arg(Arg::Int(lost_after_ms()));
        }
        Term::Status(st) => q.text_arg("r.status = ?", st),
        Term::Tag(k, v) => {
            q.text_arg(
                "EXISTS (SELECT 1 FROM tags t WHERE t.run_id = r.id AND t.key = ?",
                k,
            );
            if let Some(v) = v {
                q.text_arg(" AND t.value = ?", v);
            }
            q.push(")");
        }
        Term::Exp(x) => q.text_arg("e.name = ? COLLATE NOCASE", x),
        Term::Host(h) => q.text_arg("r.host = ? COLLATE NOCASE", h),
        Term::Id(p) => starts_with(q, "r.id", &p.to_lowercase()),
        Term::Name(n) => q.text_arg("gantry_contains(r.name, ?)", n),
        Term::Param(k, op, want) => {
            q.text_arg(
                "EXISTS (SELECT 1 FROM params p INDEXED BY params_by_key WHERE p.key = ? \
                 AND p.run_id = r.id AND gantry_param(p.value, ?, ?))",
                k,
            );
            q.arg(Arg::Int(op.code()));
            q.arg(Arg::Text(want.clone()));
        }
        Term::Metric(k, op, want) => {
            q.text_arg(
                "EXISTS (SELECT 1 FROM series m INDEXED BY series_by_key WHERE m.key = ? \
                 AND m.kind = 'metric' AND m.run_id = r.id AND ",
                k,
            );
            // The last value: the stored one; NaN where it is NULL with points behind it; none
            // where there are no points.
            if want.is_nan() {
                // Only `!=` holds against NaN, for every value the run has.
                q.push(if *op == Op::Ne {
                    "(m.last_value IS NOT NULL OR m.n_points > 0))"
                } else {
                    "0)"
                });
            } else {
                q.push("((m.last_value IS NOT NULL AND m.last_value ");
                q.push(match op {
                    Op::Eq => "=",
                    Op::Ne => "!=",
                    Op::Lt => "<",
                    Op::Le => "<=",
                    Op::Gt => ">",
                    Op::Ge => ">=",
                });
                q.push(" ?)");
                q.arg(Arg::Real(*want));
                if *op == Op::Ne {
                    q.push(" OR (m.last_value IS NULL AND m.n_points > 0)");
                }
                q.push("))");
            }
        }
    }
}
