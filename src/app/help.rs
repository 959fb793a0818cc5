//! The help overlay's content and layout, generated from the keymap: every action by section,
//! its keys and what it does; two columns where they fit and are needed; scrolled by the moving
//! keys where even that is too tall (80×24 over ssh). `update` clamps the scroll with the layout
//! for the screen's size (`State::size`), the screen draws the one for its body.

use super::{Section, State};

/// A line of the overlay's columns.
#[derive(Debug, Clone, PartialEq)]
pub enum HelpLine {
    Title(&'static str),
    Key { keys: String, what: String },
    Blank,
}

/// Where help goes further: the keymap and the commands.
pub const FOOTER: [&str; 4] = [
    "Keys are set in [keymap] of $XDG_CONFIG_HOME/gantry/config.toml",
    "From a shell: gantry run, import, export, model, gpu, bench, serve, doctor",
    "MFU: declare flops_per_step; filter energy>2kWh mfu<30% alert:stall",
    "Before a run: gantry run --preflight. Charts mark alerts; e jumps to each",
];

/// The overlay laid out in the body of a screen of `state.size`.
#[derive(Debug, Clone, PartialEq)]
pub struct HelpLayout {
    /// One column, or two of whole sections.
    pub cols: Vec<Vec<HelpLine>>,
    /// The width of the keys' column.
    pub key_col: usize,
    /// The overlay's size, borders included.
    pub width: u16,
    pub height: u16,
    /// Whether the footer is shown (it needs the room).
    pub footer: bool,
    /// Rows of the columns shown at once, and the most they can be scrolled.
    pub visible: usize,
    pub max_scroll: usize,
}

fn keys_text(keys: &[crate::config::KeyChord]) -> String {
    keys.iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each section's lines: its title, then a line an action.
fn blocks(state: &State) -> Vec<Vec<HelpLine>> {
    let mut blocks: Vec<Vec<HelpLine>> = Vec::new();
    let mut current: Option<Section> = None;
    for (info, keys) in state.keymap.entries() {
        if current != Some(info.section) {
            current = Some(info.section);
            blocks.push(vec![HelpLine::Title(info.section.title())]);
        }
        if let Some(b) = blocks.last_mut() {
            b.push(HelpLine::Key {
                keys: keys_text(keys),
                what: info.description.clone(),
            });
        }
    }
    blocks
}

/// The overlay in a body of `body_w` by `body_h` (the screen less its tab bar and status line).
pub fn layout(state: &State, body_w: u16, body_h: u16) -> HelpLayout {
    let blocks = blocks(state);
    let key_col = blocks
        .iter()
        .flatten()
        .filter_map(|l| match l {
            HelpLine::Key { keys, .. } => Some(keys.chars().count()),
            _ => None,
        })
        .max()
        .unwrap_or(4)
        .clamp(4, 18);
    let width_of = |l: &HelpLine| match l {
        HelpLine::Title(t) => t.chars().count(),
        HelpLine::Key { what, .. } => key_col + 2 + what.chars().count(),
        HelpLine::Blank => 0,
    };
    let total: usize = blocks.iter().map(|b| b.len() + 1).sum();
    let widest = blocks.iter().flatten().map(width_of).max().unwrap_or(0) as u16;
    let two = total > usize::from(body_h.saturating_sub(4)) && (widest + 3) * 2 + 2 <= body_w;
    // Too narrow for a line: its description wraps in its own column (and keys too long for
    // theirs stand on a line of their own).
    let column_w = usize::from(body_w.saturating_sub(2));
    let (blocks, key_col) = if !two && usize::from(widest) > column_w {
        let key_col = key_col.min(column_w / 4).max(4);
        let wrap_w = column_w.saturating_sub(key_col + 2).max(8);
        let wrapped = blocks
            .into_iter()
            .map(|b| {
                b.into_iter()
                    .flat_map(|l| match l {
                        HelpLine::Key { keys, what } => {
                            let mut out = Vec::new();
                            let mut keys = Some(keys);
                            if keys.as_ref().is_some_and(|k| k.chars().count() > key_col) {
                                out.push(HelpLine::Key {
                                    keys: keys.take().unwrap_or_default(),
                                    what: String::new(),
                                });
                            }
                            for part in textwrap::wrap(&what, wrap_w) {
                                out.push(HelpLine::Key {
                                    keys: keys.take().unwrap_or_default(),
                                    what: part.into_owned(),
                                });
                            }
                            out
                        }
                        other => vec![other],
                    })
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>();
        (wrapped, key_col)
    } else {
        (blocks, key_col)
    };
    let total: usize = blocks.iter().map(|b| b.len() + 1).sum();
    let width_of = |l: &HelpLine| match l {
        HelpLine::Title(t) => t.chars().count(),
        HelpLine::Key { what, .. } => key_col + 2 + what.chars().count(),
        HelpLine::Blank => 0,
    };
    let widest = blocks.iter().flatten().map(width_of).max().unwrap_or(0) as u16;
    // Whole sections split between the columns so each holds about half.
    let mut cols: Vec<Vec<HelpLine>> = vec![Vec::new(); if two { 2 } else { 1 }];
    let mut used = 0;
    for b in blocks {
        let side = usize::from(two && used >= total / 2);
        used += b.len() + 1;
        if !cols[side].is_empty() {
            cols[side].push(HelpLine::Blank);
        }
        cols[side].extend(b);
    }
    let footer_w = FOOTER.iter().map(|f| f.chars().count()).max().unwrap_or(0) as u16;
    let content = cols.iter().map(Vec::len).max().unwrap_or(0);
    let inner_w = if two {
        (widest + 3) * 2 + 2
    } else {
        widest + 2
    };
    let width = (inner_w.max(footer_w) + 2).min(body_w);
    // The footer where the overlay has room for it, and for the columns beside it.
    let footer = body_h >= 20 && width >= footer_w + 2;
    // Borders, and a blank line then the footer.
    let chrome = 2 + if footer { FOOTER.len() + 1 } else { 0 };
    let height = ((content + chrome) as u16).min(body_h);
    let visible = usize::from(height).saturating_sub(chrome).max(1);
    HelpLayout {
        cols,
        key_col,
        width,
        height,
        footer,
        visible,
        max_scroll: content.saturating_sub(visible),
    }
}
