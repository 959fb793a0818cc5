//! Params from the command's own flags: `--key value`, `--key=value`, and `--flag` alone (true).
//! Only double-dash long options are read; positional arguments and `-x` short options are not.
//! Dashes in keys become underscores, as argparse names them (`--batch-size 64` is `batch_size`).

/// Params parsed from argv (the program name excluded). Later flags win over earlier ones.
pub fn from_args(args: &[String]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        let Some(flag) = a.strip_prefix("--") else {
            continue;
        };
        if flag.is_empty() {
            break; // `--` ends the options
        }
        let (key, value) = match flag.split_once('=') {
            Some((k, v)) => (k, v.to_string()),
            None => match args.get(i) {
                Some(next) if !is_flag(next) => {
                    i += 1;
                    (flag, next.clone())
                }
                _ => (flag, "true".to_string()),
            },
        };
        if key.is_empty() || !key.chars().next().is_some_and(char::is_alphabetic) {
            continue;
        }
        let key = key.replace('-', "_");
        out.retain(|(k, _)| *k != key);
        out.push((key, value));
    }
    out
}

fn is_flag(s: &str) -> bool {
    // A negative number is a value, not a flag.
    s.starts_with("--") || (s.starts_with('-') && s.len() > 1 && s.parse::<f64>().is_err())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &str) -> Vec<(String, String)> {
        from_args(
            &args
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn long_flags_become_params() {
        assert_eq!(
            p("train.py --lr 3e-4 --batch-size=64 --amp --epochs 10 data/ -v --wd -0.1"),
            vec![
                ("lr".into(), "3e-4".into()),
                ("batch_size".into(), "64".into()),
                ("amp".into(), "true".into()),
                ("epochs".into(), "10".into()),
                ("wd".into(), "-0.1".into()),
            ]
        );
    }

    #[test]
    fn edge_cases() {
        assert_eq!(
            p("--a 1 --a 2"),
            vec![("a".into(), "2".into())],
            "last wins"
        );
        assert_eq!(
            p("--x -- --y 1"),
            vec![("x".into(), "true".into())],
            "-- ends options"
        );
        assert_eq!(
            p("--fast --no-cache"),
            vec![
                ("fast".into(), "true".into()),
                ("no_cache".into(), "true".into())
            ]
        );
        assert!(p("--=3 ---x 1").is_empty());
    }
}
