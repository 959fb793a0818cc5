use super::state::Tab;

/// What a key does. Keys map to actions through the keymap; nothing matches raw keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
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
}

/// One entry of the action registry: the config name, what the help overlay says, and the short
/// label for the footer hints (None: not shown there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionInfo {
    pub action: Action,
    pub name: String,
    pub description: String,
    pub hint: Option<&'static str>,
}

fn info(action: Action, name: &str, description: &str, hint: Option<&'static str>) -> ActionInfo {
    ActionInfo {
        action,
        name: name.into(),
        description: description.into(),
        hint,
    }
}

/// The registry of every action, in help-overlay order. Tabs are added from `Tab::ALL`, so a new
/// tab is registered in one place.
pub fn actions() -> Vec<ActionInfo> {
    let mut v = vec![
        info(Action::Help, "help", "Show or hide this help", Some("help")),
        info(Action::Quit, "quit", "Quit gantry", Some("quit")),
        info(Action::Close, "close", "Close the overlay", None),
        info(Action::NextTab, "next_tab", "Next tab", Some("next tab")),
        info(Action::PrevTab, "prev_tab", "Previous tab", None),
    ];
    for tab in Tab::ALL {
        v.push(info(
            Action::Tab(tab),
            &format!("tab_{}", tab.key_name()),
            &format!("Go to the {} tab", tab.title()),
            None,
        ));
    }
    v.extend([
        info(Action::Up, "up", "Move the selection up", None),
        info(Action::Down, "down", "Move the selection down", None),
        info(Action::PageUp, "page_up", "Move up one page", None),
        info(Action::PageDown, "page_down", "Move down one page", None),
        info(Action::Top, "top", "Go to the first row", None),
        info(Action::Bottom, "bottom", "Go to the last row", None),
    ]);
    v
}
