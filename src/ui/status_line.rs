use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::State;
use crate::config::Role;

use crate::format::fit;

/// Workspace · host on the left; a config notice or the key hints, then the clock, on the right.
pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let t = &state.theme;
    let left = format!(" {} · {} ", state.workspace, state.host);
    let right: Vec<Span> = if let Some(toast) = &state.toast {
        let room = usize::from(area.width).saturating_sub(left.chars().count() + 10);
        vec![Span::styled(fit(toast, room), t.fg(Role::Accent))]
    } else if let Some(n) = state.notices.first() {
        let more = match state.notices.len() {
            1 => String::new(),
            k => format!(" (+{} more)", k - 1),
        };
        let room = usize::from(area.width).saturating_sub(left.chars().count() + 10);
        vec![Span::styled(
            fit(&format!("{n}{more}"), room),
            t.fg(Role::Warn),
        )]
    } else {
        // Hints give way to the workspace and host: only those that fit beside 30 columns.
        let room = usize::from(area.width).saturating_sub(30 + state.clock.len() + 2);
        let mut spans = Vec::new();
        let mut used = 0;
        for (key, label) in state.keymap.hints(&state.sections()) {
            let w = key.chars().count() + label.chars().count() + 3;
            if used + w > room {
                break;
            }
            used += w;
            spans.push(Span::styled(key, t.fg(Role::Accent)));
            spans.push(Span::styled(format!(" {label}  "), t.fg(Role::Muted)));
        }
        spans
    };
    let mut right = right;
    right.push(Span::styled(format!(" {} ", state.clock), t.fg(Role::Text)));
    let right_width: u16 = right.iter().map(|s| s.width() as u16).sum();
    let [l, r] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(right_width)]).areas(area);
    let room = usize::from(l.width);
    frame.render_widget(
        Paragraph::new(Span::styled(fit(&left, room), t.fg(Role::Muted))),
        l,
    );
    frame.render_widget(Paragraph::new(Line::from(right)).right_aligned(), r);
}
