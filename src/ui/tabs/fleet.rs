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
use crate::fleet::Host;
use crate::format::{duration, fit, size};

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
            "HOST", "GPUS", "MODEL", "UTIL", "MEMORY", "POWER", "TEMP", "FREE", "WHO", "AGE",
            "NOTE",
        ]
    } else {
        vec!["HOST", "GPUS", "UTIL", "MEM", "TEMP", "FREE", "AGE", "NOTE"]
    };
    let body: Vec<TableRow> = rows
        .iter()
        .map(|r| {
            // This box, as a host made from its own snapshot.
            let local;
            let (h, age) = match r {
                Row::Local => {
                    local = state
                        .gpus
                        .snapshot
                        .as_ref()
                        .map(|snap| Host::local("this box", snap));
                    (local.as_ref(), "live".to_string())
                }
                Row::Host(h) => (Some(*h), h.age_ms(now).map_or("never".into(), duration)),
            };
            let s = h.map(|h| h.summary(&f.rule)).unwrap_or_default();
            let name = h.map_or("this box", |h| h.name.as_str()).to_string();
            let note = match (r, h) {
                (Row::Local, None) => match &state.gpu {
                    crate::app::GpuProbe::Absent(why) => format!("no GPUs here: {why}"),
                    _ => "looking for GPUs…".into(),
                },
                (_, h) => s.note(h.and_then(|h| h.error.as_deref())),
            };
            let age = if h.is_some() { age } else { String::new() };
            let util = s.util.map_or("n/a".into(), |u| format!("{u:.0}%"));
            let mem = s.mem.map_or("n/a".into(), |(u, tot)| {
                if wide {
                    format!("{}/{}", size(u), size(tot))
                } else {
                    format!("{:.0}%", u as f64 / tot as f64 * 100.0)
                }
            });
            let temp = s.temp.map_or("n/a".into(), |x| format!("{x}°C"));
            let note = crate::format::printable(&note).into_owned();
            let cells: Vec<Cell> = if wide {
                vec![
                    Cell::from(name.clone()),
                    Cell::from(s.gpus.to_string()),
                    Cell::from(fit(&s.model, 18)),
                    Cell::from(util),
                    Cell::from(mem),
                    Cell::from(s.power.map_or("n/a".into(), |p| format!("{p:.0} W"))),
                    Cell::from(temp),
                    Cell::from(s.free.to_string()),
                    Cell::from(fit(&s.who.join(","), 14)),
                    Cell::from(age.clone()),
                    Cell::from(note),
                ]
            } else {
                vec![
                    Cell::from(name),
                    Cell::from(s.gpus.to_string()),
                    Cell::from(util),
                    Cell::from(mem),
                    Cell::from(temp),
                    Cell::from(s.free.to_string()),
                    Cell::from(age),
                    Cell::from(note),
                ]
            };
            let style = if s.stale {
                t.fg(Role::Bad)
            } else if !s.trouble.is_empty() {
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
