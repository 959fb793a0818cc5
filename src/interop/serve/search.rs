//! MLflow's search language for runs and experiments: `metrics.acc > 0.9 and params.lr = '0.01'`
//! filters, `metrics.loss ASC` orderings and opaque page tokens. Parsed here, evaluated over any
//! row that can answer [`Fields`].

use std::cmp::Ordering;

use base64::Engine;

/// What a clause or an ordering refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Metric,
    Param,
    Tag,
    Attribute,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Num(f64),
    List(Vec<String>),
    Nothing,
}

/// One `entity.key op value` comparison; a filter is all of them ANDed.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub entity: Entity,
    pub key: String,
    pub op: Op,
    pub value: Lit,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderKey {
    pub entity: Entity,
    pub key: String,
    pub ascending: bool,
}

/// A value an attribute holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Str(String),
    Num(f64),
}

/// What a searched row answers.
pub trait Fields {
    fn metric(&self, key: &str) -> Option<f64>;
    fn param(&self, key: &str) -> Option<&str>;
    fn tag(&self, key: &str) -> Option<&str>;
    fn attribute(&self, key: &str) -> Option<Attr>;
}

/// Which attributes a search may name, and which of them are numbers.
pub struct Attributes {
    pub strings: &'static [&'static str],
    pub numbers: &'static [&'static str],
}

pub const RUN_ATTRIBUTES: Attributes = Attributes {
    strings: &[
        "run_id",
        "run_name",
        "status",
        "user_id",
        "artifact_uri",
        "lifecycle_stage",
        "experiment_id",
    ],
    numbers: &["start_time", "end_time", "created", "Created"],
};

pub const EXPERIMENT_ATTRIBUTES: Attributes = Attributes {
    strings: &["name", "experiment_id", "lifecycle_stage"],
    numbers: &["creation_time", "last_update_time"],
};

impl Attributes {
    fn check(&self, key: &str) -> Result<bool, String> {
        if self.numbers.contains(&key) {
            Ok(true)
        } else if self.strings.contains(&key) {
            Ok(false)
        } else {
            let mut all: Vec<&str> = self.strings.to_vec();
            all.extend(self.numbers);
            Err(format!(
                "Invalid attribute key '{key}' specified. Valid keys are '{}'",
                all.join("', '")
            ))
        }
    }
}

/// Parse a filter string; an empty one is no clause.
pub fn parse_filter(text: &str, attrs: &Attributes) -> Result<Vec<Clause>, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
    };
    let mut clauses = Vec::new();
    p.skip_ws();
    if p.done() {
        return Ok(clauses);
    }
    loop {
        clauses.push(
            p.clause(attrs)
                .map_err(|e| format!("Error on parsing filter '{text}': {e}"))?,
        );
        p.skip_ws();
        if p.done() {
            return Ok(clauses);
        }
        if !p.keyword("and") {
            return Err(format!(
                "Error on parsing filter '{text}': expected AND at character {}, \
                 only AND joins clauses",
                p.pos
            ));
        }
    }
}

/// Parse `order_by` items such as `metrics.loss ASC`, `attributes.start_time DESC`, `params.lr`.
pub fn parse_order_by(items: &[String], attrs: &Attributes) -> Result<Vec<OrderKey>, String> {
    items
        .iter()
        .map(|item| {
            let mut p = Parser {
                s: item.as_bytes(),
                pos: 0,
            };
            p.skip_ws();
            let (entity, key) = p
                .identifier(attrs)
                .map_err(|e| format!("Invalid order_by clause '{item}': {e}"))?;
            p.skip_ws();
            let ascending = if p.keyword("desc") {
                false
            } else {
                p.keyword("asc");
                true
            };
            p.skip_ws();
            if !p.done() {
                return Err(format!(
                    "Invalid order_by clause '{item}': expected ASC or DESC after the key"
                ));
            }
            Ok(OrderKey {
                entity,
                key,
                ascending,
            })
        })
        .collect()
}

/// Whether `row` passes every clause. A metric, param or tag the row lacks fails its clause
/// (except IS NULL), as a join in MLflow's own store would.
pub fn matches(row: &dyn Fields, clauses: &[Clause]) -> bool {
    clauses.iter().all(|c| clause_matches(row, c))
}

fn clause_matches(row: &dyn Fields, c: &Clause) -> bool {
    let value: Option<Attr> = match c.entity {
        Entity::Metric => row.metric(&c.key).map(Attr::Num),
        Entity::Param => row.param(&c.key).map(|s| Attr::Str(s.into())),
        Entity::Tag => row.tag(&c.key).map(|s| Attr::Str(s.into())),
        Entity::Attribute => row.attribute(&c.key),
    };
    match (c.op, value) {
        (Op::IsNull, v) => v.is_none(),
        (Op::IsNotNull, v) => v.is_some(),
        (_, None) => false,
        (op, Some(Attr::Num(x))) => {
            let y = match &c.value {
                Lit::Num(y) => *y,
                Lit::Str(s) => match s.trim().parse::<f64>() {
                    Ok(y) => y,
                    Err(_) => return false,
                },
                _ => return false,
            };
            match op {
                Op::Eq => x == y,
                Op::Ne => x != y,
                Op::Lt => x < y,
                Op::Le => x <= y,
                Op::Gt => x > y,
                Op::Ge => x >= y,
                _ => false,
            }
        }
        (op, Some(Attr::Str(x))) => match (&c.value, op) {
            (Lit::List(items), Op::In) => items.contains(&x),
            (Lit::List(items), Op::NotIn) => !items.contains(&x),
            (Lit::Str(y), Op::Eq) => &x == y,
            (Lit::Str(y), Op::Ne) => &x != y,
            (Lit::Str(y), Op::Like) => like(&x, y, false),
            (Lit::Str(y), Op::ILike) => like(&x, y, true),
            (Lit::Str(y), Op::Lt) => x.as_str() < y.as_str(),
            (Lit::Str(y), Op::Le) => x.as_str() <= y.as_str(),
            (Lit::Str(y), Op::Gt) => x.as_str() > y.as_str(),
            (Lit::Str(y), Op::Ge) => x.as_str() >= y.as_str(),
            _ => false,
        },
    }
}

/// Compare two rows by `order`; rows lacking a key sort after those that have it, either way.
pub fn compare(a: &dyn Fields, b: &dyn Fields, order: &[OrderKey]) -> Ordering {
    for k in order {
        let get = |r: &dyn Fields| -> Option<Attr> {
            match k.entity {
                Entity::Metric => r.metric(&k.key).map(Attr::Num),
                Entity::Param => r.param(&k.key).map(|s| Attr::Str(s.into())),
                Entity::Tag => r.tag(&k.key).map(|s| Attr::Str(s.into())),
                Entity::Attribute => r.attribute(&k.key),
            }
        };
        let ord = match (get(a), get(b)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => {
                let o = match (x, y) {
                    (Attr::Num(x), Attr::Num(y)) => x.total_cmp(&y),
                    (Attr::Str(x), Attr::Str(y)) => x.cmp(&y),
                    (Attr::Num(_), Attr::Str(_)) => Ordering::Less,
                    (Attr::Str(_), Attr::Num(_)) => Ordering::Greater,
                };
                if k.ascending { o } else { o.reverse() }
            }
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// SQL LIKE: `%` any run of characters, `_` any one character.
pub fn like(text: &str, pattern: &str, ignore_case: bool) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if ignore_case {
            s.to_lowercase().chars().collect()
        } else {
            s.chars().collect()
        }
    };
    let (t, p) = (fold(text), fold(pattern));
    // Iterative wildcard matching with backtracking to the last `%`.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < t.len() {
        if j < p.len() && (p[j] == '_' || (p[j] != '%' && p[j] == t[i])) {
            i += 1;
            j += 1;
        } else if j < p.len() && p[j] == '%' {
            star = Some((j, i));
            j += 1;
        } else if let Some((sj, si)) = star {
            j = sj + 1;
            i = si + 1;
            star = Some((sj, si + 1));
        } else {
            return false;
        }
    }
    p[j..].iter().all(|&c| c == '%')
}

/// The page token for rows from `offset` on.
pub fn page_token(offset: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"offset\": {offset}}}"))
}

/// The offset a page token stands for; an empty token is the first page.
pub fn parse_page_token(token: &str) -> Result<usize, String> {
    if token.is_empty() {
        return Ok(0);
    }
    let bad = || format!("Invalid page token, could not base64-decode or parse it: '{token}'");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad())?;
    let v: serde_json::Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    v.get("offset")
        .and_then(serde_json::Value::as_u64)
        .map(|o| o as usize)
        .ok_or_else(bad)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// Consume `word` (case-insensitive) when it stands here as a whole word.
    fn keyword(&mut self, word: &str) -> bool {
        let end = self.pos + word.len();
        if end > self.s.len() || !self.s[self.pos..end].eq_ignore_ascii_case(word.as_bytes()) {
            return false;
        }
        if self
            .s
            .get(end)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            return false;
        }
        self.pos = end;
        true
    }

    fn quoted(&mut self) -> Result<String, String> {
        let q = self.peek().ok_or("expected a quoted string")?;
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            if c == q {
                // A doubled quote stands for one.
                if self.peek() == Some(q) {
                    self.pos += 1;
                    out.push(q);
                    continue;
                }
                return String::from_utf8(out).map_err(|e| e.to_string());
            }
            if c == b'\\' && self.peek().is_some_and(|n| n == q || n == b'\\') {
                out.push(self.s[self.pos]);
                self.pos += 1;
                continue;
            }
            out.push(c);
        }
        Err(format!("unterminated quote starting at character {start}"))
    }

    /// `prefix.key`, where key may be quoted with backticks or double quotes.
    fn identifier(&mut self, attrs: &Attributes) -> Result<(Entity, String), String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.pos += 1;
        }
        let head = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or_default();
        if head.is_empty() {
            return Err(format!("expected an identifier at character {start}"));
        }
        let entity = if self.peek() == Some(b'.') {
            let e = match head.to_ascii_lowercase().as_str() {
                "metric" | "metrics" => Entity::Metric,
                "param" | "params" | "parameter" | "parameters" => Entity::Param,
                "tag" | "tags" => Entity::Tag,
                "attribute" | "attributes" | "attr" | "run" => Entity::Attribute,
                _ => {
                    return Err(format!(
                        "invalid entity type '{head}'; valid ones are metrics, params, tags and \
                         attributes"
                    ));
                }
            };
            self.pos += 1;
            Some(e)
        } else {
            None
        };
        let key = match entity {
            None => head.to_string(),
            Some(_) => match self.peek() {
                Some(b'`') | Some(b'"') => self.quoted()?,
                _ => {
                    let k0 = self.pos;
                    while self.peek().is_some_and(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'/' | b':')
                    }) {
                        self.pos += 1;
                    }
                    if k0 == self.pos {
                        return Err(format!("expected a key after '{head}.'"));
                    }
                    String::from_utf8_lossy(&self.s[k0..self.pos]).into_owned()
                }
            },
        };
        let entity = entity.unwrap_or(Entity::Attribute);
        if entity == Entity::Attribute {
            attrs.check(&key)?;
        }
        Ok((entity, key))
    }

    fn op(&mut self) -> Result<Op, String> {
        for (sym, op) in [
            ("!=", Op::Ne),
            ("<>", Op::Ne),
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("=", Op::Eq),
            (">", Op::Gt),
            ("<", Op::Lt),
        ] {
            if self.s[self.pos..].starts_with(sym.as_bytes()) {
                self.pos += sym.len();
                return Ok(op);
            }
        }
        if self.keyword("like") {
            return Ok(Op::Like);
        }
        if self.keyword("ilike") {
            return Ok(Op::ILike);
        }
        if self.keyword("in") {
            return Ok(Op::In);
        }
        if self.keyword("not") {
            self.skip_ws();
            if self.keyword("in") {
                return Ok(Op::NotIn);
            }
            return Err("expected IN after NOT".into());
        }
        if self.keyword("is") {
            self.skip_ws();
            let not = self.keyword("not");
            self.skip_ws();
            if self.keyword("null") {
                return Ok(if not { Op::IsNotNull } else { Op::IsNull });
            }
            return Err("expected NULL after IS".into());
        }
        Err(format!("expected a comparator at character {}", self.pos))
    }

    fn clause(&mut self, attrs: &Attributes) -> Result<Clause, String> {
        self.skip_ws();
        let (entity, key) = self.identifier(attrs)?;
        let numeric = entity == Entity::Metric
            || (entity == Entity::Attribute && attrs.numbers.contains(&key.as_str()));
        self.skip_ws();
        let op = self.op()?;
        if numeric && matches!(op, Op::Like | Op::ILike | Op::In | Op::NotIn) {
            return Err(format!("'{key}' is a number: LIKE and IN do not apply"));
        }
        self.skip_ws();
        let value = match op {
            Op::IsNull | Op::IsNotNull => Lit::Nothing,
            Op::In | Op::NotIn => {
                if self.peek() != Some(b'(') {
                    return Err("expected '(' after IN".into());
                }
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    items.push(self.quoted()?);
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b')') => {
                            self.pos += 1;
                            break;
                        }
                        _ => return Err("expected ',' or ')' in the IN list".into()),
                    }
                }
                Lit::List(items)
            }
            _ => match self.peek() {
                Some(b'\'') | Some(b'"') => {
                    let s = self.quoted()?;
                    if numeric {
                        // MLflow accepts a quoted number for a numeric attribute, not a metric.
                        if entity == Entity::Metric {
                            return Err(format!(
                                "expected a numeric value for metric '{key}', got the string '{s}'"
                            ));
                        }
                    }
                    Lit::Str(s)
                }
                Some(_) => {
                    let start = self.pos;
                    while self.peek().is_some_and(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+')
                    }) {
                        self.pos += 1;
                    }
                    let raw = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
                    if !numeric {
                        return Err(format!(
                            "expected a quoted string value for '{key}', got {raw}"
                        ));
                    }
                    Lit::Num(
                        raw.parse::<f64>()
                            .map_err(|_| format!("expected a number for '{key}', got '{raw}'"))?,
                    )
                }
                None => return Err(format!("expected a value after the comparator for '{key}'")),
            },
        };
        Ok(Clause {
            entity,
            key,
            op,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Row {
        metrics: BTreeMap<String, f64>,
        params: BTreeMap<String, String>,
        attrs: BTreeMap<String, Attr>,
    }

    impl Fields for Row {
        fn metric(&self, key: &str) -> Option<f64> {
            self.metrics.get(key).copied()
        }
        fn param(&self, key: &str) -> Option<&str> {
            self.params.get(key).map(String::as_str)
        }
        fn tag(&self, _: &str) -> Option<&str> {
            None
        }
        fn attribute(&self, key: &str) -> Option<Attr> {
            self.attrs.get(key).cloned()
        }
    }

    fn row(acc: f64, lr: &str, status: &str, start: f64) -> Row {
        Row {
            metrics: [("acc".to_string(), acc)].into(),
            params: [("lr".to_string(), lr.to_string())].into(),
            attrs: [
                ("status".to_string(), Attr::Str(status.into())),
                ("start_time".to_string(), Attr::Num(start)),
            ]
            .into(),
        }
    }

    fn f(s: &str) -> Vec<Clause> {
        parse_filter(s, &RUN_ATTRIBUTES).unwrap()
    }

    #[test]
    fn filters_combine_metrics_params_and_attributes() {
        let r = row(0.93, "0.01", "FINISHED", 100.0);
        assert!(matches(&r, &f("metrics.acc > 0.9 and params.lr = '0.01'")));
        assert!(matches(
            &r,
            &f("attributes.status = \"FINISHED\" AND start_time >= 100")
        ));
        assert!(!matches(&r, &f("metrics.acc > 0.95")));
        assert!(
            !matches(&r, &f("metrics.loss < 1")),
            "a missing metric fails"
        );
        assert!(matches(&r, &f("metrics.loss IS NULL")));
        assert!(matches(&r, &f("params.lr LIKE '0.0%'")));
        assert!(matches(&r, &f("attributes.status ILIKE 'fin%'")));
        assert!(!matches(&r, &f("attributes.status LIKE 'fin%'")));
        assert!(matches(
            &r,
            &f("attributes.status IN ('FAILED', 'FINISHED')")
        ));
        assert!(!matches(&r, &f("attributes.status NOT IN ('FINISHED')")));
        assert!(f("").is_empty());
    }

    #[test]
    fn quoted_keys_take_any_character() {
        let c = f("metrics.`val loss` < 0.5 and tags.\"mlflow.runName\" = 'a''b'");
        assert_eq!(c[0].key, "val loss");
        assert_eq!(c[1].key, "mlflow.runName");
        assert_eq!(c[1].value, Lit::Str("a'b".into()));
    }

    #[test]
    fn bad_filters_say_what_is_wrong() {
        for (bad, says) in [
            ("metrics.acc >", "expected a value"),
            ("metrics.acc > 'x'", "numeric value"),
            ("params.lr = 0.1", "quoted string"),
            ("foo.bar = 'x'", "invalid entity type"),
            ("attributes.nope = 'x'", "Invalid attribute key 'nope'"),
            ("metrics.a > 1 or metrics.b > 1", "only AND"),
            ("params.lr = 'x", "unterminated"),
            ("metrics.acc LIKE '1%'", "is a number"),
        ] {
            let e = parse_filter(bad, &RUN_ATTRIBUTES).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn order_puts_missing_values_last_both_ways() {
        let a = row(0.5, "a", "FINISHED", 1.0);
        let b = row(0.9, "b", "FINISHED", 2.0);
        let mut c = row(0.0, "c", "FINISHED", 3.0);
        c.metrics.clear();
        let desc = parse_order_by(&["metrics.acc DESC".into()], &RUN_ATTRIBUTES).unwrap();
        let asc = parse_order_by(&["metrics.acc".into()], &RUN_ATTRIBUTES).unwrap();
        let sort = |o: &[OrderKey]| {
            let mut v: Vec<&Row> = vec![&c, &a, &b];
            v.sort_by(|x, y| compare(*x, *y, o));
            v.iter().map(|r| r.params["lr"].clone()).collect::<String>()
        };
        assert_eq!(sort(&desc), "bac");
        assert_eq!(sort(&asc), "abc");
        assert!(parse_order_by(&["metrics.acc sideways".into()], &RUN_ATTRIBUTES).is_err());
    }

    #[test]
    fn like_handles_wildcards() {
        assert!(like("resnet-50", "res%", false));
        assert!(like("resnet-50", "%net%", false));
        assert!(like("resnet-50", "resnet-5_", false));
        assert!(!like("resnet-50", "resnet-5", false));
        assert!(like("ABC", "a%c", true));
        assert!(like("", "%", false));
        assert!(like("aaab", "%a%ab", false));
    }

    #[test]
    fn page_tokens_round_trip_and_bad_ones_are_refused() {
        assert_eq!(parse_page_token(&page_token(250)), Ok(250));
        assert_eq!(parse_page_token(""), Ok(0));
        assert!(parse_page_token("not base64!").is_err());
    }
}
