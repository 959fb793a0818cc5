//! The runs table's metric columns: those picked with `c`, else defaults. The defaults are the
//! metrics that at least half the runs share, loss-like names first, then accuracy-like, then
//! the most shared, as many as fit; the first has a sparkline of each run's series. Each value is
//! coloured better or worse than the pinned baseline's.

use std::cmp::Ordering;

use super::runs::{RunsState, SeriesId, View};
use crate::domain::{RunRecord, SeriesKind};

/// Default metric columns at most (the screen shows those that fit).
pub const MAX_DEFAULT: usize = 6;

/// Where a metric's name puts it among the defaults: loss-like, accuracy-like, others, then
/// gantry's own (MFU, energy, GPU-hours, cost; the rest of them only when chosen).
fn rank(name: &str) -> u8 {
    use crate::domain::efficiency::keys;
    if name.starts_with("gantry/") {
        return if [keys::MFU, keys::ENERGY_WH, keys::GPU_HOURS, keys::COST].contains(&name) {
            3
        } else {
            u8::MAX
        };
    }
    let n = name.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| n.contains(w));
    if has(&[
        "loss",
        "perplexity",
        "ppl",
        "error",
        "err",
        "mse",
        "mae",
        "rmse",
        "nll",
    ]) {
        0
    } else if has(&[
        "acc",
        "f1",
        "bleu",
        "rouge",
        "auc",
        "precision",
        "recall",
        "map",
        "top1",
        "top5",
        "iou",
        "score",
    ]) {
        1
    } else {
        2
    }
}

/// The default metric columns, from how many runs have each metric (`counts`) out of `runs`.
pub fn defaults(counts: &[(String, i64)], runs: usize) -> Vec<String> {
    let mut shared: Vec<&(String, i64)> = counts
        .iter()
        .filter(|(k, _)| rank(k) != u8::MAX)
        .filter(|(_, n)| usize::try_from(*n).unwrap_or(0) * 2 >= runs.max(1))
        .collect();
    shared.sort_by(|a, b| {
        rank(&a.0)
            .cmp(&rank(&b.0))
            .then(b.1.cmp(&a.1))
            .then(a.0.cmp(&b.0))
    });
    shared
        .into_iter()
        .take(MAX_DEFAULT)
        .map(|(k, _)| k.clone())
        .collect()
}

/// How often the metric counts are read again while runs change, ms.
const COUNTS_EVERY_MS: i64 = 10_000;

impl RunsState {
    /// The metric columns shown: those picked with `c`, else the defaults.
    pub fn shown_metric_cols(&self) -> &[String] {
        if self.cols_chosen {
            &self.metric_cols
        } else {
            &self.default_metrics
        }
    }

    /// The column chooser changes a column: from then on the picks win, starting from what was
    /// shown.
    pub fn choose_columns(&mut self) {
        if !self.cols_chosen {
            self.metric_cols = self.default_metrics.clone();
            self.cols_chosen = true;
        }
    }

    /// Whether to read the metric counts now (for the defaults): the runs were listed or
    /// changed since the last read, and that read is old enough. Marked as out when so.
    pub fn wanted_counts(&mut self, now_ms: i64) -> bool {
        let due = self.counts_stale
            && self
                .counts_at
                .is_none_or(|at| now_ms - at >= COUNTS_EVERY_MS);
        if self.cols_chosen || self.counts_pending || !due {
            return false;
        }
        self.counts_pending = true;
        self.counts_at = Some(now_ms);
        self.counts_stale = false;
        true
    }

    pub fn set_metric_counts(&mut self, counts: Vec<(String, i64)>) {
        self.counts_pending = false;
        let runs = counts
            .iter()
            .map(|(_, n)| usize::try_from(*n).unwrap_or(0))
            .max()
            .unwrap_or(0)
            .max(self.records.len());
        self.default_metrics = defaults(&counts, runs);
    }

    /// The series the table's sparklines need: the first shown metric of the rows in view.
    pub(super) fn trend_series(&self) -> Vec<SeriesId> {
        let Some(key) = self.shown_metric_cols().first() else {
            return Vec::new();
        };
        if self.view != View::Table || self.table_rows == 0 {
            return Vec::new();
        }
        let first = self.cursor.saturating_sub(self.table_rows - 1);
        self.visible
            .iter()
            .skip(first)
            .take(self.table_rows)
            .filter(|&&i| self.records[i].metrics.contains_key(key))
            .map(|&i| SeriesId {
                run: self.records[i].run.id.clone(),
                kind: SeriesKind::Metric,
                key: key.clone(),
            })
            .collect()
    }

    /// A run's last value of `key` against the pinned baseline's: better (Greater), worse
    /// (Less), the same, or None where either has none or the run is the baseline.
    pub fn versus_pin(&self, rec: &RunRecord, key: &str) -> Option<Ordering> {
        let pin = self.record(self.pinned.as_deref()?)?;
        if pin.run.id == rec.run.id {
            return None;
        }
        let (mine, base) = (rec.metrics.get(key)?.last?, pin.metrics.get(key)?.last?);
        if !(mine.is_finite() && base.is_finite()) {
            return None;
        }
        let up = mine.partial_cmp(&base)?;
        Some(match self.direction(key) {
            crate::domain::Direction::Higher => up,
            crate::domain::Direction::Lower => up.reverse(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_shared_metrics_loss_first() {
        let counts = [
            ("val/acc".to_string(), 8),
            ("lr".into(), 10),
            ("train/loss".into(), 10),
            ("rare".into(), 2),
            ("val/loss".into(), 9),
        ];
        assert_eq!(
            defaults(&counts, 10),
            ["train/loss", "val/loss", "val/acc", "lr"]
        );
        assert!(defaults(&[], 0).is_empty());
    }
}
