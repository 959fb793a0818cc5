//! The CUDA backend behind the `BenchBackend` seam: which specs a request asks of it, and each
//! benchmark and the sustained load dispatched to its timed routines.

use super::*;

impl BenchBackend for CudaBackend {
    fn device(&self) -> &DeviceInfo {
        &self.info
    }

    fn specs(&self, req: &Request) -> Vec<Spec> {
        let mut v = req.gemm_specs(&Precision::GPU, &[1024, 2048, 4096, 8192, 16384], "cublas");
        if req.wants(Kind::Membw) {
            for variant in ["copy-engine", "sm-copy", "sm-triad"] {
                v.push(Spec::other(Kind::Membw, 1 << 30, variant));
            }
        }
        for kind in [Kind::H2d, Kind::D2h] {
            if req.wants(kind) {
                for variant in ["pinned", "pageable"] {
                    for bytes in [64u64 << 20, 256 << 20, 1 << 30] {
                        v.push(Spec::other(kind, bytes, variant));
                    }
                }
            }
        }
        if req.wants(Kind::Launch) {
            v.push(Spec::other(Kind::Launch, 1000, "events"));
            v.push(Spec::other(Kind::Launch, 100, "wall"));
        }
        v
    }

    fn measure(
        &mut self,
        spec: &Spec,
        reps: usize,
        tick: &mut dyn FnMut(usize),
        cancel: &AtomicBool,
    ) -> Result<Measured, String> {
        let _ = &self.ctx;
        match spec.kind {
            Kind::Gemm => {
                let p = spec.precision.ok_or("a GEMM needs a precision")?;
                self.gemm(spec.size as usize, p, Loop::Reps { reps, tick }, cancel)
            }
            Kind::Membw => self.membw(spec, reps, tick, cancel),
            Kind::H2d | Kind::D2h => self.transfer(spec, reps, tick, cancel),
            Kind::Launch => self.launch(spec, reps, tick, cancel),
        }
    }

    fn sustain(
        &mut self,
        spec: &Spec,
        secs: f64,
        every: f64,
        on: &mut dyn FnMut(Sustained),
        cancel: &AtomicBool,
    ) -> Result<Measured, String> {
        let p = spec.precision.ok_or("a sustained load is a GEMM")?;
        if spec.kind != Kind::Gemm {
            return Err("a sustained load is a GEMM".into());
        }
        self.gemm(spec.size as usize, p, Loop::For { secs, every, on }, cancel)
    }
}
