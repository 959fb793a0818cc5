//! Keys while a popup (modal) is open: confirmations, prompts and pickers.

use super::action::{Action, Section};
use super::bench::start_bench;
use crate::config::{KeyChord, KeyCode};

use super::effect::{Effect, Outcome};
use super::state::{Modal, State, Yes};

/// Keys while a modal is open: text editing for prompts, a list for the column chooser.
pub(super) fn modal_key(state: &mut State, key: KeyChord) -> Outcome {
    let Some(modal) = state.modal.take() else {
        return Outcome::none();
    };
    let plain = !key.ctrl && !key.alt;
    let mut effects = Vec::new();
    let prompt_action = state.keymap.action_in(key, &[Section::Prompt]);
    let edit = |text: &mut String| -> Option<bool> {
        // Some(true): submit, Some(false): cancel, None: keep editing.
        match (prompt_action, key.code) {
            (Some(Action::PromptSubmit), _) => Some(true),
            (Some(Action::PromptCancel), _) => Some(false),
            (Some(Action::PromptClear), _) => {
                text.clear();
                None
            }
            (_, KeyCode::Backspace) => {
                text.pop();
                None
            }
            (_, KeyCode::Char(c)) if plain => {
                text.push(c);
                None
            }
            _ => None,
        }
    };
    let modal = match modal {
        Modal::Confirm { yes, no, .. } => {
            return answer(state, key, yes, no);
        }
        other => other,
    };
    let r = &mut state.runs;
    let next = match modal {
        // Answered above.
        confirm @ Modal::Confirm { .. } => Some(confirm),
        Modal::Filter { before } => {
            let mut text = r.filter_text.clone();
            match edit(&mut text) {
                Some(true) if r.filter_error.is_none() => None,
                Some(true) => Some(Modal::Filter { before }), // fix the error first
                Some(false) => {
                    r.set_filter(&before);
                    None
                }
                None => {
                    r.set_filter(&text);
                    Some(Modal::Filter { before })
                }
            }
        }
        Modal::Tag { run, mut text } => match edit(&mut text) {
            Some(true) => match text.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    effects.push(Effect::SetTag {
                        run,
                        key: k.trim().into(),
                        value: v.trim().into(),
                    });
                    None
                }
                _ => {
                    state.toast = Some("a tag is key=value".into());
                    Some(Modal::Tag { run, text })
                }
            },
            Some(false) => None,
            None => Some(Modal::Tag { run, text }),
        },
        Modal::Rename { run, mut text } => match edit(&mut text) {
            Some(true) if !text.trim().is_empty() => {
                effects.push(Effect::Rename {
                    run,
                    name: text.trim().into(),
                });
                None
            }
            Some(true) => Some(Modal::Rename { run, text }),
            Some(false) => None,
            None => Some(Modal::Rename { run, text }),
        },
        Modal::ProcFilter { before } => state.gpus.with_shown(|g| {
            let mut text = g.filter.clone();
            match edit(&mut text) {
                Some(true) => None,
                Some(false) => {
                    g.set_filter(&before);
                    None
                }
                None => {
                    g.set_filter(&text);
                    Some(Modal::ProcFilter { before })
                }
            }
        }),
        Modal::FleetFilter { before } => match state.gpus.fleet.as_mut() {
            None => None,
            Some(f) => {
                let mut text = f.filter.clone();
                let out = match edit(&mut text) {
                    Some(true) => None,
                    Some(false) => {
                        f.filter = before;
                        None
                    }
                    None => {
                        f.filter = text;
                        Some(Modal::FleetFilter { before })
                    }
                };
                f.cursor = 0;
                f.clamp(state.now_ms);
                out
            }
        },
        Modal::Search { mut text } => match edit(&mut text) {
            Some(true) => {
                r.log.search = (!text.is_empty()).then_some(text);
                if let Some(i) = r.log.next_match() {
                    r.log.scroll = r.log.lines.len().saturating_sub(i + 1);
                }
                None
            }
            Some(false) => None,
            None => Some(Modal::Search { text }),
        },
        Modal::Register { run, mut text } => match edit(&mut text) {
            Some(true) if crate::domain::model::check_name(text.trim()).is_ok() => {
                effects.push(Effect::Register {
                    run,
                    model: text.trim().into(),
                });
                state.toast = Some(format!("registering {}…", text.trim()));
                None
            }
            Some(true) => {
                state.toast = Some("a model name is letters, digits, `.`, `_` and `-`".into());
                Some(Modal::Register { run, text })
            }
            Some(false) => None,
            None => Some(Modal::Register { run, text }),
        },
        Modal::Promote {
            model,
            version,
            mut text,
        } => match edit(&mut text) {
            Some(true) => {
                let (alias, reason) = text
                    .trim()
                    .split_once(' ')
                    .map_or((text.trim(), ""), |(a, r)| (a, r.trim()));
                if crate::domain::model::check_name(alias).is_ok() {
                    let why = if reason.is_empty() {
                        String::new()
                    } else {
                        format!(" ({reason})")
                    };
                    Some(Modal::Confirm {
                        lines: Vec::new(),
                        question: format!("Point {alias} at {model}@v{version}{why}?"),
                        yes: Yes::Effect(
                            Effect::Promote {
                                model: model.clone(),
                                version,
                                alias: alias.into(),
                                reason: reason.into(),
                            },
                            Some(format!("promoting {model}@v{version} to {alias}…")),
                        ),
                        no: "nothing promoted".into(),
                    })
                } else {
                    state.toast =
                        Some("type an alias (production, staging, ...) and a reason".into());
                    Some(Modal::Promote {
                        model,
                        version,
                        text,
                    })
                }
            }
            Some(false) => None,
            None => Some(Modal::Promote {
                model,
                version,
                text,
            }),
        },
        Modal::Columns { mut cursor } => {
            let choices = r.column_choices();
            let action = state
                .keymap
                .action_in(key, &[super::action::Section::Table]);
            match (key.code, action) {
                (KeyCode::Esc | KeyCode::Enter, _) | (_, Some(Action::Columns)) => None,
                (_, Some(Action::Up)) => {
                    cursor = cursor.saturating_sub(1);
                    Some(Modal::Columns { cursor })
                }
                (_, Some(Action::Down)) => {
                    cursor = (cursor + 1).min(choices.len().saturating_sub(1));
                    Some(Modal::Columns { cursor })
                }
                (_, Some(Action::Mark)) => {
                    if let Some((kind, name)) = choices.get(cursor) {
                        r.choose_columns();
                        let list = if *kind == "metric" {
                            &mut r.metric_cols
                        } else {
                            &mut r.param_cols
                        };
                        match list.iter().position(|c| c == name) {
                            Some(i) => {
                                list.remove(i);
                            }
                            None => list.push(name.clone()),
                        }
                    }
                    Some(Modal::Columns { cursor })
                }
                _ => Some(Modal::Columns { cursor }),
            }
        }
    };
    state.modal = next;
    Outcome {
        redraw: true,
        effects,
    }
}

/// A key on a yes-or-no question: the keymap's yes does `yes`, any other key says `no`.
fn answer(state: &mut State, key: KeyChord, yes: Yes, no: String) -> Outcome {
    let mut effects = Vec::new();
    if state.keymap.action_in(key, &[Section::Confirm]) == Some(Action::ConfirmYes) {
        match yes {
            Yes::Effect(e, said) => {
                effects.push(e);
                if said.is_some() {
                    state.toast = said;
                }
            }
            Yes::StartBench => effects.push(start_bench(&mut state.bench)),
        }
    } else {
        state.toast = Some(no);
    }
    Outcome {
        redraw: true,
        effects,
    }
}
