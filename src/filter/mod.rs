//! The run filter language, shared by `gantry runs --filter` and the TUI's `/`:
//!
//! - bare words match a run's name, id, experiment and tags (case-insensitive substring);
//! - qualifiers: `status:running`, `tag:baseline` (or `tag:key=value`), `exp:vision`, `host:gpu01`,
//!   `id:3fa9`, `name:resnet`;
//! - comparisons: `param.lr>=1e-3`, `metric.val_loss<0.3` (the metric's last value); operators
//!   `= != < <= > >=`; numbers compare as numbers, other params as text (`=`/`!=`);
//! - `-` before a term negates it; space means AND; `|` means OR (AND binds tighter);
//!   parentheses group; "double quotes" keep spaces in a value.
//!
//! A parse error carries the 1-based column where it went wrong.

pub mod gate;
mod parse;
mod sort;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::domain::Run;

pub use parse::parse;
pub use sort::{SortKey, matching_sorted};

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Term(Term),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Word(String),
    Status(String),
    Tag(String, Option<String>),
    Exp(String),
    Host(String),
    Id(String),
    Name(String),
    Param(String, Op, String),
    Metric(String, Op, f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    /// Every operator, in the order of its `code`.
    pub const ALL: [Op; 6] = [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge];

    /// A small number naming the operator, for a store that evaluates filters in SQL.
    pub fn code(self) -> i64 {
        Op::ALL.iter().position(|o| *o == self).unwrap_or(0) as i64
    }

    pub fn from_code(code: i64) -> Option<Op> {
        usize::try_from(code)
            .ok()
            .and_then(|i| Op::ALL.get(i).copied())
    }

    pub fn test<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        }
    }
}

/// Where a filter went wrong: a 1-based column and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub column: usize,
    pub message: String,
}

impl FilterError {
    /// The filter with a caret under the column, for terminals.
    pub fn pointed(&self, filter: &str) -> String {
        format!(
            "at column {}: {}\n  {filter}\n  {}^",
            self.column,
            self.message,
            " ".repeat(self.column.saturating_sub(1))
        )
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for FilterError {}

/// What a filter sees of a run.
pub struct Subject<'a> {
    pub run: &'a Run,
    pub params: &'a BTreeMap<String, String>,
    pub tags: &'a BTreeMap<String, String>,
    /// Last value of each metric: a map of last values, or a record's metric summaries as they
    /// are (a filter typed over 10,000 runs copies nothing).
    pub metrics: &'a dyn LastValues,
}

/// The last value of a run's metric, by key.
pub trait LastValues {
    fn last(&self, key: &str) -> Option<f64>;
}

impl LastValues for BTreeMap<String, f64> {
    fn last(&self, key: &str) -> Option<f64> {
        self.get(key).copied()
    }
}

impl LastValues for BTreeMap<String, crate::domain::SeriesSummary> {
    fn last(&self, key: &str) -> Option<f64> {
        self.get(key)?.last
    }
}

/// What a filter reads of a run beyond the run itself, so a caller loads only that: the params
/// and metrics it names, and whether it reads tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    pub params: BTreeSet<String>,
    pub tags: bool,
    pub metrics: BTreeSet<String>,
}

impl Expr {
    /// What matching this filter reads: params, tags (bare words match tags too), metrics.
    pub fn reads(&self) -> Reads {
        let mut r = Reads::default();
        self.visit(&mut |t| match t {
            Term::Param(k, ..) => {
                r.params.insert(k.clone());
            }
            Term::Tag(..) | Term::Word(_) => r.tags = true,
            Term::Metric(k, ..) => {
                r.metrics.insert(k.clone());
            }
            _ => {}
        });
        r
    }

    fn visit(&self, f: &mut impl FnMut(&Term)) {
        match self {
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| e.visit(f)),
            Expr::Not(e) => e.visit(f),
            Expr::Term(t) => f(t),
        }
    }

    pub fn matches(&self, s: &Subject) -> bool {
        match self {
            Expr::And(v) => v.iter().all(|e| e.matches(s)),
            Expr::Or(v) => v.iter().any(|e| e.matches(s)),
            Expr::Not(e) => !e.matches(s),
            Expr::Term(t) => t.matches(s),
        }
    }
}

/// Case-insensitive substring. ASCII text (nearly every name, tag and key) is compared in place;
/// other text is lowercased first, as `str::to_lowercase` does it. Typing a filter matches every
/// run's name, experiment and tags on each key: this runs 200,000 times a keypress at 10,000 runs.
pub fn contains(hay: &str, needle: &str) -> bool {
    if hay.is_ascii() && needle.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        return n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    hay.to_lowercase().contains(&needle.to_lowercase())
}

/// A param's value against a filter's: as numbers where both read as one, else as text.
pub fn param_test(have: &str, op: Op, want: &str) -> bool {
    match (have.parse::<f64>(), want.parse::<f64>()) {
        (Ok(a), Ok(b)) => op.test(a, b),
        _ => op.test(have, want),
    }
}

impl Term {
    fn matches(&self, s: &Subject) -> bool {
        let r = s.run;
        match self {
            Term::Word(w) => {
                contains(&r.name, w)
                    || r.id.starts_with(&w.to_lowercase())
                    || contains(&r.experiment, w)
                    || s.tags.iter().any(|(k, v)| contains(k, w) || contains(v, w))
            }
            // `lost`: running, but its heartbeat has been silent too long (`Run::lost_for`).
            Term::Status(st) if st == "lost" => r.lost_for(crate::domain::now_ms()).is_some(),
            Term::Status(st) => r.status.as_str() == st,
            Term::Tag(k, None) => s.tags.contains_key(k),
            Term::Tag(k, Some(v)) => s.tags.get(k) == Some(v),
            Term::Exp(e) => r.experiment.eq_ignore_ascii_case(e),
            Term::Host(h) => r.host.eq_ignore_ascii_case(h),
            Term::Id(p) => r.id.starts_with(&p.to_lowercase()),
            Term::Name(n) => contains(&r.name, n),
            Term::Param(k, op, want) => s
                .params
                .get(k)
                .is_some_and(|have| param_test(have, *op, want)),
            Term::Metric(k, op, want) => s.metrics.last(k).is_some_and(|v| op.test(v, *want)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RunStatus;

    fn run(name: &str, status: RunStatus) -> Run {
        Run {
            id: "3fa9c2d1e0".into(),
            experiment: "vision".into(),
            name: name.into(),
            status,
            exit_code: None,
            started_ms: 0,
            ended_ms: None,
            host: "gpu01".into(),
            user: "u".into(),
            pid: None,
            pid_start: None,
            command: vec![],
            cwd: String::new(),
            git_commit: None,
            git_branch: None,
            git_dirty: None,
            notes: String::new(),
            run_dir: String::new(),
            env: BTreeMap::new(),
            gpus: vec![],
            heartbeat_ms: None,
        }
    }

    fn check(filter: &str, expect: bool) {
        let r = run("resnet50-baseline", RunStatus::Running);
        let params = BTreeMap::from([
            ("lr".to_string(), "3e-4".to_string()),
            ("opt".into(), "adamw".into()),
        ]);
        let tags = BTreeMap::from([("baseline".to_string(), "true".to_string())]);
        let metrics = BTreeMap::from([("val_loss".to_string(), 0.25)]);
        let s = Subject {
            run: &r,
            params: &params,
            tags: &tags,
            metrics: &metrics,
        };
        let e = parse(filter).unwrap_or_else(|e| panic!("{filter}: {}", e.pointed(filter)));
        assert_eq!(e.matches(&s), expect, "{filter} -> {e:?}");
    }

    #[test]
    fn ascii_and_unicode_substrings_match_as_lowercasing_does() {
        let words = [
            "", "a", "A", "resNet", "RESNET50", "é", "É", "straße", "SS", "İ", "x-1",
        ];
        for h in words {
            for n in words {
                let hay = format!("{h}-{n}-Base");
                for needle in [n.to_string(), format!("{n}-b"), "-BASE".to_string()] {
                    assert_eq!(
                        contains(&hay, &needle),
                        hay.to_lowercase().contains(&needle.to_lowercase()),
                        "{hay:?} {needle:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn terms() {
        for (f, want) in [
            ("", true),
            ("resnet", true),
            ("RESNET", true),
            ("3fa9", true),
            ("vit", false),
            ("status:running", true),
            ("status:failed", false),
            ("tag:baseline", true),
            ("tag:baseline=true", true),
            ("tag:baseline=false", false),
            ("-tag:debug", true),
            ("-tag:baseline", false),
            ("param.lr>=1e-4", true),
            ("param.lr>=1e-3", false),
            ("param.lr=0.0003", true),
            ("param.opt=adamw", true),
            ("param.opt!=sgd", true),
            ("param.missing=1", false),
            ("metric.val_loss<0.3", true),
            ("metric.val_loss>0.3", false),
            ("exp:vision", true),
            ("host:gpu01", true),
            ("host:gpu02", false),
            ("id:3FA9", true),
            ("name:baseline", true),
        ] {
            check(f, want);
        }
    }

    #[test]
    fn efficiency_shorthands_take_units() {
        let m = |f: &str| match parse(f).unwrap() {
            Expr::Term(Term::Metric(k, op, x)) => (k, op, x),
            other => panic!("{f}: {other:?}"),
        };
        assert_eq!(
            m("energy>2kWh"),
            ("gantry/energy_wh".into(), Op::Gt, 2000.0)
        );
        assert_eq!(
            m("Energy<=1.5MWh"),
            ("gantry/energy_wh".into(), Op::Le, 1.5e6)
        );
        assert_eq!(m("energy>=850"), ("gantry/energy_wh".into(), Op::Ge, 850.0));
        assert_eq!(m("gpuh>8h"), ("gantry/gpu_hours".into(), Op::Gt, 8.0));
        assert_eq!(m("mfu<30%"), ("gantry/mfu".into(), Op::Lt, 30.0));
        assert_eq!(
            m("mfu_measured>50"),
            ("gantry/mfu_measured".into(), Op::Gt, 50.0)
        );
        assert_eq!(m("cost!=0"), ("gantry/cost".into(), Op::Ne, 0.0));
        let e = parse("energy>2kJ").unwrap_err();
        assert!(e.message.contains("give Wh, kWh or MWh"), "{e}");
        assert_eq!(e.column, 8);
        // A word that merely starts so is still a word.
        assert_eq!(
            parse("energyrun").unwrap(),
            Expr::Term(Term::Word("energyrun".into()))
        );
    }

    #[test]
    fn lost_is_a_running_run_whose_heartbeat_stopped() {
        let mut r = run("r", RunStatus::Running);
        let none = BTreeMap::new();
        let m: BTreeMap<String, f64> = BTreeMap::new();
        let matches = |r: &Run, f: &str| {
            parse(f).unwrap().matches(&Subject {
                run: r,
                params: &none,
                tags: &none,
                metrics: &m,
            })
        };
        assert!(!matches(&r, "status:lost"), "nothing heartbeats for it");
        r.heartbeat_ms = Some(crate::domain::now_ms() - 10 * 60_000);
        assert!(matches(&r, "status:lost") && matches(&r, "status:running"));
        r.heartbeat_ms = Some(crate::domain::now_ms());
        assert!(!matches(&r, "status:lost"));
        r.status = RunStatus::Crashed;
        r.heartbeat_ms = Some(0);
        assert!(!matches(&r, "status:lost"), "an ended run is never lost");
    }

    #[test]
    fn and_or_not_and_groups() {
        check("status:running tag:baseline", true);
        check("status:failed tag:baseline", false);
        check("status:failed | tag:baseline", true);
        check("status:failed | host:gpu02 | vit", false);
        check("vit resnet | status:running", true);
        check("-(status:failed | vit)", true);
        check("-(status:running resnet)", false);
        check("\"resnet50-base\"", true);
        check("name:\"net50 b\"", false);
    }

    #[test]
    fn errors_point_at_the_column() {
        for (f, col, msg) in [
            ("status:runing", 8, "unknown status `runing`"),
            ("param.lr>=", 11, "expected a value after `>=`"),
            ("metric.loss<abc", 13, "`abc` is not a number"),
            ("bogus:1", 1, "unknown qualifier `bogus:`"),
            ("(status:running", 16, "expected `)`"),
            ("a | | b", 5, "expected a term"),
            ("\"open", 1, "unclosed quote"),
            ("param.=3", 7, "expected a name after `param.`"),
            ("param.lr", 9, "expected an operator (= != < <= > >=)"),
            ("a)", 2, "unexpected `)`"),
        ] {
            let e = parse(f).unwrap_err();
            assert_eq!((e.column, e.message.as_str()), (col, msg), "{f}");
        }
        let e = parse("param.lr>=").unwrap_err();
        assert_eq!(
            e.pointed("param.lr>="),
            "at column 11: expected a value after `>=`\n  param.lr>=\n            ^"
        );
    }

    #[test]
    fn a_filter_says_what_it_reads() {
        let r = |f: &str| parse(f).unwrap().reads();
        assert_eq!(r(""), Reads::default());
        assert_eq!(r("status:finished exp:x"), Reads::default());
        assert_eq!(
            r("param.lr>=1e-3 | -metric.loss<0.5"),
            Reads {
                params: ["lr".to_string()].into(),
                tags: false,
                metrics: ["loss".to_string()].into(),
            }
        );
        assert!(r("resnet").tags, "a bare word matches tags too");
    }

    #[test]
    fn deep_nesting_is_a_filter_error_not_a_stack_overflow() {
        // Each of these aborted the process (stack overflow) before the depth limit.
        for f in [
            "(".repeat(10_000),
            format!("{}x", "-".repeat(50_000)),
            format!("{}x{}", "(-".repeat(5_000), ")".repeat(5_000)),
        ] {
            let e = parse(&f).unwrap_err();
            assert!(
                e.message.contains("nested more than 64 deep"),
                "{}",
                e.message
            );
            assert_eq!(e.column, parse::MAX_DEPTH + 1);
        }
        let ok = format!(
            "{}x{}",
            "(".repeat(parse::MAX_DEPTH),
            ")".repeat(parse::MAX_DEPTH)
        );
        assert!(parse(&ok).is_ok(), "64 levels still parse");
    }
}
