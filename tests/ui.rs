//! Whole screens as insta snapshots on a 120×40 TestBackend; colour that carries meaning is
//! asserted on buffer styles.

mod common;

use gantry::app::{Drawer, GpuProbe, Msg, State, Tab, update};
use gantry::config::{ColorMode, Config, Diagnostic, KeyChord, Role, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

fn draw(state: &State, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    Drawer::draw(&mut t, state).unwrap();
    t
}

fn screen(state: &State) -> String {
    draw(state, 120, 40).backend().to_string()
}

fn on(tab: Tab) -> State {
    let mut s = common::state();
    s.tab = tab;
    s
}

#[test]
fn runs_tab_empty() {
    insta::assert_snapshot!(screen(&on(Tab::Runs)));
}

#[test]
fn runs_tab_loading() {
    let mut s = on(Tab::Runs);
    s.runs.loaded = false;
    let text = screen(&s);
    assert!(text.contains("Loading runs…"));
}

#[test]
fn models_tab_empty() {
    let mut s = on(Tab::Models);
    s.models.loaded = true;
    insta::assert_snapshot!(screen(&s));
}

#[test]
fn gpus_tab_without_a_driver() {
    let mut s = on(Tab::Gpus);
    s.gpu = GpuProbe::Absent("no NVIDIA driver (libnvidia-ml.so.1 could not be loaded)".into());
    insta::assert_snapshot!(screen(&s));
}

#[test]
fn bench_tab_empty() {
    insta::assert_snapshot!(screen(&on(Tab::Bench)));
}

#[test]
fn help_overlay() {
    let mut s = on(Tab::Runs);
    s.help = true;
    insta::assert_snapshot!(screen(&s));
}

#[test]
fn runs_tab_with_runs_and_status_colours() {
    let mut s = on(Tab::Runs);
    s.runs.set_records(common::some_records(5));
    s.runs.cursor = 1;
    let term = draw(&s, 120, 40);
    insta::assert_snapshot!(term.backend().to_string());
    let buf = term.backend().buffer();
    assert_eq!(fg_of(buf, "failed (1)"), s.theme.color(Role::Bad));
    assert_eq!(fg_of(buf, "finished"), s.theme.color(Role::Good));
    assert_eq!(fg_of(buf, "crashed"), s.theme.color(Role::Bad));
    assert_eq!(fg_of(buf, "killed"), s.theme.color(Role::Warn));
    // The selected row carries the selection background.
    let (x, y) = find(buf, "resnet50-trial-001").unwrap();
    assert_eq!(buf[(x, y)].bg, s.theme.color(Role::Selection));
}

#[test]
fn only_visible_rows_are_built_and_selection_stays_in_view() {
    let mut s = on(Tab::Runs);
    s.runs.set_records(common::some_records(10_000));
    for _ in 0..3 {
        update(&mut s, Msg::Key(KeyChord::parse("end").unwrap()));
    }
    let term = draw(&s, 120, 40);
    let text = term.backend().to_string();
    assert!(
        text.contains("resnet50-trial-9999"),
        "the last run is shown after `end`"
    );
    assert!(text.contains("Runs (10000)"));
}

#[test]
fn no_color_uses_reverse_video_for_selection() {
    let mut s = on(Tab::Runs);
    s.theme = Theme::load("default-dark", ColorMode::NoColor, None).0;
    s.runs.set_records(common::some_records(3));
    let term = draw(&s, 120, 40);
    let buf = term.backend().buffer();
    let (x, y) = find(buf, "resnet50-trial-000").unwrap();
    assert!(
        buf[(x, y)]
            .modifier
            .contains(ratatui::style::Modifier::REVERSED)
    );
    assert_eq!(fg_of(buf, "failed (1)"), ratatui::style::Color::Reset);
}

#[test]
fn config_notice_replaces_the_hints_until_a_key() {
    let mut s = on(Tab::Runs);
    s.notices = vec![Diagnostic {
        path: "/home/ana/.config/gantry/config.toml".into(),
        line: Some(3),
        message: "unknown field `thme`; using the built-in config".into(),
    }];
    let text = screen(&s);
    let last = text.lines().nth(39).unwrap();
    assert!(
        last.contains("config.toml:3: unknown field `thme`"),
        "{last}"
    );
    update(&mut s, Msg::Key(KeyChord::parse("x").unwrap()));
    let last = screen(&s).lines().nth(39).unwrap().to_string();
    assert!(last.contains("? help") && last.contains("q quit"), "{last}");
}

#[test]
fn small_terminals_never_panic() {
    let mut s = on(Tab::Runs);
    s.runs.set_records(common::some_records(30));
    s.help = true;
    for tab in Tab::ALL {
        s.tab = tab;
        for w in [1u16, 20, 59, 60, 61, 80, 200] {
            for h in [1u16, 5, 14, 15, 16, 24] {
                let text = draw(&s, w, h).backend().to_string();
                if w < 60 || h < 15 {
                    assert!(
                        w < 20 || h < 2 || text.contains("too small"),
                        "{w}x{h}:\n{text}"
                    );
                }
            }
        }
    }
    insta::assert_snapshot!(draw(&s, 50, 12).backend().to_string());
}

#[test]
fn every_theme_renders() {
    for name in ["default-dark", "light", "high-contrast"] {
        let mut s = on(Tab::Runs);
        s.theme = Theme::load(name, ColorMode::Ansi256, None).0;
        s.runs.set_records(common::some_records(3));
        let term = draw(&s, 120, 40);
        assert_eq!(
            fg_of(term.backend().buffer(), "finished"),
            s.theme.color(Role::Good),
            "{name}"
        );
    }
    let _ = Config::defaults();
}

fn find(buf: &Buffer, text: &str) -> Option<(u16, u16)> {
    let area = buf.area;
    for y in 0..area.height {
        let row: String = (0..area.width).map(|x| buf[(x, y)].symbol()).collect();
        if let Some(i) = row.find(text) {
            // Columns, not bytes: count the chars before the match.
            let x = row[..i].chars().count() as u16;
            return Some((x, y));
        }
    }
    None
}

fn fg_of(buf: &Buffer, text: &str) -> ratatui::style::Color {
    let (x, y) = find(buf, text).unwrap_or_else(|| panic!("`{text}` not on screen"));
    buf[(x, y)].fg
}
