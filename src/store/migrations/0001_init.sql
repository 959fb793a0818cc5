-- gantry store, version 1. Statements stay within what SQLite and PostgreSQL share; the few type
-- names that differ (BLOB here, BYTEA there; INTEGER PRIMARY KEY here, an identity column there)
-- are confined to these DDL files, one set per backend.

CREATE TABLE experiments (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    experiment_id   TEXT NOT NULL REFERENCES experiments(id),
    name            TEXT NOT NULL,
    status          TEXT NOT NULL
                    CHECK (status IN ('running', 'finished', 'failed', 'killed', 'crashed')),
    exit_code       INTEGER,
    started_ms      BIGINT NOT NULL,
    ended_ms        BIGINT,
    host            TEXT NOT NULL,
    user_name       TEXT NOT NULL,
    pid             BIGINT,                 -- the command's process (its group leader)
    pid_start       BIGINT,                 -- its start time in clock ticks, to spot pid reuse
    command         TEXT NOT NULL,          -- JSON array of argv
    cwd             TEXT NOT NULL,
    git_commit      TEXT,
    git_branch      TEXT,
    git_dirty       INTEGER,
    notes           TEXT NOT NULL DEFAULT '',
    run_dir         TEXT NOT NULL DEFAULT '',
    env             TEXT NOT NULL DEFAULT '{}', -- JSON object: selected environment variables
    gpus            TEXT NOT NULL DEFAULT '[]'  -- JSON array: GPU names seen at start
);
CREATE INDEX runs_by_start ON runs (started_ms);
CREATE INDEX runs_by_status ON runs (status);
CREATE INDEX runs_by_name ON runs (name);
CREATE INDEX runs_by_experiment ON runs (experiment_id);

CREATE TABLE params (
    run_id  TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

-- How far each metrics file of a run has been stored: bytes and lines consumed, lines rejected.
-- Updated in the same transaction as the points, so a crash never stores a line twice or loses one.
CREATE TABLE ingest_sources (
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    source      TEXT NOT NULL,          -- 'metrics' ($GANTRY_METRICS) | 'stdout' (captured output)
    byte_offset BIGINT NOT NULL DEFAULT 0,
    line_count  BIGINT NOT NULL DEFAULT 0,
    malformed   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, source)
);

-- The first malformed lines of each source, for `gantry show`.
CREATE TABLE malformed_lines (
    run_id  TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    source  TEXT NOT NULL,
    line_no BIGINT NOT NULL,
    reason  TEXT NOT NULL,
    PRIMARY KEY (run_id, source, line_no)
);

CREATE TABLE tags (
    run_id  TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

-- One row per series: a run's metric (kind 'metric') or system sample stream (kind 'system':
-- cpu, rss, gpu util...). The summary columns let run lists show last/min/max without the points.
CREATE TABLE series (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('metric', 'system')),
    key         TEXT NOT NULL,
    n_points    BIGINT NOT NULL DEFAULT 0,
    n_chunks    BIGINT NOT NULL DEFAULT 0,
    last_step   BIGINT,
    last_value  DOUBLE PRECISION,
    min_value   DOUBLE PRECISION,
    max_value   DOUBLE PRECISION,
    UNIQUE (run_id, kind, key)
);

-- Points are stored in chunks, many per row (see store/chunk.rs for the encoding): a row per point
-- cannot reach millions of points per second, nor load a 1M-point series in milliseconds.
CREATE TABLE series_chunks (
    series_id   INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    first_step  BIGINT NOT NULL,
    last_step   BIGINT NOT NULL,
    n_points    INTEGER NOT NULL,
    data        BLOB NOT NULL,
    PRIMARY KEY (series_id, seq)
);

CREATE TABLE model_versions (
    model       TEXT NOT NULL,
    version     INTEGER NOT NULL,
    commit_id   TEXT NOT NULL,
    run_id      TEXT REFERENCES runs(id) ON DELETE SET NULL,
    created_ms  BIGINT NOT NULL,
    author      TEXT NOT NULL,
    notes       TEXT NOT NULL DEFAULT '',
    total_bytes BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (model, version)
);

CREATE TABLE bench_results (
    id          TEXT PRIMARY KEY,
    started_ms  BIGINT NOT NULL,
    host        TEXT NOT NULL,
    backend     TEXT NOT NULL,          -- cuda | cpu
    device      TEXT NOT NULL,
    benchmark   TEXT NOT NULL,          -- gemm | membw | h2d | d2h | launch ...
    config      TEXT NOT NULL,          -- JSON: precision, size, ...
    unit        TEXT NOT NULL,
    median      DOUBLE PRECISION NOT NULL,
    min_value   DOUBLE PRECISION NOT NULL,
    max_value   DOUBLE PRECISION NOT NULL,
    stddev      DOUBLE PRECISION NOT NULL,
    repetitions INTEGER NOT NULL,
    peak        DOUBLE PRECISION
);
CREATE INDEX bench_by_name ON bench_results (benchmark, started_ms);
