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

    /// Which of `hashes` the remote holds: one look for them all.
    pub fn which(&self, hashes: &[String]) -> Result<std::collections::HashSet<String>> {
        match self {
            ObjectStore::Dir(_) => Ok(hashes
                .iter()
                .filter(|h| self.path(h).is_file())
                .cloned()
                .collect()),
            ObjectStore::Ssh { root, .. } => {
                // Every object the host has, as `./ab/cdef…` (temporary `.…` names left out).
                let out = self.ssh_run(
                    &format!(
                        "cd {} 2>/dev/null && find . -mindepth 2 -maxdepth 2 -type f ! -name '.*' || true",
                        quote(root)
                    ),
                    None,
                )?;
                let there: std::collections::HashSet<String> = String::from_utf8_lossy(&out)
                    .lines()
                    .filter_map(|l| {
                        let (a, b) = l.trim_start_matches("./").split_once('/')?;
                        Some(format!("{a}{b}"))
                    })
                    .collect();
                Ok(hashes
                    .iter()
                    .filter(|h| there.contains(*h))
                    .cloned()
                    .collect())
            }
            ObjectStore::S3(s3) => {
                let there = s3.list()?;
                Ok(hashes
                    .iter()
                    .filter(|h| there.contains(*h))
                    .cloned()
                    .collect())
            }
        }
    }

    /// Whether the remote holds the object.
    pub fn has(&self, hash: &str) -> bool {
        self.which(&[hash.to_string()])
            .is_ok_and(|s| s.contains(hash))
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

/// Copy a stream to `dest`, hashing it on the way and syncing it to disk. Returns the hash.
fn copy_stream_hashing(
    from: &mut dyn Read,
    dest: &Path,
    progress: &dyn Fn(u64),
) -> io::Result<String> {
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
