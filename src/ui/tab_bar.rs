use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::{BAR_PREFIX, State, Tab};
use crate::config::Role;

/// ` gantry   1 Runs │ 2 Models │ ...` with the current tab highlighted; columns from `Tab::bar`.
pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let t = &state.theme;
    let mut spans = vec![Span::styled(
        BAR_PREFIX,
        t.fg(Role::Accent).add_modifier(Modifier::BOLD),
    )];
    for (i, (tab, label, _)) in Tab::bar().into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled("│", t.fg(Role::Border)));
        }
        let style = if tab == state.tab {
            t.selection()
                .patch(t.fg(Role::Text))
                .add_modifier(Modifier::BOLD)
        } else {
            t.fg(Role::Muted)
        };
        spans.push(Span::styled(label, style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
