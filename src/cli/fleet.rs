//! `gantry gpu --fleet` and `gantry gpu --free`: the GPUs of every box the fleet sources reach
//! (`[fleet]` in the config, or `--prometheus` and `--scrape`), as a host table or JSON, and the
//! free GPUs across them.

use super::out::{self, out};
use std::process::ExitCode;
use std::time::Duration;

use crate::config::FleetConfig;
use crate::domain::now_ms;
use crate::error::UserError;
use crate::fleet::prometheus::Auth;
use crate::fleet::{FreeRule, Host, Sources, free_gpus};
use crate::format::{duration, fit, size};

/// What `gantry gpu` was asked about the fleet.
pub struct Ask<'a> {
    pub prometheus: &'a Option<String>,
    pub scrape: &'a [String],
    pub ssh: &'a [String],
    pub token: &'a Option<String>,
    pub timeout: Option<f64>,
    pub json: bool,
    /// `--free`, with `--min-mem` and `--count`.
    pub free: Option<(u64, usize)>,
}

/// The sources: flags first, else the config's `[fleet]`.
pub fn sources(ask: &Ask, cfg: &FleetConfig) -> Result<Sources, UserError> {
    let given = ask.prometheus.is_some() || !ask.scrape.is_empty() || !ask.ssh.is_empty();
    let prometheus = if given {
        ask.prometheus.clone()
    } else {
        cfg.prometheus.clone()
    };
    let scrape = if given {
        ask.scrape.to_vec()
    } else {
        cfg.scrape.clone()
    };
    let auth = match (&ask.token, &cfg.prometheus_token, &cfg.prometheus_user) {
        (Some(t), ..) | (None, Some(t), _) => Auth::Bearer(t.clone()),
        (None, None, Some(u)) => Auth::Basic {
            user: u.clone(),
            password: cfg.prometheus_password.clone().unwrap_or_default(),
        },
        _ => Auth::None,
    };
    let timeout = ask.timeout.or(cfg.timeout_s).unwrap_or(5.0);
    if !(timeout.is_finite() && (0.1..=300.0).contains(&timeout)) {
        return Err(UserError::new(format!(
            "--timeout {timeout} is outside 0.1..=300 seconds"
        )));
    }
    let ssh = if given {
        ask.ssh.to_vec()
    } else {
        cfg.ssh.clone()
    };
    let timeout = Duration::from_secs_f64(timeout);
    let ssh = crate::fleet::ssh::SshConfig {
        hosts: ssh,
        options: cfg.ssh_options.clone(),
        gantry: cfg.ssh_gantry.clone().unwrap_or_else(|| "gantry".into()),
        every: refresh(cfg),
        timeout,
    };
    let s = Sources::new(
        prometheus.map(|p| (p, auth)),
        scrape,
        ask.token.clone().or_else(|| cfg.scrape_token.clone()),
        Some(ssh),
        timeout,
    );
    if s.is_empty() {
        return Err(UserError::new("no fleet to read").hint(
            "give --prometheus URL, --scrape HOST:PORT or --ssh HOST, or set [fleet] prometheus, \
             scrape or ssh in the config (docs/fleet.md)",
        ));
    }
    Ok(s)
}

/// A size such as `40G`, `512M`, `80GiB` or a number of bytes.
pub fn parse_size(s: &str) -> Result<u64, UserError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| UserError::new(format!("`{s}` is not a size: give e.g. 40G or 512M")))?;
    let mult = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1u64,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => {
            return Err(UserError::new(format!(
                "`{s}`: unknown unit `{unit}`; use K, M, G or T"
            )));
        }
    };
    Ok((n * mult as f64) as u64)
}

/// How often the workbench reads the fleet, and ssh hosts report: the config's refresh_s
/// (default 5, at least 1).
pub fn refresh(cfg: &FleetConfig) -> Duration {
    let secs = cfg.refresh_s.filter(|s| s.is_finite()).unwrap_or(5.0);
    Duration::from_secs_f64(secs.clamp(1.0, 3600.0))
}

pub fn rule(cfg: &FleetConfig) -> FreeRule {
    let d = FreeRule::default();
    FreeRule {
        max_mem_used: cfg.free_mem_used_mib.map_or(d.max_mem_used, |m| m << 20),
        max_util: cfg.free_util.unwrap_or(d.max_util),
    }
}

pub async fn run(
    ask: Ask<'_>,
    cfg: &FleetConfig,
    workspace: &Option<std::path::PathBuf>,
) -> anyhow::Result<ExitCode> {
    let src = sources(&ask, cfg)?;
    let now = now_ms();
    let mut hosts = tokio::task::spawn_blocking(move || src.read(now)).await?;
    // The runs holding GPUs of hosts that list no processes, where a store is at hand (a team
    // store knows every host's).
    if let Ok(ws) = super::resolve(workspace)
        && let Ok(store) = super::common::open_store(&ws).await
    {
        crate::app::attach_runs(&store, &mut hosts).await;
    }
    let rule = rule(cfg);
    if let Some((min_mem, count)) = ask.free {
        let free = free_gpus(&hosts, &rule, min_mem);
        if ask.json {
            let v: Vec<_> = free
                .iter()
                .map(|(h, g)| {
                    serde_json::json!({
                        "host": h.name,
                        "index": g.sample.index,
                        "uuid": g.sample.uuid,
                        "name": g.sample.name,
                        "mem_free": g.mem_free(),
                        "mem_total": g.sample.mem_total,
                    })
                })
                .collect();
            out::json(&v)?;
        } else {
            out!("{}", free_table(&free));
            for h in hosts.iter().filter(|h| h.error.is_some()) {
                eprintln!(
                    "{}: not read: {}",
                    h.name,
                    crate::format::printable(h.error.as_deref().unwrap_or_default())
                );
            }
        }
        if free.len() < count {
            eprintln!(
                "{} free GPU{} of the {count} asked for",
                free.len(),
                if free.len() == 1 { "" } else { "s" }
            );
            return Ok(ExitCode::from(1));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if ask.json {
        let v: Vec<_> = hosts
            .iter()
            .map(|h| {
                let mut v = serde_json::to_value(h).unwrap_or_default();
                v["age_ms"] = serde_json::json!(h.age_ms(now));
                v["free_gpus"] =
                    serde_json::json!(h.gpus.iter().filter(|g| g.is_free(&rule)).count());
                v
            })
            .collect();
        out::json(&v)?;
    } else {
        out!("{}", host_table(&hosts, &rule, now));
    }
    Ok(ExitCode::SUCCESS)
}

/// A line per host: GPUs and model, mean utilisation, memory in use, power, hottest GPU, free
/// GPUs, jobs, how old its data is, and what is wrong.
pub fn host_table(hosts: &[Host], rule: &FreeRule, now: i64) -> String {
    let mut out = format!(
        "{:<16} {:>4}  {:<18} {:>5} {:>19} {:>7} {:>5} {:>4}  {:<14} {:>6}  {}\n",
        "HOST", "GPUS", "MODEL", "UTIL", "MEMORY", "POWER", "TEMP", "FREE", "WHO", "AGE", "NOTE"
    );
    for h in hosts {
        let s = h.summary(rule);
        out.push_str(&format!(
            "{:<16} {:>4}  {:<18} {:>5} {:>19} {:>7} {:>5} {:>4}  {:<14} {:>6}  {}\n",
            fit(&h.name, 16),
            s.gpus,
            fit(&s.model, 18),
            s.util.map_or("n/a".into(), |u| format!("{u:.0}%")),
            s.mem
                .map_or("n/a".into(), |(u, t)| format!("{}/{}", size(u), size(t))),
            s.power.map_or("n/a".into(), |p| format!("{p:.0} W")),
            s.temp.map_or("n/a".into(), |t| format!("{t}C")),
            s.free,
            fit(&s.who.join(","), 14),
            h.age_ms(now).map_or("never".into(), duration),
            crate::format::printable(&s.note(h.error.as_deref())),
        ));
    }
    out
}

fn free_table(free: &[(&Host, &crate::fleet::FleetGpu)]) -> String {
    let mut out = format!(
        "{:<16} {:>3}  {:<20} {:>10} {:>10}  {}\n",
        "HOST", "GPU", "MODEL", "MEM FREE", "MEM TOTAL", "UUID"
    );
    for (h, g) in free {
        out.push_str(&format!(
            "{:<16} {:>3}  {:<20} {:>10} {:>10}  {}\n",
            fit(&h.name, 16),
            g.sample.index,
            fit(g.sample.name.trim_start_matches("NVIDIA "), 20),
            g.mem_free().map_or("n/a".into(), size),
            g.sample.mem_total.map_or("n/a".into(), size),
            g.sample.uuid
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("40G").unwrap(), 40 << 30);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("lots").is_err());
        assert!(
            parse_size("4X")
                .unwrap_err()
                .to_string()
                .contains("unknown unit")
        );
    }
}
