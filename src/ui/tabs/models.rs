use ratatui::Frame;
use ratatui::layout::Rect;

use crate::app::State;

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    super::empty(
        frame,
        area,
        state,
        "Models",
        "No model versions in this workspace yet.",
        &[
            "Each registered model version is a commit in .gantry/registry, with its files,",
            "the run that produced it and that run's code commit.",
        ],
    );
}
