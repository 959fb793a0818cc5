//! Sharing the registry: remotes are the registry repository's own git remotes (so any URL git
//! reaches works, through the system `git` and the user's own ssh), each with an objects store
//! for the bytes (`remote.NAME.gantry-objects` in the repository's git config).
//!
//! `fetch` brings the remote's branch and tags into `refs/remotes/NAME/…`, then integrates them:
//! a fast-forward where one side is behind; where both moved, the local commits are replayed on
//! top of the remote's (a version added again under its number, an alias change applied to the
//! remote's aliases). Two hosts that moved the same alias differently, or made different versions
//! under one number, are a conflict that names both; nothing is overwritten. `push` sends the
//! objects first, then the branch and the tags; a push that finds the remote moved fetches,
//! replays and tries again.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};
use git2::{ObjectType, Oid};

use super::remote_objects::ObjectStore;
use super::{BRANCH, Manifest, Registry};
use crate::error::UserError;

/// A remote of the registry.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Remote {
    pub name: String,
    pub url: String,
    /// Where the objects go, as given.
    pub objects: Option<String>,
}

pub use crate::domain::model::{SyncState, Where};

/// What a fetch did to the local registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrated {
    UpToDate,
    /// The remote had nothing yet, or only what we have.
    Ahead,
    FastForward,
    /// Local commits replayed on the remote's: how many.
    Replayed(usize),
}

fn objects_key(name: &str) -> String {
    format!("remote.{name}.gantry-objects")
}

fn check_remote_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with(['.', '-']);
    if !ok {
        bail!(
            UserError::new(format!("`{name}` is not a remote name"))
                .hint("use letters, digits, `-`, `_` and `.`, as git does: origin, team, archive")
        );
    }
    Ok(())
}

impl Registry {
    pub fn remotes(&self) -> Result<Vec<Remote>> {
        let cfg = self.repo.config()?;
        let mut out = Vec::new();
        for name in self.repo.remotes()?.iter().flatten().flatten() {
            let r = self.repo.find_remote(name)?;
            out.push(Remote {
                name: name.to_string(),
                url: r.url().unwrap_or("").to_string(),
                objects: cfg.get_string(&objects_key(name)).ok(),
            });
        }
        Ok(out)
    }

    pub fn add_remote(&self, name: &str, url: &str, objects: Option<&str>) -> Result<()> {
        check_remote_name(name)?;
        let _lock = self.lock()?;
        if self.repo.find_remote(name).is_ok() {
            bail!(
                UserError::new(format!("the registry already has a remote `{name}`"))
                    .hint(format!("remove it first: gantry model remote rm {name}"))
            );
        }
        self.repo.remote(name, url)?;
        if let Some(o) = objects {
            self.repo.config()?.set_str(&objects_key(name), o)?;
        }
        Ok(())
    }

    pub fn remove_remote(&self, name: &str) -> Result<()> {
        let _lock = self.lock()?;
        self.repo.remote_delete(name).map_err(|_| {
            UserError::new(format!("the registry has no remote `{name}`"))
                .hint("`gantry model remote ls` lists them")
        })?;
        // The remote's refs went with it; its objects key may linger.
        let _ = self.repo.config()?.remove(&objects_key(name));
        Ok(())
    }

    /// The remote named, else the only one, else `origin`.
    pub fn remote(&self, name: Option<&str>) -> Result<Remote> {
        let all = self.remotes()?;
        let found = match name {
            Some(n) => all.into_iter().find(|r| r.name == n),
            None if all.len() == 1 => all.into_iter().next(),
            None => all.into_iter().find(|r| r.name == "origin"),
        };
        found.ok_or_else(|| {
            UserError::new(match name {
                Some(n) => format!("the registry has no remote `{n}`"),
                None => "the registry has no remote to use".to_string(),
            })
            .hint("add one: gantry model remote add origin GIT_URL --objects DIR")
            .into()
        })
    }

    /// The objects store of a remote, if it has one.
    pub fn object_store(&self, r: &Remote) -> Result<Option<ObjectStore>> {
        let base = self
            .path
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."));
        r.objects
            .as_deref()
            .map(|o| ObjectStore::parse(o, base))
            .transpose()
    }

    /// Run the system `git` on the registry, for what goes over the network (the user's ssh
    /// config, agent and credential helpers apply). Its error output is the error.
    fn git(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.path)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .map_err(|e| {
                UserError::new("cannot run git")
                    .cause(e)
                    .hint("install git: sharing the registry goes through it")
            })?;
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!(GitFailed(text.trim().to_string()));
        }
        Ok(text)
    }

    /// Bring the remote's branch and tags, then integrate them (see the module's doc).
    pub fn fetch(&self, r: &Remote) -> Result<Integrated> {
        let name = &r.name;
        self.git(&[
            "fetch",
            "--no-tags",
            "--prune",
            name,
            &format!("+refs/heads/main:refs/remotes/{name}/main"),
            &format!("+refs/tags/*:refs/remotes/{name}/tags/*"),
        ])
        .map_err(|e| {
            UserError::new(format!(
                "cannot fetch the registry from {} ({})",
                r.name, r.url
            ))
            .cause(format!("{e:#}"))
            .hint("check the URL and that `git ls-remote URL` works from this shell")
        })?;
        self.integrate(name)
    }

    /// Integrate `refs/remotes/NAME/…` into the local branch and tags.
    fn integrate(&self, remote: &str) -> Result<Integrated> {
        let _lock = self.lock()?;
        self.check_clean()?;
        let theirs = self
            .repo
            .find_reference(&format!("refs/remotes/{remote}/main"))
            .ok()
            .and_then(|r| r.target());
        let ours = self.head_tree()?.map(|(c, _)| c.id());
        let how = match (ours, theirs) {
            (_, None) => Integrated::Ahead,
            (Some(o), Some(t)) if o == t => Integrated::UpToDate,
            (None, Some(t)) => {
                self.repo.reference(BRANCH, t, true, "gantry: fetch")?;
                Integrated::FastForward
            }
            (Some(o), Some(t)) if self.repo.graph_descendant_of(o, t)? => Integrated::Ahead,
            (Some(o), Some(t)) if self.repo.graph_descendant_of(t, o)? => {
                self.repo.reference(BRANCH, t, true, "gantry: fetch")?;
                Integrated::FastForward
            }
            (Some(o), Some(t)) => {
                let tags: Vec<(String, Oid)> = self
                    .repo
                    .references_glob("refs/tags/*")?
                    .flatten()
                    .filter_map(|r| Some((r.name().ok()?.to_string(), r.target()?)))
                    .collect();
                let n = self.replay(remote, o, t).inspect_err(|_| {
                    // Back as it was: the local branch and its tags untouched.
                    let _ = self
                        .repo
                        .reference(BRANCH, o, true, "gantry: replay undone");
                    for (name, target) in &tags {
                        let _ = self
                            .repo
                            .reference(name, *target, true, "gantry: replay undone");
                    }
                })?;
                Integrated::Replayed(n)
            }
        };
        self.import_tags(remote)?;
        Ok(how)
    }

    /// The remote's tags that are not here, made here; one that differs from ours is a
    /// conflict (a version is immutable).
    fn import_tags(&self, remote: &str) -> Result<()> {
        let prefix = format!("refs/remotes/{remote}/tags/");
        let mut theirs: Vec<(String, Oid)> = Vec::new();
        for r in self.repo.references_glob(&format!("{prefix}*"))? {
            let r = r?;
            if let (Ok(n), Some(t)) = (r.name(), r.target()) {
                theirs.push((n.trim_start_matches(&prefix).to_string(), t));
            }
        }
        for (tag, target) in theirs {
            let local = format!("refs/tags/{tag}");
            match self.repo.find_reference(&local) {
                Err(_) => {
                    self.repo
                        .reference(&local, target, false, "gantry: fetch")?;
                }
                Ok(mine) if mine.target() == Some(target) => {}
                Ok(mine) => {
                    let (a, b) = (
                        self.tag_manifest(&tag, mine.target())?,
                        self.tag_manifest(&tag, Some(target))?,
                    );
                    if a.as_ref().map(|m| &m.files) != b.as_ref().map(|m| &m.files) {
                        bail!(version_conflict(&tag, remote));
                    }
                }
            }
        }
        Ok(())
    }

    /// The manifest the tag `NAME@vN` (pointing at `target`) names: NAME/model.toml there.
    fn tag_manifest(&self, tag: &str, target: Option<Oid>) -> Result<Option<Manifest>> {
        let Some(t) = target else { return Ok(None) };
        let commit = self.repo.find_object(t, None)?.peel_to_commit()?;
        let Some((name, _)) = tag.rsplit_once("@v") else {
            return Ok(None);
        };
        let Ok(entry) = commit
            .tree()?
            .get_path(Path::new(&format!("{name}/model.toml")))
        else {
            return Ok(None);
        };
        let blob = entry.to_object(&self.repo)?.peel_to_blob()?;
        Ok(toml::from_str(std::str::from_utf8(blob.content())?).ok())
    }

    /// Replay the local commits since the common ancestor on top of `theirs`; returns how many.
    fn replay(&self, remote: &str, ours: Oid, theirs: Oid) -> Result<usize> {
        let base = self.repo.merge_base(ours, theirs)?;
        let mut walk = self.repo.revwalk()?;
        walk.push(ours)?;
        walk.hide(base)?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
        let mine: Vec<Oid> = walk.collect::<Result<_, _>>()?;
        self.repo
            .reference(BRANCH, theirs, true, "gantry: replay onto the remote")?;
        for id in &mine {
            let c = self.repo.find_commit(*id)?;
            let parent = c.parent(0)?.tree()?;
            let tree = c.tree()?;
            let diff = self
                .repo
                .diff_tree_to_tree(Some(&parent), Some(&tree), None)?;
            let mut paths: Vec<String> = Vec::new();
            for d in diff.deltas() {
                if let Some(p) = d.new_file().path().and_then(|p| p.to_str()) {
                    paths.push(p.to_string());
                }
            }
            let sig = c.author().to_owned();
            let msg = c.message().unwrap_or("").to_string();
            for p in paths {
                let Some((name, file)) = p.split_once('/') else {
                    continue;
                };
                let text = |t: &git2::Tree| -> Result<Option<String>> {
                    match t.get_path(Path::new(&p)) {
                        Ok(e) => Ok(Some(
                            String::from_utf8_lossy(
                                e.to_object(&self.repo)?.peel_to_blob()?.content(),
                            )
                            .to_string(),
                        )),
                        Err(_) => Ok(None),
                    }
                };
                match file {
                    "model.toml" => {
                        let Some(content) = text(&tree)? else {
                            continue;
                        };
                        let m: Manifest = toml::from_str(&content)
                            .with_context(|| format!("{p} in commit {id}"))?;
                        let tag = format!("{name}@v{}", m.version);
                        let remote_tag = self
                            .repo
                            .find_reference(&format!("refs/remotes/{remote}/tags/{tag}"))
                            .ok()
                            .and_then(|r| r.target());
                        if remote_tag.is_some() {
                            let theirs = self.tag_manifest(&tag, remote_tag)?;
                            if theirs.as_ref().map(|t| &t.files) == Some(&m.files) {
                                continue;
                            }
                            bail!(version_conflict(&tag, remote));
                        }
                        let oid = self.commit_with(&[(p.clone(), content)], &msg, &sig)?;
                        // The tag follows its version to the replayed commit.
                        let obj = self.repo.find_object(oid, Some(ObjectType::Commit))?;
                        let tagger = self
                            .repo
                            .find_reference(&format!("refs/tags/{tag}"))
                            .ok()
                            .and_then(|r| r.peel_to_tag().ok())
                            .and_then(|t| t.tagger().map(|s| s.to_owned()))
                            .unwrap_or_else(|| sig.clone());
                        self.repo.tag(&tag, &obj, &tagger, &msg, true)?;
                    }
                    "aliases.toml" => {
                        let read = |s: Option<String>| -> BTreeMap<String, u32> {
                            s.and_then(|t| toml::from_str(&t).ok()).unwrap_or_default()
                        };
                        let before = read(text(&parent)?);
                        let after = read(text(&tree)?);
                        let mut now = self.aliases(name)?;
                        let keys: Vec<&String> = before.keys().chain(after.keys()).collect();
                        for k in keys {
                            let (b, a, n) = (before.get(k), after.get(k), now.get(k).copied());
                            if b == a {
                                continue;
                            }
                            // The remote moved it too, elsewhere: both are named.
                            if n.as_ref() != b && n.as_ref() != a {
                                bail!(
                                    UserError::new(format!(
                                        "alias {name}@{k}: this registry moved it to {} and {remote} to {}",
                                        a.map_or("nothing".into(), |v| format!("v{v}")),
                                        n.map_or("nothing".into(), |v| format!("v{v}")),
                                    ))
                                    .hint(format!(
                                        "choose one and promote it again: gantry model promote {name}@vN {k}"
                                    ))
                                );
                            }
                            match a {
                                Some(v) => now.insert(k.clone(), *v),
                                None => now.remove(k),
                            };
                        }
                        self.commit_with(&[(p.clone(), toml::to_string(&now)?)], &msg, &sig)?;
                    }
                    _ => {}
                }
            }
        }
        Ok(mine.len())
    }

    /// Push the branch and every tag to the remote, after sending the objects of every version
    /// its objects store lacks. A remote that moved meanwhile is fetched, replayed onto and
    /// pushed again (three tries). Returns how many objects were sent.
    pub fn push(
        &self,
        r: &Remote,
        only: Option<&Manifest>,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<usize> {
        let store = self.object_store(r)?;
        let versions: Vec<Manifest> = match only {
            Some(m) => vec![m.clone()],
            None => self.all_versions()?,
        };
        let sent = match &store {
            Some(store) => self.send_objects(store, &versions, progress)?,
            None => 0,
        };
        for attempt in 0..3 {
            let mut args = vec![
                "push".to_string(),
                "--porcelain".to_string(),
                r.name.clone(),
                format!("{BRANCH}:{BRANCH}"),
            ];
            // A version's tag goes where its files are (or with no objects store, everywhere).
            let all = self.all_versions()?;
            let held = match &store {
                Some(s) => Some(s.which(&hashes_of(&all))?),
                None => None,
            };
            for m in all {
                let there = held
                    .as_ref()
                    .is_none_or(|h| m.files.iter().all(|f| h.contains(&f.blake3)));
                if there {
                    let t = format!("{}@v{}", m.name, m.version);
                    args.push(format!("refs/tags/{t}:refs/tags/{t}"));
                }
            }
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            match self.git(&argv) {
                Ok(_) => {
                    // The remote's refs as they now are, so what is where reads true.
                    self.fetch(r)?;
                    return Ok(sent);
                }
                Err(e) => {
                    let text = format!("{e:#}");
                    let moved = text.contains("non-fast-forward") || text.contains("fetch first");
                    if text.contains("already exists") {
                        let tag = text
                            .lines()
                            .find(|l| l.contains("already exists"))
                            .and_then(|l| l.split("refs/tags/").nth(1))
                            .and_then(|t| t.split(':').next())
                            .unwrap_or("a version");
                        bail!(version_conflict(tag, &r.name));
                    }
                    if !moved || attempt == 2 {
                        bail!(
                            UserError::new(format!(
                                "cannot push the registry to {} ({})",
                                r.name, r.url
                            ))
                            .cause(text)
                            .hint(
                                "check that the remote is writable: git push works from this shell"
                            )
                        );
                    }
                    self.fetch(r)?;
                }
            }
        }
        Err(anyhow!("push gave up"))
    }

    /// Every version of every model.
    fn all_versions(&self) -> Result<Vec<Manifest>> {
        let mut out = Vec::new();
        for m in self.models()? {
            out.extend(self.versions(&m.name)?);
        }
        Ok(out)
    }

    /// The objects of `versions` that the store lacks, sent (four at a time).
    fn send_objects(
        &self,
        store: &ObjectStore,
        versions: &[Manifest],
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<usize> {
        let mut want: Vec<(String, u64)> = Vec::new();
        let held = store.which(&hashes_of(versions))?;
        for v in versions {
            for f in &v.files {
                if !want.iter().any(|(h, _)| *h == f.blake3) && !held.contains(&f.blake3) {
                    if !self.objects.contains(&f.blake3) {
                        bail!(
                            UserError::new(format!(
                                "{} of {}@v{} is not in this workspace's object store",
                                f.path, v.name, v.version
                            ))
                            .hint(format!(
                                "pull it first (gantry model pull {}@v{}), or push from a workspace that has it",
                                v.name, v.version
                            ))
                        );
                    }
                    want.push((f.blake3.clone(), f.size));
                }
            }
        }
        let objects = &self.objects;
        let errors = four_at_a_time(&want, progress, &|h, tick| store.put(objects, h, tick));
        if let Some(first) = errors.first() {
            bail!("{first} ({} objects failed)", errors.len());
        }
        Ok(want.len())
    }

    /// Bring the objects of these versions that are not here, from the remote's store (four at
    /// a time, each verified on arrival). Returns how many came.
    pub fn get_objects(
        &self,
        r: &Remote,
        versions: &[Manifest],
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<usize> {
        let mut want: Vec<(String, u64)> = Vec::new();
        for v in versions {
            for f in &v.files {
                if !self.objects.contains(&f.blake3) && !want.iter().any(|(h, _)| *h == f.blake3) {
                    want.push((f.blake3.clone(), f.size));
                }
            }
        }
        if want.is_empty() {
            return Ok(0);
        }
        let Some(store) = self.object_store(r)? else {
            bail!(
                UserError::new(format!("the remote {} has no objects store", r.name))
                    .hint(format!(
                        "set one: gantry model remote rm {0} && gantry model remote add {0} {1} --objects DIR",
                        r.name, r.url
                    ))
            );
        };
        let objects = &self.objects;
        let errors = four_at_a_time(&want, progress, &|h, tick| store.get(objects, h, tick));
        if let Some(first) = errors.first() {
            bail!(UserError::new(first.clone()).hint(format!(
                "{} of {} objects failed; what arrived is kept, and pulling again brings the rest",
                errors.len(),
                want.len()
            )));
        }
        Ok(want.len())
    }

    /// A model against its remote (the only one, else `origin`), as of the last fetch; None
    /// without a remote.
    pub fn sync_state(&self, name: &str) -> Result<Option<SyncState>> {
        let Ok(r) = self.remote(None) else {
            return Ok(None);
        };
        let theirs = self
            .repo
            .find_reference(&format!("refs/remotes/{}/main", r.name))
            .ok()
            .and_then(|x| x.target());
        let ours = self.head_tree()?.map(|(c, _)| c.id());
        let (ahead, behind) = match (ours, theirs) {
            (Some(o), Some(t)) => self.repo.graph_ahead_behind(o, t)?,
            (Some(o), None) => {
                let mut walk = self.repo.revwalk()?;
                walk.push(o)?;
                (walk.count(), 0)
            }
            _ => (0, 0),
        };
        let mut versions = BTreeMap::new();
        for m in self.versions(name)? {
            let here = m.files.iter().all(|f| self.objects.contains(&f.blake3));
            let there = self
                .repo
                .find_reference(&format!(
                    "refs/remotes/{}/tags/{}@v{}",
                    r.name, m.name, m.version
                ))
                .is_ok();
            let w = match (here, there) {
                (true, true) => Where::Both,
                (true, false) => Where::Local,
                (false, _) => Where::Remote,
            };
            versions.insert(m.version, w);
        }
        Ok(Some(SyncState {
            remote: r.name,
            fetched: theirs.is_some(),
            ahead,
            behind,
            versions,
        }))
    }

    /// Local objects that versions refer to and the remote's store also holds: (hash, size).
    pub fn held_remotely(&self, r: &Remote) -> Result<Vec<(String, u64)>> {
        let Some(store) = self.object_store(r)? else {
            bail!(
                UserError::new(format!("the remote {} has no objects store", r.name))
                    .hint("--local-only frees files a remote's store holds; this one holds none")
            );
        };
        let all = self.all_versions()?;
        let local: Vec<(String, u64)> = hashes_of(&all)
            .into_iter()
            .filter(|(h, _)| self.objects.contains(h))
            .collect();
        let there = store.which(&local)?;
        Ok(local
            .into_iter()
            .filter(|(h, _)| there.contains(h))
            .collect())
    }

    /// The objects of a version not in the local store, brought from the first remote whose
    /// store has them all (`checkout` of a version only the remote holds).
    pub fn get_missing(&self, m: &Manifest) -> Result<bool> {
        if m.files.iter().all(|f| self.objects.contains(&f.blake3)) {
            return Ok(false);
        }
        for r in self.remotes()? {
            let Ok(Some(store)) = self.object_store(&r) else {
                continue;
            };
            let Ok(held) = store.which(&hashes_of(std::slice::from_ref(m))) else {
                continue;
            };
            if m.files
                .iter()
                .all(|f| self.objects.contains(&f.blake3) || held.contains(&f.blake3))
            {
                self.get_objects(&r, std::slice::from_ref(m), &|_, _| {})?;
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// One object's transfer: its hash, and where to count its bytes.
type Transfer<'a> = dyn Fn(&str, &dyn Fn(u64)) -> Result<()> + Sync + 'a;

/// Run `op` on each of `want` (hash, size), four at a time, reporting (bytes done, bytes in all)
/// to `progress`. Returns the errors, for a person.
fn four_at_a_time(
    want: &[(String, u64)],
    progress: &(dyn Fn(u64, u64) + Sync),
    op: &Transfer<'_>,
) -> Vec<String> {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    let total: u64 = want.iter().map(|(_, n)| n).sum();
    let done = AtomicU64::new(0);
    progress(0, total);
    let next = AtomicUsize::new(0);
    let errors = std::sync::Mutex::new(Vec::<String>::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while let Some((h, _)) = want.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let tick = |n: u64| progress(done.fetch_add(n, Ordering::SeqCst) + n, total);
                    if let Err(e) = op(h, &tick)
                        && let Ok(mut v) = errors.lock()
                    {
                        v.push(format!("{e:#}"));
                    }
                }
            });
        }
    });
    errors.into_inner().unwrap_or_default()
}

/// Every file of `versions` as (hash, size), once each.
fn hashes_of(versions: &[Manifest]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = versions
        .iter()
        .flat_map(|m| m.files.iter().map(|f| (f.blake3.clone(), f.size)))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// A git command's failure, its output as the message.
#[derive(Debug)]
struct GitFailed(String);

impl std::fmt::Display for GitFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "git: {}", self.0)
    }
}

impl std::error::Error for GitFailed {}

fn version_conflict(tag: &str, remote: &str) -> UserError {
    UserError::new(format!(
        "{tag} is a different version on {remote}: a version is never replaced"
    ))
    .hint(format!(
        "both registries made {tag}. Keep theirs: fetch, then register your files again (they \
         become the next version) after `git -C .gantry/registry tag -d {tag}`"
    ))
}
