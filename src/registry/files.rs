//! Which files make a version: paths given on the command line or a run's own files, checked to
//! lie inside the workspace and not be links, and a guess at their format.

use super::*;

/// Files gantry itself keeps in a run directory: not part of a model made from the run.
pub const RUN_FILES: [&str; 5] = [
    "output.log",
    "metrics.jsonl",
    "stdout-metrics.jsonl",
    "git.diff",
    "supervisor.log",
];

/// Files to register from the command line: each file as its name, each folder's files by their
/// paths inside it. Symlinks and paths outside `workspace_root` are refused.
pub fn collect_files(
    paths: &[PathBuf],
    workspace_root: &Path,
) -> Result<Vec<(String, PathBuf)>, UserError> {
    let root = workspace_root
        .canonicalize()
        .map_err(|e| UserError::new("cannot read the workspace").cause(e))?;
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for p in paths {
        let meta = std::fs::symlink_metadata(p).map_err(|e| {
            UserError::new(format!("cannot read {}", p.display()))
                .cause(e)
                .hint("check the path exists and is readable")
        })?;
        if meta.file_type().is_symlink() {
            return Err(
                UserError::new(format!("{} is a symbolic link", p.display()))
                    .hint("give the file it points to"),
            );
        }
        let abs = p
            .canonicalize()
            .map_err(|e| UserError::new(format!("cannot read {}", p.display())).cause(e))?;
        if !abs.starts_with(&root) {
            return Err(UserError::new(format!("{} is outside the workspace {}", p.display(), root.display()))
                .hint("copy the files into the workspace, or use the workspace that holds them (--workspace)"));
        }
        if meta.is_dir() {
            let mut stack = vec![abs.clone()];
            while let Some(d) = stack.pop() {
                let rd = std::fs::read_dir(&d)
                    .map_err(|e| UserError::new(format!("cannot read {}", d.display())).cause(e))?;
                for e in rd.flatten() {
                    let ft = e
                        .file_type()
                        .map_err(|e| UserError::new("cannot read a folder entry").cause(e))?;
                    let ep = e.path();
                    if ft.is_symlink() {
                        return Err(
                            UserError::new(format!("{} is a symbolic link", ep.display()))
                                .hint("give the file it points to"),
                        );
                    } else if ft.is_dir() {
                        stack.push(ep);
                    } else if let Ok(rel) = ep.strip_prefix(&abs) {
                        out.push((
                            rel.components()
                                .map(|c| c.as_os_str().to_string_lossy())
                                .collect::<Vec<_>>()
                                .join("/"),
                            ep,
                        ));
                    }
                }
            }
        } else {
            let name = abs
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((name, abs));
        }
    }
    out.sort();
    if let Some(w) = out.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(
            UserError::new(format!("two files would both be `{}` in the model", w[0].0))
                .hint("give them from one folder, or rename one"),
        );
    }
    Ok(out)
}

/// A guess at the framework or format from the files' names.
pub fn guess_framework(paths: &[String]) -> Option<String> {
    let has = |ext: &str| paths.iter().any(|p| p.ends_with(ext));
    let named = |n: &str| paths.iter().any(|p| p.rsplit('/').next() == Some(n));
    let g = if has(".safetensors") && named("config.json") {
        "huggingface (safetensors)"
    } else if has(".safetensors") {
        "safetensors"
    } else if has(".gguf") {
        "gguf"
    } else if has(".onnx") {
        "onnx"
    } else if has(".pt") || has(".pth") || has(".ckpt") {
        "pytorch"
    } else if named("saved_model.pb") {
        "tensorflow saved_model"
    } else if has(".h5") || has(".keras") {
        "keras"
    } else if has(".joblib") || has(".pkl") {
        "pickle (scikit-learn?)"
    } else if named("config.json") && has(".bin") {
        "huggingface"
    } else {
        return None;
    };
    Some(g.into())
}
