//! The Runs tab's state and its pure logic: the filtered, sorted table; marks, colours and the
//! pinned baseline; the detail and compare views; chart options; the log pane; the series cache.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::domain::{Direction, RunRecord, RunStatus, Series, SeriesKind};
use crate::filter::{self, Expr, FilterError, Subject};

/// One series of one run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId {
    pub run: String,
    pub kind: SeriesKind,
    pub key: String,
}

/// The system series shown in a run's detail, in order.
pub const SYSTEM_KEYS: [&str; 4] = ["cpu_percent", "rss_mb", "gpu_util_percent", "gpu_mem_mb"];

/// What the table's records hold beyond each run itself. The workbench reads only what its
/// columns, filter and sort need (10,000 runs' params, tags and series summaries are 600,000
/// rows); the runs whose detail, overlay or comparison is open are read whole into
/// `RunsState::whole`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// Every part of every run (records given whole).
    pub all: bool,
    pub params: BTreeSet<String>,
    pub metrics: BTreeSet<String>,
    pub tags: bool,
}

impl Held {
    pub fn whole() -> Held {
        Held {
            all: true,
            ..Held::default()
        }
    }

    /// Whether records holding `self` have everything `other` asks for.
    pub fn covers(&self, other: &Held) -> bool {
        self.all
            || (!other.all
                && other.params.is_subset(&self.params)
                && other.metrics.is_subset(&self.metrics)
                && (self.tags || !other.tags))
    }

    pub fn union(&self, other: &Held) -> Held {
        Held {
            all: self.all || other.all,
            params: self.params.union(&other.params).cloned().collect(),
            metrics: self.metrics.union(&other.metrics).cloned().collect(),
            tags: self.tags || other.tags,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortCol {
    Started,
    Name,
    Status,
    Exp,
    Duration,
    Metric(String),
    Param(String),
}

impl SortCol {
    pub fn label(&self) -> String {
        match self {
            SortCol::Started => "started".into(),
            SortCol::Name => "name".into(),
            SortCol::Status => "status".into(),
            SortCol::Exp => "experiment".into(),
            SortCol::Duration => "duration".into(),
            SortCol::Metric(k) => k.clone(),
            SortCol::Param(k) => k.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    #[default]
    Table,
    Detail,
    Compare,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Focus {
    #[default]
    Charts,
    Log,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XMode {
    #[default]
    Step,
    Wall,
    Relative,
}

impl XMode {
    pub fn label(self) -> &'static str {
        match self {
            XMode::Step => "step",
            XMode::Wall => "wall time",
            XMode::Relative => "relative time",
        }
    }
}

/// EMA smoothing weights `s` offers, in order (0: none).
pub const SMOOTHING: [f64; 7] = [0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99];

/// How charts are drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartOpts {
    pub x: XMode,
    pub log_y: bool,
    pub smoothing: usize,
    /// The shown part of the x range, as fractions of the whole: 0..1 is everything.
    pub window: (f64, f64),
    /// The cursor, as a fraction of the shown window.
    pub cursor: Option<f64>,
    pub cols: u16,
    pub rows: u16,
    pub page: usize,
}

impl Default for ChartOpts {
    fn default() -> Self {
        ChartOpts {
            x: XMode::Step,
            log_y: false,
            smoothing: 0,
            window: (0.0, 1.0),
            cursor: None,
            cols: 2,
            rows: 2,
            page: 0,
        }
    }
}

impl ChartOpts {
    pub fn ema(&self) -> f64 {
        SMOOTHING[self.smoothing.min(SMOOTHING.len() - 1)]
    }
    pub fn per_page(&self) -> usize {
        usize::from(self.cols.max(1)) * usize::from(self.rows.max(1))
    }
    pub fn zoom(&mut self, factor: f64) {
        let (a, b) = self.window;
        let mid = match self.cursor {
            Some(c) => a + c * (b - a),
            None => (a + b) / 2.0,
        };
        let half = ((b - a) * factor / 2.0).clamp(0.0005, 0.5);
        let (mut lo, mut hi) = (mid - half, mid + half);
        if lo < 0.0 {
            hi -= lo;
            lo = 0.0;
        }
        if hi > 1.0 {
            lo -= hi - 1.0;
            hi = 1.0;
        }
        self.window = (lo.max(0.0), hi.min(1.0));
    }
    pub fn pan(&mut self, by: f64) {
        let (a, b) = self.window;
        let w = b - a;
        let lo = (a + by * w).clamp(0.0, 1.0 - w);
        self.window = (lo, lo + w);
    }
}

/// The log pane: the tail of the run's output.
#[derive(Debug, Clone, Default)]
pub struct LogView {
    pub run: String,
    pub lines: Vec<String>,
    /// Lines scrolled up from the bottom; 0 follows the end.
    pub scroll: usize,
    pub search: Option<String>,
}

impl LogView {
    /// The line of the next match above the current view, if any.
    pub fn next_match(&self) -> Option<usize> {
        let needle = self.search.as_deref()?.to_lowercase();
        if needle.is_empty() {
            return None;
        }
        let bottom = self.lines.len().saturating_sub(self.scroll);
        (0..bottom.saturating_sub(1))
            .rev()
            .find(|&i| self.lines[i].to_lowercase().contains(&needle))
            .or_else(|| {
                (0..self.lines.len())
                    .rev()
                    .find(|&i| self.lines[i].to_lowercase().contains(&needle))
            })
    }
}

pub struct RunsState {
    pub records: Vec<RunRecord>,
    /// Whether the records come from more than one host: the table then shows a Host column.
    pub many_hosts: bool,
    pub loaded: bool,
    pub error: Option<String>,
    /// Indices into `records`: the filtered, sorted rows.
    pub visible: Vec<usize>,
    pub cursor: usize,
    /// Marked run ids, in the order they were marked.
    pub marked: Vec<String>,
    colors: HashMap<String, usize>,
    next_color: usize,
    pub pinned: Option<String>,
    pub sort: SortCol,
    pub sort_desc: bool,
    pub filter_text: String,
    filter: Expr,
    pub filter_error: Option<FilterError>,
    /// The metric columns picked with `c` (shown once `cols_chosen`; app/columns.rs).
    pub metric_cols: Vec<String>,
    pub param_cols: Vec<String>,
    pub cols_chosen: bool,
    /// The default metric columns, from the store's metric counts, and when they were read.
    pub default_metrics: Vec<String>,
    pub counts_at: Option<i64>,
    pub counts_stale: bool,
    pub counts_pending: bool,
    /// Rows of the table in view (for the sparklines' series).
    pub table_rows: usize,
    pub view: View,
    /// The run whose detail is open; whether its charts are to jump to its latest flight event.
    pub detail: Option<String>,
    pub jump_to_event: bool,
    pub focus: Focus,
    pub chart: ChartOpts,
    pub diff_only: bool,
    pub log: LogView,
    pub series: HashMap<SeriesId, Arc<Series>>,
    pub pending: HashSet<SeriesId>,
    /// Direction set by hand per metric (config `[metrics]`), else guessed from the name.
    pub directions: HashMap<String, Direction>,
    /// What `records` hold, what the newest load asked for, and how many loads are out.
    pub held: Held,
    asked: Held,
    loads_out: usize,
    /// Whole records of the runs open in the detail, overlay or comparison, by id.
    pub whole: HashMap<String, RunRecord>,
    whole_pending: HashSet<String>,
    /// Every metric and param name in the store, for the column chooser, once asked for.
    pub keys: Option<(Vec<String>, Vec<String>)>,
    keys_pending: bool,
    /// The compared runs' conditions ("why was this run slower?"), and the runs asked for.
    pub conditions: Vec<crate::domain::conditions::RunConditions>,
    conditions_for: Vec<String>,
}

impl Default for RunsState {
    fn default() -> Self {
        RunsState {
            records: Vec::new(),
            many_hosts: false,
            loaded: false,
            error: None,
            visible: Vec::new(),
            cursor: 0,
            marked: Vec::new(),
            colors: HashMap::new(),
            next_color: 0,
            pinned: None,
            sort: SortCol::Started,
            sort_desc: true,
            filter_text: String::new(),
            filter: Expr::And(Vec::new()),
            filter_error: None,
            metric_cols: Vec::new(),
            param_cols: Vec::new(),
            cols_chosen: false,
            default_metrics: Vec::new(),
            counts_at: None,
            counts_stale: false,
            counts_pending: false,
            table_rows: 0,
            view: View::Table,
            detail: None,
            jump_to_event: false,
            focus: Focus::Charts,
            chart: ChartOpts::default(),
            diff_only: false,
            log: LogView::default(),
            series: HashMap::new(),
            pending: HashSet::new(),
            directions: HashMap::new(),
            held: Held::default(),
            asked: Held::default(),
            loads_out: 0,
            whole: HashMap::new(),
            whole_pending: HashSet::new(),
            keys: None,
            keys_pending: false,
            conditions: Vec::new(),
            conditions_for: Vec::new(),
        }
    }
}

impl RunsState {
    /// What the table needs of every run: the params and metrics of its columns, filter and
    /// sort, and tags when the filter reads them.
    pub fn needed(&self) -> Held {
        let reads = self.filter.reads();
        let mut h = Held {
            all: false,
            params: reads.params,
            metrics: reads.metrics,
            tags: reads.tags,
        };
        h.params.extend(self.param_cols.iter().cloned());
        h.metrics.extend(self.shown_metric_cols().iter().cloned());
        match &self.sort {
            SortCol::Metric(k) => {
                h.metrics.insert(k.clone());
            }
            SortCol::Param(k) => {
                h.params.insert(k.clone());
            }
            _ => {}
        }
        h
    }

    /// A load of every run's records to start now: what is held and needed. Counted as out.
    pub fn load(&mut self) -> Held {
        self.asked = self.held.union(&self.needed()).union(&self.asked);
        self.loads_out += 1;
        self.asked.clone()
    }

    /// The load the table needs and neither holds nor awaits, if any.
    pub fn wanted_load(&mut self) -> Option<Held> {
        let need = self.needed();
        if self.held.covers(&need) || (self.loads_out > 0 && self.asked.covers(&need)) {
            return None;
        }
        Some(self.load())
    }

    /// Runs open in the detail, overlay or comparison whose whole record is neither held nor
    /// awaited; marked as awaited.
    pub fn wanted_whole(&mut self) -> Vec<String> {
        if self.held.all {
            return Vec::new();
        }
        let mut open = self.overlay();
        open.extend(self.compared());
        open.sort();
        open.dedup();
        let want: Vec<String> = open
            .into_iter()
            .filter(|id| !self.whole.contains_key(id) && !self.whole_pending.contains(id))
            .collect();
        self.whole_pending.extend(want.iter().cloned());
        want
    }

    /// After the store changed: the whole records held, to read again.
    pub fn reload_whole(&mut self) -> Vec<String> {
        let ids: Vec<String> = self.whole.keys().cloned().collect();
        self.whole_pending.extend(ids.iter().cloned());
        ids
    }

    /// Whole records read: kept for the runs still open.
    pub fn set_whole(&mut self, records: Vec<RunRecord>) {
        for r in records {
            self.whole_pending.remove(&r.run.id);
            self.whole.insert(r.run.id.clone(), r);
        }
        let mut open: HashSet<String> = self.overlay().into_iter().collect();
        open.extend(self.compared());
        self.whole
            .retain(|id, _| open.contains(id) || self.whole_pending.contains(id));
    }

    /// Whether the column chooser's names are to be read (once).
    pub fn wanted_keys(&mut self) -> bool {
        if self.held.all || self.keys.is_some() || self.keys_pending {
            return false;
        }
        self.keys_pending = true;
        true
    }

    pub fn set_keys(&mut self, metrics: Vec<String>, params: Vec<String>) {
        self.keys_pending = false;
        self.keys = Some((metrics, params));
    }

    /// Records read by a load that holds `held`.
    pub fn set_listed(&mut self, records: Vec<RunRecord>, held: Held) {
        self.loads_out = self.loads_out.saturating_sub(1);
        self.held = held;
        self.set_records(records);
    }

    /// A load failed.
    pub fn load_failed(&mut self, e: String) {
        self.loads_out = self.loads_out.saturating_sub(1);
        self.loaded = true;
        self.error = Some(e);
    }

    /// New records from the store: keep the cursor on the same run, refilter, resort.
    pub fn set_records(&mut self, records: Vec<RunRecord>) {
        let current = self.current().map(|r| r.run.id.clone());
        let ids: HashSet<&str> = records.iter().map(|r| r.run.id.as_str()).collect();
        self.marked.retain(|id| ids.contains(id.as_str()));
        if self.pinned.as_deref().is_some_and(|p| !ids.contains(p)) {
            self.pinned = None;
        }
        if self.detail.as_deref().is_some_and(|d| !ids.contains(d)) {
            self.detail = None;
            self.view = View::Table;
        }
        self.many_hosts = records
            .first()
            .is_some_and(|f| records.iter().any(|r| r.run.host != f.run.host));
        self.records = records;
        self.loaded = true;
        self.error = None;
        self.refresh_visible();
        if let Some(id) = current
            && let Some(pos) = self
                .visible
                .iter()
                .position(|&i| self.records[i].run.id == id)
        {
            self.cursor = pos;
        }
    }

    /// Recompute the visible rows from the filter and sort.
    pub fn refresh_visible(&mut self) {
        let mut v: Vec<usize> = (0..self.records.len())
            .filter(|&i| {
                let r = &self.records[i];
                self.filter.matches(&Subject {
                    run: &r.run,
                    params: &r.params,
                    tags: &r.tags,
                    metrics: &r.metrics,
                })
            })
            .collect();
        let now = crate::domain::now_ms();
        v.sort_by(|&a, &b| {
            compare(
                &self.records[a],
                &self.records[b],
                &self.sort,
                self.sort_desc,
                now,
            )
        });
        self.visible = v;
        self.cursor = self.cursor.min(self.visible.len().saturating_sub(1));
    }

    /// Set the filter text: applied when it parses; otherwise the error is kept for display and
    /// the last good filter stays.
    pub fn set_filter(&mut self, text: &str) {
        self.filter_text = text.to_string();
        match filter::parse(text) {
            Ok(e) => {
                self.filter = e;
                self.filter_error = None;
                self.refresh_visible();
            }
            Err(e) => self.filter_error = Some(e),
        }
    }

    pub fn current(&self) -> Option<&RunRecord> {
        self.visible.get(self.cursor).map(|&i| &self.records[i])
    }

    /// A run's record: whole when its detail or comparison is open and it has been read.
    pub fn record(&self, id: &str) -> Option<&RunRecord> {
        self.whole
            .get(id)
            .or_else(|| self.records.iter().find(|r| r.run.id == id))
    }

    /// The stable colour index of a run, given on first use.
    pub fn color_of(&mut self, id: &str) -> usize {
        if let Some(c) = self.colors.get(id) {
            return *c;
        }
        let c = self.next_color;
        self.next_color += 1;
        self.colors.insert(id.to_string(), c);
        c
    }

    /// The colour of a run that already has one (render must not assign).
    pub fn color(&self, id: &str) -> usize {
        self.colors.get(id).copied().unwrap_or(0)
    }

    pub fn toggle_mark(&mut self) {
        let Some(id) = self.current().map(|r| r.run.id.clone()) else {
            return;
        };
        if let Some(pos) = self.marked.iter().position(|m| *m == id) {
            self.marked.remove(pos);
        } else {
            self.color_of(&id);
            self.marked.push(id);
        }
    }

    pub fn mark_all(&mut self) {
        let ids: Vec<String> = self
            .visible
            .iter()
            .map(|&i| self.records[i].run.id.clone())
            .collect();
        for id in ids {
            if !self.marked.contains(&id) {
                self.color_of(&id);
                self.marked.push(id);
            }
        }
    }

    pub fn clear_marks(&mut self) {
        self.marked.clear();
        self.pinned = None;
    }

    pub fn toggle_pin(&mut self) {
        let Some(id) = self.current().map(|r| r.run.id.clone()) else {
            return;
        };
        if self.pinned.as_deref() == Some(id.as_str()) {
            self.pinned = None;
        } else {
            self.color_of(&id);
            if !self.marked.contains(&id) {
                self.marked.push(id.clone());
            }
            self.pinned = Some(id);
        }
    }

    /// The next sort column: started, name, status, experiment, duration, then the chosen
    /// metric and param columns.
    pub fn sort_next(&mut self) {
        let mut cols = vec![
            SortCol::Started,
            SortCol::Name,
            SortCol::Status,
            SortCol::Exp,
            SortCol::Duration,
        ];
        cols.extend(
            self.shown_metric_cols()
                .iter()
                .cloned()
                .map(SortCol::Metric),
        );
        cols.extend(self.param_cols.iter().cloned().map(SortCol::Param));
        let i = cols
            .iter()
            .position(|c| *c == self.sort)
            .map_or(0, |i| (i + 1) % cols.len());
        self.sort = cols[i].clone();
        self.refresh_visible();
    }

    pub fn sort_reverse(&mut self) {
        self.sort_desc = !self.sort_desc;
        self.refresh_visible();
    }

    /// Runs drawn in the open detail: the detail's run, then the marked ones.
    pub fn overlay(&self) -> Vec<String> {
        let mut v: Vec<String> = self.detail.iter().cloned().collect();
        for m in &self.marked {
            if !v.contains(m) {
                v.push(m.clone());
            }
        }
        v
    }

    /// The runs the compare view shows: the pinned baseline first, then the other marked runs.
    /// The compared runs, when the comparison is open and their conditions were not asked for.
    pub fn wanted_conditions(&mut self) -> Option<Vec<String>> {
        if self.view != View::Compare {
            return None;
        }
        let ids = self.compared();
        if ids.len() < 2 || ids == self.conditions_for {
            return None;
        }
        self.conditions_for = ids.clone();
        self.conditions.clear();
        Some(ids)
    }

    /// The conditions of `ids` arrived; kept when they are still the runs compared.
    pub fn set_conditions(
        &mut self,
        ids: Vec<String>,
        conditions: Vec<crate::domain::conditions::RunConditions>,
    ) {
        if ids == self.conditions_for {
            self.conditions = conditions;
        }
    }

    pub fn compared(&self) -> Vec<String> {
        let mut v: Vec<String> = self.pinned.iter().cloned().collect();
        for m in &self.marked {
            if !v.contains(m) {
                v.push(m.clone());
            }
        }
        v
    }

    /// All metric keys of some runs, sorted.
    pub fn metric_keys(&self, runs: &[String]) -> Vec<String> {
        let keys: BTreeSet<&String> = runs
            .iter()
            .filter_map(|id| self.record(id))
            .flat_map(|r| r.metrics.keys())
            .collect();
        keys.into_iter().cloned().collect()
    }

    /// The metrics on the current chart page of the detail view.
    pub fn page_keys(&self) -> Vec<String> {
        let keys = self.metric_keys(&self.overlay());
        let per = self.chart.per_page();
        let pages = keys.len().div_ceil(per).max(1);
        let page = self.chart.page.min(pages - 1);
        keys.into_iter().skip(page * per).take(per).collect()
    }

    /// Series the current view needs and neither has nor awaits.
    pub fn wanted_series(&self) -> Vec<SeriesId> {
        let mut want = Vec::new();
        match self.view {
            View::Table => want.extend(self.trend_series()),
            View::Detail => {
                let keys = self.page_keys();
                for run in self.overlay() {
                    for k in &keys {
                        want.push(SeriesId {
                            run: run.clone(),
                            kind: SeriesKind::Metric,
                            key: k.clone(),
                        });
                    }
                }
                if let Some(d) = &self.detail {
                    for k in SYSTEM_KEYS {
                        want.push(SeriesId {
                            run: d.clone(),
                            kind: SeriesKind::System,
                            key: k.into(),
                        });
                    }
                }
            }
            View::Compare => {
                let runs = self.compared();
                for k in self.metric_keys(&runs) {
                    for run in &runs {
                        want.push(SeriesId {
                            run: run.clone(),
                            kind: SeriesKind::Metric,
                            key: k.clone(),
                        });
                    }
                }
            }
        }
        want.retain(|s| !self.series.contains_key(s) && !self.pending.contains(s));
        want
    }

    /// Forget cached series of runs that are still running, so they are loaded again.
    pub fn drop_live_series(&mut self) {
        let live: HashSet<&str> = self
            .records
            .iter()
            .filter(|r| r.run.status == RunStatus::Running)
            .map(|r| r.run.id.as_str())
            .collect();
        self.series.retain(|k, _| !live.contains(k.run.as_str()));
    }

    pub fn direction(&self, metric: &str) -> Direction {
        self.directions
            .get(metric)
            .copied()
            .unwrap_or_else(|| Direction::guess(metric))
    }

    pub fn any_running(&self) -> bool {
        self.records
            .iter()
            .any(|r| r.run.status == RunStatus::Running)
    }

    /// All metric and param names, for the column chooser: ("metric"|"param", name).
    pub fn column_choices(&self) -> Vec<(&'static str, String)> {
        if !self.held.all {
            let (m, p) = self.keys.clone().unwrap_or_default();
            return m
                .into_iter()
                .map(|k| ("metric", k))
                .chain(p.into_iter().map(|k| ("param", k)))
                .collect();
        }
        let m: BTreeSet<&String> = self.records.iter().flat_map(|r| r.metrics.keys()).collect();
        let p: BTreeSet<&String> = self.records.iter().flat_map(|r| r.params.keys()).collect();
        m.into_iter()
            .map(|k| ("metric", k.clone()))
            .chain(p.into_iter().map(|k| ("param", k.clone())))
            .collect()
    }
}

fn compare(a: &RunRecord, b: &RunRecord, col: &SortCol, desc: bool, now: i64) -> Ordering {
    let (ra, rb) = (&a.run, &b.run);
    let ord = |o: Ordering| if desc { o.reverse() } else { o };
    let tie = ra.id.cmp(&rb.id);
    match col {
        SortCol::Started => ord(ra.started_ms.cmp(&rb.started_ms)).then(tie),
        SortCol::Name => ord(ra.name.cmp(&rb.name)).then(tie),
        SortCol::Status => ord(ra.status.as_str().cmp(rb.status.as_str())).then(tie),
        SortCol::Exp => ord(ra.experiment.cmp(&rb.experiment)).then(tie),
        SortCol::Duration => ord(ra.duration_ms(now).cmp(&rb.duration_ms(now))).then(tie),
        SortCol::Metric(k) => {
            let v = |r: &RunRecord| r.metrics.get(k).and_then(|s| s.last);
            missing_last(v(a), v(b), |x, y| ord(x.total_cmp(&y))).then(tie)
        }
        SortCol::Param(k) => missing_last(a.params.get(k), b.params.get(k), |x, y| {
            ord(match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(x), Ok(y)) => x.total_cmp(&y),
                _ => x.cmp(y),
            })
        })
        .then(tie),
    }
}

fn missing_last<T>(a: Option<T>, b: Option<T>, cmp: impl Fn(T, T) -> Ordering) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => cmp(x, y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}
