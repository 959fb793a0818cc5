//! Content-addressed objects: `.gantry/objects/ab/cdef…` named by the blake3 hash of their bytes.
//! Files are hashed as a stream in constant memory and placed through a temporary name and a
//! rename, so an object is either whole or absent. By default by reflink (copy-on-write, instant
//! where the filesystem has it) else by copy: both leave the object independent of the user's
//! file. A hard link shares the file's bytes, so a training script that later overwrites its
//! checkpoint in place (`torch.save` to the same path) would corrupt the stored version; hard
//! links are therefore opt-in, and the linked file is made read-only.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Read and hash in pieces of this size: memory stays flat for any file size.
const CHUNK: usize = 1 << 20;

/// How an object came to be in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    AlreadyThere,
    HardLink,
    Reflink,
    Copy,
}

pub struct Objects {
    root: PathBuf,
}

/// Hash a file as a stream, calling `progress(bytes)` as it goes. Returns (hex hash, size).
pub fn hash_file(path: &Path, progress: &dyn Fn(u64)) -> io::Result<(String, u64)> {
    let mut f = File::open(path)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
        progress(k as u64);
    }
    Ok((h.finalize().to_hex().to_string(), n))
}

impl Objects {
    pub fn new(root: PathBuf) -> Objects {
        Objects { root }
    }

    pub fn path(&self, hash: &str) -> PathBuf {
        let (a, b) = hash.split_at(2.min(hash.len()));
        self.root.join(a).join(b)
    }

    pub fn contains(&self, hash: &str) -> bool {
        self.path(hash).is_file()
    }

    /// Put a file whose hash is known into the store. `hard_link`: share the file's bytes when the
    /// filesystem allows (and make it read-only), instead of a reflink or copy.
    pub fn put(&self, src: &Path, hash: &str, hard_link: bool) -> io::Result<Placed> {
        let dest = self.path(hash);
        if dest.is_file() {
            return Ok(Placed::AlreadyThere);
        }
        let dir = dest.parent().expect("objects have a folder");
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            &hash[..16.min(hash.len())]
        ));
        let _ = std::fs::remove_file(&tmp);
        let placed = (|| {
            let (how, stored) = if hard_link && std::fs::hard_link(src, &tmp).is_ok() {
                (Placed::HardLink, hash_file(&tmp, &|_| {})?.0)
            } else if reflink(src, &tmp).is_ok() {
                (Placed::Reflink, hash_file(&tmp, &|_| {})?.0)
            } else {
                let _ = std::fs::remove_file(&tmp);
                (Placed::Copy, copy_hashed(src, &tmp)?)
            };
            // The name must be the hash of the bytes stored, not of the bytes read earlier: a file
            // rewritten in between (a checkpoint still being saved) would make a corrupt object.
            if stored != hash {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} changed while it was being stored (its bytes no longer match the hash taken a moment before)",
                        src.display()
                    ),
                ));
            }
            if how == Placed::HardLink {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&tmp)?.permissions().mode() & !0o222;
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
            }
            Ok(how)
        })();
        match placed {
            Ok(how) => {
                std::fs::rename(&tmp, &dest)?;
                Ok(how)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Re-hash an object: Ok(true) when its bytes match its name, Ok(false) when they do not,
    /// NotFound when it is missing.
    pub fn verify(&self, hash: &str) -> io::Result<bool> {
        Ok(hash_file(&self.path(hash), &|_| {})?.0 == hash)
    }

    /// Copy an object to `dest`, hashing on the way; the copy is removed and an error returned if
    /// the bytes do not match the name.
    pub fn checkout(&self, hash: &str, dest: &Path, progress: &dyn Fn(u64)) -> io::Result<()> {
        let mut src = File::open(self.path(hash))?;
        if let Some(d) = dest.parent() {
            std::fs::create_dir_all(d)?;
        }
        let tmp = dest.with_extension("gantry-partial");
        let mut out = File::create(&tmp)?;
        let mut h = blake3::Hasher::new();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let k = src.read(&mut buf)?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            out.write_all(&buf[..k])?;
            progress(k as u64);
        }
        out.sync_all()?;
        if h.finalize().to_hex().as_str() != hash {
            let _ = std::fs::remove_file(&tmp);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("object {hash} is corrupt"),
            ));
        }
        std::fs::rename(&tmp, dest)
    }

    /// Every object hash in the store.
    pub fn all(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        let Ok(dirs) = std::fs::read_dir(&self.root) else {
            return Ok(out);
        };
        for d in dirs.flatten() {
            let prefix = d.file_name().to_string_lossy().into_owned();
            if prefix.len() != 2 || !d.path().is_dir() {
                continue;
            }
            for f in std::fs::read_dir(d.path())?.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') {
                    out.push(format!("{prefix}{name}"));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    pub fn remove(&self, hash: &str) -> io::Result<u64> {
        let p = self.path(hash);
        let n = std::fs::metadata(&p)?.len();
        std::fs::remove_file(p)?;
        Ok(n)
    }
}

/// Copy `src` to `dest` and sync it; returns the hash of the bytes written.
fn copy_hashed(src: &Path, dest: &Path) -> io::Result<String> {
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
    }
    to.sync_all()?;
    Ok(h.finalize().to_hex().to_string())
}

/// A copy-on-write clone (FICLONE), where the filesystem has it (btrfs, XFS, bcachefs).
fn reflink(src: &Path, dest: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let from = File::open(src)?;
    let to = File::create(dest)?;
    // FICLONE = _IOW(0x94, 9, int)
    const FICLONE: libc::c_ulong = 0x4004_9409;
    // SAFETY: both descriptors are open files we own.
    let rc = unsafe { libc::ioctl(to.as_raw_fd(), FICLONE as _, from.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_dedupes_verifies_and_checks_out() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("w.bin");
        std::fs::write(&src, vec![7u8; 3 * CHUNK + 5]).unwrap();
        let (hash, size) = hash_file(&src, &|_| {}).unwrap();
        assert_eq!(size, 3 * CHUNK as u64 + 5);
        assert_eq!(
            hash,
            blake3::hash(&std::fs::read(&src).unwrap())
                .to_hex()
                .to_string()
        );
        let objs = Objects::new(t.path().join("objects"));
        assert_ne!(objs.put(&src, &hash, false).unwrap(), Placed::AlreadyThere);
        assert_eq!(objs.put(&src, &hash, false).unwrap(), Placed::AlreadyThere);
        assert!(objs.verify(&hash).unwrap());
        objs.checkout(&hash, &t.path().join("out/w.bin"), &|_| {})
            .unwrap();
        assert_eq!(
            std::fs::read(t.path().join("out/w.bin")).unwrap(),
            std::fs::read(&src).unwrap()
        );
        assert_eq!(objs.all().unwrap(), vec![hash.clone()]);
    }

    #[test]
    fn overwriting_the_source_in_place_leaves_the_object_intact() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("model.pt");
        std::fs::write(&src, b"epoch 1").unwrap();
        let (hash, _) = hash_file(&src, &|_| {}).unwrap();
        let objs = Objects::new(t.path().join("objects"));
        assert_ne!(objs.put(&src, &hash, false).unwrap(), Placed::HardLink);
        std::fs::write(&src, b"epoch 2").unwrap(); // truncate and rewrite the same inode
        assert!(objs.verify(&hash).unwrap());
    }

    #[test]
    fn a_file_changed_after_hashing_is_refused_and_leaves_no_object() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("ckpt.pt");
        std::fs::write(&src, b"epoch 1 half written").unwrap();
        let (hash, _) = hash_file(&src, &|_| {}).unwrap();
        std::fs::write(&src, b"epoch 1 fully written").unwrap(); // the writer carried on
        let objs = Objects::new(t.path().join("objects"));
        for hard_link in [false, true] {
            let e = objs.put(&src, &hash, hard_link).unwrap_err();
            assert!(
                e.to_string().contains("changed while it was being stored"),
                "{e}"
            );
            assert!(
                !objs.contains(&hash),
                "no object under a name its bytes do not have"
            );
        }
        let left: Vec<_> = std::fs::read_dir(objs.path(&hash).parent().unwrap())
            .unwrap()
            .collect();
        assert!(left.is_empty(), "no temporary file left behind");
    }

    #[test]
    fn a_hard_link_is_opt_in_and_read_only() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("model.pt");
        std::fs::write(&src, b"epoch 1").unwrap();
        let (hash, _) = hash_file(&src, &|_| {}).unwrap();
        let objs = Objects::new(t.path().join("objects"));
        assert_eq!(objs.put(&src, &hash, true).unwrap(), Placed::HardLink);
        assert_eq!(
            std::fs::metadata(&src).unwrap().permissions().mode() & 0o222,
            0
        );
    }

    #[test]
    fn a_corrupt_object_fails_verify_and_checkout() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("w.bin");
        std::fs::write(&src, b"weights").unwrap();
        let (hash, _) = hash_file(&src, &|_| {}).unwrap();
        let objs = Objects::new(t.path().join("objects"));
        objs.put(&src, &hash, false).unwrap();
        std::fs::write(objs.path(&hash), b"weightz").unwrap();
        assert!(!objs.verify(&hash).unwrap());
        let e = objs
            .checkout(&hash, &t.path().join("out.bin"), &|_| {})
            .unwrap_err();
        assert!(e.to_string().contains("corrupt"));
        assert!(
            !t.path().join("out.bin").exists() && !t.path().join("out.gantry-partial").exists()
        );
    }
}
