//! The one yes-or-no popup: lines of context, then the question with its keys (`y/N`, from the
//! keymap), centred over the tab, in the warning colour.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Modifier;
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::app::{Action, State};
use crate::config::Role;

pub fn render(frame: &mut Frame, area: Rect, state: &State, lines: &[String], question: &str) {
    let t = &state.theme;
    let yes = state
        .keymap
        .keys_of(Action::ConfirmYes)
        .first()
        .map_or_else(|| "y".to_string(), |k| k.to_string());
    let mut text: Vec<Line> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let role = if i == 0 { Role::Warn } else { Role::Text };
        text.push(Line::styled(l.clone(), t.fg(role)));
    }
    text.push(Line::styled(
        format!("{question} {yes}/N"),
        t.fg(Role::Warn).add_modifier(Modifier::BOLD),
    ));
    let w = text.iter().map(Line::width).max().unwrap_or(20) as u16 + 4;
    let r = area.centered(
        Constraint::Length(w.min(area.width)),
        Constraint::Length((text.len() as u16 + 2).min(area.height)),
    );
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(text).block(Block::bordered().border_style(t.fg(Role::Warn))),
        r,
    );
}
