//! Numbers, sizes, times and text for people, in one place: what the CLI prints and the
//! workbench draws. Each name says what it makes: `compact` (a value in ~9 characters),
//! `four_digits` (a measured figure), `axis_label`, `size`, `duration`, `ago`,
//! `fit` (cut to a width), `sparkline`, `printable` (control characters escaped).

pub mod efficiency;
mod model_diff;
pub mod preflight;

pub use model_diff::manifest_diff;

/// `45s`, `12m03s`, `3h07m`, `2d04h`.
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

/// How long ago, coarsely: `just now`, `5m ago`, `3h ago`, `2d ago`.
pub fn ago(then_ms: i64, now_ms: i64) -> String {
    let s = (now_ms - then_ms).max(0) / 1000;
    match s {
        0..60 => "just now".into(),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

/// A number in at most about 9 characters: `0.4871`, `1.20e-5`, `3.40e6`, `NaN`, `inf`.
pub fn compact(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = x.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{x:.2e}")
    } else {
        let s = format!("{x:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A measured figure to four significant digits, its zeros kept so that the digits say how
/// precise it is: `0.1394`, `22.39`, `4322`, `7.35e-5`; from 10,000 on, the whole number.
pub fn four_digits(x: f64) -> String {
    let a = x.abs();
    if !x.is_finite() || a == 0.0 || !(1e-3..1e7).contains(&a) {
        return compact(x);
    }
    if a >= 1e4 {
        return format!("{x:.0}");
    }
    // Round to four digits first, so that 99.996 is 100.0, not 100.00.
    let r: f64 = format!("{x:.3e}").parse().unwrap_or(x);
    let decimals = (3 - r.abs().log10().floor() as i32).max(0) as usize;
    format!("{r:.decimals$}")
}

/// A number for an axis label: about four significant digits, at most 7 characters.
pub fn axis_label(x: f64) -> String {
    let a = x.abs();
    if !x.is_finite() || a == 0.0 || !(1e-3..1e6).contains(&a) {
        return compact(x);
    }
    let decimals = match a {
        a if a >= 1000.0 => 0,
        a if a >= 100.0 => 1,
        a if a >= 10.0 => 2,
        _ => 3,
    };
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The last `w` values as block characters, lowest to highest.
pub fn sparkline(values: &[f64], w: usize) -> String {
    let v = &values[values.len().saturating_sub(w)..];
    let (lo, hi) = v
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
    v.iter()
        .map(|x| {
            if hi - lo <= f64::EPSILON {
                SPARK[3]
            } else {
                SPARK[(((x - lo) / (hi - lo)) * 7.0).round() as usize]
            }
        })
        .collect()
}

/// Cut to `width` characters, marking the cut with `…`.
pub fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else if width == 0 {
        String::new()
    } else {
        let mut out: String = s.chars().take(width - 1).collect();
        out.push('…');
        out
    }
}

/// Text safe to print on a terminal: control characters (C0, DEL and C1) other than newline and
/// tab are shown as escapes (`\x1b`, `\r`, `\u{9b}`), so text from a run or a script cannot drive
/// the terminal. Borrowed as it is when there is nothing to escape.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !s.contains(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            c if bad(c) && (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if bad(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A file or memory size: `512 B`, `1.5 KiB`, `3.2 GiB` (binary units, one decimal).
pub fn size(n: u64) -> String {
    let (v, u) = match n {
        0..1024 => return format!("{n} B"),
        1024..1_048_576 => (n as f64 / 1024.0, "KiB"),
        1_048_576..1_073_741_824 => (n as f64 / 1_048_576.0, "MiB"),
        _ => (n as f64 / 1_073_741_824.0, "GiB"),
    };
    format!("{v:.1} {u}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ages() {
        assert_eq!(duration(45_000), "45s");
        assert_eq!(duration(723_000), "12m03s");
        assert_eq!(duration(3 * 3_600_000 + 7 * 60_000), "3h07m");
        assert_eq!(duration(-5), "0s");
        assert_eq!(ago(0, 30_000), "just now");
        assert_eq!(ago(0, 2 * 86_400_000), "2d ago");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(compact(0.48713), "0.4871");
        assert_eq!(compact(2.0), "2");
        assert_eq!(compact(1.2e-5), "1.20e-5");
        assert_eq!(compact(3.4e6), "3.40e6");
        assert_eq!(compact(f64::NAN), "NaN");
        assert_eq!(compact(f64::NEG_INFINITY), "-inf");
        assert_eq!(axis_label(100.9596), "101");
        assert_eq!(four_digits(0.13941), "0.1394");
        assert_eq!(four_digits(0.0297), "0.02970");
        assert_eq!(four_digits(22.387), "22.39");
        assert_eq!(four_digits(4321.7), "4322");
        assert_eq!(four_digits(123_456.0), "123456");
        assert_eq!(four_digits(99.996), "100.0");
        assert_eq!(four_digits(-2.5), "-2.500");
        assert_eq!(four_digits(7.35e-5), "7.35e-5");
        assert_eq!(four_digits(0.0), "0");
        assert_eq!(axis_label(61189.95), "61190");
        assert_eq!(axis_label(0.48713), "0.487");
        assert_eq!(axis_label(12.3456), "12.35");
    }

    #[test]
    fn control_characters_are_escaped_for_the_terminal() {
        assert_eq!(printable("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(
            printable("a\x1b]52;c;aGk=\x07b\rc\u{9b}d\x7f"),
            "a\\x1b]52;c;aGk=\\x07b\\rc\\u{9b}d\\x7f"
        );
        assert!(matches!(printable("ok"), std::borrow::Cow::Borrowed(_)));
    }
}
