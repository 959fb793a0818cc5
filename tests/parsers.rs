//! Every parser that reads what nobody here wrote, fed random and mutated inputs: it answers (a
//! value or an error) and never panics, hangs or grows without bound. A fixed seed per parser, so
//! a failure is found again the same way; a few seconds in all.

use std::time::{Duration, Instant};

use gantry::capture::protocol::{Parser, payload_to_json};
use gantry::config::{Config, KeyChord, Theme};
use gantry::domain::{Manifest, Series};
use gantry::filter;
use gantry::interop::mlflow::parse_metric_file;
use gantry::interop::serve::search::{RUN_ATTRIBUTES, parse_filter};
use gantry::interop::tensorboard::{frame, read_events};
use gantry::store::chunk;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        (0..self.below(max + 1))
            .map(|_| self.next() as u8)
            .collect()
    }
    /// A string of pieces drawn from `alphabet`.
    fn text(&mut self, alphabet: &[&str], max: usize) -> String {
        (0..self.below(max + 1))
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }
    /// `seed` with a few bytes flipped, inserted, cut or repeated.
    fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..1 + self.below(4) {
            match self.below(4) {
                0 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] ^= 1 << self.below(8);
                }
                1 => {
                    let i = self.below(v.len() + 1);
                    v.insert(i, self.next() as u8);
                }
                2 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v.truncate(i);
                }
                _ if !v.is_empty() => {
                    let i = self.below(v.len());
                    let j = (i + self.below(16)).min(v.len());
                    let piece = v[i..j].to_vec();
                    v.splice(i..i, piece.iter().copied().cycle().take(piece.len() * 8));
                }
                _ => {}
            }
        }
        v
    }
}

/// Run `f` on `n` inputs made by `make`, each within a time bound (a hang is a failure).
fn each<T: std::fmt::Debug>(
    n: usize,
    seed: u64,
    mut make: impl FnMut(&mut Rng) -> T,
    f: impl Fn(&T),
) {
    let mut rng = Rng(seed);
    for _ in 0..n {
        let input = make(&mut rng);
        let t = Instant::now();
        f(&input);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "took {:?} on {input:?}",
            t.elapsed()
        );
    }
}

#[test]
fn metric_protocol_lines() {
    let seeds: Vec<&[u8]> = vec![
        br#"{"step": 3, "loss": 0.25, "acc": NaN, "phase": "train"}"#,
        br#"{"a\u00e9": -Infinity, "time": 1700000000.5, "x": [1, {"y": 2}]}"#,
        br#"{"step": 9223372036854775807, "k": 1e308, "k": 2}"#,
    ];
    let mut p = Parser::default();
    each(
        20_000,
        1,
        |r| {
            if r.below(4) == 0 {
                r.bytes(300)
            } else {
                let s = seeds[r.below(seeds.len())];
                r.mutate(s)
            }
        },
        |line| {
            let _ = p_parse(&mut Parser::default(), line);
        },
    );
    // Nesting a JSON parser recurses on: refused, not a stack overflow.
    let deep = format!("{{\"x\": {}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(p.parse(deep.as_bytes()).is_err());
    let text = |r: &mut Rng| {
        r.text(
            &["a=", "1", "2.5e3", " ", ",", "nan", "=", "x", "-inf", "é"],
            40,
        )
    };
    each(20_000, 2, text, |t| {
        if let Ok(j) = payload_to_json(t) {
            let _ = p_parse(&mut Parser::default(), j.as_bytes());
        }
    });
}

fn p_parse(p: &mut Parser, line: &[u8]) -> Result<usize, String> {
    p.parse(line).map(|_| p.metrics().count())
}

#[test]
fn chunks() {
    let mut s = Series::default();
    let mut rng = Rng(3);
    for i in 0..300 {
        let v = match i % 3 {
            0 => f64::from_bits(rng.next()),
            1 => f64::from(i as f32 * 0.37),
            _ => 1.0,
        };
        s.push(i * (1 + i % 4), 1_700_000_000_000 + i * 17, v);
    }
    let (mut v1, mut v2) = (Vec::new(), Vec::new());
    chunk::encode_v1(&s, 0..300, &mut v1);
    chunk::encode(&s, 0..300, &mut v2);
    each(
        20_000,
        4,
        |r| match r.below(3) {
            0 => r.bytes(64),
            1 => r.mutate(&v1),
            _ => r.mutate(&v2),
        },
        |bytes| {
            let mut out = Series::default();
            if chunk::decode(bytes, &mut out).is_ok() {
                assert!(out.len() <= bytes.len() * 8, "points without bytes");
            }
        },
    );
}

#[test]
fn run_filters_and_mlflow_search_filters() {
    let run_alphabet = [
        "(",
        ")",
        "-",
        "|",
        " ",
        "\"",
        "status:",
        "tag:",
        "param.lr",
        "metric.loss",
        ">=",
        "<",
        "=",
        "1e-3",
        "x",
        "exp:",
        "é",
    ];
    each(
        20_000,
        5,
        |r| r.text(&run_alphabet, 60),
        |t| {
            let _ = filter::parse(t);
        },
    );
    let search_alphabet = [
        "metrics.",
        "params.",
        "tags.",
        "attributes.",
        "`",
        "'",
        "\"",
        "loss",
        " ",
        "and",
        "AND",
        ">",
        "<=",
        "=",
        "!=",
        "LIKE",
        "ILIKE",
        "0.5",
        "%",
        "(",
        ")",
        "run_name",
        "start_time",
    ];
    each(
        20_000,
        6,
        |r| r.text(&search_alphabet, 40),
        |t| {
            let _ = parse_filter(t, &RUN_ATTRIBUTES);
        },
    );
}

#[test]
fn mlflow_metric_files() {
    let seed = b"1700000000000 0.5 3\n1700000000001 nan 4\n1700000000002 -inf\n";
    each(
        20_000,
        7,
        |r| {
            if r.below(3) == 0 {
                r.bytes(200)
            } else {
                r.mutate(seed)
            }
        },
        |bytes| {
            let (series, bad) = parse_metric_file(bytes);
            assert!(series.len() + bad.len() <= bytes.len() + 1);
        },
    );
}

#[test]
fn tensorboard_records() {
    // A valid record (a frame around a few bytes), then mutations of it and random bytes.
    let mut good = frame(b"\x09\x00\x00\x00\x00\x00\x00\xf0\x3f");
    good.extend(frame(b"\x10\x05"));
    each(
        20_000,
        8,
        |r| {
            if r.below(3) == 0 {
                r.bytes(128)
            } else {
                r.mutate(&good)
            }
        },
        |bytes| {
            let _ = read_events(bytes);
        },
    );
}

#[test]
fn config_keymap_theme_and_manifest_toml() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    let theme_dir = dir.path().join("themes");
    std::fs::create_dir_all(&theme_dir).unwrap();
    let seeds: [&[u8]; 3] = [
        b"[keymap]\nquit = [\"q\", \"ctrl-c\"]\nhelp = [\"?\"]\n[metrics]\n\"val/bleu\" = \"higher\"\n",
        b"[colors]\ntext = \"#ffffff\"\nseries = [\"red\", \"244\"]\n",
        b"name = \"m\"\nversion = 3\ncreated = \"x\"\nauthor = \"a\"\n[[files]]\npath = \"w.bin\"\nsize = 7\nblake3 = \"ab\"\n",
    ];
    each(
        3_000,
        9,
        |r| {
            let s = seeds[r.below(seeds.len())];
            r.mutate(s)
        },
        |bytes| {
            let text = String::from_utf8_lossy(bytes);
            std::fs::write(&cfg, text.as_bytes()).unwrap();
            let _ = Config::load_from(&cfg);
            std::fs::write(theme_dir.join("fuzz.toml"), text.as_bytes()).unwrap();
            let _ = Theme::load(
                "fuzz",
                gantry::config::ColorMode::TrueColor,
                Some(&theme_dir),
            );
            let _ = toml::from_str::<Manifest>(&text);
        },
    );
    each(
        20_000,
        10,
        |r| {
            r.text(
                &[
                    "ctrl-", "alt-", "shift-", "a", "F", "f1", "f99", "-", "enter", "é", " ",
                ],
                6,
            )
        },
        |t| {
            let _ = KeyChord::parse(t);
        },
    );
}

/// Every input the fuzzers keep (the committed corpora, crashes found and fixed among them) runs
/// through the same entry as its cargo-fuzz target, so a regression fails here, on stable.
#[test]
fn fuzz_corpora_replay() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let mut total = 0;
    for (name, target) in gantry::fuzzing::TARGETS {
        assert!(
            manifest.contains(&format!("path = \"fuzz_targets/{name}.rs\"")),
            "fuzz/Cargo.toml has no target {name}"
        );
        let src = std::fs::read_to_string(root.join(format!("fuzz_targets/{name}.rs"))).unwrap();
        assert!(
            src.contains("gantry::fuzzing::"),
            "{name}.rs calls no fuzzing entry"
        );
        let dir = root.join("corpus").join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} is empty", dir.display());
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            let t = Instant::now();
            let r = std::panic::catch_unwind(|| target(&bytes));
            assert!(r.is_ok(), "{name} panics on {}", f.display());
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "{name} takes {:?} on {}",
                t.elapsed(),
                f.display()
            );
        }
        total += files.len();
    }
    assert!(total >= gantry::fuzzing::TARGETS.len());
}
