//! Statistics over repetitions: median, min, max and the sample standard deviation.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Sample standard deviation (n - 1); 0 for a single value.
    pub stddev: f64,
    pub reps: usize,
}

impl Stats {
    /// None for no values. NaN values are left out.
    pub fn of(values: &[f64]) -> Option<Stats> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        let mean = v.iter().sum::<f64>() / n as f64;
        let stddev = if n > 1 {
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Stats {
            median,
            min: v[0],
            max: v[n - 1],
            stddev,
            reps: n,
        })
    }
}

/// The median of some values (None when empty).
pub fn median(values: &[f64]) -> Option<f64> {
    Stats::of(values).map(|s| s.median)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_even_and_spread() {
        let s = Stats::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.reps), (2.0, 1.0, 3.0, 3));
        assert!((s.stddev - 1.0).abs() < 1e-12);
        assert_eq!(Stats::of(&[4.0, 1.0, 3.0, 2.0]).unwrap().median, 2.5);
        assert_eq!(Stats::of(&[5.0]).unwrap().stddev, 0.0);
        assert!(Stats::of(&[]).is_none());
        assert_eq!(Stats::of(&[f64::NAN, 1.0]).unwrap().reps, 1);
        // 2, 4, 4, 4, 5, 5, 7, 9: sample stddev sqrt(32/7).
        let s = Stats::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert!((s.stddev - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
    }
}
