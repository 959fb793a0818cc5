use std::collections::BTreeMap;

use serde::Serialize;

use super::Run;

/// A series without its points.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesSummary {
    pub key: String,
    pub n_points: i64,
    pub last_step: Option<i64>,
    pub last: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// The first steps of the minimum and the maximum, where the store knows them (series
    /// written before it kept them do not): a comparison's best value without the points.
    #[serde(skip)]
    pub min_step: Option<i64>,
    #[serde(skip)]
    pub max_step: Option<i64>,
}

impl SeriesSummary {
    /// The best value and its first step in `dir`, as `Series::best` finds it in the points;
    /// None where the summary does not know the step.
    pub fn best(&self, dir: super::Direction) -> Option<(f64, i64)> {
        match dir {
            super::Direction::Lower => Some((self.min?, self.min_step?)),
            super::Direction::Higher => Some((self.max?, self.max_step?)),
        }
    }
}

/// A run with what lists and filters need: params, tags and a summary of each metric.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub run: Run,
    pub params: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub metrics: BTreeMap<String, SeriesSummary>,
    /// Malformed metric lines, all sources together.
    pub malformed: i64,
    /// Model versions registered from this run: (model, version).
    pub models: Vec<(String, i64)>,
}

impl RunRecord {
    /// A record of the run alone, its other parts empty (to be filled in where needed).
    pub fn bare(run: Run) -> RunRecord {
        RunRecord {
            run,
            params: BTreeMap::new(),
            tags: BTreeMap::new(),
            metrics: BTreeMap::new(),
            malformed: 0,
            models: Vec::new(),
        }
    }

    /// The last value of each metric, for filters.
    pub fn last_values(&self) -> BTreeMap<String, f64> {
        self.metrics
            .iter()
            .filter_map(|(k, s)| Some((k.clone(), s.last?)))
            .collect()
    }
}

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Lower,
    Higher,
}

impl Direction {
    /// Guessed from the name: loss, error, perplexity, distances and times improve downwards;
    /// everything else (accuracy, f1, bleu, reward...) upwards.
    pub fn guess(metric: &str) -> Direction {
        let k = metric.to_ascii_lowercase();
        if let Some(own) = k.strip_prefix("gantry/") {
            // gantry's own: less energy, time and money is better; more TFLOP/s and MFU.
            return if matches!(own, "tflops" | "mfu" | "mfu_measured") {
                Direction::Higher
            } else {
                Direction::Lower
            };
        }
        let last = k.rsplit(['/', '.', ':']).next().unwrap_or(&k);
        const LOWER: [&str; 12] = [
            "loss",
            "error",
            "err",
            "ppl",
            "perplexity",
            "mse",
            "mae",
            "rmse",
            "wer",
            "cer",
            "latency",
            "time",
        ];
        if LOWER.iter().any(|w| last == *w || last.contains(w)) {
            Direction::Lower
        } else {
            Direction::Higher
        }
    }
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Direction::Lower => a < b,
            Direction::Higher => a > b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_from_names() {
        for k in [
            "loss",
            "val/loss",
            "train_loss",
            "error_rate",
            "val/ppl",
            "wer",
            "step_time",
        ] {
            assert_eq!(Direction::guess(k), Direction::Lower, "{k}");
        }
        for k in ["gantry/energy_wh", "gantry/cost", "gantry/gpu_hours"] {
            assert_eq!(Direction::guess(k), Direction::Lower, "{k}");
        }
        for k in [
            "acc",
            "val/accuracy",
            "f1",
            "bleu",
            "reward",
            "lr",
            "gantry/mfu",
        ] {
            assert_eq!(Direction::guess(k), Direction::Higher, "{k}");
        }
    }
}
