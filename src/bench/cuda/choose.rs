//! One directory for cuBLAS, cuBLASLt and NVRTC, chosen once per process before cudarc opens
//! anything, so a toolkit's cuBLAS never loads beside a wheel's cuBLASLt (the mix behind
//! "undefined symbol … libcublasLt" and CUBLAS_STATUS_INVALID_VALUE).
//!
//! cudarc asks the loader for the bare `libcublas.so` first. Where that name resolves (a
//! toolkit's development link on LD_LIBRARY_PATH or in ld.so.cache), that file's directory is
//! the one: anything else would load a second cuBLAS. Otherwise, in order: `GANTRY_CUDA_LIBS`,
//! the directory torch would use (its wheels' `nvidia/*/lib`, else `torch/lib`), a CUDA toolkit
//! (`CUDA_HOME`, `CUDA_PATH`, `/usr/local/cuda`), else the loader's own search. From the chosen
//! directory cuBLASLt, cuBLAS, NVRTC and NVRTC's builtins are loaded with RTLD_GLOBAL, so the
//! versioned names cudarc falls back to find them already loaded.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The directory chosen, and why in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// None: the loader's own search, nothing preloaded.
    pub dir: Option<PathBuf>,
    pub why: String,
}

/// The libraries in the order they are preloaded: cuBLASLt before cuBLAS, which needs it.
const PRELOAD: [&str; 4] = ["libcublasLt", "libcublas", "libnvrtc", "libnvrtc-builtins"];

/// The choice, made and applied once per process; Err when the libraries would mix.
pub fn prepare() -> Result<Choice, String> {
    static CHOSEN: OnceLock<Result<Choice, String>> = OnceLock::new();
    CHOSEN
        .get_or_init(|| {
            let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
            let ld_path: Vec<PathBuf> = var("LD_LIBRARY_PATH")
                .map(|v| std::env::split_paths(&v).collect())
                .unwrap_or_default();
            let natural = resolve_bare("libcublas.so", &ld_path, &ld_cache(), &default_dirs());
            let over = var("GANTRY_CUDA_LIBS").map(PathBuf::from);
            let site = torch_site();
            let choice = choose(
                natural.as_deref(),
                over.as_deref(),
                site.as_deref(),
                &toolkits(),
            )?;
            if let Some(dir) = &choice.dir {
                preload(dir);
            }
            tracing::info!("CUDA libraries: {}", choice.why);
            Ok(choice)
        })
        .clone()
}

/// The rule, apart from the machine: `natural` is where the bare `libcublas.so` resolves.
pub fn choose(
    natural: Option<&Path>,
    over: Option<&Path>,
    torch_site: Option<&Path>,
    toolkits: &[PathBuf],
) -> Result<Choice, String> {
    let natural_dir = natural.and_then(|f| canonical(f).parent().map(Path::to_path_buf));
    if let Some(o) = over {
        if versioned(o, "libcublas").is_none() {
            return Err(format!(
                "GANTRY_CUDA_LIBS={} holds no libcublas.so.N: name the directory that has cuBLAS",
                o.display()
            ));
        }
        if let Some(n) = &natural_dir
            && *n != canonical(o)
        {
            return Err(format!(
                "GANTRY_CUDA_LIBS={} but the loader finds libcublas.so in {} first, and cudarc \
                 asks for that name: the two cuBLAS would mix. Take {} off LD_LIBRARY_PATH (or \
                 out of ld.so.cache), or unset GANTRY_CUDA_LIBS",
                o.display(),
                n.display(),
                n.display()
            ));
        }
        return Ok(Choice {
            dir: Some(o.to_path_buf()),
            why: format!("{} (GANTRY_CUDA_LIBS)", o.display()),
        });
    }
    if let Some(n) = natural_dir {
        return Ok(Choice {
            why: format!(
                "{} (where the loader finds libcublas.so, the name cudarc asks for first)",
                n.display()
            ),
            dir: Some(n),
        });
    }
    if let Some(d) = torch_site.and_then(|s| wheel_dirs(s).into_iter().next()) {
        return Ok(Choice {
            why: format!("{} (torch's)", d.display()),
            dir: Some(d),
        });
    }
    if let Some(d) = toolkits
        .iter()
        .find(|d| versioned(d, "libcublas").is_some())
    {
        return Ok(Choice {
            why: format!("{} (the CUDA toolkit)", d.display()),
            dir: Some(d.clone()),
        });
    }
    Ok(Choice {
        dir: None,
        why: "the loader's own search (no torch wheels, toolkit or GANTRY_CUDA_LIBS)".into(),
    })
}

/// Where torch's cuBLAS lives under a site-packages: each `nvidia/*/lib` holding one (CUDA 13's
/// `cu13` before older per-library folders), then `torch/lib`.
pub fn wheel_dirs(site: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(site.join("nvidia"))
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.path().join("lib"))
                .filter(|d| versioned(d, "libcublas").is_some())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.reverse();
    let torch_lib = site.join("torch/lib");
    if versioned(&torch_lib, "libcublas").is_some() {
        dirs.push(torch_lib);
    }
    dirs
}

/// `dir/stem.so.N…`, the shortest versioned name (the soname's link where there is one); None
/// for an unversioned file alone or none.
pub fn versioned(dir: &Path, stem: &str) -> Option<PathBuf> {
    let prefix = format!("{stem}.so.");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    found.sort_by_key(|p| (p.as_os_str().len(), p.clone()));
    found.into_iter().next()
}

/// Where the loader would find the bare `name`: LD_LIBRARY_PATH, then ld.so.cache (name, file),
/// then the default directories.
pub fn resolve_bare(
    name: &str,
    ld_path: &[PathBuf],
    cache: &[(String, PathBuf)],
    defaults: &[PathBuf],
) -> Option<PathBuf> {
    ld_path
        .iter()
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .or_else(|| {
            cache
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| p.clone())
        })
        .or_else(|| defaults.iter().map(|d| d.join(name)).find(|p| p.exists()))
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// ld.so.cache's entries for this architecture, from `ldconfig -p`.
fn ld_cache() -> Vec<(String, PathBuf)> {
    let out = ["/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"]
        .iter()
        .find_map(|c| std::process::Command::new(c).arg("-p").output().ok());
    let Some(out) = out else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (left, path) = l.trim().split_once(" => ")?;
            let name = left.split_whitespace().next()?;
            let ours = if cfg!(target_arch = "x86_64") {
                left.contains("x86-64")
            } else {
                true
            };
            ours.then(|| (name.to_string(), PathBuf::from(path)))
        })
        .collect()
}

fn default_dirs() -> Vec<PathBuf> {
    let arch = std::env::consts::ARCH;
    [
        format!("/lib/{arch}-linux-gnu"),
        format!("/usr/lib/{arch}-linux-gnu"),
        "/lib64".into(),
        "/usr/lib64".into(),
        "/lib".into(),
        "/usr/lib".into(),
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect()
}

fn toolkits() -> Vec<PathBuf> {
    let arch = std::env::consts::ARCH;
    let mut v: Vec<PathBuf> = ["CUDA_HOME", "CUDA_PATH"]
        .iter()
        .filter_map(std::env::var_os)
        .map(|h| PathBuf::from(h).join("lib64"))
        .collect();
    v.push("/usr/local/cuda/lib64".into());
    v.push(format!("/usr/local/cuda/targets/{arch}-linux/lib").into());
    v
}

/// The site-packages holding torch, as `python3` finds it (`GANTRY_PYTHON` names another),
/// without importing torch.
fn torch_site() -> Option<PathBuf> {
    let python = std::env::var("GANTRY_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import importlib.util as u, os\n\
             s = u.find_spec('torch')\n\
             print(os.path.dirname(list(s.submodule_search_locations)[0]) if s and s.submodule_search_locations else '')",
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!line.is_empty()).then(|| PathBuf::from(line))
}

/// Load the chosen directory's libraries with RTLD_GLOBAL and keep them loaded; NVRTC's may sit
/// in a wheel folder of its own beside cuBLAS's.
fn preload(dir: &Path) {
    let nvrtc_dir = dir.join("../../cuda_nvrtc/lib");
    for stem in PRELOAD {
        let Some(file) = versioned(dir, stem).or_else(|| versioned(&nvrtc_dir, stem)) else {
            continue;
        };
        let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL;
        // Safety: loading a CUDA library runs only its initialisers, which take no arguments.
        match unsafe { libloading::os::unix::Library::open(Some(&file), flags) } {
            // Kept for the life of the process, as cudarc keeps its own.
            Ok(lib) => std::mem::forget(lib),
            Err(e) => tracing::warn!("preloading {}: {e}", file.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"").unwrap();
    }

    #[test]
    fn torch_wheels_with_versioned_files_only_are_chosen() {
        let t = tempfile::tempdir().unwrap();
        let site = t.path().join("site-packages");
        let cu13 = site.join("nvidia/cu13/lib");
        for f in ["libcublas.so.13", "libcublasLt.so.13", "libnvrtc.so.13"] {
            touch(&cu13.join(f));
        }
        touch(&site.join("nvidia/cudnn/lib/libcudnn.so.9"));
        assert_eq!(wheel_dirs(&site), std::slice::from_ref(&cu13));
        assert_eq!(
            versioned(&cu13, "libcublas"),
            Some(cu13.join("libcublas.so.13"))
        );
        assert_eq!(
            versioned(&cu13, "libcublasLt"),
            Some(cu13.join("libcublasLt.so.13"))
        );
        let c = choose(None, None, Some(&site), &[]).unwrap();
        assert_eq!(c.dir, Some(cu13));
        assert!(c.why.ends_with("(torch's)"), "{}", c.why);
    }

    #[test]
    fn a_toolkits_bare_libcublas_on_the_path_wins_over_torchs() {
        let t = tempfile::tempdir().unwrap();
        let site = t.path().join("site-packages");
        touch(&site.join("nvidia/cu13/lib/libcublas.so.13"));
        let toolkit = t.path().join("cuda/lib64");
        for f in ["libcublas.so", "libcublas.so.13", "libcublas.so.13.0.2.14"] {
            touch(&toolkit.join(f));
        }
        let natural = resolve_bare("libcublas.so", std::slice::from_ref(&toolkit), &[], &[]);
        assert_eq!(natural, Some(toolkit.join("libcublas.so")));
        let c = choose(natural.as_deref(), None, Some(&site), &[]).unwrap();
        assert_eq!(c.dir, Some(canonical(&toolkit)));
        assert!(
            c.why.contains("the name cudarc asks for first"),
            "{}",
            c.why
        );
        // Without the bare name on the path, torch's wheels; the toolkit only after them.
        let c = choose(None, None, Some(&site), std::slice::from_ref(&toolkit)).unwrap();
        assert_eq!(c.dir, Some(site.join("nvidia/cu13/lib")));
        let c = choose(None, None, None, std::slice::from_ref(&toolkit)).unwrap();
        assert!(c.why.ends_with("(the CUDA toolkit)"), "{}", c.why);
        // The shortest versioned name is the soname's link.
        assert_eq!(
            versioned(&toolkit, "libcublas"),
            Some(toolkit.join("libcublas.so.13"))
        );
    }

    #[test]
    fn an_override_is_taken_checked_and_refused_where_it_would_mix() {
        let t = tempfile::tempdir().unwrap();
        let mine = t.path().join("mine");
        touch(&mine.join("libcublas.so.13"));
        let c = choose(None, Some(&mine), None, &[]).unwrap();
        assert_eq!(c.dir, Some(mine.clone()));
        assert!(c.why.ends_with("(GANTRY_CUDA_LIBS)"));
        let empty = t.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let e = choose(None, Some(&empty), None, &[]).unwrap_err();
        assert!(e.contains("holds no libcublas.so.N"), "{e}");
        let other = t.path().join("other/libcublas.so");
        touch(&other);
        let e = choose(Some(&other), Some(&mine), None, &[]).unwrap_err();
        assert!(e.contains("would mix"), "{e}");
        // The override naming the same directory the loader finds is no mix.
        let same = mine.join("libcublas.so");
        touch(&same);
        assert!(choose(Some(&same), Some(&mine), None, &[]).is_ok());
    }

    #[test]
    fn the_cache_and_default_directories_are_searched_after_ld_library_path() {
        let t = tempfile::tempdir().unwrap();
        let cached = (
            "libcublas.so".to_string(),
            PathBuf::from("/cache/libcublas.so"),
        );
        let dflt = t.path().join("usr-lib");
        touch(&dflt.join("libcublas.so"));
        assert_eq!(
            resolve_bare(
                "libcublas.so",
                &[],
                std::slice::from_ref(&cached),
                std::slice::from_ref(&dflt)
            ),
            Some(PathBuf::from("/cache/libcublas.so"))
        );
        assert_eq!(
            resolve_bare("libcublas.so", &[], &[], std::slice::from_ref(&dflt)),
            Some(dflt.join("libcublas.so"))
        );
        assert_eq!(resolve_bare("libcublas.so", &[], &[], &[]), None);
    }
}
