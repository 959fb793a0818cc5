//! One entry per parser that reads what nobody here wrote. The cargo-fuzz targets in `fuzz/` call
//! these, and tests/parsers.rs replays the committed corpora (`fuzz/corpus/<target>/`) through
//! the same functions, so `cargo test` catches a regression of anything the fuzzers found.
//!
//! Each entry answers (a value or an error) and never panics; where a parser has an invariant
//! (a chunk decodes to what was encoded, bit for bit), the entry asserts it, so a fuzzer finds a
//! broken invariant as a crash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::capture::protocol::{Parser, payload_to_json};
use crate::domain::{Manifest, Run, RunStatus, Series};

/// A fuzz target's entry: any bytes in, a panic only where an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target, by the name its `fuzz/fuzz_targets/<name>.rs` and corpus folder have.
pub const TARGETS: &[(&str, Target)] = &[
    ("metric_line", metric_line),
    ("chunk", chunk),
    ("mlflow_meta", mlflow_meta),
    ("mlflow_metrics", mlflow_metrics),
    ("mlflow_params_tags", mlflow_params_tags),
    ("tfevents", tfevents),
    ("prometheus_text", prometheus_text),
    ("filters", filters),
    ("toml", toml_files),
    ("manifest", manifest),
    ("rest_body", rest_body),
];

/// A line of the metrics protocol, as `gantry run` reads it from a metrics file or stdout, and
/// as `gantry log`'s `k=v` payload.
pub fn metric_line(data: &[u8]) {
    let mut p = Parser::default();
    if p.parse(data).is_ok() {
        let n = p.metrics().count();
        assert!(n <= data.len(), "more metrics than bytes");
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(json) = payload_to_json(text)
    {
        let _ = p.parse(json.as_bytes());
    }
}

/// Chunk decoding of any bytes; and points made of the bytes encode and decode bit for bit in
/// both chunk versions.
pub fn chunk(data: &[u8]) {
    use crate::store::chunk::{decode, encode, encode_v1};
    let mut out = Series::default();
    if decode(data, &mut out).is_ok() {
        assert!(out.len() <= data.len() * 8 + 1, "points without bytes");
    }
    let mut s = Series::default();
    let mut words = data
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap()));
    let mut step = 0i64;
    let mut time = 0i64;
    while let (Some(a), Some(b)) = (words.next(), words.next()) {
        // Steps and times grow (as stored), by amounts the bytes choose.
        step = step.saturating_add((a & 0xffff) as i64);
        time = time.saturating_add((a >> 16 & 0xffff_ffff) as i64);
        s.push(step, time, f64::from_bits(b));
    }
    for v2 in [true, false] {
        let mut bytes = Vec::new();
        if v2 {
            encode(&s, 0..s.len(), &mut bytes);
        } else {
            encode_v1(&s, 0..s.len(), &mut bytes);
        }
        let mut back = Series::default();
        decode(&bytes, &mut back).expect("a chunk just encoded decodes");
        assert_eq!(back.steps, s.steps, "steps (v2: {v2})");
        assert_eq!(back.times_ms, s.times_ms, "times (v2: {v2})");
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.values), bits(&s.values), "values (v2: {v2})");
    }
}

/// A scratch folder for targets that read files, one per process.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("gantry-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&d);
        d
    })
}

/// An MLflow FileStore run folder with `meta`, `param`, `tag` and `metric` written as given.
fn mlflow_run(meta: &[u8], param: &[u8], tag: &[u8], metric: &[u8]) {
    let dir = scratch().join("0").join("0123456789abcdef0123456789abcdef");
    for sub in ["params", "tags", "metrics"] {
        let _ = std::fs::create_dir_all(dir.join(sub));
    }
    let write = |p: PathBuf, b: &[u8]| std::fs::write(p, b).expect("scratch is writable");
    write(dir.join("meta.yaml"), meta);
    write(dir.join("params/lr"), param);
    write(dir.join("tags/mlflow.runName"), tag);
    write(dir.join("metrics/loss"), metric);
    let _ = crate::interop::mlflow::read_file_run("0", &dir);
}

const GOOD_META: &[u8] =
    b"artifact_uri: file:///tmp/a\nend_time: 1700000000500\nexperiment_id: '0'\n\
lifecycle_stage: active\nrun_id: 0123456789abcdef0123456789abcdef\nrun_name: r\n\
source_name: train.py\nstart_time: 1700000000000\nstatus: 3\nuser_id: u\n";

/// A run's `meta.yaml` (YAML), read as `gantry import mlflow` reads it.
pub fn mlflow_meta(data: &[u8]) {
    mlflow_run(data, b"0.1", b"r", b"1700000000000 0.5 0\n");
}

/// A run's metric file (`timestamp value step` lines).
pub fn mlflow_metrics(data: &[u8]) {
    let (series, bad) = crate::interop::mlflow::parse_metric_file(data);
    assert!(series.len() + bad.len() <= data.len() + 1);
    mlflow_run(GOOD_META, b"0.1", b"r", data);
}

/// A run's param and tag files (a value per file).
pub fn mlflow_params_tags(data: &[u8]) {
    mlflow_run(GOOD_META, data, data, b"");
}

/// TensorBoard event files: the bytes as a file of records, and as one record's payload.
pub fn tfevents(data: &[u8]) {
    use crate::interop::tensorboard::{frame, read_events};
    let _ = read_events(data);
    let framed = read_events(&frame(data));
    assert!(framed.scalars.len() <= data.len());
}

/// The Prometheus text format, as an exporter's `/metrics` serves it.
pub fn prometheus_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let e = crate::interop::promtext::parse(&text);
    assert!(e.samples.len() <= text.len());
}

/// The run filter language (`gantry runs --filter`, the `/` prompt), matched against a run; and
/// MLflow's search filter and order_by, as `gantry serve` reads them. The first byte chooses.
pub fn filters(data: &[u8]) {
    use crate::interop::serve::search::{RUN_ATTRIBUTES, parse_filter, parse_order_by};
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    if which & 1 == 0 {
        if let Ok(expr) = crate::filter::parse(&text) {
            let _ = expr.reads();
            let run = sample_run();
            let params = BTreeMap::from([("lr".to_string(), "0.001".to_string())]);
            let tags = BTreeMap::from([("team".to_string(), "vision".to_string())]);
            let metrics = BTreeMap::from([("loss".to_string(), 0.25), ("nan".into(), f64::NAN)]);
            let _ = expr.matches(&crate::filter::Subject {
                run: &run,
                params: &params,
                tags: &tags,
                metrics: &metrics,
            });
        }
    } else {
        let _ = parse_filter(&text, &RUN_ATTRIBUTES);
        let items: Vec<String> = text.split('\n').map(str::to_string).collect();
        let _ = parse_order_by(&items, &RUN_ATTRIBUTES);
    }
}

fn sample_run() -> Run {
    Run {
        id: "0123456789abcdef0123456789abcdef".into(),
        experiment: "default".into(),
        name: "sweep-3".into(),
        status: RunStatus::Finished,
        exit_code: Some(0),
        started_ms: 1_700_000_000_000,
        ended_ms: Some(1_700_000_060_000),
        host: "gpu-1".into(),
        user: "u".into(),
        pid: None,
        pid_start: None,
        command: vec!["python".into(), "train.py".into()],
        cwd: "/".into(),
        git_commit: None,
        git_branch: None,
        git_dirty: None,
        notes: String::new(),
        run_dir: String::new(),
        env: BTreeMap::new(),
        gpus: Vec::new(),
        heartbeat_ms: None,
    }
}

/// `config.toml` (with its keymap) and a theme file, read as gantry reads them at start; the
/// first byte chooses. Key chords are parsed from the keymap's values.
pub fn toml_files(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let dir = scratch().join("config");
    let _ = std::fs::create_dir_all(dir.join("themes"));
    if which & 1 == 0 {
        let path = dir.join("config.toml");
        std::fs::write(&path, rest).expect("scratch is writable");
        let _ = crate::config::Config::load_from(&path);
    } else {
        std::fs::write(dir.join("themes/fuzz.toml"), rest).expect("scratch is writable");
        let _ = crate::config::Theme::load("fuzz", crate::config::ColorMode::TrueColor, Some(&dir));
    }
    if let Ok(text) = std::str::from_utf8(rest) {
        for word in text.split(['"', '\n', ',', '[', ']']).take(64) {
            let _ = crate::config::KeyChord::parse(word);
        }
    }
}

/// A model version's `model.toml`, read back from the registry.
pub fn manifest(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(m) = toml::from_str::<Manifest>(text)
    {
        let _ = m.total_bytes();
        let again = toml::to_string(&m).expect("a manifest read writes");
        assert_eq!(
            toml::from_str::<Manifest>(&again).expect("a manifest written reads"),
            m
        );
    }
}

struct RestFixture {
    rt: tokio::runtime::Runtime,
    served: Arc<crate::interop::serve::Served>,
}

fn rest_fixture() -> &'static RestFixture {
    static F: OnceLock<RestFixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = scratch().join("serve");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch is writable");
        let served = rt.block_on(async {
            let store = crate::store::Store::open(&dir.join("gantry.db"))
                .await
                .expect("a store in scratch");
            // One run with a known id, so requests can name it.
            store
                .create_run(&crate::domain::NewRun {
                    id: "0123456789abcdef0123456789abcdef".into(),
                    experiment: "default".into(),
                    name: "r".into(),
                    started_ms: 1_700_000_000_000,
                    host: "elsewhere".into(),
                    ..Default::default()
                })
                .await
                .expect("a run");
            let gpu = Arc::new(Mutex::new(Err("no GPU while fuzzing".to_string())));
            Arc::new(crate::interop::serve::Served::new(
                store,
                None,
                dir.join("runs"),
                gpu,
            ))
        });
        RestFixture { rt, served }
    })
}

/// An MLflow REST request to `gantry serve`: the first byte chooses the endpoint and method, the
/// bytes up to the first newline are the query string, the rest is the body. Answered against a
/// real store (one per process) holding run `0123456789abcdef0123456789abcdef`.
pub fn rest_body(data: &[u8]) {
    use crate::interop::serve::api::ENDPOINTS;
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let endpoint = ENDPOINTS[(which as usize >> 1) % ENDPOINTS.len()].0;
    let method = if which & 1 == 0 {
        axum::http::Method::POST
    } else {
        axum::http::Method::GET
    };
    let (query, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (
            Some(String::from_utf8_lossy(&rest[..i]).into_owned()),
            &rest[i + 1..],
        ),
        None => (None, rest),
    };
    let f = rest_fixture();
    let answer = f.rt.block_on(crate::interop::serve::answer(
        &f.served,
        endpoint,
        &method,
        query,
        &axum::http::HeaderMap::new(),
        body.to_vec(),
        "10.255.0.1:9".parse().expect("an address"),
    ));
    if let Err(e) = answer {
        let _ = e.body();
    }
}
