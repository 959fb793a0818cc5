use std::collections::HashMap;

use crate::config::{Config, Diagnostic, KeyChord};

use super::action::{Action, ActionInfo, Section, actions};

/// Keys to actions, per section, built from the config; the help overlay and footer hints read it.
#[derive(Debug, Clone)]
pub struct Keymap {
    by_key: HashMap<(Section, KeyChord), Action>,
    entries: Vec<(ActionInfo, Vec<KeyChord>)>,
}

impl Keymap {
    /// Build from a config. Unknown action names and keys claimed twice in one section are
    /// reported; a key a user binds wins over the same key's default in that section.
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
        let mut by_key: HashMap<(Section, KeyChord), Action> = HashMap::new();
        let mut claimed_by_user: HashMap<(Section, KeyChord), String> = HashMap::new();
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
                    let slot = (info.section, *k);
                    match by_key.get(&slot) {
                        None => {
                            by_key.insert(slot, info.action);
                            if user_pass {
                                claimed_by_user.insert(slot, info.name.clone());
                            }
                        }
                        Some(_) if user_pass => diags.push(origin_diag(
                            &b.origin,
                            format!(
                                "key `{k}` of `{}` is already bound to `{}`; ignored",
                                info.name, claimed_by_user[&slot]
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
                            .filter(|k| by_key.get(&(info.section, *k)) == Some(&info.action))
                            .collect()
                    })
                    .unwrap_or_default();
                (info, keys)
            })
            .collect();
        (Keymap { by_key, entries }, diags)
    }

    /// The action of a key, looking in `sections` in order, then in the global section.
    pub fn action_in(&self, key: KeyChord, sections: &[Section]) -> Option<Action> {
        let key = key.normalized();
        sections
            .iter()
            .chain(std::iter::once(&Section::Global))
            .find_map(|s| self.by_key.get(&(*s, key)).copied())
    }

    /// The action of a key in the global section.
    pub fn action(&self, key: KeyChord) -> Option<Action> {
        self.action_in(key, &[])
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

    /// The first key of an action, as text (for hints in the UI).
    pub fn key_text(&self, action: Action) -> String {
        self.keys_of(action)
            .first()
            .map(|k| k.to_string())
            .unwrap_or_else(|| "-".into())
    }

    /// Footer hints for the given sections: (first key, short label).
    pub fn hints(&self, sections: &[Section]) -> Vec<(String, &'static str)> {
        self.entries
            .iter()
            .filter(|(i, _)| i.section == Section::Global || sections.contains(&i.section))
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
    fn defaults_bind_every_action_without_conflicts() {
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
    fn sections_give_one_key_several_meanings() {
        let (km, _) = Keymap::build(&Config::defaults());
        assert_eq!(
            km.action_in(key("/"), &[Section::Table]),
            Some(Action::Filter)
        );
        assert_eq!(
            km.action_in(key("/"), &[Section::Log, Section::Detail]),
            Some(Action::Search)
        );
        assert_eq!(
            km.action_in(key("n"), &[Section::Chart, Section::Detail]),
            Some(Action::NextPage)
        );
        assert_eq!(
            km.action_in(key("n"), &[Section::Log, Section::Detail]),
            Some(Action::NextMatch)
        );
        assert_eq!(
            km.action_in(key("q"), &[Section::Chart]),
            Some(Action::Quit),
            "global underneath"
        );
        assert_eq!(km.action(key("/")), None, "not global");
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
