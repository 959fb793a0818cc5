use ratatui::Frame;
use ratatui::layout::Rect;

use crate::app::State;

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    super::empty(
        frame,
        area,
        state,
        "Bench",
        "No benchmark results in this workspace yet.",
        &[
            "Benchmark results (GEMM, memory and PCIe bandwidth, launch latency) appear here",
            "as a percentage of the device's peak, with their history.",
        ],
    );
}
