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
    /// A directory on a host, through the user's own `ssh` (`GANTRY_SSH` names another):
    /// `ssh://[user@]host[:port]/path`.
    Ssh {
        dest: String,
        port: Option<u16>,
        root: String,
    },
    /// A bucket and prefix on S3 or a compatible store (`s3://bucket/prefix`, with
    /// `?endpoint=URL` or `AWS_ENDPOINT_URL` for a store other than AWS's).
    S3(super::s3::S3Store),
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
        if url.starts_with("s3://") {
            return Ok(ObjectStore::S3(super::s3::S3Store::parse(url)?));
        }
        if let Some(rest) = url.strip_prefix("ssh://") {
            let (host, path) = rest.split_once('/').ok_or_else(|| {
                UserError::new(format!("objects URL {url} names no directory"))
                    .hint("give ssh://[user@]host[:port]/path")
            })?;
            let (dest, port) = match host.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    Some(p.parse::<u16>().map_err(|_| {
                        UserError::new(format!("objects URL {url}: `{p}` is not a port"))
                    })?),
                ),
                None => (host.to_string(), None),
            };
            if dest.is_empty() {
                bail!(UserError::new(format!("objects URL {url} names no host")));
            }
            return Ok(ObjectStore::Ssh {
                dest,
                port,
                root: format!("/{path}"),
            });
        }
        if url.contains("://") {
            let scheme = url.split("://").next().unwrap_or("");
            bail!(
                UserError::new(format!("objects URL {url}: `{scheme}://` is not supported"))
                    .hint("give a directory (a shared mount), file://PATH or ssh://host/path")
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
            ObjectStore::Ssh { dest, port, root } => match port {
                Some(p) => format!("ssh://{dest}:{p}{root}"),
                None => format!("ssh://{dest}{root}"),
            },
            ObjectStore::S3(s) => s.describe(),
        }
    }

    /// An object's place in the store: its folder and file name.
    fn rel(hash: &str) -> (&str, &str) {
        hash.split_at(2.min(hash.len()))
    }

    fn path(&self, hash: &str) -> PathBuf {
        let (a, b) = Self::rel(hash);
        match self {
            ObjectStore::Dir(root) => root.join(a).join(b),
            ObjectStore::Ssh { root, .. } => Path::new(root).join(a).join(b),
            ObjectStore::S3(_) => Path::new(a).join(b),
        }
    }

    /// Which of `objects` (hash, size) the remote holds whole: one look for them all. An object
    /// of another size (cut short by a crash while it was written) counts as absent, so it is
    /// sent again.
    pub fn which(&self, objects: &[(String, u64)]) -> Result<std::collections::HashSet<String>> {
        let there: std::collections::HashMap<String, u64> = match self {
            ObjectStore::Dir(_) => objects
                .iter()
                .filter_map(|(h, _)| Some((h.clone(), std::fs::metadata(self.path(h)).ok()?.len())))
                .collect(),
            ObjectStore::Ssh { root, .. } => {
                // Every object the host has, with its size: `SIZE ./ab/cdef…` (temporary `.…`
                // names left out; `wc`'s total line has no slash).
                let out = self.ssh_run(
                    &format!(
                        "cd {} 2>/dev/null && find . -mindepth 2 -maxdepth 2 -type f ! -name '.*' -exec wc -c {{}} + || true",
                        quote(root)
                    ),
                    None,
                )?;
                String::from_utf8_lossy(&out)
                    .lines()
                    .filter_map(|l| {
                        let (n, p) = l.trim().split_once(' ')?;
                        let (a, b) = p.trim().trim_start_matches("./").split_once('/')?;
                        Some((format!("{a}{b}"), n.parse().ok()?))
                    })
                    .collect()
            }
            ObjectStore::S3(s3) => s3.list()?,
        };
        Ok(objects
            .iter()
            .filter(|(h, n)| there.get(h) == Some(n))
            .map(|(h, _)| h.clone())
            .collect())
    }

    /// `ssh DEST COMMAND`, with the file `input` on its stdin: its stdout, or its error for a
    /// person.
    fn ssh_run(&self, command: &str, input: Option<&Path>) -> Result<Vec<u8>> {
        let ObjectStore::Ssh { dest, port, .. } = self else {
            bail!("not an ssh store");
        };
        let mut cmd = ssh_command(dest, *port, command);
        cmd.stdin(match input {
            Some(p) => std::process::Stdio::from(File::open(p)?),
            None => std::process::Stdio::null(),
        });
        let out = cmd.output().map_err(|e| {
            UserError::new("cannot run ssh")
                .cause(e)
                .hint("install the ssh client, or name another with GANTRY_SSH")
        })?;
        if !out.status.success() {
            bail!(
                UserError::new(format!("ssh {dest}: {}", last_line(&out.stderr)))
                    .hint(format!("`ssh {dest} true` must work without a prompt"))
            );
        }
        Ok(out.stdout)
    }

    /// Send a local object (already verified by its store). `progress(bytes)` as it goes.
    pub fn put(&self, local: &Objects, hash: &str, progress: &dyn Fn(u64)) -> Result<()> {
        if let ObjectStore::S3(s3) = self {
            let src = local.path(hash);
            let (got, _) = super::objects::hash_file(&src, &|_| {})?;
            if got != hash {
                bail!(
                    UserError::new(format!("the local object {hash} does not match its hash"))
                        .hint("`gantry model verify` lists the damage; nothing was sent")
                );
            }
            return s3.put(hash, &src, progress);
        }
        if let ObjectStore::Ssh { root, .. } = self {
            // Checked against its hash, then written on the host through a temporary name and
            // a rename.
            let src = local.path(hash);
            let (a, b) = Self::rel(hash);
            let dir = format!("{}/{a}", root.trim_end_matches('/'));
            let tmp = format!("{dir}/.{b}.part-{}", std::process::id());
            let (got, n) = super::objects::hash_file(&src, &|_| {})?;
            if got != hash {
                bail!(
                    UserError::new(format!("the local object {hash} does not match its hash"))
                        .hint("`gantry model verify` lists the damage; nothing was sent")
                );
            }
            self.ssh_run(
                &format!(
                    "mkdir -p {d} && cat > {t} && mv -f {t} {f}",
                    d = quote(&dir),
                    t = quote(&tmp),
                    f = quote(&format!("{dir}/{b}"))
                ),
                Some(&src),
            )?;
            progress(n);
            return Ok(());
        }
        let dest = self.path(hash);
        // Whole and of its size: nothing to send (one of another size is replaced).
        if std::fs::metadata(&dest).is_ok_and(|m| m.len() == local_len(local, hash)) {
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
        let missing = || {
            UserError::new(format!(
                "the objects remote {} has no object {hash}",
                self.describe()
            ))
            .hint("push it from a workspace that has it: gantry model push")
        };
        if matches!(self, ObjectStore::Dir(_)) && !src.is_file() {
            bail!(missing());
        }

        let dest = local.path(hash);
        let dir = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".{}.part-{}",
            &hash[2.min(hash.len())..],
            std::process::id()
        ));
        let got = match self {
            ObjectStore::Dir(_) => copy_hashing(&src, &tmp, progress)?,
            ObjectStore::S3(s3) => {
                let Some(mut body) = s3.get(hash)? else {
                    bail!(missing());
                };
                let got = copy_stream_hashing(&mut body, &tmp, progress);
                if got.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                got?
            }
            ObjectStore::Ssh {
                dest: host, port, ..
            } => {
                // `cat` on the host, hashed as it arrives.
                let mut child = ssh_command(
                    host,
                    *port,
                    &format!("cat {}", quote(&src.display().to_string())),
                )
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()?;
                let mut out = child
                    .stdout
                    .take()
                    .ok_or_else(|| anyhow::anyhow!("ssh gave no output pipe"))?;
                // A pipe of 1 MiB rather than 64 KiB: fewer switches between ssh and us.
                {
                    use std::os::fd::AsRawFd;
                    // SAFETY: fcntl on a pipe we own; a refusal leaves the default size.
                    let _ =
                        unsafe { libc::fcntl(out.as_raw_fd(), libc::F_SETPIPE_SZ, CHUNK as i32) };
                }
                let got = copy_stream_hashing(&mut out, &tmp, progress);
                let done = child.wait_with_output()?;
                if !done.status.success() {
                    let _ = std::fs::remove_file(&tmp);
                    let why = last_line(&done.stderr);
                    if why.contains("No such file") {
                        bail!(missing());
                    }
                    bail!(UserError::new(format!("ssh {host}: {why}")));
                }
                got?
            }
        };
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
    copy_stream_hashing(&mut File::open(src)?, dest, progress)
}

/// The size of a local object (0 where it is not there).
fn local_len(local: &Objects, hash: &str) -> u64 {
    std::fs::metadata(local.path(hash)).map_or(0, |m| m.len())
}

/// The `ssh` command running `command` on `dest`: never a prompt.
fn ssh_command(dest: &str, port: Option<u16>, command: &str) -> std::process::Command {
    let ssh = std::env::var("GANTRY_SSH").unwrap_or_else(|_| "ssh".into());
    let mut cmd = std::process::Command::new(ssh);
    cmd.args(["-T", "-o", "BatchMode=yes"]);
    if let Some(p) = port {
        cmd.arg("-p").arg(p.to_string());
    }
    cmd.arg(dest).arg(command);
    cmd
}

/// `s` as one sh word.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("the command failed")
        .to_string()
}

/// Copy a stream to `dest`, hashing it on the way. Returns the hash.
fn copy_stream_hashing(
    from: &mut dyn Read,
    dest: &Path,
    progress: &dyn Fn(u64),
) -> io::Result<String> {
    // Hashing here while a second thread writes: the two overlap. Not synced to disk, as `cp`
    // and `rsync` don't: an object cut short by a crash has the wrong size, so `which` counts it
    // absent and it is sent again; one with the wrong bytes is refused on arrival.
    let mut to = File::create(dest)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
    let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::scope(|s| {
        let writer = s.spawn(move || -> io::Result<()> {
            for chunk in rx {
                to.write_all(&chunk)?;
                let _ = back_tx.send(chunk);
            }
            Ok(())
        });
        let mut h = blake3::Hasher::new();
        let read = (|| -> io::Result<()> {
            loop {
                let mut buf = back_rx.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
                buf.resize(CHUNK, 0);
                // Whole chunks, though a pipe gives a few KiB a read.
                let mut k = 0;
                while k < CHUNK {
                    match from.read(&mut buf[k..]) {
                        Ok(0) => break,
                        Ok(n) => k += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                if k == 0 {
                    return Ok(());
                }
                buf.truncate(k);
                h.update(&buf);
                progress(k as u64);
                if tx.send(buf).is_err() {
                    return Ok(());
                }
            }
        })();
        drop(tx);
        let wrote = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the writer failed")));
        read?;
        wrote?;
        Ok(h.finalize().to_hex().to_string())
    })
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
        assert_eq!(
            ObjectStore::parse("ssh://ana@models:2222/srv/objects", base).unwrap(),
            ObjectStore::Ssh {
                dest: "ana@models".into(),
                port: Some(2222),
                root: "/srv/objects".into()
            }
        );
        let e = ObjectStore::parse("ftp://x/y", base).unwrap_err();
        assert!(format!("{e:#}").contains("not supported"), "{e:#}");
    }
}
