//! Where a remote keeps the objects' bytes: a directory (a shared mount, `file://`), laid out as
//! the local store is (`ab/cdef…`, named by blake3). Each object is written through a temporary
//! name and a rename, so it is whole or absent; one that is there is never sent again, so a push
//! or pull that was interrupted goes on where it stopped. What arrives is hashed on the way in and
//! refused, by name, when it does not match.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::objects::Objects;
use crate::error::UserError;

/// An objects remote.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectStore {
    Dir(PathBuf),
}

/// Read and write in pieces of this size.
const CHUNK: usize = 1 << 20;

impl ObjectStore {
    /// The store a URL names: a path or `file://PATH` (relative paths are taken from `base`,
    /// the workspace).
    pub fn parse(url: &str, base: &Path) -> Result<ObjectStore> {
        if let Some(p) = url.strip_prefix("file://") {
            return Ok(ObjectStore::Dir(PathBuf::from(p)));
        }
        if url.contains("://") {
            let scheme = url.split("://").next().unwrap_or("");
            bail!(
                UserError::new(format!("objects URL {url}: `{scheme}://` is not supported"))
                    .hint("give a directory (a shared mount) or file://PATH")
            );
        }
        let p = Path::new(url);
        Ok(ObjectStore::Dir(if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }))
    }

    pub fn describe(&self) -> String {
        match self {
            ObjectStore::Dir(p) => p.display().to_string(),
        }
    }

    fn path(&self, hash: &str) -> PathBuf {
        match self {
            ObjectStore::Dir(root) => {
                let (a, b) = hash.split_at(2.min(hash.len()));
                root.join(a).join(b)
            }
        }
    }

    /// Whether the remote holds the object.
    pub fn has(&self, hash: &str) -> bool {
        self.path(hash).is_file()
    }

    /// Send a local object (already verified by its store). `progress(bytes)` as it goes.
    pub fn put(&self, local: &Objects, hash: &str, progress: &dyn Fn(u64)) -> Result<()> {
        let dest = self.path(hash);
        if dest.is_file() {
            return Ok(());
        }
        let dir = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| {
            UserError::new(format!(
                "cannot write to the objects remote {}",
                dir.display()
            ))
            .cause(e)
            .hint("check that the directory is mounted and writable")
        })?;
        let tmp = dir.join(format!(
            ".{}.part-{}",
            &hash[2.min(hash.len())..],
            std::process::id()
        ));
        let got = copy_hashing(&local.path(hash), &tmp, progress)?;
        if got != hash {
            let _ = std::fs::remove_file(&tmp);
            bail!(
                UserError::new(format!("the local object {hash} does not match its hash"))
                    .hint("`gantry model verify` lists the damage; nothing was sent")
            );
        }
        std::fs::rename(&tmp, &dest)?;
        Ok(())
    }

    /// Bring an object into the local store, verified on arrival: one that does not match its
    /// hash is refused (and the local store left as it was).
    pub fn get(&self, local: &Objects, hash: &str, progress: &dyn Fn(u64)) -> Result<()> {
        if local.contains(hash) {
            return Ok(());
        }
        let src = self.path(hash);
        if !src.is_file() {
            bail!(
                UserError::new(format!(
                    "the objects remote {} has no object {hash}",
                    self.describe()
                ))
                .hint("push it from a workspace that has it: gantry model push")
            );
        }
        let dest = local.path(hash);
        let dir = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".{}.part-{}",
            &hash[2.min(hash.len())..],
            std::process::id()
        ));
        let got = copy_hashing(&src, &tmp, progress)?;
        if got != hash {
            let _ = std::fs::remove_file(&tmp);
            bail!(
                UserError::new(format!(
                    "refused object {hash} from {}: its bytes hash to {got}",
                    self.describe()
                ))
                .hint(
                    "the remote's copy is damaged; push it again from a workspace with a good copy"
                )
            );
        }
        // Read-only, as every stored object.
        let mut perm = std::fs::metadata(&tmp)?.permissions();
        perm.set_readonly(true);
        std::fs::set_permissions(&tmp, perm)?;
        std::fs::rename(&tmp, &dest)?;
        Ok(())
    }
}

/// Copy `src` to `dest`, hashing the bytes on the way and syncing them to disk. Returns the hash.
fn copy_hashing(src: &Path, dest: &Path, progress: &dyn Fn(u64)) -> io::Result<String> {
    let mut from = File::open(src)?;
    let mut to = File::create(dest)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let k = from.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        to.write_all(&buf[..k])?;
        progress(k as u64);
    }
    to.sync_all()?;
    Ok(h.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_directories() {
        let base = Path::new("/ws");
        assert_eq!(
            ObjectStore::parse("/mnt/models", base).unwrap(),
            ObjectStore::Dir("/mnt/models".into())
        );
        assert_eq!(
            ObjectStore::parse("file:///mnt/m", base).unwrap(),
            ObjectStore::Dir("/mnt/m".into())
        );
        assert_eq!(
            ObjectStore::parse("shared", base).unwrap(),
            ObjectStore::Dir("/ws/shared".into())
        );
        let e = ObjectStore::parse("ftp://x/y", base).unwrap_err();
        assert!(format!("{e:#}").contains("not supported"), "{e:#}");
    }
}
