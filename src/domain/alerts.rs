//! Alerts while a run runs: the conditions, their thresholds and the watch that raises each alert
//! once and clears it when its condition ends. Pure: the supervisor feeds it an `Observation` at
//! every sample and stores and sends what it returns (docs/alerts.md).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Nan,
    Divergence,
    Stall,
    IdleGpu,
    ThroughputDrop,
    Throttle,
    GpuErrors,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Nan,
        Kind::Divergence,
        Kind::Stall,
        Kind::IdleGpu,
        Kind::ThroughputDrop,
        Kind::Throttle,
        Kind::GpuErrors,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Nan => "nan",
            Kind::Divergence => "divergence",
            Kind::Stall => "stall",
            Kind::IdleGpu => "idle_gpu",
            Kind::ThroughputDrop => "throughput_drop",
            Kind::Throttle => "throttle",
            Kind::GpuErrors => "gpu_errors",
        }
    }
    /// The run's tag for this alert.
    pub fn tag(self) -> String {
        format!("{TAG_PREFIX}{}", self.as_str())
    }
}

/// Alerts are kept as tags `gantry.alert.KIND` (JSON of `Alert`).
pub const TAG_PREFIX: &str = "gantry.alert.";

/// `[alerts]` in the config; per run, `--alert KEY=VALUE` (kept as tags `alert.KEY`) wins. A
/// threshold of `off` (or `false`) turns its alert off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// NaN or Inf in any metric.
    pub nan: bool,
    /// A loss-like metric (its name ends in `loss`) above this many times its best.
    pub divergence: Option<f64>,
    /// No new step for this many minutes while the command is alive.
    pub stall_minutes: Option<f64>,
    /// Holding GPU memory with the run's SM utilisation under `idle_util` % for this long.
    pub idle_minutes: Option<f64>,
    pub idle_util: f64,
    /// Step rate below (1 − this) × the run's own median rate, three samples in a row.
    pub throughput_drop: Option<f64>,
    /// Clocks held down by a power cap, thermal or hardware slowdown.
    pub throttle: bool,
    /// Uncorrected ECC errors grown during the run.
    pub gpu_errors: bool,
    /// A command run with the alert as JSON on its standard input.
    pub on_alert: Option<String>,
    /// A URL the alert is POSTed to as JSON; `webhook_format = "slack"` posts `{"text": …}`.
    pub webhook: Option<String>,
    pub webhook_format: Option<String>,
    /// Seconds a hook may take before it is stopped.
    pub hook_timeout_s: f64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            nan: true,
            divergence: Some(3.0),
            stall_minutes: Some(10.0),
            idle_minutes: Some(10.0),
            idle_util: 5.0,
            throughput_drop: Some(0.3),
            throttle: true,
            gpu_errors: true,
            on_alert: None,
            webhook: None,
            webhook_format: None,
            hook_timeout_s: 10.0,
        }
    }
}

impl Rules {
    /// Apply a run's overrides: `(KEY, VALUE)` pairs from `--alert` or `alert.KEY` tags.
    pub fn with(mut self, overrides: &[(String, String)]) -> Result<Rules, String> {
        for (k, v) in overrides {
            let off = matches!(v.as_str(), "off" | "false" | "no");
            let num = || {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| format!("alert {k}={v}: give a number of 0 or more, or off"))
            };
            let flag = || match v.as_str() {
                "on" | "true" | "yes" => Ok(true),
                "off" | "false" | "no" => Ok(false),
                _ => Err(format!("alert {k}={v}: give on or off")),
            };
            match k.as_str() {
                "nan" => self.nan = flag()?,
                "throttle" => self.throttle = flag()?,
                "gpu_errors" => self.gpu_errors = flag()?,
                "divergence" => self.divergence = if off { None } else { Some(num()?) },
                "stall_minutes" => self.stall_minutes = if off { None } else { Some(num()?) },
                "idle_minutes" => self.idle_minutes = if off { None } else { Some(num()?) },
                "idle_util" => self.idle_util = num()?,
                "throughput_drop" => self.throughput_drop = if off { None } else { Some(num()?) },
                "on_alert" => self.on_alert = (!off).then(|| v.clone()),
                "webhook" => self.webhook = (!off).then(|| v.clone()),
                "webhook_format" => self.webhook_format = Some(v.clone()),
                "hook_timeout_s" => self.hook_timeout_s = num()?,
                _ => {
                    return Err(format!(
                        "unknown alert setting `{k}`: nan, divergence, stall_minutes, idle_minutes, \
                         idle_util, throughput_drop, throttle, gpu_errors, on_alert, webhook, \
                         webhook_format, hook_timeout_s"
                    ));
                }
            }
        }
        Ok(self)
    }
}

/// One alert: raised at `step` (the run's latest), cleared when its condition ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: Kind,
    pub message: String,
    pub step: Option<i64>,
    pub raised_ms: i64,
    #[serde(default)]
    pub cleared_ms: Option<i64>,
}

impl Alert {
    pub fn active(&self) -> bool {
        self.cleared_ms.is_none()
    }
}

/// What the supervisor saw at one sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    pub now_ms: i64,
    /// The newest step and when it was logged (ms), if any.
    pub step: Option<(i64, i64)>,
    /// When the run started, ms (a run that never logs a step stalls from there).
    pub started_ms: i64,
    /// A metric that was NaN or Inf since the last sample: (key, step).
    pub nonfinite: Option<(String, i64)>,
    /// Loss-like metrics: (key, last, best).
    pub losses: Vec<(String, f64, f64)>,
    /// Steps a second over the last sample interval, where steps advanced or time passed.
    pub rate: Option<f64>,
    /// The run holds GPU memory, and its SM utilisation (percent of one GPU, summed).
    pub gpu_held: bool,
    pub sm_util: Option<f64>,
    /// Throttle reasons in words on the run's GPUs.
    pub throttled: Vec<String>,
    /// Uncorrected ECC errors grown since the run began, by GPU UUID.
    pub ecc_grown: Vec<(String, u64)>,
    /// Critical XID errors the driver reported on the run's GPUs since it began: (UUID, XID).
    pub xids: Vec<(String, u64)>,
}

/// The alerts of one run.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    pub alerts: BTreeMap<Kind, Alert>,
    idle_since: Option<i64>,
    rates: Vec<f64>,
    /// Consecutive samples below the drop threshold.
    slow_streak: usize,
}

impl Watch {
    /// The conditions now, under `rules`: the alerts newly raised and those newly cleared.
    pub fn observe(&mut self, rules: &Rules, o: &Observation) -> Vec<Alert> {
        let mut now: BTreeMap<Kind, String> = BTreeMap::new();
        if rules.nan
            && let Some((k, s)) = &o.nonfinite
        {
            now.insert(Kind::Nan, format!("{k} is not a number at step {s}"));
        }
        if let Some(f) = rules.divergence
            && let Some((k, last, best)) = o
                .losses
                .iter()
                .find(|(_, last, best)| *best > 0.0 && *last > best * f)
        {
            now.insert(
                Kind::Divergence,
                format!("{k} is {last:.4}, {:.1}× its best {best:.4}", last / best),
            );
        }
        if let Some(m) = rules.stall_minutes {
            let since = o.step.map_or(o.started_ms, |(_, t)| t);
            let idle = (o.now_ms - since) as f64 / 60_000.0;
            if idle >= m {
                now.insert(
                    Kind::Stall,
                    format!("no new step for {idle:.0} min (threshold {m} min)"),
                );
            }
        }
        match (
            rules.idle_minutes,
            o.gpu_held && o.sm_util.unwrap_or(0.0) < rules.idle_util,
        ) {
            (Some(m), true) => {
                let since = *self.idle_since.get_or_insert(o.now_ms);
                let idle = (o.now_ms - since) as f64 / 60_000.0;
                if idle >= m {
                    now.insert(
                        Kind::IdleGpu,
                        format!(
                            "holds GPU memory at {:.0}% SM for {idle:.0} min",
                            o.sm_util.unwrap_or(0.0)
                        ),
                    );
                }
            }
            _ => self.idle_since = None,
        }
        let active_drop = self
            .alerts
            .get(&Kind::ThroughputDrop)
            .is_some_and(Alert::active);
        if let Some(rate) = o.rate {
            let median = super::bench::median(&self.rates).unwrap_or(rate);
            let slow = rules
                .throughput_drop
                .is_some_and(|d| self.rates.len() >= 4 && rate < median * (1.0 - d));
            self.slow_streak = if slow { self.slow_streak + 1 } else { 0 };
            if self.slow_streak >= 3 {
                now.insert(
                    Kind::ThroughputDrop,
                    format!(
                        "{rate:.3} steps/s, {:.0}% below its median {median:.3}",
                        (1.0 - rate / median) * 100.0
                    ),
                );
            }
            self.rates.push(rate);
        } else if active_drop {
            // No step in this interval: the drop stands (a stall is its own alert).
            now.insert(
                Kind::ThroughputDrop,
                self.alerts[&Kind::ThroughputDrop].message.clone(),
            );
        }
        let held: Vec<&String> = o
            .throttled
            .iter()
            .filter(|t| {
                matches!(
                    t.as_str(),
                    "power cap" | "power brake" | "sw thermal" | "hw thermal" | "hw slowdown"
                )
            })
            .collect();
        if rules.throttle && !held.is_empty() {
            now.insert(
                Kind::Throttle,
                format!(
                    "GPU clocks held down: {}",
                    held.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if rules.gpu_errors && (!o.ecc_grown.is_empty() || !o.xids.is_empty()) {
            let mut parts: Vec<String> = o
                .ecc_grown
                .iter()
                .map(|(uuid, n)| format!("{n} new uncorrected ECC errors on {uuid}"))
                .collect();
            parts.extend(o.xids.iter().map(|(uuid, x)| format!("XID {x} on {uuid}")));
            now.insert(Kind::GpuErrors, parts.join("; "));
        }
        let mut changed = Vec::new();
        for kind in Kind::ALL {
            let active = self.alerts.get(&kind).is_some_and(Alert::active);
            match (now.remove(&kind), active) {
                (Some(message), false) => {
                    let a = Alert {
                        kind,
                        message,
                        step: o.step.map(|s| s.0),
                        raised_ms: o.now_ms,
                        cleared_ms: None,
                    };
                    self.alerts.insert(kind, a.clone());
                    changed.push(a);
                }
                (None, true) => {
                    if let Some(a) = self.alerts.get_mut(&kind) {
                        a.cleared_ms = Some(o.now_ms);
                        changed.push(a.clone());
                    }
                }
                _ => {}
            }
        }
        changed
    }
}

/// A run's alerts from its tags, newest first.
pub fn of_tags(tags: &BTreeMap<String, String>) -> Vec<Alert> {
    let mut v: Vec<Alert> = tags
        .iter()
        .filter(|(k, _)| k.starts_with(TAG_PREFIX))
        .filter_map(|(_, v)| serde_json::from_str(v).ok())
        .collect();
    v.sort_by_key(|a| std::cmp::Reverse(a.raised_ms));
    v
}

/// The JSON a hook receives.
pub fn hook_json(run_id: &str, run_name: &str, a: &Alert) -> serde_json::Value {
    serde_json::json!({
        "run_id": run_id,
        "run": run_name,
        "alert": a.kind.as_str(),
        "state": if a.active() { "raised" } else { "cleared" },
        "message": a.message,
        "step": a.step,
        "raised_ms": a.raised_ms,
        "cleared_ms": a.cleared_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(now_min: i64) -> Observation {
        Observation {
            now_ms: now_min * 60_000,
            step: Some((10, now_min * 60_000)),
            ..Default::default()
        }
    }

    #[test]
    fn each_alert_is_raised_once_and_cleared_when_it_ends() {
        let rules = Rules::default();
        let mut w = Watch::default();
        let mut o = obs(1);
        o.nonfinite = Some(("loss".into(), 10));
        let got = w.observe(&rules, &o);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].message, "loss is not a number at step 10");
        assert!(w.observe(&rules, &o).is_empty(), "raised once");
        let cleared = w.observe(&rules, &obs(2));
        assert_eq!(cleared[0].kind, Kind::Nan);
        assert_eq!(cleared[0].cleared_ms, Some(120_000));
    }

    #[test]
    fn divergence_stall_idle_drop_throttle_and_ecc() {
        let rules = Rules::default();
        let mut w = Watch::default();
        let mut o = obs(0);
        o.losses = vec![("train/loss".into(), 3.5, 1.0)];
        o.step = Some((100, 0));
        o.gpu_held = true;
        o.sm_util = Some(1.0);
        o.throttled = vec!["power cap".into(), "idle".into()];
        o.ecc_grown = vec![("GPU-1".into(), 2)];
        o.xids = vec![("GPU-1".into(), 79)];
        let kinds = |v: &[Alert]| v.iter().map(|a| a.kind).collect::<Vec<_>>();
        let got = w.observe(&rules, &o);
        assert_eq!(
            kinds(&got),
            [Kind::Divergence, Kind::Throttle, Kind::GpuErrors]
        );
        assert_eq!(
            got[2].message,
            "2 new uncorrected ECC errors on GPU-1; XID 79 on GPU-1"
        );
        // Ten minutes on: no new step, and the GPU idle all along.
        o.now_ms = 10 * 60_000;
        let got = w.observe(&rules, &o);
        assert_eq!(kinds(&got), [Kind::Stall, Kind::IdleGpu]);
        assert_eq!(got[0].message, "no new step for 10 min (threshold 10 min)");
        // Throughput: four steady intervals, then one 40% slower.
        let mut w = Watch::default();
        for r in [10.0, 10.2, 9.8, 10.0] {
            let mut o = obs(0);
            o.rate = Some(r);
            assert!(w.observe(&rules, &o).is_empty());
        }
        // One slow interval is noise; three in a row are a drop.
        let mut o = obs(0);
        o.rate = Some(6.0);
        assert!(w.observe(&rules, &o).is_empty());
        assert!(w.observe(&rules, &o).is_empty());
        let got = w.observe(&rules, &o);
        assert_eq!(got[0].kind, Kind::ThroughputDrop);
        assert!(
            got[0].message.contains("below its median"),
            "{}",
            got[0].message
        );
        o.rate = Some(10.0);
        assert_eq!(
            w.observe(&rules, &o)[0].cleared_ms,
            Some(0),
            "cleared when it recovers"
        );
    }

    #[test]
    fn overrides_turn_alerts_off_or_change_thresholds() {
        let r = Rules::default()
            .with(&[
                ("stall_minutes".into(), "2".into()),
                ("divergence".into(), "off".into()),
                ("throttle".into(), "off".into()),
            ])
            .unwrap();
        assert_eq!(r.stall_minutes, Some(2.0));
        assert_eq!(r.divergence, None);
        assert!(!r.throttle);
        let e = Rules::default()
            .with(&[("stal".into(), "2".into())])
            .unwrap_err();
        assert!(e.contains("unknown alert setting `stal`"), "{e}");
        assert!(
            Rules::default()
                .with(&[("idle_util".into(), "-1".into())])
                .is_err()
        );
    }
}
