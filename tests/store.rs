//! Store tests on fresh temporary databases.

mod common;

use gantry::domain::{NewRun, RunStatus, Series, SeriesKind};
use gantry::store::{Parts, Store, chunk};

fn new_run(name: &str, experiment: &str, started_ms: i64) -> NewRun {
    NewRun {
        experiment: experiment.into(),
        name: name.into(),
        started_ms,
        host: "gpu01".into(),
        user: "ana".into(),
        pid: Some(4242),
        command: vec![
            "python".into(),
            "train.py".into(),
            "--lr".into(),
            "3e-4".into(),
        ],
        cwd: "/home/ana/proj".into(),
        git_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        git_branch: Some("main".into()),
        git_dirty: Some(true),
        notes: "first try".into(),
        ..NewRun::default()
    }
}

async fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("gantry.db")).await.unwrap();
    (dir, store)
}

/// The backend a test of the queries runs on: each such test runs on both.
#[derive(Clone, Copy, PartialEq, Eq)]
enum B {
    Lite,
    Pg,
}

/// A fresh, empty store on `b`: a SQLite file in a folder of its own, or a PostgreSQL database
/// of its own on the test server.
async fn fresh_on(b: B) -> (Option<tempfile::TempDir>, Store) {
    match b {
        B::Lite => {
            let (d, s) = fresh().await;
            (Some(d), s)
        }
        B::Pg => {
            let url = tokio::task::spawn_blocking(common::postgres::fresh_db)
                .await
                .unwrap()
                .expect("the test server went away");
            (None, Store::open_team(&url).await.unwrap())
        }
    }
}

/// Whether the PostgreSQL test server is there (else `skip` has said why).
async fn pg_here() -> bool {
    tokio::task::spawn_blocking(common::postgres::fresh_db)
        .await
        .unwrap()
        .is_some()
}

/// A test of the queries, run on SQLite (`NAME::sqlite`) and on PostgreSQL (`NAME::postgres`).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                super::$name(B::Lite).await
            }
            #[tokio::test]
            async fn postgres() {
                if pg_here().await {
                    super::$name(B::Pg).await
                }
            }
        }
    )*};
}

on_both!(
    runs_round_trip_with_params_tags_and_status,
    series_round_trip_across_chunks_and_appends,
    merging_tails_keeps_every_point_in_order,
    folded_listings_keep_every_double_and_string_exact,
    summaries_know_the_best_value_and_its_first_step,
    a_batch_of_imported_runs_is_stored_as_run_by_run,
    output_chunks_are_stored_once_at_the_end_and_read_from_any_byte,
    a_copy_of_many_runs_in_batches_keeps_every_run_exactly,
);

async fn runs_round_trip_with_params_tags_and_status(b: B) {
    let (_d, store) = fresh_on(b).await;
    let a = store
        .create_run(&new_run("a", "vision", 1_000))
        .await
        .unwrap();
    let b = store
        .create_run(&new_run("b", "vision", 2_000))
        .await
        .unwrap();
    assert_eq!(a.status, RunStatus::Running);
    assert_eq!(a.command[3], "3e-4");
    assert_eq!(a.git_dirty, Some(true));
    store
        .set_params(
            &a.id,
            &[("lr".into(), "3e-4".into()), ("bs".into(), "64".into())],
        )
        .await
        .unwrap();
    store
        .set_params(&a.id, &[("lr".into(), "1e-3".into())])
        .await
        .unwrap();
    store
        .set_tags(&a.id, &[("baseline".into(), "true".into())])
        .await
        .unwrap();
    assert_eq!(
        store.params(&a.id).await.unwrap(),
        vec![("bs".into(), "64".into()), ("lr".into(), "1e-3".into())]
    );
    assert_eq!(
        store.tags(&a.id).await.unwrap(),
        vec![("baseline".into(), "true".into())]
    );
    store
        .finish_run(&a.id, RunStatus::Failed, Some(3), 9_000)
        .await
        .unwrap();
    let runs = store.runs().await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["b", "a"],
        "newest first"
    );
    let a2 = &runs[1];
    assert_eq!(
        (a2.status, a2.exit_code, a2.ended_ms),
        (RunStatus::Failed, Some(3), Some(9_000))
    );
    assert_eq!(a2.experiment, "vision");
    assert_eq!(a2.duration_ms(0), 8_000);
    assert!(
        !store
            .finish_run("nope", RunStatus::Finished, None, 1)
            .await
            .unwrap(),
        "no such run: nothing recorded"
    );
    // Ends are compare-and-set: another command's `crashed` never overwrites a recorded end, and
    // the supervisor's end replaces a `crashed` guessed while it was still finishing.
    assert!(!store.mark_crashed(&a.id, 10_000).await.unwrap());
    assert_eq!(store.run(&a.id).await.unwrap().status, RunStatus::Failed);
    assert!(store.mark_crashed(&b.id, 10_000).await.unwrap());
    assert!(
        store
            .finish_run(&b.id, RunStatus::Finished, Some(0), 11_000)
            .await
            .unwrap()
    );
    let b2 = store.run(&b.id).await.unwrap();
    assert_eq!(
        (b2.status, b2.exit_code, b2.ended_ms),
        (RunStatus::Finished, Some(0), Some(11_000))
    );
    assert!(
        !store
            .finish_run(&b.id, RunStatus::Failed, Some(1), 12_000)
            .await
            .unwrap(),
        "a second end is refused"
    );
}

async fn series_round_trip_across_chunks_and_appends(b: B) {
    let (_d, store) = fresh_on(b).await;
    let run = store.create_run(&new_run("r", "e", 0)).await.unwrap();
    let n = chunk::CHUNK_POINTS * 2 + 17;
    let mut all = Series::default();
    // Three appends of uneven sizes, one of them crossing chunk boundaries.
    for (lo, hi) in [(0, 5), (5, n - 3), (n - 3, n)] {
        let mut part = Series::default();
        for i in lo..hi {
            let v = match i {
                7 => f64::NAN,
                8 => f64::INFINITY,
                _ => (i as f64).sin(),
            };
            part.push(i as i64, 1_700_000_000_000 + i as i64 * 10, v);
            all.push(i as i64, 1_700_000_000_000 + i as i64 * 10, v);
        }
        let sys = Series {
            steps: vec![lo as i64],
            times_ms: vec![0],
            values: vec![50.0],
        };
        store
            .append(
                &run.id,
                &[
                    (SeriesKind::Metric, "train/loss", &part),
                    (SeriesKind::System, "cpu", &sys),
                ],
            )
            .await
            .unwrap();
    }
    let back = store
        .load_series(&run.id, SeriesKind::Metric, "train/loss")
        .await
        .unwrap();
    assert_eq!(back.len(), n);
    assert_eq!(back.steps, all.steps);
    assert_eq!(back.times_ms, all.times_ms);
    let bits = |s: &Series| s.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&back), bits(&all), "NaN and Inf kept bit for bit");
    assert_eq!(
        store
            .load_series(&run.id, SeriesKind::System, "cpu")
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        store
            .series_keys(&run.id, SeriesKind::Metric)
            .await
            .unwrap(),
        ["train/loss"]
    );
    assert_eq!(store.counts().await.unwrap(), (1, 2, n as i64 + 3));
    let err = store
        .load_series(&run.id, SeriesKind::Metric, "nope")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no metric series `nope`"), "{err}");
}

#[tokio::test]
async fn reopening_keeps_data_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gantry.db");
    let id = {
        let s = Store::open(&path).await.unwrap();
        let r = s.create_run(&new_run("keep", "e", 5)).await.unwrap();
        s.close().await;
        r.id
    };
    let s = Store::open(&path).await.unwrap();
    assert_eq!(s.run(&id).await.unwrap().name, "keep");
}

#[tokio::test]
async fn the_database_speaks_wal_and_foreign_keys() {
    let (dir, store) = fresh().await;
    let run = store.create_run(&new_run("r", "e", 0)).await.unwrap();
    store.close().await;
    // A real sqlite3 reads what we wrote, where the tool is installed.
    let db = dir.path().join("gantry.db");
    match std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("PRAGMA journal_mode; SELECT name FROM runs;")
        .output()
    {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(text.lines().collect::<Vec<_>>(), ["wal", "r"], "{text}");
        }
        _ => common::skip("the sqlite3 check: the sqlite3 tool is not installed"),
    }
    let _ = run;
}

#[tokio::test]
async fn a_corrupt_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gantry.db");
    std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
    let err = Store::open(&path).await.unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("not a database"), "{err}");
    assert!(err.contains("move it aside"), "{err}");
}

async fn merging_tails_keeps_every_point_in_order(b: B) {
    let (_d, store) = fresh_on(b).await;
    let run = store.create_run(&new_run("r", "e", 0)).await.unwrap();
    let mut all = Series::default();
    let push = |lo: usize, hi: usize, all: &mut Series| {
        let mut part = Series::default();
        for i in lo..hi {
            let v = if i == 3 { f64::NAN } else { (i as f64).cos() };
            part.push(i as i64, 1_700_000_000_000 + i as i64, v);
            all.push(i as i64, 1_700_000_000_000 + i as i64, v);
        }
        part
    };
    // Point by point, as a client logging one metric per call.
    for i in 0..600 {
        let p = push(i, i + 1, &mut all);
        store
            .append(&run.id, &[(SeriesKind::Metric, "loss", &p)])
            .await
            .unwrap();
    }
    assert_eq!(store.merge_tails(&run.id).await.unwrap(), 1);
    assert_eq!(
        store.merge_tails(&run.id).await.unwrap(),
        0,
        "nothing left to merge"
    );
    assert_eq!(store.compact(&run.id).await.unwrap(), 0, "already whole");
    // A big batch, then single points again: only the tail that fits one chunk is merged.
    let big = push(600, 20_600, &mut all);
    store
        .append(&run.id, &[(SeriesKind::Metric, "loss", &big)])
        .await
        .unwrap();
    for i in 20_600..20_610 {
        let p = push(i, i + 1, &mut all);
        store
            .append(&run.id, &[(SeriesKind::Metric, "loss", &p)])
            .await
            .unwrap();
    }
    assert_eq!(store.merge_tails(&run.id).await.unwrap(), 1);
    let back = store
        .load_series(&run.id, SeriesKind::Metric, "loss")
        .await
        .unwrap();
    assert_eq!(back.steps, all.steps);
    assert_eq!(back.times_ms, all.times_ms);
    let bits = |s: &Series| s.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&back), bits(&all));
    // Appends after a merge keep their order.
    let more = push(20_610, 20_620, &mut all);
    store
        .append(&run.id, &[(SeriesKind::Metric, "loss", &more)])
        .await
        .unwrap();
    let back = store
        .load_series(&run.id, SeriesKind::Metric, "loss")
        .await
        .unwrap();
    assert_eq!(back.steps, all.steps);
    assert_eq!(store.merge_tails(&run.id).await.unwrap(), 1);
    assert_eq!(
        store.compact(&run.id).await.unwrap(),
        0,
        "the tail merged, the rest whole"
    );
}

/// Listings read many rows folded into one JSON value; the summaries' doubles cross as their bits
/// (the SQL function `f64_bits`). They must come back bit for bit, whole or as a listing's last
/// values: extremes, subnormals, infinities, random bits. (SQLite itself
/// stores -0.0 as 0.0, row by row or folded.)
async fn folded_listings_keep_every_double_and_string_exact(b: B) {
    let (_d, store) = fresh_on(b).await;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut values = vec![
        0.1 + 0.2,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1.0 / 3.0,
        9007199254740993.0,
    ];
    for _ in 0..400 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = f64::from_bits(x);
        if v.is_finite() {
            values.push(v);
        }
    }
    let mut want = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let mut run = new_run(&format!("r{i} \u{1b}[31m\"é\n"), "exp", 1_000 + i as i64);
        run.env.insert("K\u{0}".into(), "v\"".into());
        let r = store.create_run(&run).await.unwrap();
        let mut s = Series::default();
        s.push(0, 0, *v);
        store
            .append(&r.id, &[(SeriesKind::Metric, "m", &s)])
            .await
            .unwrap();
        store
            .set_params(&r.id, &[("p".into(), format!("{v:e}\t\u{7f}"))])
            .await
            .unwrap();
        // gantry's own tags the table reads, beside one it does not (`_` is no wildcard).
        store
            .set_tags(
                &r.id,
                &[
                    ("gantry.alert.nan".into(), format!("{{\"v\": \"{v:e}\"}}")),
                    ("gantry_alert_x".into(), "no".into()),
                    ("preflight".into(), "passed".into()),
                ],
            )
            .await
            .unwrap();
        want.push((r.id, *v, run.name, run.env));
    }
    let recs = store.run_records().await.unwrap();
    assert_eq!(recs.len(), want.len());
    let lasts = store
        .run_records_with(Parts {
            listing: true,
            params: false,
            tags: false,
            own_tags: true,
            metrics: true,
            only_params: Some(vec![]),
            only_metrics: Some(vec!["m".into()]),
        })
        .await
        .unwrap();
    for (id, v, name, env) in want {
        let rec = recs.iter().find(|r| r.run.id == id).unwrap();
        let s = &rec.metrics["m"];
        for got in [s.last, s.min, s.max] {
            assert_eq!(got.map(f64::to_bits), Some(v.to_bits()), "{v:e}");
        }
        let listed = &lasts.iter().find(|r| r.run.id == id).unwrap().metrics["m"];
        assert_eq!(listed.last.map(f64::to_bits), Some(v.to_bits()), "{v:e}");
        assert_eq!((listed.n_points, listed.last_step), (1, Some(0)));
        let tags = &lasts.iter().find(|r| r.run.id == id).unwrap().tags;
        let keys: Vec<&str> = tags.keys().map(String::as_str).collect();
        assert_eq!(keys, ["gantry.alert.nan", "preflight"]);
        assert_eq!(tags["gantry.alert.nan"], format!("{{\"v\": \"{v:e}\"}}"));
        assert_eq!(rec.run.name, name);
        assert_eq!(rec.run.env, env);
        assert_eq!(rec.params["p"], format!("{v:e}\t\u{7f}"));
    }
    // Newest first, as before.
    assert!(
        recs.windows(2)
            .all(|w| w[0].run.started_ms >= w[1].run.started_ms)
    );
    // A listing holds the same runs with their listing columns, the rest left empty.
    let listed = store.runs_listing().await.unwrap();
    assert_eq!(listed.len(), recs.len());
    for (l, r) in listed.iter().zip(&recs) {
        let r = &r.run;
        assert_eq!(
            (&l.id, &l.experiment, &l.name, l.status, l.exit_code),
            (&r.id, &r.experiment, &r.name, r.status, r.exit_code)
        );
        assert_eq!(
            (l.started_ms, l.ended_ms, &l.host),
            (r.started_ms, r.ended_ms, &r.host)
        );
        assert!(l.env.is_empty() && l.command.is_empty() && !r.env.is_empty());
    }
}

/// A chunk damaged on disk is an error naming the series and run, never a panic or wrong points.
#[tokio::test]
async fn a_damaged_chunk_is_a_clear_error() {
    let (dir, store) = fresh().await;
    let r = store.create_run(&new_run("r", "e", 1)).await.unwrap();
    let mut s = Series::default();
    for i in 0..100 {
        s.push(i, i, i as f64);
    }
    store
        .append(&r.id, &[(SeriesKind::Metric, "loss", &s)])
        .await
        .unwrap();
    store.close().await;
    let db = rusqlite::Connection::open(dir.path().join("gantry.db")).unwrap();
    for bad in [&b"\x02\xff\xff"[..], b"", b"\x01\x00\x00\x00\x07"] {
        db.execute("UPDATE series_chunks SET data = ?1", [bad])
            .unwrap();
        let store = Store::open(&dir.path().join("gantry.db")).await.unwrap();
        let e = store
            .load_series(&r.id, SeriesKind::Metric, "loss")
            .await
            .unwrap_err();
        assert!(
            format!("{e:#}").contains(&format!("series `loss` of run {} is damaged", r.id)),
            "{e:#}"
        );
        store.close().await;
    }
}

/// The summary keeps the first step of the minimum and maximum across appends, so a comparison's
/// best value and step match what the points say, NaN skipped, ties to the first step.
async fn summaries_know_the_best_value_and_its_first_step(b: B) {
    use gantry::domain::Direction;
    let (_d, store) = fresh_on(b).await;
    let r = store.create_run(&new_run("r", "e", 1)).await.unwrap();
    let mut x = 7u64;
    let mut all = Series::default();
    let mut step = 0;
    for batch in 0..12 {
        let mut s = Series::default();
        for _ in 0..(1 + batch * 7 % 13) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = match x % 9 {
                0 => f64::NAN,
                1 => 0.5, // ties
                _ => (x % 1000) as f64 / 100.0 - 3.0,
            };
            s.push(step, step, v);
            all.push(step, step, v);
            step += 1 + (x % 3) as i64;
        }
        store
            .append(&r.id, &[(SeriesKind::Metric, "m", &s)])
            .await
            .unwrap();
        let (rec, _) = store.run_record(&r.id).await.unwrap();
        for dir in [Direction::Lower, Direction::Higher] {
            assert_eq!(
                rec.metrics["m"].best(dir),
                all.best(dir),
                "batch {batch} {dir:?}"
            );
        }
    }
    // The listing's summaries say the same.
    let recs = store.run_records().await.unwrap();
    assert_eq!(
        recs[0].metrics["m"].best(Direction::Lower),
        all.best(Direction::Lower)
    );
}

fn imported(i: usize) -> gantry::domain::ImportedRun {
    let mut s = Series::default();
    for k in 0..(20 + i * 3) {
        s.push(
            k as i64,
            k as i64 * 10,
            if k % 7 == 3 { f64::NAN } else { (k * i) as f64 },
        );
    }
    gantry::domain::ImportedRun {
        id: format!("{i:032x}"),
        experiment: format!("exp{}", i % 3),
        name: format!("run-{i}"),
        status: Some(RunStatus::Finished),
        started_ms: 1_000 + i as i64,
        ended_ms: Some(2_000),
        user: "u".into(),
        host: "h".into(),
        command: vec!["python".into(), "t.py".into()],
        git_commit: None,
        git_branch: None,
        params: (0..5)
            .map(|p| (format!("p{p}"), format!("{}", p * i)))
            .collect(),
        tags: vec![("t".into(), format!("{i}"))],
        metrics: vec![("loss".into(), s.clone()), ("acc".into(), s)],
        problems: Vec::new(),
    }
}

/// Runs imported as one batch are stored exactly as run by run (the path a batch falls back to),
/// points, summaries, params and tags; importing again updates them in place.
async fn a_batch_of_imported_runs_is_stored_as_run_by_run(b: B) {
    let runs: Vec<_> = (0..40).map(imported).collect();
    let (_a, batch) = fresh_on(b).await;
    assert_eq!(batch.import_runs(&runs).await.unwrap(), vec![true; 40]);
    // A run given twice makes the batch go run by run; the last one given wins.
    let (_b, single) = fresh_on(b).await;
    let mut twice = runs.clone();
    twice.insert(0, imported(5));
    twice[0].name = "an earlier copy".into();
    let new = single.import_runs(&twice).await.unwrap();
    assert_eq!(new.iter().filter(|n| **n).count(), 40);
    let (a, b) = (
        batch.run_records().await.unwrap(),
        single.run_records().await.unwrap(),
    );
    // (Debug forms: a NaN last value is not == itself.)
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(format!("{x:?}"), format!("{y:?}"));
    }
    for r in &runs {
        let x = batch
            .load_series(&r.id, SeriesKind::Metric, "loss")
            .await
            .unwrap();
        let y = single
            .load_series(&r.id, SeriesKind::Metric, "loss")
            .await
            .unwrap();
        assert_eq!(x.steps, r.metrics[0].1.steps);
        assert_eq!((x.steps, x.times_ms), (y.steps, y.times_ms));
    }
    // Again, changed: updated in place, nothing new.
    let mut again = runs.clone();
    for r in &mut again {
        r.name.push_str("-2");
        r.metrics.truncate(1);
    }
    assert_eq!(batch.import_runs(&again).await.unwrap(), vec![false; 40]);
    let recs = batch.run_records().await.unwrap();
    assert!(
        recs.iter()
            .all(|r| r.run.name.ends_with("-2") && r.metrics.len() == 1)
    );
}

/// A run's output is stored once whoever carries it: a chunk only at the stored end, and read
/// back from any byte.
async fn output_chunks_are_stored_once_at_the_end_and_read_from_any_byte(b: B) {
    let (_d, store) = fresh_on(b).await;
    let r = store
        .create_run(&new_run("talky", "exp", 1_000))
        .await
        .unwrap();
    assert_eq!(store.log_end(&r.id).await.unwrap(), 0);
    assert!(store.append_log(&r.id, 0, b"hello ").await.unwrap());
    assert!(
        !store.append_log(&r.id, 0, b"hello ").await.unwrap(),
        "a second writer of the same bytes stores nothing"
    );
    assert!(
        !store.append_log(&r.id, 9, b"gap").await.unwrap(),
        "only at the end"
    );
    let big = vec![b'x'; gantry::store::LOG_CHUNK_BYTES + 10];
    assert!(store.append_log(&r.id, 6, &big).await.unwrap());
    let end = 6 + big.len() as i64;
    assert_eq!(store.log_end(&r.id).await.unwrap(), end);
    let (all, e) = store.log_from(&r.id, 0, usize::MAX).await.unwrap();
    assert_eq!((all.len() as i64, e), (end, end));
    assert_eq!(&all[..6], b"hello ");
    let (tail, _) = store.log_from(&r.id, 3, usize::MAX).await.unwrap();
    assert_eq!(&tail[..3], b"lo ");
    assert_eq!(tail.len() as i64, end - 3);
    let (none, e) = store.log_from(&r.id, end, usize::MAX).await.unwrap();
    assert!(none.is_empty());
    assert_eq!(e, end);
    // Deleting the run deletes its output.
    store
        .delete_runs(std::slice::from_ref(&r.id))
        .await
        .unwrap();
    assert_eq!(store.log_end(&r.id).await.unwrap(), 0);
}

/// More runs than one batch of a copy holds (256), with params, tags, points and output, copied
/// from SQLite into `b`: every record and every point arrives; a second copy after changes
/// updates in place and duplicates nothing.
async fn a_copy_of_many_runs_in_batches_keeps_every_run_exactly(b: B) {
    use gantry::store::copy::copy;
    let (_s, from) = fresh().await;
    let mut ids = Vec::new();
    for i in 0..300i64 {
        let run = from
            .create_run(&new_run(&format!("r{i}"), &format!("exp{}", i % 3), i))
            .await
            .unwrap();
        from.set_params(
            &run.id,
            &[
                ("lr".into(), format!("{i}e-4")),
                ("i".into(), i.to_string()),
            ],
        )
        .await
        .unwrap();
        from.set_tags(&run.id, &[("t".into(), format!("v{}", i % 7))])
            .await
            .unwrap();
        let mut s = Series::with_capacity(10 + i as usize);
        for step in 0..10 + i {
            s.push(
                step,
                1_700_000_000_000 + step,
                (step as f64).sin() * i as f64,
            );
        }
        from.append(
            &run.id,
            &[
                (SeriesKind::Metric, "loss", &s),
                (SeriesKind::System, "gpu0/util", &s),
            ],
        )
        .await
        .unwrap();
        from.append_log(&run.id, 0, format!("run {i}\n").as_bytes())
            .await
            .unwrap();
        ids.push(run.id);
    }
    let (_t, to) = fresh_on(b).await;
    let mut told = Vec::new();
    let done = copy(&from, &to, None, |i, n| told.push((i, n)))
        .await
        .unwrap();
    assert_eq!(done.runs, 300);
    assert_eq!(done.points, (0..300).map(|i| 10 + i).sum::<i64>());
    assert_eq!(told.last(), Some(&(300, 300)));
    assert!(told.len() >= 2, "300 runs took one batch: {told:?}");
    let same = |a: Vec<gantry::domain::RunRecord>, b: Vec<gantry::domain::RunRecord>| {
        let key = |r: &gantry::domain::RunRecord| {
            (
                r.run.id.clone(),
                r.run.name.clone(),
                r.run.experiment.clone(),
                r.params.clone(),
                r.tags.clone(),
                format!("{:?}", r.metrics),
            )
        };
        assert_eq!(
            a.iter().map(key).collect::<Vec<_>>(),
            b.iter().map(key).collect::<Vec<_>>()
        );
    };
    same(
        from.run_records().await.unwrap(),
        to.run_records().await.unwrap(),
    );
    for id in [&ids[0], &ids[137], &ids[299]] {
        for kind in [SeriesKind::Metric, SeriesKind::System] {
            let key = if kind == SeriesKind::Metric {
                "loss"
            } else {
                "gpu0/util"
            };
            let (a, c) = (
                from.load_series(id, kind, key).await.unwrap(),
                to.load_series(id, kind, key).await.unwrap(),
            );
            assert_eq!((&a.steps, &a.times_ms), (&c.steps, &c.times_ms));
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a.values), bits(&c.values));
        }
        assert_eq!(
            from.log_from(id, 0, 1 << 20).await.unwrap(),
            to.log_from(id, 0, 1 << 20).await.unwrap()
        );
    }
    // Changes, then a second copy: updated in place, nothing twice.
    from.set_params(&ids[5], &[("lr".into(), "9".into())])
        .await
        .unwrap();
    from.delete_tags(&ids[6], &["t".to_string()]).await.unwrap();
    copy(&from, &to, None, |_, _| {}).await.unwrap();
    same(
        from.run_records().await.unwrap(),
        to.run_records().await.unwrap(),
    );
    assert_eq!(to.counts().await.unwrap(), from.counts().await.unwrap());
}
