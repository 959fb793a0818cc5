//! The metric protocol's JSON lines: one object per line, `step` optional, `time`/`timestamp`
//! optional (seconds since the epoch, or milliseconds when larger than 1e11), every other numeric
//! field a metric. JSON has no NaN, so bare `NaN`, `Infinity` and `-Infinity` tokens and the
//! strings "NaN", "Infinity", "-Infinity", "inf" are accepted too. See docs/metrics-protocol.md.
//!
//! `Parser` parses without allocating per line (keys borrow from the line where they can), so the
//! ingest path reaches millions of points per second.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

/// One parsed line, owning its keys (for callers that keep records).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub step: Option<i64>,
    pub time_ms: Option<i64>,
    pub metrics: Vec<(String, f64)>,
}

/// Parse one line into an owned `Record`. Errors say what is wrong with it.
pub fn parse_line(line: &str) -> Result<Record, String> {
    let mut p = Parser::default();
    let (step, time_ms) = p.parse(line.as_bytes())?;
    let metrics = p.metrics().map(|(k, v)| (k.to_string(), v)).collect();
    Ok(Record {
        step,
        time_ms,
        metrics,
    })
}

/// A reusable line parser. After `parse`, `metrics()` yields the line's metrics in field order.
#[derive(Default)]
pub struct Parser {
    text: String,
    keys: Vec<(usize, usize, f64)>,
    owned: String,
}

impl Parser {
    /// Parse one line (without its newline). Returns (step, time in ms).
    pub fn parse(&mut self, line: &[u8]) -> Result<(Option<i64>, Option<i64>), String> {
        self.keys.clear();
        self.owned.clear();
        let line = trim_ascii(line);
        let line = std::str::from_utf8(line)
            .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
        // Keys are kept as offsets into `self.text`, which holds the line (NaN tokens quoted).
        self.text.clear();
        if line.contains("NaN") || line.contains("Infinity") {
            quote_bare_non_finite(line, &mut self.text);
        } else {
            self.text.push_str(line);
        }
        let src: &str = &self.text;
        if !src.starts_with('{') {
            return Err("not a JSON object".into());
        }
        let mut sink = Sink {
            line: src,
            step: None,
            time: None,
            keys: &mut self.keys,
            owned: &mut self.owned,
            base: src.as_ptr() as usize,
            len: src.len(),
        };
        let mut de = serde_json::Deserializer::from_str(src);
        de.deserialize_map(&mut sink)
            .map_err(|e| format!("not JSON: {e}"))?;
        de.end().map_err(|e| format!("not JSON: {e}"))?;
        let (step, time) = (sink.step, sink.time);
        if self.keys.is_empty() {
            return Err("no numeric fields".into());
        }
        let time_ms = time.map(|t| {
            if t > 1e11 {
                t as i64
            } else {
                (t * 1000.0).round() as i64
            }
        });
        Ok((step, time_ms))
    }

    /// The metrics of the last parsed line.
    pub fn metrics(&self) -> impl Iterator<Item = (&str, f64)> {
        self.keys.iter().map(|&(start, end, v)| {
            let k = if start >= OWNED_BASE {
                &self.owned[start - OWNED_BASE..end - OWNED_BASE]
            } else {
                &self.text[start..end]
            };
            (k, v)
        })
    }
}

/// Offsets at or above this point into `owned` (keys with escapes), below it into the line.
const OWNED_BASE: usize = usize::MAX / 2;

struct Sink<'a> {
    line: &'a str,
    step: Option<i64>,
    time: Option<f64>,
    keys: &'a mut Vec<(usize, usize, f64)>,
    owned: &'a mut String,
    base: usize,
    len: usize,
}

impl<'de> Visitor<'de> for &mut Sink<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let val = map.next_value_seed(ValueSeed)?;
            match (key.as_ref(), val) {
                ("step", Val::Int(s)) if i64::try_from(s).is_ok() => self.step = Some(s as i64),
                ("step", Val::Int(s)) => {
                    return Err(de::Error::custom(format!(
                        "step must be an integer that fits in 64 bits, got {s}"
                    )));
                }
                ("step", Val::Num(s)) if s.is_finite() && s.fract() == 0.0 && s.abs() < 9.0e15 => {
                    self.step = Some(s as i64)
                }
                ("step", v) => {
                    return Err(de::Error::custom(format!(
                        "step must be an integer, got {v}"
                    )));
                }
                ("time" | "timestamp", Val::Int(t)) => self.time = Some(t as f64),
                ("time" | "timestamp", Val::Num(t)) if t.is_finite() => self.time = Some(t),
                ("time" | "timestamp", v) => {
                    return Err(de::Error::custom(format!(
                        "{} must be a number of seconds, got {v}",
                        key.as_ref()
                    )));
                }
                (_, val @ (Val::Num(_) | Val::Int(_))) => {
                    let x = match val {
                        Val::Int(i) => i as f64,
                        Val::Num(x) => x,
                        Val::Other(_) => continue,
                    };
                    // A key given twice in one line: the last value wins, as in Python's json.
                    if let Some(slot) = self
                        .keys
                        .iter_mut()
                        .find(|(s, e, _)| key_at(self.line, self.owned, *s, *e) == key.as_ref())
                    {
                        slot.2 = x;
                        continue;
                    }
                    let (start, end) = match &key {
                        Cow::Borrowed(k)
                            if (k.as_ptr() as usize).wrapping_sub(self.base) < self.len =>
                        {
                            let s = k.as_ptr() as usize - self.base;
                            (s, s + k.len())
                        }
                        _ => {
                            let s = self.owned.len();
                            self.owned.push_str(&key);
                            (OWNED_BASE + s, OWNED_BASE + self.owned.len())
                        }
                    };
                    self.keys.push((start, end, x));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

struct KeySeed;
impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

/// The key stored at (start, end): in the line or, past `OWNED_BASE`, in `owned`.
fn key_at<'s>(line: &'s str, owned: &'s str, start: usize, end: usize) -> &'s str {
    if start >= OWNED_BASE {
        &owned[start - OWNED_BASE..end - OWNED_BASE]
    } else {
        &line[start..end]
    }
}

enum Val {
    Num(f64),
    /// An integer as written (JSON integers are exact up to 64 bits, signed or not).
    Int(i128),
    Other(&'static str),
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Val::Num(x) => write!(f, "{x}"),
            Val::Int(x) => write!(f, "{x}"),
            Val::Other(what) => f.write_str(what),
        }
    }
}

struct ValueSeed;
impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Val;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Val, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Val;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Val, E> {
                Ok(Val::Num(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Val, E> {
                Ok(Val::Int(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Val, E> {
                Ok(Val::Int(v.into()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Val, E> {
                Ok(Val::Other("a boolean"))
            }
            fn visit_unit<E>(self) -> Result<Val, E> {
                Ok(Val::Other("null"))
            }
            fn visit_str<E>(self, v: &str) -> Result<Val, E> {
                Ok(match v.to_ascii_lowercase().as_str() {
                    "nan" => Val::Num(f64::NAN),
                    "inf" | "+inf" | "infinity" | "+infinity" => Val::Num(f64::INFINITY),
                    "-inf" | "-infinity" => Val::Num(f64::NEG_INFINITY),
                    _ => Val::Other("a string"),
                })
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<Val, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Val::Other("a list"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Val, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Val::Other("an object"))
            }
        }
        d.deserialize_any(V)
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// Put quotes around bare NaN / Infinity / -Infinity outside strings, so serde_json takes them.
fn quote_bare_non_finite(line: &str, out: &mut String) {
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
}

/// A `gantry:` line's payload: JSON, or `key=value` pairs separated by spaces or commas
/// (`gantry: step=10 loss=0.3`). Returned as a JSON object text for `parse_line`.
pub fn payload_to_json(payload: &str) -> Result<String, String> {
    let p = payload.trim();
    if p.starts_with('{') {
        return Ok(p.to_string());
    }
    let mut map = serde_json::Map::new();
    for pair in p
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
    {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not key=value"))?;
        if k.is_empty() {
            return Err(format!("`{pair}` has no key"));
        }
        let value = match v.to_ascii_lowercase().as_str() {
            "nan" | "inf" | "+inf" | "-inf" | "infinity" | "+infinity" | "-infinity" => {
                serde_json::Value::from(v)
            }
            _ => match v.parse::<f64>() {
                Ok(_)
                    if v.bytes()
                        .all(|b| b.is_ascii_digit() || b == b'-' || b == b'+') =>
                {
                    // An integer: kept as written, so a step stays exact.
                    match v.parse::<i64>() {
                        Ok(i) => serde_json::Value::from(i),
                        Err(_) => serde_json::Value::from(v.parse::<f64>().unwrap_or(f64::NAN)),
                    }
                }
                Ok(x) if x.is_finite() => serde_json::Value::from(x),
                // One rule for both forms: a number too large for a double is refused, as
                // serde_json refuses `1e309` in a JSON line; infinity is written as `inf`.
                Ok(_) => {
                    return Err(format!(
                        "`{k}` is out of range: `{v}` (write inf for infinity)"
                    ));
                }
                Err(_) => return Err(format!("`{k}` has a non-numeric value `{v}`")),
            },
        };
        map.insert(k.to_string(), value);
    }
    if map.is_empty() {
        return Err("empty gantry: line".into());
    }
    Ok(serde_json::Value::Object(map).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields_are_metrics_in_order() {
        let r = parse_line(r#"{"step": 3, "loss": 0.5, "acc": 1, "phase": "train"}"#).unwrap();
        assert_eq!(r.step, Some(3));
        assert_eq!(r.metrics, vec![("loss".into(), 0.5), ("acc".into(), 1.0)]);
        let r = parse_line(r#"{"val\/loss": 2, "a\u00e9": 3, "plain": 4}"#).unwrap();
        assert_eq!(
            r.metrics,
            vec![
                ("val/loss".into(), 2.0),
                ("aé".into(), 3.0),
                ("plain".into(), 4.0)
            ]
        );
    }

    #[test]
    fn steps_are_exact_64_bit_integers_and_errors_show_the_value_written() {
        assert_eq!(
            parse_line(r#"{"step": 9223372036854775807, "x": 1}"#)
                .unwrap()
                .step,
            Some(i64::MAX)
        );
        assert_eq!(
            parse_line(r#"{"step": -9223372036854775808, "x": 1}"#)
                .unwrap()
                .step,
            Some(i64::MIN)
        );
        let e = parse_line(r#"{"step": 18446744073709551615, "x": 1}"#).unwrap_err();
        assert!(e.contains("got 18446744073709551615"), "{e}");
        let e = parse_line(r#"{"step": 1.5, "x": 1}"#).unwrap_err();
        assert!(e.contains("got 1.5"), "{e}");
    }

    #[test]
    fn a_key_given_twice_keeps_its_last_value() {
        let r = parse_line(r#"{"x": 1, "y": 2, "x": 3, "a\u0062": 4, "ab": 5}"#).unwrap();
        assert_eq!(
            r.metrics,
            vec![("x".into(), 3.0), ("y".into(), 2.0), ("ab".into(), 5.0)]
        );
    }

    #[test]
    fn a_number_too_large_for_a_double_is_refused_in_both_forms() {
        let e = parse_line(r#"{"a": 1e309}"#).unwrap_err();
        assert!(e.contains("not JSON"), "{e}");
        let e = payload_to_json("a=1e309").unwrap_err();
        assert!(e.contains("out of range"), "{e}");
        let j = payload_to_json("a=inf step=12345678901234567").unwrap();
        let r = parse_line(&j).unwrap();
        assert_eq!(r.step, Some(12_345_678_901_234_567), "exact");
        assert_eq!(r.metrics, vec![("a".into(), f64::INFINITY)]);
    }

    #[test]
    fn non_finite_values_survive() {
        let r = parse_line(
            r#"{"a": NaN, "b": Infinity, "c": -Infinity, "d": "NaN", "e": "-inf", "s": "NaN in a string: \"x\""}"#,
        )
        .unwrap();
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
        assert!(
            parse_line(r#"{"step": "a", "x": 1}"#)
                .unwrap_err()
                .contains("integer")
        );
        assert!(
            parse_line(r#"{"x": 1} trailing"#)
                .unwrap_err()
                .starts_with("not JSON")
        );
        let mut p = Parser::default();
        assert!(
            p.parse(b"{\"x\": \xff}")
                .unwrap_err()
                .contains("invalid UTF-8")
        );
    }

    #[test]
    fn parser_is_reusable() {
        let mut p = Parser::default();
        p.parse(br#"{"a": 1, "b\n": 2}"#).unwrap();
        assert_eq!(p.metrics().collect::<Vec<_>>(), [("a", 1.0), ("b\n", 2.0)]);
        p.parse(br#"{"c": NaN}"#).unwrap();
        let m: Vec<_> = p.metrics().collect();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].0, "c");
    }

    #[test]
    fn key_value_payloads() {
        assert_eq!(
            payload_to_json("step=3 loss=0.25,acc=0.5").unwrap(),
            r#"{"step":3,"loss":0.25,"acc":0.5}"#
        );
        assert!(
            parse_line(&payload_to_json("loss=nan").unwrap())
                .unwrap()
                .metrics[0]
                .1
                .is_nan()
        );
        assert!(
            payload_to_json("loss=abc")
                .unwrap_err()
                .contains("non-numeric")
        );
        assert!(
            payload_to_json("loss")
                .unwrap_err()
                .contains("not key=value")
        );
        assert_eq!(payload_to_json(r#" {"a": 1}"#).unwrap(), r#"{"a": 1}"#);
    }
}
