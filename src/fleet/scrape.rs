//! Exporters read straight from their `/metrics` pages (dcgm-exporter, `gantry serve`), for a
//! small fleet with no Prometheus: every target at once, each with its own timeout. A target that
//! fails or hangs is a host with an error; the others are read all the same.

use std::time::Duration;

use super::Host;
use crate::interop::promtext;

/// Bytes a `/metrics` page may hold.
const MAX_PAGE: u64 = 32 << 20;

/// The URL of a target: `host:port` is `http://host:port/metrics`; a URL without a path gets
/// `/metrics`.
pub fn url_of(target: &str) -> String {
    let t = target.trim_end_matches('/');
    let with_scheme = if t.contains("://") {
        t.to_string()
    } else {
        format!("http://{t}")
    };
    let after_scheme = with_scheme.split_once("://").map_or("", |(_, r)| r);
    if after_scheme.contains('/') {
        with_scheme
    } else {
        format!("{with_scheme}/metrics")
    }
}

/// An HTTP agent that gives up after `timeout` in all.
pub(super) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(true)
        .user_agent(concat!("gantry/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// A GET of `url`, its body as text (at most `MAX_PAGE` bytes), with `auth` as the
/// Authorization header where given. The error says what failed, for a person.
pub(super) fn get(agent: &ureq::Agent, url: &str, auth: Option<&str>) -> Result<String, String> {
    let mut req = agent.get(url);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let mut resp = req.call().map_err(|e| match e {
        ureq::Error::StatusCode(401 | 403) => {
            format!("{url}: refused ({e}); check the token or user")
        }
        ureq::Error::Timeout(_) => format!("{url}: no answer in time"),
        e => format!("{url}: {e}"),
    })?;
    resp.body_mut()
        .with_config()
        .limit(MAX_PAGE)
        .read_to_string()
        .map_err(|e| format!("{url}: reading the answer: {e}"))
}

/// Read every target at once. Each gives its hosts (usually one), or one host named by the
/// target with the error. `token` is sent as a bearer token (what `gantry serve --token` asks).
pub fn read(targets: &[String], token: Option<&str>, timeout: Duration, now_ms: i64) -> Vec<Host> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let agent = agent(timeout);
    let reads: Vec<(String, Result<String, String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = targets
            .iter()
            .map(|t| {
                let (agent, auth) = (&agent, auth.as_deref());
                scope.spawn(move || (t.clone(), get(agent, &url_of(t), auth)))
            })
            .collect();
        handles
            .into_iter()
            .zip(targets)
            .map(|(h, t)| {
                h.join()
                    .unwrap_or_else(|_| (t.clone(), Err("the reader failed".into())))
            })
            .collect()
    });
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (target, page) in reads {
        let page = page.and_then(|text| {
            let e = promtext::parse(&text);
            if !e.samples.iter().any(|s| super::is_read(&s.name)) {
                return Err(match e.problems.first() {
                    Some(p) if e.samples.is_empty() => {
                        format!("{}: not a metrics page ({p})", url_of(&target))
                    }
                    _ => format!("{}: no GPU gauges on the page", url_of(&target)),
                });
            }
            Ok(e)
        });
        match page {
            Ok(e) => ok.push((
                target.clone(),
                super::hosts_from_samples(&e.samples, &target),
            )),
            Err(why) => failed.push(Host {
                name: target.clone(),
                source: target,
                gpus: Vec::new(),
                seen_ms: None,
                error: Some(why),
            }),
        }
    }
    let mut hosts: Vec<Host> = super::merge_endpoints(ok)
        .into_iter()
        .map(|(name, source, gpus)| Host {
            name,
            source,
            gpus,
            seen_ms: Some(now_ms),
            error: None,
        })
        .collect();
    hosts.extend(failed);
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_become_metrics_urls() {
        assert_eq!(url_of("gpu01:9400"), "http://gpu01:9400/metrics");
        assert_eq!(url_of("http://gpu01:5000/"), "http://gpu01:5000/metrics");
        assert_eq!(url_of("https://g/x/metrics"), "https://g/x/metrics");
    }
}
