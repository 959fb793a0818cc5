//! Runs: experiments, runs and their ends, run records, lookup by id, prefix or name. Their params
//! and tags are in pairs.rs.

use super::fold_rows as folded;
use super::folded::{ById, ListingRow, RunRow};
use super::series::last_value;
use super::*;

/// A run's columns, as `run_from_row` reads them.
macro_rules! run_columns {
    () => {
        "r.id, e.name, r.name, r.status, r.exit_code, r.started_ms, r.ended_ms, r.host, \
         r.user_name, r.pid, r.command, r.cwd, r.git_commit, r.git_branch, r.git_dirty, r.notes, \
         r.pid_start, r.run_dir, r.env, r.gpus, r.heartbeat_ms"
    };
}

// Read by the SQLite backend's `runs_where` only.
#[allow(dead_code)]
pub(super) const RUN_COLUMNS: &str = run_columns!();

/// The run columns `run_from_row` reads, followed by the rest of the statement.
macro_rules! run_select {
    ($tail:expr) => {
        concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs r JOIN experiments e ON e.id = r.experiment_id ",
            $tail
        )
    };
}

pub(super) const RUN_SELECT_BY_ID: &str = run_select!("WHERE r.id = $1");

pub(super) const RUN_SELECT_BY_STATUS: &str =
    run_select!("WHERE r.status = $1 ORDER BY r.started_ms DESC, r.id");

pub(super) const RUN_SELECT_BY_PREFIX: &str =
    run_select!("WHERE r.id LIKE $1 ORDER BY r.started_ms DESC, r.id");

pub(super) const RUN_SELECT_BY_NAME: &str =
    run_select!("WHERE r.name = $1 ORDER BY r.started_ms DESC, r.id");

pub(super) fn run_from_row(r: &DbRow) -> Result<Run> {
    let status: String = r.get(3);
    let command: String = r.get(10);
    Ok(Run {
        id: r.get(0),
        experiment: r.get(1),
        name: r.get(2),
        status: RunStatus::from_str(&status).map_err(|e| anyhow!(e))?,
        exit_code: r.get(4),
        started_ms: r.get(5),
        ended_ms: r.get(6),
        host: r.get(7),
        user: r.get(8),
        pid: r.get(9),
        command: serde_json::from_str(&command).unwrap_or_else(|_| vec![command.clone()]),
        cwd: r.get(11),
        git_commit: r.get(12),
        git_branch: r.get(13),
        git_dirty: r.get::<Option<i64>, _>(14).map(|d| d != 0),
        notes: r.get(15),
        pid_start: r.get(16),
        run_dir: r.get(17),
        env: serde_json::from_str(r.get::<&str, _>(18)).unwrap_or_default(),
        gpus: serde_json::from_str(r.get::<&str, _>(19)).unwrap_or_default(),
        heartbeat_ms: r.get(20),
    })
}

pub(super) async fn experiment_id_tx(
    tx: &mut sqlx::Transaction<'static, DB>,
    name: &str,
) -> Result<String> {
    if let Some(row) = sqlx::query("SELECT id FROM experiments WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?
    {
        return Ok(row.get(0));
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    sqlx::query("INSERT INTO experiments (id, name, created_ms) VALUES ($1, $2, $3)")
        .bind(&id)
        .bind(name)
        .bind(crate::domain::now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(id)
}

pub(super) fn list_ids(runs: &[Run]) -> String {
    let mut s: Vec<String> = runs
        .iter()
        .take(5)
        .map(|r| format!("{} ({})", r.short_id(), r.name))
        .collect();
    if runs.len() > 5 {
        s.push("…".into());
    }
    s.join(", ")
}

impl Backend {
    /// The id of experiment `name`, created when missing.
    pub async fn experiment_id(&self, name: &str) -> Result<String> {
        let mut tx = self.write_tx().await?;
        let id = experiment_id_tx(&mut tx, name).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Record a new run with status `running`.
    pub async fn create_run(&self, new: &NewRun) -> Result<Run> {
        let id = if new.id.is_empty() {
            crate::domain::new_run_id()
        } else {
            new.id.clone()
        };
        let command = serde_json::to_string(&new.command)?;
        let env = serde_json::to_string(&new.env)?;
        let gpus = serde_json::to_string(&new.gpus)?;
        let mut tx = self.write_tx().await?;
        let exp = experiment_id_tx(&mut tx, &new.experiment).await?;
        sqlx::query(
            "INSERT INTO runs (id, experiment_id, name, status, started_ms, host, user_name, pid, \
             command, cwd, git_commit, git_branch, git_dirty, notes, run_dir, env, gpus) \
             VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&id)
        .bind(&exp)
        .bind(&new.name)
        .bind(new.started_ms)
        .bind(&new.host)
        .bind(&new.user)
        .bind(new.pid)
        .bind(&command)
        .bind(&new.cwd)
        .bind(&new.git_commit)
        .bind(&new.git_branch)
        .bind(new.git_dirty.map(i64::from))
        .bind(&new.notes)
        .bind(&new.run_dir)
        .bind(&env)
        .bind(&gpus)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.run(&id).await
    }

    /// Record the process that runs the command: its pid and start time (clock ticks).
    pub async fn set_pid(&self, id: &str, pid: i64, pid_start: Option<i64>) -> Result<()> {
        let mut tx = self.run_tx(id).await?;
        sqlx::query("UPDATE runs SET pid = $1, pid_start = $2 WHERE id = $3")
            .bind(pid)
            .bind(pid_start)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// How many runs an experiment has; used to name new runs.
    pub async fn count_runs_in(&self, experiment: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE e.name = $1",
        )
        .bind(experiment)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get(0))
    }

    /// Record the `gantry run` process that supervises a run (this process).
    pub async fn set_supervisor(&self, id: &str, pid: i64, start: Option<i64>) -> Result<()> {
        let mut tx = self.run_tx(id).await?;
        sqlx::query(
            "UPDATE runs SET supervisor_pid = $1, supervisor_start = $2, heartbeat_ms = $3 \
             WHERE id = $4",
        )
        .bind(pid)
        .bind(start)
        .bind(crate::domain::now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The GPUs (by UUID) a run's processes were seen on, at `now_ms`; those known already keep
    /// their first time.
    pub async fn add_run_gpus(&self, id: &str, uuids: &[String], now_ms: i64) -> Result<()> {
        let mut tx = self.run_tx(id).await?;
        for u in uuids {
            sqlx::query(
                "INSERT INTO run_gpus (run_id, uuid, first_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (run_id, uuid) DO NOTHING",
            )
            .bind(id)
            .bind(u)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The GPUs (by UUID) of a run, in the order it was first seen on them.
    pub async fn run_gpus(&self, id: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT uuid FROM run_gpus WHERE run_id = $1 ORDER BY first_ms, uuid",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every running run's GPUs: (run id, GPU UUID).
    pub async fn running_gpus(&self) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT g.run_id, g.uuid FROM run_gpus g JOIN runs r ON r.id = g.run_id \
             WHERE r.status = 'running' ORDER BY g.run_id, g.first_ms, g.uuid",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The supervisor of a running run says it is alive, at `now_ms`.
    pub async fn heartbeat(&self, id: &str, now_ms: i64) -> Result<()> {
        let mut tx = self.run_tx(id).await?;
        sqlx::query("UPDATE runs SET heartbeat_ms = $1 WHERE id = $2 AND status = 'running'")
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The supervising process of a run: (pid, start time in clock ticks).
    pub async fn supervisor(&self, id: &str) -> Result<Option<(i64, Option<i64>)>> {
        let row = sqlx::query("SELECT supervisor_pid, supervisor_start FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| Some((r.get::<Option<i64>, _>(0)?, r.get(1)))))
    }

    /// Record how a run ended, as the process that ran it knows it: this replaces `running`, and a
    /// `crashed` guessed by another command, never an end already recorded. Returns whether it did.
    pub async fn finish_run(
        &self,
        id: &str,
        status: RunStatus,
        exit_code: Option<i32>,
        ended_ms: i64,
    ) -> Result<bool> {
        self.end_run(
            "UPDATE runs SET status = $1, exit_code = $2, ended_ms = $3 \
             WHERE id = $4 AND status IN ('running', 'crashed')",
            id,
            status,
            exit_code,
            ended_ms,
        )
        .await
    }

    /// Mark a run crashed, only if it is still `running` (compare-and-set: an end its supervisor
    /// recorded meanwhile stays). Returns whether it did.
    pub async fn mark_crashed(&self, id: &str, ended_ms: i64) -> Result<bool> {
        self.end_run(
            "UPDATE runs SET status = $1, exit_code = $2, ended_ms = $3 \
             WHERE id = $4 AND status = 'running'",
            id,
            RunStatus::Crashed,
            None,
            ended_ms,
        )
        .await
    }

    async fn end_run(
        &self,
        sql: &'static str,
        id: &str,
        status: RunStatus,
        exit_code: Option<i32>,
        ended_ms: i64,
    ) -> Result<bool> {
        let mut tx = self.run_tx(id).await?;
        let r = sqlx::query(sql)
            .bind(status.as_str())
            .bind(exit_code)
            .bind(ended_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// Every run with its params, tags and metric summaries, newest first: four queries in all.
    pub async fn run_records(&self) -> Result<Vec<RunRecord>> {
        self.run_records_with(Parts::ALL).await
    }

    /// Every run's record with only the `parts` asked for filled (the others left empty): a
    /// listing that filters on status and shows 50 runs need not read 300,000 params.
    pub async fn run_records_with(&self, parts: Parts) -> Result<Vec<RunRecord>> {
        let runs = if parts.listing {
            self.runs_listing().await?
        } else {
            self.runs().await?
        };
        let mut recs: Vec<RunRecord> = runs.into_iter().map(RunRecord::bare).collect();
        let index: std::collections::HashMap<String, usize> = recs
            .iter()
            .enumerate()
            .map(|(i, r)| (r.run.id.clone(), i))
            .collect();
        let mut by_id = ById {
            recs: &mut recs,
            index: &index,
        };
        if parts.params {
            let rows = match &parts.only_params {
                None => self.all_pairs(PairTable::Params).await?,
                Some(keys) => {
                    let mut rows = Vec::new();
                    for k in keys {
                        rows.extend(self.params_with_key(k).await?);
                    }
                    rows
                }
            };
            for (id, k, v) in rows {
                if let Some(rec) = by_id.get_mut(&id) {
                    rec.params.insert(k, v);
                }
            }
        }
        if parts.tags {
            for (id, k, v) in self.all_pairs(PairTable::Tags).await? {
                if let Some(rec) = by_id.get_mut(&id) {
                    rec.tags.insert(k, v);
                }
            }
        } else if parts.own_tags {
            for (id, k, v) in self.table_tags().await? {
                if let Some(rec) = by_id.get_mut(&id) {
                    rec.tags.insert(k, v);
                }
            }
        }
        if parts.metrics {
            let rows = match &parts.only_metrics {
                None => self.series_summaries(SeriesKind::Metric).await?,
                Some(keys) => {
                    let mut rows = Vec::new();
                    for k in keys {
                        rows.extend(self.metric_lasts_with_key(k).await?);
                    }
                    rows
                }
            };
            for (id, s) in rows {
                if let Some(rec) = by_id.get_mut(&id) {
                    rec.metrics.insert(s.key.clone(), s);
                }
            }
        }
        let bad = sqlx::query(
            "SELECT run_id, CAST(SUM(malformed) AS BIGINT) FROM ingest_sources GROUP BY run_id",
        )
        .fetch_all(&self.pool)
        .await?;
        for row in bad {
            if let Some(rec) = by_id.get_mut(row.get::<&str, _>(0)) {
                rec.malformed = row.get(1);
            }
        }
        let made = sqlx::query("SELECT run_id, model, version FROM model_versions WHERE run_id IS NOT NULL ORDER BY model, version")
            .fetch_all(&self.pool)
            .await?;
        for row in made {
            if let Some(rec) = by_id.get_mut(row.get::<&str, _>(0)) {
                rec.models.push((row.get(1), row.get(2)));
            }
        }
        Ok(recs)
    }

    /// Fill in the parts of `recs` that `run_records_with` left out, run by run (for the few runs
    /// a listing shows).
    pub async fn fill_records(&self, recs: &mut [RunRecord], parts: &Parts) -> Result<()> {
        let own = crate::domain::table_tags();
        for rec in recs {
            let id = rec.run.id.clone();
            if *parts == Parts::ALL {
                *rec = self.run_record(&id).await?.0;
                continue;
            }
            if parts.params {
                rec.params = self.params(&id).await?.into_iter().collect();
            }
            if parts.tags {
                rec.tags = self.tags(&id).await?.into_iter().collect();
            } else if parts.own_tags {
                rec.tags = self
                    .tags(&id)
                    .await?
                    .into_iter()
                    .filter(|(k, _)| own.contains(k))
                    .collect();
            }
            if parts.metrics {
                rec.metrics = self.run_record(&id).await?.0.metrics;
            }
        }
        Ok(())
    }

    /// One run's record, with its system series summaries too.
    pub async fn run_record(&self, id: &str) -> Result<(RunRecord, Vec<SeriesSummary>)> {
        let run = self.run(id).await?;
        let params = self.params(id).await?.into_iter().collect();
        let tags = self.tags(id).await?.into_iter().collect();
        let mut metrics = std::collections::BTreeMap::new();
        let mut system = Vec::new();
        for kind in [SeriesKind::Metric, SeriesKind::System] {
            let rows = sqlx::query(
                "SELECT key, n_points, last_step, last_value, min_value, max_value, min_step, \
                 max_step FROM series WHERE run_id = $1 AND kind = $2 ORDER BY key",
            )
            .bind(id)
            .bind(kind.as_str())
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                let s = SeriesSummary {
                    key: r.get(0),
                    n_points: r.get(1),
                    last_step: r.get(2),
                    last: last_value(r.get(1), r.get(3)),
                    min: r.get(4),
                    max: r.get(5),
                    min_step: r.get(6),
                    max_step: r.get(7),
                };
                match kind {
                    SeriesKind::Metric => {
                        metrics.insert(s.key.clone(), s);
                    }
                    SeriesKind::System => system.push(s),
                }
            }
        }
        let malformed = self.malformed(id).await?.1;
        let models = self.models_of_run(id).await?;
        Ok((
            RunRecord {
                run,
                params,
                tags,
                metrics,
                malformed,
                models,
            },
            system,
        ))
    }

    /// Give a run a new name.
    pub async fn rename_run(&self, id: &str, name: &str) -> Result<()> {
        let mut tx = self.run_tx(id).await?;
        sqlx::query("UPDATE runs SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Delete runs and everything of theirs in the store. Returns how many were deleted.
    pub async fn delete_runs(&self, ids: &[String]) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let mut n = 0;
        for id in ids {
            n += sqlx::query("DELETE FROM runs WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    pub async fn run(&self, id: &str) -> Result<Run> {
        let row = sqlx::query(RUN_SELECT_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| anyhow!("no run with id {id}"))?;
        run_from_row(&row)
    }

    /// Runs with one status, newest first.
    pub async fn runs_with_status(&self, status: RunStatus) -> Result<Vec<Run>> {
        let rows = sqlx::query(RUN_SELECT_BY_STATUS)
            .bind(status.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// The first `limit` runs in `order` (ties: newest first, then id), read in SQL, and how many
    /// runs there are: a listing without a filter reads `limit` rows, not every run. PostgreSQL's
    /// (SQLite's `runs_where` does this and filters too).
    #[allow(dead_code)]
    pub async fn runs_page(
        &self,
        order: RunOrder,
        desc: bool,
        limit: usize,
    ) -> Result<(Vec<Run>, i64)> {
        macro_rules! page {
            ($col:literal) => {
                if desc {
                    run_select!(concat!(
                        "ORDER BY ",
                        $col,
                        " DESC, r.started_ms DESC, r.id LIMIT $1"
                    ))
                } else {
                    run_select!(concat!(
                        "ORDER BY ",
                        $col,
                        " ASC, r.started_ms DESC, r.id LIMIT $1"
                    ))
                }
            };
        }
        let sql = match order {
            RunOrder::Started => page!("r.started_ms"),
            RunOrder::Name => page!("r.name"),
            RunOrder::Status => page!("r.status"),
            RunOrder::Experiment => page!("e.name"),
            RunOrder::Id => page!("r.id"),
        };
        let rows = sqlx::query(sql)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        let total: i64 = sqlx::query("SELECT COUNT(*) FROM runs")
            .fetch_one(&self.pool)
            .await?
            .get(0);
        Ok((rows.iter().map(run_from_row).collect::<Result<_>>()?, total))
    }

    /// Every run with only the columns a listing needs (see `Parts::listing`; the others read
    /// as empty), newest first.
    pub async fn runs_listing(&self) -> Result<Vec<Run>> {
        let rows: Vec<ListingRow> = folded(
            &self.pool,
            "id, experiment, name, status, exit_code, started_ms, ended_ms, host, heartbeat_ms",
            "SELECT r.id, e.name AS experiment, r.name, r.status, r.exit_code, r.started_ms, \
             r.ended_ms, r.host, r.heartbeat_ms \
             FROM runs r JOIN experiments e ON e.id = r.experiment_id",
            None,
        )
        .await?;
        let mut runs = rows
            .into_iter()
            .map(ListingRow::into_run)
            .collect::<Result<Vec<_>>>()?;
        newest_first(&mut runs);
        Ok(runs)
    }

    pub async fn runs(&self) -> Result<Vec<Run>> {
        // Unordered (sorted below): the table is read in storage order, not through an index.
        self.runs_folded(&run_select!("").replacen(
            "SELECT r.id, e.name,",
            "SELECT r.id, e.name AS experiment,",
            1,
        ))
        .await
    }

    /// The runs `select` reads (the columns of `run_select!`, the experiment's named
    /// `experiment`), folded, newest first.
    async fn runs_folded(&self, select: &str) -> Result<Vec<Run>> {
        let rows: Vec<RunRow> = folded(
            &self.pool,
            "id, experiment, name, status, exit_code, started_ms, ended_ms, host, user_name, \
             pid, command, cwd, git_commit, git_branch, git_dirty, notes, pid_start, run_dir, \
             env, gpus, heartbeat_ms",
            select,
            None,
        )
        .await?;
        let mut runs = rows
            .into_iter()
            .map(RunRow::into_run)
            .collect::<Result<Vec<_>>>()?;
        newest_first(&mut runs);
        Ok(runs)
    }

    /// The run a person means: an exact id, else a unique name, else a unique id prefix.
    pub async fn resolve_run(&self, what: &str) -> Result<Run, UserError> {
        let db = |e: sqlx::Error| UserError::new("cannot read runs from the store").cause(e);
        let rows = |rows: Vec<DbRow>| -> Result<Vec<Run>, UserError> {
            rows.iter()
                .map(run_from_row)
                .collect::<Result<Vec<_>>>()
                .map_err(|e| UserError::new("cannot read runs from the store").cause(e))
        };
        let exact = rows(
            sqlx::query(RUN_SELECT_BY_ID)
                .bind(what)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?,
        )?;
        if let Some(run) = exact.into_iter().next() {
            return Ok(run);
        }
        let named = rows(
            sqlx::query(RUN_SELECT_BY_NAME)
                .bind(what)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?,
        )?;
        match named.len() {
            0 => {}
            1 => return Ok(named.into_iter().next().expect("one")),
            n => {
                return Err(UserError::new(format!("{n} runs are named `{what}`"))
                    .hint(format!("use an id instead: {}", list_ids(&named))));
            }
        }
        if !what.is_empty() && what.chars().all(|c| c.is_ascii_hexdigit()) {
            let like = format!("{}%", what.to_ascii_lowercase());
            let found = rows(
                sqlx::query(RUN_SELECT_BY_PREFIX)
                    .bind(&like)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?,
            )?;
            match found.len() {
                0 => {}
                1 => return Ok(found.into_iter().next().expect("one")),
                n => {
                    return Err(
                        UserError::new(format!("`{what}` is the start of {n} run ids"))
                            .hint(format!("give more of the id: {}", list_ids(&found))),
                    );
                }
            }
        }
        Err(
            UserError::new(format!("no run has the id or name `{what}`"))
                .hint("`gantry runs` lists the runs in this workspace"),
        )
    }

    /// Counts for quick summaries: (runs, series, points).
    pub async fn counts(&self) -> Result<(i64, i64, i64)> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM series), \
             (SELECT CAST(COALESCE(SUM(n_points), 0) AS BIGINT) FROM series)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.get(0), row.get(1), row.get(2)))
    }
}

/// The listing's order (an aggregate's order is not promised): newest first, then by id.
fn newest_first(runs: &mut [Run]) {
    runs.sort_by(|a, b| {
        b.started_ms
            .cmp(&a.started_ms)
            .then_with(|| a.id.cmp(&b.id))
    });
}
