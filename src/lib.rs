//! gantry: a terminal workbench for the local ML loop. Runs, models, GPUs and benchmarks in one
//! place. See docs/architecture.md for the map of rooms.

pub mod app;
pub mod bench;
pub mod capture;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod filter;
pub mod fleet;
pub mod format;
pub mod fuzzing;
pub mod gpu;
pub mod host;
pub mod interop;
pub mod registry;
pub mod store;
pub mod tui;
pub mod ui;
pub mod workspace;
