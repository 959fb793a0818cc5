//! The effect runner: carries out `Effect`s on worker tasks that own their resource (the store,
//! NVML) and sends results back as `Msg`. It never touches State.

use tokio::sync::mpsc::UnboundedSender;

use crate::store::Store;

use super::update::{Effect, Msg};

#[derive(Clone)]
pub struct EffectRunner {
    store: Store,
    tx: UnboundedSender<Msg>,
}

impl EffectRunner {
    pub fn new(store: Store, tx: UnboundedSender<Msg>) -> Self {
        EffectRunner { store, tx }
    }

    pub fn run(&self, effect: Effect) {
        let tx = self.tx.clone();
        match effect {
            Effect::LoadRuns => {
                let store = self.store.clone();
                tokio::spawn(async move {
                    let res = store.runs().await.map_err(|e| format!("{e:#}"));
                    let _ = tx.send(Msg::RunsLoaded(res));
                });
            }
            Effect::ProbeGpus => {
                tokio::task::spawn_blocking(move || {
                    let _ = tx.send(Msg::GpuProbed(crate::gpu::probe()));
                });
            }
        }
    }
}

/// Once a second: the wall time and the HH:MM clock. `update` redraws only when what is shown
/// changed, so an idle screen is not redrawn.
pub fn spawn_clock(tx: UnboundedSender<Msg>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            every.tick().await;
            let now = chrono::Local::now();
            let msg = Msg::Tick {
                now_ms: now.timestamp_millis(),
                clock: now.format("%H:%M").to_string(),
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
    })
}
