//! What the commands print on standard output goes through here. Text has its control characters
//! escaped, so a run name, tag or metric key cannot move the cursor, ring the bell or set the
//! clipboard (OSC 52) of whoever lists it; JSON is written exactly as serialised (serde_json
//! escapes control characters in strings itself). A closed pipe (`gantry runs --json | head`)
//! ends the command quietly, as `cat` does; another write error is reported once.

use std::io::Write;

use crate::format::printable;

/// Print text; control characters other than newline and tab are shown escaped (`\x1b`).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::out::text(&format!($($arg)*))
    };
}

/// `out!` with a newline.
macro_rules! outln {
    () => {
        $crate::cli::out::raw("\n")
    };
    ($($arg:tt)*) => {
        $crate::cli::out::text(&format!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};

/// Print text with control characters escaped.
pub fn text(s: &str) {
    write(printable(s).as_bytes());
}

/// Print gantry's own bytes as they are (its escape sequences, serialised JSON).
pub fn raw(s: &str) {
    write(s.as_bytes());
}

/// Print a value as pretty JSON and a newline.
pub fn json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    raw(&s);
    Ok(())
}

/// Print a value as one line of JSON (JSON Lines).
pub fn json_line(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut s = serde_json::to_string(v)?;
    s.push('\n');
    raw(&s);
    Ok(())
}

fn write(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        gone(&e);
    }
}

/// The end of a command whose standard output failed: quietly for a reader that closed the pipe
/// (`| head`), with a message otherwise.
pub fn gone(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(2);
}
