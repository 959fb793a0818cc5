//! The workbench's loop with a recording drawer: a burst of messages is one frame, an idle loop
//! draws nothing, and the pager gets the terminal and the run's log.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry::app::{Drawer, Effect, Msg, State, run_loop};
use gantry::config::KeyChord;

/// What a frame showed: the cursor and the toast.
type Frame = (usize, Option<String>);

#[derive(Clone, Default)]
struct Recorder {
    /// The cursor and the toast shown by each frame.
    frames: Arc<Mutex<Vec<Frame>>>,
    handed: Arc<Mutex<Vec<Vec<String>>>>,
}

impl Drawer for Recorder {
    fn draw(&mut self, state: &State) -> anyhow::Result<()> {
        self.frames
            .lock()
            .unwrap()
            .push((state.runs.cursor, state.toast.clone()));
        Ok(())
    }
    fn hand_over(&mut self, argv: &[String]) -> Option<String> {
        self.handed.lock().unwrap().push(argv.to_vec());
        Some("pager closed".into())
    }
}

fn key(s: &str) -> Msg {
    Msg::Key(KeyChord::parse(s).unwrap())
}

#[tokio::test]
async fn bursts_are_one_frame_idle_is_none_and_the_pager_gets_the_log() {
    // SAFETY: this test binary has one test, and nothing else reads PAGER meanwhile.
    unsafe { std::env::set_var("PAGER", "mypager -R") };
    let mut state = common::state();
    gantry::app::update(&mut state, Msg::RunsLoaded(Ok(common::some_records(50))));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let rec = Recorder::default();
    let (frames, handed) = (rec.frames.clone(), rec.handed.clone());
    let others = Arc::new(Mutex::new(Vec::new()));
    let seen = others.clone();
    let looped = tokio::spawn(async move {
        let mut drawer = rec;
        run_loop(&mut state, &mut rx, &mut drawer, move |e: Effect| {
            seen.lock().unwrap().push(e)
        })
        .await
        .unwrap();
        state
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        frames.lock().unwrap().len(),
        1,
        "the first frame, then nothing while idle"
    );
    // A burst: 30 keys queued at once are drawn once (or twice, if a frame was owed).
    for _ in 0..30 {
        tx.send(key("down")).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after_burst = frames.lock().unwrap().clone();
    assert!(
        (2..=3).contains(&after_burst.len()),
        "30 keys coalesced into at most two frames: {after_burst:?}"
    );
    assert_eq!(
        after_burst.last().unwrap().0,
        30,
        "the last frame shows the last key"
    );
    // Idle: no message, no frame.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        frames.lock().unwrap().len(),
        after_burst.len(),
        "idle draws nothing"
    );
    // The pager: the terminal is handed over with $PAGER and the run's log, then redrawn.
    tx.send(key("o")).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let handed = handed.lock().unwrap().clone();
    assert_eq!(handed.len(), 1);
    assert_eq!(&handed[0][..2], ["mypager", "-R"]);
    assert!(handed[0][2].ends_with("output.log"), "{handed:?}");
    let now = frames.lock().unwrap().clone();
    assert_eq!(now.len(), after_burst.len() + 1, "redrawn after the pager");
    assert_eq!(now.last().unwrap().1.as_deref(), Some("pager closed"));
    tx.send(key("q")).unwrap();
    let state = tokio::time::timeout(Duration::from_secs(5), looped)
        .await
        .expect("q ends the loop")
        .unwrap();
    assert!(state.quit);
}
