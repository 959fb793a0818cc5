use serde::{Deserialize, Serialize};

/// A series kept column-wise: steps, wall times (ms since the epoch) and values side by side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub steps: Vec<i64>,
    pub times_ms: Vec<i64>,
    pub values: Vec<f64>,
}

impl Series {
    pub fn with_capacity(n: usize) -> Self {
        Series {
            steps: Vec::with_capacity(n),
            times_ms: Vec::with_capacity(n),
            values: Vec::with_capacity(n),
        }
    }
    pub fn push(&mut self, step: i64, time_ms: i64, value: f64) {
        self.steps.push(step);
        self.times_ms.push(time_ms);
        self.values.push(value);
    }
    pub fn len(&self) -> usize {
        self.values.len()
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The best value and the first step it was reached at; NaN never wins.
    pub fn best(&self, dir: super::Direction) -> Option<(f64, i64)> {
        let mut out: Option<(f64, i64)> = None;
        for (v, st) in self.values.iter().zip(&self.steps) {
            if v.is_nan() {
                continue;
            }
            if out.is_none_or(|(b, _)| dir.better(*v, b)) {
                out = Some((*v, *st));
            }
        }
        out
    }
}

/// What a series measures: a metric the run logged, or a system sample gantry took of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeriesKind {
    Metric,
    System,
}

impl SeriesKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SeriesKind::Metric => "metric",
            SeriesKind::System => "system",
        }
    }
}
