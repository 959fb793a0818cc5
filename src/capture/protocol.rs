//! The metric protocol's JSON lines: one object per line, `step` optional, `time`/`timestamp`
//! optional, every other numeric field a metric. JSON has no NaN, so bare `NaN`, `Infinity` and
//! `-Infinity` tokens and the strings "NaN", "Infinity", "-Infinity", "inf" are accepted too.
//! See docs/metrics-protocol.md.

use serde_json::Value;

/// One parsed line: the step and time it named (if any) and its metrics in field order.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub step: Option<i64>,
    pub time_ms: Option<i64>,
    pub metrics: Vec<(String, f64)>,
}

/// Parse one line. Errors say what is wrong with it, for the run's malformed-line report.
pub fn parse_line(line: &str) -> Result<Record, String> {
    let text = quote_bare_non_finite(line.trim());
    let value: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err("not a JSON object".into());
    };
    let mut rec = Record {
        step: None,
        time_ms: None,
        metrics: Vec::with_capacity(map.len()),
    };
    for (k, v) in map {
        match k.as_str() {
            "step" => {
                let s = number(&v).filter(|s| s.is_finite() && s.fract() == 0.0);
                rec.step =
                    Some(s.ok_or_else(|| format!("step must be an integer, got {v}"))? as i64);
            }
            "time" | "timestamp" => {
                let t = number(&v)
                    .filter(|t| t.is_finite())
                    .ok_or_else(|| format!("{k} must be a number of seconds, got {v}"))?;
                // Seconds since the epoch; values this large are already milliseconds.
                rec.time_ms = Some(if t > 1e11 {
                    t as i64
                } else {
                    (t * 1000.0) as i64
                });
            }
            _ => {
                if let Some(x) = number(&v) {
                    rec.metrics.push((k, x));
                }
            }
        }
    }
    if rec.metrics.is_empty() {
        return Err("no numeric fields".into());
    }
    Ok(rec)
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "nan" => Some(f64::NAN),
            "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
            "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// Put quotes around bare NaN / Infinity / -Infinity outside strings, so serde_json takes them.
fn quote_bare_non_finite(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains("NaN") && !line.contains("Infinity") {
        return line.into();
    }
    let mut out = String::with_capacity(line.len() + 8);
    let mut in_str = false;
    let mut escaped = false;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if in_str {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let token = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t));
        match (c, token) {
            ('"', _) => {
                in_str = true;
                out.push(c);
                rest = &rest[1..];
            }
            (_, Some(t)) => {
                out.push('"');
                out.push_str(t);
                out.push('"');
                rest = &rest[t.len()..];
            }
            _ => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields_are_metrics() {
        let r = parse_line(r#"{"step": 3, "loss": 0.5, "acc": 1, "phase": "train"}"#).unwrap();
        assert_eq!(r.step, Some(3));
        assert_eq!(r.metrics, vec![("loss".into(), 0.5), ("acc".into(), 1.0)]);
    }

    #[test]
    fn non_finite_values_survive() {
        let r = parse_line(r#"{"a": NaN, "b": Infinity, "c": -Infinity, "d": "NaN", "e": "-inf", "s": "NaN in a string: \"x\""}"#).unwrap();
        let v: Vec<f64> = r.metrics.iter().map(|m| m.1).collect();
        assert!(v[0].is_nan() && v[3].is_nan());
        assert_eq!(
            (v[1], v[2], v[4]),
            (f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY)
        );
        assert_eq!(v.len(), 5, "the string field is not a metric");
    }

    #[test]
    fn time_in_seconds_or_milliseconds() {
        assert_eq!(
            parse_line(r#"{"time": 1700000000.5, "x": 1}"#)
                .unwrap()
                .time_ms,
            Some(1_700_000_000_500)
        );
        assert_eq!(
            parse_line(r#"{"timestamp": 1700000000500, "x": 1}"#)
                .unwrap()
                .time_ms,
            Some(1_700_000_000_500)
        );
    }

    #[test]
    fn malformed_lines_are_explained() {
        assert!(parse_line("{").unwrap_err().starts_with("not JSON"));
        assert_eq!(parse_line("[1]").unwrap_err(), "not a JSON object");
        assert_eq!(
            parse_line(r#"{"phase": "x"}"#).unwrap_err(),
            "no numeric fields"
        );
        assert!(
            parse_line(r#"{"step": 1.5, "x": 1}"#)
                .unwrap_err()
                .contains("integer")
        );
    }
}
