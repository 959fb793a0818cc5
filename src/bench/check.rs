//! The correctness check of a GEMM result: sampled entries of C against a float64 reference
//! computed from the very inputs the device saw, with a relative-error bound per precision.
//! Errors are relative to Σ|a·b| over the dot product, so a cancellation in the sum cannot make a
//! correct result look wrong. A NaN (the poison left in an entry nothing wrote) always fails.

pub use crate::domain::bench::Check;

use super::Precision;

/// How far a correct result may be from the float64 reference, relative to Σ|a·b|: the input
/// and output rounding of each precision with room for the order of summation.
pub fn bound(p: Precision) -> f64 {
    match p {
        Precision::Fp64 => 1e-12,
        Precision::Fp32 => 5e-5,
        // 10-bit mantissa inputs: 2^-11 per operand.
        Precision::Tf32 => 5e-3,
        // Exact fp16 inputs, fp32 accumulation, fp16 output: 2^-11 of |c|.
        Precision::Fp16 => 2e-3,
        // bf16 output: 2^-8 of |c|.
        Precision::Bf16 => 1e-2,
    }
}

/// A small deterministic generator (splitmix64): benchmarks need the same inputs every time.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// ±[0.1, 1): never zero, so a kernel that skips work cannot look right.
    pub fn input(&mut self) -> f32 {
        let v = 0.1 + 0.9 * self.unit();
        if self.next_u64() & 1 == 0 {
            v as f32
        } else {
            -v as f32
        }
    }
}

/// `n × n` random inputs, rounded to what `p` stores (exact in f32).
pub fn inputs(n: usize, p: Precision, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n * n)
        .map(|_| {
            let x = rng.input();
            match p {
                Precision::Fp16 => half::f16::from_f32(x).to_f32(),
                Precision::Bf16 => half::bf16::from_f32(x).to_f32(),
                _ => x,
            }
        })
        .collect()
}

/// `count` distinct-ish positions of an `n × n` matrix, always including the corners.
pub fn positions(n: usize, count: usize, seed: u64) -> Vec<(usize, usize)> {
    let mut rng = Rng::new(seed ^ 0x5EED);
    let mut v = vec![(0, 0), (n - 1, n - 1), (0, n - 1), (n - 1, 0)];
    while v.len() < count.max(4) {
        v.push((
            (rng.next_u64() % n as u64) as usize,
            (rng.next_u64() % n as u64) as usize,
        ));
    }
    v
}

/// Check `c(i, j)` (row-major C = A·B) at `at` against the float64 reference from row-major `a`
/// and `b`.
pub fn check_gemm(
    n: usize,
    a: &[f32],
    b: &[f32],
    c: impl Fn(usize, usize) -> f64,
    at: &[(usize, usize)],
    p: Precision,
) -> Check {
    let mut worst: f64 = 0.0;
    for &(i, j) in at {
        let (mut sum, mut scale) = (0.0f64, 0.0f64);
        for k in 0..n {
            let prod = f64::from(a[i * n + k]) * f64::from(b[k * n + j]);
            sum += prod;
            scale += prod.abs();
        }
        let got = c(i, j);
        let err = if got.is_nan() || scale == 0.0 {
            f64::INFINITY
        } else {
            (got - sum).abs() / scale
        };
        worst = worst.max(err);
    }
    let bound = bound(p);
    Check {
        max_rel_err: worst,
        bound,
        samples: at.len(),
        ok: worst <= bound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matmul(n: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
        let mut c = vec![0.0; n * n];
        for i in 0..n {
            for k in 0..n {
                for j in 0..n {
                    c[i * n + j] += f64::from(a[i * n + k]) * f64::from(b[k * n + j]);
                }
            }
        }
        c
    }

    #[test]
    fn a_right_result_passes_and_wrong_ones_fail() {
        let n = 48;
        let a = inputs(n, Precision::Fp32, 1);
        let b = inputs(n, Precision::Fp32, 2);
        let c = matmul(n, &a, &b);
        let at = positions(n, 64, 3);
        let ok = check_gemm(
            n,
            &a,
            &b,
            |i, j| c[i * n + j] as f32 as f64,
            &at,
            Precision::Fp32,
        );
        assert!(ok.ok, "{ok:?}");
        // A transposed operand: a classic layout bug.
        let bt: Vec<f32> = (0..n * n).map(|x| b[(x % n) * n + x / n]).collect();
        let wrong = matmul(n, &a, &bt);
        let bad = check_gemm(n, &a, &b, |i, j| wrong[i * n + j], &at, Precision::Fp32);
        assert!(!bad.ok, "{bad:?}");
        // The poison left where nothing was written.
        let bad = check_gemm(n, &a, &b, |_, _| f64::NAN, &at, Precision::Fp32);
        assert!(!bad.ok && bad.max_rel_err.is_infinite());
        // One entry off by 1%.
        let (i0, j0) = at[7];
        let bad = check_gemm(
            n,
            &a,
            &b,
            |i, j| {
                if (i, j) == (i0, j0) {
                    c[i * n + j] * 1.01
                } else {
                    c[i * n + j]
                }
            },
            &at,
            Precision::Fp32,
        );
        assert!(!bad.ok, "{bad:?}");
    }

    #[test]
    fn half_inputs_are_exact_and_never_zero() {
        let v = inputs(32, Precision::Bf16, 9);
        assert!(v.iter().all(|x| x.abs() >= 0.098 && x.abs() <= 1.0));
        assert!(v.iter().all(|x| half::bf16::from_f32(*x).to_f32() == *x));
        assert!(v.iter().any(|x| *x < 0.0) && v.iter().any(|x| *x > 0.0));
    }

    #[test]
    fn reduced_precision_output_rounding_stays_within_its_bound() {
        let n = 64;
        for p in [Precision::Fp16, Precision::Bf16] {
            let a = inputs(n, p, 4);
            let b = inputs(n, p, 5);
            let c = matmul(n, &a, &b);
            let round = |x: f64| match p {
                Precision::Fp16 => half::f16::from_f64(x).to_f64(),
                _ => half::bf16::from_f64(x).to_f64(),
            };
            let r = check_gemm(
                n,
                &a,
                &b,
                |i, j| round(c[i * n + j]),
                &positions(n, 64, 6),
                p,
            );
            assert!(r.ok, "{p:?}: {r:?}");
        }
    }
}
