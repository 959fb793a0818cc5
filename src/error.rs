//! The error a person reads: what failed, where, why, and what to do next. Commands that fail with
//! one exit with code 2.

use std::fmt;

#[derive(Debug)]
pub struct UserError {
    what: String,
    cause: Option<String>,
    hint: Option<String>,
}

impl UserError {
    pub fn new(what: impl Into<String>) -> Self {
        UserError {
            what: what.into(),
            cause: None,
            hint: None,
        }
    }
    pub fn cause(mut self, cause: impl fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.what)?;
        if let Some(c) = &self.cause {
            write!(f, ": {c}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  to fix: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UserError {}

thread_local! {
    static CONTAINED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the panic now unwinding on this thread will be caught by [`contain`]: panic hooks
/// leave the terminal and stderr alone for it.
pub fn panic_contained() -> bool {
    CONTAINED.with(|c| c.get())
}

/// Run `f`, turning a panic inside it into an error that says what panicked. For calls into
/// libraries that panic rather than fail (cudarc does when a symbol is missing from a CUDA
/// library): the caller reports it, and the terminal and the program carry on.
pub fn contain<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if panic_contained() {
                tracing::error!("contained panic: {info}");
            } else {
                previous(info);
            }
        }));
    });
    let was = CONTAINED.with(|c| c.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CONTAINED.with(|c| c.set(was));
    r.map_err(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        format!("{what} failed inside a library: {msg}")
    })
}

#[cfg(test)]
mod contain_tests {
    #[test]
    fn a_panic_becomes_an_error_and_the_flag_is_cleared() {
        let r: Result<(), String> =
            super::contain("the test", || panic!("symbol cublasFoo missing"));
        assert_eq!(
            r.unwrap_err(),
            "the test failed inside a library: symbol cublasFoo missing"
        );
        assert!(!super::panic_contained());
        assert_eq!(super::contain("x", || 7), Ok(7));
    }
}
