//! Statistics over repetitions: median, min, max and the sample standard deviation.

pub use crate::domain::bench::{Stats, median};

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
