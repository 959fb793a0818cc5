//! config.toml, the keymap's key lists and theme files: defaults embedded in the binary, the user's
//! file patching them. A broken file yields a `Diagnostic` naming file:line, and the defaults stay.

pub mod keys;
pub mod theme;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use keys::{KeyChord, KeyCode};
pub use theme::{ColorMode, Role, Theme};

const DEFAULT_TOML: &str = include_str!("default.toml");
const DEFAULT_PATH: &str = "<built-in config>";

/// Something wrong in a user's file; gantry carries on with the defaults for that part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl Diagnostic {
    pub(crate) fn at(
        path: &Path,
        src: &str,
        span: Option<std::ops::Range<usize>>,
        msg: &str,
    ) -> Self {
        Diagnostic {
            path: path.to_path_buf(),
            line: span.map(|s| line_of(src, s.start)),
            message: msg.trim().to_string(),
        }
    }
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The keys bound to one action, and where that binding came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub keys: Vec<KeyChord>,
    pub origin: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub theme: String,
    pub refresh_ms: u64,
    /// action name -> keys, as configured; app::keymap checks the names.
    pub keymap: BTreeMap<String, Binding>,
    /// Which way metrics improve, set by hand: `[metrics] "val/bleu" = "higher"`.
    pub metrics: BTreeMap<String, crate::domain::Direction>,
    /// This box's name for runs, benchmarks and models, where the system's clashes with another
    /// box's (`GANTRY_HOST` wins over it).
    pub host: Option<String>,
    /// Seconds a running run's heartbeat may be silent before it is shown `lost`.
    pub lost_after_s: u64,
    /// Seconds a running run's heartbeat may be silent before any host takes it for crashed.
    pub crashed_after_s: u64,
    /// Where the GPUs of other boxes are read (`[fleet]`, docs/fleet.md).
    pub fleet: FleetConfig,
    /// What energy and GPU time cost (`[cost]`, docs/efficiency.md).
    pub cost: crate::domain::efficiency::Prices,
    /// What runs are watched for, and where alerts go (`[alerts]`, docs/alerts.md).
    pub alerts: crate::domain::alerts::Rules,
    /// How `gantry run --preflight` judges a GPU (`[preflight]`, docs/preflight.md).
    pub preflight: crate::domain::preflight::Settings,
    /// Where the user's file was looked for.
    pub path: Option<PathBuf>,
}

/// `[fleet]`: the sources of the fleet view and `gantry gpu --fleet`, and when a GPU is free.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// A Prometheus server's URL: `http://prom:9090`.
    pub prometheus: Option<String>,
    /// Bearer token for Prometheus (`GANTRY_FLEET_TOKEN` wins).
    pub prometheus_token: Option<String>,
    /// Basic auth for Prometheus.
    pub prometheus_user: Option<String>,
    pub prometheus_password: Option<String>,
    /// Exporters read directly: `["gpu01:9400", "gpu02:5000"]`.
    #[serde(default)]
    pub scrape: Vec<String>,
    /// Bearer token sent to the scraped exporters (`gantry serve --token`).
    pub scrape_token: Option<String>,
    /// Hosts reached through the user's own `ssh`: `["gpu01", "me@gpu02"]`.
    #[serde(default)]
    pub ssh: Vec<String>,
    /// Extra options for `ssh`: `["-J", "bastion"]`.
    #[serde(default)]
    pub ssh_options: Vec<String>,
    /// The gantry command on the ssh hosts (default `gantry`, also looked for in
    /// `~/.local/bin` and `~/.cargo/bin`).
    pub ssh_gantry: Option<String>,
    /// Seconds each source may take to answer (default 5).
    pub timeout_s: Option<f64>,
    /// Seconds between two reads in the workbench (default 5, at least 1).
    pub refresh_s: Option<f64>,
    /// A GPU is free with at most this much memory in use, MiB (default 1024).
    pub free_mem_used_mib: Option<u64>,
    /// …and at most this utilisation, percent (default 5).
    pub free_util: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    theme: Option<String>,
    host: Option<String>,
    lost_after_s: Option<toml::Spanned<u64>>,
    crashed_after_s: Option<toml::Spanned<u64>>,
    refresh_ms: Option<toml::Spanned<u64>>,
    keymap: Option<BTreeMap<String, toml::Spanned<OneOrMany>>>,
    metrics: Option<BTreeMap<String, toml::Spanned<String>>>,
    fleet: Option<FleetConfig>,
    cost: Option<toml::Spanned<crate::domain::efficiency::Prices>>,
    alerts: Option<crate::domain::alerts::Rules>,
    preflight: Option<toml::Spanned<crate::domain::preflight::Settings>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn list(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// A workspace's own settings, `.gantry/config.toml`: the team store it uses (`store =
/// "postgres://…"`). Unlike the user's config, a bad file is an error, not a warning: falling
/// back to the local store would put runs where the team cannot see them.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceConfig {
    pub store: Option<String>,
}

impl WorkspaceConfig {
    /// Read `path`; a missing file is the empty config.
    pub fn load(path: &Path) -> Result<WorkspaceConfig, Diagnostic> {
        let src = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(Diagnostic {
                    path: path.to_path_buf(),
                    line: None,
                    message: format!("cannot read: {e}"),
                });
            }
        };
        toml::from_str(&src).map_err(|e| Diagnostic::at(path, &src, e.span(), e.message()))
    }
}

/// The user's config directory: `$XDG_CONFIG_HOME/gantry`.
pub fn config_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "gantry").map(|d| d.config_dir().to_path_buf())
}

impl Config {
    /// The embedded defaults alone.
    pub fn defaults() -> Config {
        let mut cfg = Config {
            theme: String::new(),
            refresh_ms: 0,
            keymap: BTreeMap::new(),
            metrics: BTreeMap::new(),
            host: None,
            lost_after_s: 0,
            crashed_after_s: 0,
            fleet: FleetConfig::default(),
            cost: Default::default(),
            alerts: Default::default(),
            preflight: Default::default(),
            path: None,
        };
        let diags = cfg.patch(Path::new(DEFAULT_PATH), DEFAULT_TOML);
        debug_assert!(diags.is_empty(), "built-in config: {diags:?}");
        cfg
    }

    /// Defaults patched by `$XDG_CONFIG_HOME/gantry/config.toml` when it exists.
    pub fn load() -> (Config, Vec<Diagnostic>) {
        match config_dir() {
            Some(dir) => Self::load_from(&dir.join("config.toml")),
            None => (Self::defaults(), Vec::new()),
        }
    }

    /// Defaults patched by the file at `path`; a missing file is no error.
    pub fn load_from(path: &Path) -> (Config, Vec<Diagnostic>) {
        let mut cfg = Self::defaults();
        cfg.path = Some(path.to_path_buf());
        let src = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (cfg, Vec::new()),
            Err(e) => {
                let d = Diagnostic {
                    path: path.to_path_buf(),
                    line: None,
                    message: format!("cannot read: {e}; using the built-in config"),
                };
                return (cfg, vec![d]);
            }
        };
        let diags = cfg.patch(path, &src);
        (cfg, diags)
    }

    /// Apply one file's settings. A file that does not parse changes nothing; a bad value changes
    /// nothing for its own setting.
    fn patch(&mut self, path: &Path, src: &str) -> Vec<Diagnostic> {
        let file: ConfigFile = match toml::from_str(src) {
            Ok(f) => f,
            Err(e) => {
                let msg = format!("{}; using the built-in config", e.message());
                return vec![Diagnostic::at(path, src, e.span(), &msg)];
            }
        };
        let mut diags = Vec::new();
        if let Some(t) = file.theme {
            self.theme = t;
        }
        if let Some(f) = file.fleet {
            self.fleet = f;
        }
        if let Some(a) = file.alerts {
            self.alerts = a;
        }
        if let Some(p) = file.preflight {
            let span = p.span();
            let p = p.into_inner();
            match p.problem() {
                Some(why) => diags.push(Diagnostic::at(path, src, Some(span), &why)),
                None => self.preflight = p,
            }
        }
        if let Some(c) = file.cost {
            let span = c.span();
            let c = c.into_inner();
            let bad = [
                ("price_per_kwh", c.price_per_kwh),
                ("gpu_hour_price", c.gpu_hour_price),
            ]
            .into_iter()
            .find(|(_, v)| v.is_some_and(|v| !v.is_finite() || v < 0.0));
            match bad {
                Some((name, v)) => diags.push(Diagnostic::at(
                    path,
                    src,
                    Some(span),
                    &format!(
                        "[cost] {name} = {} is not a price: give a number of 0 or more",
                        v.unwrap_or_default()
                    ),
                )),
                None => self.cost = c,
            }
        }
        if let Some(h) = file.host.filter(|h| !h.trim().is_empty()) {
            self.host = Some(h.trim().to_string());
        }
        for (given, slot, name) in [
            (file.lost_after_s, &mut self.lost_after_s, "lost_after_s"),
            (
                file.crashed_after_s,
                &mut self.crashed_after_s,
                "crashed_after_s",
            ),
        ] {
            let Some(v) = given else { continue };
            if (3..=30 * 86_400).contains(v.get_ref()) {
                *slot = *v.get_ref();
            } else {
                let msg = format!(
                    "{name} = {} is outside 3..=2592000 seconds; keeping {slot}",
                    v.get_ref()
                );
                diags.push(Diagnostic::at(path, src, Some(v.span()), &msg));
            }
        }
        if let Some(r) = file.refresh_ms {
            let v = *r.get_ref();
            if (100..=60_000).contains(&v) {
                self.refresh_ms = v;
            } else {
                let msg = format!(
                    "refresh_ms = {v} is outside 100..=60000; keeping {}",
                    self.refresh_ms
                );
                diags.push(Diagnostic::at(path, src, Some(r.span()), &msg));
            }
        }
        for (metric, dir) in file.metrics.unwrap_or_default() {
            match dir.get_ref().as_str() {
                "lower" => {
                    self.metrics.insert(metric, crate::domain::Direction::Lower);
                }
                "higher" => {
                    self.metrics
                        .insert(metric, crate::domain::Direction::Higher);
                }
                other => diags.push(Diagnostic::at(
                    path,
                    src,
                    Some(dir.span()),
                    &format!("metrics.\"{metric}\" = \"{other}\": use \"lower\" or \"higher\""),
                )),
            }
        }
        for (action, keys) in file.keymap.unwrap_or_default() {
            let mut parsed = Vec::new();
            let mut bad = None;
            for k in keys.get_ref().list() {
                match KeyChord::parse(k) {
                    Ok(c) => parsed.push(c),
                    Err(e) => {
                        bad = Some(e);
                        break;
                    }
                }
            }
            let line = line_of(src, keys.span().start);
            match bad {
                Some(e) => diags.push(Diagnostic {
                    path: path.to_path_buf(),
                    line: Some(line),
                    message: format!("keymap.{action}: {e}; keeping its default keys"),
                }),
                None => {
                    let origin = format!("{}:{line}", path.display());
                    self.keymap.insert(
                        action,
                        Binding {
                            keys: parsed,
                            origin,
                        },
                    );
                }
            }
        }
        diags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(src: &str) -> (Config, Vec<Diagnostic>) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, src).unwrap();
        Config::load_from(&p)
    }

    #[test]
    fn built_in_config_is_complete() {
        let c = Config::defaults();
        assert_eq!(c.theme, "default-dark");
        assert_eq!(c.refresh_ms, 1000);
        assert_eq!(c.keymap["quit"].keys.len(), 2);
    }

    #[test]
    fn user_file_patches_only_what_it_names() {
        let (c, d) = load("theme = \"light\"\n[keymap]\nquit = \"x\"\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(c.theme, "light");
        assert_eq!(c.refresh_ms, 1000);
        assert_eq!(c.keymap["quit"].keys, vec![KeyChord::parse("x").unwrap()]);
        assert!(c.keymap["quit"].origin.ends_with("config.toml:3"));
        assert_eq!(c.keymap["help"].keys, vec![KeyChord::parse("?").unwrap()]);
    }

    #[test]
    fn syntax_error_names_the_line_and_keeps_defaults() {
        let (c, d) = load("theme = \"light\"\n\nrefresh_ms = = 5\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].line, Some(3), "{}", d[0]);
        assert!(d[0].to_string().contains("config.toml:3:"), "{}", d[0]);
        assert_eq!(c.theme, "default-dark");
    }

    #[test]
    fn metric_directions_can_be_set_by_hand() {
        let (c, d) = load("[metrics]\n\"val/bleu\" = \"higher\"\nwer = \"sideways\"\n");
        assert_eq!(c.metrics["val/bleu"], crate::domain::Direction::Higher);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].line, Some(3));
        assert!(d[0].message.contains("use \"lower\" or \"higher\""));
    }

    #[test]
    fn unknown_field_bad_value_and_bad_key_are_reported() {
        let (_, d) = load("thme = \"x\"\n");
        assert!(d[0].message.contains("unknown field `thme`"), "{}", d[0]);
        assert_eq!(d[0].line, Some(1));
        let (c, d) = load("refresh_ms = 5\n[keymap]\nhelp = [\"ctrl-nope\"]\n");
        assert_eq!(c.refresh_ms, 1000);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].line, Some(1));
        assert_eq!(d[1].line, Some(3));
        assert!(d[1].message.contains("unknown key `nope`"));
        assert_eq!(c.keymap["help"].keys, vec![KeyChord::parse("?").unwrap()]);
    }
}
