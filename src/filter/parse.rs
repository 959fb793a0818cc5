use crate::domain::RunStatus;

use super::{Expr, FilterError, Op, Term};

/// How deeply `(` and `-` may nest. Deeper filters are refused: parsing, matching and dropping
/// an expression all recurse, and 10,000 levels would overflow the stack.
pub const MAX_DEPTH: usize = 64;

/// Parse a filter. The empty filter matches everything.
pub fn parse(text: &str) -> Result<Expr, FilterError> {
    let mut p = P {
        s: text,
        pos: 0,
        depth: 0,
    };
    let e = p.or()?;
    p.skip_ws();
    if let Some(c) = p.peek() {
        return Err(p.err_at(p.pos, format!("unexpected `{c}`")));
    }
    Ok(e)
}

/// `NAME OP …` as the filter language reads a comparison: the name, the operator, and the byte
/// offset where what follows the operator starts (the gate language's bound).
pub fn comparison(text: &str) -> Result<(String, Op, usize), FilterError> {
    let mut p = P {
        s: text,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    let start = p.pos;
    while let Some(c) = p.peek() {
        if c.is_whitespace() || "<>=!".contains(c) {
            break;
        }
        p.pos += c.len_utf8();
    }
    if p.pos == start {
        return Err(p.err_at(start, "expected a metric name".into()));
    }
    let name = text[start..p.pos].to_string();
    p.skip_ws();
    let (op, _) = p.op()?;
    Ok((name, op, p.pos))
}

struct P<'a> {
    s: &'a str,
    pos: usize,
    /// How many `(` and `-` enclose the current position.
    depth: usize,
}

impl P<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += self.peek().map_or(0, char::len_utf8);
        }
    }
    fn column(&self, byte: usize) -> usize {
        self.s[..byte].chars().count() + 1
    }
    fn err_at(&self, byte: usize, message: String) -> FilterError {
        FilterError {
            column: self.column(byte),
            message,
        }
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut alts = vec![self.and()?];
        loop {
            self.skip_ws();
            if self.peek() != Some('|') {
                break;
            }
            self.pos += 1;
            self.skip_ws();
            if matches!(self.peek(), None | Some('|') | Some(')')) {
                return Err(self.err_at(self.pos, "expected a term".into()));
            }
            alts.push(self.and()?);
        }
        Ok(if alts.len() == 1 {
            alts.pop().expect("one")
        } else {
            Expr::Or(alts)
        })
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut terms = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None | Some('|') | Some(')') => break,
                _ => terms.push(self.unary()?),
            }
        }
        Ok(if terms.len() == 1 {
            terms.pop().expect("one")
        } else {
            Expr::And(terms)
        })
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        if matches!(self.peek(), Some('-') | Some('(')) {
            if self.depth >= MAX_DEPTH {
                return Err(self.err_at(
                    self.pos,
                    format!("nested more than {MAX_DEPTH} deep (`(` and `-`)"),
                ));
            }
            self.depth += 1;
            let e = self.nested();
            self.depth -= 1;
            return e;
        }
        self.term().map(Expr::Term)
    }

    /// A negation (at `-`) or else a group (at `(`); `unary` counts the depth around it.
    fn nested(&mut self) -> Result<Expr, FilterError> {
        if self.peek() == Some('-') {
            self.pos += 1;
            if matches!(self.peek(), None | Some(' ') | Some('|') | Some(')')) {
                return Err(self.err_at(self.pos, "expected a term after `-`".into()));
            }
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.pos += 1; // `(`
        let e = self.or()?;
        self.skip_ws();
        if self.peek() != Some(')') {
            return Err(self.err_at(self.pos, "expected `)`".into()));
        }
        self.pos += 1;
        Ok(e)
    }

    /// A bare or quoted value, up to whitespace, `|` or `)`.
    fn value(&mut self) -> Result<String, FilterError> {
        let start = self.pos;
        if self.peek() == Some('"') {
            self.pos += 1;
            let Some(end) = self.s[self.pos..].find('"') else {
                return Err(self.err_at(start, "unclosed quote".into()));
            };
            let v = self.s[self.pos..self.pos + end].to_string();
            self.pos += end + 1;
            return Ok(v);
        }
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == '|' || c == ')' || (c == '(' && self.pos == start) {
                break;
            }
            self.pos += c.len_utf8();
        }
        Ok(self.s[start..self.pos].to_string())
    }

    /// A name after `param.` / `metric.`: up to an operator.
    fn name(&mut self, prefix: &str) -> Result<String, FilterError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_whitespace() || "=!<>|)".contains(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        if self.pos == start {
            return Err(self.err_at(start, format!("expected a name after `{prefix}`")));
        }
        Ok(self.s[start..self.pos].to_string())
    }

    fn op(&mut self) -> Result<(Op, &'static str), FilterError> {
        for (text, op) in [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("!=", Op::Ne),
            ("=", Op::Eq),
            (">", Op::Gt),
            ("<", Op::Lt),
        ] {
            if self.s[self.pos..].starts_with(text) {
                self.pos += text.len();
                return Ok((op, text));
            }
        }
        Err(self.err_at(self.pos, "expected an operator (= != < <= > >=)".into()))
    }

    fn term(&mut self) -> Result<Term, FilterError> {
        let start = self.pos;
        let rest = &self.s[self.pos..];
        for prefix in ["param.", "metric."] {
            if rest.starts_with(prefix) {
                self.pos += prefix.len();
                let name = self.name(prefix)?;
                let (op, op_text) = self.op()?;
                let vpos = self.pos;
                let v = self.value()?;
                if v.is_empty() {
                    return Err(self.err_at(vpos, format!("expected a value after `{op_text}`")));
                }
                return if prefix == "param." {
                    Ok(Term::Param(name, op, v))
                } else {
                    let x: f64 = v
                        .parse()
                        .map_err(|_| self.err_at(vpos, format!("`{v}` is not a number")))?;
                    Ok(Term::Metric(name, op, x))
                };
            }
        }
        for (short, key) in SHORTHANDS {
            let (Some(head), Some(after)) = (rest.get(..short.len()), rest.get(short.len()..))
            else {
                continue;
            };
            if head.eq_ignore_ascii_case(short) && after.starts_with(['=', '!', '<', '>']) {
                self.pos += short.len();
                let (op, op_text) = self.op()?;
                let vpos = self.pos;
                let v = self.value()?;
                if v.is_empty() {
                    return Err(self.err_at(vpos, format!("expected a value after `{op_text}`")));
                }
                let x = with_unit(key, &v)
                    .ok_or_else(|| self.err_at(vpos, format!("`{v}` is not {}", unit_help(key))))?;
                return Ok(Term::Metric(key.to_string(), op, x));
            }
        }
        let word_end = rest
            .find(|c: char| c.is_whitespace() || c == '|' || c == ')' || c == '"')
            .unwrap_or(rest.len());
        if let Some(colon) = rest[..word_end].find(':') {
            let qual = &rest[..colon];
            self.pos += colon + 1;
            let vpos = self.pos;
            let v = self.value()?;
            if v.is_empty() {
                return Err(self.err_at(vpos, format!("expected a value after `{qual}:`")));
            }
            return match qual {
                "status" if v == "lost" => Ok(Term::Status(v)),
                "status" => match v.parse::<RunStatus>() {
                    Ok(s) => Ok(Term::Status(s.as_str().into())),
                    Err(_) => Err(self.err_at(vpos, format!("unknown status `{v}`"))),
                },
                "tag" => Ok(match v.split_once('=') {
                    Some((k, val)) => Term::Tag(k.into(), Some(val.into())),
                    None => Term::Tag(v, None),
                }),
                "alert" => match crate::domain::alerts::Kind::ALL
                    .into_iter()
                    .find(|k| k.as_str() == v)
                {
                    Some(k) => Ok(Term::Tag(k.tag(), None)),
                    None => Err(self.err_at(
                        vpos,
                        format!(
                            "unknown alert `{v}`: nan, divergence, stall, idle_gpu, throughput_drop, throttle, gpu_errors"
                        ),
                    )),
                },
                "exp" | "experiment" => Ok(Term::Exp(v)),
                "host" => Ok(Term::Host(v)),
                "id" => Ok(Term::Id(v)),
                "name" => Ok(Term::Name(v)),
                _ => Err(self.err_at(start, format!("unknown qualifier `{qual}:`"))),
            };
        }
        let v = self.value()?;
        if v.is_empty() {
            return Err(self.err_at(start, "expected a term".into()));
        }
        Ok(Term::Word(v))
    }
}

/// Names for the efficiency metrics in filters: `energy>2kWh`, `gpuh>=8`, `cost<100`, `mfu<30`.
const SHORTHANDS: [(&str, &str); 7] = [
    ("energy", crate::domain::efficiency::keys::ENERGY_WH),
    ("gpu_hours", crate::domain::efficiency::keys::GPU_HOURS),
    ("gpuh", crate::domain::efficiency::keys::GPU_HOURS),
    ("cost", crate::domain::efficiency::keys::COST),
    (
        "mfu_measured",
        crate::domain::efficiency::keys::MFU_MEASURED,
    ),
    ("mfu", crate::domain::efficiency::keys::MFU),
    ("tflops", crate::domain::efficiency::keys::TFLOPS),
];

/// A bound with its unit, in the metric's own unit: energy in Wh (`850Wh`, `2kWh`, `1.5MWh`, or
/// a bare number of Wh), GPU-hours with an optional `h`, MFU with an optional `%`.
fn with_unit(key: &str, v: &str) -> Option<f64> {
    use crate::domain::efficiency::keys;
    let lower = v.to_ascii_lowercase();
    let (num, scale) = match key {
        k if k == keys::ENERGY_WH => [("mwh", 1e6), ("kwh", 1e3), ("wh", 1.0)]
            .into_iter()
            .find_map(|(u, f)| lower.strip_suffix(u).map(|n| (n, f)))
            .unwrap_or((&lower, 1.0)),
        k if k == keys::GPU_HOURS => (lower.strip_suffix('h').unwrap_or(&lower), 1.0),
        k if k == keys::MFU || k == keys::MFU_MEASURED => {
            (lower.strip_suffix('%').unwrap_or(&lower), 1.0)
        }
        _ => (lower.as_str(), 1.0),
    };
    num.trim().parse::<f64>().ok().map(|n| n * scale)
}

fn unit_help(key: &str) -> &'static str {
    use crate::domain::efficiency::keys;
    match key {
        k if k == keys::ENERGY_WH => "an energy: give Wh, kWh or MWh, like 2kWh",
        k if k == keys::GPU_HOURS => "a number of GPU-hours, like 8 or 8h",
        k if k == keys::MFU || k == keys::MFU_MEASURED => "a percentage, like 40 or 40%",
        _ => "a number",
    }
}
