//! A Prometheus server's HTTP API as a fleet source: one instant query a refresh for every gauge
//! gantry reads (`{__name__=~"…"}`, never one per GPU), and the targets' health, so a host whose
//! exporter stopped answering is shown with Prometheus's own error rather than dropped.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

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
    format!("{{__name__=~\"{}\"}}", names.join("|"))
}

fn api(base: &str, path: &str) -> String {
    format!("{}/api/v1/{path}", base.trim_end_matches('/'))
}

/// The `data` of a successful API answer, or Prometheus's own error.
fn data(text: &str, what: &str) -> Result<Value, String> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("{what}: not Prometheus's JSON ({e})"))?;
    if v["status"] != "success" {
        return Err(format!(
            "{what}: {}",
            v["error"].as_str().unwrap_or("the query failed")
        ));
    }
    Ok(v["data"].clone())
}

/// A value as the API writes it: a string, with `NaN`, `+Inf`, `-Inf`.
fn number(v: &Value) -> Option<f64> {
    match v.as_str()? {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        s => s.parse().ok(),
    }
}

/// The samples of an instant query's vector, each with its endpoint (`instance`, else `job`).
pub fn samples_of(data: &Value) -> Vec<(String, Sample)> {
    let mut out = Vec::new();
    for r in data["result"].as_array().into_iter().flatten() {
        let Some(metric) = r["metric"].as_object() else {
            continue;
        };
        let (Some(ts), Some(value)) = (r["value"][0].as_f64(), number(&r["value"][1])) else {
            continue;
        };
        let mut name = String::new();
        let mut labels = Vec::new();
        for (k, v) in metric {
            let v = v.as_str().unwrap_or_default().to_string();
            if k == "__name__" {
                name = v;
            } else {
                labels.push((k.clone(), v));
            }
        }
        let sample = Sample {
            name,
            labels,
            value,
            timestamp_ms: Some((ts * 1000.0) as i64),
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

/// Read the fleet from the Prometheus server at `base` (`http://prom:9090`).
pub fn read(base: &str, auth: &Auth, timeout: Duration) -> Result<Vec<Host>, String> {
    let agent = agent(timeout);
    let header = auth.header();
    let url = format!("{}?query={}", api(base, "query"), form_encode(&query()));
    let answer = data(&get(&agent, &url, header.as_deref())?, base)?;
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
    ) && let Ok(targets) = data(&text, base)
    {
        for t in targets["activeTargets"].as_array().into_iter().flatten() {
            let instance = t["labels"]["instance"].as_str().unwrap_or_default();
            if t["health"] == "up" || instance.is_empty() || by_endpoint.contains_key(instance) {
                continue;
            }
            hosts.push(Host {
                name: instance.to_string(),
                source: format!("prometheus {base} (instance {instance})"),
                gpus: Vec::new(),
                seen_ms: None,
                error: Some(format!(
                    "Prometheus cannot scrape it: {}",
                    t["lastError"]
                        .as_str()
                        .filter(|e| !e.is_empty())
                        .unwrap_or("down")
                )),
            });
        }
    }
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(hosts)
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
        let d = data(answer, "test").unwrap();
        let s = samples_of(&d);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].0, "gpu01:9400");
        assert_eq!(s[0].1.value, 87.0);
        assert_eq!(s[0].1.timestamp_ms, Some(1_764_633_600_500));
        assert!(s[1].1.value.is_nan());
        let err = data(r#"{"status":"error","error":"parse error"}"#, "prom").unwrap_err();
        assert_eq!(err, "prom: parse error");
        assert!(
            data("<html>", "prom")
                .unwrap_err()
                .contains("not Prometheus's JSON")
        );
    }

    #[test]
    fn the_query_names_every_gauge_once() {
        let q = query();
        assert!(q.starts_with("{__name__=~\"DCGM_FI_DEV_GPU_UTIL|"));
        assert!(q.contains("|gantry_gpu_memory_used_bytes|"));
        assert_eq!(form_encode("a b{\"|}"), "a%20b%7B%22%7C%7D");
    }
}
