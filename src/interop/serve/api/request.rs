//! Reading requests (query strings and JSON bodies into typed values) and MLflow's own validation of names, lengths and metrics.

use super::*;

// ---- reading requests -------------------------------------------------------------------------

pub(super) fn missing_param(name: &str) -> ApiError {
    ApiError::invalid(format!(
        "Missing value for required parameter '{name}'. See the API docs for more information \
         about request parameters."
    ))
}

pub(super) fn opt_str(req: &Map<String, Value>, key: &str) -> Option<String> {
    match req.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn req_str(req: &Map<String, Value>, key: &str) -> Result<String, ApiError> {
    opt_str(req, key).ok_or_else(|| missing_param(key))
}

/// The run a request names: `run_id`, or the older `run_uuid`.
pub(super) fn run_id(req: &Map<String, Value>) -> Result<String, ApiError> {
    opt_str(req, "run_id")
        .filter(|s| !s.is_empty())
        .or_else(|| opt_str(req, "run_uuid").filter(|s| !s.is_empty()))
        .ok_or_else(|| missing_param("run_id"))
}

/// An int64 field: a JSON number, or a string holding one (proto3 JSON writes int64 as strings).
pub(super) fn opt_i64(req: &Map<String, Value>, key: &str) -> Result<Option<i64>, ApiError> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => i64_of(v).map(Some).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid value {v} for parameter '{key}' supplied: expected a 64-bit integer."
            ))
        }),
    }
}

/// A time in milliseconds since the epoch: an integer, not negative.
pub(super) fn opt_time(req: &Map<String, Value>, key: &str) -> Result<Option<i64>, ApiError> {
    match opt_i64(req, key)? {
        Some(t) if t < 0 => Err(ApiError::invalid(format!(
            "Invalid value {t} for parameter '{key}' supplied: a time in milliseconds since \
             the epoch cannot be negative."
        ))),
        t => Ok(t),
    }
}

pub(super) fn i64_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A double field: a number, or one of proto3 JSON's strings "NaN", "Infinity", "-Infinity".
pub(super) fn f64_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            s => s.trim().parse().ok(),
        },
        _ => None,
    }
}

pub(super) fn strings(req: &Map<String, Value>, key: &str) -> Vec<String> {
    match req.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Number(n)) => vec![n.to_string()],
        _ => Vec::new(),
    }
}

pub(super) fn max_results(req: &Map<String, Value>) -> Result<usize, ApiError> {
    let n = opt_i64(req, "max_results")?.unwrap_or(DEFAULT_MAX_RESULTS);
    if !(1..=MAX_RESULTS).contains(&n) {
        return Err(ApiError::invalid(format!(
            "Invalid value {n} for parameter 'max_results' supplied. It must be at most \
             {MAX_RESULTS}, and at least 1."
        )));
    }
    Ok(n as usize)
}

/// A `{key, value}` list (tags, params).
pub(super) fn pairs(
    req: &Map<String, Value>,
    key: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let Some(v) = req.get(key) else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = v else {
        return Err(ApiError::invalid(format!("'{key}' must be a list")));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let obj = item
                .as_object()
                .ok_or_else(|| ApiError::invalid(format!("'{key}[{i}]' must be an object")))?;
            let k = req_str(obj, "key").map_err(|_| missing_param(&format!("{key}[{i}].key")))?;
            let v = opt_str(obj, "value").unwrap_or_default();
            Ok((k, v))
        })
        .collect()
}

// ---- validation, as MLflow does it --------------------------------------------------------------

pub(super) fn invalid_value(path: &str, value: &str, why: &str) -> ApiError {
    ApiError::invalid(format!(
        "Invalid value {} for parameter '{path}' supplied: {why}",
        serde_json::to_string(value).unwrap_or_default()
    ))
}

/// Names may hold letters, digits, `_ - . / : ` and spaces, and must not change when read as a
/// path (no `..`, no leading `/`, no `//`).
pub(super) fn check_name(path: &str, name: &str) -> Result<(), ApiError> {
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ' ' | ':'))
    {
        return Err(invalid_value(
            path,
            name,
            "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), \
             spaces ( ), colon(:) and slashes (/).",
        ));
    }
    let norm = normpath(name);
    if norm != name || norm == "." || norm.starts_with("..") || norm.starts_with('/') {
        return Err(invalid_value(
            path,
            name,
            &format!(
                "Names may be treated as files in certain cases, and must not resolve to other \
                 names when treated as such. This name would resolve to '{norm}'"
            ),
        ));
    }
    Ok(())
}

/// POSIX path normalisation as Python's posixpath.normpath does it.
pub(super) fn normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let initial = if p.starts_with("//") && !p.starts_with("///") {
        2
    } else if p.starts_with('/') {
        1
    } else {
        0
    };
    let mut parts: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if (initial == 0 && parts.is_empty()) || parts.last() == Some(&"..") {
                    parts.push("..");
                } else {
                    parts.pop();
                }
            }
            c => parts.push(c),
        }
    }
    let joined = format!("{}{}", "/".repeat(initial), parts.join("/"));
    if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

pub(super) fn check_length(what: &str, limit: usize, value: &str) -> Result<(), ApiError> {
    if value.chars().count() > limit {
        return Err(ApiError::invalid(format!(
            "'{what}' exceeds the maximum length of {limit} characters"
        )));
    }
    Ok(())
}

pub(super) fn check_param(path: &str, key: &str, value: &str) -> Result<(), ApiError> {
    check_name(&format!("{path}key"), key)?;
    check_length("Param key", MAX_ENTITY_KEY_LENGTH, key)?;
    check_length("Param value", MAX_PARAM_VAL_LENGTH, value)
}

pub(super) fn check_tag(path: &str, key: &str, value: &str) -> Result<(), ApiError> {
    check_name(&format!("{path}key"), key)?;
    check_length(&format!("{path}key"), MAX_ENTITY_KEY_LENGTH, key)?;
    check_length(&format!("{path}value"), MAX_TAG_VAL_LENGTH, value)
}

/// One metric point from a request: (key, value, timestamp, step).
pub(super) fn metric_of(
    obj: &Map<String, Value>,
    path: &str,
) -> Result<(String, f64, i64, i64), ApiError> {
    let key = req_str(obj, "key").map_err(|_| missing_param(&format!("{path}key")))?;
    check_name(&format!("{path}name"), &key)?;
    let value = match obj.get("value") {
        None | Some(Value::Null) => return Err(missing_param(&format!("{path}value"))),
        Some(v) => f64_of(v).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid value {v} for parameter '{path}value' supplied: Please specify value as \
                 a valid double (64-bit floating point)"
            ))
        })?,
    };
    let timestamp = match obj.get("timestamp") {
        None | Some(Value::Null) => return Err(missing_param(&format!("{path}timestamp"))),
        Some(v) => i64_of(v).filter(|t| *t >= 0).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid value {v} for parameter '{path}timestamp' supplied: metric '{key}'. \
                 Timestamp must be a nonnegative long (64-bit integer)"
            ))
        })?,
    };
    let step = match obj.get("step") {
        None | Some(Value::Null) => 0,
        Some(v) => i64_of(v).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid value {v} for parameter '{path}step' supplied: metric '{key}'. Step \
                 must be a valid long (64-bit integer)."
            ))
        })?,
    };
    check_length("Metric name", MAX_ENTITY_KEY_LENGTH, &key)?;
    Ok((key, value, timestamp, step))
}
