//! Themes map meanings (roles) to colours. Built-in themes are embedded from themes/*.toml; a user
//! theme in `$XDG_CONFIG_HOME/gantry/themes/NAME.toml` patches default-dark. Colours are reduced to
//! the terminal's ability: truecolor when COLORTERM says so, else the nearest of 256, none under
//! NO_COLOR.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

use super::Diagnostic;

pub const BUILT_IN: [(&str, &str); 3] = [
    (
        "default-dark",
        include_str!("../../themes/default-dark.toml"),
    ),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Text,
    Muted,
    Accent,
    Good,
    Warn,
    Bad,
    Border,
    Selection,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Text,
        Role::Muted,
        Role::Accent,
        Role::Good,
        Role::Warn,
        Role::Bad,
        Role::Border,
        Role::Selection,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Role::Text => "text",
            Role::Muted => "muted",
            Role::Accent => "accent",
            Role::Good => "good",
            Role::Warn => "warn",
            Role::Bad => "bad",
            Role::Border => "border",
            Role::Selection => "selection",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    TrueColor,
    Ansi256,
    NoColor,
}

impl ColorMode {
    /// NO_COLOR (any non-empty value) wins; COLORTERM=truecolor|24bit gives truecolor.
    pub fn detect(no_color: Option<&str>, colorterm: Option<&str>) -> ColorMode {
        if no_color.is_some_and(|v| !v.is_empty()) {
            return ColorMode::NoColor;
        }
        match colorterm.map(str::to_ascii_lowercase).as_deref() {
            Some("truecolor") | Some("24bit") => ColorMode::TrueColor,
            _ => ColorMode::Ansi256,
        }
    }
    pub fn from_env() -> ColorMode {
        let nc = std::env::var("NO_COLOR").ok();
        let ct = std::env::var("COLORTERM").ok();
        Self::detect(nc.as_deref(), ct.as_deref())
    }
    fn reduce(self, c: Color) -> Color {
        match (self, c) {
            (ColorMode::NoColor, _) => Color::Reset,
            (ColorMode::Ansi256, Color::Rgb(r, g, b)) => {
                Color::Indexed(ansi_colours::ansi256_from_rgb((r, g, b)))
            }
            (_, c) => c,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Theme {
    pub name: String,
    pub mode: ColorMode,
    roles: BTreeMap<Role, Color>,
    series: Vec<Color>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    roles: BTreeMap<String, toml::Spanned<ColorList>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ColorList {
    One(String),
    Many(Vec<String>),
}

impl Theme {
    /// Load theme `name` (a built-in name, a user theme name, or a path to a .toml file).
    pub fn load(name: &str, mode: ColorMode, user_dir: Option<&Path>) -> (Theme, Vec<Diagnostic>) {
        let mut theme = Theme {
            name: "default-dark".into(),
            mode,
            roles: BTreeMap::new(),
            series: Vec::new(),
        };
        let base = theme.patch(Path::new("<built-in default-dark>"), BUILT_IN[0].1);
        debug_assert!(base.is_empty(), "{base:?}");
        if name == "default-dark" {
            return (theme, Vec::new());
        }
        if let Some((_, src)) = BUILT_IN.iter().find(|(n, _)| *n == name) {
            theme.patch(Path::new("<built-in>"), src);
            theme.name = name.into();
            return (theme, Vec::new());
        }
        let path = if name.ends_with(".toml") {
            PathBuf::from(name)
        } else if let Some(dir) = user_dir {
            dir.join("themes").join(format!("{name}.toml"))
        } else {
            PathBuf::from(format!("{name}.toml"))
        };
        match std::fs::read_to_string(&path) {
            Ok(src) => {
                let d = theme.patch(&path, &src);
                theme.name = name.into();
                (theme, d)
            }
            Err(e) => {
                let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
                let d = Diagnostic {
                    path,
                    line: None,
                    message: format!(
                        "theme `{name}` cannot be read ({e}); built-in themes are {}; using default-dark",
                        names.join(", ")
                    ),
                };
                (theme, vec![d])
            }
        }
    }

    fn patch(&mut self, path: &Path, src: &str) -> Vec<Diagnostic> {
        let file: ThemeFile = match toml::from_str(src) {
            Ok(f) => f,
            Err(e) => {
                let msg = format!("{}; using default-dark", e.message());
                return vec![Diagnostic::at(path, src, e.span(), &msg)];
            }
        };
        let mut diags = Vec::new();
        for (key, val) in file.roles {
            let span = Some(val.span());
            let bad = |msg: String| Diagnostic::at(path, src, span.clone(), &msg);
            match (key.as_str(), val.get_ref()) {
                ("series", ColorList::Many(list)) => {
                    match list
                        .iter()
                        .map(|c| parse_color(c))
                        .collect::<Result<Vec<_>, _>>()
                    {
                        Ok(v) if !v.is_empty() => self.series = v,
                        Ok(_) => diags.push(bad("series is empty; keeping the default".into())),
                        Err(e) => diags.push(bad(format!("series: {e}; keeping the default"))),
                    }
                }
                ("series", ColorList::One(_)) => {
                    diags.push(bad("series must be a list of colours".into()))
                }
                (k, ColorList::One(c)) => match Role::ALL.iter().find(|r| r.name() == k) {
                    Some(role) => match parse_color(c) {
                        Ok(col) => {
                            self.roles.insert(*role, col);
                        }
                        Err(e) => diags.push(bad(format!("{k}: {e}; keeping the default"))),
                    },
                    None => diags.push(bad(format!(
                        "unknown role `{k}` (roles: {}, series)",
                        Role::ALL.map(Role::name).join(", ")
                    ))),
                },
                (k, ColorList::Many(_)) => diags.push(bad(format!("{k} takes one colour"))),
            }
        }
        diags
    }

    /// The colour of a role, reduced to the terminal's colour mode.
    pub fn color(&self, role: Role) -> Color {
        self.mode
            .reduce(self.roles.get(&role).copied().unwrap_or(Color::Reset))
    }

    /// Foreground style of a role.
    pub fn fg(&self, role: Role) -> Style {
        Style::new().fg(self.color(role))
    }

    /// The highlighted row: a background colour, or reverse video when there is no colour.
    pub fn selection(&self) -> Style {
        match self.mode {
            ColorMode::NoColor => Style::new().add_modifier(Modifier::REVERSED),
            _ => Style::new().bg(self.color(Role::Selection)),
        }
    }

    /// The stable colour of the n-th run in overlays.
    pub fn series(&self, n: usize) -> Color {
        match self.series.len() {
            0 => Color::Reset,
            len => self.mode.reduce(self.series[n % len]),
        }
    }
}

fn parse_color(s: &str) -> Result<Color, String> {
    Color::from_str(s)
        .map_err(|_| format!("`{s}` is not a colour (use \"#rrggbb\", a name or 0-255)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_themes_are_complete_and_valid() {
        for (name, src) in BUILT_IN {
            let mut t = Theme::load("default-dark", ColorMode::TrueColor, None).0;
            let d = t.patch(Path::new(name), src);
            assert!(d.is_empty(), "{name}: {d:?}");
            let file: ThemeFile = toml::from_str(src).unwrap();
            for role in Role::ALL {
                assert!(
                    file.roles.contains_key(role.name()),
                    "{name} lacks {}",
                    role.name()
                );
            }
            assert!(file.roles.contains_key("series"), "{name} lacks series");
        }
    }

    #[test]
    fn colour_modes() {
        assert_eq!(
            ColorMode::detect(Some("1"), Some("truecolor")),
            ColorMode::NoColor
        );
        assert_eq!(
            ColorMode::detect(Some(""), Some("24bit")),
            ColorMode::TrueColor
        );
        assert_eq!(ColorMode::detect(None, None), ColorMode::Ansi256);
        let t = Theme::load("high-contrast", ColorMode::TrueColor, None).0;
        assert_eq!(t.color(Role::Good), Color::Rgb(0, 255, 0));
        let t = Theme::load("high-contrast", ColorMode::Ansi256, None).0;
        assert_eq!(t.color(Role::Good), Color::Indexed(46));
        let t = Theme::load("high-contrast", ColorMode::NoColor, None).0;
        assert_eq!(t.color(Role::Good), Color::Reset);
        assert!(t.selection().add_modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn user_theme_patches_and_reports_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("themes")).unwrap();
        std::fs::write(
            dir.path().join("themes/mine.toml"),
            "[roles]\ngood = \"#010203\"\nbad = \"not-a-colour\"\nshiny = \"red\"\n",
        )
        .unwrap();
        let (t, d) = Theme::load("mine", ColorMode::TrueColor, Some(dir.path()));
        assert_eq!(t.color(Role::Good), Color::Rgb(1, 2, 3));
        assert_eq!(
            t.color(Role::Bad),
            Color::Rgb(0xe0, 0x6c, 0x75),
            "default kept"
        );
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!((d[0].line, d[1].line), (Some(3), Some(4)));
        let (t, d) = Theme::load("nope", ColorMode::TrueColor, Some(dir.path()));
        assert_eq!(t.name, "default-dark");
        assert!(
            d[0].message
                .contains("built-in themes are default-dark, light")
        );
    }
}
