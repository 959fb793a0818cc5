use super::state::Tab;

/// What a key does. Keys map to actions through the keymap; nothing matches raw keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    // global
    Quit,
    Help,
    Close,
    NextTab,
    PrevTab,
    Tab(Tab),
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    // the run table
    Mark,
    MarkAll,
    ClearMarks,
    Pin,
    Filter,
    Columns,
    SortNext,
    SortReverse,
    Open,
    Compare,
    Tag,
    Rename,
    Delete,
    Pager,
    CopyId,
    // run detail and compare
    Back,
    FocusNext,
    DiffOnly,
    // charts
    CursorLeft,
    CursorRight,
    ZoomIn,
    ZoomOut,
    PanLeft,
    PanRight,
    ResetView,
    XAxis,
    LogY,
    SmoothMore,
    SmoothLess,
    MoreColumns,
    FewerColumns,
    MoreRows,
    FewerRows,
    NextPage,
    PrevPage,
    NextEvent,
    // the log pane
    Search,
    NextMatch,
    // models
    Register,
    ModelOpen,
    ModelMark,
    Promote,
    Verify,
    ModelPush,
    ModelPull,
    ModelEvals,
    ModelBack,
    // GPUs
    GpuMetric,
    ProcSort,
    ProcOpen,
    ProcFilter,
    ProcTree,
    KillTerm,
    KillKill,
    // the fleet
    FleetOpen,
    FleetSort,
    FleetFilter,
    FleetBack,
    // bench
    BenchToggle,
    BenchRun,
    BenchCancel,
    BenchCpu,
    // popups
    ConfirmYes,
    PromptSubmit,
    PromptCancel,
    PromptClear,
}

/// Where an action applies. The keymap looks in the focused section, then the view's, then
/// global, so one key can mean different things in different places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    Global,
    Table,
    Detail,
    Chart,
    Log,
    Compare,
    Models,
    Gpus,
    /// The fleet's host table, at the top of the GPUs tab.
    Fleet,
    Bench,
    /// A yes-or-no question.
    Confirm,
    /// A one-line text prompt.
    Prompt,
}

impl Section {
    pub fn title(self) -> &'static str {
        match self {
            Section::Global => "Everywhere",
            Section::Table => "Run table",
            Section::Detail => "Run detail",
            Section::Chart => "Charts",
            Section::Log => "Log pane",
            Section::Compare => "Compare",
            Section::Models => "Models",
            Section::Gpus => "GPUs",
            Section::Fleet => "Fleet (GPUs tab)",
            Section::Bench => "Bench",
            Section::Confirm => "Questions (y/N)",
            Section::Prompt => "Text prompts",
        }
    }
}

/// One entry of the action registry: the config name, where it applies, what the help overlay
/// says, and the short label for the footer hints (None: not shown there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionInfo {
    pub action: Action,
    pub section: Section,
    pub name: String,
    pub description: String,
    pub hint: Option<&'static str>,
}

fn info(
    action: Action,
    section: Section,
    name: &str,
    description: &str,
    hint: Option<&'static str>,
) -> ActionInfo {
    ActionInfo {
        action,
        section,
        name: name.into(),
        description: description.into(),
        hint,
    }
}

/// The registry of every action, in help-overlay order. Tabs are added from `Tab::ALL`, so a new
/// tab is registered in one place.
pub fn actions() -> Vec<ActionInfo> {
    use Action as A;
    use Section as S;
    let mut v = vec![
        info(
            A::Help,
            S::Global,
            "help",
            "Show or hide this help",
            Some("help"),
        ),
        info(A::Quit, S::Global, "quit", "Quit gantry", Some("quit")),
        info(A::Close, S::Global, "close", "Close the overlay", None),
        info(A::NextTab, S::Global, "next_tab", "Next tab", None),
        info(A::PrevTab, S::Global, "prev_tab", "Previous tab", None),
    ];
    for tab in Tab::ALL {
        v.push(info(
            A::Tab(tab),
            S::Global,
            &format!("tab_{}", tab.key_name()),
            &format!("Go to the {} tab", tab.title()),
            None,
        ));
    }
    v.extend([
        info(A::Up, S::Global, "up", "Move up (selection, log)", None),
        info(
            A::Down,
            S::Global,
            "down",
            "Move down (selection, log)",
            None,
        ),
        info(A::PageUp, S::Global, "page_up", "Move up one page", None),
        info(
            A::PageDown,
            S::Global,
            "page_down",
            "Move down one page",
            None,
        ),
        info(A::Top, S::Global, "top", "Go to the first row", None),
        info(A::Bottom, S::Global, "bottom", "Go to the last row", None),
        info(
            A::Open,
            S::Table,
            "open",
            "Open the run's detail",
            Some("open"),
        ),
        info(
            A::Mark,
            S::Table,
            "mark",
            "Mark the run for overlays and compare",
            Some("mark"),
        ),
        info(
            A::MarkAll,
            S::Table,
            "mark_all",
            "Mark every run the filter shows",
            None,
        ),
        info(
            A::ClearMarks,
            S::Table,
            "clear_marks",
            "Clear the marks and the pin",
            None,
        ),
        info(A::Pin, S::Table, "pin", "Pin the run as the baseline", None),
        info(
            A::Compare,
            S::Table,
            "compare",
            "Compare the marked runs",
            Some("compare"),
        ),
        info(
            A::Filter,
            S::Table,
            "filter",
            "Filter the runs (see docs/filter.md)",
            Some("filter"),
        ),
        info(
            A::SortNext,
            S::Table,
            "sort",
            "Sort by the next column",
            None,
        ),
        info(
            A::SortReverse,
            S::Table,
            "sort_reverse",
            "Reverse the sort",
            None,
        ),
        info(
            A::Columns,
            S::Table,
            "columns",
            "Choose the metric and param columns",
            None,
        ),
        info(A::Tag, S::Table, "tag", "Tag the run (key=value)", None),
        info(A::Rename, S::Table, "rename", "Rename the run", None),
        info(
            A::Delete,
            S::Table,
            "delete",
            "Delete the run (asks first)",
            None,
        ),
        info(
            A::Pager,
            S::Table,
            "pager",
            "Open the run's log in $PAGER",
            None,
        ),
        info(
            A::CopyId,
            S::Table,
            "copy_id",
            "Copy the run id (OSC 52 clipboard)",
            None,
        ),
        info(
            A::Register,
            S::Table,
            "register",
            "Register the run's files as a model version",
            None,
        ),
        info(
            A::Back,
            S::Detail,
            "back",
            "Back to the run table",
            Some("back"),
        ),
        info(
            A::FocusNext,
            S::Detail,
            "focus",
            "Move focus between charts and log",
            Some("focus"),
        ),
        info(
            A::DiffOnly,
            S::Compare,
            "diff_only",
            "Show only params that differ",
            None,
        ),
        info(
            A::CursorLeft,
            S::Chart,
            "cursor_left",
            "Move the chart cursor left",
            None,
        ),
        info(
            A::CursorRight,
            S::Chart,
            "cursor_right",
            "Move the chart cursor right",
            None,
        ),
        info(
            A::ZoomIn,
            S::Chart,
            "zoom_in",
            "Zoom in on the x axis",
            None,
        ),
        info(A::ZoomOut, S::Chart, "zoom_out", "Zoom out", None),
        info(A::PanLeft, S::Chart, "pan_left", "Pan left", None),
        info(A::PanRight, S::Chart, "pan_right", "Pan right", None),
        info(
            A::NextEvent,
            S::Chart,
            "next_event",
            "Put the cursor on the next alert or crash, NaN, XID",
            Some("next event"),
        ),
        info(
            A::ResetView,
            S::Chart,
            "reset_view",
            "Reset zoom and cursor",
            None,
        ),
        info(
            A::XAxis,
            S::Chart,
            "x_axis",
            "x axis: step, wall time, relative time",
            None,
        ),
        info(
            A::LogY,
            S::Chart,
            "log_y",
            "Logarithmic y axis on/off",
            None,
        ),
        info(
            A::SmoothMore,
            S::Chart,
            "smooth_more",
            "More EMA smoothing",
            None,
        ),
        info(
            A::SmoothLess,
            S::Chart,
            "smooth_less",
            "Less EMA smoothing",
            None,
        ),
        info(
            A::MoreColumns,
            S::Chart,
            "more_columns",
            "More chart columns",
            None,
        ),
        info(
            A::FewerColumns,
            S::Chart,
            "fewer_columns",
            "Fewer chart columns",
            None,
        ),
        info(A::MoreRows, S::Chart, "more_rows", "More chart rows", None),
        info(
            A::FewerRows,
            S::Chart,
            "fewer_rows",
            "Fewer chart rows",
            None,
        ),
        info(
            A::NextPage,
            S::Chart,
            "next_page",
            "Next page of metrics",
            None,
        ),
        info(
            A::PrevPage,
            S::Chart,
            "prev_page",
            "Previous page of metrics",
            None,
        ),
        info(A::Search, S::Log, "search", "Search the log", None),
        info(A::NextMatch, S::Log, "next_match", "Next match", None),
        info(
            A::ModelOpen,
            S::Models,
            "model_open",
            "Open a model's versions / a version's run",
            Some("open"),
        ),
        info(
            A::ModelMark,
            S::Models,
            "model_mark",
            "Mark a version; two marked show their diff",
            Some("mark"),
        ),
        info(
            A::Promote,
            S::Models,
            "promote",
            "Point an alias at the version (asks first)",
            Some("promote"),
        ),
        info(
            A::Verify,
            S::Models,
            "verify",
            "Re-hash the model's files",
            Some("verify"),
        ),
        info(
            A::ModelPush,
            S::Models,
            "model_push",
            "Push the registry to its remote: files, then versions and aliases (asks first)",
            Some("push"),
        ),
        info(
            A::ModelPull,
            S::Models,
            "model_pull",
            "Pull the version (or the model's latest) from the remote (asks first)",
            Some("pull"),
        ),
        info(
            A::ModelEvals,
            S::Models,
            "model_evals",
            "Show the latest model eval; enter compares its runs",
            Some("evals"),
        ),
        info(
            A::ModelBack,
            S::Models,
            "model_back",
            "Back to the model list",
            None,
        ),
    ]);
    v.extend([
        info(
            A::GpuMetric,
            S::Gpus,
            "gpu_metric",
            "Chart utilisation, memory, power or temperature",
            Some("metric"),
        ),
        info(
            A::ProcSort,
            S::Gpus,
            "proc_sort",
            "Sort processes by memory, SM, pid, GPU",
            Some("sort"),
        ),
        info(
            A::ProcFilter,
            S::Gpus,
            "proc_filter",
            "Filter processes by pid, user, command, run or gpuN",
            Some("filter"),
        ),
        info(
            A::ProcTree,
            S::Gpus,
            "proc_tree",
            "Show processes as a tree under their parents and launchers",
            Some("tree"),
        ),
        info(
            A::ProcOpen,
            S::Gpus,
            "proc_open",
            "Open the run that owns the process",
            None,
        ),
        info(
            A::KillTerm,
            S::Gpus,
            "kill",
            "Send the process SIGTERM (asks first)",
            None,
        ),
        info(
            A::KillKill,
            S::Gpus,
            "kill_hard",
            "Send the process SIGKILL (asks first)",
            None,
        ),
        info(
            A::FleetBack,
            S::Gpus,
            "fleet_back",
            "Back to the fleet's host table (with a fleet configured)",
            None,
        ),
        info(
            A::FleetOpen,
            S::Fleet,
            "fleet_open",
            "Open the host: its GPU panels and processes",
            Some("open"),
        ),
        info(
            A::FleetSort,
            S::Fleet,
            "fleet_sort",
            "Sort hosts by name, utilisation, free GPUs, temperature, age",
            Some("sort"),
        ),
        info(
            A::FleetFilter,
            S::Fleet,
            "fleet_filter",
            "Filter hosts: name, model, job, error, or free, stale, throttled",
            Some("filter"),
        ),
    ]);
    v.extend([
        info(
            A::BenchToggle,
            S::Bench,
            "bench_toggle",
            "Check or uncheck a benchmark or precision; step the GEMM size",
            Some("check"),
        ),
        info(
            A::BenchRun,
            S::Bench,
            "bench_run",
            "Run the checked benchmarks (asks first if the GPU is busy)",
            Some("run"),
        ),
        info(
            A::BenchCancel,
            S::Bench,
            "bench_cancel",
            "Cancel the running benchmarks",
            None,
        ),
        info(
            A::BenchCpu,
            S::Bench,
            "bench_cpu",
            "Switch between the CUDA and the CPU backend",
            Some("cpu"),
        ),
        info(
            A::ConfirmYes,
            S::Confirm,
            "confirm_yes",
            "Yes (any other key is no)",
            None,
        ),
        info(
            A::PromptSubmit,
            S::Prompt,
            "prompt_submit",
            "Take what was typed",
            None,
        ),
        info(
            A::PromptCancel,
            S::Prompt,
            "prompt_cancel",
            "Cancel the prompt",
            None,
        ),
        info(
            A::PromptClear,
            S::Prompt,
            "prompt_clear",
            "Clear what was typed",
            None,
        ),
    ]);
    v
}
