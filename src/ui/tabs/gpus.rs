use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, LineGauge, Paragraph, Row, Sparkline, Table, TableState};

use crate::app::fleet::Opened;
use crate::app::gpus::{GpuMetric, GpusState, ProcSort};
use crate::app::{GpuProbe, Modal, State};
use crate::config::Role;
use crate::domain::GpuSample;
use crate::format::size;
use crate::format::{duration, fit};

/// From this many GPUs on, one line each.
const COMPACT_FROM: usize = 8;
/// From this terminal width on, each GPU panel charts two metrics: the chosen one and the next.
const TWO_CHARTS_FROM: u16 = 140;

fn opt<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
    v.map_or_else(|| "n/a".into(), |x| format!("{x}{unit}"))
}

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    if let Some(f) = &state.gpus.fleet {
        match &f.open {
            None => return super::fleet::render(frame, area, state, f),
            Some(Opened::Host(name)) => {
                return match f.boxes.get(name) {
                    Some(b) => render_box(frame, area, state, b, Some(name)),
                    None => super::empty(
                        frame,
                        area,
                        state,
                        name,
                        "No GPU data from this host",
                        &[
                            "Its source has not answered yet, or failed: the host table says why.",
                            "Esc goes back to the host table.",
                        ],
                    ),
                };
            }
            Some(Opened::Local) => {}
        }
    }
    let from_fleet = state.gpus.fleet.is_some().then_some("this box");
    render_box(frame, area, state, &state.gpus, from_fleet)
}

/// One box: the local one (its GPUs through NVML or a replay, and their processes), or a fleet
/// host opened from the host table (`host` names it; Esc goes back).
fn render_box(frame: &mut Frame, area: Rect, state: &State, g: &GpusState, host: Option<&str>) {
    let t = &state.theme;
    let Some(snap) = &g.snapshot else {
        match &state.gpu {
            GpuProbe::Absent(why) => super::empty(
                frame,
                area,
                state,
                "GPUs",
                &format!("No GPU data: {why}"),
                &[
                    "Live GPU stats need an NVIDIA driver (libnvidia-ml.so.1) on this host.",
                    "gantry --gpu-replay FILE plays a recording instead.",
                ],
            ),
            _ => super::empty(frame, area, state, "GPUs", "Looking for NVIDIA GPUs…", &[]),
        }
        return;
    };
    let n = snap.gpus.len();
    let compact = n >= COMPACT_FROM;
    // A panel is 6 rows, and up to 6 more for a long list of MIG devices.
    let heights: Vec<u16> = snap
        .gpus
        .iter()
        .map(|g| 6 + g.mig_instances.len().saturating_sub(2).min(6) as u16)
        .collect();
    let gpu_h = if compact {
        n as u16 + 2
    } else {
        heights
            .iter()
            .sum::<u16>()
            .min(area.height.saturating_sub(8))
    };
    let [head, gpus, procs] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(gpu_h),
        Constraint::Fill(1),
    ])
    .areas(area);
    let mut host_line = g.host.map_or(String::new(), |(cpu, used, total)| {
        format!(" · host CPU {cpu:.0}% · RAM {}/{}", size(used), size(total))
    });
    if let Some(name) = host {
        host_line = format!(" · {name} (esc: all hosts){host_line}");
    }
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(
                format!(
                    " driver {} · CUDA {}",
                    snap.driver.as_deref().unwrap_or("n/a"),
                    snap.cuda.as_deref().unwrap_or("n/a")
                ),
                t.fg(Role::Text),
            ),
            Span::styled(host_line, t.fg(Role::Muted)),
            Span::styled(
                if area.width >= TWO_CHARTS_FROM && !compact {
                    format!(
                        " · {} · charts: {} | {}",
                        g.source,
                        g.metric.label(),
                        g.metric.next().label()
                    )
                } else {
                    format!(" · {} · chart: {}", g.source, g.metric.label())
                },
                t.fg(Role::Muted),
            ),
        ])),
        head,
    );
    if compact {
        compact_list(frame, gpus, state, g, &snap.gpus);
    } else {
        let slots = Layout::vertical(heights.iter().map(|h| Constraint::Fill(*h))).split(gpus);
        for (gpu, slot) in snap.gpus.iter().zip(slots.iter()) {
            panel(frame, *slot, state, g, gpu);
        }
    }
    processes(frame, procs, state, g);
    if matches!(state.modal, Some(Modal::ProcFilter { .. })) {
        super::runs::prompt(
            frame,
            area,
            state,
            "filter processes: pid, gpuN, user, command or run",
            &g.filter,
        );
    }
}

fn mem_frac(g: &GpuSample) -> f64 {
    match (g.mem_used, g.mem_total) {
        (Some(u), Some(t)) if t > 0 => (u as f64 / t as f64).clamp(0.0, 1.0),
        _ => 0.0,
    }
}

fn panel(frame: &mut Frame, area: Rect, state: &State, b: &GpusState, g: &GpuSample) {
    let t = &state.theme;
    let throttle = if g.throttle.is_empty() {
        String::new()
    } else {
        format!(" · {}", g.throttle.join(", "))
    };
    // A fleet host's GPU held by a Slurm job or pod, as its exporter labels it.
    let throttle = match b.jobs.get(&g.index) {
        Some(j) => format!("{throttle} · job {j}"),
        None => throttle,
    };
    let pcie = match (g.pcie_gen, g.pcie_width) {
        (Some(a), Some(b)) => format!(" · PCIe gen{a} x{b}"),
        _ => String::new(),
    };
    let pcie = if g.mig == Some(true) {
        format!("{pcie} · MIG on ({} devices)", g.mig_instances.len())
    } else {
        pcie
    };
    let block = Block::bordered()
        .title(Line::from(vec![
            Span::styled(
                format!(" {} {} ", g.index, g.name),
                t.fg(Role::Text).add_modifier(Modifier::BOLD),
            ),
            Span::styled(format!("{}{pcie}{throttle} ", g.bus_id), t.fg(Role::Muted)),
        ]))
        .border_style(t.fg(Role::Border));
    // The newest benchmark of this GPU, from the Bench tab's history.
    let block = match state.bench.headline(&g.uuid) {
        Some((h, drop)) => {
            let pct = h
                .pct_of_peak
                .map_or(String::new(), |p| format!(" · {p:.0}% of peak"));
            let mut spans = vec![Span::styled(
                format!(
                    " bench {}: {} {} {}{pct} ",
                    crate::format::ago(h.started_ms, state.now_ms),
                    h.spec.label(),
                    crate::format::compact(h.stats.median),
                    h.unit.as_str()
                ),
                t.fg(Role::Muted),
            )];
            if let Some(d) = drop {
                spans.push(Span::styled(
                    format!("▼ {:.1}% below median ", 100.0 * d),
                    t.fg(Role::Bad).add_modifier(Modifier::BOLD),
                ));
            }
            if let Some(c) = h.conditions.as_ref().filter(|c| c.throttled()) {
                spans.push(Span::styled(
                    format!("({}) ", c.throttle.join(", ")),
                    t.fg(Role::Warn),
                ));
            }
            block.title_bottom(Line::from(spans).right_aligned())
        }
        None => block,
    };
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [gauges, facts, chart] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Fill(1),
    ])
    .areas(inner);
    let [ug, mg] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)])
        .spacing(2)
        .areas(gauges);
    let util = f64::from(g.util.unwrap_or(0)) / 100.0;
    let hot = |f: f64| if f > 0.9 { Role::Warn } else { Role::Accent };
    frame.render_widget(
        LineGauge::default()
            .ratio(util.clamp(0.0, 1.0))
            .label(format!("util {:>4}", opt(g.util, "%")))
            .filled_style(t.fg(hot(util)))
            .unfilled_style(t.fg(Role::Border)),
        ug,
    );
    let mem = match (g.mem_used, g.mem_total) {
        (Some(u), Some(tot)) => format!("mem {}/{}", size(u), size(tot)),
        _ => "mem n/a".into(),
    };
    frame.render_widget(
        LineGauge::default()
            .ratio(mem_frac(g))
            .label(mem)
            .filled_style(t.fg(hot(mem_frac(g))))
            .unfilled_style(t.fg(Role::Border)),
        mg,
    );
    let temp_role = match (g.temp, g.temp_slowdown) {
        (Some(a), Some(b)) if a + 5 >= b => Role::Bad,
        _ => Role::Text,
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(format!("{}/{} ", opt(g.temp, "°C"), opt(g.temp_slowdown, "°C")), t.fg(temp_role)),
            Span::styled(
                format!(
                    "· {}/{} · SM {}/{} MHz · mem {} MHz · ↓{} ↑{} · enc {} dec {} · ECC {} · fan {}",
                    opt(g.power.map(|p| p.round() as i64), ""),
                    opt(g.power_limit.map(|p| p.round() as i64), " W"),
                    opt(g.sm_clock, ""),
                    opt(g.sm_clock_max, ""),
                    opt(g.mem_clock, ""),
                    g.pcie_rx.map_or("n/a".into(), |k| size(u64::from(k) * 1024) + "/s"),
                    g.pcie_tx.map_or("n/a".into(), |k| size(u64::from(k) * 1024) + "/s"),
                    opt(g.enc_util, "%"),
                    opt(g.dec_util, "%"),
                    opt(g.ecc_uncorrected, ""),
                    opt(g.fan, "%"),
                ),
                t.fg(Role::Muted),
            ),
        ])),
        facts,
    );
    if chart.height > 0 && !g.mig_instances.is_empty() {
        // With MIG on, the parent GPU reports no utilisation: list its instances instead.
        let rows = usize::from(chart.height);
        let n = g.mig_instances.len();
        let shown = if n > rows { rows - 1 } else { n };
        let mut lines: Vec<Line> = g.mig_instances[..shown]
            .iter()
            .map(|m| {
                let mem = match (m.mem_used, m.mem_total) {
                    (Some(u), Some(tot)) => format!("{}/{}", size(u), size(tot)),
                    _ => "n/a".into(),
                };
                Line::from(vec![
                    Span::styled(format!("MIG {:<2} ", m.index), t.fg(Role::Accent)),
                    Span::styled(
                        format!("{:<16} ", fit(&m.name.replace("NVIDIA ", ""), 16)),
                        t.fg(Role::Text),
                    ),
                    Span::styled(format!("mem {mem:<20} "), t.fg(Role::Text)),
                    Span::styled(m.uuid.clone(), t.fg(Role::Muted)),
                ])
            })
            .collect();
        if shown < n {
            lines.push(Line::styled(
                format!(
                    "+{} more MIG devices (gantry gpu lists them all)",
                    n - shown
                ),
                t.fg(Role::Muted),
            ));
        }
        frame.render_widget(Paragraph::new(lines), chart);
    } else if chart.height > 0 {
        if chart.width + 2 >= TWO_CHARTS_FROM {
            let [a, b2] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)])
                .spacing(2)
                .areas(chart);
            history(frame, a, state, b, g, state.gpus.metric, Role::Accent);
            history(frame, b2, state, b, g, state.gpus.metric.next(), Role::Good);
        } else {
            history(frame, chart, state, b, g, state.gpus.metric, Role::Accent);
        }
    }
}

/// One GPU's history of one metric, newest on the right, scaled to the metric's ceiling.
fn history(
    frame: &mut Frame,
    area: Rect,
    state: &State,
    b: &GpusState,
    g: &GpuSample,
    m: GpuMetric,
    role: Role,
) {
    let t = &state.theme;
    let h = b.history.get(g.index as usize);
    let width = usize::from(area.width);
    let max: u64 = match m {
        GpuMetric::Util | GpuMetric::Memory => 100,
        GpuMetric::Power => g.power_limit.unwrap_or(1000.0) as u64,
        GpuMetric::Temp => u64::from(g.temp_slowdown.unwrap_or(100)),
    };
    let dot = |v: f64| if v.is_finite() { v.max(0.0) as u64 } else { 0 };
    // This box: the newest readings that fit. A fleet host: its whole history (the last hour,
    // from Prometheus), each column the highest of its share.
    let whole = state.gpus.remote().is_some();
    let data: Vec<u64> = h
        .map(|h| {
            let q = h.of(m);
            if whole && q.len() > width && width > 0 {
                (0..width)
                    .map(|c| {
                        let (a, b) = (c * q.len() / width, (c + 1) * q.len() / width);
                        q.range(a..b.max(a + 1))
                            .copied()
                            .filter(|v| v.is_finite())
                            .fold(0, |m, v| m.max(dot(v)))
                    })
                    .collect()
            } else {
                q.iter()
                    .skip(q.len().saturating_sub(width))
                    .map(|v| dot(*v))
                    .collect()
            }
        })
        .unwrap_or_default();
    frame.render_widget(
        Sparkline::default()
            .data(&data)
            .max(max.max(1))
            .style(t.fg(role)),
        area,
    );
}

fn compact_list(frame: &mut Frame, area: Rect, state: &State, b: &GpusState, gpus: &[GpuSample]) {
    let t = &state.theme;
    let bar = |f: f64, w: usize| {
        let n = (f.clamp(0.0, 1.0) * w as f64).round() as usize;
        format!("{}{}", "█".repeat(n), "·".repeat(w - n))
    };
    let lines: Vec<Line> = gpus
        .iter()
        .map(|g| {
            let util = f64::from(g.util.unwrap_or(0)) / 100.0;
            Line::from(vec![
                Span::styled(
                    format!(
                        "{:>2} {:<16} ",
                        g.index,
                        fit(&g.name.replace("NVIDIA ", ""), 16)
                    ),
                    t.fg(Role::Text),
                ),
                Span::styled(bar(util, 12), t.fg(Role::Accent)),
                Span::styled(format!(" {:>4}  ", opt(g.util, "%")), t.fg(Role::Text)),
                Span::styled(bar(mem_frac(g), 12), t.fg(Role::Good)),
                Span::styled(
                    format!(
                        " {:>17}  {:>5}  {:>9}  {}",
                        match (g.mem_used, g.mem_total) {
                            (Some(u), Some(tot)) =>
                                format!("{}/{}", size(u).replace(" GiB", ""), size(tot)),
                            _ => "n/a".into(),
                        },
                        opt(g.temp, "°C"),
                        format!(
                            "{}/{}",
                            opt(g.power.map(|p| p.round() as i64), ""),
                            opt(g.power_limit.map(|p| p.round() as i64), "W")
                        ),
                        match b.jobs.get(&g.index) {
                            Some(j) if g.throttle.is_empty() => format!("job {j}"),
                            Some(j) => format!("{} · job {j}", g.throttle.join(", ")),
                            None => g.throttle.join(", "),
                        }
                    ),
                    t.fg(Role::Muted),
                ),
            ])
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(format!(" {} GPUs ", gpus.len()))
                .border_style(t.fg(Role::Border)),
        ),
        area,
    );
}

fn processes(frame: &mut Frame, area: Rect, state: &State, g: &GpusState) {
    let t = &state.theme;
    let list = g.rows();
    let gpu_procs = list.iter().filter(|r| r.gpu.is_some()).count();
    let visible = usize::from(area.height.saturating_sub(3)).max(1);
    let first = g.cursor.saturating_sub(visible - 1);
    let rows = list.iter().skip(first).take(visible).map(|row| {
        let info = g.procs.get(&row.pid);
        let owner = g.owner_of(row.pid);
        // No run of ours: the batch job or container, when the process says.
        let run = owner.map_or_else(
            || {
                info.and_then(|i| i.job.clone())
                    .unwrap_or_else(|| "-".to_string())
            },
            |(id, name)| format!("{name} ({})", &id[..8.min(id.len())]),
        );
        let (gpu, mem, sm) = match row.gpu {
            Some(p) => (
                p.gpu.to_string(),
                p.mem_used.map_or("n/a".into(), size),
                opt(p.sm_util, "%"),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        Row::new(vec![
            Cell::from(row.pid.to_string()).style(t.fg(Role::Text)),
            Cell::from(info.map_or("?".into(), |i| i.user.clone())).style(t.fg(Role::Muted)),
            Cell::from(gpu).style(t.fg(Role::Accent)),
            Cell::from(mem).style(t.fg(Role::Text)),
            Cell::from(sm).style(t.fg(Role::Text)),
            Cell::from(
                info.and_then(|i| i.cpu)
                    .map_or("-".into(), |c| format!("{c:.0}%")),
            )
            .style(t.fg(Role::Text)),
            Cell::from(info.map_or("-".into(), |i| size(i.rss))).style(t.fg(Role::Muted)),
            Cell::from(info.map_or("-".into(), |i| duration(i.elapsed_secs as i64 * 1000)))
                .style(t.fg(Role::Muted)),
            Cell::from(run).style(t.fg(if owner.is_some() {
                Role::Good
            } else {
                Role::Muted
            })),
            Cell::from(format!(
                "{}{}",
                row.prefix,
                info.map_or("", |i| i.command.as_str())
            ))
            .style(t.fg(Role::Muted)),
        ])
    });
    let sort = match g.sort {
        ProcSort::Memory => "GPU memory",
        ProcSort::Util => "SM",
        ProcSort::Pid => "pid",
        ProcSort::Gpu => "GPU",
    };
    let header = Row::new([
        "PID", "USER", "GPU", "GPU MEM", "SM", "CPU", "RSS", "ELAPSED", "RUN", "COMMAND",
    ])
    .style(t.fg(Role::Muted).add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(3),
        Constraint::Length(10),
        Constraint::Length(4),
        Constraint::Length(5),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(30),
        Constraint::Fill(1),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(t.selection())
        .block(
            Block::bordered()
                .title({
                    let all = g.snapshot.as_ref().map_or(0, |s| s.processes.len());
                    let count = if g.filter.is_empty() {
                        format!("{gpu_procs}")
                    } else {
                        format!("{gpu_procs} of {all}")
                    };
                    let tree = if g.tree { " · tree" } else { "" };
                    let filter = if g.filter.is_empty() {
                        String::new()
                    } else {
                        format!(" · filter: {}", g.filter)
                    };
                    format!(" Processes ({count}) · by {sort}{tree}{filter} ")
                })
                .border_style(t.fg(Role::Border)),
        );
    let mut ts = TableState::default().with_selected(Some(g.cursor.saturating_sub(first)));
    frame.render_stateful_widget(table, area, &mut ts);
}
