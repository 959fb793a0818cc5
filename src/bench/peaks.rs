//! What a GPU could do at best: memory bandwidth and FP32 from its attributes, tensor-core
//! throughput from a table of known GPUs, PCIe from the link. Every result is shown as a share of
//! these where one is known.

pub use crate::domain::bench::{Peaks, TensorPeaks};

/// Peak HBM/GDDR bandwidth in bytes/s: 2 (double data rate) × memory clock × bus width / 8.
pub fn memory_bandwidth(mem_clock_hz: f64, bus_width_bits: f64) -> f64 {
    2.0 * mem_clock_hz * bus_width_bits / 8.0
}

/// FP32 cores per SM, by compute capability (CUDA C Programming Guide, "Arithmetic
/// Instructions" throughput table: 64 for 6.0, 7.x and 8.0; 128 for 6.1/6.2, 8.6, 8.7, 8.9, 9.0,
/// 10.x and 12.x).
pub fn fp32_cores_per_sm(major: i32, minor: i32) -> Option<u32> {
    match (major, minor) {
        (6, 0) | (7, _) | (8, 0) => Some(64),
        (6, _) | (8, _) | (9, 0) | (10, _) | (11, _) | (12, _) => Some(128),
        _ => None,
    }
}

/// Peak FP32 in FLOP/s: CUDA cores × max SM clock × 2 (a fused multiply-add is two operations).
pub fn fp32_flops(sms: u32, cores_per_sm: u32, sm_clock_hz: f64) -> f64 {
    f64::from(sms) * f64::from(cores_per_sm) * sm_clock_hz * 2.0
}

/// PCIe bandwidth per direction in bytes/s for a link: per-lane transfer rate after line coding
/// (PCI-SIG: gen1 2.5 GT/s and gen2 5 GT/s with 8b/10b; gen3 8, gen4 16, gen5 32, gen6 64 GT/s
/// with 128b/130b; gen6's FLIT mode is taken as 128b/130b too) × lanes.
pub fn pcie_bandwidth(link_gen: u32, width: u32) -> Option<f64> {
    let per_lane = match link_gen {
        1 => 2.5e9 * 8.0 / 10.0 / 8.0,
        2 => 5.0e9 * 8.0 / 10.0 / 8.0,
        3 => 8.0e9 * 128.0 / 130.0 / 8.0,
        4 => 16.0e9 * 128.0 / 130.0 / 8.0,
        5 => 32.0e9 * 128.0 / 130.0 / 8.0,
        6 => 64.0e9 * 128.0 / 130.0 / 8.0,
        _ => return None,
    };
    Some(per_lane * f64::from(width))
}

const T: f64 = 1e12;

/// Known GPUs: a name fragment (a whole word or words, matched in order, case-insensitive: the
/// longer names first) and its dense peaks (without structured sparsity, FP16/BF16 with FP32
/// accumulate), with the datasheet's memory bandwidth.
pub const KNOWN: &[(&str, TensorPeaks)] = &[
    (
        "H200 NVL",
        TensorPeaks {
            tf32: Some(417.5 * T),
            fp16: 835.5 * T,
            bf16: Some(835.5 * T),
            memory: Some(4.8e12),
            source: "NVIDIA H200 Tensor Core GPU datasheet (NVL; 835 TF32 and 1,671 BF16/FP16 TFLOPS are with sparsity, halved here)",
        },
    ),
    (
        "GH200 144G",
        TensorPeaks {
            tf32: Some(494.7 * T),
            fp16: 989.5 * T,
            bf16: Some(989.5 * T),
            memory: Some(4.9e12),
            source: "NVIDIA GH200 Grace Hopper Superchip datasheet (144 GB HBM3e; sparse figures halved)",
        },
    ),
    (
        "GH200",
        TensorPeaks {
            tf32: Some(494.7 * T),
            fp16: 989.5 * T,
            bf16: Some(989.5 * T),
            memory: Some(4.0e12),
            source: "NVIDIA GH200 Grace Hopper Superchip datasheet (96 GB HBM3; sparse figures halved)",
        },
    ),
    (
        "H200",
        TensorPeaks {
            tf32: Some(494.7 * T),
            fp16: 989.4 * T,
            bf16: Some(989.4 * T),
            memory: Some(4.8e12),
            source: "NVIDIA H200 Tensor Core GPU datasheet (SXM; 989 TF32 and 1,979 BF16/FP16 TFLOPS are with sparsity, halved here)",
        },
    ),
    (
        "H100 PCIe",
        TensorPeaks {
            tf32: Some(378.0 * T),
            fp16: 756.0 * T,
            bf16: Some(756.0 * T),
            memory: Some(2.0e12),
            source: "NVIDIA H100 Tensor Core GPU datasheet (PCIe; sparse figures halved)",
        },
    ),
    (
        "H100 NVL",
        TensorPeaks {
            tf32: Some(417.5 * T),
            fp16: 835.0 * T,
            bf16: Some(835.0 * T),
            memory: Some(3.9e12),
            source: "NVIDIA H100 Tensor Core GPU datasheet (NVL, per GPU; sparse figures halved)",
        },
    ),
    (
        "H100",
        TensorPeaks {
            tf32: Some(494.7 * T),
            fp16: 989.4 * T,
            bf16: Some(989.4 * T),
            memory: Some(3.35e12),
            source: "NVIDIA H100 Tensor Core GPU datasheet (SXM5; sparse figures halved)",
        },
    ),
    (
        "A100",
        TensorPeaks {
            tf32: Some(156.0 * T),
            fp16: 312.0 * T,
            bf16: Some(312.0 * T),
            memory: None,
            source: "NVIDIA A100 Tensor Core GPU datasheet (dense)",
        },
    ),
    (
        "L40S",
        TensorPeaks {
            tf32: Some(183.0 * T),
            fp16: 362.05 * T,
            bf16: Some(362.05 * T),
            memory: Some(864e9),
            source: "NVIDIA L40S datasheet (sparse figures halved)",
        },
    ),
    (
        "L4",
        TensorPeaks {
            tf32: Some(60.0 * T),
            fp16: 121.0 * T,
            bf16: Some(121.0 * T),
            memory: Some(300e9),
            source: "NVIDIA L4 datasheet (sparse figures halved)",
        },
    ),
    (
        "RTX 4090",
        TensorPeaks {
            tf32: Some(82.6 * T),
            fp16: 165.2 * T,
            bf16: Some(165.2 * T),
            memory: Some(1008e9),
            source: "NVIDIA Ada GPU architecture whitepaper, appendix A (FP16/BF16 with FP32 accumulate, dense)",
        },
    ),
    (
        "A10",
        TensorPeaks {
            tf32: Some(62.5 * T),
            fp16: 125.0 * T,
            bf16: Some(125.0 * T),
            memory: Some(600e9),
            source: "NVIDIA A10 datasheet (dense)",
        },
    ),
    (
        "V100",
        TensorPeaks {
            tf32: None,
            fp16: 125.0 * T,
            bf16: None,
            memory: Some(900e9),
            source: "NVIDIA V100 datasheet (SXM2, tensor FP16)",
        },
    ),
];

/// The tensor peaks of the GPU named `name`, if it is known.
pub fn tensor_peaks(name: &str) -> Option<(&'static str, TensorPeaks)> {
    let lower = name.to_ascii_lowercase();
    KNOWN
        .iter()
        .find(|(frag, _)| {
            let f = frag.to_ascii_lowercase();
            // "A10" must not match "A100", nor "H200" "GH200": the fragment is a whole word.
            lower.match_indices(&f).any(|(i, _)| {
                let after = lower[i + f.len()..].chars().next();
                let before = lower[..i].chars().next_back();
                !after.is_some_and(|c| c.is_ascii_alphanumeric())
                    && !before.is_some_and(|c| c.is_ascii_alphanumeric())
            })
        })
        .map(|(frag, p)| (*frag, *p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::bench::Precision;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        ((a - b) / b).abs() < rel
    }

    #[test]
    fn h200_memory_and_fp32_match_the_datasheet() {
        // H200 SXM: 6144-bit HBM3e at 3201 MHz; datasheet: 4.8 TB/s.
        let bw = memory_bandwidth(3201e6, 6144.0);
        assert!(close(bw, 4.8e12, 0.03), "{bw}");
        // 132 SMs of 128 FP32 cores at 1980 MHz; datasheet: 67 TFLOPS.
        let f = fp32_flops(132, fp32_cores_per_sm(9, 0).unwrap(), 1980e6);
        assert!(close(f, 67e12, 0.01), "{f}");
    }

    #[test]
    fn a100_and_rtx4090_fp32() {
        // A100 SXM4: 108 SMs × 64 × 1410 MHz × 2 = 19.5 TFLOPS; 5120-bit HBM2e at 1593 MHz ≈ 2.04 TB/s.
        assert!(close(
            fp32_flops(108, fp32_cores_per_sm(8, 0).unwrap(), 1410e6),
            19.5e12,
            0.01
        ));
        assert!(close(memory_bandwidth(1593e6, 5120.0), 2.039e12, 0.01));
        // RTX 4090: 128 SMs × 128 × 2520 MHz × 2 = 82.6 TFLOPS.
        assert!(close(
            fp32_flops(128, fp32_cores_per_sm(8, 9).unwrap(), 2520e6),
            82.6e12,
            0.01
        ));
    }

    #[test]
    fn known_gpus_are_found_by_name() {
        assert_eq!(tensor_peaks("NVIDIA H200").unwrap().0, "H200");
        assert_eq!(tensor_peaks("NVIDIA H100 80GB HBM3").unwrap().0, "H100");
        assert_eq!(tensor_peaks("NVIDIA H100 PCIe").unwrap().0, "H100 PCIe");
        assert_eq!(tensor_peaks("NVIDIA A100-SXM4-80GB").unwrap().0, "A100");
        assert_eq!(tensor_peaks("NVIDIA A10").unwrap().0, "A10");
        assert_eq!(tensor_peaks("NVIDIA L40S").unwrap().0, "L40S");
        assert_eq!(tensor_peaks("NVIDIA L4").unwrap().0, "L4");
        assert_eq!(
            tensor_peaks("NVIDIA GeForce RTX 4090").unwrap().0,
            "RTX 4090"
        );
        assert!(tensor_peaks("NVIDIA GeForce GTX 1080").is_none());
        let h200 = tensor_peaks("NVIDIA H200").unwrap().1;
        assert!(close(h200.bf16.unwrap(), 989.4e12, 1e-9));
        assert!(h200.source.contains("datasheet"));
    }

    #[test]
    fn pcie_links() {
        // Gen5 x16: 32 GT/s × 16 lanes × 128/130 / 8 ≈ 63.0 GB/s per direction.
        assert!(close(pcie_bandwidth(5, 16).unwrap(), 63.0e9, 0.01));
        assert!(close(pcie_bandwidth(4, 16).unwrap(), 31.5e9, 0.01));
        assert!(close(pcie_bandwidth(3, 16).unwrap(), 15.75e9, 0.01));
        assert!(pcie_bandwidth(9, 16).is_none());
    }

    #[test]
    fn h200_sxm_nvl_and_gh200_are_told_apart() {
        let sxm = tensor_peaks("NVIDIA H200").unwrap();
        assert_eq!((sxm.0, sxm.1.bf16), ("H200", Some(989.4 * T)));
        let nvl = tensor_peaks("NVIDIA H200 NVL").unwrap();
        assert_eq!((nvl.0, nvl.1.bf16), ("H200 NVL", Some(835.5 * T)));
        let gh = tensor_peaks("NVIDIA GH200 480GB").unwrap();
        assert_eq!((gh.0, gh.1.memory), ("GH200", Some(4.0e12)));
        let gh3e = tensor_peaks("NVIDIA GH200 144G HBM3e").unwrap();
        assert_eq!((gh3e.0, gh3e.1.memory), ("GH200 144G", Some(4.9e12)));
        // The SXM's datasheet memory bandwidth beside the one from its clocks.
        assert_eq!(sxm.1.memory, Some(4.8e12));
        let clocks = memory_bandwidth(3201e6, 6144.0);
        assert!(close(clocks, 4.92e12, 0.005), "{clocks}");
    }

    #[test]
    fn gemm_peaks_by_precision() {
        let p = Peaks {
            fp32: Some(67e12),
            tensor: tensor_peaks("NVIDIA H200").map(|t| t.1),
            ..Peaks::default()
        };
        assert_eq!(p.gemm(Precision::Fp32), Some(67e12));
        assert_eq!(p.gemm(Precision::Tf32), Some(494.7e12));
        assert_eq!(p.gemm(Precision::Fp64), None);
        assert_eq!(Peaks::default().gemm(Precision::Bf16), None);
    }
}
