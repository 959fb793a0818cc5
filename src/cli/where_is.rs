use super::out::{self, outln};
use std::process::ExitCode;

use serde::Serialize;

use crate::domain::store::StoreKind;
use crate::workspace::Workspace;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print JSON: {"root", "dir", "source", "store", "store_kind", "store_source", "log"}, and
    /// with --check "server" and "schema"
    #[arg(long)]
    pub json: bool,
    /// Connect to the store: for a PostgreSQL team store, reach it, bring its schema up to date
    /// and print the server's version
    #[arg(long)]
    pub check: bool,
}

#[derive(Serialize)]
struct Where {
    root: String,
    dir: String,
    source: String,
    /// A path, or a URL without its password.
    store: String,
    store_kind: &'static str,
    store_source: String,
    log: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<i64>,
}

pub async fn run(args: Args, ws: &Workspace) -> anyhow::Result<ExitCode> {
    let loc = super::common::store_location(ws)?;
    let mut w = Where {
        root: ws.root.display().to_string(),
        dir: ws.dir().display().to_string(),
        source: ws.source.to_string(),
        store: loc.shown(),
        store_kind: match loc.kind {
            StoreKind::Sqlite(_) => "sqlite",
            StoreKind::Postgres(_) => "postgres",
        },
        store_source: loc.source.to_string(),
        log: ws.log_file().display().to_string(),
        server: None,
        schema: None,
    };
    if args.check {
        match &loc.kind {
            StoreKind::Postgres(url) => {
                let team =
                    crate::store::postgres::open(url, crate::store::postgres::CONNECT_TIMEOUT)
                        .await?;
                w.server = Some(format!("PostgreSQL {}", team.server_version));
                w.schema = Some(team.schema_version);
                team.pool.close().await;
            }
            StoreKind::Sqlite(path) => {
                let store = crate::store::Store::open(path).await?;
                w.server = Some(store.engine_version().await?);
                w.schema = Some(store.schema_version().await?);
                store.close().await;
            }
        }
    }
    if args.json {
        out::json(&w)?;
    } else {
        outln!("{}", w.root);
        outln!("  why:   {}", w.source);
        outln!("  store: {} ({})", w.store, w.store_source);
        if let (Some(server), Some(schema)) = (&w.server, w.schema) {
            outln!("         reached: {server}, schema version {schema}");
        }
        outln!("  log:   {}", w.log);
    }
    Ok(ExitCode::SUCCESS)
}
