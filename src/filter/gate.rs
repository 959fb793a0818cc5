//! The gate language of `gantry model eval --gate`: `METRIC OP BOUND`, where OP is the filter
//! language's comparison (`= != < <= > >=`, parsed by the same code) and BOUND is a number or the
//! baseline's value of that metric: `baseline`, `baseline+0.01`, `baseline-0.002`,
//! `1.1*baseline` (or `baseline*1.1`). `val/acc>=baseline-0.002` holds when the candidate's
//! accuracy is at most 0.002 below the baseline's.

use super::{FilterError, Op};

/// One parsed gate.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub text: String,
    pub metric: String,
    pub op: Op,
    pub bound: Bound,
}

/// What the candidate's value is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Number(f64),
    /// baseline × scale + offset.
    Baseline {
        scale: f64,
        offset: f64,
    },
}

impl Bound {
    /// The bound's value given the baseline's; None where it needs a baseline and has none.
    pub fn value(self, baseline: Option<f64>) -> Option<f64> {
        match self {
            Bound::Number(x) => Some(x),
            Bound::Baseline { scale, offset } => baseline.map(|b| b * scale + offset),
        }
    }
}

impl Gate {
    /// Whether `candidate` passes, given the baseline's value of the same metric: None where a
    /// value is missing (a gate on a metric the run did not report fails, saying why).
    pub fn holds(&self, candidate: Option<f64>, baseline: Option<f64>) -> Option<bool> {
        let bound = self.bound.value(baseline)?;
        Some(self.op.test(candidate?, bound))
    }
}

/// Parse `METRIC OP BOUND`; the error's column points into `text`.
pub fn parse(text: &str) -> Result<Gate, FilterError> {
    let (metric, op, rest_at) = super::parse::comparison(text)?;
    let rest = &text[rest_at..];
    let lead = rest.len() - rest.trim_start().len();
    let bound = bound(rest.trim()).map_err(|(offset, message)| FilterError {
        column: text[..rest_at + lead + offset].chars().count() + 1,
        message,
    })?;
    Ok(Gate {
        text: text.to_string(),
        metric,
        op,
        bound,
    })
}

/// A bound, or (byte offset, what was expected there).
fn bound(s: &str) -> Result<Bound, (usize, String)> {
    const WANT: &str =
        "expected a number, `baseline`, `baseline+N`, `baseline-N`, `N*baseline` or `baseline*N`";
    if s.is_empty() {
        return Err((0, WANT.into()));
    }
    let number = |t: &str, at: usize| -> Result<f64, (usize, String)> {
        t.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or((at, format!("`{}` is not a number: {WANT}", t.trim())))
    };
    if let Some(after) = s.strip_prefix("baseline") {
        let after_t = after.trim_start();
        let at = s.len() - after_t.len();
        if after_t.is_empty() {
            return Ok(Bound::Baseline {
                scale: 1.0,
                offset: 0.0,
            });
        }
        return match after_t.chars().next() {
            Some('+') => Ok(Bound::Baseline {
                scale: 1.0,
                offset: number(&after_t[1..], at + 1)?,
            }),
            Some('-') => Ok(Bound::Baseline {
                scale: 1.0,
                offset: -number(&after_t[1..], at + 1)?,
            }),
            Some('*') => Ok(Bound::Baseline {
                scale: number(&after_t[1..], at + 1)?,
                offset: 0.0,
            }),
            _ => Err((
                at,
                format!("unexpected `{after_t}` after `baseline`: {WANT}"),
            )),
        };
    }
    if let Some((n, b)) = s.split_once('*') {
        if b.trim() != "baseline" {
            let at = n.len() + 1 + (b.len() - b.trim_start().len());
            return Err((at, format!("expected `baseline` after `*`: {WANT}")));
        }
        return Ok(Bound::Baseline {
            scale: number(n, 0)?,
            offset: 0.0,
        });
    }
    Ok(Bound::Number(number(s, 0)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operator_and_bound_form() {
        let g = parse("val/acc>=baseline-0.002").unwrap();
        assert_eq!((g.metric.as_str(), g.op), ("val/acc", Op::Ge));
        assert_eq!(
            g.bound,
            Bound::Baseline {
                scale: 1.0,
                offset: -0.002
            }
        );
        assert_eq!(g.holds(Some(0.899), Some(0.9)), Some(true));
        assert_eq!(g.holds(Some(0.897), Some(0.9)), Some(false));
        let g = parse("latency_p99 <= 1.1*baseline").unwrap();
        assert_eq!(g.holds(Some(10.9), Some(10.0)), Some(true));
        assert_eq!(g.holds(Some(11.1), Some(10.0)), Some(false));
        let g = parse("latency_p99<=baseline*1.1").unwrap();
        assert_eq!(g.holds(Some(11.1), Some(10.0)), Some(false));
        let g = parse("acc > baseline + 0.01").unwrap();
        assert_eq!(g.holds(Some(0.92), Some(0.9)), Some(true));
        assert_eq!(parse("acc<0.5").unwrap().holds(Some(0.4), None), Some(true));
        assert_eq!(parse("acc=0.5").unwrap().holds(Some(0.5), None), Some(true));
        assert_eq!(
            parse("acc!=0.5").unwrap().holds(Some(0.5), None),
            Some(false)
        );
        assert_eq!(
            parse("acc<=baseline").unwrap().holds(Some(0.5), Some(0.5)),
            Some(true)
        );
        // A missing value cannot pass.
        assert_eq!(parse("acc>=baseline").unwrap().holds(None, Some(0.5)), None);
        assert_eq!(parse("acc>=baseline").unwrap().holds(Some(0.5), None), None);
    }

    #[test]
    fn a_gate_that_does_not_parse_points_at_its_column() {
        let e = parse("val/acc >= basline").unwrap_err();
        assert_eq!(e.column, 12, "{e:?}");
        let e = parse("val/acc ~ 3").unwrap_err();
        assert!(e.message.starts_with("expected an operator"), "{e:?}");
        assert_eq!(e.column, 9, "{e:?}");
        let e = parse(">= 3").unwrap_err();
        assert_eq!(e.column, 1, "{e:?}");
        let e = parse("acc >= 2*basel").unwrap_err();
        assert_eq!(e.column, 10, "{e:?}");
        let e = parse("acc >= baseline/2").unwrap_err();
        assert_eq!(e.column, 16, "{e:?}");
        assert!(e.pointed("acc >= baseline/2").contains("               ^"));
    }
}
