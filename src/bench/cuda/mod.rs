//! The CUDA backend (cudarc, libraries loaded at run time): cuBLAS GEMM in fp32, tf32, fp16 and
//! bf16 (fp32 accumulate), device memory bandwidth by the copy engine and by NVRTC-compiled SM
//! kernels (copy and triad, 16-byte loads, the grid sized to the SMs), host↔device copies from
//! pinned (flags 0, not write-combined) and pageable memory, and kernel launch latency. Timing is
//! CUDA events with timing enabled, after a warm-up; allocation stays outside the timed region.
//!
//! cudarc panics when a library it needs is absent, so `open` asks `is_culib_present()` for
//! libcuda and libcublas first and answers "CUDA not available: …" instead; without libnvrtc
//! only the benchmarks that need kernels fail, each saying why.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use cudarc::cublas::{CudaBlas, Gemm, GemmConfig};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DevicePtrMut, DeviceRepr,
    LaunchConfig, PushKernelArg, ValidAsZeroBits,
};

use super::check::{self, Check};
use super::peaks::{self, Peaks};
use super::{BenchBackend, DeviceInfo, Kind, Loop, Measured, Precision, Request, Spec, Sustained};

/// Untimed repetitions before timing.
pub mod choose;
pub mod compile;
mod device;
mod kernels;
pub mod libs;
mod seam;

use device::*;
pub use device::{list_devices, missing_library};

const WARMUP: usize = 3;
/// Threads per block of the bandwidth kernels.
const BLOCK: u32 = 256;

pub struct CudaBackend {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    /// The NVRTC kernels, or why there are none: only the benchmarks that need them fail.
    kernels: Result<Kernels, String>,
    sms: u32,
    info: DeviceInfo,
}

/// The kernels of the SM bandwidth and launch benchmarks.
struct Kernels {
    copy4: CudaFunction,
    triad4: CudaFunction,
    empty: CudaFunction,
}

/// The most repetitions between one pair of events.
const MAX_BATCH: usize = 4096;
/// The shortest timed window, in seconds: the host's submission of the first repetition then
/// lands outside the GPU's work instead of inside it.
const WINDOW_S: f64 = 1e-3;

fn err(what: &str) -> impl Fn(cudarc::driver::DriverError) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

impl CudaBackend {
    /// Open device `ordinal` (CUDA's numbering, which CUDA_VISIBLE_DEVICES changes), or say why
    /// CUDA cannot be used.
    pub fn open(ordinal: usize) -> Result<CudaBackend, String> {
        if let Some(why) = missing_library() {
            return Err(why);
        }
        use cudarc::driver::sys::CUdevice_attribute as A;
        let count =
            CudaContext::device_count().map_err(|e| format!("CUDA not available: {e:?}"))?;
        if count <= 0 {
            return Err("CUDA not available: the driver sees no GPU".into());
        }
        if ordinal >= count as usize {
            return Err(format!(
                "there is no GPU {ordinal}: CUDA sees {count} (0 to {})",
                count - 1
            ));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| format!("CUDA not available: {e:?}"))?;
        // One stream: no cross-stream event tracking around every call.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.default_stream();
        let blas = CudaBlas::new(stream.clone()).map_err(|e| format!("cuBLAS: {e:?}"))?;
        let (major, minor) = ctx.compute_capability().unwrap_or((0, 0));
        let mut compiled = String::new();
        let kernels = match nvrtc_missing() {
            Some(why) => Err(why),
            None => compile::compile(major, minor),
        }
        .and_then(|(image, what)| {
            compiled = what;
            let module = ctx.load_module(image).map_err(|e| {
                use cudarc::driver::sys::cudaError_enum::CUDA_ERROR_UNSUPPORTED_PTX_VERSION;
                if e.0 == CUDA_ERROR_UNSUPPORTED_PTX_VERSION {
                    format!(
                        "loading the kernels: NVRTC {} wrote PTX newer than this driver loads; put \
                         the NVRTC of a CUDA no newer than the driver first on LD_LIBRARY_PATH, \
                         or update the driver",
                        compile::nvrtc_version()
                    )
                } else {
                    format!("loading the kernels ({compiled}): {e:?}")
                }
            })?;
            let f = |n: &str| module.load_function(n).map_err(err("loading a kernel"));
            Ok(Kernels {
                copy4: f("copy4")?,
                triad4: f("triad4")?,
                empty: f("empty")?,
            })
        });
        if let Err(e) = &kernels {
            tracing::warn!("CUDA kernels unavailable: {e}");
        }

        let name = ctx.name().map_err(err("the device name"))?;
        let uuid = ctx
            .uuid()
            .map(|u| uuid_text(&u.bytes, &name))
            .unwrap_or_default();
        let attr = |a: A| ctx.attribute(a).ok().filter(|v| *v > 0);
        let sms = attr(A::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT).unwrap_or(1) as u32;
        let NvmlFacts {
            sm_mhz,
            mem_mhz,
            bus_bits: bus,
            link_gen,
            link_width: width,
            driver,
            mig_memory_share,
        } = nvml_facts(&uuid);
        let sm_hz = sm_mhz
            .map(|m| f64::from(m) * 1e6)
            .or_else(|| attr(A::CU_DEVICE_ATTRIBUTE_CLOCK_RATE).map(|k| f64::from(k) * 1e3));
        let mem_hz = mem_mhz
            .map(|m| f64::from(m) * 1e6)
            .or_else(|| attr(A::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE).map(|k| f64::from(k) * 1e3));
        let bus = bus
            .map(f64::from)
            .or_else(|| attr(A::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH).map(f64::from));
        let tensor = peaks::tensor_peaks(&name).map(|t| t.1);
        let from_clocks = mem_hz.zip(bus).map(|(h, b)| peaks::memory_bandwidth(h, b));
        let (memory, memory_source) = match tensor.and_then(|t| t.memory) {
            Some(d) => (Some(d), "datasheet"),
            None => (
                from_clocks,
                if from_clocks.is_some() { "clocks" } else { "" },
            ),
        };
        let peaks = Peaks {
            memory,
            memory_from_clocks: from_clocks,
            memory_source,
            fp32: peaks::fp32_cores_per_sm(major, minor)
                .zip(sm_hz)
                .map(|(c, h)| peaks::fp32_flops(sms, c, h)),
            tensor,
            pcie: link_gen
                .zip(width)
                .and_then(|(g, w)| peaks::pcie_bandwidth(g, w)),
        };
        // A MIG slice: the whole GPU's table peaks cut to its share.
        let peaks = match (is_mig(&name), full_gpu_sms(&name)) {
            (true, Some(full)) => {
                slice_peaks(peaks, f64::from(sms) / f64::from(full), mig_memory_share)
            }
            (true, None) => Peaks {
                tensor: None,
                memory: None,
                memory_from_clocks: None,
                memory_source: "",
                ..peaks
            },
            _ => peaks,
        };
        let mut version = 0;
        let cuda = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut version) }
            .result()
            .ok()
            .map(|_| format!("{}.{}", version / 1000, (version % 1000) / 10));
        let libraries = library_lines(
            &cuda,
            match &kernels {
                Ok(_) => compiled.clone(),
                Err(e) => format!("none: {e}"),
            },
        );
        let info = DeviceInfo {
            backend: "cuda".into(),
            name,
            uuid,
            driver,
            cuda,
            libraries,
            peaks,
        };
        Ok(CudaBackend {
            ctx,
            stream,
            blas,
            kernels,
            sms,
            info,
        })
    }

    /// A launch of `f` that fills every SM: as many blocks as the SMs hold at once.
    fn fill_sms(&self, f: &CudaFunction) -> LaunchConfig {
        let per_sm = f
            .occupancy_max_active_blocks_per_multiprocessor(BLOCK, 0, None)
            .unwrap_or(8)
            .max(1);
        LaunchConfig {
            grid_dim: (self.sms * per_sm, 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        }
    }

    /// Untimed repetitions, `before` and `body` each, until the GPU has done them.
    fn warm_up(
        &self,
        before: &mut impl FnMut() -> Result<(), String>,
        body: &mut impl FnMut() -> Result<(), String>,
    ) -> Result<(), String> {
        for _ in 0..WARMUP {
            before()?;
            body()?;
        }
        self.stream.synchronize().map_err(err("warm-up"))
    }

    /// Seconds of GPU time between two events recorded around what `work` queues.
    fn between_events(&self, work: impl FnOnce() -> Result<(), String>) -> Result<f64, String> {
        use cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT;
        let start = self
            .stream
            .record_event(Some(CU_EVENT_DEFAULT))
            .map_err(err("an event"))?;
        work()?;
        let end = self
            .stream
            .record_event(Some(CU_EVENT_DEFAULT))
            .map_err(err("an event"))?;
        let ms = start.elapsed_ms(&end).map_err(err("event timing"))?;
        Ok(f64::from(ms) / 1e3)
    }

    /// Time `reps` windows of `body`, each a batch of back-to-back repetitions between one pair
    /// of events (enough for about `WINDOW_S` of GPU time), as seconds per repetition; `before`
    /// runs untimed before each window, so the last repetition's output is what gets checked.
    fn timed(
        &self,
        reps: usize,
        tick: &mut dyn FnMut(usize),
        cancel: &AtomicBool,
        mut before: impl FnMut() -> Result<(), String>,
        mut body: impl FnMut() -> Result<(), String>,
    ) -> Result<Vec<f64>, String> {
        self.warm_up(&mut before, &mut body)?;
        let mut batched = |k: usize, before: &mut dyn FnMut() -> Result<(), String>| {
            before()?;
            self.between_events(|| (0..k).try_for_each(|_| body()))
        };
        // One alone includes the host's submission: time the batch it suggests, once more.
        let mut k = 1;
        for _ in 0..3 {
            let s = batched(k, &mut before)?;
            let next = super::stats::batch_for(s / k as f64, WINDOW_S, MAX_BATCH);
            if next <= k {
                break;
            }
            k = next;
        }
        tracing::debug!("{k} repetitions per timed window");
        let mut out = Vec::with_capacity(reps);
        for i in 0..reps {
            if cancel.load(Ordering::Relaxed) {
                break;
            }
            out.push(batched(k, &mut before)? / k as f64);
            tick(i + 1);
        }
        Ok(out)
    }

    /// `body` back to back for `secs`, in windows of about `every` seconds: batches of
    /// repetitions between two events, the batch doubling until it is an eighth of a window, so
    /// the GPU is fed and the host waits rarely. Seconds per repetition of each window, by the
    /// events. A last, untimed repetition after `before` leaves the product that is checked.
    fn sustained(
        &self,
        secs: f64,
        every: f64,
        on: &mut dyn FnMut(Sustained),
        cancel: &AtomicBool,
        mut before: impl FnMut() -> Result<(), String>,
        mut body: impl FnMut() -> Result<(), String>,
    ) -> Result<Vec<f64>, String> {
        self.warm_up(&mut before, &mut body)?;
        on(Sustained::Started);
        let start = Instant::now();
        let mut out = Vec::new();
        let mut batch = 1usize;
        while start.elapsed().as_secs_f64() < secs && !cancel.load(Ordering::Relaxed) {
            let window = Instant::now();
            let (mut gpu_seconds, mut reps) = (0.0, 0usize);
            while window.elapsed().as_secs_f64() < every && !cancel.load(Ordering::Relaxed) {
                let s = self.between_events(|| {
                    for _ in 0..batch {
                        body()?;
                    }
                    Ok(())
                })?;
                gpu_seconds += s;
                reps += batch;
                if s < every / 8.0 {
                    batch *= 2;
                }
            }
            if reps == 0 {
                break;
            }
            let spr = gpu_seconds / reps as f64;
            out.push(spr);
            on(Sustained::Window {
                t: start.elapsed().as_secs_f64(),
                seconds_per_rep: spr,
            });
        }
        before()?;
        body()?;
        Ok(out)
    }

    fn gemm(
        &mut self,
        n: usize,
        p: Precision,
        lp: Loop,
        cancel: &AtomicBool,
    ) -> Result<Measured, String> {
        let a = check::inputs(n, p, 11);
        let b = check::inputs(n, p, 12);
        let (seconds, check) = match p {
            Precision::Fp32 | Precision::Tf32 => {
                self.gemm_typed::<f32>(n, p, &a, &b, |x| x, f64::from, lp, cancel)?
            }
            Precision::Fp16 => self.gemm_typed::<half::f16>(
                n,
                p,
                &a,
                &b,
                half::f16::from_f32,
                |x| x.to_f64(),
                lp,
                cancel,
            )?,
            Precision::Bf16 => self.gemm_typed::<half::bf16>(
                n,
                p,
                &a,
                &b,
                half::bf16::from_f32,
                |x| x.to_f64(),
                lp,
                cancel,
            )?,
            Precision::Fp64 => return Err("the CUDA backend runs no fp64 GEMM".into()),
        };
        Ok(Measured {
            seconds,
            work: 2.0 * (n as f64).powi(3),
            check: Some(check),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn gemm_typed<T>(
        &mut self,
        n: usize,
        p: Precision,
        a: &[f32],
        b: &[f32],
        to: fn(f32) -> T,
        back: fn(T) -> f64,
        lp: Loop,
        cancel: &AtomicBool,
    ) -> Result<(Vec<f64>, Check), String>
    where
        T: DeviceRepr + ValidAsZeroBits + Copy + Default + Unpin,
        CudaBlas: Gemm<T>,
    {
        let ha: Vec<T> = a.iter().map(|x| to(*x)).collect();
        let hb: Vec<T> = b.iter().map(|x| to(*x)).collect();
        let da: CudaSlice<T> = self.stream.clone_htod(&ha).map_err(err("uploading A"))?;
        let db: CudaSlice<T> = self.stream.clone_htod(&hb).map_err(err("uploading B"))?;
        let mut dc: CudaSlice<T> = self
            .stream
            .alloc_zeros(n * n)
            .map_err(err("allocating C"))?;
        let ni = n as i32;
        let one = to(1.0);
        let zero = to(0.0);
        // Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: pass B first.
        let cfg = GemmConfig {
            transa: cudarc::cublas::sys::cublasOperation_t::CUBLAS_OP_N,
            transb: cudarc::cublas::sys::cublasOperation_t::CUBLAS_OP_N,
            m: ni,
            n: ni,
            k: ni,
            alpha: one,
            lda: ni,
            ldb: ni,
            beta: zero,
            ldc: ni,
        };
        let stream = self.stream.clone();
        let bytes = n * n * std::mem::size_of::<T>();
        let blas = &self.blas;
        let poison = |dc: &mut CudaSlice<T>| -> Result<(), String> {
            let (ptr, _sync) = dc.device_ptr_mut(&stream);
            // 0xFF bytes are NaN in f32, f16 and bf16: an entry nothing writes fails the check.
            unsafe { cudarc::driver::result::memset_d8_async(ptr, 0xFF, bytes, stream.cu_stream()) }
                .map_err(err("poisoning C"))
        };
        let dc_cell = std::cell::RefCell::new(&mut dc);
        let seconds = {
            let run = || -> Result<(), String> {
                let mut c = dc_cell.borrow_mut();
                if p == Precision::Tf32 {
                    let (pa, _s1) = db.device_ptr(&stream);
                    let (pb, _s2) = da.device_ptr(&stream);
                    let (pc, _s3) = c.device_ptr_mut(&stream);
                    let (alpha, beta) = (1.0f32, 0.0f32);
                    use cudarc::cublas::sys::{
                        cublasComputeType_t, cublasGemmAlgo_t, cudaDataType_t,
                    };
                    unsafe {
                        cudarc::cublas::result::gemm_ex(
                            *blas.handle(),
                            cfg.transa,
                            cfg.transb,
                            ni,
                            ni,
                            ni,
                            (&alpha) as *const f32 as *const _,
                            pa as *const _,
                            cudaDataType_t::CUDA_R_32F,
                            ni,
                            pb as *const _,
                            cudaDataType_t::CUDA_R_32F,
                            ni,
                            (&beta) as *const f32 as *const _,
                            pc as *mut _,
                            cudaDataType_t::CUDA_R_32F,
                            ni,
                            cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32,
                            cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                        )
                    }
                    .map_err(|e| format!("cuBLAS GemmEx (tf32): {e:?}"))
                } else {
                    unsafe { blas.gemm(cfg, &db, &da, &mut **c) }
                        .map_err(|e| format!("cuBLAS GEMM: {e:?}"))
                }
            };
            let poisoned = || poison(&mut dc_cell.borrow_mut());
            match lp {
                Loop::Reps { reps, tick } => self.timed(reps, tick, cancel, poisoned, run)?,
                Loop::For { secs, every, on } => {
                    self.sustained(secs, every, on, cancel, poisoned, run)?
                }
            }
        };
        let host: Vec<T> = self.stream.clone_dtoh(&dc).map_err(err("reading C"))?;
        let at = check::positions(n, 64, 13);
        let check = check::check_gemm(n, a, b, |i, j| back(host[i * n + j]), &at, p);
        Ok((seconds, check))
    }

    fn membw(
        &mut self,
        spec: &Spec,
        reps: usize,
        tick: &mut dyn FnMut(usize),
        cancel: &AtomicBool,
    ) -> Result<Measured, String> {
        let bytes = spec.size as usize;
        let floats = bytes / 4;
        let n4 = (floats / 4) as u64;
        let stream = self.stream.clone();
        let alloc = |v: f32| {
            stream
                .clone_htod(&vec![v; floats])
                .map_err(err("allocating"))
        };
        let (src, src2): (CudaSlice<f32>, CudaSlice<f32>) = (alloc(1.0)?, alloc(2.0)?);
        let mut dst: CudaSlice<f32> = stream.alloc_zeros(floats).map_err(err("allocating"))?;
        let none = || Ok(());
        let (seconds, work) = match spec.variant.as_str() {
            "copy-engine" => {
                let copy = || stream.memcpy_dtod(&src, &mut dst).map_err(err("memcpy"));
                (self.timed(reps, tick, cancel, none, copy)?, 2.0)
            }
            "sm-copy" => {
                let k = self.kernels.as_ref().map_err(Clone::clone)?;
                let (f, cfg) = (&k.copy4, self.fill_sms(&k.copy4));
                let copy = || {
                    let mut l = stream.launch_builder(f);
                    l.arg(&src).arg(&mut dst).arg(&n4);
                    unsafe { l.launch(cfg) }
                        .map(|_| ())
                        .map_err(err("copy kernel"))
                };
                (self.timed(reps, tick, cancel, none, copy)?, 2.0)
            }
            "sm-triad" => {
                let k = self.kernels.as_ref().map_err(Clone::clone)?;
                let (f, cfg) = (&k.triad4, self.fill_sms(&k.triad4));
                let scale = 3.0f32;
                let triad = || {
                    let mut l = stream.launch_builder(f);
                    l.arg(&src).arg(&src2).arg(&mut dst).arg(&scale).arg(&n4);
                    unsafe { l.launch(cfg) }
                        .map(|_| ())
                        .map_err(err("triad kernel"))
                };
                (self.timed(reps, tick, cancel, none, triad)?, 3.0)
            }
            other => return Err(format!("no memory benchmark `{other}`")),
        };
        // The copies did their work: spot-check the destination (1, or 1 + 3·2 for the triad).
        let host: Vec<f32> = stream.clone_dtoh(&dst).map_err(err("reading back"))?;
        let want = if spec.variant == "sm-triad" { 7.0 } else { 1.0 };
        if host.first() != Some(&want) || host.last() != Some(&want) {
            return Err(format!(
                "{}: the destination does not hold what was copied",
                spec.label()
            ));
        }
        // Bytes read plus written: two arrays for a copy, three for the triad.
        Ok(Measured {
            seconds,
            work: work * bytes as f64,
            check: None,
        })
    }

    fn transfer(
        &mut self,
        spec: &Spec,
        reps: usize,
        tick: &mut dyn FnMut(usize),
        cancel: &AtomicBool,
    ) -> Result<Measured, String> {
        let bytes = spec.size as usize;
        let stream = self.stream.clone();
        let mut dev: CudaSlice<u8> = stream.alloc_zeros(bytes).map_err(err("allocating"))?;
        let seconds = match spec.variant.as_str() {
            "pinned" => {
                // Flags 0: page-locked, cached, not write-combined.
                let mut host = unsafe { self.ctx.alloc_pinned_with_flags::<u8>(bytes, 0) }
                    .map_err(err("pinned allocation"))?;
                host.as_mut_slice().map_err(err("pinned memory"))?.fill(1);
                let cell = std::cell::RefCell::new((&mut host, &mut dev));
                self.timed(
                    reps,
                    tick,
                    cancel,
                    || Ok(()),
                    || {
                        let mut g = cell.borrow_mut();
                        let (h, d) = &mut *g;
                        match spec.kind {
                            Kind::H2d => stream.memcpy_htod(&**h, &mut **d),
                            _ => stream.memcpy_dtoh(&**d, &mut **h),
                        }
                        .map_err(err("copy"))
                    },
                )?
            }
            "pageable" => {
                let mut host = vec![1u8; bytes];
                let cell = std::cell::RefCell::new((&mut host, &mut dev));
                self.timed(
                    reps,
                    tick,
                    cancel,
                    || Ok(()),
                    || {
                        let mut g = cell.borrow_mut();
                        let (h, d) = &mut *g;
                        match spec.kind {
                            Kind::H2d => stream.memcpy_htod(&***h, &mut **d),
                            _ => stream.memcpy_dtoh(&**d, &mut ***h),
                        }
                        .map_err(err("copy"))
                    },
                )?
            }
            other => return Err(format!("no host memory kind `{other}`")),
        };
        Ok(Measured {
            seconds,
            work: bytes as f64,
            check: None,
        })
    }

    fn launch(
        &mut self,
        spec: &Spec,
        reps: usize,
        tick: &mut dyn FnMut(usize),
        cancel: &AtomicBool,
    ) -> Result<Measured, String> {
        let n = spec.size.max(1) as usize;
        let cfg = LaunchConfig {
            grid_dim: (1, 1, 1),
            block_dim: (1, 1, 1),
            shared_mem_bytes: 0,
        };
        let stream = self.stream.clone();
        let f = &self.kernels.as_ref().map_err(Clone::clone)?.empty;
        let launch = || -> Result<(), String> {
            let mut l = stream.launch_builder(f);
            unsafe { l.launch(cfg) }
                .map(|_| ())
                .map_err(err("empty kernel"))
        };
        let seconds = match spec.variant.as_str() {
            // GPU time between events around a burst of launches.
            "events" => self.timed(
                reps,
                tick,
                cancel,
                || Ok(()),
                || {
                    for _ in 0..n {
                        launch()?;
                    }
                    Ok(())
                },
            )?,
            // Host time of launch + synchronize, one at a time.
            "wall" => {
                for _ in 0..WARMUP {
                    launch()?;
                    stream.synchronize().map_err(err("synchronize"))?;
                }
                let mut out = Vec::new();
                for i in 0..reps {
                    if cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    let t = Instant::now();
                    for _ in 0..n {
                        launch()?;
                        stream.synchronize().map_err(err("synchronize"))?;
                    }
                    out.push(t.elapsed().as_secs_f64());
                    tick(i + 1);
                }
                out
            }
            other => return Err(format!("no launch timing `{other}`")),
        };
        Ok(Measured {
            seconds,
            work: n as f64,
            check: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_read_as_nvml_writes_them() {
        let mut b = [0 as std::ffi::c_char; 16];
        for (i, x) in b.iter_mut().enumerate() {
            *x = (i * 17) as u8 as std::ffi::c_char;
        }
        assert_eq!(
            uuid_text(&b, "NVIDIA H200"),
            "GPU-00112233-4455-6677-8899-aabbccddeeff"
        );
        assert_eq!(
            uuid_text(&b, "NVIDIA H100 80GB HBM3 MIG 3g.40gb"),
            "MIG-00112233-4455-6677-8899-aabbccddeeff"
        );
    }

    #[test]
    fn a_mig_slices_peaks_are_its_share_of_the_whole() {
        assert!(is_mig("NVIDIA A100-SXM4-40GB MIG 1g.5gb") && !is_mig("NVIDIA H200"));
        assert_eq!(full_gpu_sms("NVIDIA H100 80GB HBM3 MIG 3g.40gb"), Some(132));
        assert_eq!(full_gpu_sms("NVIDIA H100 PCIe MIG 1g.10gb"), Some(114));
        assert_eq!(full_gpu_sms("NVIDIA GeForce RTX 4090"), None);
        let whole = Peaks {
            memory: Some(3.35e12),
            memory_source: "datasheet",
            tensor: peaks::tensor_peaks("NVIDIA H100 80GB HBM3").map(|t| t.1),
            ..Peaks::default()
        };
        // A 3g.40gb slice: 60 of 132 SMs, half the memory.
        let s = slice_peaks(whole.clone(), 60.0 / 132.0, Some(0.5));
        let bf16 = s.tensor.unwrap().bf16.unwrap();
        assert!((bf16 - 989.4e12 * 60.0 / 132.0).abs() < 1e9, "{bf16}");
        assert_eq!(s.memory, Some(1.675e12));
        // Without the memory share, no memory peak rather than the whole GPU's.
        let s = slice_peaks(whole, 60.0 / 132.0, None);
        assert_eq!((s.memory, s.memory_source), (None, ""));
    }

    #[test]
    fn without_a_driver_open_says_which_library_is_missing() {
        if std::path::Path::new("/proc/driver/nvidia").exists() {
            return; // a machine with a driver opens, tested by tests/nvml.rs with --ignored
        }
        let e = CudaBackend::open(0).err().unwrap();
        assert!(e.starts_with("CUDA not available: libcuda.so"), "{e}");
    }
}
