//! A filtered, sorted page of runs picked by SQLite in SQL (`Store::runs_page`) is exactly the
//! page that matching every run record in Rust (`Expr::matches`) and sorting them
//! (`SortKey::sort`) give: over random filters, sorts and limits, on runs made to catch the
//! differences (non-ASCII case, NaN and infinite metrics, params that are and aren't numbers,
//! ties in start time, lost runs).

use gantry::domain::{NewRun, RunRecord, RunStatus, Series, SeriesKind, now_ms};
use gantry::filter::{self, SortKey};
use gantry::store::{PageOrder, Store};

/// A small deterministic generator (xorshift), so a failure names its seed and repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[(self.next() % v.len() as u64) as usize]
    }
}

const NAMES: [&str; 8] = [
    "resnet-1",
    "RESNET-2",
    "kelvin-\u{212A}",
    "İstanbul",
    "vit-base",
    "ÉCOLE-net",
    "sweep 7",
    "k",
];
const EXPS: [&str; 4] = ["vision", "VISION", "nlp", "ésprit"];
const HOSTS: [&str; 3] = ["gpu01", "GPU02", "gpü03"];
const LRS: [&str; 8] = ["1e-3", "3e-4", "0.01", "nan", "inf", "abc", "1e400", "-0"];
const OPTS: [&str; 3] = ["adamw", "sgd", "Adam"];
const LASTS: [f64; 9] = [
    0.25,
    0.5,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    0.0,
    -0.0,
    1.0,
    1e-300,
];

async fn workspace(rng: &mut Rng) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("gantry.db")).await.unwrap();
    let now = now_ms();
    for i in 0..48u64 {
        let new = NewRun {
            experiment: rng.pick(&EXPS).to_string(),
            name: rng.pick(&NAMES).to_string(),
            // Starts repeat, so ties are broken by id as a listing breaks them.
            started_ms: now - 3_600_000 - (rng.next() % 6) as i64 * 60_000,
            host: rng.pick(&HOSTS).to_string(),
            user: "ana".into(),
            ..NewRun::default()
        };
        let run = store.create_run(&new).await.unwrap();
        let id = run.id.as_str();
        let mut params = Vec::new();
        if !rng.next().is_multiple_of(4) {
            params.push(("lr".to_string(), rng.pick(&LRS).to_string()));
        }
        if !rng.next().is_multiple_of(3) {
            params.push(("opt".to_string(), rng.pick(&OPTS).to_string()));
        }
        store.set_params(id, &params).await.unwrap();
        let mut tags = Vec::new();
        if i % 3 == 0 {
            tags.push(("baseline".to_string(), "true".to_string()));
        }
        if i % 5 == 0 {
            tags.push(("note".to_string(), "Kelvin test".to_string()));
        }
        store.set_tags(id, &tags).await.unwrap();
        for key in ["loss", "acc"] {
            if rng.next().is_multiple_of(4) {
                continue;
            }
            let n = 1 + (rng.next() % 3) as i64;
            let mut s = Series::with_capacity(n as usize);
            for step in 0..n {
                s.steps.push(step);
                s.times_ms.push(now);
                s.values.push(if step == n - 1 {
                    *rng.pick(&LASTS)
                } else {
                    0.5
                });
            }
            store
                .append(id, &[(SeriesKind::Metric, key, &s)])
                .await
                .unwrap();
        }
        match rng.next() % 5 {
            0 => {}
            1 => store.heartbeat(id, now - 3_600_000).await.unwrap(),
            2 => {
                store
                    .finish_run(id, RunStatus::Failed, Some(1), now - 600_000)
                    .await
                    .unwrap();
            }
            _ => {
                let end = now - (rng.next() % 3_000_000) as i64;
                store
                    .finish_run(id, RunStatus::Finished, Some(0), end)
                    .await
                    .unwrap();
            }
        }
    }
    (dir, store)
}

const TERMS: [&str; 36] = [
    "res",
    "RES",
    "k",
    "K",
    "é",
    "İ",
    "kelvin",
    "net",
    "status:running",
    "status:finished",
    "status:failed",
    "status:lost",
    "tag:baseline",
    "tag:note=\"Kelvin test\"",
    "exp:vision",
    "exp:ÉSPRIT",
    "host:GPU01",
    "host:gpü03",
    "id:a",
    "id:0",
    "name:NET",
    "name:\"sweep 7\"",
    "param.lr>=1e-3",
    "param.lr<3e-4",
    "param.lr=nan",
    "param.lr!=inf",
    "param.lr>abc",
    "param.opt=adamw",
    "param.opt!=Adam",
    "metric.loss<0.5",
    "metric.loss>=inf",
    "metric.loss!=nan",
    "metric.acc=1",
    "metric.loss>-inf",
    "metric.loss!=0.25",
    "metric.acc!=1",
];

const SORTS: [&str; 14] = [
    "-started",
    "started",
    "name",
    "-name",
    "status",
    "exp",
    "-exp",
    "id",
    "duration",
    "-duration",
    "metric.loss",
    "-metric.loss",
    "metric.acc",
    "-metric.acc",
];

fn random_filter(rng: &mut Rng) -> String {
    let mut parts = Vec::new();
    for _ in 0..1 + rng.next() % 3 {
        let t = rng.pick(&TERMS).to_string();
        parts.push(match rng.next() % 6 {
            0 => format!("-{t}"),
            1 => format!("({t} | {})", rng.pick(&TERMS)),
            _ => t,
        });
    }
    parts.join(" ")
}

#[tokio::test]
async fn sql_pages_are_the_pages_rust_matching_and_sorting_give() {
    for seed in [0x9e37_79b9_7f4a_7c15u64, 0xdead_beef_1234_5678] {
        let mut rng = Rng(seed);
        let (_dir, store) = workspace(&mut rng).await;
        let records: Vec<RunRecord> = store.run_records().await.unwrap();
        let mut compared = 0;
        let mut nonempty = 0;
        for _ in 0..400 {
            let text = random_filter(&mut rng);
            let Ok(expr) = filter::parse(&text) else {
                continue;
            };
            let sort: &str = SORTS[(rng.next() % SORTS.len() as u64) as usize];
            let sort = SortKey::parse(sort).unwrap();
            let limit = *rng.pick(&[0usize, 1, 5, 20]);
            let now = now_ms();
            let (page, total) = store
                .runs_page(
                    Some(&expr),
                    &PageOrder::of(&sort).unwrap(),
                    sort.desc,
                    limit,
                    now,
                )
                .await
                .unwrap()
                .expect("SQLite gives every page but a param sort's");
            let mut want = filter::matching_sorted(&records, &expr, &sort, now);
            let want_total = want.len();
            if limit > 0 {
                want.truncate(limit);
            }
            let want: Vec<&str> = want.iter().map(|r| r.run.id.as_str()).collect();
            let got: Vec<&str> = page.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(
                (got, total as usize),
                (want, want_total),
                "seed {seed:#x}: filter `{text}`, sort `{}{}`, limit {limit}",
                if sort.desc { "-" } else { "" },
                sort.key
            );
            compared += 1;
            nonempty += (want_total > 0) as usize;
        }
        // The comparison means something: most filters parse, and many match some runs.
        assert!(compared > 300, "only {compared} filters parsed");
        assert!(nonempty > 100, "only {nonempty} filters matched a run");
    }
}
