//! The model registry: a bare git repository at `.gantry/registry` (readable with the git CLI) and
//! content-addressed files at `.gantry/objects`. Each version is a commit that adds or updates
//! `NAME/model.toml` (the manifest: files with sizes and blake3 hashes, the run, its code commit,
//! params and final metrics), tagged `NAME@vN`. Aliases live in `NAME/aliases.toml` and move by
//! commits, so `git log` says who promoted what, when and why. Writers take a file lock, so two
//! processes adding at once get two versions.

mod files;
pub mod objects;
mod register;
pub mod remote;
pub mod remote_objects;
mod s3;

pub use files::{RUN_FILES, collect_files, guess_framework};
pub use register::{chain, lineage, register, run_ref};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use git2::{ObjectType, Repository, RepositoryInitOptions, Signature};

pub use crate::domain::model::{check_alias, check_name};
pub use crate::domain::{FileEntry, LogEntry, Manifest, ModelSummary, Problem, RunRef};
use crate::error::UserError;
use objects::Objects;

pub const BRANCH: &str = "refs/heads/main";

/// What `Registry::add` registers: files as (path in the model, file on disk), the run they came
/// from, notes, the author, and whether to share the files' bytes by hard link.
#[derive(Debug, Clone, Default)]
pub struct NewVersion {
    pub name: String,
    pub files: Vec<(String, PathBuf)>,
    pub run: Option<RunRef>,
    /// The version it was made from, "NAME@vN" (checked to exist).
    pub from: Option<String>,
    pub notes: String,
    pub author: String,
    pub hard_link: bool,
}

pub struct Registry {
    repo: Repository,
    pub objects: Objects,
    lock_path: PathBuf,
    path: PathBuf,
}

/// What `spec` means: `NAME`, `NAME@vN`, `NAME@N` or `NAME@alias`.
fn split_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once('@') {
        Some((n, r)) => (n, Some(r)),
        None => (spec, None),
    }
}

impl Registry {
    /// Open the registry of a workspace (`.gantry/`), creating it on first use.
    pub fn open(gantry_dir: &Path) -> Result<Registry> {
        let path = gantry_dir.join("registry");
        let lock_path = gantry_dir.join("registry.lock");
        if !path.exists() {
            // Made under the lock, in a temporary folder renamed into place: another process sees
            // no registry or a whole one, never one half made.
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)?;
            lock.lock().context("locking the registry")?;
            if !path.exists() {
                let tmp = gantry_dir.join(format!("registry.tmp-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&tmp);
                let mut opts = RepositoryInitOptions::new();
                opts.bare(true).initial_head("main");
                Repository::init_opts(&tmp, &opts)
                    .with_context(|| format!("creating {}", tmp.display()))?;
                std::fs::rename(&tmp, &path)
                    .with_context(|| format!("creating {}", path.display()))?;
            }
        }
        let repo = Repository::open(&path).map_err(|e| {
            UserError::new(format!(
                "{} is not a readable git repository",
                path.display()
            ))
            .cause(e)
            .hint("move it aside to start a new registry, or restore it (git -C it fsck)")
        })?;
        Ok(Registry {
            repo,
            objects: Objects::new(gantry_dir.join("objects")),
            lock_path,
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> Result<std::fs::File> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)?;
        f.lock().context("locking the registry")?;
        Ok(f)
    }

    /// A registry cloned with a working tree must not hold edits we would silently bury.
    fn check_clean(&self) -> Result<()> {
        if self.repo.is_bare() {
            return Ok(());
        }
        let mut o = git2::StatusOptions::new();
        o.include_untracked(true);
        if !self.repo.statuses(Some(&mut o))?.is_empty() {
            return Err(UserError::new(format!(
                "the registry {} has uncommitted edits",
                self.path.display()
            ))
            .hint(format!(
                "look with `git -C {} status`, then commit or discard them",
                self.path.display()
            ))
            .into());
        }
        Ok(())
    }

    fn head_tree(&self) -> Result<Option<(git2::Commit<'_>, git2::Tree<'_>)>> {
        match self.repo.find_reference(BRANCH) {
            Ok(r) => {
                let c = r.peel_to_commit()?;
                let t = c.tree()?;
                Ok(Some((c, t)))
            }
            Err(_) => Ok(None),
        }
    }

    /// Commit `files` (path within the repo, content) on the branch. Returns the commit id.
    fn commit(&self, files: &[(String, String)], message: &str, author: &str) -> Result<git2::Oid> {
        self.commit_with(files, message, &signature(author)?)
    }

    /// `commit`, by `sig` (a commit replayed keeps its author and time).
    fn commit_with(
        &self,
        files: &[(String, String)],
        message: &str,
        sig: &Signature,
    ) -> Result<git2::Oid> {
        let head = self.head_tree()?;
        let mut root = self.repo.treebuilder(head.as_ref().map(|(_, t)| t))?;
        // Group by top folder (NAME/…): one subtree each.
        let mut by_dir: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for (p, c) in files {
            let (dir, file) = p
                .split_once('/')
                .ok_or_else(|| anyhow!("registry paths are NAME/file"))?;
            by_dir.entry(dir).or_default().push((file, c));
        }
        for (dir, entries) in by_dir {
            let existing = head
                .as_ref()
                .and_then(|(_, t)| t.get_name(dir))
                .and_then(|e| e.to_object(&self.repo).ok())
                .and_then(|o| o.into_tree().ok());
            let mut sub = self.repo.treebuilder(existing.as_ref())?;
            for (file, content) in entries {
                let blob = self.repo.blob(content.as_bytes())?;
                sub.insert(file, blob, 0o100644)?;
            }
            let sub_id = sub.write()?;
            root.insert(dir, sub_id, 0o040000)?;
        }
        let tree = self.repo.find_tree(root.write()?)?;
        let parents: Vec<&git2::Commit> = head.as_ref().map(|(c, _)| vec![c]).unwrap_or_default();
        Ok(self
            .repo
            .commit(Some(BRANCH), sig, sig, message, &tree, &parents)?)
    }

    fn version_tags(&self, name: &str) -> Result<Vec<u32>> {
        let mut v: Vec<u32> = self
            .repo
            .tag_names(Some(&format!("{name}@v*")))?
            .iter()
            .flatten()
            .filter_map(|t| t.and_then(|t| t.strip_prefix(&format!("{name}@v"))?.parse().ok()))
            .collect();
        v.sort_unstable();
        Ok(v)
    }

    /// Register files as the next version of a model; every file is hashed before anything is
    /// written.
    pub fn add(&self, req: &NewVersion, progress: &dyn Fn(u64)) -> Result<Manifest> {
        let NewVersion {
            name,
            files,
            run,
            from,
            notes,
            author,
            hard_link,
        } = req;
        let (name, notes, author, hard_link) =
            (name.as_str(), notes.as_str(), author.as_str(), *hard_link);
        let run = run.clone();
        check_name(name)?;
        if files.is_empty() {
            bail!(
                UserError::new("no files to register")
                    .hint("give files or folders: gantry model add NAME PATH...")
            );
        }
        let mut entries = Vec::new();
        for (rel, abs) in files {
            let (hash, size) = objects::hash_file(abs, progress).map_err(|e| {
                UserError::new(format!("cannot read {}", abs.display()))
                    .cause(e)
                    .hint("check the file exists and is readable")
            })?;
            entries.push((
                FileEntry {
                    path: rel.clone(),
                    size,
                    blake3: hash,
                },
                abs,
            ));
        }
        let _lock = self.lock()?;
        self.check_clean()?;
        let version = self.version_tags(name)?.last().copied().unwrap_or(0) + 1;
        for (e, abs) in &entries {
            self.objects
                .put(abs, &e.blake3, hard_link)
                .map_err(|err| -> anyhow::Error {
                    if err.kind() == std::io::ErrorKind::InvalidData {
                        UserError::new(format!("cannot register {name}: {err}"))
                            .hint("wait until the file is written in full (a checkpoint may still be saving), then add it again; nothing was registered")
                            .into()
                    } else {
                        anyhow::Error::from(err).context(format!("storing {}", abs.display()))
                    }
                })?;
        }
        let paths: Vec<String> = entries.iter().map(|(e, _)| e.path.clone()).collect();
        let manifest = Manifest {
            name: name.into(),
            version,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            author: author.into(),
            notes: notes.into(),
            framework: guess_framework(&paths),
            run,
            from: from.clone(),
            files: entries.into_iter().map(|(e, _)| e).collect(),
        };
        let text = toml::to_string_pretty(&manifest)?;
        let msg = if notes.is_empty() {
            format!("add {name}@v{version}")
        } else {
            format!("add {name}@v{version}: {notes}")
        };
        let before = self.head_tree()?.map(|(c, _)| c.id());
        let oid = self.commit(&[(format!("{name}/model.toml"), text)], &msg, author)?;
        let tagged = (|| -> Result<()> {
            let obj = self.repo.find_object(oid, Some(ObjectType::Commit))?;
            self.repo.tag(
                &format!("{name}@v{version}"),
                &obj,
                &signature(author)?,
                &msg,
                false,
            )?;
            Ok(())
        })();
        if let Err(e) = tagged {
            // A version without its tag is not registered: take the commit back.
            let undo = match before {
                Some(prev) => self
                    .repo
                    .reference(BRANCH, prev, true, "gantry: undo a failed model add")
                    .map(|_| ()),
                None => self
                    .repo
                    .find_reference(BRANCH)
                    .and_then(|mut r| r.delete()),
            };
            if let Err(u) = undo {
                tracing::error!("undoing the commit of {name}@v{version}: {u}");
            }
            return Err(e.context(format!("tagging {name}@v{version}; nothing was registered")));
        }
        Ok(manifest)
    }

    /// The manifest of one version.
    pub fn manifest(&self, name: &str, version: u32) -> Result<Manifest> {
        let tag = format!("{name}@v{version}");
        let commit = self
            .repo
            .revparse_single(&format!("refs/tags/{tag}"))
            .map_err(|_| {
                UserError::new(format!("{name} has no version {version}"))
                    .hint(format!("`gantry model show {name}` lists its versions"))
            })?
            .peel_to_commit()?;
        let entry = commit
            .tree()?
            .get_path(Path::new(&format!("{name}/model.toml")))
            .map_err(|_| {
                UserError::new(format!("the registry's {tag} has no {name}/model.toml"))
                    .hint("the registry was edited by hand; check `git log` in it")
            })?;
        let blob = entry.to_object(&self.repo)?.peel_to_blob()?;
        let text = std::str::from_utf8(blob.content()).context("model.toml is not UTF-8")?;
        toml::from_str(text).map_err(|e| {
            UserError::new(format!("{tag}:{name}/model.toml cannot be read"))
                .cause(e.message())
                .hint("the registry was edited by hand; restore the file from git history")
                .into()
        })
    }

    /// The commit of a version (its tag's target).
    pub fn commit_of(&self, name: &str, version: u32) -> Result<String> {
        Ok(self
            .repo
            .revparse_single(&format!("refs/tags/{name}@v{version}"))?
            .peel_to_commit()?
            .id()
            .to_string())
    }

    pub fn versions(&self, name: &str) -> Result<Vec<Manifest>> {
        self.version_tags(name)?
            .into_iter()
            .map(|v| self.manifest(name, v))
            .collect()
    }

    pub fn aliases(&self, name: &str) -> Result<BTreeMap<String, u32>> {
        let Some((_, tree)) = self.head_tree()? else {
            return Ok(BTreeMap::new());
        };
        let Ok(entry) = tree.get_path(Path::new(&format!("{name}/aliases.toml"))) else {
            return Ok(BTreeMap::new());
        };
        let blob = entry.to_object(&self.repo)?.peel_to_blob()?;
        toml::from_str(std::str::from_utf8(blob.content())?).map_err(|e| {
            UserError::new(format!("{name}/aliases.toml cannot be read"))
                .cause(e.message())
                .hint("the registry was edited by hand")
                .into()
        })
    }

    pub fn models(&self) -> Result<Vec<ModelSummary>> {
        let Some((_, tree)) = self.head_tree()? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for e in tree.iter() {
            let Ok(name) = e.name() else { continue };
            if e.kind() != Some(ObjectType::Tree) {
                continue;
            }
            let versions = self.version_tags(name)?;
            let Some(&latest) = versions.last() else {
                continue;
            };
            out.push(ModelSummary {
                name: name.into(),
                latest,
                versions: versions.len(),
                aliases: self.aliases(name)?,
            });
        }
        Ok(out)
    }

    /// `NAME`, `NAME@vN` (or `NAME@N`), or `NAME@alias` to a manifest. A bare NAME is the latest.
    pub fn resolve(&self, spec: &str) -> Result<Manifest> {
        let (name, r) = split_spec(spec);
        check_name(name)?;
        let versions = self.version_tags(name)?;
        if versions.is_empty() {
            let known: Vec<String> = self.models()?.into_iter().map(|m| m.name).collect();
            bail!(
                UserError::new(format!("no model named `{name}`")).hint(if known.is_empty() {
                    "register one with: gantry model add NAME PATH...".to_string()
                } else {
                    format!("models here: {}", known.join(", "))
                })
            );
        }
        let version = match r {
            None | Some("latest") => *versions.last().expect("not empty"),
            Some(r) => {
                let num = r.strip_prefix('v').unwrap_or(r);
                match num.parse::<u32>() {
                    Ok(v) => v,
                    Err(_) => *self.aliases(name)?.get(r).ok_or_else(|| {
                        UserError::new(format!("{name} has no version or alias `{r}`"))
                            .hint(format!("`gantry model show {name}` lists them"))
                    })?,
                }
            }
        };
        self.manifest(name, version)
    }

    /// Point `alias` at a version, by a commit whose message says why.
    pub fn promote(
        &self,
        name: &str,
        version: u32,
        alias: &str,
        reason: &str,
        author: &str,
    ) -> Result<()> {
        check_alias(alias)?;
        let _lock = self.lock()?;
        self.check_clean()?;
        self.manifest(name, version)?;
        let mut aliases = self.aliases(name)?;
        aliases.insert(alias.into(), version);
        let msg = if reason.is_empty() {
            format!("promote {name}@v{version} to {alias}")
        } else {
            format!("promote {name}@v{version} to {alias}: {reason}")
        };
        self.commit(
            &[(format!("{name}/aliases.toml"), toml::to_string(&aliases)?)],
            &msg,
            author,
        )?;
        Ok(())
    }

    /// Commits that touched a model, newest first.
    pub fn log(&self, name: &str) -> Result<Vec<LogEntry>> {
        let Some((head, _)) = self.head_tree()? else {
            return Ok(Vec::new());
        };
        let mut walk = self.repo.revwalk()?;
        walk.push(head.id())?;
        let mut out = Vec::new();
        for oid in walk {
            let c = self.repo.find_commit(oid?)?;
            let now = c.tree()?.get_name(name).map(|e| e.id());
            let before = c
                .parent(0)
                .ok()
                .and_then(|p| p.tree().ok())
                .and_then(|t| t.get_name(name).map(|e| e.id()));
            if now.is_some() && now != before {
                out.push(LogEntry {
                    commit: c.id().to_string(),
                    time: c.time().seconds(),
                    author: c.author().name().unwrap_or("").to_string(),
                    message: c.message().unwrap_or("").trim().to_string(),
                });
            }
        }
        Ok(out)
    }

    /// Every version of every model (or of one), checked against its objects.
    pub fn verify(&self, only: Option<&str>) -> Result<(usize, Vec<Problem>)> {
        let mut checked = 0;
        let mut problems = Vec::new();
        let mut seen: BTreeMap<String, Option<bool>> = BTreeMap::new();
        for m in self.models()? {
            if only.is_some_and(|o| o != m.name) {
                continue;
            }
            for v in self.versions(&m.name)? {
                for f in &v.files {
                    checked += 1;
                    let ok = *seen
                        .entry(f.blake3.clone())
                        .or_insert_with(|| self.objects.verify(&f.blake3).ok());
                    let problem = match ok {
                        Some(true) => continue,
                        Some(false) => "corrupt",
                        None => "missing",
                    };
                    problems.push(Problem {
                        model: m.name.clone(),
                        version: v.version,
                        path: f.path.clone(),
                        blake3: f.blake3.clone(),
                        problem,
                    });
                }
            }
        }
        if let Some(o) = only
            && !self.models()?.iter().any(|m| m.name == o)
        {
            bail!(
                UserError::new(format!("no model named `{o}`"))
                    .hint("`gantry model ls` lists the models")
            );
        }
        // Not here but in a remote's store (fetched, or freed by `gc --local-only`): not lost.
        let mut missing: Vec<(String, u64)> = Vec::new();
        for p in problems.iter().filter(|p| p.problem == "missing") {
            let size = self
                .versions(&p.model)?
                .iter()
                .flat_map(|v| v.files.iter())
                .find(|f| f.blake3 == p.blake3)
                .map_or(0, |f| f.size);
            missing.push((p.blake3.clone(), size));
        }
        if !missing.is_empty() {
            let mut held = std::collections::HashSet::new();
            for r in self.remotes()? {
                if let Ok(Some(store)) = self.object_store(&r)
                    && let Ok(h) = store.which(&missing)
                {
                    held.extend(h);
                }
            }
            problems.retain(|p| p.problem != "missing" || !held.contains(&p.blake3));
        }
        Ok((checked, problems))
    }

    /// Objects no version of any model refers to.
    pub fn unreferenced(&self) -> Result<Vec<(String, u64)>> {
        let mut used = BTreeSet::new();
        for m in self.models()? {
            for v in self.versions(&m.name)? {
                used.extend(v.files.into_iter().map(|f| f.blake3));
            }
        }
        Ok(self
            .objects
            .all()?
            .into_iter()
            .filter(|h| !used.contains(h))
            .map(|h| {
                let n = std::fs::metadata(self.objects.path(&h))
                    .map(|m| m.len())
                    .unwrap_or(0);
                (h, n)
            })
            .collect())
    }

    /// Write a version's files under `to`, each verified against its hash. Objects only a
    /// remote holds are brought first.
    pub fn checkout(&self, m: &Manifest, to: &Path, progress: &dyn Fn(u64)) -> Result<()> {
        self.get_missing(m)?;
        for f in &m.files {
            let rel = Path::new(&f.path);
            if rel.is_absolute()
                || rel
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                bail!(
                    UserError::new(format!(
                        "{}@v{} lists an unsafe path `{}`",
                        m.name, m.version, f.path
                    ))
                    .hint("the registry was edited by hand")
                );
            }
            if !self.objects.contains(&f.blake3) {
                bail!(
                    UserError::new(format!(
                        "{} of {}@v{} is missing from the object store",
                        f.path, m.name, m.version
                    ))
                    .hint("`gantry model verify` lists what is missing")
                );
            }
            self.objects.checkout(&f.blake3, &to.join(rel), progress).map_err(|e| {
                UserError::new(format!("refusing to check out {} of {}@v{}", f.path, m.name, m.version))
                    .cause(e)
                    .hint("the stored object does not match its hash; `gantry model verify` lists the damage")
            })?;
        }
        Ok(())
    }
}

fn signature(author: &str) -> Result<Signature<'static>> {
    let host = crate::host::hostname();
    let name = if author.is_empty() { "gantry" } else { author };
    Ok(Signature::now(name, &format!("{name}@{host}"))?)
}
