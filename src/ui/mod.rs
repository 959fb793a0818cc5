//! Rendering: `render(&State)` draws one frame and only reads. One file per tab and per piece of
//! chrome; colours come from theme roles.

mod help;
mod status_line;
mod tab_bar;
mod tabs;
pub mod widgets;

use ratatui::backend::Backend;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::{Frame, Terminal};

use crate::app::{Drawer, State, Tab};
use crate::config::Role;

/// The smallest terminal gantry draws into.
pub const MIN_SIZE: (u16, u16) = (60, 15);

/// Any ratatui terminal draws the app: the real one, or a TestBackend in tests.
impl<B> Drawer for Terminal<B>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
{
    fn draw(&mut self, state: &State) -> anyhow::Result<()> {
        Terminal::draw(self, |f| render(f, state))?;
        Ok(())
    }
}

pub fn render(frame: &mut Frame, state: &State) {
    let area = frame.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        too_small(frame, area, state);
        return;
    }
    let [bar, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    tab_bar::render(frame, bar, state);
    match state.tab {
        Tab::Runs => tabs::runs::render(frame, body, state),
        Tab::Models => tabs::models::render(frame, body, state),
        Tab::Gpus => tabs::gpus::render(frame, body, state),
        Tab::Bench => tabs::bench::render(frame, body, state),
    }
    if let Some(crate::app::Modal::Confirm {
        lines, question, ..
    }) = &state.modal
    {
        widgets::confirm::render(frame, body, state, lines, question);
    }
    status_line::render(frame, status, state);
    if state.help {
        help::render(frame, body, state);
    }
}

fn too_small(frame: &mut Frame, area: Rect, state: &State) {
    let msg = vec![
        Line::from("terminal too small"),
        Line::from(format!(
            "{}×{}, need {}×{}",
            area.width, area.height, MIN_SIZE.0, MIN_SIZE.1
        )),
    ];
    let y = area.height.saturating_sub(2) / 2;
    let inner = Rect::new(
        area.x,
        area.y + y,
        area.width,
        area.height.saturating_sub(y),
    );
    frame.render_widget(
        Paragraph::new(msg)
            .centered()
            .style(state.theme.fg(Role::Warn)),
        inner,
    );
}
