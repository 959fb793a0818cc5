use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::app::State;
use crate::app::runs::{Focus, SYSTEM_KEYS, SeriesId};
use crate::config::Role;
use crate::domain::SeriesKind;
use crate::format::{duration, fit};
use crate::ui::widgets::series_chart::{self, Line_};

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let t = &state.theme;
    let r = &state.runs;
    let Some(rec) = r.detail.as_deref().and_then(|d| r.record(d)) else {
        super::super::empty(frame, area, state, "Run", "This run is gone.", &[]);
        return;
    };
    let log_h = if r.focus == Focus::Log {
        area.height / 2
    } else {
        (area.height / 4).clamp(5, 10)
    };
    let gpu_lines = gpu_lines(rec, state.now_ms);
    let [over, main, log] = Layout::vertical([
        Constraint::Length(6 + gpu_lines.len() as u16),
        Constraint::Fill(1),
        Constraint::Length(log_h),
    ])
    .areas(area);
    overview(frame, over, state, rec, gpu_lines);
    let sys_w = if main.width >= 110 { main.width / 4 } else { 0 };
    let [grid, sys] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(sys_w)]).areas(main);
    charts(
        frame,
        grid,
        state,
        &r.overlay(),
        &r.page_keys(),
        r.focus == Focus::Charts,
    );
    if sys_w > 0 {
        system(frame, sys, state, &rec.run.id);
    }
    log_pane(frame, log, state);
    let _ = t;
}

/// The run's GPU use and its hardware, where it has either: (use, hardware).
fn gpu_lines(rec: &crate::domain::RunRecord, now_ms: i64) -> Vec<(String, String)> {
    use crate::domain::efficiency::{HARDWARE_TAG, Hardware, RunEfficiency};
    use crate::format::efficiency::{hardware_line, use_line};
    let hw = rec
        .tags
        .get(HARDWARE_TAG)
        .and_then(|t| Hardware::parse(t))
        .and_then(|h| hardware_line(&h, now_ms));
    let used = use_line(&RunEfficiency::of(rec));
    let mut out = Vec::new();
    if hw.is_some() || used.is_some() {
        out.push(("gpu use".into(), used.unwrap_or_else(|| "-".into())));
        out.push(("hardware".into(), hw.unwrap_or_else(|| "-".into())));
    }
    if let Some(p) = rec
        .tags
        .get(crate::domain::preflight::TAG)
        .and_then(|t| serde_json::from_str(t).ok())
    {
        out.push(("preflight".into(), crate::format::preflight::summary(&p)));
    }
    out
}

fn overview(
    frame: &mut Frame,
    area: Rect,
    state: &State,
    rec: &crate::domain::RunRecord,
    gpu_lines: Vec<(String, String)>,
) {
    let t = &state.theme;
    let run = &rec.run;
    let label = |s: &str| Span::styled(format!("{s:<8}"), t.fg(Role::Muted));
    let git = match (&run.git_commit, &run.git_branch) {
        (None, None) => "not in git".to_string(),
        (c, b) => format!(
            "{} @ {}{}",
            b.as_deref().unwrap_or("(detached)"),
            c.as_deref().map_or("-", |c| &c[..c.len().min(10)]),
            if run.git_dirty == Some(true) {
                " dirty"
            } else {
                ""
            }
        ),
    };
    let left = vec![
        Line::from(vec![
            label("status"),
            Span::styled(
                super::status_label(run, state.now_ms, state.spinner),
                t.fg(super::status_role(run, state.now_ms)),
            ),
            Span::styled(
                format!(
                    " · {} · {}",
                    duration(run.duration_ms(state.now_ms)),
                    run.experiment
                ),
                t.fg(Role::Text),
            ),
        ]),
        Line::from(vec![
            label("command"),
            Span::styled(run.command.join(" "), t.fg(Role::Text)),
        ]),
        Line::from(vec![label("git"), Span::styled(git, t.fg(Role::Text))]),
        Line::from(vec![
            label("host"),
            Span::styled(
                format!(
                    "{} · {}{}",
                    run.host,
                    run.user,
                    if run.gpus.is_empty() {
                        String::new()
                    } else {
                        format!(" · {}", run.gpus.join(", "))
                    }
                ),
                t.fg(Role::Text),
            ),
        ]),
    ];
    // The GPU lines take the whole width, under the two columns.
    let wide: Vec<Line> = gpu_lines
        .into_iter()
        .map(|(l, v)| {
            Line::from(vec![
                Span::styled(format!("{:<9}", format!("{l} ")), t.fg(Role::Muted)),
                Span::styled(v, t.fg(Role::Text)),
            ])
        })
        .collect();
    // gantry's own tags (the hardware, as JSON) are shown in their own words, not as pairs.
    let pairs = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .filter(|(k, _)| !crate::domain::efficiency::is_internal_tag(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut right = vec![
        Line::from(vec![
            label("params"),
            Span::styled(pairs(&rec.params), t.fg(Role::Text)),
        ]),
        Line::from(vec![
            label("tags"),
            Span::styled(pairs(&rec.tags), t.fg(Role::Text)),
        ]),
        Line::from(vec![
            label("notes"),
            Span::styled(run.notes.clone(), t.fg(Role::Text)),
        ]),
    ];
    if !rec.models.is_empty() {
        let made: Vec<String> = rec
            .models
            .iter()
            .map(|(m, v)| format!("{m}@v{v}"))
            .collect();
        right[2] = if run.notes.is_empty() {
            Line::from(vec![
                label("models"),
                Span::styled(made.join(" "), t.fg(Role::Accent)),
            ])
        } else {
            Line::from(vec![
                label("notes"),
                Span::styled(run.notes.clone(), t.fg(Role::Text)),
                Span::styled(format!(" · models {}", made.join(" ")), t.fg(Role::Accent)),
            ])
        };
    }
    let bad = rec.malformed;
    right.push(Line::from(vec![
        label("bad"),
        Span::styled(
            if bad == 0 {
                "no malformed metric lines".to_string()
            } else {
                format!("{bad} malformed metric lines (gantry show lists them)")
            },
            t.fg(if bad == 0 { Role::Muted } else { Role::Warn }),
        ),
    ]));
    let block = super::super::frame_block(state, format!(" {} · {} ", run.name, run.short_id()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [inner, below] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(wide.len() as u16)]).areas(inner);
    frame.render_widget(Paragraph::new(clipped(wide, below.width)), below);
    // Two columns apart, each cell on its line, cut with `…` where it is longer.
    let [l, rr] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)])
        .spacing(2)
        .areas(inner);
    frame.render_widget(Paragraph::new(clipped(left, l.width)), l);
    frame.render_widget(Paragraph::new(clipped(right, rr.width)), rr);
}

/// Each line cut to `width` columns, the cut marked with `…`, its styles kept.
fn clipped(lines: Vec<Line<'_>>, width: u16) -> Vec<Line<'_>> {
    let width = usize::from(width);
    lines
        .into_iter()
        .map(|l| {
            if l.width() <= width {
                return l;
            }
            let mut left = width.saturating_sub(1);
            let mut spans = Vec::new();
            for s in l.spans {
                let n = s.content.chars().count();
                if n <= left {
                    left -= n;
                    spans.push(s);
                    continue;
                }
                let cut: String = s.content.chars().take(left).collect();
                spans.push(Span::styled(cut + "…", s.style));
                break;
            }
            Line::from(spans)
        })
        .collect()
}

/// A grid of charts, one per metric key, each overlaying `runs`.
pub(super) fn charts(
    frame: &mut Frame,
    area: Rect,
    state: &State,
    runs: &[String],
    keys: &[String],
    focused: bool,
) {
    let t = &state.theme;
    let r = &state.runs;
    let o = &r.chart;
    let all = r.metric_keys(runs).len();
    let first = o.page.min(all.saturating_sub(1) / o.per_page().max(1)) * o.per_page();
    let mut title = format!(
        " Metrics {}-{} of {all} · x: {}",
        (first + 1).min(all),
        first + keys.len(),
        o.x.label()
    );
    if o.smoothing > 0 {
        title += &format!(" · ema {}", o.ema());
    }
    if o.log_y {
        title += " · log y";
    }
    if o.window != (0.0, 1.0) {
        title += " · zoomed";
    }
    title.push(' ');
    let border = if focused {
        t.fg(Role::Accent)
    } else {
        t.fg(Role::Border)
    };
    let block = Block::bordered().title(title).border_style(border);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if keys.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled(" no metrics yet", t.fg(Role::Muted))),
            inner,
        );
        return;
    }
    // The open runs' alerts and flight-recorder events, marked on every chart.
    let events: Vec<crate::domain::flight::Mark> = runs
        .iter()
        .filter_map(|id| r.record(id))
        .flat_map(|rec| crate::domain::flight::marks(&rec.tags))
        .collect();
    // Only the rows the metrics on this page need.
    let used_rows = keys
        .len()
        .div_ceil(usize::from(o.cols.max(1)))
        .clamp(1, usize::from(o.rows.max(1)));
    let rows = Layout::vertical(vec![Constraint::Fill(1); used_rows]).split(inner);
    for (i, key) in keys.iter().enumerate() {
        let (row, col) = (
            i / usize::from(o.cols.max(1)),
            i % usize::from(o.cols.max(1)),
        );
        let Some(row_area) = rows.get(row) else { break };
        let cells = Layout::horizontal(vec![Constraint::Fill(1); usize::from(o.cols.max(1))])
            .split(*row_area);
        let lines: Vec<Line_> = runs
            .iter()
            .filter_map(|run| {
                let id = SeriesId {
                    run: run.clone(),
                    kind: SeriesKind::Metric,
                    key: key.clone(),
                };
                let s = r.series.get(&id)?;
                let label = r.record(run).map_or(run.as_str(), |x| x.run.name.as_str());
                Some(Line_ {
                    series: s,
                    color: t.series(r.color(run)),
                    label,
                })
            })
            .collect();
        let marks: Vec<series_chart::Mark> = events
            .iter()
            .map(|m| series_chart::Mark {
                step: m.step,
                at_ms: m.at_ms,
                label: &m.label,
                color: t.color(if m.bad { Role::Bad } else { Role::Warn }),
            })
            .collect();
        series_chart::render(
            frame,
            cells[col],
            key,
            &lines,
            o,
            t.fg(Role::Border),
            t.fg(Role::Muted),
            t.color(Role::Muted),
            &marks,
        );
    }
}

fn system(frame: &mut Frame, area: Rect, state: &State, run: &str) {
    let t = &state.theme;
    let r = &state.runs;
    let slots = Layout::vertical(vec![Constraint::Fill(1); SYSTEM_KEYS.len()]).split(area);
    // System samples are stamped in epoch seconds: plot them against time since the run began.
    let opts = crate::app::runs::ChartOpts {
        x: crate::app::runs::XMode::Relative,
        ..Default::default()
    };
    for (key, slot) in SYSTEM_KEYS.iter().zip(slots.iter()) {
        let id = SeriesId {
            run: run.to_string(),
            kind: SeriesKind::System,
            key: (*key).into(),
        };
        let lines: Vec<Line_> = r
            .series
            .get(&id)
            .filter(|s| !s.is_empty())
            .map(|s| {
                vec![Line_ {
                    series: s,
                    color: t.color(Role::Accent),
                    label: key,
                }]
            })
            .unwrap_or_default();
        series_chart::render(
            frame,
            *slot,
            key,
            &lines,
            &opts,
            t.fg(Role::Border),
            t.fg(Role::Muted),
            t.color(Role::Muted),
            &[],
        );
    }
}

fn log_pane(frame: &mut Frame, area: Rect, state: &State) {
    let t = &state.theme;
    let log = &state.runs.log;
    let focused = state.runs.focus == Focus::Log;
    let h = usize::from(area.height.saturating_sub(2));
    let end = log.lines.len().saturating_sub(log.scroll);
    let start = end.saturating_sub(h);
    let needle = log.search.as_deref().map(str::to_lowercase);
    let w = usize::from(area.width.saturating_sub(2));
    let lines: Vec<Line> = log.lines[start..end]
        .iter()
        .map(|l| {
            let hit = needle
                .as_deref()
                .is_some_and(|n| !n.is_empty() && l.to_lowercase().contains(n));
            let style = if hit {
                t.selection().patch(t.fg(Role::Warn))
            } else {
                t.fg(Role::Text)
            };
            Line::styled(fit(l, w), style)
        })
        .collect();
    let mut title = if log.scroll == 0 {
        " Log (following) ".to_string()
    } else {
        format!(" Log (↑{}) ", log.scroll)
    };
    if let Some(s) = &log.search {
        title += &format!("/{s} ");
    }
    let border: Style = if focused {
        t.fg(Role::Accent)
    } else {
        t.fg(Role::Border)
    };
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title).border_style(border)),
        area,
    );
}
