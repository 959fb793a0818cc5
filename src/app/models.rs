//! The Models tab's state: the models, the selected model's versions, marks for a diff, and
//! verify results.

use std::collections::HashMap;

use crate::domain::{Manifest, ModelSummary};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModelsFocus {
    #[default]
    Models,
    Versions,
}

/// What re-hashing found for one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Badge {
    Ok,
    Damaged(usize),
}

#[derive(Default)]
pub struct ModelsState {
    pub models: Vec<ModelSummary>,
    pub loaded: bool,
    pub error: Option<String>,
    pub cursor: usize,
    pub versions: Vec<Manifest>,
    /// The model `versions` belong to.
    pub versions_of: String,
    pub version_cursor: usize,
    pub focus: ModelsFocus,
    /// Up to two marked versions; with two, the diff is shown.
    pub marked: Vec<u32>,
    /// (model, version) -> verify result.
    pub badges: HashMap<(String, u32), Badge>,
    pub pending_models: bool,
    pub pending_versions: Option<String>,
    /// The model `versions_of` against the registry's remote, as of the last fetch.
    pub sync: Option<crate::domain::model::SyncState>,
    /// A push or pull under way: what, bytes done, bytes in all.
    pub transfer: Option<(String, u64, u64)>,
    /// The model `sync` is of, and the one asked for.
    pub sync_of: String,
    pub pending_sync: Option<String>,
    /// The lower pane shows the model's latest evaluation instead of the version.
    pub show_evals: bool,
    /// Each version's energy, GPU-hours and cost, its own and along its lineage.
    pub lineage: HashMap<(String, u32), crate::domain::model::Lineage>,
}

/// The latest `gantry model eval` of a model, from the run records' tags: per version (in the
/// order evaluated), its runs, its gate verdict and each metric's median over the repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalView {
    pub id: String,
    pub versions: Vec<EvalVersion>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EvalVersion {
    pub version: u32,
    pub runs: Vec<String>,
    /// "baseline", "pass", "fail", or "" while it runs.
    pub verdict: String,
    pub metrics: std::collections::BTreeMap<String, f64>,
}

/// The newest evaluation of `model` among `records`, None where there is none.
pub fn latest_eval(records: &[crate::domain::RunRecord], model: &str) -> Option<EvalView> {
    let prefix = format!("{model}@v");
    let ours: Vec<&crate::domain::RunRecord> = records
        .iter()
        .filter(|r| r.tags.contains_key("eval"))
        .filter(|r| r.tags.get("model").is_some_and(|m| m.starts_with(&prefix)))
        .collect();
    let newest = ours.iter().max_by_key(|r| r.run.started_ms)?;
    let id = newest.tags["eval"].clone();
    let mut runs: Vec<&&crate::domain::RunRecord> =
        ours.iter().filter(|r| r.tags["eval"] == id).collect();
    runs.sort_by_key(|r| (r.run.started_ms, r.run.id.clone()));
    let mut versions: Vec<EvalVersion> = Vec::new();
    let mut values: Vec<std::collections::BTreeMap<String, Vec<f64>>> = Vec::new();
    for r in runs {
        let Some(v) = r.tags["model"][prefix.len()..].parse::<u32>().ok() else {
            continue;
        };
        let i = match versions.iter().position(|x| x.version == v) {
            Some(i) => i,
            None => {
                versions.push(EvalVersion {
                    version: v,
                    runs: Vec::new(),
                    verdict: String::new(),
                    metrics: Default::default(),
                });
                values.push(Default::default());
                versions.len() - 1
            }
        };
        versions[i].runs.push(r.run.id.clone());
        if let Some(g) = r.tags.get("eval_gate") {
            versions[i].verdict = g.clone();
        }
        for (k, x) in r.last_values() {
            values[i].entry(k).or_default().push(x);
        }
    }
    for (v, vals) in versions.iter_mut().zip(values) {
        v.metrics = vals
            .into_iter()
            .map(|(k, mut xs)| {
                xs.sort_by(f64::total_cmp);
                (k, xs[xs.len() / 2])
            })
            .collect();
    }
    Some(EvalView { id, versions })
}

impl ModelsState {
    pub fn selected(&self) -> Option<&ModelSummary> {
        self.models.get(self.cursor)
    }

    pub fn version(&self) -> Option<&Manifest> {
        self.versions.get(self.version_cursor)
    }

    pub fn set_models(&mut self, models: Vec<ModelSummary>) {
        let keep = self.selected().map(|m| m.name.clone());
        self.models = models;
        self.loaded = true;
        self.error = None;
        self.cursor = keep
            .and_then(|k| self.models.iter().position(|m| m.name == k))
            .unwrap_or(0)
            .min(self.models.len().saturating_sub(1));
    }

    /// Versions newest first.
    pub fn set_versions(&mut self, model: String, mut versions: Vec<Manifest>) {
        versions.sort_by_key(|m| std::cmp::Reverse(m.version));
        if model != self.versions_of {
            self.version_cursor = 0;
            self.marked.clear();
        }
        self.versions_of = model;
        self.versions = versions;
        self.version_cursor = self
            .version_cursor
            .min(self.versions.len().saturating_sub(1));
    }

    pub fn toggle_mark(&mut self) {
        let Some(v) = self.version().map(|m| m.version) else {
            return;
        };
        if let Some(i) = self.marked.iter().position(|m| *m == v) {
            self.marked.remove(i);
        } else {
            if self.marked.len() == 2 {
                self.marked.remove(0);
            }
            self.marked.push(v);
        }
    }

    /// The two marked versions, older first.
    pub fn diff_pair(&self) -> Option<(&Manifest, &Manifest)> {
        if self.marked.len() != 2 {
            return None;
        }
        let (lo, hi) = (
            self.marked[0].min(self.marked[1]),
            self.marked[0].max(self.marked[1]),
        );
        let find = |v: u32| self.versions.iter().find(|m| m.version == v);
        Some((find(lo)?, find(hi)?))
    }
}

/// The Models tab's actions: open a model or the run of a version, mark versions for a diff,
/// promote, verify, go back.
pub(super) fn models_action(
    state: &mut super::State,
    action: super::Action,
    mut effects: Vec<super::Effect>,
) -> super::Outcome {
    use super::update::open_run_detail;
    use super::{Action, Effect, Modal, Outcome};
    let m = &mut state.models;
    match (action, m.focus) {
        (Action::ModelOpen, ModelsFocus::Models) if m.selected().is_some() => {
            m.focus = ModelsFocus::Versions
        }
        (Action::ModelOpen, ModelsFocus::Versions) if m.show_evals => {
            // Compare the latest evaluation's runs.
            let name = m.selected().map(|s| s.name.clone()).unwrap_or_default();
            match latest_eval(&state.runs.records, &name) {
                Some(e) => {
                    let ids: Vec<String> = e
                        .versions
                        .iter()
                        .flat_map(|v| v.runs.iter().cloned())
                        .collect();
                    let r = &mut state.runs;
                    r.pinned = None;
                    r.marked = ids.clone();
                    for id in &ids {
                        r.color_of(id);
                    }
                    state.tab = super::Tab::Runs;
                    if ids.len() >= 2 {
                        r.view = super::runs::View::Compare;
                    } else {
                        open_run_detail(state, ids[0].clone());
                    }
                }
                None => state.toast = Some(format!("no evaluation of {name} yet")),
            }
        }
        (Action::ModelOpen, ModelsFocus::Versions) => {
            // Jump to the run that made this version.
            let run = m
                .version()
                .and_then(|v| v.run.as_ref())
                .map(|r| r.id.clone());
            match run {
                Some(id) if state.runs.record(&id).is_some() => open_run_detail(state, id),
                Some(id) => {
                    state.toast = Some(format!(
                        "run {} is not in this workspace",
                        &id[..8.min(id.len())]
                    ))
                }
                None => state.toast = Some("this version was not registered from a run".into()),
            }
        }
        (Action::ModelMark, ModelsFocus::Versions) => m.toggle_mark(),
        (Action::ModelEvals, _) => {
            m.show_evals = !m.show_evals;
            if m.show_evals {
                let name = m.selected().map(|s| s.name.clone()).unwrap_or_default();
                if latest_eval(&state.runs.records, &name).is_none() {
                    state.toast = Some(format!(
                        "no evaluation of {name} yet: gantry model eval {name}@v1 {name}@v2 -- CMD {{model}}"
                    ));
                }
            }
        }
        (Action::Promote, _) => {
            let target = match m.focus {
                ModelsFocus::Versions => m.version().map(|v| (v.name.clone(), v.version)),
                ModelsFocus::Models => m.selected().map(|s| (s.name.clone(), s.latest)),
            };
            if let Some((model, version)) = target {
                state.modal = Some(Modal::Promote {
                    model,
                    version,
                    text: String::new(),
                });
            }
        }
        (Action::ModelPush, _) => {
            use super::state::Yes;
            let remote = m.sync.as_ref().map(|s| s.remote.clone());
            match remote {
                _ if m.transfer.is_some() => state.toast = Some("a transfer is under way".into()),
                None => {
                    state.toast = Some(
                        "no remote: gantry model remote add origin GIT_URL --objects URL".into(),
                    )
                }
                Some(r) => {
                    state.modal = Some(Modal::Confirm {
                        lines: Vec::new(),
                        question: format!("Push the registry to {r}?"),
                        yes: Yes::Effect(Effect::PushModels, Some(format!("pushing to {r}…"))),
                        no: "nothing pushed".into(),
                    })
                }
            }
        }
        (Action::ModelPull, _) => {
            use super::state::Yes;
            let spec = match m.focus {
                ModelsFocus::Versions => m.version().map(|v| format!("{}@v{}", v.name, v.version)),
                ModelsFocus::Models => m.selected().map(|s| s.name.clone()),
            };
            let remote = m.sync.as_ref().map(|s| s.remote.clone());
            match (spec, remote) {
                _ if m.transfer.is_some() => state.toast = Some("a transfer is under way".into()),
                (_, None) => {
                    state.toast = Some(
                        "no remote: gantry model remote add origin GIT_URL --objects URL".into(),
                    )
                }
                (Some(spec), Some(r)) => {
                    state.modal = Some(Modal::Confirm {
                        lines: Vec::new(),
                        question: format!("Pull {spec} from {r}?"),
                        yes: Yes::Effect(
                            Effect::PullModel(spec.clone()),
                            Some(format!("pulling {spec}…")),
                        ),
                        no: "nothing pulled".into(),
                    })
                }
                (None, _) => {}
            }
        }
        (Action::Verify, _) => {
            if let Some(s) = m.selected() {
                effects.push(Effect::VerifyModel(s.name.clone()));
                state.toast = Some(format!("verifying {}…", s.name));
            }
        }
        (Action::ModelBack, _) => {
            m.focus = ModelsFocus::Models;
            m.marked.clear();
        }
        _ => {}
    }
    Outcome {
        redraw: true,
        effects,
    }
}

/// The Models tab's messages: models, a model's versions, verify results.
pub(super) fn on_msg(state: &mut super::State, msg: super::Msg) -> super::Outcome {
    use super::{Msg, Outcome};
    match msg {
        Msg::ModelsLoaded(res) => {
            let m = &mut state.models;
            m.pending_models = false;
            match res {
                Ok(list) => m.set_models(list),
                Err(e) => {
                    m.loaded = true;
                    m.error = Some(e);
                }
            }
            Outcome::redraw()
        }
        Msg::VersionsLoaded(name, res) => {
            let m = &mut state.models;
            if m.pending_versions.as_deref() == Some(name.as_str()) {
                m.pending_versions = None;
            }
            match res {
                Ok(v) => m.set_versions(name, v),
                Err(e) => state.toast = Some(e),
            }
            Outcome::redraw()
        }
        Msg::LineageLoaded(name, lineage) => {
            let m = &mut state.models;
            for (v, l) in lineage {
                m.lineage.insert((name.clone(), v), l);
            }
            Outcome::redraw()
        }
        Msg::SyncLoaded(name, sync) => {
            let m = &mut state.models;
            m.pending_sync = None;
            if name == m.versions_of {
                m.sync = sync;
                m.sync_of = name;
            }
            Outcome::redraw()
        }
        Msg::Transfer(what, done, total) => {
            state.models.transfer = Some((what, done, total));
            Outcome::redraw()
        }
        Msg::Transferred(res) => {
            let m = &mut state.models;
            m.transfer = None;
            state.toast = Some(match res {
                Ok(s) => s,
                Err(e) => e,
            });
            // What is where has changed: the versions and their places, asked again.
            let mut effects = Vec::new();
            if !m.versions_of.is_empty() {
                let name = m.versions_of.clone();
                m.pending_versions = Some(name.clone());
                m.pending_sync = Some(name.clone());
                effects.push(super::Effect::LoadVersions(name.clone()));
                effects.push(super::Effect::LoadSync(name));
            }
            Outcome {
                redraw: true,
                effects,
            }
        }
        Msg::Verified(name, results) => {
            let damaged = results
                .iter()
                .filter(|(_, b)| *b != super::models::Badge::Ok)
                .count();
            for (v, b) in results {
                state.models.badges.insert((name.clone(), v), b);
            }
            state.toast = Some(if damaged == 0 {
                format!("{name}: every file verified")
            } else {
                format!("{name}: {damaged} versions damaged")
            });
            Outcome::redraw()
        }
        _ => Outcome::none(),
    }
}
