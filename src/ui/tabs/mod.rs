//! One file per tab.

pub mod bench;
pub mod fleet;
pub mod gpus;
pub mod models;
pub mod runs;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::app::State;
use crate::config::Role;

/// A tab's frame: a bordered block titled with the tab's name.
pub(super) fn frame_block<'a>(state: &State, title: impl Into<Line<'a>>) -> Block<'a> {
    Block::bordered()
        .title(title)
        .border_style(state.theme.fg(Role::Border))
        .title_style(state.theme.fg(Role::Text))
}

/// An empty state: a headline, then lines that say what fills this tab and how.
pub(super) fn empty(
    frame: &mut Frame,
    area: Rect,
    state: &State,
    title: &str,
    headline: &str,
    lines: &[&str],
) {
    let t = &state.theme;
    let mut text = vec![
        Line::from(""),
        Line::styled(format!("  {headline}"), t.fg(Role::Text)),
    ];
    text.push(Line::from(""));
    for l in lines {
        text.push(Line::styled(format!("  {l}"), t.fg(Role::Muted)));
    }
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(frame_block(state, format!(" {title} "))),
        area,
    );
}
