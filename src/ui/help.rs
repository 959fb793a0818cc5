use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::app::help::{FOOTER, HelpLine, layout};
use crate::app::{Action, State};
use crate::config::Role;

/// The help overlay (`app::help` lays it out): every action by section, its keys, what it does;
/// two columns when they fit; scrolled by the moving keys when it is taller than the screen, its
/// place and those keys on its lower border.
pub fn render(frame: &mut Frame, body: Rect, state: &State) {
    let t = &state.theme;
    let l = layout(state, body.width, body.height);
    let scroll = state.help_scroll.min(l.max_scroll);
    let key_col = l.key_col;
    let line = |h: &HelpLine| match h {
        HelpLine::Title(s) => Line::styled(*s, t.fg(Role::Muted).add_modifier(Modifier::BOLD)),
        HelpLine::Key { keys, what } => Line::from(vec![
            Span::styled(format!("{keys:<key_col$}  "), t.fg(Role::Accent)),
            Span::styled(what.clone(), t.fg(Role::Text)),
        ]),
        HelpLine::Blank => Line::from(""),
    };
    let area = body.centered(
        Constraint::Length(l.width.min(body.width)),
        Constraint::Length(l.height.min(body.height)),
    );
    let km = &state.keymap;
    let close = format!(
        " {} or {} to close ",
        km.key_text(Action::Close),
        km.key_text(Action::Help)
    );
    let content = l.cols.iter().map(Vec::len).max().unwrap_or(0);
    let mut block = Block::bordered()
        .title(" Help ")
        .title_bottom(Line::from(close.clone()).right_aligned())
        .border_style(t.fg(Role::Accent));
    if l.max_scroll > 0 {
        let last = (scroll + l.visible).min(content);
        // The shortest key of each (j over down), as one types them.
        let short = |a: Action| {
            km.keys_of(a)
                .iter()
                .map(|k| k.to_string())
                .min_by_key(|k| k.chars().count())
                .unwrap_or_else(|| "-".into())
        };
        let (down, up) = (short(Action::Down), short(Action::Up));
        let long = format!(
            " {}–{last} of {content} · {down}/{up} {}/{} scroll ",
            scroll + 1,
            km.key_text(Action::PageDown),
            km.key_text(Action::PageUp),
        );
        // Both on the border, the shorter form where the long one would meet the other.
        let fits = long.chars().count() + close.chars().count() + 2 <= usize::from(area.width);
        let text = if fits {
            long
        } else {
            format!(" {}–{last}/{content} {down}/{up} ", scroll + 1)
        };
        block = block.title_bottom(Line::from(text).left_aligned());
    }
    let inner = block.inner(area);
    frame.render_widget(Clear, area);
    frame.render_widget(block, area);
    let foot = if l.footer { FOOTER.len() as u16 + 1 } else { 0 };
    let [main, foot_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(foot)]).areas(inner);
    let shown = |col: &[HelpLine]| -> Vec<Line> {
        col.iter().skip(scroll).take(l.visible).map(line).collect()
    };
    if let [left, right] = l.cols.as_slice() {
        let [a, b] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)])
            .spacing(2)
            .areas(main);
        frame.render_widget(Paragraph::new(shown(left)), a);
        frame.render_widget(Paragraph::new(shown(right)), b);
    } else if let Some(col) = l.cols.first() {
        frame.render_widget(Paragraph::new(shown(col)), main);
    }
    if l.footer {
        let lines: Vec<Line> = std::iter::once(Line::from(""))
            .chain(FOOTER.iter().map(|f| Line::styled(*f, t.fg(Role::Muted))))
            .collect();
        frame.render_widget(Paragraph::new(lines), foot_area);
    }
}
