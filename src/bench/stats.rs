//! Statistics over repetitions: median, min, max and the sample standard deviation.

pub use crate::domain::bench::{Stats, median};

/// How many repetitions go between one pair of events so the timed window is at least `window`
/// seconds, from the time of one (`one`): at least 1, at most `cap`; `cap` when one took no
/// measurable time.
pub fn batch_for(one: f64, window: f64, cap: usize) -> usize {
    if !one.is_finite() || one <= 0.0 {
        return cap;
    }
    ((window / one).ceil().min(cap as f64) as usize).clamp(1, cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_fill_a_millisecond_window() {
        // bf16 GEMM 1024 on an H200: 2·1024³ FLOP at ~990 TFLOP/s ≈ 2.2 µs, so 460 of them.
        assert_eq!(batch_for(2.17e-6, 1e-3, 4096), 461);
        // 8192: about 1.1 ms alone, one per window.
        assert_eq!(batch_for(1.1e-3, 1e-3, 4096), 1);
        // The first repetition timed alone reads long (the host's submission is in it): the
        // batch it suggests, timed again, gives the better estimate.
        let first = batch_for(20e-6, 1e-3, 4096);
        assert_eq!(first, 50);
        assert!(batch_for(50.0 * 2.2e-6 / 50.0, 1e-3, 4096) > first);
        // Nothing measurable, or nonsense: the cap; never zero.
        assert_eq!(batch_for(0.0, 1e-3, 4096), 4096);
        assert_eq!(batch_for(f64::NAN, 1e-3, 4096), 4096);
        assert_eq!(batch_for(1e-9, 1e-3, 64), 64);
        assert_eq!(batch_for(5.0, 1e-3, 64), 1);
    }

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
