//! Capturing runs: the metric protocol parser (more of `gantry run` lands here: spawn, tee,
//! sampling, recovery).

pub mod ingest;
pub mod protocol;
