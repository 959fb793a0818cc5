//! Reading the Prometheus text exposition format (version 0.0.4), as exporters serve it on
//! `/metrics` (dcgm-exporter, node_exporter, `gantry serve`): samples with their labels, and the
//! `# TYPE` and `# HELP` lines. A line that does not parse is skipped and described with its line
//! number; the others are kept, as Prometheus's own scraper would not.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// Metric family name -> counter, gauge, histogram, summary or untyped.
    pub types: BTreeMap<String, String>,
    pub help: BTreeMap<String, String>,
    /// Lines skipped, each as "line N: what is wrong".
    pub problems: Vec<String>,
}

/// At most this many problems are described; the rest are counted in the last one.
const MAX_PROBLEMS: usize = 20;

pub fn parse(text: &str) -> Exposition {
    let mut out = Exposition::default();
    let mut skipped = 0usize;
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.is_empty() {
            continue;
        }
        let result = match trimmed.strip_prefix('#') {
            Some(comment) => meta_line(comment, &mut out),
            None => sample(trimmed).map(|s| out.samples.push(s)),
        };
        if let Err(e) = result {
            skipped += 1;
            if out.problems.len() < MAX_PROBLEMS {
                out.problems.push(format!("line {}: {e}", i + 1));
            }
        }
    }
    if skipped > out.problems.len() {
        out.problems.push(format!(
            "{} more lines skipped",
            skipped - out.problems.len()
        ));
    }
    out
}

fn meta_line(comment: &str, out: &mut Exposition) -> Result<(), String> {
    let rest = comment.trim_start_matches([' ', '\t']);
    let (word, rest) = split_word(rest);
    if word != "HELP" && word != "TYPE" {
        return Ok(()); // a plain comment
    }
    let (name, rest) = split_word(rest.trim_start_matches([' ', '\t']));
    if !is_metric_name(name) {
        return Err(format!("# {word} names no valid metric ({name:?})"));
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    if word == "TYPE" {
        let kind = rest.trim_end_matches([' ', '\t']);
        if !matches!(
            kind,
            "counter" | "gauge" | "histogram" | "summary" | "untyped"
        ) {
            return Err(format!("# TYPE {name} has an unknown type {kind:?}"));
        }
        out.types.insert(name.to_string(), kind.to_string());
    } else {
        out.help.insert(name.to_string(), unescape_help(rest));
    }
    Ok(())
}

fn split_word(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub fn is_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

fn is_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn sample(line: &str) -> Result<Sample, String> {
    let end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..end];
    if !is_metric_name(name) {
        return Err(format!("{name:?} is not a metric name"));
    }
    let mut rest = &line[end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = label_set(r, &mut labels)?;
    }
    let mut words = rest.split([' ', '\t']).filter(|w| !w.is_empty());
    let value = words.next().ok_or_else(|| format!("{name} has no value"))?;
    let value = parse_value(value).ok_or_else(|| format!("{name}: {value:?} is not a number"))?;
    let timestamp_ms = match words.next() {
        None => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| format!("{name}: timestamp {t:?} is not an integer"))?,
        ),
    };
    if let Some(extra) = words.next() {
        return Err(format!("{name}: unexpected {extra:?} after the timestamp"));
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
        timestamp_ms,
    })
}

/// The labels after `{`, up to and including `}`; returns what follows.
fn label_set<'a>(mut s: &'a str, labels: &mut Vec<(String, String)>) -> Result<&'a str, String> {
    loop {
        s = s.trim_start_matches([' ', '\t']);
        if let Some(r) = s.strip_prefix('}') {
            return Ok(r);
        }
        let eq = s.find('=').ok_or("a label has no `=`")?;
        let key = s[..eq].trim_end_matches([' ', '\t']);
        if !is_label_name(key) {
            return Err(format!("{key:?} is not a label name"));
        }
        s = s[eq + 1..].trim_start_matches([' ', '\t']);
        s = s
            .strip_prefix('"')
            .ok_or_else(|| format!("label {key}'s value is not quoted"))?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let close = loop {
            match chars.next() {
                None => return Err(format!("label {key}'s value has no closing quote")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, c)) => {
                        value.push('\\');
                        value.push(c);
                    }
                    None => return Err(format!("label {key}'s value has no closing quote")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((key.to_string(), value));
        s = s[close + 1..].trim_start_matches([' ', '\t']);
        if let Some(r) = s.strip_prefix(',') {
            s = r;
        } else if !s.starts_with('}') {
            return Err(format!("expected `,` or `}}` after label {key}"));
        }
    }
}

/// A sample value as Go's ParseFloat reads it: decimal or exponent forms, NaN, +Inf, -Inf.
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if s
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE_".contains(&b)) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dcgm_exporter_lines() {
        let text = "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n\
                    # TYPE DCGM_FI_DEV_GPU_UTIL gauge\n\
                    DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",UUID=\"GPU-1\",modelName=\"NVIDIA H200\",Hostname=\"a\"} 97\n\
                    DCGM_FI_DEV_FB_USED{gpu=\"0\", UUID=\"GPU-1\",} 1.5e3 1700000000000\n\
                    weird{x=\"a\\\"b\\\\c\\nd\"} -Inf\n\
                    nan_value NaN\n";
        let e = parse(text);
        assert_eq!(e.problems, Vec::<String>::new());
        assert_eq!(e.samples.len(), 4);
        assert_eq!(e.samples[0].label("modelName"), Some("NVIDIA H200"));
        assert_eq!(e.samples[0].value, 97.0);
        assert_eq!(e.samples[1].timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(e.samples[1].labels.len(), 2);
        assert_eq!(e.samples[2].label("x"), Some("a\"b\\c\nd"));
        assert_eq!(e.samples[2].value, f64::NEG_INFINITY);
        assert!(e.samples[3].value.is_nan());
        assert_eq!(e.types["DCGM_FI_DEV_GPU_UTIL"], "gauge");
        assert_eq!(e.help["DCGM_FI_DEV_GPU_UTIL"], "GPU utilization (in %).");
    }

    #[test]
    fn bad_lines_are_skipped_and_described() {
        let text = "ok 1\n9bad 2\nx{a=b} 3\nx{a=\"b\" 3\ny abc\nz 1 2 3\n# TYPE q blob\nok2 2\n";
        let e = parse(text);
        assert_eq!(e.samples.len(), 2);
        assert_eq!(e.problems.len(), 6, "{:?}", e.problems);
        assert!(e.problems[0].starts_with("line 2:"), "{:?}", e.problems);
        assert!(e.problems[3].contains("not a number"), "{:?}", e.problems);
    }
}
