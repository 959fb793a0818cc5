//! A real PostgreSQL server for tests: the one `GANTRY_TEST_POSTGRES_URL` names, else a
//! throwaway cluster made with the machine's `initdb` and run from this test process (as the
//! `postgres` user when root, through `setpriv`). Each test gets a fresh database of its own.
//!
//! The cluster lives under `$TMPDIR/gantry-pg-test/<pid>` (a place the `postgres` user can reach
//! whatever the checkout's permissions) and dies with the test process: the server is
//! started with a parent-death signal from a thread that lives as long as the process.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A server's base URL (no database), or why there is none.
fn server() -> &'static Result<String, String> {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("GANTRY_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Ok(url.trim_end_matches('/').to_string()),
        _ => start_cluster(),
    })
}

/// A fresh, empty database on the test server: its URL, or None after `skip` said why.
pub fn fresh_db() -> Option<String> {
    let base = match server() {
        Ok(b) => b,
        Err(why) => {
            super::skip(&format!("no PostgreSQL server: {why}"));
            return None;
        }
    };
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "t{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        // A server that has just started may still refuse connections for a moment.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut c = loop {
            match sqlx::PgConnection::connect(&format!("{base}/postgres")).await {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => {
                    panic!("connecting to the test server {base}: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    });
    Some(format!("{base}/{name}"))
}

fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join("initdb").is_file())
        .collect();
    dirs.sort();
    dirs.pop().or_else(|| {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .find(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
        })
    })
}

/// `cmd` as the `postgres` user when this process is root (PostgreSQL refuses to run as root).
fn as_server_user(cmd: &Path, root: bool) -> Command {
    if root {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--pdeathsig=KILL",
        ])
        .arg(cmd);
        c
    } else {
        Command::new(cmd)
    }
}

fn start_cluster() -> Result<String, String> {
    let bin = bin_dir().ok_or("no initdb found (install Debian's postgresql package)")?;
    let root = unsafe { libc::geteuid() } == 0;
    let base = std::env::temp_dir().join("gantry-pg-test");
    // Clusters of earlier test processes are gone with them: clear their folders.
    for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        let alive = e
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let dir = base.join(std::process::id().to_string());
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if root {
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .map_err(|e| format!("chown: {e}"))?;
        if !chown.success() {
            return Err("cannot hand the test cluster's folder to the postgres user".into());
        }
    }
    let out = as_server_user(&bin.join("initdb"), root)
        .args([
            "-A",
            "trust",
            "-U",
            "gantry",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let log = std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
    let postgres = bin.join("postgres");
    let data2 = data.clone();
    let sock = dir.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    // The server gets SIGKILL when the thread that started it ends: this one never does, so it
    // goes with the test process.
    std::thread::spawn(move || {
        let child = as_server_user(&postgres, root)
            .arg("-D")
            .arg(&data2)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&sock)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn();
        let _ = tx.send(child.map(|_| ()).map_err(|e| e.to_string()));
        loop {
            std::thread::park();
        }
    });
    rx.recv()
        .unwrap()
        .map_err(|e| format!("starting postgres: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "postgres did not listen within 30 s: {}",
                std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(format!("postgres://gantry@127.0.0.1:{port}"))
}

/// A TCP proxy in front of the test server, to cut a store's connection in the middle of a
/// run and give it back: `url` is `db_url` through the proxy.
pub struct Proxy {
    pub url: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    refused: std::sync::Arc<AtomicUsize>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    pub fn start(db_url: &str) -> Proxy {
        use std::net::{TcpListener, TcpStream};
        // postgres://USER@HOST:PORT/DB
        let (head, db) = db_url.rsplit_once('/').unwrap();
        let (user_host, port) = head.rsplit_once(':').unwrap();
        let host = user_host.rsplit_once('@').unwrap().1.to_string();
        let target = format!("{host}:{port}");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("{user_host}:{}/{db}", listener.local_addr().unwrap().port());
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let open = std::sync::Arc::new(std::sync::Mutex::new(Vec::<TcpStream>::new()));
        let refused = std::sync::Arc::new(AtomicUsize::new(0));
        let (up2, open2, refused2) = (up.clone(), open.clone(), refused.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    // Cut: the connection is refused at once.
                    refused2.fetch_add(1, Ordering::SeqCst);
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut o = open2.lock().unwrap();
                o.push(client.try_clone().unwrap());
                o.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy {
            url,
            up,
            refused,
            open,
        }
    }

    /// Close every connection through the proxy, and refuse new ones until `restore`.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// How many connections were refused while cut.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Under `GANTRY_TEST_STORE=postgres`, the suites that call this run on PostgreSQL: the
/// workspace at `root` gets a fresh database of its own as its team store (`store` in its
/// `.gantry/config.toml`), so every command there uses it. Otherwise nothing changes.
pub fn team_store_for(root: &Path) {
    if std::env::var("GANTRY_TEST_STORE").as_deref() != Ok("postgres") {
        return;
    }
    let url = fresh_db().expect("GANTRY_TEST_STORE=postgres needs a PostgreSQL server");
    std::fs::write(
        root.join(".gantry/config.toml"),
        format!("store = \"{url}\"\n"),
    )
    .unwrap();
}
