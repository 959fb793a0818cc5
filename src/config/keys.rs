//! gantry's own key notation (`ctrl-c`, `shift-tab`, `f5`, `space`), independent of any terminal
//! library, so that user configs never break when the terminal backend changes.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyCode {
    Char(char),
    Enter,
    Esc,
    Tab,
    BackTab,
    Backspace,
    Delete,
    Insert,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
    F(u8),
}

/// A key with its modifiers. Shift is folded into the key where the key carries it (`G`, `?`,
/// `shift-tab` is BackTab), so one chord has one spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyChord {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
    pub shift: bool,
}

impl KeyChord {
    pub fn plain(code: KeyCode) -> Self {
        KeyChord {
            code,
            ctrl: false,
            alt: false,
            shift: false,
        }
    }

    /// The canonical form: shift on a character or on Tab is carried by the key itself.
    pub fn normalized(mut self) -> Self {
        match self.code {
            KeyCode::Char(c) if self.shift => {
                self.code = KeyCode::Char(c.to_ascii_uppercase());
                self.shift = false;
            }
            KeyCode::Tab if self.shift => {
                self.code = KeyCode::BackTab;
                self.shift = false;
            }
            KeyCode::BackTab => self.shift = false,
            _ => {}
        }
        if let KeyCode::Char(c) = self.code
            && self.ctrl
        {
            // Terminals cannot tell ctrl-a from ctrl-A.
            self.code = KeyCode::Char(c.to_ascii_lowercase());
        }
        self
    }

    /// Parse our notation: `q`, `G`, `?`, `ctrl-c`, `alt-enter`, `shift-tab`, `f5`, `space`, `-`.
    pub fn parse(s: &str) -> Result<KeyChord, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty key".into());
        }
        let mut chord = KeyChord::plain(KeyCode::Esc);
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            let (m, len) = if lower.starts_with("ctrl-") && rest.len() > 5 {
                ("ctrl", 5)
            } else if lower.starts_with("alt-") && rest.len() > 4 {
                ("alt", 4)
            } else if lower.starts_with("shift-") && rest.len() > 6 {
                ("shift", 6)
            } else {
                break;
            };
            match m {
                "ctrl" => chord.ctrl = true,
                "alt" => chord.alt = true,
                _ => chord.shift = true,
            }
            rest = &rest[len..];
        }
        chord.code = parse_code(rest).ok_or_else(|| {
            format!(
                "unknown key `{rest}` in `{s}` (use a character, or one of: enter esc tab \
                 backspace delete insert up down left right home end pageup pagedown space f1..f12, \
                 with ctrl-/alt-/shift- before it)"
            )
        })?;
        Ok(chord.normalized())
    }
}

fn parse_code(s: &str) -> Option<KeyCode> {
    let mut chars = s.chars();
    if let (Some(c), None) = (chars.next(), chars.clone().next()) {
        return Some(KeyCode::Char(c));
    }
    let lower = s.to_ascii_lowercase();
    Some(match lower.as_str() {
        "enter" | "return" => KeyCode::Enter,
        "esc" | "escape" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "backtab" => KeyCode::BackTab,
        "backspace" => KeyCode::Backspace,
        "delete" | "del" => KeyCode::Delete,
        "insert" | "ins" => KeyCode::Insert,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "pageup" | "pgup" => KeyCode::PageUp,
        "pagedown" | "pgdn" => KeyCode::PageDown,
        "space" => KeyCode::Char(' '),
        "minus" => KeyCode::Char('-'),
        f if f.starts_with('f') => match f[1..].parse::<u8>() {
            Ok(n @ 1..=24) => KeyCode::F(n),
            _ => return None,
        },
        _ => return None,
    })
}

impl fmt::Display for KeyChord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        if self.shift {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "f{n}"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::PageUp => f.write_str("pageup"),
            KeyCode::PageDown => f.write_str("pagedown"),
            other => write!(f, "{}", format!("{other:?}").to_ascii_lowercase()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_our_notation() {
        for (text, shown) in [
            ("q", "q"),
            ("ctrl-c", "ctrl-c"),
            ("Ctrl-C", "ctrl-c"),
            ("shift-tab", "shift-tab"),
            ("shift-g", "G"),
            ("G", "G"),
            ("?", "?"),
            ("-", "-"),
            ("ctrl--", "ctrl--"),
            ("space", "space"),
            ("f5", "f5"),
            ("alt-enter", "alt-enter"),
            ("pgdn", "pagedown"),
        ] {
            let k = KeyChord::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(k.to_string(), shown, "{text}");
            assert_eq!(KeyChord::parse(shown).unwrap(), k, "round trip of {text}");
        }
    }

    #[test]
    fn rejects_unknown_keys_with_the_list() {
        let e = KeyChord::parse("ctrl-banana").unwrap_err();
        assert!(
            e.contains("unknown key `banana`") && e.contains("pageup"),
            "{e}"
        );
        assert!(KeyChord::parse("f99").is_err());
        assert!(KeyChord::parse("").is_err());
    }
}
