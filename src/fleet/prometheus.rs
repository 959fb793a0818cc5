//! A Prometheus server's HTTP API as a fleet source: one instant query a refresh for every gauge
//! gantry reads (`{__name__=~"…"}`, never one per GPU), and the targets' health, so a host whose
//! exporter stopped answering is shown with Prometheus's own error rather than dropped.

use std::collections::BTreeMap;
use std::time::Duration;

use std::borrow::Cow;

use super::Host;
use super::scrape::{agent, get};
use crate::interop::promtext::Sample;

/// How to prove who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Bearer(String),
    Basic { user: String, password: String },
}

impl Auth {
    fn header(&self) -> Option<String> {
        use base64::Engine;
        match self {
            Auth::None => None,
            Auth::Bearer(t) => Some(format!("Bearer {t}")),
            Auth::Basic { user, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
        }
    }
}

/// The query for every gauge read.
pub fn query() -> String {
    let mut names: Vec<&str> = super::GAUGES.iter().map(|(n, _)| *n).collect();
    names.push("gantry_gpu_info");
    names.push(super::REASON);
    names.push(super::PROCESS);
    format!("{{__name__=~\"{}\"}}", names.join("|"))
}

fn api(base: &str, path: &str) -> String {
    format!("{}/api/v1/{path}", base.trim_end_matches('/'))
}

/// An API answer: `status`, and `data` or `error`.
#[derive(serde::Deserialize)]
struct Answer<'a, T> {
    #[serde(borrow)]
    status: Cow<'a, str>,
    data: Option<T>,
    error: Option<String>,
}

/// An instant query's vector.
#[derive(serde::Deserialize)]
pub struct Vector<'a> {
    #[serde(borrow)]
    result: Vec<Series<'a>>,
}

#[derive(serde::Deserialize)]
struct Series<'a> {
    #[serde(borrow)]
    metric: std::collections::HashMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(borrow)]
    value: (f64, Cow<'a, str>),
}

/// The `data` of a successful API answer, or Prometheus's own error.
fn data<'a, T: serde::Deserialize<'a>>(text: &'a str, what: &str) -> Result<T, String> {
    let a: Answer<T> =
        serde_json::from_str(text).map_err(|e| format!("{what}: not Prometheus's JSON ({e})"))?;
    match (a.status.as_ref(), a.data) {
        ("success", Some(d)) => Ok(d),
        _ => Err(format!(
            "{what}: {}",
            a.error.as_deref().unwrap_or("the query failed")
        )),
    }
}

/// A value as the API writes it: a string, with `NaN`, `+Inf`, `-Inf`.
fn number(v: &str) -> Option<f64> {
    match v {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        s => s.parse().ok(),
    }
}

/// The labels the fleet reads (the others, such as `device` or `container`, are not kept).
const LABELS: &[&str] = &[
    "Hostname",
    "UUID",
    "uuid",
    "gpu",
    "modelName",
    "name",
    "pci_bus_id",
    "bus_id",
    "hpc_job",
    "pod",
    "namespace",
    "GPU_I_ID",
    "reason",
    "instance",
    "job",
    "pid",
    "user",
    "command",
    "run_id",
    "run",
    "driver",
    "cuda",
    "DCGM_FI_DRIVER_VERSION",
];

/// The samples of an instant query's vector, each with its endpoint (`instance`, else `job`).
pub fn samples_of(v: &Vector) -> Vec<(String, Sample)> {
    let mut out = Vec::with_capacity(v.result.len());
    for r in &v.result {
        let Some(value) = number(&r.value.1) else {
            continue;
        };
        let mut name = String::new();
        let mut labels = Vec::with_capacity(8);
        for (k, val) in &r.metric {
            if k == "__name__" {
                name = val.to_string();
            } else if LABELS.contains(&k.as_ref()) {
                labels.push((k.to_string(), val.to_string()));
            }
        }
        let sample = Sample {
            name,
            labels,
            value,
            timestamp_ms: Some((r.value.0 * 1000.0) as i64),
        };
        let endpoint = sample
            .label("instance")
            .or_else(|| sample.label("job"))
            .unwrap_or("prometheus")
            .to_string();
        out.push((endpoint, sample));
    }
    out
}

#[derive(serde::Deserialize)]
struct Targets<'a> {
    #[serde(borrow, rename = "activeTargets")]
    active: Vec<Target<'a>>,
}

#[derive(serde::Deserialize)]
struct Target<'a> {
    #[serde(borrow)]
    labels: std::collections::HashMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(borrow)]
    health: Cow<'a, str>,
    #[serde(borrow, rename = "lastError", default)]
    last_error: Cow<'a, str>,
}

/// Read the fleet from the Prometheus server at `base` (`http://prom:9090`).
pub fn read(base: &str, auth: &Auth, timeout: Duration) -> Result<Vec<Host>, String> {
    let agent = agent(timeout);
    let header = auth.header();
    let url = format!("{}?query={}", api(base, "query"), form_encode(&query()));
    let text = get(&agent, &url, header.as_deref())?;
    let answer: Vector = data(&text, base)?;
    let mut by_endpoint: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    for (endpoint, s) in samples_of(&answer) {
        by_endpoint.entry(endpoint).or_default().push(s);
    }
    let mut seen: BTreeMap<String, i64> = BTreeMap::new();
    let mut reads = Vec::new();
    for (endpoint, samples) in &by_endpoint {
        let newest = samples.iter().filter_map(|s| s.timestamp_ms).max();
        if let Some(t) = newest {
            seen.insert(endpoint.clone(), t);
        }
        reads.push((
            endpoint.clone(),
            super::hosts_from_samples(samples, endpoint),
        ));
    }
    let mut hosts: Vec<Host> = super::merge_endpoints(reads)
        .into_iter()
        .map(|(name, endpoint, gpus)| Host {
            name,
            source: format!("prometheus {base} (instance {endpoint})"),
            gpus,
            seen_ms: seen.get(&endpoint).copied(),
            error: None,
        })
        .collect();
    // Targets Prometheus could not scrape: their series went stale, so they are not in the
    // answer; shown with the scrape's error. A server that won't say is no error of the fleet's.
    if let Ok(text) = get(
        &agent,
        &format!("{}?state=active", api(base, "targets")),
        header.as_deref(),
    ) && let Ok(targets) = data::<Targets>(&text, base)
    {
        for t in &targets.active {
            let instance = t.labels.get("instance").map_or("", |i| i.as_ref());
            if t.health == "up" || instance.is_empty() || by_endpoint.contains_key(instance) {
                continue;
            }
            let why = if t.last_error.is_empty() {
                "down"
            } else {
                t.last_error.as_ref()
            };
            hosts.push(Host {
                name: instance.to_string(),
                source: format!("prometheus {base} (instance {instance})"),
                gpus: Vec::new(),
                seen_ms: None,
                error: Some(format!("Prometheus cannot scrape it: {why}")),
            });
        }
    }
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(hosts)
}

/// The gauges the history charts draw: utilisation, memory, power, temperature.
const CHARTED: &[&str] = &[
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_FB_RESERVED",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_POWER_MGMT_LIMIT",
    "DCGM_FI_DEV_GPU_TEMP",
    "gantry_gpu_utilization_percent",
    "gantry_gpu_memory_used_bytes",
    "gantry_gpu_memory_total_bytes",
    "gantry_gpu_power_watts",
    "gantry_gpu_power_limit_watts",
    "gantry_gpu_temperature_celsius",
];

/// A range query's matrix.
#[derive(serde::Deserialize)]
struct Matrix<'a> {
    #[serde(borrow)]
    result: Vec<Range<'a>>,
}

#[derive(serde::Deserialize)]
struct Range<'a> {
    #[serde(borrow)]
    metric: std::collections::HashMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(borrow)]
    values: Vec<(f64, Cow<'a, str>)>,
}

/// Seconds between two points of a host's history: an hour in the 600 points a GPU keeps.
pub const HISTORY_STEP_S: i64 = 6;

/// The last hour of one host's charted gauges, as Prometheus holds them: one range query
/// (`query_range`, a point every `HISTORY_STEP_S`) for every gauge of the `instance` that reports
/// it. Each point is the host's GPUs at that time (ms since the epoch), oldest first; `host` is
/// its name in the fleet (the `Hostname` label, else the instance, `NAME@INSTANCE` where two
/// instances report one name).
pub fn history(
    base: &str,
    auth: &Auth,
    timeout: Duration,
    instance: &str,
    host: &str,
    now_ms: i64,
) -> Result<Vec<(i64, Vec<super::FleetGpu>)>, String> {
    let agent = agent(timeout);
    let escaped = instance.replace('\\', "\\\\").replace('"', "\\\"");
    let q = format!(
        "{{__name__=~\"{}\",instance=\"{escaped}\"}}",
        CHARTED.join("|")
    );
    // Points at `end` and every step before it, back an hour; `end` itself is the newest.
    let end = now_ms as f64 / 1000.0;
    let url = format!(
        "{}?query={}&start={:.3}&end={end:.3}&step={HISTORY_STEP_S}",
        api(base, "query_range"),
        form_encode(&q),
        end - 3600.0,
    );
    let text = get(&agent, &url, auth.header().as_deref())?;
    let m: Matrix = data(&text, base)?;
    // The samples at each step, then grouped into hosts as a live read groups them.
    let mut at: BTreeMap<i64, Vec<Sample>> = BTreeMap::new();
    for r in &m.result {
        let mut name = String::new();
        let mut labels = Vec::new();
        for (k, v) in &r.metric {
            if k == "__name__" {
                name = v.to_string();
            } else if LABELS.contains(&k.as_ref()) {
                labels.push((k.to_string(), v.to_string()));
            }
        }
        for (t, v) in &r.values {
            let Some(value) = number(v) else { continue };
            let t = (t * 1000.0).round() as i64;
            at.entry(t).or_default().push(Sample {
                name: name.clone(),
                labels: labels.clone(),
                value,
                timestamp_ms: Some(t),
            });
        }
    }
    let short = host.strip_suffix(&format!("@{instance}")).unwrap_or(host);
    Ok(at
        .into_iter()
        .filter_map(|(t, samples)| {
            let mut hosts = super::hosts_from_samples(&samples, instance);
            hosts.remove(short).map(|gpus| (t, gpus))
        })
        .collect())
}

/// `application/x-www-form-urlencoded` for a query parameter.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_vector_becomes_samples_by_instance() {
        let answer = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"DCGM_FI_DEV_GPU_UTIL","instance":"gpu01:9400","gpu":"0","UUID":"GPU-a","Hostname":"gpu01"},"value":[1764633600.5,"87"]},
            {"metric":{"__name__":"DCGM_FI_DEV_GPU_TEMP","instance":"gpu01:9400","gpu":"0","UUID":"GPU-a"},"value":[1764633600.5,"NaN"]}]}}"#;
        let d: Vector = data(answer, "test").unwrap();
        let s = samples_of(&d);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].0, "gpu01:9400");
        assert_eq!(s[0].1.value, 87.0);
        assert_eq!(s[0].1.timestamp_ms, Some(1_764_633_600_500));
        assert!(s[1].1.value.is_nan());
        let err = data::<Vector>(r#"{"status":"error","error":"parse error"}"#, "prom")
            .err()
            .unwrap();
        assert_eq!(err, "prom: parse error");
        let html = data::<Vector>("<html>", "prom").err().unwrap();
        assert!(html.contains("not Prometheus's JSON"), "{html}");
    }

    #[test]
    fn the_query_names_every_gauge_once() {
        let q = query();
        assert!(q.starts_with("{__name__=~\"DCGM_FI_DEV_GPU_UTIL|"));
        assert!(q.contains("|gantry_gpu_memory_used_bytes|"));
        assert_eq!(form_encode("a b{\"|}"), "a%20b%7B%22%7C%7D");
    }
}
