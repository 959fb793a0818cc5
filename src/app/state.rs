use crate::config::{Diagnostic, Theme};
pub use crate::domain::GpuProbe;

use super::action::Section;
use super::keymap::Keymap;
use super::runs::{Focus, RunsState, View};

/// The four tabs, registered once here: title, key name and order all come from this list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tab {
    Runs,
    Models,
    Gpus,
    Bench,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Runs, Tab::Models, Tab::Gpus, Tab::Bench];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Runs => "Runs",
            Tab::Models => "Models",
            Tab::Gpus => "GPUs",
            Tab::Bench => "Bench",
        }
    }
    /// The name used in config (`tab_runs`).
    pub fn key_name(self) -> &'static str {
        match self {
            Tab::Runs => "runs",
            Tab::Models => "models",
            Tab::Gpus => "gpus",
            Tab::Bench => "bench",
        }
    }
    pub fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
    pub fn offset(self, by: isize) -> Tab {
        let n = Tab::ALL.len() as isize;
        Tab::ALL[(self.index() as isize + by).rem_euclid(n) as usize]
    }

    /// The tab bar's labels and the columns each occupies; render draws these and mouse clicks
    /// are matched against them, so the two can never disagree.
    pub fn bar() -> Vec<(Tab, String, std::ops::Range<u16>)> {
        let mut col = BAR_PREFIX.len() as u16;
        Tab::ALL
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let label = format!(" {} {} ", i + 1, t.title());
                let start = col;
                col += label.len() as u16 + 1; // one column of separator
                (*t, label, start..start + (col - start - 1))
            })
            .collect()
    }

    /// The tab under a click on the tab bar's row.
    pub fn at_column(col: u16) -> Option<Tab> {
        Tab::bar()
            .into_iter()
            .find(|(_, _, r)| r.contains(&col))
            .map(|(t, _, _)| t)
    }
}

/// What the tab bar starts with.
pub const BAR_PREFIX: &str = " gantry  ";

/// A modal input that takes the keys until it closes.
#[derive(Debug, Clone, PartialEq)]
pub enum Modal {
    /// Editing the filter; the text before opening comes back on cancel.
    Filter {
        before: String,
    },
    Tag {
        run: String,
        text: String,
    },
    Rename {
        run: String,
        text: String,
    },
    Search {
        text: String,
    },
    Columns {
        cursor: usize,
    },
    Register {
        run: String,
        text: String,
    },
    /// "alias [reason]" for a version.
    Promote {
        model: String,
        version: u32,
        text: String,
    },
    /// Editing the process filter; the text before opening comes back on cancel.
    ProcFilter {
        before: String,
    },
    /// Editing the fleet's host filter; the text before opening comes back on cancel.
    FleetFilter {
        before: String,
    },
    /// A yes-or-no question: `lines` of context, then `question` with the keys (`y/N`). On yes,
    /// `yes` happens; on any other key, `no` is shown.
    Confirm {
        lines: Vec<String>,
        question: String,
        yes: Yes,
        no: String,
    },
}

/// What a yes does.
#[derive(Debug, Clone, PartialEq)]
pub enum Yes {
    /// Start this work, and say so where there is something to say.
    Effect(super::Effect, Option<String>),
    /// Start the checked benchmarks (the GPU was busy).
    StartBench,
}

pub struct State {
    pub tab: Tab,
    pub help: bool,
    /// How far help is scrolled, in lines (clamped to its layout's `max_scroll`).
    pub help_scroll: usize,
    pub quit: bool,
    /// The terminal size, for paging and mouse hit-tests.
    pub size: (u16, u16),
    pub workspace: String,
    pub host: String,
    /// gantry's own pid: its processes on a GPU are not another's.
    pub own_pid: u32,
    /// HH:MM, refreshed by the clock worker once a minute.
    pub clock: String,
    pub now_ms: i64,
    pub runs: RunsState,
    pub models: super::models::ModelsState,
    pub gpus: super::gpus::GpusState,
    pub bench: super::bench::BenchState,
    pub modal: Option<Modal>,
    /// A short message in the status line (an action's result), until the next key.
    pub toast: Option<String>,
    /// Advances once a second while a run is running, for the spinner.
    pub spinner: usize,
    pub gpu: GpuProbe,
    /// Problems in the user's config or theme, shown in the status line until a key is pressed.
    pub notices: Vec<Diagnostic>,
    pub keymap: Keymap,
    pub theme: Theme,
    /// How often live data (GPU samples) is refreshed.
    pub refresh_ms: u64,
}

impl State {
    pub fn new(keymap: Keymap, theme: Theme) -> State {
        State {
            tab: Tab::Runs,
            help: false,
            help_scroll: 0,
            quit: false,
            size: (80, 24),
            workspace: String::new(),
            host: String::new(),
            own_pid: std::process::id(),
            clock: String::new(),
            now_ms: 0,
            runs: RunsState::default(),
            models: Default::default(),
            gpus: Default::default(),
            bench: Default::default(),
            modal: None,
            toast: None,
            spinner: 0,
            gpu: GpuProbe::Pending,
            notices: Vec::new(),
            keymap,
            theme,
            refresh_ms: 1000,
        }
    }

    /// Rows of the runs table that fit on screen (tab bar, header, borders and status excluded).
    pub fn page_rows(&self) -> usize {
        usize::from(self.size.1.saturating_sub(6)).max(1)
    }

    /// Where keys are looked up now, most specific first (global comes last on its own).
    pub fn sections(&self) -> Vec<Section> {
        // Help takes the moving keys to scroll; the tabs' own keys wait until it closes.
        if self.help {
            return Vec::new();
        }
        if self.tab == Tab::Models {
            return vec![Section::Models];
        }
        if self.tab == Tab::Gpus {
            // With a fleet and no host open, keys act on the host table.
            if self.gpus.fleet.as_ref().is_some_and(|f| f.open.is_none()) {
                return vec![Section::Fleet];
            }
            return vec![Section::Gpus];
        }
        if self.tab == Tab::Bench {
            return vec![Section::Bench];
        }
        if self.tab != Tab::Runs {
            return Vec::new();
        }
        match (self.runs.view, self.runs.focus) {
            (View::Table, _) => vec![Section::Table],
            (View::Detail, Focus::Charts) => vec![Section::Chart, Section::Detail],
            (View::Detail, Focus::Log) => vec![Section::Log, Section::Detail],
            (View::Compare, _) => vec![Section::Compare, Section::Chart, Section::Detail],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_bar_columns_match_labels() {
        let bar = Tab::bar();
        assert_eq!(bar[0].1, " 1 Runs ");
        assert_eq!(bar[0].2.start, BAR_PREFIX.len() as u16);
        for (t, label, r) in &bar {
            assert_eq!(r.len(), label.len());
            assert_eq!(Tab::at_column(r.start), Some(*t));
            assert_eq!(Tab::at_column(r.end - 1), Some(*t));
        }
        assert_eq!(Tab::at_column(0), None);
        assert_eq!(Tab::at_column(bar[0].2.end), None, "separator");
    }
}
