use crate::config::KeyChord;
use crate::domain::Run;

use super::action::Action;
use super::state::{GpuProbe, State, Tab};

/// Everything that can happen, from any worker, as one type on one channel.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyChord),
    /// A left click at (column, row).
    Click(u16, u16),
    /// Mouse wheel: negative is up.
    Scroll(i8),
    Resize(u16, u16),
    /// The clock worker: wall time and the HH:MM to show.
    Tick {
        now_ms: i64,
        clock: String,
    },
    RunsLoaded(Result<Vec<Run>, String>),
    GpuProbed(GpuProbe),
    /// The terminal went away or we were asked to stop (SIGTERM, SIGHUP).
    Terminate(&'static str),
}

/// Work for the effect runner; results come back as `Msg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    LoadRuns,
    ProbeGpus,
}

/// What one message did: whether the screen must be redrawn, and the work it asks for.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub redraw: bool,
    pub effects: Vec<Effect>,
}

impl Outcome {
    fn redraw() -> Self {
        Outcome {
            redraw: true,
            effects: Vec::new(),
        }
    }
    fn none() -> Self {
        Outcome::default()
    }
}

/// Apply one message. No I/O, no waiting.
pub fn update(state: &mut State, msg: Msg) -> Outcome {
    match msg {
        Msg::Key(key) => {
            let had_notices = !state.notices.is_empty();
            state.notices.clear();
            match state.keymap.action(key) {
                Some(action) => apply(state, action),
                None => Outcome {
                    redraw: had_notices,
                    effects: Vec::new(),
                },
            }
        }
        Msg::Click(col, row) => {
            if row == 0
                && let Some(tab) = Tab::at_column(col)
            {
                return apply(state, Action::Tab(tab));
            }
            Outcome::none()
        }
        Msg::Scroll(d) if d < 0 => apply(state, Action::Up),
        Msg::Scroll(_) => apply(state, Action::Down),
        Msg::Resize(w, h) => {
            state.size = (w, h);
            Outcome::redraw()
        }
        Msg::Tick { now_ms, clock } => {
            state.now_ms = now_ms;
            let changed =
                clock != state.clock || state.runs.rows.iter().any(|r| r.ended_ms.is_none());
            state.clock = clock;
            Outcome {
                redraw: changed,
                effects: Vec::new(),
            }
        }
        Msg::RunsLoaded(Ok(rows)) => {
            state.runs.rows = rows;
            state.runs.loaded = true;
            state.runs.error = None;
            state.runs.selected = state
                .runs
                .selected
                .min(state.runs.rows.len().saturating_sub(1));
            Outcome::redraw()
        }
        Msg::RunsLoaded(Err(e)) => {
            state.runs.loaded = true;
            state.runs.error = Some(e);
            Outcome::redraw()
        }
        Msg::GpuProbed(p) => {
            state.gpu = p;
            Outcome::redraw()
        }
        Msg::Terminate(_) => {
            state.quit = true;
            Outcome::none()
        }
    }
}

fn apply(state: &mut State, action: Action) -> Outcome {
    let before = (state.tab, state.help, state.runs.selected);
    match action {
        Action::Quit => {
            state.quit = true;
            return Outcome::none();
        }
        Action::Help => state.help = !state.help,
        Action::Close => state.help = false,
        Action::NextTab => state.tab = state.tab.offset(1),
        Action::PrevTab => state.tab = state.tab.offset(-1),
        Action::Tab(t) => state.tab = t,
        Action::Up
        | Action::Down
        | Action::PageUp
        | Action::PageDown
        | Action::Top
        | Action::Bottom => {
            if state.tab == Tab::Runs && !state.help {
                move_selection(state, action);
            }
        }
    }
    if matches!(action, Action::NextTab | Action::PrevTab | Action::Tab(_)) {
        state.help = false;
    }
    if (state.tab, state.help, state.runs.selected) == before {
        Outcome::none()
    } else {
        Outcome::redraw()
    }
}

fn move_selection(state: &mut State, action: Action) {
    let n = state.runs.rows.len();
    if n == 0 {
        return;
    }
    let page = state.page_rows();
    let cur = state.runs.selected;
    state.runs.selected = match action {
        Action::Up => cur.saturating_sub(1),
        Action::Down => (cur + 1).min(n - 1),
        Action::PageUp => cur.saturating_sub(page),
        Action::PageDown => (cur + page).min(n - 1),
        Action::Top => 0,
        _ => n - 1,
    };
}
