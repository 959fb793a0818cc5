//! Which store a command works on, and why: the workspace's SQLite file or a PostgreSQL team
//! store named by URL. The URL may hold a password; `redact_url` is how it is shown or logged.

use std::fmt;
use std::path::PathBuf;

/// Which store a command works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// A SQLite file: the workspace's own `gantry.db`, or one named by `sqlite:PATH`.
    Sqlite(PathBuf),
    /// A PostgreSQL team store, by its URL as given (it may hold a password: show `redact_url`).
    Postgres(String),
}

/// Why that store: `gantry where` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSource {
    Flag,
    Env,
    Config(PathBuf),
    Workspace,
}

impl fmt::Display for StoreSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSource::Flag => write!(f, "given with --store"),
            StoreSource::Env => write!(f, "given with GANTRY_STORE"),
            StoreSource::Config(p) => write!(f, "`store` in {}", p.display()),
            StoreSource::Workspace => write!(f, "the workspace's own SQLite file"),
        }
    }
}

/// The store in use and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLocation {
    pub kind: StoreKind,
    pub source: StoreSource,
}

impl StoreLocation {
    /// The store as it may be shown or logged: a path, or a URL without its password.
    pub fn shown(&self) -> String {
        match &self.kind {
            StoreKind::Sqlite(p) => p.display().to_string(),
            StoreKind::Postgres(url) => redact_url(url),
        }
    }
}

/// A URL with its password hidden: the one in the user part (`user:***@host`) and a `password=`
/// query parameter. Everything up to the URL's last `@` counts as the user part, so a password
/// holding `/`, `?` or `@` is hidden whole (an `@` later in the URL hides more, never less).
pub fn redact_url(url: &str) -> String {
    let Some(i) = url.find("://") else {
        return url.to_string();
    };
    let (scheme, mut rest) = url.split_at(i + 3);
    let mut user = String::new();
    if let Some(at) = rest.rfind('@') {
        let (u, after) = rest.split_at(at);
        user = match u.find(':') {
            Some(c) => format!("{}:***", &u[..c]),
            None => u.to_string(),
        };
        rest = after;
    }
    let rest = match rest.split_once('?') {
        Some((path, q)) => {
            let kept: Vec<&str> = q
                .split('&')
                .map(|kv| {
                    if kv.to_ascii_lowercase().starts_with("password=") {
                        "password=***"
                    } else {
                        kv
                    }
                })
                .collect();
            format!("{path}?{}", kept.join("&"))
        }
        None => rest.to_string(),
    };
    format!("{scheme}{user}{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        for (url, shown) in [
            (
                "postgres://alice:s3cret@db:5432/g",
                "postgres://alice:***@db:5432/g",
            ),
            ("postgres://alice@db/g", "postgres://alice@db/g"),
            (
                "postgres://db/g?password=x&sslmode=require",
                "postgres://db/g?password=***&sslmode=require",
            ),
            ("postgres://a:p/w@d@h/g", "postgres://a:***@h/g"),
            (
                "postgresql://a:p?x@h/g?PASSWORD=y",
                "postgresql://a:***@h/g?password=***",
            ),
            ("sqlite:/tmp/x.db", "sqlite:/tmp/x.db"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
