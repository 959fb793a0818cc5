//! The PostgreSQL team store: connecting (URL, `PGPASSWORD` or `~/.pgpass`; TLS through rustls
//! with `sslmode=require` or `verify-full`), clear errors naming the host and port, and the
//! schema, brought up to date on first connect under PostgreSQL's advisory lock (sqlx's migrator
//! takes it), so several hosts starting at once migrate once. The DDL is PostgreSQL's own
//! (`migrations/postgres/`), version for version with SQLite's.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::domain::store::redact_url;
use crate::error::UserError;

/// How long connecting may take before the store counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn migrator() -> Migrator {
    let m = super::migration;
    Migrator::with_migrations(vec![
        m(1, "init", include_str!("migrations/postgres/0001_init.sql")),
        m(
            2,
            "bench history",
            include_str!("migrations/postgres/0002_bench_history.sql"),
        ),
        m(
            3,
            "bench conditions",
            include_str!("migrations/0003_bench_conditions.sql"),
        ),
        m(
            4,
            "reliability",
            include_str!("migrations/postgres/0004_reliability.sql"),
        ),
        m(5, "keys", include_str!("migrations/postgres/0005_keys.sql")),
        m(
            6,
            "heartbeat",
            include_str!("migrations/0006_heartbeat.sql"),
        ),
        m(7, "logs", include_str!("migrations/postgres/0007_logs.sql")),
        m(
            8,
            "chunk storage",
            include_str!("migrations/postgres/0008_chunk_storage.sql"),
        ),
        m(9, "run gpus", include_str!("migrations/0009_run_gpus.sql")),
    ])
}

/// What connecting to a team store found.
#[derive(Debug, Clone)]
pub struct TeamStore {
    pub pool: PgPool,
    /// The server's `server_version`, e.g. `15.14 (Debian 15.14-0+deb12u1)`.
    pub server_version: String,
    /// The schema version after migrating.
    pub schema_version: i64,
    /// Where it is: `user@host:port/database`, no password.
    pub place: String,
}

impl TeamStore {
    /// The median of `n` round trips of a trivial query, in milliseconds; None when none came
    /// back.
    pub async fn round_trip_ms(&self, n: usize) -> Option<f64> {
        let mut trips = Vec::new();
        for _ in 0..n {
            let t = std::time::Instant::now();
            if sqlx::query("SELECT 1").execute(&self.pool).await.is_ok() {
                trips.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        trips.sort_by(f64::total_cmp);
        trips.get(trips.len() / 2).copied()
    }
}

/// Connect to the team store at `url` and bring its schema up to date; the first connection
/// may take `within`.
pub async fn open(url: &str, within: Duration) -> Result<TeamStore, UserError> {
    let shown = redact_url(url);
    let opts = PgConnectOptions::from_str(url).map_err(|e| {
        UserError::new(format!("`{shown}` is not a PostgreSQL URL gantry can read"))
            .cause(redact_url(&e.to_string()))
            .hint("write it as postgres://USER@HOST:PORT/DATABASE (sslmode=require for TLS)")
    })?;
    let place = format!(
        "{}@{}:{}/{}",
        opts.get_username(),
        opts.get_host(),
        opts.get_port(),
        opts.get_database().unwrap_or(opts.get_username())
    );
    let unreachable = |e: &dyn std::fmt::Display| {
        let cause = e.to_string();
        let lower = cause.to_ascii_lowercase();
        let hint = if lower.contains("password") || lower.contains("authentication") {
            "give the password in the URL, PGPASSWORD or ~/.pgpass, and check the user's rights \
             in pg_hba.conf"
        } else if lower.contains("does not exist") {
            "create the database first: createdb -h HOST -U USER DATABASE"
        } else if lower.contains("tls") || lower.contains("ssl") || lower.contains("certificate") {
            "check sslmode (disable, prefer, require, verify-ca, verify-full) and sslrootcert"
        } else {
            "check that the server runs and listens there (listen_addresses, port, firewall)"
        };
        UserError::new(format!(
            "cannot reach the team store at {}:{} (database {}, user {})",
            opts.get_host(),
            opts.get_port(),
            opts.get_database().unwrap_or(opts.get_username()),
            opts.get_username()
        ))
        .cause(redact_url(&cause))
        .hint(hint)
    };
    // One connection first, for the server's own reason when it fails (a pool retries until its
    // timeout and then says only that it timed out).
    {
        use sqlx::Connection;
        let first = tokio::time::timeout(within, sqlx::PgConnection::connect_with(&opts))
            .await
            .map_err(|_| unreachable(&format!("no answer within {within:?}")))?
            .map_err(|e| unreachable(&e))?;
        let _ = first.close().await;
    }
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(opts.clone())
        .await
        .map_err(|e| unreachable(&e))?;
    // A schema already up to date is left alone, so a role that may only read can connect
    // (the migrator would first make its own table, which needs CREATE rights).
    let migrator = migrator();
    let latest = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    let current: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&pool)
            .await
            .ok()
            .flatten();
    if current.is_none_or(|v| v < latest) {
        migrator.run(&pool).await.map_err(|e| {
            UserError::new(format!(
                "cannot bring the team store's schema up to date at {place}"
            ))
            .cause(e)
            .hint(
                "the user needs CREATE rights on the database's public schema; a store written \
                 by a newer gantry needs that gantry",
            )
        })?;
    }
    let row = sqlx::query(
        "SELECT current_setting('server_version'), \
         (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .fetch_one(&pool)
    .await
    .map_err(|e| unreachable(&e))?;
    Ok(TeamStore {
        pool,
        server_version: row.get(0),
        schema_version: row.get::<Option<i64>, _>(1).unwrap_or(0),
        place,
    })
}
