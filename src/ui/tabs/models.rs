use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use crate::app::models::{Badge, ModelsFocus};
use crate::app::{Modal, State};
use crate::config::Role;
use crate::format::manifest_diff;
use crate::format::size;
use crate::format::{compact, fit};

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let t = &state.theme;
    let m = &state.models;
    if let Some(e) = &m.error {
        super::empty(
            frame,
            area,
            state,
            "Models",
            &format!("Cannot read the registry: {e}"),
            &[],
        );
        return;
    }
    if m.models.is_empty() {
        let headline = if m.loaded {
            "No model versions in this workspace yet."
        } else {
            "Loading models…"
        };
        super::empty(
            frame,
            area,
            state,
            "Models",
            headline,
            &[
                "Register one with: gantry model add NAME PATH... [--run RUN]",
                "or press M on a run in the Runs tab to register the files it saved.",
            ],
        );
        return;
    }
    // Under 110 columns a layout of its own: fewer columns, each as wide as its words, dates as
    // ages; aliases beside their versions only.
    let narrow = area.width < 110;
    let [left, right] = Layout::horizontal([
        Constraint::Length(40.min(area.width / 3)),
        Constraint::Fill(1),
    ])
    .areas(area);
    // The models.
    let rows = m.models.iter().map(|s| {
        let aliases: Vec<String> = s.aliases.iter().map(|(a, v)| format!("{a}→v{v}")).collect();
        let mut cells = vec![
            Cell::from(s.name.clone()).style(t.fg(Role::Text)),
            Cell::from(format!("v{}", s.latest)).style(t.fg(Role::Accent)),
        ];
        if !narrow {
            cells.push(Cell::from(aliases.join(" ")).style(t.fg(Role::Good)));
        }
        Row::new(cells)
    });
    let focus_models = m.focus == ModelsFocus::Models;
    let border = |on: bool| {
        if on {
            t.fg(Role::Accent)
        } else {
            t.fg(Role::Border)
        }
    };
    let model_widths: &[Constraint] = if narrow {
        &[Constraint::Fill(1), Constraint::Length(4)]
    } else {
        &[
            Constraint::Fill(1),
            Constraint::Length(4),
            Constraint::Fill(1),
        ]
    };
    let table = Table::new(rows, model_widths.to_vec())
        .row_highlight_style(t.selection())
        .block(
            Block::bordered()
                .title(format!(" Models ({}) ", m.models.len()))
                .border_style(border(focus_models)),
        );
    let mut ts = TableState::default().with_selected(Some(m.cursor));
    frame.render_stateful_widget(table, left, &mut ts);

    // The selected model's versions, newest first, and below: a version's files or a diff.
    let name = m.selected().map_or("", |s| s.name.as_str());
    let aliases = m.selected().map(|s| s.aliases.clone()).unwrap_or_default();
    let lower = if m.diff_pair().is_some() {
        right.height / 2
    } else {
        (right.height / 3).max(6)
    };
    let [top, bottom] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(lower)]).areas(right);
    let alias_text = |v: u32| -> String {
        aliases
            .iter()
            .filter(|(_, n)| **n == v)
            .map(|(a, _)| a.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    if narrow {
        narrow_versions(frame, top, state, name, &alias_text);
    } else {
        // Where each version is, with a remote only.
        let remote = m.sync.is_some();
        let mut head = vec![
            "", "Version", "Created", "Run", "Metrics", "Size", "Aliases", "Check",
        ];
        if remote {
            head.insert(7, "Where");
        }
        let header = Row::new(head).style(t.fg(Role::Muted).add_modifier(Modifier::BOLD));
        let rows = m.versions.iter().map(|v| {
            let marked = if m.marked.contains(&v.version) {
                "●"
            } else {
                " "
            };
            let al: Vec<&str> = aliases
                .iter()
                .filter(|(_, n)| **n == v.version)
                .map(|(a, _)| a.as_str())
                .collect();
            // Validation metrics first: they are what a version is chosen by.
            let metrics = v
                .run
                .as_ref()
                .map(|r| {
                    let mut m: Vec<(&String, &f64)> = r
                        .metrics
                        .iter()
                        .filter(|(k, _)| !k.starts_with("gantry/"))
                        .collect();
                    m.sort_by_key(|(k, _)| (!k.contains("val"), (*k).clone()));
                    m.iter()
                        .take(2)
                        .map(|(k, x)| format!("{k}={}", compact(**x)))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let (badge, role) = match m.badges.get(&(v.name.clone(), v.version)) {
                Some(Badge::Ok) => ("✓ ok".to_string(), Role::Good),
                Some(Badge::Damaged(n)) => (format!("✗ {n} bad"), Role::Bad),
                None => ("·".to_string(), Role::Muted),
            };
            let mut cells = vec![
                Cell::from(marked).style(t.fg(Role::Accent)),
                Cell::from(format!("v{}", v.version)).style(t.fg(Role::Accent)),
                Cell::from(v.created.get(..10).unwrap_or(&v.created).to_string())
                    .style(t.fg(Role::Muted)),
                Cell::from(
                    v.run
                        .as_ref()
                        .map(|r| r.name.clone())
                        .unwrap_or_else(|| "-".into()),
                )
                .style(t.fg(Role::Text)),
                Cell::from(metrics).style(t.fg(Role::Text)),
                Cell::from(size(v.total_bytes())).style(t.fg(Role::Muted)),
                Cell::from(al.join(" ")).style(t.fg(Role::Good)),
                Cell::from(badge).style(t.fg(role)),
            ];
            if remote {
                cells.insert(7, where_cell(state, v.version));
            }
            Row::new(cells)
        });
        let mut widths = vec![
            Constraint::Length(1),
            Constraint::Length(7),
            Constraint::Length(10),
            Constraint::Fill(1),
            Constraint::Fill(2),
            Constraint::Length(9),
            Constraint::Length(12),
            Constraint::Length(7),
        ];
        if remote {
            widths.insert(7, Constraint::Length(6));
        }
        let table = versions_table(state, name, Table::new(rows, widths).header(header));
        let mut ts = TableState::default().with_selected(Some(m.version_cursor));
        frame.render_stateful_widget(table, top, &mut ts);
    }

    let (title, lines): (String, Vec<Line>) = match (m.diff_pair(), m.version()) {
        _ if m.show_evals => eval_lines(state, name, usize::from(bottom.width.saturating_sub(2))),
        (Some((a, b)), _) => (
            format!(" Diff v{} → v{} ", a.version, b.version),
            manifest_diff(a, b)
                .lines()
                .skip(1)
                .map(|l| diff_line(state, l))
                .collect(),
        ),
        (None, Some(v)) => {
            let created = if narrow {
                v.created.get(..10).unwrap_or(&v.created)
            } else {
                &v.created
            };
            let mut lines = vec![Line::styled(
                format!("{created} by {}", v.author),
                t.fg(Role::Muted),
            )];
            if let Some(f) = v.framework.as_deref().filter(|f| !f.is_empty()) {
                if narrow {
                    lines.push(Line::styled(f.to_string(), t.fg(Role::Muted)));
                } else if let Some(first) = lines.first_mut() {
                    first.push_span(Span::styled(format!("  {f}"), t.fg(Role::Muted)));
                }
            }
            if !v.notes.is_empty() {
                lines.push(Line::styled(v.notes.clone(), t.fg(Role::Text)));
            }
            lines.extend(made_lines(state, v));
            // Narrow: size and path, the path cut with `…` to the pane; the hash where it fits.
            let room = usize::from(bottom.width.saturating_sub(2)).saturating_sub(12);
            for f in &v.files {
                let mut spans = vec![
                    Span::styled(format!("{:>10}  ", size(f.size)), t.fg(Role::Muted)),
                    Span::styled(fit(&f.path, room.min(60)), t.fg(Role::Text)),
                ];
                if !narrow || f.path.chars().count() + 14 <= room {
                    spans.push(Span::styled(
                        format!("  {}", &f.blake3[..12.min(f.blake3.len())]),
                        t.fg(Role::Muted),
                    ));
                }
                lines.push(Line::from(spans));
            }
            (format!(" {}@v{} ", v.name, v.version), lines)
        }
        _ => (" ".into(), Vec::new()),
    };
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(title)
                .border_style(t.fg(Role::Border)),
        ),
        bottom,
    );

    if let Some(Modal::Promote {
        model,
        version,
        text,
    }) = &state.modal
    {
        super::runs::prompt(
            frame,
            area,
            state,
            &format!("promote {model}@v{version}: alias and reason"),
            text,
        );
    }
}

/// What the version cost to make (its run, and along its `from` lineage) and the GPUs it was
/// trained on.
fn made_lines(state: &State, v: &crate::domain::Manifest) -> Vec<Line<'static>> {
    use crate::format::efficiency::{hardware_line, totals};
    let t = &state.theme;
    let mut lines = Vec::new();
    let label = |s: &str| Span::styled(format!("{s:<10}"), t.fg(Role::Muted));
    if let Some(f) = &v.from {
        lines.push(Line::from(vec![
            label("from"),
            Span::styled(f.clone(), t.fg(Role::Accent)),
        ]));
    }
    if let Some(l) = state.models.lineage.get(&(v.name.clone(), v.version)) {
        let own = totals(&l.own);
        if !own.is_empty() {
            lines.push(Line::from(vec![
                label("made with"),
                Span::styled(own.join(" · "), t.fg(Role::Text)),
            ]));
        }
        if l.versions.len() > 1 {
            let all = totals(&l.total);
            if !all.is_empty() {
                lines.push(Line::from(vec![
                    label("lineage"),
                    Span::styled(
                        format!(
                            "{} over {} runs ({})",
                            all.join(" · "),
                            l.runs,
                            l.versions.join(" ← ")
                        ),
                        t.fg(Role::Text),
                    ),
                ]));
            }
        }
    }
    if let Some(h) = v.run.as_ref().and_then(|r| r.hardware.as_ref())
        && let Some(line) = hardware_line(h, state.now_ms)
    {
        lines.push(Line::from(vec![
            label("trained"),
            Span::styled(line, t.fg(Role::Text)),
        ]));
    }
    lines
}

/// The model's latest evaluation: a row per metric, a column per version with its median and
/// its delta to the first (the baseline), green or red by the metric's direction; the verdicts
/// on top. As many version columns as fit.
fn eval_lines(state: &State, name: &str, width: usize) -> (String, Vec<Line<'static>>) {
    let t = &state.theme;
    let Some(e) = crate::app::latest_eval(&state.runs.records, name) else {
        return (
            " Evaluations ".into(),
            vec![Line::styled(
                format!(
                    "no evaluation of {name} yet: gantry model eval {name}@v1 {name}@v2 -- CMD {{model}}"
                ),
                t.fg(Role::Muted),
            )],
        );
    };
    let metrics: std::collections::BTreeSet<&String> =
        e.versions.iter().flat_map(|v| v.metrics.keys()).collect();
    let key_w = metrics
        .iter()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 24);
    let col = 20usize;
    let fit_n = (width.saturating_sub(key_w) / (col + 1)).max(1);
    let shown = &e.versions[..e.versions.len().min(fit_n)];
    let mut head = vec![Span::styled(
        format!("{:<key_w$}", "metric"),
        t.fg(Role::Muted).add_modifier(Modifier::BOLD),
    )];
    for v in shown {
        let role = match v.verdict.as_str() {
            "fail" => Role::Bad,
            "pass" => Role::Good,
            _ => Role::Muted,
        };
        head.push(Span::styled(
            format!(" {:>col$}", format!("v{} {}", v.version, v.verdict)),
            t.fg(role).add_modifier(Modifier::BOLD),
        ));
    }
    let mut lines = vec![Line::from(head)];
    for k in metrics {
        let dir = state.runs.direction(k);
        let base = shown.first().and_then(|v| v.metrics.get(k)).copied();
        let mut spans = vec![Span::styled(
            fit(&format!("{k:<key_w$}"), key_w),
            t.fg(Role::Text),
        )];
        for (i, v) in shown.iter().enumerate() {
            let Some(x) = v.metrics.get(k).copied() else {
                spans.push(Span::styled(format!(" {:>col$}", "-"), t.fg(Role::Muted)));
                continue;
            };
            let mut cell = compact(x);
            let mut role = Role::Text;
            if let (true, Some(b)) = (i > 0, base)
                && x != b
            {
                let d = x - b;
                cell += &format!(" ({}{})", if d > 0.0 { "+" } else { "" }, compact(d));
                role = if dir.better(x, b) {
                    Role::Good
                } else {
                    Role::Bad
                };
            }
            spans.push(Span::styled(format!(" {cell:>col$}"), t.fg(role)));
        }
        lines.push(Line::from(spans));
    }
    let more = e.versions.len() - shown.len();
    if more > 0 {
        lines.push(Line::styled(
            format!("{more} more versions: widen the terminal"),
            t.fg(Role::Muted),
        ));
    }
    (
        format!(" Evaluation {} of {name} · enter compares its runs ", e.id),
        lines,
    )
}

/// The versions in a narrow pane: version, age, aliases, size where there is room, check; each
/// column as wide as its longest entry, so no word is cut.
fn narrow_versions(
    frame: &mut Frame,
    area: Rect,
    state: &State,
    name: &str,
    alias_text: &dyn Fn(u32) -> String,
) {
    let t = &state.theme;
    let m = &state.models;
    let rows: Vec<[String; 7]> = m
        .versions
        .iter()
        .map(|v| {
            let badge = match m.badges.get(&(v.name.clone(), v.version)) {
                Some(Badge::Ok) => "✓ ok".to_string(),
                Some(Badge::Damaged(n)) => format!("✗ {n} bad"),
                None => "·".to_string(),
            };
            let age = chrono::DateTime::parse_from_rfc3339(&v.created).map_or_else(
                |_| v.created.get(..10).unwrap_or(&v.created).to_string(),
                |d| short_age(d.timestamp_millis(), state.now_ms),
            );
            [
                if m.marked.contains(&v.version) {
                    "●".to_string()
                } else {
                    " ".to_string()
                },
                format!("v{}", v.version),
                age,
                alias_text(v.version),
                size(v.total_bytes()),
                badge,
                match m.sync.as_ref().and_then(|s| s.versions.get(&v.version)) {
                    Some(crate::domain::model::Where::Both) => "both".into(),
                    Some(crate::domain::model::Where::Local) => "local".into(),
                    Some(crate::domain::model::Where::Remote) => "remote".into(),
                    None => String::new(),
                },
            ]
        })
        .collect();
    let head = ["", "Version", "Age", "Aliases", "Size", "Check", "Where"];
    let w = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain(std::iter::once(head[i].chars().count()))
            .max()
            .unwrap_or(0) as u16
    };
    let mut cols: Vec<usize> = vec![0, 1, 2, 3, 5];
    if m.sync.is_some() {
        cols.insert(4, 6);
    }
    // Size where it fits beside the rest.
    let used: u16 = cols.iter().map(|&i| w(i) + 1).sum::<u16>() + 2;
    if used + w(4) < area.width {
        cols.insert(4, 4);
    }
    let roles = [
        Role::Accent,
        Role::Accent,
        Role::Muted,
        Role::Good,
        Role::Muted,
        Role::Text,
        Role::Muted,
    ];
    let header = Row::new(cols.iter().map(|&i| head[i]))
        .style(t.fg(Role::Muted).add_modifier(Modifier::BOLD));
    let table_rows = rows.iter().map(|r| {
        Row::new(cols.iter().map(|&i| {
            let role = if i == 5 && r[5].starts_with('✗') {
                Role::Bad
            } else if i == 5 && r[5].starts_with('✓') {
                Role::Good
            } else {
                roles[i]
            };
            Cell::from(r[i].clone()).style(t.fg(role))
        }))
    });
    let widths: Vec<Constraint> = cols.iter().map(|&i| Constraint::Length(w(i))).collect();
    let table = versions_table(state, name, Table::new(table_rows, widths).header(header));
    let mut ts = TableState::default().with_selected(Some(m.version_cursor));
    frame.render_stateful_widget(table, area, &mut ts);
}

/// The versions' table in its frame: the model, how it stands against the remote, a transfer
/// under way; highlighted where the versions have the focus.
fn versions_table<'a>(state: &State, name: &str, table: Table<'a>) -> Table<'a> {
    let t = &state.theme;
    let focus_models = state.models.focus == ModelsFocus::Models;
    table
        .row_highlight_style(if focus_models {
            ratatui::style::Style::new()
        } else {
            t.selection()
        })
        .block(
            Block::bordered()
                .title(format!(" {name}{} ", sync_text(state)))
                .title_bottom(transfer_line(state))
                .border_style(if focus_models {
                    t.fg(Role::Border)
                } else {
                    t.fg(Role::Accent)
                }),
        )
}

/// Where a version's files are, against the remote as of the last fetch.
fn where_cell(state: &State, version: u32) -> Cell<'static> {
    use crate::domain::model::Where;
    let t = &state.theme;
    match state
        .models
        .sync
        .as_ref()
        .and_then(|s| s.versions.get(&version))
    {
        Some(Where::Both) => Cell::from("both").style(t.fg(Role::Good)),
        Some(Where::Local) => Cell::from("local").style(t.fg(Role::Warn)),
        Some(Where::Remote) => Cell::from("remote").style(t.fg(Role::Muted)),
        None => Cell::from(""),
    }
}

/// " · origin: 2 ahead, 1 behind", as of the last fetch; nothing without a remote.
fn sync_text(state: &State) -> String {
    let Some(s) = &state.models.sync else {
        return String::new();
    };
    if !s.fetched {
        return format!(" · {}: never fetched", s.remote);
    }
    match (s.ahead, s.behind) {
        (0, 0) => format!(" · {}: in sync", s.remote),
        (a, 0) => format!(" · {}: {a} ahead", s.remote),
        (0, b) => format!(" · {}: {b} behind", s.remote),
        (a, b) => format!(" · {}: {a} ahead, {b} behind", s.remote),
    }
}

/// A push or pull under way, as a bar on the versions' lower edge.
fn transfer_line(state: &State) -> Line<'static> {
    let Some((what, done, total)) = &state.models.transfer else {
        return Line::from("");
    };
    let frac = if *total == 0 {
        1.0
    } else {
        *done as f64 / *total as f64
    };
    let n = (frac.clamp(0.0, 1.0) * 20.0).round() as usize;
    Line::styled(
        format!(
            " {what} {}/{} {}{} ",
            size(*done),
            size(*total),
            "█".repeat(n),
            "·".repeat(20 - n)
        ),
        state.theme.fg(Role::Accent),
    )
}

/// An age in a few characters: `now`, `12m`, `5h`, `3d`.
fn short_age(then_ms: i64, now_ms: i64) -> String {
    let s = (now_ms - then_ms).max(0) / 1000;
    match s {
        0..60 => "now".into(),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

fn diff_line<'a>(state: &State, l: &str) -> Line<'a> {
    let t = &state.theme;
    let role = if l.contains("(better)") || l.starts_with("  +") {
        Role::Good
    } else if l.contains("(worse)") || l.starts_with("  -") {
        Role::Bad
    } else if l.starts_with("  ~") {
        Role::Warn
    } else if !l.starts_with(' ') {
        Role::Muted
    } else {
        Role::Text
    };
    Line::styled(l.to_string(), t.fg(role))
}
