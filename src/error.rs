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
