//! update() unit tests: keys, clicks and messages against State, with no terminal.

mod common;

use gantry::app::{Action, Effect, GpuProbe, Msg, Tab, update};
use gantry::config::KeyChord;

fn key(s: &str) -> Msg {
    Msg::Key(KeyChord::parse(s).unwrap())
}

#[test]
fn number_keys_tab_and_shift_tab_switch_tabs() {
    let mut s = common::state();
    for (k, tab) in [
        ("2", Tab::Models),
        ("3", Tab::Gpus),
        ("4", Tab::Bench),
        ("1", Tab::Runs),
    ] {
        let out = update(&mut s, key(k));
        assert_eq!(s.tab, tab);
        assert!(out.redraw);
    }
    update(&mut s, key("tab"));
    assert_eq!(s.tab, Tab::Models);
    update(&mut s, key("shift-tab"));
    update(&mut s, key("shift-tab"));
    assert_eq!(s.tab, Tab::Bench, "shift-tab wraps around");
    update(&mut s, key("tab"));
    assert_eq!(s.tab, Tab::Runs, "tab wraps around");
}

#[test]
fn pressing_the_current_tab_changes_nothing_and_draws_nothing() {
    let mut s = common::state();
    let out = update(&mut s, key("1"));
    assert!(!out.redraw);
    assert!(out.effects.is_empty());
}

#[test]
fn q_and_ctrl_c_quit() {
    for k in ["q", "ctrl-c"] {
        let mut s = common::state();
        update(&mut s, key(k));
        assert!(s.quit, "{k}");
    }
    let mut s = common::state();
    update(&mut s, Msg::Terminate("SIGTERM"));
    assert!(s.quit);
}

#[test]
fn help_opens_closes_and_tab_switch_closes_it() {
    let mut s = common::state();
    update(&mut s, key("?"));
    assert!(s.help);
    update(&mut s, key("esc"));
    assert!(!s.help);
    update(&mut s, key("?"));
    update(&mut s, key("?"));
    assert!(!s.help, "? toggles");
    update(&mut s, key("?"));
    update(&mut s, key("3"));
    assert!(!s.help && s.tab == Tab::Gpus);
}

#[test]
fn clicking_a_tab_title_switches_to_it() {
    let mut s = common::state();
    let bar = Tab::bar();
    let (tab, _, cols) = &bar[2];
    update(&mut s, Msg::Click(cols.start + 1, 0));
    assert_eq!(s.tab, *tab);
    update(&mut s, Msg::Click(cols.start + 1, 5));
    assert_eq!(s.tab, *tab, "a click below the bar is not a tab click");
    update(&mut s, Msg::Click(0, 0));
    assert_eq!(s.tab, *tab, "the gantry label is not a tab");
}

#[test]
fn selection_moves_within_bounds_and_by_pages() {
    let mut s = common::state();
    update(&mut s, key("down"));
    assert_eq!(s.runs.cursor, 0, "no rows: nothing moves");
    update(&mut s, Msg::RunsLoaded(Ok(common::some_records(100))));
    update(&mut s, key("j"));
    update(&mut s, key("down"));
    assert_eq!(s.runs.cursor, 2);
    update(&mut s, key("pagedown"));
    assert_eq!(s.runs.cursor, 2 + s.page_rows());
    update(&mut s, key("G"));
    assert_eq!(s.runs.cursor, 99);
    update(&mut s, key("down"));
    assert_eq!(s.runs.cursor, 99);
    update(&mut s, Msg::Scroll(-1));
    assert_eq!(s.runs.cursor, 98, "the wheel moves the table cursor");
    update(&mut s, key("g"));
    assert_eq!(s.runs.cursor, 0);
    update(&mut s, key("up"));
    assert_eq!(s.runs.cursor, 0);
    // Fewer rows after a reload: the selection is clamped.
    update(&mut s, key("G"));
    update(&mut s, Msg::RunsLoaded(Ok(common::some_records(10))));
    assert_eq!(s.runs.cursor, 9);
}

#[test]
fn ticks_redraw_only_when_what_is_shown_changes() {
    let mut s = common::state();
    let same = update(
        &mut s,
        Msg::Tick {
            now_ms: common::NOW_MS + 1000,
            clock: "12:00".into(),
        },
    );
    assert!(!same.redraw, "idle: same clock, no running run");
    let next = update(
        &mut s,
        Msg::Tick {
            now_ms: common::NOW_MS + 60_000,
            clock: "12:01".into(),
        },
    );
    assert!(next.redraw);
    update(&mut s, Msg::RunsLoaded(Ok(common::some_records(1)))); // one running run
    let live = update(
        &mut s,
        Msg::Tick {
            now_ms: common::NOW_MS + 61_000,
            clock: "12:01".into(),
        },
    );
    assert!(live.redraw, "a running run's duration moves");
}

#[test]
fn worker_results_land_in_state() {
    let mut s = common::state();
    update(&mut s, Msg::GpuProbed(GpuProbe::Absent("no driver".into())));
    assert_eq!(s.gpu, GpuProbe::Absent("no driver".into()));
    update(&mut s, Msg::RunsLoaded(Err("disk on fire".into())));
    assert_eq!(s.runs.error.as_deref(), Some("disk on fire"));
    let out = update(&mut s, Msg::Resize(70, 20));
    assert_eq!(s.size, (70, 20));
    assert!(
        out.redraw
            && out
                .effects
                .iter()
                .all(|e| !matches!(e, Effect::LoadRuns(_)))
    );
}

#[test]
fn unbound_keys_do_nothing() {
    let mut s = common::state();
    let out = update(&mut s, key("z"));
    assert!(!out.redraw && !s.quit && s.tab == Tab::Runs);
    assert_eq!(s.keymap.action(KeyChord::parse("z").unwrap()), None);
    assert_eq!(
        s.keymap.action(KeyChord::parse("?").unwrap()),
        Some(Action::Help)
    );
}
