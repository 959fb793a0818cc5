use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Modifier;
use ratatui::text::Line;
use ratatui::widgets::{Cell, Row, Table, TableState};

use crate::app::State;
use crate::config::Role;
use crate::domain::RunStatus;
use crate::ui::text::{ago, duration};

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let t = &state.theme;
    let view = &state.runs;
    if let Some(err) = &view.error {
        super::empty(
            frame,
            area,
            state,
            "Runs",
            &format!("Cannot read runs: {err}"),
            &[],
        );
        return;
    }
    if view.rows.is_empty() {
        let headline = if view.loaded {
            "No runs in this workspace yet."
        } else {
            "Loading runs…"
        };
        super::empty(
            frame,
            area,
            state,
            "Runs",
            headline,
            &["Runs recorded in this workspace's store are listed here, newest first."],
        );
        return;
    }
    // Build only the rows that fit: the window that keeps the selection in view.
    let visible = usize::from(area.height.saturating_sub(3)).max(1);
    let first = view.selected.saturating_sub(visible - 1);
    let rows = view.rows.iter().skip(first).take(visible).map(|r| {
        let status_role = match r.status {
            RunStatus::Running => Role::Accent,
            RunStatus::Finished => Role::Good,
            RunStatus::Killed => Role::Warn,
            RunStatus::Failed | RunStatus::Crashed => Role::Bad,
        };
        let status = match (r.status, r.exit_code) {
            (RunStatus::Failed, Some(c)) => format!("failed ({c})"),
            (s, _) => s.to_string(),
        };
        Row::new([
            Cell::from(r.name.clone()).style(t.fg(Role::Text)),
            Cell::from(status).style(t.fg(status_role)),
            Cell::from(r.experiment.clone()).style(t.fg(Role::Muted)),
            Cell::from(ago(r.started_ms, state.now_ms)).style(t.fg(Role::Muted)),
            Cell::from(duration(r.duration_ms(state.now_ms))).style(t.fg(Role::Text)),
            Cell::from(r.short_id().to_string()).style(t.fg(Role::Muted)),
        ])
    });
    let header = Row::new(["Name", "Status", "Experiment", "Started", "Duration", "Id"])
        .style(t.fg(Role::Muted).add_modifier(Modifier::BOLD));
    let title = Line::from(format!(" Runs ({}) ", view.rows.len()));
    let table = Table::new(
        rows,
        [
            Constraint::Fill(3),
            Constraint::Length(12),
            Constraint::Fill(2),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(8),
        ],
    )
    .header(header)
    .row_highlight_style(t.selection())
    .block(super::frame_block(state, title));
    let mut ts = TableState::default().with_selected(Some(view.selected - first));
    frame.render_stateful_widget(table, area, &mut ts);
}
