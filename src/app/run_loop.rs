use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;

use super::state::State;
use super::update::{Effect, Msg, update};

/// Draws the state; the terminal (or a test backend) sits behind it.
pub trait Drawer {
    fn draw(&mut self, state: &State) -> anyhow::Result<()>;
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
            out.effects.into_iter().for_each(&mut run_effect);
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
