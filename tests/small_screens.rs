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

/// A run whose command and params are longer than the overview's columns.
fn long_run() -> gantry::domain::RunRecord {
    let mut rec = common::some_records(1).remove(0);
    rec.run.command = "python train.py --lr 0.2 --batch-size 256 --epochs 90 --warmup 5"
        .split(' ')
        .map(String::from)
        .collect();
    rec.params = [
        ("optimizer", "sgd"),
        ("lr", "0.2"),
        ("batch_size", "256"),
        ("weight_decay", "0.0001"),
        ("label_smoothing", "0.1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    rec
}

fn detail_of(rec: gantry::domain::RunRecord, w: u16, h: u16) -> String {
    let mut s = sized(w, h);
    let id = rec.run.id.clone();
    s.runs.set_records(vec![rec.clone()]);
    s.runs.set_whole(vec![rec]);
    update(&mut s, key("enter"));
    assert_eq!(s.runs.detail.as_deref(), Some(id.as_str()));
    screen(&s, w, h)
}

#[test]
fn the_run_overview_clips_each_cell_and_keeps_a_gap() {
    for (w, h) in [(100, 30), (80, 24), (60, 15)] {
        let text = detail_of(long_run(), w, h);
        let command = text
            .lines()
            .find(|l| l.contains("command"))
            .unwrap_or_else(|| panic!("{text}"));
        // Cut with an ellipsis, then at least two blanks before the next column.
        assert!(command.contains("…  "), "{w}×{h}: {command}");
        assert!(!text.contains("batcoptimizer"), "{text}");
        if (w, h) != (100, 30) {
            insta::assert_snapshot!(format!("run_detail_{w}x{h}"), text);
        }
    }
}

#[test]
fn the_runs_table_at_80x24_and_60x15() {
    for (w, h) in [(80, 24), (60, 15)] {
        let mut s = sized(w, h);
        s.runs.set_records(common::some_records(12));
        insta::assert_snapshot!(format!("runs_table_{w}x{h}"), screen(&s, w, h));
    }
}
