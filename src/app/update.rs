use std::path::PathBuf;
use std::sync::Arc;

use crate::domain::Series;

use super::action::Action;
use super::effect::{Effect, Outcome};
use super::msg::Msg;
use super::runs::{Focus, View, XMode};
use super::state::{Modal, State, Tab};

/// Apply one message. No I/O, no waiting.
pub fn update(state: &mut State, msg: Msg) -> Outcome {
    let mut out = step(state, msg);
    // Whatever changed, ask for the data the screen now needs.
    if state.runs.loaded
        && let Some(held) = state.runs.wanted_load()
    {
        out.effects.push(Effect::LoadRuns(held));
    }
    let whole = state.runs.wanted_whole();
    if !whole.is_empty() {
        out.effects.push(Effect::LoadRecords(whole));
    }
    if let Some(ids) = state.runs.wanted_conditions() {
        out.effects.push(Effect::LoadConditions(ids));
    }
    if matches!(state.modal, Some(super::state::Modal::Columns { .. })) && state.runs.wanted_keys()
    {
        out.effects.push(Effect::LoadKeys);
    }
    if state.runs.loaded && state.runs.wanted_counts(state.now_ms) {
        out.effects.push(Effect::LoadMetricCounts);
    }
    state.runs.table_rows = state.page_rows();
    for id in state.runs.wanted_series() {
        state.runs.pending.insert(id.clone());
        out.effects.push(Effect::LoadSeries(id));
    }
    if state.tab == Tab::Models {
        let m = &mut state.models;
        if !m.loaded && !m.pending_models {
            m.pending_models = true;
            out.effects.push(Effect::LoadModels);
        }
        if let Some(name) = m.selected().map(|x| x.name.clone())
            && name != m.versions_of
            && m.pending_versions.as_deref() != Some(name.as_str())
        {
            m.pending_versions = Some(name.clone());
            out.effects.push(Effect::LoadVersions(name));
        }
        if let Some(name) = m.selected().map(|x| x.name.clone())
            && name != m.sync_of
            && m.pending_sync.as_deref() != Some(name.as_str())
        {
            m.pending_sync = Some(name.clone());
            out.effects.push(Effect::LoadSync(name));
        }
    }
    if matches!(state.tab, Tab::Bench | Tab::Gpus)
        && !state.bench.history_loaded
        && !state.bench.pending
    {
        // The GPUs tab names each GPU's newest benchmark too.
        state.bench.pending = true;
        out.effects.push(Effect::LoadBenchHistory);
    }
    if state.tab == Tab::Bench && state.bench.cuda == super::bench::Cuda::Unknown {
        // Probed once, the first time the tab is shown.
        state.bench.cuda = super::bench::Cuda::Probing;
        out.effects.push(Effect::ProbeCuda {
            gpu: state.bench.gpu,
        });
    }
    if state.runs.view == View::Detail
        && let Some(d) = &state.runs.detail
        && state.runs.log.run != *d
    {
        state.runs.log = super::runs::LogView {
            run: d.clone(),
            ..Default::default()
        };
        out.effects.push(Effect::LoadLog(d.clone()));
    }
    out
}

fn step(state: &mut State, msg: Msg) -> Outcome {
    match msg {
        Msg::Key(key) => {
            let had = !state.notices.is_empty() || state.toast.is_some();
            state.notices.clear();
            state.toast = None;
            if state.modal.is_some() {
                return super::modal::modal_key(state, key);
            }
            let sections = state.sections();
            match state.keymap.action_in(key, &sections) {
                Some(action) => {
                    let mut o = apply(state, action);
                    o.redraw |= had;
                    o
                }
                None => Outcome {
                    redraw: had,
                    effects: Vec::new(),
                },
            }
        }
        Msg::Click(col, row) => {
            if row == 0
                && let Some(tab) = Tab::at_column(col)
            {
                return apply(state, Action::Tab(tab));
            }
            Outcome::none()
        }
        Msg::Scroll(d) => {
            let in_chart = state.tab == Tab::Runs
                && state.runs.view != View::Table
                && state.runs.focus == Focus::Charts;
            match (in_chart, d < 0) {
                (true, true) => apply(state, Action::ZoomIn),
                (true, false) => apply(state, Action::ZoomOut),
                (false, true) => apply(state, Action::Up),
                (false, false) => apply(state, Action::Down),
            }
        }
        Msg::ScrollX(d) => {
            if state.tab == Tab::Runs && state.runs.view != View::Table {
                return apply(
                    state,
                    if d < 0 {
                        Action::PanLeft
                    } else {
                        Action::PanRight
                    },
                );
            }
            Outcome::none()
        }
        Msg::Resize(w, h) => {
            state.size = (w, h);
            Outcome::redraw()
        }
        Msg::Tick { now_ms, clock } => {
            state.now_ms = now_ms;
            let live = state.runs.any_running();
            if live {
                state.spinner = state.spinner.wrapping_add(1);
            }
            let changed = clock != state.clock || live;
            state.clock = clock;
            Outcome {
                redraw: changed,
                effects: Vec::new(),
            }
        }
        Msg::RunsLoaded(Ok(rows)) => {
            alert_toast(state, &rows);
            state.runs.held = super::runs::Held::whole();
            state.runs.set_records(rows);
            Outcome::redraw()
        }
        Msg::RunsLoaded(Err(e)) => {
            state.runs.loaded = true;
            state.runs.error = Some(e);
            Outcome::redraw()
        }
        Msg::RunsListed(Ok((rows, held))) => {
            alert_toast(state, &rows);
            state.runs.set_listed(rows, held);
            // The first listing asks for the metric counts (the default columns).
            if state.runs.counts_at.is_none() {
                state.runs.counts_stale = true;
            }
            Outcome::redraw()
        }
        Msg::RunsListed(Err(e)) => {
            state.runs.load_failed(e);
            Outcome::redraw()
        }
        Msg::RecordsLoaded(recs) => {
            state.runs.set_whole(recs);
            super::marks::settle_jump(&mut state.runs);
            Outcome::redraw()
        }
        Msg::ConditionsLoaded(ids, c) => {
            state.runs.set_conditions(ids, c);
            Outcome::redraw()
        }
        Msg::MetricCounts(counts) => {
            state.runs.set_metric_counts(counts);
            Outcome::redraw()
        }
        Msg::KeysLoaded(metrics, params) => {
            state.runs.set_keys(metrics, params);
            Outcome::redraw()
        }
        Msg::SeriesLoaded(id, res) => {
            state.runs.pending.remove(&id);
            match res {
                Ok(s) => {
                    state.runs.series.insert(id, s);
                }
                // A series that is not there (yet) draws as empty; it is asked for again on change.
                Err(_) => {
                    state.runs.series.insert(id, Arc::new(Series::default()));
                }
            }
            super::marks::settle_jump(&mut state.runs);
            Outcome::redraw()
        }
        Msg::LogLoaded { run, lines } => {
            if state.runs.log.run == run {
                state.runs.log.lines = lines;
                return Outcome::redraw();
            }
            Outcome::none()
        }
        Msg::StoreChanged => {
            state.runs.drop_live_series();
            state.runs.counts_stale = true;
            let mut effects = vec![Effect::LoadRuns(state.runs.load())];
            let whole = state.runs.reload_whole();
            if !whole.is_empty() {
                effects.push(Effect::LoadRecords(whole));
            }
            // The open run's output may have grown in the store (a team store's run of another
            // host has no file here to watch).
            if state.runs.view == View::Detail
                && let Some(run) = &state.runs.detail
            {
                effects.push(Effect::LoadLog(run.clone()));
            }
            if state.models.loaded {
                // `gantry model add` writes the store too: the registry may have changed.
                effects.push(Effect::LoadModels);
                if !state.models.versions_of.is_empty() {
                    effects.push(Effect::LoadVersions(state.models.versions_of.clone()));
                }
            }
            Outcome {
                redraw: false,
                effects,
            }
        }
        Msg::LogChanged(run) => {
            if state.runs.view == View::Detail && state.runs.detail.as_deref() == Some(run.as_str())
            {
                return Outcome {
                    redraw: false,
                    effects: vec![Effect::LoadLog(run)],
                };
            }
            Outcome::none()
        }
        Msg::Notice(text) => {
            state.toast = Some(text);
            Outcome::redraw()
        }
        Msg::BenchGpus(_)
        | Msg::BenchProbed(_)
        | Msg::BenchEvent(_)
        | Msg::BenchWindow(_)
        | Msg::BenchBurned(_)
        | Msg::BenchDone(_)
        | Msg::BenchHistory(_) => super::bench::on_msg(state, msg),
        Msg::ModelsLoaded(_)
        | Msg::VersionsLoaded(..)
        | Msg::LineageLoaded(..)
        | Msg::Verified(..)
        | Msg::SyncLoaded(..)
        | Msg::Transfer(..)
        | Msg::Transferred(_) => super::models::on_msg(state, msg),
        Msg::GpuSample(_) | Msg::GpuProbed(_) => super::gpus::on_msg(state, msg),
        Msg::Fleet(hosts) => super::fleet::on_msg(state, hosts),
        Msg::FleetHistory(host, res) => super::fleet::on_history(state, &host, res),
        Msg::Terminate(_) => {
            state.quit = true;
            Outcome::none()
        }
    }
}

/// What an action can change on screen; equal before and after means no redraw.
#[derive(PartialEq)]
struct Shown {
    tab: Tab,
    help: bool,
    modal: bool,
    toast: Option<String>,
    cursor: usize,
    view: View,
    focus: Focus,
    detail: Option<String>,
    marked: Vec<String>,
    pinned: Option<String>,
    sort: (super::runs::SortCol, bool),
    chart: super::runs::ChartOpts,
    diff_only: bool,
    log: (usize, Option<String>),
    models: (usize, usize, super::models::ModelsFocus, Vec<u32>),
    gpus: (
        super::gpus::GpuMetric,
        super::gpus::ProcSort,
        usize,
        String,
        bool,
    ),
    /// The Bench tab's checklist: cursor, benchmarks, precisions, size, backend, GPU, load.
    bench: (
        usize,
        Vec<crate::domain::bench::Kind>,
        Vec<crate::domain::bench::Precision>,
        usize,
        bool,
        usize,
        usize,
    ),
}

fn shown(s: &State) -> Shown {
    let r = &s.runs;
    Shown {
        tab: s.tab,
        help: s.help,
        modal: s.modal.is_some(),
        toast: s.toast.clone(),
        cursor: r.cursor,
        view: r.view,
        focus: r.focus,
        detail: r.detail.clone(),
        marked: r.marked.clone(),
        pinned: r.pinned.clone(),
        sort: (r.sort.clone(), r.sort_desc),
        chart: r.chart.clone(),
        diff_only: r.diff_only,
        log: (r.log.scroll, r.log.search.clone()),
        models: (
            s.models.cursor,
            s.models.version_cursor,
            s.models.focus,
            s.models.marked.clone(),
        ),
        gpus: (
            s.gpus.metric,
            s.gpus.sort,
            s.gpus.cursor,
            s.gpus.filter.clone(),
            s.gpus.tree,
        ),
        bench: (
            s.bench.cursor,
            s.bench.kinds.clone(),
            s.bench.precisions.clone(),
            s.bench.size,
            s.bench.cpu,
            s.bench.gpu,
            s.bench.burn,
        ),
    }
}

fn apply(state: &mut State, action: Action) -> Outcome {
    let before = shown(state);
    let mut out = apply_action(state, action);
    // A handler that knows it changed the screen says so; otherwise what is shown decides.
    out.redraw |= !out.effects.is_empty() || shown(state) != before;
    out
}

fn apply_action(state: &mut State, action: Action) -> Outcome {
    let mut effects = Vec::new();
    let page = state.page_rows();
    let r = &mut state.runs;
    match action {
        Action::Quit => {
            state.quit = true;
            return Outcome::none();
        }
        Action::Help => {
            state.help = !state.help;
            state.help_scroll = 0;
        }
        Action::Close => state.help = false,
        Action::NextTab => state.tab = state.tab.offset(1),
        Action::PrevTab => state.tab = state.tab.offset(-1),
        Action::Tab(t) => state.tab = t,
        Action::Up
        | Action::Down
        | Action::PageUp
        | Action::PageDown
        | Action::Top
        | Action::Bottom => {
            if state.help {
                let l = super::help::layout(state, state.size.0, state.size.1.saturating_sub(2));
                let page = l.visible.saturating_sub(1).max(1);
                let s = state.help_scroll.min(l.max_scroll);
                state.help_scroll = match action {
                    Action::Up => s.saturating_sub(1),
                    Action::Down => s + 1,
                    Action::PageUp => s.saturating_sub(page),
                    Action::PageDown => s + page,
                    Action::Top => 0,
                    _ => l.max_scroll,
                }
                .min(l.max_scroll);
                return Outcome::redraw();
            }
            if state.tab == Tab::Bench {
                let n = super::bench::ITEMS.len();
                move_cursor(&mut state.bench.cursor, n, action, page);
                return Outcome {
                    redraw: true,
                    effects,
                };
            }
            if state.tab == Tab::Gpus
                && let Some(f) = state.gpus.fleet.as_mut()
                && f.open.is_none()
            {
                let n = f.rows(state.now_ms).len();
                move_cursor(&mut f.cursor, n, action, page);
                return Outcome {
                    redraw: true,
                    effects,
                };
            }
            if state.tab == Tab::Gpus {
                state.gpus.with_shown(|g| {
                    let n = g.rows().len();
                    move_cursor(&mut g.cursor, n, action, page);
                });
                return Outcome {
                    redraw: true,
                    effects,
                };
            }
            if state.tab == Tab::Models {
                let m = &mut state.models;
                match m.focus {
                    super::models::ModelsFocus::Models => {
                        move_cursor(&mut m.cursor, m.models.len(), action, page)
                    }
                    super::models::ModelsFocus::Versions => {
                        move_cursor(&mut m.version_cursor, m.versions.len(), action, page)
                    }
                }
                return Outcome {
                    redraw: true,
                    effects,
                };
            }
            if state.tab != Tab::Runs {
                return Outcome::none();
            }
            match (r.view, r.focus) {
                (View::Table, _) => move_cursor(&mut r.cursor, r.visible.len(), action, page),
                (View::Detail, Focus::Log) => {
                    let max = r.log.lines.len();
                    r.log.scroll = match action {
                        Action::Up => (r.log.scroll + 1).min(max),
                        Action::Down => r.log.scroll.saturating_sub(1),
                        Action::PageUp => (r.log.scroll + page).min(max),
                        Action::PageDown => r.log.scroll.saturating_sub(page),
                        Action::Top => max,
                        _ => 0,
                    };
                }
                _ => return Outcome::none(),
            }
        }
        Action::Mark => r.toggle_mark(),
        Action::MarkAll => r.mark_all(),
        Action::ClearMarks => r.clear_marks(),
        Action::Pin => r.toggle_pin(),
        Action::Filter => {
            state.modal = Some(Modal::Filter {
                before: r.filter_text.clone(),
            })
        }
        Action::Columns => state.modal = Some(Modal::Columns { cursor: 0 }),
        Action::SortNext => r.sort_next(),
        Action::SortReverse => r.sort_reverse(),
        Action::Open => {
            let Some(id) = r.current().map(|c| c.run.id.clone()) else {
                return Outcome::none();
            };
            r.color_of(&id);
            r.detail = Some(id);
            r.view = View::Detail;
            r.focus = Focus::Charts;
            r.chart.page = 0;
            r.jump_to_event = true;
        }
        Action::Compare => {
            if r.compared().len() < 2 {
                state.toast = Some(format!(
                    "mark two or more runs to compare ({} marks, {} pins)",
                    state.keymap.key_text(Action::Mark),
                    state.keymap.key_text(Action::Pin)
                ));
            } else {
                r.view = View::Compare;
            }
        }
        Action::Tag => {
            if let Some(c) = r.current() {
                state.modal = Some(Modal::Tag {
                    run: c.run.id.clone(),
                    text: String::new(),
                });
            }
        }
        Action::Rename => {
            if let Some(c) = r.current() {
                state.modal = Some(Modal::Rename {
                    run: c.run.id.clone(),
                    text: c.run.name.clone(),
                });
            }
        }
        Action::Delete => {
            if let Some(c) = r.current() {
                let name = c.run.name.clone();
                state.modal = Some(Modal::Confirm {
                    lines: Vec::new(),
                    question: format!("Delete run {name} and its files?"),
                    yes: super::state::Yes::Effect(
                        Effect::Delete(c.run.id.clone()),
                        Some(format!("deleting {name}…")),
                    ),
                    no: "nothing deleted".into(),
                });
            }
        }
        Action::Pager => {
            if let Some(c) = r.current() {
                effects.push(Effect::Pager(
                    PathBuf::from(&c.run.run_dir).join("output.log"),
                ));
            }
        }
        Action::CopyId => {
            if let Some(c) = r.current() {
                effects.push(Effect::Copy(c.run.id.clone()));
                state.toast = Some(format!("copied run id {}", c.run.id));
            }
        }
        Action::Back => match r.view {
            View::Table => state.help = false,
            _ => {
                r.view = View::Table;
                r.focus = Focus::Charts;
            }
        },
        Action::FocusNext => {
            r.focus = match (r.view, r.focus) {
                (View::Detail, Focus::Charts) => Focus::Log,
                _ => Focus::Charts,
            }
        }
        Action::DiffOnly => r.diff_only = !r.diff_only,
        Action::CursorLeft | Action::CursorRight => {
            let step = if action == Action::CursorLeft {
                -0.02
            } else {
                0.02
            };
            r.chart.cursor = Some((r.chart.cursor.unwrap_or(0.5) + step).clamp(0.0, 1.0));
        }
        Action::ZoomIn => r.chart.zoom(0.5),
        Action::ZoomOut => r.chart.zoom(2.0),
        Action::PanLeft => r.chart.pan(-0.25),
        Action::PanRight => r.chart.pan(0.25),
        Action::ResetView => {
            r.chart.window = (0.0, 1.0);
            r.chart.cursor = None;
        }
        Action::XAxis => {
            r.chart.x = match r.chart.x {
                XMode::Step => XMode::Wall,
                XMode::Wall => XMode::Relative,
                XMode::Relative => XMode::Step,
            }
        }
        Action::LogY => r.chart.log_y = !r.chart.log_y,
        Action::SmoothMore => {
            r.chart.smoothing = (r.chart.smoothing + 1).min(super::runs::SMOOTHING.len() - 1)
        }
        Action::SmoothLess => r.chart.smoothing = r.chart.smoothing.saturating_sub(1),
        Action::MoreColumns => r.chart.cols = (r.chart.cols + 1).min(4),
        Action::FewerColumns => r.chart.cols = (r.chart.cols - 1).max(1),
        Action::MoreRows => r.chart.rows = (r.chart.rows + 1).min(4),
        Action::FewerRows => r.chart.rows = (r.chart.rows - 1).max(1),
        Action::NextPage => {
            let keys = r.metric_keys(&r.overlay()).len();
            let pages = keys.div_ceil(r.chart.per_page()).max(1);
            r.chart.page = (r.chart.page + 1).min(pages - 1);
        }
        Action::PrevPage => r.chart.page = r.chart.page.saturating_sub(1),
        Action::NextEvent => match super::marks::next_event(r) {
            Some((window, cursor)) => {
                r.chart.window = window;
                r.chart.cursor = Some(cursor);
            }
            None => state.toast = Some("no alert or event on the charts in view".into()),
        },
        Action::Register => {
            if let Some(c) = r.current() {
                let guess = c.run.experiment.clone();
                state.modal = Some(Modal::Register {
                    run: c.run.id.clone(),
                    text: guess,
                });
            }
        }
        Action::ModelOpen
        | Action::ModelMark
        | Action::Promote
        | Action::ModelPush
        | Action::ModelPull
        | Action::ModelEvals
        | Action::Verify
        | Action::ModelBack => {
            return super::models::models_action(state, action, effects);
        }
        Action::BenchToggle | Action::BenchCpu | Action::BenchCancel | Action::BenchRun => {
            return super::bench::bench_action(state, action, effects);
        }
        Action::GpuMetric
        | Action::ProcSort
        | Action::ProcTree
        | Action::ProcFilter
        | Action::ProcOpen
        | Action::KillTerm
        | Action::KillKill => {
            return super::gpus::gpus_action(state, action, effects);
        }
        Action::FleetOpen | Action::FleetSort | Action::FleetFilter | Action::FleetBack => {
            return super::fleet::fleet_action(state, action, effects);
        }
        // Popup keys: they act only while a popup is open (src/app/modal.rs).
        Action::ConfirmYes | Action::PromptSubmit | Action::PromptCancel | Action::PromptClear => {
            return Outcome::none();
        }
        Action::Search => {
            state.modal = Some(Modal::Search {
                text: r.log.search.clone().unwrap_or_default(),
            })
        }
        Action::NextMatch => {
            if let Some(i) = r.log.next_match() {
                r.log.scroll = r.log.lines.len().saturating_sub(i + 1);
            }
        }
    }
    if matches!(action, Action::NextTab | Action::PrevTab | Action::Tab(_)) {
        state.help = false;
    }
    // Whether this changed the screen is for `apply` to tell, from what is shown.
    Outcome {
        redraw: false,
        effects,
    }
}

/// A toast for alerts raised on runs since the last listing (none at the first: those are old).
fn alert_toast(state: &mut State, rows: &[crate::domain::RunRecord]) {
    if !state.runs.loaded {
        return;
    }
    let before = super::marks::active(&state.runs.records);
    if let Some(t) = super::marks::toast(&before, rows) {
        state.toast = Some(t);
    }
}

fn move_cursor(cursor: &mut usize, n: usize, action: Action, page: usize) {
    if n == 0 {
        return;
    }
    *cursor = match action {
        Action::Up => cursor.saturating_sub(1),
        Action::Down => (*cursor + 1).min(n - 1),
        Action::PageUp => cursor.saturating_sub(page),
        Action::PageDown => (*cursor + page).min(n - 1),
        Action::Top => 0,
        _ => n - 1,
    };
}

/// Shows a run's detail in the Runs tab, from anywhere (a GPU process, a model version).
pub(super) fn open_run_detail(state: &mut State, id: String) {
    state.tab = Tab::Runs;
    state.runs.color_of(&id);
    state.runs.detail = Some(id);
    state.runs.view = View::Detail;
    state.runs.focus = Focus::Charts;
}
