//! The fleet's host table at the top of the GPUs tab: this box, then every host the fleet
//! sources read, a line each: GPUs and model, mean utilisation, memory, power, the hottest GPU,
//! free GPUs, jobs, how old its data is, and what is wrong (stale with why, throttling, errors).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row as TableRow, Table, TableState};

use crate::app::fleet::{FleetView, Row};
use crate::app::{Modal, State};
use crate::config::Role;
use crate::domain::GpuSample;
use crate::fleet::{FleetGpu, Host};
use crate::format::{duration, fit, size};

/// What a row shows of a host, or of this box.
struct Summary {
    name: String,
    gpus: usize,
    model: String,
    util: Option<f64>,
    mem: Option<(u64, u64)>,
    power: Option<f64>,
    temp: Option<u32>,
    free: usize,
    jobs: String,
    age: String,
    note: String,
    stale: bool,
    trouble: bool,
}

fn summarise(name: &str, gpus: &[&GpuSample], fleet: &[&FleetGpu], f: &FleetView) -> Summary {
    let util: Vec<f64> = gpus.iter().filter_map(|g| g.util.map(f64::from)).collect();
    let used: u64 = gpus.iter().filter_map(|g| g.mem_used).sum();
    let total: u64 = gpus.iter().filter_map(|g| g.mem_total).sum();
    let mut throttle: Vec<&str> = gpus
        .iter()
        .flat_map(|g| g.throttle.iter().map(String::as_str))
        .filter(|t| *t != "idle")
        .collect();
    throttle.sort_unstable();
    throttle.dedup();
    let ecc: u64 = gpus.iter().filter_map(|g| g.ecc_uncorrected).sum();
    let xid = fleet.iter().filter_map(|g| g.xid.filter(|&x| x > 0)).max();
    let mut note = Vec::new();
    if !throttle.is_empty() {
        note.push(format!("throttled: {}", throttle.join(", ")));
    }
    if ecc > 0 {
        note.push(format!("{ecc} ECC errors"));
    }
    if let Some(x) = xid {
        note.push(format!("XID {x}"));
    }
    let mut jobs: Vec<&str> = fleet.iter().filter_map(|g| g.job.as_deref()).collect();
    jobs.sort_unstable();
    jobs.dedup();
    Summary {
        name: name.to_string(),
        gpus: gpus.len(),
        model: gpus.first().map_or(String::new(), |g| {
            g.name.trim_start_matches("NVIDIA ").to_string()
        }),
        util: (!util.is_empty()).then(|| util.iter().sum::<f64>() / util.len() as f64),
        mem: (total > 0).then_some((used, total)),
        power: gpus
            .iter()
            .any(|g| g.power.is_some())
            .then(|| gpus.iter().filter_map(|g| g.power).sum()),
        temp: gpus.iter().filter_map(|g| g.temp).max(),
        free: fleet.iter().filter(|g| g.is_free(&f.rule)).count(),
        jobs: jobs.join(","),
        age: String::new(),
        trouble: !note.is_empty(),
        note: note.join("; "),
        stale: false,
    }
}

fn host_summary(h: &Host, f: &FleetView, now: i64) -> Summary {
    let samples: Vec<&GpuSample> = h.gpus.iter().map(|g| &g.sample).collect();
    let fleet: Vec<&FleetGpu> = h.gpus.iter().collect();
    let mut s = summarise(&h.name, &samples, &fleet, f);
    s.age = h.age_ms(now).map_or("never".into(), duration);
    if let Some(e) = &h.error {
        s.stale = true;
        s.free = 0;
        s.note = if s.note.is_empty() {
            format!("stale: {e}")
        } else {
            format!("stale: {e}; {}", s.note)
        };
    }
    s
}

fn local_summary(state: &State, f: &FleetView) -> Summary {
    match &state.gpus.snapshot {
        Some(snap) => {
            let samples: Vec<&GpuSample> = snap.gpus.iter().collect();
            // This box knows its processes: a GPU with one is in use.
            let as_fleet: Vec<FleetGpu> = snap
                .gpus
                .iter()
                .map(|g| FleetGpu {
                    sample: g.clone(),
                    processes: Some(
                        snap.processes.iter().filter(|p| p.gpu == g.index).count() as u32
                    ),
                    ..FleetGpu::default()
                })
                .collect();
            let refs: Vec<&FleetGpu> = as_fleet.iter().collect();
            let mut s = summarise("this box", &samples, &refs, f);
            s.age = "live".into();
            s
        }
        None => Summary {
            name: "this box".into(),
            gpus: 0,
            model: String::new(),
            util: None,
            mem: None,
            power: None,
            temp: None,
            free: 0,
            jobs: String::new(),
            age: String::new(),
            note: match &state.gpu {
                crate::app::GpuProbe::Absent(why) => format!("no GPUs here: {why}"),
                _ => "looking for GPUs…".into(),
            },
            stale: false,
            trouble: false,
        },
    }
}

pub fn render(frame: &mut Frame, area: Rect, state: &State, f: &FleetView) {
    let t = &state.theme;
    let now = state.now_ms.max(f.read_ms.unwrap_or(0));
    let rows = f.rows(now);
    let [head, table] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let hosts = f.hosts.len();
    let stale = f.hosts.iter().filter(|h| h.error.is_some()).count();
    let free: usize = f
        .hosts
        .iter()
        .filter(|h| h.error.is_none())
        .map(|h| h.gpus.iter().filter(|g| g.is_free(&f.rule)).count())
        .sum();
    let gpus: usize = f.hosts.iter().map(|h| h.gpus.len()).sum();
    let read = match f.read_ms {
        None => "reading…".to_string(),
        Some(_) => format!(
            "{hosts} hosts · {gpus} GPUs · {free} free{}",
            if stale > 0 {
                format!(" · {stale} stale")
            } else {
                String::new()
            }
        ),
    };
    let filter = if f.filter.is_empty() {
        String::new()
    } else {
        format!(" · filter: {}", f.filter)
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(format!(" fleet: {read}"), t.fg(Role::Text)),
            Span::styled(
                format!(" · {} · sorted by {}{filter}", f.sources, f.sort.label()),
                t.fg(Role::Muted),
            ),
        ])),
        head,
    );
    let wide = area.width >= 120;
    let header = if wide {
        vec![
            "HOST", "GPUS", "MODEL", "UTIL", "MEMORY", "POWER", "TEMP", "FREE", "JOBS", "AGE",
            "NOTE",
        ]
    } else {
        vec!["HOST", "GPUS", "UTIL", "MEM", "TEMP", "FREE", "AGE", "NOTE"]
    };
    let body: Vec<TableRow> = rows
        .iter()
        .map(|r| {
            let s = match r {
                Row::Local => local_summary(state, f),
                Row::Host(h) => host_summary(h, f, now),
            };
            let util = s.util.map_or("n/a".into(), |u| format!("{u:.0}%"));
            let mem = s.mem.map_or("n/a".into(), |(u, tot)| {
                if wide {
                    format!("{}/{}", size(u), size(tot))
                } else {
                    format!("{:.0}%", u as f64 / tot as f64 * 100.0)
                }
            });
            let temp = s.temp.map_or("n/a".into(), |x| format!("{x}°C"));
            let note = crate::format::printable(&s.note).into_owned();
            let cells: Vec<Cell> = if wide {
                vec![
                    Cell::from(s.name.clone()),
                    Cell::from(s.gpus.to_string()),
                    Cell::from(fit(&s.model, 18)),
                    Cell::from(util),
                    Cell::from(mem),
                    Cell::from(s.power.map_or("n/a".into(), |p| format!("{p:.0} W"))),
                    Cell::from(temp),
                    Cell::from(s.free.to_string()),
                    Cell::from(fit(&s.jobs, 14)),
                    Cell::from(s.age.clone()),
                    Cell::from(note),
                ]
            } else {
                vec![
                    Cell::from(s.name.clone()),
                    Cell::from(s.gpus.to_string()),
                    Cell::from(util),
                    Cell::from(mem),
                    Cell::from(temp),
                    Cell::from(s.free.to_string()),
                    Cell::from(s.age.clone()),
                    Cell::from(note),
                ]
            };
            let style = if s.stale {
                t.fg(Role::Bad)
            } else if s.trouble {
                t.fg(Role::Warn)
            } else {
                t.fg(Role::Text)
            };
            TableRow::new(cells).style(style)
        })
        .collect();
    let widths: Vec<Constraint> = if wide {
        vec![
            Constraint::Length(16),
            Constraint::Length(4),
            Constraint::Length(18),
            Constraint::Length(5),
            Constraint::Length(20),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(4),
            Constraint::Length(14),
            Constraint::Length(6),
            Constraint::Fill(1),
        ]
    } else {
        vec![
            Constraint::Length(14),
            Constraint::Length(4),
            Constraint::Length(5),
            Constraint::Length(4),
            Constraint::Length(5),
            Constraint::Length(4),
            Constraint::Length(6),
            Constraint::Fill(1),
        ]
    };
    let mut ts = TableState::default().with_selected(Some(f.cursor));
    frame.render_stateful_widget(
        Table::new(body, widths)
            .header(TableRow::new(header).style(t.fg(Role::Muted).add_modifier(Modifier::BOLD)))
            .row_highlight_style(t.selection())
            .block(
                Block::bordered()
                    .title(" Hosts (enter: open · s: sort · /: filter) ")
                    .border_style(t.fg(Role::Border)),
            ),
        table,
        &mut ts,
    );
    if matches!(state.modal, Some(Modal::FleetFilter { .. })) {
        super::runs::prompt(
            frame,
            area,
            state,
            "filter hosts: name, model, job, error, or free, stale, throttled",
            &f.filter,
        );
    }
}
