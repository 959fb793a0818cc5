//! The application core: State, Msg, Action, Effect and `update`, plus the keymap and the event
//! loop. Plain and synchronous: no I/O in `update`, no terminal here (render is passed in).

mod action;
pub mod bench;
mod columns;
mod effect;
mod effects;
pub mod fleet;
pub mod gpus;
pub mod help;
mod keymap;
mod marks;
mod modal;
pub mod models;
mod msg;
mod run_loop;
pub mod runs;
mod state;
mod update;

pub use action::{Action, ActionInfo, Section, actions};
pub use effect::{Effect, Outcome};
pub use effects::{
    EffectRunner, HostCpu, attach_runs, read_log_tail, spawn_clock, spawn_fleet_reader,
    spawn_gpu_sampler, spawn_watcher,
};
pub use keymap::Keymap;
pub use models::{EvalVersion, EvalView, latest_eval};
pub use msg::Msg;
pub use run_loop::{Drawer, run_loop};
pub use runs::Held;
pub use state::{BAR_PREFIX, GpuProbe, Modal, State, Tab};
pub use update::update;
