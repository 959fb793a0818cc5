use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;

use super::state::State;
use super::{Effect, Msg, update};

/// Draws the state; the terminal (or a test backend) sits behind it.
pub trait Drawer {
    fn draw(&mut self, state: &State) -> anyhow::Result<()>;
    /// Hand the terminal to another program (a pager) until it exits. Returns a message to show.
    fn hand_over(&mut self, _argv: &[String]) -> Option<String> {
        None
    }
    /// Put text on the terminal's clipboard.
    fn copy(&mut self, _text: &str) {}
}

/// At most one frame per this long (about 60 frames/s).
const FRAME: Duration = Duration::from_millis(16);

/// Wait for a message, drain whatever else is queued, apply all, then draw once if anything
/// changed. Nothing changed, nothing drawn. Returns when the state says quit or every sender is
/// gone.
pub async fn run_loop(
    state: &mut State,
    rx: &mut UnboundedReceiver<Msg>,
    drawer: &mut impl Drawer,
    mut run_effect: impl FnMut(Effect),
) -> anyhow::Result<()> {
    drawer.draw(state)?;
    let mut last_draw = Instant::now();
    let mut dirty = false;
    loop {
        let first = if dirty {
            // A redraw is owed but the frame budget was spent: wait out the frame, taking messages.
            match tokio::time::timeout_at((last_draw + FRAME).into(), rx.recv()).await {
                Ok(m) => m,
                Err(_) => {
                    drawer.draw(state)?;
                    last_draw = Instant::now();
                    dirty = false;
                    continue;
                }
            }
        } else {
            rx.recv().await
        };
        let Some(first) = first else { return Ok(()) };
        let mut pending = vec![first];
        while let Ok(m) = rx.try_recv() {
            pending.push(m);
        }
        for msg in pending {
            let out = update(state, msg);
            dirty |= out.redraw;
            for e in out.effects {
                match e {
                    Effect::Pager(path) => {
                        let pager = std::env::var("PAGER").unwrap_or_else(|_| "less".into());
                        let mut argv: Vec<String> =
                            pager.split_whitespace().map(String::from).collect();
                        argv.push(path.display().to_string());
                        if let Some(note) = drawer.hand_over(&argv) {
                            state.toast = Some(note);
                        }
                        dirty = true;
                    }
                    Effect::Copy(text) => drawer.copy(&text),
                    e => run_effect(e),
                }
            }
        }
        if state.quit {
            return Ok(());
        }
        if dirty && last_draw.elapsed() >= FRAME {
            drawer.draw(state)?;
            last_draw = Instant::now();
            dirty = false;
        }
    }
}
