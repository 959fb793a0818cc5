use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

use crate::app::runs::SortCol;
use crate::app::{Modal, State};
use crate::config::Role;
use crate::format::{ago, compact, duration, fit};

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let t = &state.theme;
    let r = &state.runs;
    let editing = matches!(state.modal, Some(Modal::Filter { .. }));
    let show_filter = editing || !r.filter_text.is_empty();
    let filter_h = if show_filter {
        if r.filter_error.is_some() { 2 } else { 1 }
    } else {
        0
    };
    let [bar, body] =
        Layout::vertical([Constraint::Length(filter_h), Constraint::Fill(1)]).areas(area);
    if show_filter {
        let mut lines = vec![Line::from(vec![
            Span::styled(" / ", t.fg(Role::Accent).add_modifier(Modifier::BOLD)),
            Span::styled(r.filter_text.clone(), t.fg(Role::Text)),
            Span::styled(if editing { "▏" } else { "" }, t.fg(Role::Accent)),
            Span::styled(
                format!("   {} of {} runs", r.visible.len(), r.records.len()),
                t.fg(Role::Muted),
            ),
        ])];
        if let Some(e) = &r.filter_error {
            lines.push(Line::styled(
                format!(
                    "   {}^ {}",
                    " ".repeat(e.column.saturating_sub(1)),
                    e.message
                ),
                t.fg(Role::Bad),
            ));
        }
        frame.render_widget(Paragraph::new(lines), bar);
    }
    if let Some(err) = &r.error {
        super::super::empty(
            frame,
            body,
            state,
            "Runs",
            &format!("Cannot read runs: {err}"),
            &[],
        );
        return;
    }
    if r.records.is_empty() {
        let headline = if r.loaded {
            "No runs in this workspace yet."
        } else {
            "Loading runs…"
        };
        super::super::empty(
            frame,
            body,
            state,
            "Runs",
            headline,
            &[
                "Track one with: gantry run -- python train.py",
                "It appears here as it runs, with live charts.",
            ],
        );
        return;
    }
    // Build only the rows that fit: the window that keeps the cursor in view.
    let visible = usize::from(body.height.saturating_sub(3)).max(1);
    let first = r.cursor.saturating_sub(visible - 1);
    let arrow = if r.sort_desc { "▼" } else { "▲" };
    let head = |label: &str, col: SortCol| {
        if r.sort == col {
            format!("{label}{arrow}")
        } else {
            label.to_string()
        }
    };
    let mut header = vec![
        " ".to_string(),
        head("Name", SortCol::Name),
        head("Status", SortCol::Status),
        head("Experiment", SortCol::Exp),
        head("Started", SortCol::Started),
        head("Duration", SortCol::Duration),
    ];
    if r.many_hosts {
        header.insert(4, "Host".to_string());
    }
    // The metric columns: those picked with `c`, else the defaults that fit beside the rest,
    // the first with a sparkline (app/columns.rs).
    let name_w = r
        .visible
        .iter()
        .map(|&i| r.records[i].run.name.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(8, 40) as u16;
    let fixed = 2 + 1 + name_w + 12 + 10 + 9 + 9 + 6 + if r.many_hosts { 11 } else { 0 };
    let params_w = 12 * r.param_cols.len() as u16;
    let room = body.width.saturating_sub(fixed + params_w);
    let shown = r.shown_metric_cols();
    let (metric_cols, trend): (&[String], bool) = if r.cols_chosen {
        (shown, false)
    } else {
        // The sparkline (11) once there is room for it and a value; then a value a column (14).
        let trend = !shown.is_empty() && room >= 25;
        let n = usize::from(room.saturating_sub(if trend { 11 } else { 0 }) / 14);
        (&shown[..n.min(shown.len())], trend)
    };
    header.extend(metric_cols.iter().enumerate().flat_map(|(i, k)| {
        let name = crate::format::efficiency::column_label(k).unwrap_or(k);
        let label = head(&fit(name, 12), SortCol::Metric(k.clone()));
        if i == 0 && trend {
            vec![label, String::new()]
        } else {
            vec![label]
        }
    }));
    header.extend(
        r.param_cols
            .iter()
            .map(|k| head(&fit(k, 10), SortCol::Param(k.clone()))),
    );
    let rows = r.visible.iter().skip(first).take(visible).map(|&i| {
        let rec = &r.records[i];
        let run = &rec.run;
        let marker = if r.pinned.as_deref() == Some(run.id.as_str()) {
            Span::styled(
                "◆",
                ratatui::style::Style::new().fg(t.series(r.color(&run.id))),
            )
        } else if r.marked.contains(&run.id) {
            Span::styled(
                "●",
                ratatui::style::Style::new().fg(t.series(r.color(&run.id))),
            )
        } else {
            Span::raw(" ")
        };
        let mut cells = vec![
            Cell::from(marker),
            Cell::from(run.name.clone()).style(t.fg(Role::Text)),
            Cell::from(ratatui::text::Line::from(vec![
                Span::styled(
                    super::status_label(run, state.now_ms, state.spinner),
                    t.fg(super::status_role(run, state.now_ms)),
                ),
                badge(rec, t),
            ])),
            Cell::from(run.experiment.clone()).style(t.fg(Role::Muted)),
            Cell::from(ago(run.started_ms, state.now_ms)).style(t.fg(Role::Muted)),
            Cell::from(duration(run.duration_ms(state.now_ms))).style(t.fg(Role::Text)),
        ];
        if r.many_hosts {
            cells.insert(4, Cell::from(run.host.clone()).style(t.fg(Role::Muted)));
        }
        for (i, k) in metric_cols.iter().enumerate() {
            // Better or worse than the pinned baseline's.
            let role = match r.versus_pin(rec, k) {
                Some(std::cmp::Ordering::Greater) => Role::Good,
                Some(std::cmp::Ordering::Less) => Role::Bad,
                _ => Role::Text,
            };
            cells.push(
                Cell::from(rec.metrics.get(k).and_then(|s| s.last).map_or_else(
                    || "-".into(),
                    |v| {
                        let currency = rec.tags.get(crate::domain::efficiency::CURRENCY_TAG);
                        crate::format::efficiency::column_value(k, v, currency.map(String::as_str))
                            .unwrap_or_else(|| compact(v))
                    },
                ))
                .style(t.fg(role)),
            );
            if i == 0 && trend {
                let id = crate::app::runs::SeriesId {
                    run: run.id.clone(),
                    kind: crate::domain::SeriesKind::Metric,
                    key: k.clone(),
                };
                let spark = r
                    .series
                    .get(&id)
                    .map_or_else(String::new, |s| trend_line(&s.values, 10));
                cells.push(Cell::from(spark).style(t.fg(Role::Accent)));
            }
        }
        cells.extend(r.param_cols.iter().map(|k| {
            Cell::from(rec.params.get(k).cloned().unwrap_or_else(|| "-".into()))
                .style(t.fg(Role::Text))
        }));
        Row::new(cells)
    });
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(name_w),
        Constraint::Length(12),
        Constraint::Fill(1),
        Constraint::Length(9),
        Constraint::Length(9),
    ];
    if r.many_hosts {
        widths.insert(4, Constraint::Fill(1));
    }
    for i in 0..metric_cols.len() {
        widths.push(Constraint::Length(13));
        if i == 0 && trend {
            widths.push(Constraint::Length(10));
        }
    }
    widths.extend(r.param_cols.iter().map(|_| Constraint::Length(11)));
    let title = Line::from(vec![
        Span::raw(format!(" Runs ({}) ", r.visible.len())),
        Span::styled(
            if r.marked.is_empty() {
                String::new()
            } else {
                format!("· {} marked ", r.marked.len())
            },
            t.fg(Role::Muted),
        ),
    ]);
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.fg(Role::Muted).add_modifier(Modifier::BOLD)))
        .row_highlight_style(t.selection())
        .block(super::super::frame_block(state, title));
    let mut ts = TableState::default().with_selected(Some(r.cursor.saturating_sub(first)));
    frame.render_stateful_widget(table, body, &mut ts);
}

/// A whole series as `w` block characters: each the mean of its share of the points.
fn trend_line(values: &[f64], w: usize) -> String {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() || w == 0 {
        return String::new();
    }
    let n = w.min(v.len());
    let means: Vec<f64> = (0..n)
        .map(|c| {
            let (a, b) = (
                c * v.len() / n,
                ((c + 1) * v.len() / n).max(c * v.len() / n + 1),
            );
            v[a..b].iter().sum::<f64>() / (b - a) as f64
        })
        .collect();
    crate::format::sparkline(&means, n)
}

/// The alerts' badge after a run's status: `!` in the bad colour while an alert is active, in
/// the warning colour when its alerts have cleared or its preflight found the GPU degraded.
fn badge(rec: &crate::domain::RunRecord, t: &crate::config::theme::Theme) -> Span<'static> {
    let alerts = crate::domain::alerts::of_tags(&rec.tags);
    let degraded = rec
        .tags
        .get(crate::domain::preflight::OUTCOME_TAG)
        .is_some_and(|o| o == "degraded" || o == "refused");
    if alerts.iter().any(|a| a.active()) {
        Span::styled(" !", t.fg(Role::Bad))
    } else if !alerts.is_empty() || degraded {
        Span::styled(" !", t.fg(Role::Warn))
    } else {
        Span::raw("")
    }
}
