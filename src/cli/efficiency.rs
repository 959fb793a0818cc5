//! A run's efficiency as `gantry show` reports it: its declared work, TFLOP/s and MFU over the
//! run (median and last) against the datasheet and against its GPUs' own bench history (with
//! the bench results' age), its energy, GPU-hours and cost, and its hardware. A GPU without
//! bench history is named with the command that makes one.

use serde_json::{Value, json};

use crate::domain::bench::Precision;
use crate::domain::efficiency::{
    self as eff, HARDWARE_TAG, Hardware, RunEfficiency, Work, keys, measured_peak,
};
use crate::domain::{RunRecord, SeriesKind};
use crate::store::Store;

use super::common::json_num;

/// What `show` says of a run's efficiency.
pub struct Report {
    pub work: Option<Work>,
    pub precision: Result<Precision, String>,
    pub totals: RunEfficiency,
    pub hardware: Option<Hardware>,
    /// Medians over the run of TFLOP/s, MFU and measured MFU.
    pub medians: [Option<f64>; 3],
    /// Per GPU: (uuid, name, datasheet peak FLOP/s, measured peak, the newest result's age at
    /// the run's start, ms).
    pub references: Vec<Reference>,
}

pub struct Reference {
    pub uuid: String,
    pub name: String,
    pub datasheet: Option<f64>,
    pub measured: Option<eff::Measured>,
}

impl Report {
    pub async fn of(store: &Store, rec: &RunRecord) -> anyhow::Result<Report> {
        let get = |k: &str| {
            rec.metrics
                .get(k)
                .and_then(|s| s.last)
                .or_else(|| rec.params.get(k)?.trim().parse().ok())
        };
        let work = Work::declared(get, rec.metrics.contains_key(eff::PERF_FLOPS));
        let precision = eff::precision(rec.params.get(eff::PRECISION).map(String::as_str));
        let hardware = rec.tags.get(HARDWARE_TAG).and_then(|t| Hardware::parse(t));
        let mut medians = [None; 3];
        for (i, k) in [keys::TFLOPS, keys::MFU, keys::MFU_MEASURED]
            .into_iter()
            .enumerate()
        {
            if rec.metrics.contains_key(k) {
                let s = store
                    .load_series(&rec.run.id, SeriesKind::Metric, k)
                    .await?;
                medians[i] = crate::domain::bench::median(&s.values);
            }
        }
        let mut references = Vec::new();
        for g in hardware.iter().flat_map(|h| &h.gpus) {
            let p = precision.as_ref().ok().copied();
            let history = store.bench_history(Some(&g.uuid)).await?;
            references.push(Reference {
                uuid: g.uuid.clone(),
                name: g.name.clone(),
                datasheet: crate::bench::peaks::tensor_peaks(&g.name)
                    .and_then(|(_, t)| eff::datasheet_peak(&t, p?)),
                measured: p.and_then(|p| measured_peak(&history, p)),
            });
        }
        Ok(Report {
            work,
            precision,
            totals: RunEfficiency::of(rec),
            hardware,
            medians,
            references,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.work.is_none() && self.totals.is_empty() && self.hardware.is_none()
    }

    /// The JSON form (`efficiency` in `gantry show --json`, docs/cli-json.md).
    pub fn json(&self, started_ms: i64) -> Value {
        let refs: Vec<Value> = self
            .references
            .iter()
            .map(|r| {
                json!({
                    "uuid": r.uuid,
                    "name": r.name,
                    "datasheet_tflops": json_num(r.datasheet.map(|f| f / 1e12)),
                    "measured_tflops": json_num(r.measured.as_ref().map(|m| m.flops / 1e12)),
                    "measured_results": r.measured.as_ref().map(|m| m.results),
                    "measured_at_ms": r.measured.as_ref().map(|m| m.newest_ms),
                    "measured_age_at_start_ms": r.measured.as_ref().map(|m| started_ms - m.newest_ms),
                    "bench_hint": r.measured.is_none().then(|| format!(
                        "no GEMM results for {} in the bench history: run `gantry bench` on it", r.uuid
                    )),
                })
            })
            .collect();
        let t = &self.totals;
        json!({
            "work": self.work.as_ref().map(|w| json!({
                "declared": w,
                "flops_per_step": json_num(w.flops_per_step()),
            })),
            "precision": match &self.precision {
                Ok(p) => json!(p.as_str()),
                Err(e) => json!({"error": e}),
            },
            "tflops": {"median": json_num(self.medians[0]), "last": json_num(t.tflops)},
            "mfu": {"median": json_num(self.medians[1]), "last": json_num(t.mfu)},
            "mfu_measured": {"median": json_num(self.medians[2]), "last": json_num(t.mfu_measured)},
            "references": refs,
            "energy_wh": json_num(t.energy_wh),
            "gpu_hours": json_num(t.gpu_hours),
            "cpu_energy_wh": json_num(t.cpu_energy_wh),
            "cost": json_num(t.cost),
            "currency": t.currency,
            "hardware": self.hardware,
        })
    }

    /// The lines of `gantry show`: label and text.
    pub fn lines(&self, now_ms: i64) -> Vec<(&'static str, String)> {
        use crate::format::{efficiency as fe, four_digits};
        let mut out = Vec::new();
        if let Some(w) = &self.work {
            let p = match &self.precision {
                Ok(p) => p.as_str().to_string(),
                Err(e) => e.clone(),
            };
            out.push(("work", format!("{} · {p}", w.describe())));
        }
        let pct = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.1}%"));
        if self.medians.iter().any(Option::is_some) {
            out.push((
                "mfu",
                format!(
                    "{} of datasheet · {} of measured · {} TFLOP/s (medians over the run)",
                    pct(self.medians[1]),
                    pct(self.medians[2]),
                    self.medians[0].map_or("-".into(), four_digits)
                ),
            ));
        }
        for r in &self.references {
            let ds = r.datasheet.map_or("no datasheet peak".into(), |f| {
                format!("datasheet {} TFLOP/s", four_digits(f / 1e12))
            });
            let m = match &r.measured {
                Some(m) => format!(
                    "measured {} TFLOP/s (median of {}, newest {})",
                    four_digits(m.flops / 1e12),
                    m.results,
                    crate::format::ago(m.newest_ms, now_ms)
                ),
                None => "no bench history: `gantry bench` on it makes one".into(),
            };
            out.push(("peak", format!("{} · {ds} · {m}", r.name)));
        }
        let totals = fe::totals(&self.totals);
        if !totals.is_empty() {
            out.push(("energy", totals.join(" · ")));
        }
        if let Some(h) = self
            .hardware
            .as_ref()
            .and_then(|h| fe::hardware_line(h, now_ms))
        {
            out.push(("hardware", h));
        }
        out
    }
}
