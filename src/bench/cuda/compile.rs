//! The benchmark kernels compiled by NVRTC for the device's own architecture: machine code
//! (`--gpu-architecture=sm_XY`, `nvrtcGetCUBIN`), so no benchmark depends on the driver's PTX
//! JIT; PTX for `compute_XY` only where NVRTC cannot write that CUBIN (an NVRTC older than the
//! GPU). What was loaded, and why, is said in `DeviceInfo::kernels`.

use std::ffi::{CString, c_char};

use cudarc::nvrtc::{Ptx, result, sys};

/// The options for one compile: `sm_XY` gives a CUBIN, `compute_XY` PTX.
pub fn options(target: &str, major: i32, minor: i32) -> Vec<String> {
    vec![format!("--gpu-architecture={target}_{major}{minor}")]
}

/// A module image: machine code, or PTX for the driver to compile.
pub enum Image {
    Cubin(Vec<u8>),
    Ptx(String),
}

/// gantry's benchmark kernels for compute capability `major.minor`, with what the image is
/// ("CUBIN sm_90 (NVRTC 13.0)", or "PTX compute_90, compiled by the driver (…)"). Err when NVRTC
/// cannot compile them at all. NVRTC must be loadable (it panics otherwise: ask
/// `is_culib_present` first).
pub fn kernels_for(major: i32, minor: i32) -> Result<(Image, String), String> {
    let src = super::kernels::KERNELS;
    match build(src, &options("sm", major, minor), Output::Cubin) {
        Ok(image) => Ok((
            Image::Cubin(image.into_iter().map(|c| c as u8).collect()),
            format!("CUBIN sm_{major}{minor} (NVRTC {})", nvrtc_version()),
        )),
        Err(cubin_err) => {
            let image = build(src, &options("compute", major, minor), Output::Ptx)
                .map_err(|e| format!("NVRTC could not compile the kernels: {e}"))?;
            let text: String = image
                .into_iter()
                .take_while(|c| *c != 0)
                .map(|c| c as u8 as char)
                .collect();
            Ok((
                Image::Ptx(text),
                format!(
                    "PTX compute_{major}{minor}, compiled by the driver (NVRTC {} wrote no CUBIN: {cubin_err})",
                    nvrtc_version()
                ),
            ))
        }
    }
}

/// `kernels_for`, as the module cudarc loads.
pub(super) fn compile(major: i32, minor: i32) -> Result<(Ptx, String), String> {
    kernels_for(major, minor).map(|(image, what)| {
        let ptx = match image {
            Image::Cubin(bytes) => Ptx::from_binary(bytes),
            Image::Ptx(text) => Ptx::from_src(text),
        };
        (ptx, what)
    })
}

#[derive(Clone, Copy)]
enum Output {
    Cubin,
    Ptx,
}

fn build(src: &str, opts: &[String], out: Output) -> Result<Vec<c_char>, String> {
    let src = CString::new(src).map_err(|_| "the kernel source holds a NUL".to_string())?;
    let prog = result::create_program(&src, None).map_err(|e| format!("{e:?}"))?;
    // Safety: prog is a live program until destroy_program below; the buffers are sized by NVRTC.
    let built = unsafe {
        match result::compile_program(prog, opts) {
            Err(e) => {
                let log = result::get_program_log(prog).unwrap_or_default();
                let log: String = log
                    .iter()
                    .take_while(|c| **c != 0)
                    .map(|c| *c as u8 as char)
                    .collect();
                Err(format!("{e:?}: {}", log.trim()))
            }
            Ok(()) => match out {
                Output::Ptx => result::get_ptx(prog).map_err(|e| format!("{e:?}")),
                Output::Cubin => {
                    let mut size = 0usize;
                    sys::nvrtcGetCUBINSize(prog, &mut size)
                        .result()
                        .map_err(|e| format!("{e:?}"))
                        .and_then(|()| {
                            let mut buf: Vec<c_char> = vec![0; size];
                            sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr())
                                .result()
                                .map(|()| buf)
                                .map_err(|e| format!("{e:?}"))
                        })
                }
            },
        }
    };
    // Safety: prog came from create_program and is destroyed once.
    let _ = unsafe { result::destroy_program(prog) };
    built
}

/// "13.0", or "?" where NVRTC does not say.
pub fn nvrtc_version() -> String {
    let (mut major, mut minor) = (0, 0);
    // Safety: nvrtcVersion writes two ints.
    match unsafe { sys::nvrtcVersion(&mut major, &mut minor) }.result() {
        Ok(()) => format!("{major}.{minor}"),
        Err(_) => "?".into(),
    }
}

/// A plain warning when NVRTC is newer than the driver's CUDA: its PTX may not load, and where
/// the CUBIN fails too, the kernels do not.
pub(super) fn newer_than_driver(nvrtc: &str, driver_cuda: &str) -> Option<String> {
    let key = |v: &str| -> Option<(u32, u32)> {
        let mut p = v.split('.');
        Some((
            p.next()?.parse().ok()?,
            p.next().unwrap_or("0").parse().ok()?,
        ))
    };
    (key(nvrtc)? > key(driver_cuda)?).then(|| {
        format!(
            "NVRTC {nvrtc} is newer than the driver's CUDA {driver_cuda}: PTX it writes may not \
             load; update the driver, or put the NVRTC of CUDA {driver_cuda} first (GANTRY_CUDA_LIBS)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cubin_names_the_devices_own_architecture() {
        assert_eq!(options("sm", 9, 0)[0], "--gpu-architecture=sm_90");
        assert_eq!(
            options("compute", 12, 0)[0],
            "--gpu-architecture=compute_120"
        );
    }

    #[test]
    fn an_nvrtc_newer_than_the_driver_is_said_plainly() {
        assert!(
            newer_than_driver("13.1", "13.0")
                .unwrap()
                .starts_with("NVRTC 13.1 is newer")
        );
        assert_eq!(newer_than_driver("13.0", "13.0"), None);
        assert_eq!(newer_than_driver("12.8", "13.0"), None);
        assert_eq!(newer_than_driver("?", "13.0"), None);
    }
}
