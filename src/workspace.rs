//! Finding the `.gantry/` workspace a command works in, and the paths inside it.
//!
//! Order: `--workspace DIR`, `GANTRY_WORKSPACE=DIR`, the nearest ancestor of the current directory
//! holding `.gantry/`, then the user's data directory. DIR is always the directory that holds
//! `.gantry/`, never `.gantry/` itself.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::domain::store::{StoreKind, StoreLocation, StoreSource, redact_url};
use crate::error::UserError;

/// The name of the folder that marks a workspace.
pub const MARKER: &str = ".gantry";

/// Why this workspace was chosen; `gantry where` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    Ancestor { cwd: PathBuf },
    UserData,
    Created,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => write!(f, "given with --workspace"),
            Source::Env => write!(f, "given with GANTRY_WORKSPACE"),
            Source::Ancestor { cwd } => {
                write!(
                    f,
                    "nearest .gantry/ above the current directory {}",
                    cwd.display()
                )
            }
            Source::UserData => write!(
                f,
                "no .gantry/ above the current directory, so the user's data directory"
            ),
            Source::Created => write!(f, "created by this command"),
        }
    }
}

/// A resolved workspace: `root` holds `.gantry/`.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub source: Source,
}

/// What the resolver needs from the environment, passed in so that tests control all of it.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    pub flag: Option<PathBuf>,
    pub env: Option<PathBuf>,
    pub cwd: PathBuf,
    /// The user's data directory for gantry (for example `~/.local/share/gantry`).
    pub user_data: Option<PathBuf>,
}

impl Lookup {
    /// The lookup for this process: the flag as given, `GANTRY_WORKSPACE`, the current directory and
    /// the XDG data directory.
    pub fn from_process(flag: Option<PathBuf>) -> Result<Self, UserError> {
        let cwd = std::env::current_dir().map_err(|e| {
            UserError::new("cannot read the current directory")
                .cause(e)
                .hint("cd into a directory that exists, or pass --workspace DIR")
        })?;
        let env = std::env::var_os("GANTRY_WORKSPACE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let user_data =
            directories::ProjectDirs::from("", "", "gantry").map(|d| d.data_dir().to_path_buf());
        Ok(Lookup {
            flag,
            env,
            cwd,
            user_data,
        })
    }
}

impl Workspace {
    /// Find the workspace for a command. The user-data fallback is created when missing; a workspace
    /// named by flag or environment must already exist.
    pub fn resolve(lookup: &Lookup) -> Result<Workspace, UserError> {
        if let Some(dir) = &lookup.flag {
            return Self::existing(absolute(&lookup.cwd, dir), Source::Flag, "--workspace");
        }
        if let Some(dir) = &lookup.env {
            return Self::existing(absolute(&lookup.cwd, dir), Source::Env, "GANTRY_WORKSPACE");
        }
        for dir in lookup.cwd.ancestors() {
            let marker = dir.join(MARKER);
            if fs::symlink_metadata(&marker).is_err() {
                continue; // nothing named .gantry here
            }
            // Something is named .gantry: a workspace, or a mistake to name, never to pass over
            // for another workspace.
            match fs::metadata(&marker) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(UserError::new(format!(
                        "{} is a file, not a workspace folder",
                        marker.display()
                    ))
                    .hint("move that file aside, then run `gantry init` there, or pass --workspace DIR"));
                }
                Err(e) => {
                    return Err(
                        UserError::new(format!("{} cannot be followed", marker.display()))
                            .cause(e)
                            .hint(
                                "a broken symbolic link? fix or remove it, or pass --workspace DIR",
                            ),
                    );
                }
            }
            return Ok(Workspace {
                root: dir.to_path_buf(),
                source: Source::Ancestor {
                    cwd: lookup.cwd.clone(),
                },
            });
        }
        let data = lookup.user_data.clone().ok_or_else(|| {
            UserError::new("no workspace found and no user data directory is known")
                .hint("run `gantry init` in your project, or pass --workspace DIR")
        })?;
        let ws = Workspace {
            root: data,
            source: Source::UserData,
        };
        ws.create()?;
        Ok(ws)
    }

    fn existing(root: PathBuf, source: Source, via: &str) -> Result<Workspace, UserError> {
        check_dir(&root, via)?;
        let marker = root.join(MARKER);
        match fs::metadata(&marker) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(UserError::new(format!(
                    "{} exists but is not a directory",
                    marker.display()
                ))
                .hint("move that file aside, then run `gantry init` there"));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(UserError::new(format!(
                    "{} (from {via}) holds no .gantry/ workspace",
                    root.display()
                ))
                .hint(format!("run `gantry init {}` first", root.display())));
            }
            Err(e) => {
                return Err(UserError::new(format!("cannot read {}", marker.display()))
                    .cause(e)
                    .hint("check its permissions"));
            }
        }
        let ws = Workspace { root, source };
        ws.check_readable()?;
        Ok(ws)
    }

    /// Make `DIR/.gantry/` and its folders (idempotent).
    pub fn init(dir: &Path) -> Result<Workspace, UserError> {
        check_dir(dir, "gantry init")?;
        let ws = Workspace {
            root: dir.to_path_buf(),
            source: Source::Created,
        };
        ws.create()?;
        Ok(ws)
    }

    fn create(&self) -> Result<(), UserError> {
        for d in [self.dir(), self.runs_dir(), self.log_dir()] {
            fs::create_dir_all(&d).map_err(|e| {
                UserError::new(format!("cannot create {}", d.display()))
                    .cause(e)
                    .hint("choose a writable directory with --workspace DIR")
            })?;
        }
        self.check_readable()
    }

    fn check_readable(&self) -> Result<(), UserError> {
        let dir = self.dir();
        fs::read_dir(&dir).map(drop).map_err(|e| {
            UserError::new(format!("cannot read the workspace {}", dir.display()))
                .cause(e)
                .hint("check its owner and permissions (ls -ld), or use another --workspace")
        })
    }

    pub fn dir(&self) -> PathBuf {
        self.root.join(MARKER)
    }
    pub fn db_path(&self) -> PathBuf {
        self.dir().join("gantry.db")
    }
    pub fn runs_dir(&self) -> PathBuf {
        self.dir().join("runs")
    }
    pub fn log_dir(&self) -> PathBuf {
        self.dir().join("logs")
    }
    pub fn log_file(&self) -> PathBuf {
        self.log_dir().join("gantry.log")
    }
    /// A short form for the status line: `~/proj` style where the home directory is a prefix.
    pub fn label(&self) -> String {
        let home = directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf());
        match home.as_deref().and_then(|h| self.root.strip_prefix(h).ok()) {
            Some(rest) if rest.as_os_str().is_empty() => "~".into(),
            Some(rest) => format!("~/{}", rest.display()),
            None => self.root.display().to_string(),
        }
    }
}

impl Workspace {
    /// The workspace's own settings file, `.gantry/config.toml` (its `store` key names a team
    /// store).
    pub fn config_path(&self) -> PathBuf {
        self.dir().join("config.toml")
    }

    /// Choose the store: `--store`, then `GANTRY_STORE`, then `store` in the workspace's
    /// config.toml, then the workspace's own SQLite file. `sqlite:PATH` names another SQLite file
    /// (relative paths from `cwd`, or from the workspace for the config's).
    pub fn store(
        &self,
        flag: Option<&str>,
        env: Option<&str>,
        config: Option<&str>,
        cwd: &Path,
    ) -> Result<StoreLocation, UserError> {
        let given = [
            (flag, StoreSource::Flag, cwd.to_path_buf()),
            (env, StoreSource::Env, cwd.to_path_buf()),
            (
                config,
                StoreSource::Config(self.config_path()),
                self.root.clone(),
            ),
        ];
        for (value, source, base) in given {
            let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
                continue;
            };
            let kind = if v.starts_with("postgres://") || v.starts_with("postgresql://") {
                StoreKind::Postgres(v.to_string())
            } else if let Some(path) = v.strip_prefix("sqlite://").or(v.strip_prefix("sqlite:")) {
                StoreKind::Sqlite(absolute(&base, Path::new(path)))
            } else {
                return Err(UserError::new(format!(
                    "`{}` ({source}) is not a store URL",
                    redact_url(v)
                ))
                .hint("give postgres://USER@HOST:PORT/DATABASE for a team store, or sqlite:PATH"));
            };
            return Ok(StoreLocation { kind, source });
        }
        Ok(StoreLocation {
            kind: StoreKind::Sqlite(self.db_path()),
            source: StoreSource::Workspace,
        })
    }
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

fn check_dir(dir: &Path, via: &str) -> Result<(), UserError> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(UserError::new(format!(
            "{} (from {via}) is a file, not a directory",
            dir.display()
        ))
        .hint("give the directory that holds .gantry/, not a file")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(UserError::new(format!(
            "{} (from {via}) does not exist",
            dir.display()
        ))
        .hint("create it first, or give another directory")),
        Err(e) => Err(
            UserError::new(format!("cannot read {} (from {via})", dir.display()))
                .cause(e)
                .hint("check its permissions"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(cwd: &Path) -> Lookup {
        Lookup {
            cwd: cwd.to_path_buf(),
            user_data: Some(cwd.join("xdg-data")),
            ..Lookup::default()
        }
    }

    #[test]
    fn flag_wins_over_env_and_ancestor() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        let b = t.path().join("b");
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        Workspace::init(&a).unwrap();
        Workspace::init(&b).unwrap();
        Workspace::init(t.path()).unwrap();
        let mut l = lookup(t.path());
        l.flag = Some(a.clone());
        l.env = Some(b.clone());
        let ws = Workspace::resolve(&l).unwrap();
        assert_eq!((ws.root, ws.source), (a, Source::Flag));
        l.flag = None;
        let ws = Workspace::resolve(&l).unwrap();
        assert_eq!((ws.root, ws.source), (b, Source::Env));
    }

    #[test]
    fn nearest_ancestor_then_user_data() {
        let t = tempfile::tempdir().unwrap();
        let deep = t.path().join("proj/src/deep");
        fs::create_dir_all(&deep).unwrap();
        let l = lookup(&deep);
        let ws = Workspace::resolve(&l).unwrap();
        assert_eq!(ws.source, Source::UserData);
        assert!(ws.dir().is_dir(), "the user-data workspace is created");
        Workspace::init(&t.path().join("proj")).unwrap();
        let ws = Workspace::resolve(&l).unwrap();
        assert_eq!(ws.root, t.path().join("proj"));
        assert!(matches!(ws.source, Source::Ancestor { .. }));
    }

    #[test]
    fn a_gantry_file_or_broken_link_above_is_an_error_not_a_fallback() {
        let t = tempfile::tempdir().unwrap();
        let proj = t.path().join("proj");
        std::fs::create_dir_all(proj.join("src")).unwrap();
        std::fs::write(proj.join(MARKER), "not a folder").unwrap();
        let mut l = lookup(&proj.join("src"));
        l.user_data = Some(t.path().join("data"));
        let e = Workspace::resolve(&l).unwrap_err().to_string();
        assert!(e.contains(&proj.join(MARKER).display().to_string()), "{e}");
        assert!(e.contains("is a file"), "{e}");
        std::fs::remove_file(proj.join(MARKER)).unwrap();
        std::os::unix::fs::symlink(t.path().join("gone"), proj.join(MARKER)).unwrap();
        let e = Workspace::resolve(&l).unwrap_err().to_string();
        assert!(e.contains("cannot be followed"), "{e}");
        assert!(
            !t.path().join("data").exists(),
            "no fallback workspace was made"
        );
    }

    #[test]
    fn named_workspace_must_exist_and_be_a_directory() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("file");
        fs::write(&file, "x").unwrap();
        let mut l = lookup(t.path());
        l.flag = Some(file);
        let e = Workspace::resolve(&l).unwrap_err().to_string();
        assert!(e.contains("is a file, not a directory"), "{e}");
        l.flag = Some(t.path().to_path_buf());
        let e = Workspace::resolve(&l).unwrap_err().to_string();
        assert!(
            e.contains("holds no .gantry/") && e.contains("gantry init"),
            "{e}"
        );
        fs::write(t.path().join(MARKER), "x").unwrap();
        let e = Workspace::resolve(&l).unwrap_err().to_string();
        assert!(e.contains("is not a directory"), "{e}");
    }

    #[test]
    fn the_store_is_chosen_flag_env_config_then_the_workspace_file() {
        let ws = Workspace {
            root: PathBuf::from("/w"),
            source: Source::Flag,
        };
        let cwd = Path::new("/here");
        let pg = "postgres://alice:s3cret@db:5432/gantry";
        let at = |flag, env, config| ws.store(flag, env, config, cwd).unwrap();
        assert_eq!(
            at(None, None, None),
            StoreLocation {
                kind: StoreKind::Sqlite(PathBuf::from("/w/.gantry/gantry.db")),
                source: StoreSource::Workspace
            }
        );
        let l = at(None, None, Some(pg));
        assert_eq!(l.kind, StoreKind::Postgres(pg.into()));
        assert_eq!(
            l.source,
            StoreSource::Config(PathBuf::from("/w/.gantry/config.toml"))
        );
        assert_eq!(
            at(None, Some(pg), Some("sqlite:x.db")).source,
            StoreSource::Env
        );
        let l = at(Some("sqlite:a.db"), Some(pg), Some(pg));
        assert_eq!(
            (l.kind, l.source),
            (StoreKind::Sqlite("/here/a.db".into()), StoreSource::Flag)
        );
        assert_eq!(
            at(None, None, Some("sqlite:team.db")).kind,
            StoreKind::Sqlite("/w/team.db".into()),
            "the config's paths are the workspace's"
        );
        assert_eq!(at(Some("  "), None, None).source, StoreSource::Workspace);
        let e = ws
            .store(Some("mysql://u:pw@h/db"), None, None, cwd)
            .unwrap_err();
        let text = format!("{e}");
        assert!(text.contains("is not a store URL"), "{text}");
        assert!(!text.contains("pw"), "{text}");
    }
}
