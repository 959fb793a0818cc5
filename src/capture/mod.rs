//! `gantry run`: spawning the command (spawn), teeing its output and reading metric lines from it
//! (output), tailing metrics files into the store exactly once (ingest, protocol), git state,
//! params from flags, process sampling (procs), the supervisor that ties them (supervise), and
//! catching up after gantry died (recover), and a run's end kept in its folder when the store
//! cannot take it (ended).

pub mod conditions;
pub mod ended;
pub mod flight;
pub mod git;
pub mod hooks;
pub mod ingest;
pub mod logs;
pub mod output;
pub mod owners;
pub mod params;
pub mod preflight;
pub mod procs;
pub mod protocol;
pub mod recover;
pub mod sampler;
pub mod sockets;
pub mod spawn;
pub mod supervise;
