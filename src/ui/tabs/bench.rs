//! The Bench tab: the checklist (benchmarks, precisions, GEMM size, backend), the results of the
//! run in progress or just ended with a progress bar each, GEMM TFLOP/s against size, and this
//! GPU's history with drops of more than 5% flagged.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Cell, Chart, Dataset, GraphType, Paragraph, Row as TableRow, Table,
};

use crate::app::State;
use crate::app::bench::{Cuda, ITEMS, Item};
use crate::config::Role;
use crate::domain::bench::{Conditions, Kind, Precision, Unit};
use crate::format::{compact, fit, four_digits, sparkline};

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let _t = &state.theme;
    let b = &state.bench;
    let block = super::frame_block(state, " Bench ".to_string());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(inner);
    frame.render_widget(Paragraph::new(backend_line(state)), head);
    let [list, right] =
        Layout::horizontal([Constraint::Length(25), Constraint::Fill(1)]).areas(body);
    checklist(frame, list, state);
    let (shown, stored) = b.shown_rows();
    let gemm_points = gemm_points(&shown);
    let history_rows = b.history_specs().len().min(8) as u16;
    // The sustained load's chart takes the GEMM chart's place once it has begun.
    let show_burn = !b.windows.is_empty() && right.height >= 20;
    let show_chart =
        show_burn || gemm_points.iter().any(|(_, pts)| pts.len() >= 2) && right.height >= 24;
    let result_rows = (shown.len() as u16 + 3).max(5);
    let [results, chart, history] = Layout::vertical([
        Constraint::Length(if show_chart {
            result_rows.min(right.height / 2)
        } else {
            result_rows
        }),
        Constraint::Length(if show_chart { 10 } else { 0 }),
        Constraint::Min(history_rows.max(1) + 2),
    ])
    .areas(right);
    results_table(frame, results, state, &shown, stored);
    if show_burn {
        burn_chart(frame, chart, state);
    } else if show_chart {
        gemm_chart(frame, chart, state, &gemm_points);
    }
    history_panel(frame, history, state);
}

fn backend_line(state: &State) -> Line<'static> {
    let t = &state.theme;
    let b = &state.bench;
    // The device of the backend and GPU chosen: another GPU's stays unnamed until probed.
    let chosen = b.gpus.get(b.gpu).map(|(_, u)| u.as_str());
    let device = b
        .device
        .as_ref()
        .filter(|d| (d.backend == "cpu") == b.cpu)
        .filter(|d| b.cpu || chosen.is_none_or(|u| u == d.uuid));
    if let Some(d) = device {
        let mut s = format!("{} · {}", d.backend.to_uppercase(), d.name);
        if let Some(c) = &d.cuda {
            s.push_str(&format!(" · CUDA {c}"));
        }
        if let Some(dr) = &d.driver {
            s.push_str(&format!(" · driver {dr}"));
        }
        let libs: Vec<&str> = d
            .libraries
            .iter()
            .map(|l| l.rsplit('/').next().unwrap_or(l))
            .collect();
        s.push_str(&format!(" · {}", libs.join(", ")));
        return Line::styled(s, t.fg(Role::Muted));
    }
    if b.cpu {
        return Line::styled(
            "CPU backend: GEMM through matrixmultiply, memory copy, thread wake-up · c: CUDA",
            t.fg(Role::Muted),
        );
    }
    match &b.cuda {
        Cuda::Unavailable(why) => Line::from(vec![
            Span::styled(why.clone(), t.fg(Role::Warn)),
            Span::styled(" · c: use the CPU backend", t.fg(Role::Muted)),
        ]),
        Cuda::Available => Line::styled(
            "CUDA libraries found; the device and loaded libraries are named after a run",
            t.fg(Role::Muted),
        ),
        Cuda::Unknown | Cuda::Probing => Line::styled("Looking for CUDA…", t.fg(Role::Muted)),
    }
}

fn checklist(frame: &mut Frame, area: Rect, state: &State) {
    let t = &state.theme;
    let b = &state.bench;
    let mut lines = vec![Line::styled(
        "Benchmarks",
        t.fg(Role::Muted).add_modifier(Modifier::BOLD),
    )];
    for (i, item) in ITEMS.iter().enumerate() {
        let text = match item {
            Item::Kind(k) => format!("[{}] {}", mark(b.checked(*item)), k.title()),
            Item::Precision(p) => format!("  [{}] {}", mark(b.checked(*item)), p.as_str()),
            Item::Size => format!("  size: {}", b.size_text()),
            Item::Gpu => b.gpu_text(),
            Item::Burn => b.burn_text(),
        };
        let dim = matches!(item, Item::Precision(_) | Item::Size) && !b.kinds.contains(&Kind::Gemm)
            || b.cpu
                && matches!(
                    item,
                    Item::Kind(Kind::H2d | Kind::D2h)
                        | Item::Gpu
                        | Item::Precision(Precision::Tf32 | Precision::Fp16 | Precision::Bf16)
                );
        let mut style = t.fg(if dim { Role::Muted } else { Role::Text });
        if i == b.cursor {
            style = t.fg(Role::Selection).add_modifier(Modifier::REVERSED);
        }
        lines.push(Line::styled(fit(&text, area.width as usize), style));
    }
    lines.push(Line::from(""));
    let backend = if b.cpu { "CPU" } else { "CUDA" };
    let k = |a: crate::app::Action| state.keymap.key_text(a);
    lines.push(Line::styled(
        format!("backend: {backend} ({})", k(crate::app::Action::BenchCpu)),
        t.fg(Role::Muted),
    ));
    let keys = if b.running {
        format!("{} cancel", k(crate::app::Action::BenchCancel))
    } else {
        format!(
            "{} check · {} run",
            k(crate::app::Action::BenchToggle),
            k(crate::app::Action::BenchRun)
        )
    };
    lines.push(Line::styled(keys, t.fg(Role::Muted)));
    frame.render_widget(Paragraph::new(lines), area);
}

fn mark(on: bool) -> char {
    if on { 'x' } else { ' ' }
}

/// A text progress bar of `w` cells.
fn bar(done: usize, total: usize, w: usize) -> String {
    let filled = (done * w).checked_div(total).unwrap_or(0).min(w);
    format!("{}{}", "█".repeat(filled), "░".repeat(w - filled))
}

fn results_table(
    frame: &mut Frame,
    area: Rect,
    state: &State,
    shown: &[crate::app::bench::Row],
    stored: Option<&crate::domain::bench::StoredBench>,
) {
    let t = &state.theme;
    let b = &state.bench;
    let title = match stored {
        _ if b.running => format!(
            " Results · running {}/{} ",
            b.rows.len(),
            b.total.max(b.rows.len())
        ),
        // Nothing run yet: the newest stored run, marked as such.
        Some(s) => format!(
            " Results · stored, {} · {} ",
            crate::format::ago(s.started_ms, state.now_ms),
            s.device.trim_start_matches("NVIDIA ")
        ),
        None => " Results ".to_string(),
    };
    let block = Block::bordered()
        .title(title)
        .border_style(t.fg(Role::Border));
    if shown.is_empty() {
        let text = if b.running {
            "Starting…".to_string()
        } else {
            format!(
                "Check benchmarks on the left and press {} to run them.",
                state.keymap.key_text(crate::app::Action::BenchRun)
            )
        };
        frame.render_widget(
            Paragraph::new(Line::styled(format!(" {text}"), t.fg(Role::Muted))).block(block),
            area,
        );
        return;
    }
    let header = TableRow::new(["Benchmark", "Median", "Min-max", "±sd", "% peak", "Check"])
        .style(t.fg(Role::Muted));
    let rows: Vec<TableRow> = shown
        .iter()
        .map(|r| match (&r.result, &r.error) {
            (Some(x), _) => {
                let mut check = match x.check {
                    None => Vec::new(),
                    Some(c) if c.ok => vec![Span::styled("ok", t.fg(Role::Good))],
                    Some(c) => vec![Span::styled(
                        format!("WRONG {:.0e}", c.max_rel_err),
                        t.fg(Role::Bad),
                    )],
                };
                // A clock held down while it ran explains a low figure: say why beside it.
                if let Some(c) = x.conditions.as_ref().filter(|c| c.throttled()) {
                    if !check.is_empty() {
                        check.push(Span::raw(" "));
                    }
                    check.push(Span::styled(c.throttle.join(", "), t.fg(Role::Warn)));
                }
                let check = Cell::from(Line::from(check));
                TableRow::new(vec![
                    Cell::from(r.label.clone()),
                    Cell::from(format!(
                        "{} {}",
                        four_digits(x.stats.median),
                        x.unit.as_str()
                    )),
                    Cell::from(format!(
                        "{}-{}",
                        four_digits(x.stats.min),
                        four_digits(x.stats.max)
                    )),
                    Cell::from(four_digits(x.stats.stddev)),
                    Cell::from(x.pct_of_peak.map_or("-".into(), |p| format!("{p:.1}%"))),
                    check,
                ])
            }
            (None, Some(e)) => TableRow::new(vec![
                Cell::from(r.label.clone()),
                Cell::from(Span::styled(format!("failed: {e}"), t.fg(Role::Bad))),
            ]),
            (None, None) => TableRow::new(vec![
                Cell::from(r.label.clone()),
                Cell::from(Span::styled(bar(r.done, r.reps, 12), t.fg(Role::Accent))),
                Cell::from(Span::styled(
                    format!("{}/{}", r.done, r.reps),
                    t.fg(Role::Accent),
                )),
            ]),
        })
        .collect();
    // The range of what the GPU went through over the results, on the block's bottom edge.
    let done: Vec<&Conditions> = shown
        .iter()
        .filter_map(|r| r.result.as_ref()?.conditions.as_ref())
        .collect();
    let block = match conditions_range(&done) {
        Some(text) => block.title_bottom(Line::styled(format!(" {text} "), t.fg(Role::Muted))),
        None => block,
    };
    let table = Table::new(
        rows,
        [
            Constraint::Length(22),
            Constraint::Length(15),
            Constraint::Length(17),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Fill(1),
        ],
    )
    .header(header)
    .block(block);
    frame.render_widget(table, area);
}

/// "GPU during: 1245-1410 MHz · up to 392 W · up to 87C", over every result that has conditions.
fn conditions_range(all: &[&Conditions]) -> Option<String> {
    if all.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    let lo = all.iter().filter_map(|c| c.sm_clock_min_mhz).min();
    let hi = all.iter().filter_map(|c| c.sm_clock_mhz).max();
    match (lo, hi) {
        (Some(lo), Some(hi)) if lo < hi => parts.push(format!("{lo}-{hi} MHz")),
        (_, Some(hi)) => parts.push(format!("{hi} MHz")),
        _ => {}
    }
    if let Some(p) = all.iter().filter_map(|c| c.power_w).reduce(f64::max) {
        parts.push(format!("up to {p:.0} W"));
    }
    if let Some(t) = all.iter().filter_map(|c| c.temp_max_c).max() {
        parts.push(format!("up to {t}C"));
    }
    (!parts.is_empty()).then(|| format!("GPU during: {}", parts.join(" · ")))
}

/// GEMM medians by precision: (precision, [(log2 size, TFLOP/s)]).
fn gemm_points(rows: &[crate::app::bench::Row]) -> Vec<(Precision, Vec<(f64, f64)>)> {
    let mut out: Vec<(Precision, Vec<(f64, f64)>)> = Vec::new();
    for r in rows.iter().filter_map(|r| r.result.as_ref()) {
        let (Kind::Gemm, Some(p)) = (r.spec.kind, r.spec.precision) else {
            continue;
        };
        let pt = ((r.spec.size as f64).log2(), r.stats.median);
        match out.iter_mut().find(|(q, _)| *q == p) {
            Some((_, v)) => v.push(pt),
            None => out.push((p, vec![pt])),
        }
    }
    out
}

fn gemm_chart(
    frame: &mut Frame,
    area: Rect,
    state: &State,
    points: &[(Precision, Vec<(f64, f64)>)],
) {
    let t = &state.theme;
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for (_, pts) in points {
        for (x, y) in pts {
            x0 = x0.min(*x);
            x1 = x1.max(*x);
            y1 = y1.max(*y);
        }
    }
    let datasets: Vec<Dataset> = points
        .iter()
        .enumerate()
        .map(|(i, (p, pts))| {
            Dataset::default()
                .name(p.as_str())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(ratatui::style::Style::default().fg(t.series(i)))
                .data(pts)
        })
        .collect();
    let xl: Vec<Line> = [x0, x1]
        .iter()
        .map(|x| Line::from(format!("{}", 2f64.powf(*x).round())))
        .collect();
    let chart = Chart::new(datasets)
        .legend_position(Some(ratatui::widgets::LegendPosition::TopLeft))
        .hidden_legend_constraints((Constraint::Ratio(1, 1), Constraint::Ratio(1, 1)))
        .block(
            Block::bordered()
                .title(" GEMM TFLOP/s by size ")
                .border_style(t.fg(Role::Border)),
        )
        .x_axis(
            Axis::default()
                .bounds([x0, x1.max(x0 + 1.0)])
                .labels(xl)
                .style(t.fg(Role::Muted)),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, y1 * 1.1])
                .labels(vec![Line::from("0"), Line::from(compact(y1))])
                .style(t.fg(Role::Muted)),
        );
    frame.render_widget(chart, area);
}

/// The sustained load, a point a second: throughput as a share of the first second's, and the
/// SM clock as a share of its highest, on one percent axis; the summary on the edges once done.
fn burn_chart(frame: &mut Frame, area: Rect, state: &State) {
    let t = &state.theme;
    let b = &state.bench;
    let unit = Unit::TflopS.as_str();
    let first = b
        .windows
        .first()
        .map_or(1.0, |w| w.value)
        .max(f64::MIN_POSITIVE);
    let held: Vec<(f64, f64)> = b
        .windows
        .iter()
        .map(|w| (w.t, 100.0 * w.value / first))
        .collect();
    let max_clock = b
        .windows
        .iter()
        .filter_map(|w| {
            let c = w.conditions.as_ref()?;
            c.sm_clock_max_mhz.or(c.sm_clock_mhz)
        })
        .max()
        .map_or(0.0, f64::from);
    let clock: Vec<(f64, f64)> = b
        .windows
        .iter()
        .filter_map(|w| Some((w.t, f64::from(w.conditions.as_ref()?.sm_clock_mhz?))))
        .filter(|_| max_clock > 0.0)
        .map(|(x, c)| (x, 100.0 * c / max_clock))
        .collect();
    let lo = held
        .iter()
        .chain(&clock)
        .map(|p| p.1)
        .fold(100.0f64, f64::min);
    let lo = (lo - 5.0).floor().max(0.0);
    let hi = held
        .iter()
        .chain(&clock)
        .map(|p| p.1)
        .fold(100.0f64, f64::max)
        + 2.0;
    let x1 = held.last().map_or(1.0, |p| p.0).max(1.0);
    let mut datasets = vec![
        Dataset::default()
            .name(format!("{unit}, % of the first second"))
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(ratatui::style::Style::default().fg(t.series(0)))
            .data(&held),
    ];
    if !clock.is_empty() {
        datasets.push(
            Dataset::default()
                .name(format!("SM clock, % of {max_clock:.0} MHz"))
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(ratatui::style::Style::default().fg(t.series(1)))
                .data(&clock),
        );
    }
    let (label, secs) = b
        .burn_spec()
        .map_or((String::new(), 0.0), |(spec, secs)| (spec.label(), secs));
    let (title, bottom) = match &b.burned {
        Some(Ok(x)) => {
            let c = x.conditions.clone().unwrap_or_default();
            let mut bottom = c.brief();
            if c.throttled() {
                bottom.push_str(&format!(" · {}", c.throttle.join(", ")));
            }
            if !x.correct() {
                bottom.push_str(" · WRONG");
            }
            (
                format!(
                    " Sustained {label}: {} → {} {unit}, held {:.1}% ",
                    four_digits(x.start),
                    four_digits(x.end),
                    100.0 * x.sustained
                ),
                bottom,
            )
        }
        Some(Err(e)) => (format!(" Sustained {label}: {e} "), String::new()),
        None => (
            format!(
                " Sustained {label} · {x1:.0}/{secs:.0} s · {} {unit} ",
                b.windows
                    .last()
                    .map_or("-".into(), |w| four_digits(w.value))
            ),
            b.windows
                .last()
                .and_then(|w| w.conditions.as_ref())
                .map_or(String::new(), |c| c.brief()),
        ),
    };
    let mut block = Block::bordered()
        .title(title)
        .border_style(t.fg(Role::Border));
    if !bottom.is_empty() {
        block = block.title_bottom(Line::styled(format!(" {bottom} "), t.fg(Role::Muted)));
    }
    let chart = Chart::new(datasets)
        .legend_position(Some(ratatui::widgets::LegendPosition::BottomLeft))
        .hidden_legend_constraints((Constraint::Ratio(1, 1), Constraint::Ratio(1, 1)))
        .block(block)
        .x_axis(
            Axis::default()
                .bounds([0.0, x1])
                .labels(vec![Line::from("0 s"), Line::from(format!("{x1:.0} s"))])
                .style(t.fg(Role::Muted)),
        )
        .y_axis(
            Axis::default()
                .bounds([lo, hi])
                .labels(vec![
                    Line::from(format!("{lo:.0}%")),
                    Line::from(format!("{hi:.0}%")),
                ])
                .style(t.fg(Role::Muted)),
        );
    frame.render_widget(chart, area);
}

fn history_panel(frame: &mut Frame, area: Rect, state: &State) {
    let t = &state.theme;
    let b = &state.bench;
    let device = b.history_device();
    let name = device
        .as_ref()
        .and_then(|u| b.history.iter().rev().find(|h| &h.device_uuid == u))
        .map(|h| h.device.clone())
        .unwrap_or_default();
    let block = Block::bordered()
        .title(format!(
            " History{} ",
            if name.is_empty() {
                String::new()
            } else {
                format!(" · {name}")
            }
        ))
        .border_style(t.fg(Role::Border));
    let Some(device) = device else {
        frame.render_widget(
            Paragraph::new(Line::styled(
                " No results stored yet: each run adds to this GPU's history.",
                t.fg(Role::Muted),
            ))
            .block(block),
            area,
        );
        return;
    };
    let mut lines = Vec::new();
    for spec in b
        .history_specs()
        .iter()
        .take(area.height.saturating_sub(2) as usize)
    {
        let (values, drop) = b.trend(&device, spec);
        let Some(last) = values.last() else { continue };
        let before = &values[..values.len() - 1];
        let med = crate::domain::bench::median(before);
        let unit = spec.kind.unit().as_str();
        let mut spans = vec![
            Span::styled(format!("{:<22} ", fit(&spec.label(), 22)), t.fg(Role::Text)),
            Span::styled(
                format!("{:<10} ", sparkline(&values, 10)),
                t.fg(Role::Accent),
            ),
            Span::styled(
                format!("{:>14}", format!("{} {unit}", four_digits(*last))),
                t.fg(Role::Text),
            ),
        ];
        // The flag first: on a narrow terminal it is what must not be cut.
        if let Some(d) = drop {
            spans.push(Span::styled(
                format!(" · ▼ {:.1}% below median", 100.0 * d),
                t.fg(Role::Bad).add_modifier(Modifier::BOLD),
            ));
        }
        // What held the clocks down in the newest of them, which may explain it.
        if let Some(c) = b
            .newest(&device, spec)
            .and_then(|h| h.conditions.as_ref())
            .filter(|c| c.throttled())
        {
            spans.push(Span::styled(
                format!(" ({})", c.throttle.join(", ")),
                t.fg(Role::Warn),
            ));
        }
        spans.push(Span::styled(
            match med {
                Some(m) => format!(" · median {} of {}", four_digits(m), before.len()),
                None => " · first run".into(),
            },
            t.fg(Role::Muted),
        ));
        lines.push(Line::from(spans));
    }
    if lines.is_empty() {
        lines.push(Line::styled(
            " No results stored yet for this device: each run adds to its history.",
            t.fg(Role::Muted),
        ));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
