use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::app::State;
use crate::config::Role;

/// The help overlay, generated from the keymap: every action, its keys, what it does.
pub fn render(frame: &mut Frame, body: Rect, state: &State) {
    let t = &state.theme;
    let entries = state.keymap.entries();
    let key_col = entries
        .iter()
        .map(|(_, k)| keys_text(k).chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!("{:<key_col$}  ", "Key"),
            t.fg(Role::Muted).add_modifier(Modifier::BOLD),
        ),
        Span::styled("Action", t.fg(Role::Muted).add_modifier(Modifier::BOLD)),
    ])];
    for (info, keys) in entries {
        lines.push(Line::from(vec![
            Span::styled(
                format!("{:<key_col$}  ", keys_text(keys)),
                t.fg(Role::Accent),
            ),
            Span::styled(info.description.clone(), t.fg(Role::Text)),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "Keys are set in [keymap] of $XDG_CONFIG_HOME/gantry/config.toml",
        t.fg(Role::Muted),
    ));
    let widest = lines.iter().map(Line::width).max().unwrap_or(0) as u16;
    let width = (widest + 2).min(body.width);
    let height = (lines.len() as u16 + 2).min(body.height);
    let area = body.centered(Constraint::Length(width), Constraint::Length(height));
    let block = Block::bordered()
        .title(" Help ")
        .title_bottom(Line::from(" esc or ? to close ").right_aligned())
        .border_style(t.fg(Role::Accent));
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn keys_text(keys: &[crate::config::KeyChord]) -> String {
    keys.iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
