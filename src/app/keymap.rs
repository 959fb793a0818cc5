use std::collections::HashMap;

use crate::config::{Config, Diagnostic, KeyChord};

use super::action::{Action, ActionInfo, actions};

/// Keys to actions, built from the config; the help overlay and footer hints read it back.
#[derive(Debug, Clone)]
pub struct Keymap {
    by_key: HashMap<KeyChord, Action>,
    entries: Vec<(ActionInfo, Vec<KeyChord>)>,
}

impl Keymap {
    /// Build from a config. Unknown action names and keys claimed twice are reported; a key a user
    /// binds wins over the same key's default.
    pub fn build(config: &Config) -> (Keymap, Vec<Diagnostic>) {
        let registry = actions();
        let mut diags = Vec::new();
        for (name, binding) in &config.keymap {
            if !registry.iter().any(|a| &a.name == name) {
                let names: Vec<&str> = registry.iter().map(|a| a.name.as_str()).collect();
                diags.push(origin_diag(
                    &binding.origin,
                    format!(
                        "unknown action `{name}` in [keymap]; actions are: {}",
                        names.join(", ")
                    ),
                ));
            }
        }
        let is_user = |origin: &str| !origin.starts_with('<');
        let mut by_key: HashMap<KeyChord, Action> = HashMap::new();
        let mut claimed_by_user: HashMap<KeyChord, String> = HashMap::new();
        // User bindings first, so they claim their keys; then defaults fill what is left.
        for user_pass in [true, false] {
            let mut order: Vec<&ActionInfo> = registry.iter().collect();
            if user_pass {
                // Between two user bindings of one key, the earlier line in the file wins.
                order.sort_by_key(|i| {
                    config
                        .keymap
                        .get(&i.name)
                        .and_then(|b| split_origin(&b.origin).1)
                });
            }
            for info in order {
                let Some(b) = config.keymap.get(&info.name) else {
                    continue;
                };
                if is_user(&b.origin) != user_pass {
                    continue;
                }
                for k in &b.keys {
                    match by_key.get(k) {
                        None => {
                            by_key.insert(*k, info.action);
                            if user_pass {
                                claimed_by_user.insert(*k, info.name.clone());
                            }
                        }
                        Some(_) if user_pass => diags.push(origin_diag(
                            &b.origin,
                            format!(
                                "key `{k}` of `{}` is already bound to `{}`; ignored",
                                info.name, claimed_by_user[k]
                            ),
                        )),
                        Some(_) => {} // a default key taken over by the user's binding
                    }
                }
            }
        }
        let entries = registry
            .into_iter()
            .map(|info| {
                let keys = config
                    .keymap
                    .get(&info.name)
                    .map(|b| {
                        b.keys
                            .iter()
                            .copied()
                            .filter(|k| by_key.get(k) == Some(&info.action))
                            .collect()
                    })
                    .unwrap_or_default();
                (info, keys)
            })
            .collect();
        (Keymap { by_key, entries }, diags)
    }

    pub fn action(&self, key: KeyChord) -> Option<Action> {
        self.by_key.get(&key.normalized()).copied()
    }

    /// Every action with its keys, in registry order.
    pub fn entries(&self) -> &[(ActionInfo, Vec<KeyChord>)] {
        &self.entries
    }

    /// The keys of one action.
    pub fn keys_of(&self, action: Action) -> &[KeyChord] {
        self.entries
            .iter()
            .find(|(i, _)| i.action == action)
            .map(|(_, k)| k.as_slice())
            .unwrap_or(&[])
    }

    /// Footer hints: (first key, short label) for actions that carry one.
    pub fn hints(&self) -> Vec<(String, &'static str)> {
        self.entries
            .iter()
            .filter_map(|(i, k)| Some((k.first()?.to_string(), i.hint?)))
            .collect()
    }
}

/// An origin is "path:line" for a user's file.
fn split_origin(origin: &str) -> (&str, Option<usize>) {
    match origin.rsplit_once(':') {
        Some((p, l)) if l.parse::<usize>().is_ok() => (p, l.parse().ok()),
        _ => (origin, None),
    }
}

fn origin_diag(origin: &str, message: String) -> Diagnostic {
    let (path, line) = split_origin(origin);
    Diagnostic {
        path: path.into(),
        line,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Tab;

    fn key(s: &str) -> KeyChord {
        KeyChord::parse(s).unwrap()
    }

    #[test]
    fn defaults_bind_every_action() {
        let (km, d) = Keymap::build(&Config::defaults());
        assert!(d.is_empty(), "{d:?}");
        for (info, keys) in km.entries() {
            assert!(!keys.is_empty(), "{} has no key", info.name);
        }
        assert_eq!(km.action(key("ctrl-c")), Some(Action::Quit));
        assert_eq!(km.action(key("3")), Some(Action::Tab(Tab::Gpus)));
        assert_eq!(km.action(key("shift-tab")), Some(Action::PrevTab));
    }

    #[test]
    fn user_binding_takes_over_a_default_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(
            &p,
            "[keymap]\nquit = [\"j\"]\nfly = [\"x\"]\nhelp = [\"j\"]\n",
        )
        .unwrap();
        let (cfg, d) = Config::load_from(&p);
        assert!(d.is_empty());
        let (km, d) = Keymap::build(&cfg);
        assert_eq!(km.action(key("j")), Some(Action::Quit));
        assert_eq!(
            km.action(key("q")),
            None,
            "quit's default keys are replaced"
        );
        assert_eq!(km.keys_of(Action::Down), &[key("down")], "j left `down`");
        let text: Vec<String> = d.iter().map(|d| d.to_string()).collect();
        assert_eq!(d.len(), 2, "{text:?}");
        assert!(
            text.iter()
                .any(|t| t.contains("unknown action `fly`") && t.contains(":3:")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("`j` of `help` is already bound to `quit`")),
            "{text:?}"
        );
    }
}
