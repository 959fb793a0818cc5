//! The Runs tab: the run table, a run's detail, the compare view, and their prompts.

mod compare;
mod detail;
mod table;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::app::runs::View;
use crate::app::{Modal, State};
use crate::config::Role;
use crate::domain::{Run, RunStatus};
use crate::format::ago;

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    match state.runs.view {
        View::Table => table::render(frame, area, state),
        View::Detail => detail::render(frame, area, state),
        View::Compare => compare::render(frame, area, state),
    }
    match &state.modal {
        Some(Modal::Tag { text, .. }) => prompt(frame, area, state, "tag (key=value)", text),
        Some(Modal::Rename { text, .. }) => prompt(frame, area, state, "rename to", text),
        Some(Modal::Search { text }) => prompt(frame, area, state, "search the log", text),
        Some(Modal::Register { text, .. }) => prompt(
            frame,
            area,
            state,
            "register the run's files as model",
            text,
        ),
        Some(Modal::Columns { cursor }) => columns(frame, area, state, *cursor),
        _ => {}
    }
}

/// The spinner frame of a running run, or a mark for the others.
/// A run's status as the table and the detail show it: a spinner while running, `? lost 2m` for a
/// running run whose heartbeat stopped (its host may still be running it).
pub(super) fn status_label(run: &Run, now_ms: i64, spinner: usize) -> String {
    const FRAMES: [&str; 4] = ["◐", "◓", "◑", "◒"];
    if let Some(age) = run.lost_for(now_ms) {
        return format!("? lost {}", ago(now_ms - age, now_ms).replace(" ago", ""));
    }
    match (run.status, run.exit_code) {
        (RunStatus::Running, _) => format!("{} running", FRAMES[spinner % FRAMES.len()]),
        (RunStatus::Failed, Some(c)) => format!("failed ({c})"),
        (RunStatus::Killed, Some(c)) if c < 0 => format!("killed ({})", -c),
        (s, _) => s.to_string(),
    }
}

pub(super) fn status_role(run: &Run, now_ms: i64) -> Role {
    if run.lost_for(now_ms).is_some() {
        return Role::Warn;
    }
    match run.status {
        RunStatus::Running => Role::Accent,
        RunStatus::Finished => Role::Good,
        RunStatus::Killed => Role::Warn,
        RunStatus::Failed | RunStatus::Crashed => Role::Bad,
    }
}

/// A one-line text prompt near the bottom of `area` (used by the Models tab too).
pub(crate) fn prompt(frame: &mut Frame, area: Rect, state: &State, label: &str, text: &str) {
    let t = &state.theme;
    let w = area.width.min(70);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + area.height.saturating_sub(4),
        w,
        3,
    );
    frame.render_widget(Clear, r);
    let line = Line::from(vec![
        Span::styled(text.to_string(), t.fg(Role::Text)),
        Span::styled("▏", t.fg(Role::Accent)),
    ]);
    frame.render_widget(
        Paragraph::new(line).block(
            Block::bordered()
                .title(format!(" {label} "))
                .title_bottom(Line::from(" enter: ok · esc: cancel ").right_aligned())
                .border_style(t.fg(Role::Accent)),
        ),
        r,
    );
}

fn columns(frame: &mut Frame, area: Rect, state: &State, cursor: usize) {
    let t = &state.theme;
    let r = &state.runs;
    let choices = r.column_choices();
    let h = (choices.len() as u16 + 2).clamp(3, area.height.saturating_sub(2));
    let area = area.centered(
        Constraint::Length(50.min(area.width)),
        Constraint::Length(h),
    );
    let rows = usize::from(h.saturating_sub(2)).max(1);
    let first = cursor.saturating_sub(rows - 1);
    let lines: Vec<Line> = choices
        .iter()
        .enumerate()
        .skip(first)
        .take(rows)
        .map(|(i, (kind, name))| {
            let on = if *kind == "metric" {
                r.shown_metric_cols().contains(name)
            } else {
                r.param_cols.contains(name)
            };
            let text = format!("[{}] {kind:<6} {name}", if on { "x" } else { " " });
            let style = if i == cursor {
                t.selection().patch(t.fg(Role::Text))
            } else {
                t.fg(Role::Text)
            };
            Line::styled(text, style)
        })
        .collect();
    let body = if lines.is_empty() {
        let what = if !r.held.all && r.keys.is_none() {
            "reading the metric and param names…"
        } else {
            "no metrics or params yet"
        };
        vec![Line::styled(what, t.fg(Role::Muted))]
    } else {
        lines
    };
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(body).block(
            Block::bordered()
                .title(" columns ")
                .title_bottom(
                    Line::from(format!(
                        " {}: toggle · esc: done ",
                        state.keymap.key_text(crate::app::Action::Mark)
                    ))
                    .right_aligned(),
                )
                .border_style(t.fg(Role::Accent)),
        ),
        area,
    );
}
