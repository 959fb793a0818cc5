//! The CUDA libraries this box offers, found as cudarc finds them (the same names, in the same
//! order), with the file each came from and its version: what `gantry doctor` reports, and the
//! mixes that break `gantry bench` (a cuBLAS beside another directory's cuBLASLt, an NVRTC newer
//! than the driver).

use std::ffi::{CStr, c_int, c_void};

use serde::Serialize;

/// One library: where it was found and its version, or why not.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CudaLib {
    /// "libcuda" (the driver), "libcublas", "libcublasLt" or "libnvrtc".
    pub name: &'static str,
    /// The file loaded, as the dynamic linker resolved it.
    pub path: Option<String>,
    /// "13.0" for the driver's CUDA version; "13.1.0" for the others.
    pub version: Option<String>,
    /// Why it is absent or unreadable.
    pub error: Option<String>,
}

/// The four libraries gantry's CUDA backend uses, each looked up by the names cudarc tries.
/// libcublas is kept open while libcublasLt is looked up, so the cuBLASLt reported is the one
/// cuBLAS itself pulled in, where it did.
pub fn libraries() -> Vec<CudaLib> {
    let mut out = Vec::new();
    let (driver, _keep_driver) = probe("libcuda", "cuda", "cuDriverGetVersion", |lib| {
        // Safety: cuDriverGetVersion(int*) writes one int; it needs no cuInit.
        unsafe {
            let f = lib
                .get::<unsafe extern "C" fn(*mut c_int) -> c_int>("cuDriverGetVersion")
                .ok()?;
            let mut v: c_int = 0;
            (f(&mut v) == 0).then(|| format!("{}.{}", v / 1000, (v % 1000) / 10))
        }
    });
    out.push(driver);
    let (blas, _keep_blas) = probe("libcublas", "cublas", "cublasGetProperty", |lib| {
        // Safety: cublasGetProperty(libraryPropertyType, int*) needs no handle.
        unsafe {
            let f = lib
                .get::<unsafe extern "C" fn(c_int, *mut c_int) -> c_int>("cublasGetProperty")
                .ok()?;
            let mut v = [0 as c_int; 3];
            for (kind, slot) in v.iter_mut().enumerate() {
                if f(kind as c_int, slot) != 0 {
                    return None;
                }
            }
            Some(format!("{}.{}.{}", v[0], v[1], v[2]))
        }
    });
    out.push(blas);
    let (lt, _keep_lt) = probe("libcublasLt", "cublasLt", "cublasLtGetVersion", |lib| {
        // Safety: cublasLtGetVersion() takes nothing and returns major*10000+minor*100+patch.
        unsafe {
            let f = lib
                .get::<unsafe extern "C" fn() -> usize>("cublasLtGetVersion")
                .ok()?;
            let v = f();
            Some(format!("{}.{}.{}", v / 10000, (v % 10000) / 100, v % 100))
        }
    });
    out.push(lt);
    let (nvrtc, _keep_nvrtc) = probe("libnvrtc", "nvrtc", "nvrtcVersion", |lib| {
        // Safety: nvrtcVersion(int*, int*) writes two ints.
        unsafe {
            let f = lib
                .get::<unsafe extern "C" fn(*mut c_int, *mut c_int) -> c_int>("nvrtcVersion")
                .ok()?;
            let (mut major, mut minor) = (0, 0);
            (f(&mut major, &mut minor) == 0).then(|| format!("{major}.{minor}"))
        }
    });
    out.push(nvrtc);
    out
}

/// Open the first of cudarc's names for `stem` that loads, and read its version with `version`.
/// The library stays open while the returned handle lives.
fn probe(
    name: &'static str,
    stem: &str,
    symbol: &str,
    version: impl Fn(&libloading::Library) -> Option<String>,
) -> (CudaLib, Option<libloading::Library>) {
    let mut lib = CudaLib {
        name,
        ..CudaLib::default()
    };
    let mut last_err = None;
    for candidate in cudarc::get_lib_name_candidates(stem) {
        // Safety: loading a CUDA library runs only its initialisers, which take no arguments.
        match unsafe { libloading::Library::new(candidate.as_str()) } {
            Ok(handle) => {
                lib.path = path_of(&handle, symbol).or(Some(candidate));
                lib.version = version(&handle);
                if lib.version.is_none() {
                    lib.error = Some(format!("{symbol} did not answer"));
                }
                return (lib, Some(handle));
            }
            Err(e) => last_err = Some(e.to_string()),
        }
    }
    let tried = format!("{name}.so");
    lib.error = Some(match last_err {
        Some(_) => format!("{tried} not found"),
        None => format!("{tried}: no names to try"),
    });
    (lib, None)
}

/// The file that holds `symbol`, as the dynamic linker resolved it.
fn path_of(lib: &libloading::Library, symbol: &str) -> Option<String> {
    // Safety: the symbol's address is only passed to dladdr, never called through.
    unsafe {
        let sym = lib.get::<*const c_void>(symbol).ok()?;
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(*sym, &mut info) == 0 || info.dli_fname.is_null() {
            return None;
        }
        let name = CStr::from_ptr(info.dli_fname)
            .to_string_lossy()
            .into_owned();
        Some(std::fs::canonicalize(&name).map_or(name, |p| p.display().to_string()))
    }
}

/// Mixes of these libraries that break or mislead a benchmark, each a sentence that says what
/// to do.
pub fn mismatches(libs: &[CudaLib]) -> Vec<String> {
    let find = |n: &str| libs.iter().find(|l| l.name == n && l.path.is_some());
    let dir = |l: &CudaLib| {
        l.path
            .as_deref()
            .and_then(|p| std::path::Path::new(p).parent())
            .map(|d| d.display().to_string())
    };
    let mut out = Vec::new();
    if let (Some(blas), Some(lt)) = (find("libcublas"), find("libcublasLt")) {
        if dir(blas) != dir(lt) {
            out.push(format!(
                "cuBLAS comes from {} but cuBLASLt from {}: a mix like this fails with \
                 \"undefined symbol\" or CUBLAS_STATUS_INVALID_VALUE; put one directory first \
                 in LD_LIBRARY_PATH so both load from it",
                dir(blas).unwrap_or_default(),
                dir(lt).unwrap_or_default()
            ));
        } else if major_minor(blas) != major_minor(lt) {
            out.push(format!(
                "cuBLAS {} and cuBLASLt {} differ in version: reinstall them together",
                blas.version.as_deref().unwrap_or("?"),
                lt.version.as_deref().unwrap_or("?")
            ));
        }
    }
    if let Some(driver) = major_minor_of(find("libcuda")) {
        for (lib, what) in [("libnvrtc", "NVRTC"), ("libcublas", "cuBLAS")] {
            if let Some(v) = major_minor_of(find(lib))
                && v > driver
            {
                out.push(format!(
                    "{what} {}.{} is newer than the driver's CUDA {}.{}: its code may not \
                     load; update the NVIDIA driver, or use the {what} of CUDA {}.{}",
                    v.0, v.1, driver.0, driver.1, driver.0, driver.1
                ));
            }
        }
    }
    out
}

fn major_minor_of(lib: Option<&CudaLib>) -> Option<(u32, u32)> {
    lib.and_then(major_minor)
}

/// (major, minor) of a library's version.
fn major_minor(lib: &CudaLib) -> Option<(u32, u32)> {
    let mut parts = lib.version.as_deref()?.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().unwrap_or("0").parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lib(name: &'static str, path: &str, version: &str) -> CudaLib {
        CudaLib {
            name,
            path: Some(path.into()),
            version: Some(version.into()),
            error: None,
        }
    }

    #[test]
    fn libraries_never_panic_and_say_why_one_is_missing() {
        let libs = libraries();
        assert_eq!(
            libs.iter().map(|l| l.name).collect::<Vec<_>>(),
            ["libcuda", "libcublas", "libcublasLt", "libnvrtc"]
        );
        for l in &libs {
            assert!(l.path.is_some() || l.error.is_some(), "{l:?}");
        }
    }

    #[test]
    fn one_directory_and_an_old_enough_nvrtc_is_no_mismatch() {
        let libs = [
            lib(
                "libcuda",
                "/usr/lib/x86_64-linux-gnu/libcuda.so.580.1",
                "13.0",
            ),
            lib(
                "libcublas",
                "/venv/nvidia/cu13/lib/libcublas.so.13",
                "13.0.2",
            ),
            lib(
                "libcublasLt",
                "/venv/nvidia/cu13/lib/libcublasLt.so.13",
                "13.0.2",
            ),
            lib("libnvrtc", "/venv/nvidia/cu13/lib/libnvrtc.so.13", "13.0"),
        ];
        assert_eq!(mismatches(&libs), Vec::<String>::new());
    }

    #[test]
    fn a_cublas_beside_another_directorys_cublaslt_is_named() {
        let libs = [
            lib(
                "libcublas",
                "/usr/local/cuda/lib64/libcublas.so.13",
                "13.1.0",
            ),
            lib(
                "libcublasLt",
                "/venv/nvidia/cu13/lib/libcublasLt.so.13",
                "13.0.2",
            ),
        ];
        let m = mismatches(&libs);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].contains("/usr/local/cuda/lib64") && m[0].contains("/venv/nvidia/cu13/lib"));
    }

    #[test]
    fn an_nvrtc_newer_than_the_driver_is_named() {
        let libs = [
            lib("libcuda", "/usr/lib/libcuda.so.1", "13.0"),
            lib("libnvrtc", "/usr/local/cuda/lib64/libnvrtc.so.13", "13.1"),
        ];
        let m = mismatches(&libs);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].starts_with("NVRTC 13.1 is newer than the driver's CUDA 13.0"),
            "{m:?}"
        );
    }
}
