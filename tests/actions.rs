//! Every action is bound to a key by default, shown in the help overlay, and named in
//! docs/configuration.md: none can be hidden or forgotten.

mod common;

use gantry::app::{Drawer, actions};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const CONFIG_DOC: &str = include_str!("../docs/configuration.md");

#[test]
fn every_action_has_a_key_a_help_line_and_a_line_in_the_docs() {
    let mut s = common::state();
    s.help = true;
    let mut t = Terminal::new(TestBackend::new(200, 120)).unwrap();
    Drawer::draw(&mut t, &s).unwrap();
    let help = t.backend().to_string();
    let mut missing = Vec::new();
    for a in actions() {
        if s.keymap.keys_of(a.action).is_empty() {
            missing.push(format!("`{}` has no default key", a.name));
        }
        if !help.contains(&a.description) {
            missing.push(format!(
                "`{}` ({}) is not in the help overlay",
                a.name, a.description
            ));
        }
        if !CONFIG_DOC.contains(&format!("`{}`", a.name)) {
            missing.push(format!(
                "`{}` is not named in docs/configuration.md",
                a.name
            ));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
