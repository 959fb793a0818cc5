//! `gantry doctor`: everything a user or a bug report needs on one screen (or in `--json`): the
//! build, the workspace and store, config and theme files, the terminal, the NVIDIA driver and
//! GPUs, the CUDA libraries and python. Each problem is a line that says what to do; exit 1 when
//! there is a warning.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

mod print;

use super::out;
use crate::bench::cuda::libs::{self, CudaLib};
use crate::config::{ColorMode, WorkspaceConfig};
use crate::domain::store::StoreKind;
use crate::gpu::source::{GpuSource, NvmlSource, ReplaySource};
use crate::workspace::{Lookup, Workspace};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the report as JSON: {"gantry", "workspace", "store", "config", "terminal",
    /// "nvidia", "cuda", "python", "problems"}
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report {
    gantry: Build,
    workspace: Option<WorkspaceInfo>,
    store: Option<StoreInfo>,
    config: Files,
    terminal: Terminal,
    nvidia: Nvidia,
    cuda: Vec<CudaLib>,
    /// Where cuBLAS, cuBLASLt and NVRTC are loaded from, and why.
    cuda_dir: String,
    python: Python,
    /// Warnings (exit 1) and notes, each with what to do.
    problems: Vec<Problem>,
}

#[derive(Serialize)]
struct Build {
    version: &'static str,
    /// The target it was built for, as ARCH-OS-ENV.
    target: String,
    profile: &'static str,
    /// The highest glibc symbol version the binary needs: the oldest glibc it starts on.
    glibc_floor: Option<String>,
    /// The glibc of this box.
    glibc_here: Option<String>,
    executable: Option<String>,
}

#[derive(Serialize)]
struct WorkspaceInfo {
    root: String,
    source: String,
}

#[derive(Serialize, Default)]
struct StoreInfo {
    kind: &'static str,
    /// A path, or a URL without its password.
    location: String,
    source: String,
    /// The PostgreSQL server's host and port.
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    reached: bool,
    server: Option<String>,
    schema: Option<i64>,
    /// The median of three round trips, in milliseconds.
    latency_ms: Option<f64>,
    /// The SQLite file's size.
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    error: Option<String>,
}

#[derive(Serialize)]
struct Files {
    config: Option<String>,
    config_exists: bool,
    workspace_config: Option<String>,
    theme: String,
    /// Every diagnostic of these files, as FILE:LINE: message.
    errors: Vec<String>,
}

#[derive(Serialize)]
struct Terminal {
    term: Option<String>,
    colorterm: Option<String>,
    colors: &'static str,
    /// Columns and rows, where standard output is a terminal.
    size: Option<(u16, u16)>,
    stdout_is_terminal: bool,
    over_ssh: bool,
}

#[derive(Serialize, Default)]
struct Nvidia {
    /// "NVML", or "replay of FILE".
    source: String,
    driver: Option<String>,
    nvml: Option<String>,
    cuda: Option<String>,
    gpus: Vec<GpuInfo>,
    error: Option<String>,
}

#[derive(Serialize)]
struct GpuInfo {
    index: u32,
    name: String,
    uuid: String,
    /// The readings NVML did not give for this GPU (shown as n/a everywhere).
    unsupported: Vec<String>,
}

#[derive(Serialize, Default)]
struct Python {
    path: Option<String>,
    version: Option<String>,
    /// Versions of the packages found importable, null where not.
    mlflow: Option<String>,
    torch: Option<String>,
    error: Option<String>,
}

#[derive(Serialize, Clone)]
struct Problem {
    /// "warning" (exit 1) or "note".
    level: &'static str,
    area: &'static str,
    what: String,
    fix: String,
}

pub async fn run(
    args: Args,
    flag: &Option<PathBuf>,
    theme_flag: Option<String>,
    replay: &Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let mut problems = Vec::new();
    let gantry = build();
    if let (Some(floor), Some(here)) = (&gantry.glibc_floor, &gantry.glibc_here)
        && version_key(floor) > version_key(here)
    {
        problems.push(warn(
            "gantry",
            format!("this binary needs glibc {floor} and the box has {here}"),
            "use the release tarball or the wheel, which start on glibc 2.17",
        ));
    }
    let (workspace, store) =
        match Lookup::from_process(flag.clone()).and_then(|l| Workspace::resolve(&l)) {
            Ok(ws) => {
                let store = store_info(&ws, &mut problems).await;
                (
                    Some(WorkspaceInfo {
                        root: ws.root.display().to_string(),
                        source: ws.source.to_string(),
                    }),
                    Some((store, ws)),
                )
            }
            Err(e) => {
                problems.push(warn(
                    "workspace",
                    e.to_string(),
                    "run `gantry init` here, or pass --workspace DIR",
                ));
                (None, None)
            }
        };
    let ws = store.as_ref().map(|(_, ws)| ws);
    let config = files(ws, theme_flag, &mut problems);
    let terminal = terminal(&mut problems);
    let replay = replay.clone();
    let (nvidia, chosen, cuda) = tokio::task::spawn_blocking(move || {
        // The same directory `gantry bench` would load from, loaded the same way first.
        let chosen = crate::bench::cuda::choose::prepare();
        (nvidia(replay.as_deref()), chosen, libs::libraries())
    })
    .await?;
    let cuda_dir = match chosen {
        Ok(c) => c.why,
        Err(e) => {
            problems.push(warn("cuda", e.clone(), "then run `gantry doctor` again"));
            format!("none: {e}")
        }
    };
    gpu_problems(&nvidia, &cuda, &mut problems);
    let python = python().await;
    python_problems(&python, &mut problems);
    let report = Report {
        gantry,
        workspace,
        store: store.map(|(s, _)| s),
        config,
        terminal,
        nvidia,
        cuda,
        cuda_dir,
        python,
        problems,
    };
    if args.json {
        out::json(&report)?;
    } else {
        print::print(&report);
    }
    let warned = report.problems.iter().any(|p| p.level == "warning");
    Ok(if warned {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn warn(area: &'static str, what: impl Into<String>, fix: impl Into<String>) -> Problem {
    Problem {
        level: "warning",
        area,
        what: what.into(),
        fix: fix.into(),
    }
}

fn note(area: &'static str, what: impl Into<String>, fix: impl Into<String>) -> Problem {
    Problem {
        level: "note",
        ..warn(area, what, fix)
    }
}

fn build() -> Build {
    let env = if cfg!(target_env = "gnu") {
        "gnu"
    } else if cfg!(target_env = "musl") {
        "musl"
    } else {
        "unknown"
    };
    let exe = std::env::current_exe().ok();
    Build {
        version: env!("CARGO_PKG_VERSION"),
        target: format!("{}-{}-{env}", std::env::consts::ARCH, std::env::consts::OS),
        profile: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        glibc_floor: exe.as_deref().and_then(glibc_floor),
        glibc_here: glibc_here(),
        executable: exe.map(|p| p.display().to_string()),
    }
}

/// The highest GLIBC_x.y version the ELF file at `path` needs, from its version needs.
pub fn glibc_floor(path: &Path) -> Option<String> {
    use object::read::elf::FileHeader;
    let data = std::fs::read(path).ok()?;
    let data = &data[..];
    let header = object::elf::FileHeader64::<object::Endianness>::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let sections = header.sections(endian, data).ok()?;
    let (mut needs, link) = sections.gnu_verneed(endian, data).ok()??;
    let strings = sections.strings(endian, data, link).ok()?;
    let mut best: Option<(Vec<u32>, String)> = None;
    while let Ok(Some((_, mut aux))) = needs.next() {
        while let Ok(Some(a)) = aux.next() {
            let Ok(name) = a.name(endian, strings) else {
                continue;
            };
            let Some(v) = std::str::from_utf8(name)
                .ok()
                .and_then(|n| n.strip_prefix("GLIBC_"))
            else {
                continue;
            };
            let key = version_key(v);
            if key.is_empty() {
                continue; // GLIBC_PRIVATE
            }
            if best.as_ref().is_none_or(|(k, _)| key > *k) {
                best = Some((key, v.to_string()));
            }
        }
    }
    best.map(|(_, v)| v)
}

/// "2.17" as [2, 17], for comparing versions; empty for what is not one.
fn version_key(v: &str) -> Vec<u32> {
    v.split('.').map_while(|p| p.parse().ok()).collect()
}

fn glibc_here() -> Option<String> {
    #[cfg(target_env = "gnu")]
    {
        // Safety: gnu_get_libc_version returns a static string.
        let v = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
        Some(v.to_string_lossy().into_owned())
    }
    #[cfg(not(target_env = "gnu"))]
    None
}

async fn store_info(ws: &Workspace, problems: &mut Vec<Problem>) -> StoreInfo {
    let loc = match super::common::store_location(ws) {
        Ok(l) => l,
        Err(e) => {
            problems.push(warn(
                "store",
                e.to_string(),
                "fix .gantry/config.toml's store key",
            ));
            return StoreInfo {
                kind: "unknown",
                error: Some(e.to_string()),
                ..StoreInfo::default()
            };
        }
    };
    let mut info = StoreInfo {
        kind: "sqlite",
        location: loc.shown(),
        source: loc.source.to_string(),
        ..StoreInfo::default()
    };
    match &loc.kind {
        StoreKind::Sqlite(path) => {
            info.bytes = std::fs::metadata(path).ok().map(|m| m.len());
            if info.bytes.is_none() {
                // Made by the first command that writes; doctor does not make one.
                info.error = Some("no store file yet: the first run makes it".into());
                return info;
            }
            match crate::store::Store::open(path).await {
                Ok(store) => {
                    info.reached = true;
                    info.server = store.engine_version().await.ok();
                    info.schema = store.schema_version().await.ok();
                    store.close().await;
                }
                Err(e) => {
                    problems.push(warn(
                        "store",
                        e.to_string(),
                        "see `gantry where` and docs/workspace.md",
                    ));
                    info.error = Some(e.to_string());
                }
            }
        }
        StoreKind::Postgres(url) => {
            info.kind = "postgres";
            info.host = url::Url::parse(url).ok().and_then(|u| {
                u.host_str()
                    .map(|h| format!("{h}:{}", u.port().unwrap_or(5432)))
            });
            let timeout = Duration::from_secs(5);
            match crate::store::postgres::open(url, timeout).await {
                Ok(team) => {
                    info.reached = true;
                    info.server = Some(format!("PostgreSQL {}", team.server_version));
                    info.schema = Some(team.schema_version);
                    info.latency_ms = team.round_trip_ms(3).await;
                    if info.latency_ms.is_some_and(|ms| ms > 50.0) {
                        problems.push(note(
                            "store",
                            format!(
                                "the team store is {:.0} ms away",
                                info.latency_ms.unwrap_or(0.0)
                            ),
                            "listings stay quick, but a store nearer the GPU boxes answers sooner",
                        ));
                    }
                    team.pool.close().await;
                }
                Err(e) => {
                    problems.push(warn(
                        "store",
                        format!("the team store cannot be reached: {e}"),
                        "runs are kept in the workspace meanwhile and pushed by `gantry sync`; check the URL with `gantry where --check` (docs/team.md)",
                    ));
                    info.error = Some(e.to_string());
                }
            }
        }
    }
    info
}

fn files(ws: Option<&Workspace>, theme_flag: Option<String>, problems: &mut Vec<Problem>) -> Files {
    let super::workbench::Settings {
        cfg,
        theme_name: theme,
        notices: diags,
        ..
    } = super::workbench::load_settings(theme_flag);
    for d in &diags {
        problems.push(warn(
            "config",
            d.to_string(),
            "fix that line; gantry uses the built-in setting meanwhile (docs/configuration.md)",
        ));
    }
    let mut errors: Vec<String> = diags.iter().map(ToString::to_string).collect();
    let mut workspace_config = None;
    if let Some(ws) = ws {
        let path = ws.config_path();
        // Its problem is the store's: the store cannot be chosen without it.
        if let Err(d) = WorkspaceConfig::load(&path) {
            errors.push(d.to_string());
        }
        workspace_config = path.exists().then(|| path.display().to_string());
    }
    Files {
        config_exists: cfg.path.as_ref().is_some_and(|p| p.exists()),
        config: cfg.path.map(|p| p.display().to_string()),
        workspace_config,
        theme,
        errors,
    }
}

fn terminal(problems: &mut Vec<Problem>) -> Terminal {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let stdout_is_terminal = std::io::stdout().is_terminal();
    let t = Terminal {
        term: var("TERM"),
        colorterm: var("COLORTERM"),
        colors: match ColorMode::from_env() {
            ColorMode::TrueColor => "24-bit",
            ColorMode::Ansi256 => "256",
            ColorMode::NoColor => "none (NO_COLOR)",
        },
        size: crate::tui::terminal_size(),
        stdout_is_terminal,
        over_ssh: ["SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"]
            .iter()
            .any(|k| var(k).is_some()),
    };
    match t.term.as_deref() {
        None | Some("dumb") => problems.push(warn(
            "terminal",
            format!("TERM is {}", t.term.as_deref().unwrap_or("not set")),
            "the workbench needs a terminal that moves the cursor: set TERM=xterm-256color",
        )),
        _ => {}
    }
    if let Some((w, h)) = t.size
        && (w < 80 || h < 24)
    {
        problems.push(note(
            "terminal",
            format!("the terminal is {w}×{h}"),
            "the workbench fits 80×24 or more; smaller screens hide columns",
        ));
    }
    t
}

/// One sample of the driver (or the recording), with the readings each GPU lacks.
fn nvidia(replay: Option<&Path>) -> Nvidia {
    let mut n = Nvidia::default();
    let sampled = match replay {
        Some(path) => ReplaySource::open(path, 0.0).and_then(|mut s| {
            n.source = s.describe();
            s.sample()
        }),
        None => {
            n.source = "NVML".into();
            if let Ok(nvml) = nvml_wrapper::Nvml::init() {
                n.nvml = nvml.sys_nvml_version().ok();
            }
            NvmlSource::open().and_then(|mut s| s.sample())
        }
    };
    match sampled {
        Ok(snap) => {
            n.driver = snap.driver;
            n.cuda = snap.cuda;
            n.gpus = snap.gpus.iter().map(gpu_info).collect();
        }
        Err(e) => n.error = Some(e),
    }
    n
}

fn gpu_info(g: &crate::domain::GpuSample) -> GpuInfo {
    let fields = serde_json::to_value(g).unwrap_or_default();
    let unsupported = fields
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| v.is_null())
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    GpuInfo {
        index: g.index,
        name: g.name.clone(),
        uuid: g.uuid.clone(),
        unsupported,
    }
}

fn gpu_problems(n: &Nvidia, cuda: &[CudaLib], problems: &mut Vec<Problem>) {
    if let Some(e) = &n.error {
        problems.push(warn(
            "nvidia",
            e.clone(),
            "`gantry gpu` and `gantry bench` need the NVIDIA driver; runs, models, serve and \
             `gantry bench --cpu` work without it",
        ));
        return;
    }
    if n.gpus.is_empty() {
        problems.push(warn(
            "nvidia",
            "the driver answers but lists no GPU",
            "check `nvidia-smi`, and CUDA_VISIBLE_DEVICES in containers",
        ));
    }
    for l in cuda.iter().filter(|l| l.path.is_none()) {
        let fix = match l.name {
            "libcuda" => "it comes with the NVIDIA driver: reinstall the driver".to_string(),
            other => format!(
                "`gantry bench` needs it: `pip install nvidia-{}-cu13`, or the CUDA toolkit, \
                 with its directory in LD_LIBRARY_PATH",
                match other {
                    "libcublasLt" | "libcublas" => "cublas",
                    _ => "cuda-nvrtc",
                }
            ),
        };
        problems.push(warn(
            "cuda",
            l.error
                .clone()
                .unwrap_or_else(|| format!("{} not found", l.name)),
            fix,
        ));
    }
    for m in libs::mismatches(cuda) {
        problems.push(warn("cuda", m, "then run `gantry doctor` again"));
    }
}

/// python3 on PATH, and whether mlflow and torch are importable (found, and their version),
/// without importing them: torch takes seconds to import.
async fn python() -> Python {
    const PROBE: &str = "import json, sys, importlib.util as u, importlib.metadata as m\n\
        def v(p):\n    \
            if u.find_spec(p) is None: return None\n    \
            try: return m.version(p)\n    \
            except Exception: return 'unknown version'\n\
        print(json.dumps({'path': sys.executable, 'version': sys.version.split()[0], \
        'mlflow': v('mlflow'), 'torch': v('torch')}))";
    let mut p = Python::default();
    let child = tokio::process::Command::new("python3")
        .args(["-c", PROBE])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(10), child).await {
        Err(_) => p.error = Some("python3 did not answer within 10 s".into()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            p.error = Some("python3 is not on PATH".into())
        }
        Ok(Err(e)) => p.error = Some(format!("python3 could not start: {e}")),
        Ok(Ok(o)) => match serde_json::from_slice::<serde_json::Value>(&o.stdout) {
            Ok(v) => {
                let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
                p.path = s("path");
                p.version = s("version");
                p.mlflow = s("mlflow");
                p.torch = s("torch");
            }
            Err(_) => {
                let err = String::from_utf8_lossy(&o.stderr);
                p.error = Some(format!(
                    "python3 failed: {}",
                    err.lines().last().unwrap_or("no output")
                ));
            }
        },
    }
    p
}

fn python_problems(p: &Python, problems: &mut Vec<Problem>) {
    if let Some(e) = &p.error {
        problems.push(note(
            "python",
            e.clone(),
            "only the MLflow client, importers' checks and the device check use python3",
        ));
        return;
    }
    if p.mlflow.is_none() {
        problems.push(note(
            "python",
            "mlflow is not importable",
            "scripts that log with mlflow need `pip install mlflow`, then `gantry serve`",
        ));
    }
    if p.torch.is_none() {
        problems.push(note(
            "python",
            "torch is not importable",
            "only needed by training scripts and the device check",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers() {
        assert!(version_key("2.2.5") < version_key("2.17"));
        assert!(version_key("2.9") < version_key("2.17"));
        assert!(version_key("PRIVATE").is_empty());
    }

    #[test]
    fn this_test_binary_names_its_glibc_floor() {
        let exe = std::env::current_exe().unwrap();
        let floor = glibc_floor(&exe).expect("a glibc floor");
        assert!(version_key(&floor) >= version_key("2.2.5"), "{floor}");
        assert_eq!(glibc_floor(Path::new("/nonexistent")), None);
    }
}
