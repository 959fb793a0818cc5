//! The code's git state at run start, through libgit2: commit, branch, dirty flag, and the
//! uncommitted diff of tracked files (saved beside the run as git.diff).

use std::path::Path;

use git2::{DiffFormat, Repository, StatusOptions};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GitInfo {
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub dirty: bool,
    /// The patch of tracked changes against HEAD; empty when clean.
    pub diff: String,
}

/// The git state of the repository holding `dir`, or None outside any repository.
pub fn inspect(dir: &Path) -> Option<GitInfo> {
    let repo = Repository::discover(dir).ok()?;
    let mut info = GitInfo::default();
    let head = repo.head().ok();
    if let Some(h) = &head {
        info.commit = h.peel_to_commit().ok().map(|c| c.id().to_string());
        info.branch = if repo.head_detached().unwrap_or(false) {
            None
        } else {
            h.shorthand().ok().map(str::to_string)
        };
    }
    let mut opts = StatusOptions::new();
    opts.include_untracked(false).include_ignored(false);
    info.dirty = repo
        .statuses(Some(&mut opts))
        .map(|s| !s.is_empty())
        .unwrap_or(false);
    if info.dirty {
        let tree = head.and_then(|h| h.peel_to_tree().ok());
        if let Ok(diff) = repo.diff_tree_to_workdir_with_index(tree.as_ref(), None) {
            let mut out = Vec::new();
            let _ = diff.print(DiffFormat::Patch, |_, _, line| {
                if matches!(line.origin(), '+' | '-' | ' ') {
                    out.push(line.origin() as u8);
                }
                out.extend_from_slice(line.content());
                true
            });
            info.diff = String::from_utf8_lossy(&out).into_owned();
        }
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) {
        let st = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(dir)
            .output()
            .expect("git");
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
    }

    #[test]
    fn commit_branch_dirty_and_diff_agree_with_git() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(inspect(t.path()), None, "not a repository");
        git(t.path(), &["init", "-q"]);
        std::fs::write(t.path().join("train.py"), "lr = 0.1\n").unwrap();
        git(t.path(), &["add", "."]);
        git(t.path(), &["commit", "-qm", "first"]);
        let sub = t.path().join("src");
        std::fs::create_dir_all(&sub).unwrap();
        let clean = inspect(&sub).unwrap();
        let head = Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(t.path())
            .output()
            .unwrap();
        assert_eq!(
            clean.commit.as_deref(),
            Some(String::from_utf8_lossy(&head.stdout).trim())
        );
        assert_eq!(clean.branch.as_deref(), Some("main"));
        assert!(!clean.dirty && clean.diff.is_empty());
        std::fs::write(t.path().join("scratch.txt"), "untracked").unwrap();
        assert!(
            !inspect(t.path()).unwrap().dirty,
            "untracked files do not make it dirty"
        );
        std::fs::write(t.path().join("train.py"), "lr = 0.3\n").unwrap();
        let dirty = inspect(t.path()).unwrap();
        assert!(dirty.dirty);
        assert!(
            dirty.diff.contains("-lr = 0.1\n+lr = 0.3\n"),
            "{}",
            dirty.diff
        );
        // git apply --check accepts the saved diff in reverse: it is a real patch.
        std::fs::write(t.path().join("p.diff"), &dirty.diff).unwrap();
        git(t.path(), &["apply", "--check", "-R", "p.diff"]);
    }
}
