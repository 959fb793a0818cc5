//! Which local process holds a TCP connection: the end at `addr` is looked up in /proc/net/tcp
//! (or tcp6) for its socket inode, and the inode in /proc/PID/fd. Lets `gantry serve` give a run
//! made over loopback to the script that made it, so its GPU processes and its end are the run's.

use std::net::{IpAddr, SocketAddr};

/// The pid of the process with a TCP socket whose local end is `addr`; None when it cannot be
/// seen (another network namespace, another user's process, no /proc).
pub fn owner(addr: SocketAddr) -> Option<i64> {
    let inode = inode_of(addr)?;
    let want = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i64>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == want.as_str()) {
                return Some(pid);
            }
        }
    }
    None
}

/// A process's command line and working directory, where they can be read.
pub fn command_and_cwd(pid: i64) -> (Vec<String>, Option<String>) {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default();
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))
        .ok()
        .map(|p| p.display().to_string());
    (cmd, cwd)
}

/// The socket inode whose local end is `addr`.
fn inode_of(addr: SocketAddr) -> Option<u64> {
    let file = match addr.ip() {
        IpAddr::V4(_) => "/proc/net/tcp",
        IpAddr::V6(_) => "/proc/net/tcp6",
    };
    let text = std::fs::read_to_string(file).ok()?;
    find_inode(&text, addr)
}

/// Find the line of `table` (the /proc/net/tcp format) whose local address is `addr`.
fn find_inode(table: &str, addr: SocketAddr) -> Option<u64> {
    let want = local_hex(addr);
    table.lines().skip(1).find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols.get(1)?.eq_ignore_ascii_case(&want))
            .then(|| cols.get(9)?.parse().ok())
            .flatten()
            .filter(|inode| *inode != 0)
    })
}

/// An address as /proc/net/tcp writes it: the IP as 32-bit words in host order, in hex, then
/// the port in hex.
fn local_hex(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(v4) => format!("{:08X}", u32::from_ne_bytes(v4.octets())),
        IpAddr::V6(v6) => v6
            .octets()
            .chunks(4)
            .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
            .collect(),
    };
    format!("{ip}:{:04X}", addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_proc_writes_them() {
        if cfg!(target_endian = "little") {
            assert_eq!(
                local_hex("127.0.0.1:8080".parse().unwrap()),
                "0100007F:1F90"
            );
            assert_eq!(
                local_hex("[::1]:5000".parse().unwrap()),
                "00000000000000000000000001000000:1388"
            );
        }
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 424242 1 0000000000000000 100 0 0 10 0\n";
        if cfg!(target_endian = "little") {
            assert_eq!(
                find_inode(table, "127.0.0.1:8080".parse().unwrap()),
                Some(424242)
            );
        }
        assert_eq!(find_inode(table, "127.0.0.1:8081".parse().unwrap()), None);
    }

    #[test]
    fn the_owner_of_a_real_connection_is_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_side, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        if std::path::Path::new("/proc/net/tcp").exists() {
            assert_eq!(owner(peer), Some(std::process::id() as i64));
        }
    }
}
