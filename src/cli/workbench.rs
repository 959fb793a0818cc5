use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::bail;
use tokio::sync::mpsc;

use crate::app::{Drawer, Effect, EffectRunner, Keymap, State, run_loop, spawn_clock};
use crate::config::{self, ColorMode, Config, Theme};
use crate::workspace::Workspace;

/// The real terminal behind the event loop: draws with `ui::render`, and can hand the terminal to
/// a pager and take it back.
struct TermDrawer {
    tui: crate::tui::Tui,
    tx: mpsc::UnboundedSender<crate::app::Msg>,
    events: Option<tokio::task::JoinHandle<()>>,
}

impl Drawer for TermDrawer {
    fn draw(&mut self, state: &State) -> anyhow::Result<()> {
        self.tui.terminal.draw(|f| crate::ui::render(f, state))?;
        Ok(())
    }

    fn hand_over(&mut self, argv: &[String]) -> Option<String> {
        // Stop reading keys, so the pager gets them all.
        if let Some(h) = self.events.take() {
            h.abort();
        }
        crate::tui::restore();
        let res = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .status();
        let back = crate::tui::reenter();
        let _ = self.tui.terminal.clear();
        self.events = crate::tui::spawn_events(self.tx.clone()).ok();
        match (res, back) {
            (_, Err(e)) => Some(format!("cannot take the terminal back: {e}")),
            (Ok(st), _) if st.success() => None,
            (Ok(st), _) => Some(format!("{} exited with {st}", argv[0])),
            (Err(e), _) => Some(format!("cannot run {} ({e}); set $PAGER", argv[0])),
        }
    }

    fn copy(&mut self, text: &str) {
        crate::tui::copy_to_clipboard(text);
    }
}

/// The user's settings as the workbench uses them: config, the theme (`--theme` over the
/// config's), the keymap, and every diagnostic of their files. `gantry doctor` reports the same.
pub(super) struct Settings {
    pub cfg: Config,
    pub theme_name: String,
    pub theme: Theme,
    pub keymap: Keymap,
    pub notices: Vec<config::Diagnostic>,
}

pub(super) fn load_settings(theme_flag: Option<String>) -> Settings {
    let (cfg, mut notices) = Config::load();
    let theme_name = theme_flag.unwrap_or_else(|| cfg.theme.clone());
    let (theme, d) = Theme::load(
        &theme_name,
        ColorMode::from_env(),
        config::config_dir().as_deref(),
    );
    notices.extend(d);
    let (keymap, d) = Keymap::build(&cfg);
    notices.extend(d);
    Settings {
        cfg,
        theme_name,
        theme,
        keymap,
        notices,
    }
}

/// Everything the workbench needs from config and theme files, with what was wrong in them.
pub fn prepare_state(ws: &Workspace, theme_flag: Option<String>) -> State {
    let Settings {
        cfg,
        theme,
        keymap,
        notices,
        ..
    } = load_settings(theme_flag);
    for n in &notices {
        tracing::warn!("{n}");
    }
    let mut state = State::new(keymap, theme);
    state.workspace = ws.label();
    state.host = crate::host::hostname();
    let now = chrono::Local::now();
    state.now_ms = now.timestamp_millis();
    state.clock = now.format("%H:%M").to_string();
    state.notices = notices;
    state.runs.directions = cfg.metrics.clone().into_iter().collect();
    state.refresh_ms = cfg.refresh_ms;
    // With fleet sources in the config, the GPUs tab opens on the fleet's host table.
    if let Some(src) = fleet_sources(&cfg) {
        state.gpus.fleet = Some(crate::app::fleet::FleetView::new(
            src.describe(),
            super::fleet::rule(&cfg.fleet),
        ));
    }
    state
}

/// The fleet sources the config names, if any.
fn fleet_sources(cfg: &Config) -> Option<crate::fleet::Sources> {
    let ask = super::fleet::Ask {
        prometheus: &None,
        scrape: &[],
        ssh: &[],
        token: &std::env::var("GANTRY_FLEET_TOKEN").ok(),
        timeout: None,
        json: false,
        free: None,
    };
    super::fleet::sources(&ask, &cfg.fleet).ok()
}

/// Open the workbench on a workspace until the user quits or the terminal goes away. GPU samples
/// come from `gpu_replay` when given, else from NVML.
pub async fn open(
    ws: &Workspace,
    theme_flag: Option<String>,
    gpu_replay: Option<(std::path::PathBuf, f64)>,
) -> anyhow::Result<ExitCode> {
    open_with_fleet(ws, theme_flag, gpu_replay, None).await
}

/// `open`, with these fleet sources instead of the config's (the demo's replayed fleet).
pub async fn open_with_fleet(
    ws: &Workspace,
    theme_flag: Option<String>,
    gpu_replay: Option<(std::path::PathBuf, f64)>,
    fleet: Option<crate::fleet::Sources>,
) -> anyhow::Result<ExitCode> {
    // The store first: a broken one is reported even where there is no terminal.
    let store = super::common::open_store(ws).await?;
    if !store.read_only() {
        match crate::capture::recover::recover(&store).await {
            Ok(notes) => notes.iter().for_each(|n| tracing::info!("{n}")),
            Err(e) => tracing::warn!("recover: {e:#}"),
        }
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(
            crate::error::UserError::new(
                "the workbench needs a terminal, and stdin/stdout are not one"
            )
            .hint("run `gantry` in a terminal, or use a subcommand (see `gantry --help`)")
        );
    }
    let mut state = prepare_state(ws, theme_flag);
    if let Some(src) = &fleet {
        state.gpus.fleet = Some(crate::app::fleet::FleetView::new(
            src.describe(),
            crate::fleet::FreeRule::default(),
        ));
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let tui = crate::tui::Tui::enter()?;
    state.size = tui.size();
    let events = crate::tui::spawn_events(tx.clone())?;
    let _clock = spawn_clock(tx.clone());
    let _watcher = match crate::app::spawn_watcher(&ws.dir(), tx.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("no live updates: cannot watch {}: {e}", ws.dir().display());
            None
        }
    };
    // A team store tells of each commit, from any host.
    let changes = tx.clone();
    let listener = match store
        .watch_changes(move || changes.send(crate::app::Msg::StoreChanged).is_ok())
        .await
    {
        Some(Err(e)) => {
            tracing::warn!("no live updates from the team store: {e:#}");
            None
        }
        Some(Ok(task)) => Some(task),
        None => None,
    };
    let every = std::time::Duration::from_millis(state.refresh_ms);
    crate::app::spawn_gpu_sampler(
        move || super::gpu::open_source(&gpu_replay),
        store.clone(),
        tx.clone(),
        every,
    );
    let fleet = fleet.or_else(|| {
        state
            .gpus
            .fleet
            .is_some()
            .then(|| fleet_sources(&Config::load().0))
            .flatten()
    });
    let runner = EffectRunner::new(store.clone(), tx.clone(), ws.dir()).with_fleet(fleet.clone());
    runner.run(Effect::LoadRuns(state.runs.load()));
    if let Some(src) = fleet {
        // Each source has its own timeout, on a thread of its own: a host that hangs never
        // holds the screen.
        let every = super::fleet::refresh(&Config::load().0.fleet);
        crate::app::spawn_fleet_reader(src, store.clone(), tx.clone(), every);
    }
    tracing::info!(workspace = %ws.root.display(), "workbench opened");
    let mut drawer = TermDrawer {
        tui,
        tx,
        events: Some(events),
    };
    let result = run_loop(&mut state, &mut rx, &mut drawer, |e| runner.run(e)).await;
    // Nothing reads the terminal after the loop (a reader left behind on a terminal that hung up
    // would spin on its end of input).
    if let Some(events) = drawer.events.take() {
        events.abort();
    }
    drop(drawer);
    // The listener holds one of the pool's connections, which closing waits for.
    if let Some(task) = listener {
        task.abort();
        let _ = task.await;
    }
    // Closing waits for connections in use; a store that stopped answering must not keep the
    // workbench from exiting.
    if tokio::time::timeout(std::time::Duration::from_secs(5), store.close())
        .await
        .is_err()
    {
        tracing::warn!("the store did not close within 5 s; exiting anyway");
    }
    tracing::info!("workbench closed");
    result.map(|_| ExitCode::SUCCESS)
}
