//! A real `sshd` on a loopback port for this user, with keys of its own, for the tests of what
//! goes through the user's ssh (the fleet's ssh source, the registry's ssh remotes).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sshd {
    child: Child,
    pub port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Keys for the server and the user in `dir` (none where ssh-keygen is missing).
pub fn keys(dir: &Path) -> Option<()> {
    for k in ["host_key", "user_key"] {
        if !run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(dir.join(k)))
        {
            return None;
        }
    }
    std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).ok()?;
    Some(())
}

/// An sshd for the keys in `dir`, whose sessions see `path` first on their PATH.
pub fn start(dir: &Path, name: &str, path: &Path) -> Result<Sshd, String> {
    let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("no sshd here; apt-get install openssh-server")?;
    // The directory privilege separation needs, when sshd runs as root.
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = free_port();
    let config = dir.join(format!("sshd-{name}.conf"));
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd-{name}.pid\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin yes\n\
             StrictModes no\nUsePAM no\nSetEnv PATH={p}:/usr/bin:/bin\n\
             Subsystem sftp internal-sftp\n",
            d = dir.display(),
            p = path.display(),
        ),
    )
    .unwrap();
    let log = dir.join(format!("sshd-{name}.log"));
    let child = Command::new(sshd)
        .args(["-D", "-f"])
        .arg(&config)
        .arg("-E")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{sshd}: {e}"))?;
    let server = Sshd { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "sshd did not listen: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(server)
}

/// The environment that sends git's and gantry's ssh through `config`: a wrapper script in
/// `dir` named by `GIT_SSH_COMMAND` and `GANTRY_SSH`.
pub fn env_for(dir: &Path, config: &Path) -> Vec<(String, String)> {
    use std::os::unix::fs::PermissionsExt;
    let wrapper = dir.join("ssh");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec ssh -F {} \"$@\"\n", config.display()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    vec![
        ("GIT_SSH_COMMAND".to_string(), wrapper.display().to_string()),
        ("GANTRY_SSH".to_string(), wrapper.display().to_string()),
    ]
}

/// An ssh client config naming each (host, port) on loopback with the user's key in `dir`.
pub fn client_config(dir: &Path, hosts: &[(&str, u16)]) -> PathBuf {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let mut config = String::new();
    for (host, port) in hosts {
        config.push_str(&format!(
            "Host {host}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {}\n  \
             IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n",
            dir.join("user_key").display()
        ));
    }
    let path = dir.join("ssh_config");
    std::fs::write(&path, config).unwrap();
    path
}
