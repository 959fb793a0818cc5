use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::app::{Section, State};
use crate::config::Role;

/// The help overlay, generated from the keymap: every action by section, its keys, what it does.
/// Two columns when they fit.
pub fn render(frame: &mut Frame, body: Rect, state: &State) {
    let t = &state.theme;
    let entries = state.keymap.entries();
    let key_col = entries
        .iter()
        .map(|(_, k)| keys_text(k).chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 18);
    let mut blocks: Vec<Vec<Line>> = Vec::new();
    let mut current: Option<Section> = None;
    for (info, keys) in entries {
        if current != Some(info.section) {
            current = Some(info.section);
            blocks.push(vec![Line::styled(
                info.section.title(),
                t.fg(Role::Muted).add_modifier(Modifier::BOLD),
            )]);
        }
        if let Some(b) = blocks.last_mut() {
            b.push(Line::from(vec![
                Span::styled(
                    format!("{:<key_col$}  ", keys_text(keys)),
                    t.fg(Role::Accent),
                ),
                Span::styled(info.description.clone(), t.fg(Role::Text)),
            ]));
        }
    }
    let total: usize = blocks.iter().map(|b| b.len() + 1).sum();
    let widest = blocks.iter().flatten().map(Line::width).max().unwrap_or(0) as u16;
    let two =
        total > usize::from(body.height.saturating_sub(4)) && (widest + 3) * 2 + 2 <= body.width;
    // Split whole sections between the columns so each holds about half.
    let mut cols: Vec<Vec<Line>> = vec![Vec::new(), Vec::new()];
    let mut used = 0;
    for b in blocks {
        let side = usize::from(two && used >= total / 2);
        used += b.len() + 1;
        if !cols[side].is_empty() {
            cols[side].push(Line::from(""));
        }
        cols[side].extend(b);
    }
    let footer = vec![
        Line::styled(
            "Keys are set in [keymap] of $XDG_CONFIG_HOME/gantry/config.toml",
            t.fg(Role::Muted),
        ),
        Line::styled(
            "From a shell: gantry run, import, export, model, gpu, bench, serve (MLflow API)",
            t.fg(Role::Muted),
        ),
    ];
    let footer_width = footer.iter().map(Line::width).max().unwrap_or(0) as u16;
    let rows = cols.iter().map(Vec::len).max().unwrap_or(0) as u16 + 3 + footer.len() as u16;
    let width = if two {
        ((widest + 3) * 2 + 2).max(footer_width + 4)
    } else {
        widest.max(footer_width) + 4
    };
    let area = body.centered(
        Constraint::Length(width.min(body.width)),
        Constraint::Length(rows.min(body.height)),
    );
    let block = Block::bordered()
        .title(" Help ")
        .title_bottom(
            Line::from(format!(
                " {} or {} to close ",
                state.keymap.key_text(crate::app::Action::Close),
                state.keymap.key_text(crate::app::Action::Help)
            ))
            .right_aligned(),
        )
        .border_style(t.fg(Role::Accent));
    let inner = block.inner(area);
    frame.render_widget(Clear, area);
    frame.render_widget(block, area);
    let [main, foot] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(footer.len() as u16)])
            .areas(inner);
    if two {
        let [l, r] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)])
            .spacing(2)
            .areas(main);
        frame.render_widget(Paragraph::new(std::mem::take(&mut cols[0])), l);
        frame.render_widget(Paragraph::new(std::mem::take(&mut cols[1])), r);
    } else {
        frame.render_widget(Paragraph::new(std::mem::take(&mut cols[0])), main);
    }
    frame.render_widget(Paragraph::new(footer), foot);
}

fn keys_text(keys: &[crate::config::KeyChord]) -> String {
    keys.iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
