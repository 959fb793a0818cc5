//! The workbench at the sizes SSH sessions open at: 80×24, and 60×15. Help scrolls to its last
//! key; snapshots of each screen there.

mod common;

use gantry::app::{Msg, State, Tab, update};
use gantry::config::KeyChord;

use common::screen;

fn key(s: &str) -> Msg {
    Msg::Key(KeyChord::parse(s).unwrap())
}

fn sized(w: u16, h: u16) -> State {
    let mut s = common::state();
    s.size = (w, h);
    update(&mut s, Msg::Resize(w, h));
    s
}

/// Every action's description, in keymap order: what help must show, scrolled or not.
fn descriptions(s: &State) -> Vec<String> {
    s.keymap
        .entries()
        .iter()
        .map(|(i, _)| i.description.clone())
        .collect()
}

/// Help opened at `w`×`h`, then scrolled down a line at a time to its end: every description is
/// seen on the way, and the last screen is returned.
fn help_scrolled_to_the_end(w: u16, h: u16) -> String {
    let mut s = sized(w, h);
    update(&mut s, key("?"));
    assert!(s.help);
    let mut seen = String::new();
    let mut last = String::new();
    for _ in 0..400 {
        let now = screen(&s, w, h);
        seen.push_str(&now);
        if now == last {
            break;
        }
        last = now;
        update(&mut s, key("j"));
    }
    for d in descriptions(&s) {
        // A description cut at the screen's edge still shows its start.
        let start: String = d.chars().take(usize::from(w) - 30).collect();
        assert!(seen.contains(&start), "{w}×{h}: `{d}` never shown in help");
    }
    // Back to the top, and the end at once.
    update(&mut s, key("g"));
    assert_eq!(s.help_scroll, 0);
    update(&mut s, key("G"));
    assert_eq!(screen(&s, w, h), last, "G goes to the end");
    update(&mut s, key("pageup"));
    assert!(s.help_scroll > 0);
    // Esc closes it; the tab's keys work again.
    update(&mut s, key("esc"));
    assert!(!s.help);
    last
}

#[test]
fn help_scrolls_to_every_key_at_80x24() {
    let end = help_scrolled_to_the_end(80, 24);
    assert!(end.contains(" · j/k pagedown/pageup scroll"), "{end}");
    insta::assert_snapshot!("help_80x24_end", end);
}

#[test]
fn help_scrolls_to_every_key_at_60x15() {
    let end = help_scrolled_to_the_end(60, 15);
    insta::assert_snapshot!("help_60x15_end", end);
}

#[test]
fn help_keys_do_not_move_the_tab_beneath() {
    let mut s = sized(80, 24);
    s.runs.set_records(common::some_records(5));
    update(&mut s, key("?"));
    update(&mut s, key("j"));
    update(&mut s, key("j"));
    assert_eq!(s.runs.cursor, 0);
    assert_eq!(s.help_scroll, 2);
    // Opened again, it starts at the top.
    update(&mut s, key("?"));
    update(&mut s, key("?"));
    assert_eq!(s.help_scroll, 0);
    let _ = Tab::Runs;
}
