//! Capturing runs: the metric protocol parser (more of `gantry run` lands here: spawn, tee,
//! sampling, recovery).

pub mod git;
pub mod ingest;
pub mod params;
pub mod procs;
pub mod protocol;
