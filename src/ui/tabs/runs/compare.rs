use std::collections::BTreeSet;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table};

use crate::app::State;
use crate::app::runs::SeriesId;
use crate::config::Role;
use crate::domain::SeriesKind;
use crate::format::{compact, fit};

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let t = &state.theme;
    let r = &state.runs;
    let runs = r.compared();
    let recs: Vec<_> = runs.iter().filter_map(|id| r.record(id)).collect();
    if recs.len() < 2 {
        super::super::empty(
            frame,
            area,
            state,
            "Compare",
            "Mark two or more runs to compare them.",
            &[],
        );
        return;
    }
    // The GPUs each ran on, compared like a param.
    let gpus: Vec<Option<String>> = recs
        .iter()
        .map(|x| {
            x.tags
                .get(crate::domain::efficiency::HARDWARE_TAG)
                .and_then(|t| crate::domain::efficiency::Hardware::parse(t))
                .map(|h| h.summary())
        })
        .collect();
    let gpus_differ = gpus.iter().any(|g| *g != gpus[0]);
    let gpu_row =
        (gpus.iter().any(Option::is_some) && (gpus_differ || !r.diff_only)).then(|| {
            let style = if gpus_differ {
                t.fg(Role::Warn).add_modifier(Modifier::BOLD)
            } else {
                t.fg(Role::Muted)
            };
            let mut cells = vec![
                Cell::from(format!("{}(gpu)", if gpus_differ { "* " } else { "  " })).style(style),
            ];
            cells.extend(gpus.iter().map(|g| {
                Cell::from(g.clone().unwrap_or_else(|| "-".into())).style(t.fg(Role::Text))
            }));
            Row::new(cells)
        });
    let cond_rows = condition_rows(state, &recs);
    let keys: BTreeSet<&String> = recs.iter().flat_map(|x| x.params.keys()).collect();
    let params: Vec<(&String, bool)> = keys
        .into_iter()
        .map(|k| {
            let v0 = recs[0].params.get(k);
            (k, recs.iter().any(|x| x.params.get(k) != v0))
        })
        .filter(|(_, d)| *d || !r.diff_only)
        .collect();
    let metrics = r.metric_keys(&runs);
    let ph = (params.len() as u16 + u16::from(gpu_row.is_some()) + cond_rows.len() as u16 + 3)
        .min(area.height / 3)
        .max(4);
    let sh = ((metrics.len() * recs.len()) as u16 + 3)
        .min(area.height / 3)
        .max(4);
    let [pa, sa, ca] = Layout::vertical([
        Constraint::Length(ph),
        Constraint::Length(sh),
        Constraint::Fill(1),
    ])
    .areas(area);
    let run_style = |id: &str| Style::new().fg(t.series(r.color(id)));

    // Params side by side; differing rows marked and coloured.
    let mut header = vec![Cell::from("Param")];
    header.extend(
        recs.iter()
            .map(|x| Cell::from(Span::styled(x.run.name.clone(), run_style(&x.run.id)))),
    );
    let rows = params.iter().map(|(k, differs)| {
        let key_style = if *differs {
            t.fg(Role::Warn).add_modifier(Modifier::BOLD)
        } else {
            t.fg(Role::Muted)
        };
        let mut cells =
            vec![Cell::from(format!("{}{k}", if *differs { "* " } else { "  " })).style(key_style)];
        cells.extend(recs.iter().map(|x| {
            Cell::from(x.params.get(*k).cloned().unwrap_or_else(|| "-".into()))
                .style(t.fg(Role::Text))
        }));
        Row::new(cells)
    });
    let rows = cond_rows.into_iter().chain(gpu_row).chain(rows);
    let mut widths = vec![Constraint::Length(20)];
    widths.extend(recs.iter().map(|_| Constraint::Fill(1)));
    let title = format!(
        " Params{} · {} diff only ",
        if r.diff_only { " (differing only)" } else { "" },
        state.keymap.key_text(crate::app::Action::DiffOnly)
    );
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(t.fg(Role::Muted)))
            .block(
                super::super::frame_block(state, title).title_bottom(Line::styled(
                    verdict_line(state),
                    t.fg(Role::Warn).add_modifier(Modifier::BOLD),
                )),
            ),
        pa,
    );

    // Metric summary: last, best@step, delta of the last value against the baseline (the first).
    let base = &recs[0];
    let mut rows = Vec::new();
    for key in &metrics {
        let dir = r.direction(key);
        let base_last = base.metrics.get(key).and_then(|s| s.last);
        for (i, x) in recs.iter().enumerate() {
            let s = x.metrics.get(key);
            let last = s.and_then(|s| s.last);
            let series = r.series.get(&SeriesId {
                run: x.run.id.clone(),
                kind: SeriesKind::Metric,
                key: key.clone(),
            });
            let best = series
                .and_then(|s| s.best(dir))
                .map_or_else(|| "-".into(), |(v, st)| format!("{}@{st}", compact(v)));
            let (delta, role) = match (i, last, base_last) {
                (0, _, _) => ("baseline".to_string(), Role::Muted),
                (_, Some(a), Some(b)) if a.is_finite() && b.is_finite() => {
                    let d = a - b;
                    let role = if d == 0.0 {
                        Role::Muted
                    } else if dir.better(a, b) {
                        Role::Good
                    } else {
                        Role::Bad
                    };
                    (
                        format!("{}{}", if d > 0.0 { "+" } else { "" }, compact(d)),
                        role,
                    )
                }
                _ => ("-".into(), Role::Muted),
            };
            rows.push(Row::new(vec![
                Cell::from(if i == 0 { fit(key, 22) } else { String::new() })
                    .style(t.fg(Role::Text)),
                Cell::from(Span::styled(fit(&x.run.name, 18), run_style(&x.run.id))),
                Cell::from(last.map_or_else(
                    || "-".into(),
                    |v| {
                        let cur = x.tags.get(crate::domain::efficiency::CURRENCY_TAG);
                        crate::format::efficiency::column_value(key, v, cur.map(String::as_str))
                            .unwrap_or_else(|| compact(v))
                    },
                ))
                .style(t.fg(Role::Text)),
                Cell::from(best).style(t.fg(Role::Text)),
                Cell::from(delta).style(t.fg(role)),
            ]));
        }
    }
    let header =
        Row::new(["Metric", "Run", "Last", "Best@step", "Δ vs baseline"]).style(t.fg(Role::Muted));
    let widths = [
        Constraint::Length(22),
        Constraint::Length(18),
        Constraint::Length(10),
        Constraint::Length(16),
        Constraint::Fill(1),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(super::super::frame_block(
                state,
                format!(" Metrics · baseline {} ", base.run.name),
            )),
        sa,
    );
    let keys = {
        let per = r.chart.per_page();
        let page = r
            .chart
            .page
            .min(metrics.len().saturating_sub(1) / per.max(1));
        metrics
            .iter()
            .skip(page * per)
            .take(per)
            .cloned()
            .collect::<Vec<_>>()
    };
    super::detail::charts(frame, ca, state, &runs, &keys, true);
    let _ = Line::default();
}

/// "Why was this run slower?": the compared runs' conditions as rows of the params table, those
/// that differ marked, and on top the verdict of each slower run.
fn condition_rows(state: &State, recs: &[&crate::domain::RunRecord]) -> Vec<Row<'static>> {
    use crate::domain::conditions::RunConditions;
    let t = &state.theme;
    let all = &state.runs.conditions;
    let of: Vec<Option<&RunConditions>> = recs
        .iter()
        .map(|r| all.iter().find(|c| c.id == r.run.id))
        .collect();
    if of.iter().all(Option::is_none) {
        return Vec::new();
    }
    let num = |x: Option<f64>, unit: &str, digits: usize| {
        x.map_or("-".to_string(), |v| format!("{v:.digits$}{unit}"))
    };
    type Get = Box<dyn Fn(&RunConditions) -> String>;
    let fields: Vec<(&str, Get)> = vec![
        (
            "(steps/s)",
            Box::new(|c| c.steps_per_s.map_or("-".into(), crate::format::four_digits)),
        ),
        (
            "(SM clock)",
            Box::new(move |c| num(c.sm_clock_mhz, " MHz", 0)),
        ),
        (
            "(power limit)",
            Box::new(move |c| num(c.power_limit_w, " W", 0)),
        ),
        (
            "(throttled)",
            Box::new(|c| {
                c.throttled
                    .iter()
                    .map(|(w, f)| format!("{w} {:.0}%", f * 100.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
        ),
        (
            "(shared with)",
            Box::new(move |c| num(c.others, " procs", 0)),
        ),
        ("(host CPU)", Box::new(move |c| num(c.host_cpu, "%", 0))),
        (
            "(bench bf16)",
            Box::new(move |c| num(c.bench_tflops.map(|b| b.0), " TFLOP/s", 0)),
        ),
    ];
    let mut rows = Vec::new();
    for (label, get) in fields {
        let vals: Vec<String> = of
            .iter()
            .map(|c| {
                c.map(&get)
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| "-".into())
            })
            .collect();
        if vals.iter().all(|v| v == "-") {
            continue;
        }
        let differs = vals.iter().any(|v| *v != vals[0]);
        let style = if differs {
            t.fg(Role::Warn).add_modifier(Modifier::BOLD)
        } else {
            t.fg(Role::Muted)
        };
        let mut cells =
            vec![Cell::from(format!("{}{label}", if differs { "* " } else { "  " })).style(style)];
        cells.extend(
            vals.into_iter()
                .map(|v| Cell::from(v).style(t.fg(Role::Text))),
        );
        rows.push(Row::new(cells));
    }
    rows
}

/// Each slower run's verdict, on the params block's lower edge: " ! B: 18% slower than A; … ".
fn verdict_line(state: &State) -> String {
    let v = crate::domain::conditions::verdicts(&state.runs.conditions);
    if v.is_empty() {
        String::new()
    } else {
        format!(" ! {} ", v.join(" · "))
    }
}
