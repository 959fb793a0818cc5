//! The application core: State, Msg, Action, Effect and `update`, plus the keymap and the event
//! loop. Plain and synchronous: no I/O in `update`, no terminal here (render is passed in).

mod action;
mod effects;
mod keymap;
mod run_loop;
mod state;
mod update;

pub use action::{Action, ActionInfo, actions};
pub use effects::{EffectRunner, spawn_clock};
pub use keymap::Keymap;
pub use run_loop::{Drawer, run_loop};
pub use state::{BAR_PREFIX, GpuProbe, RunsView, State, Tab};
pub use update::{Effect, Msg, Outcome, update};
