use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use crate::app::{GpuProbe, State};
use crate::config::Role;

pub fn render(frame: &mut Frame, area: Rect, state: &State) {
    let t = &state.theme;
    match &state.gpu {
        GpuProbe::Pending => {
            super::empty(frame, area, state, "GPUs", "Looking for NVIDIA GPUs…", &[])
        }
        GpuProbe::Absent(why) => super::empty(
            frame,
            area,
            state,
            "GPUs",
            &format!("No GPU data: {why}"),
            &["Live GPU stats need an NVIDIA driver (libnvidia-ml.so.1) on this host."],
        ),
        GpuProbe::Present { driver, names } => {
            let mut lines = vec![Line::styled(format!(" driver {driver}"), t.fg(Role::Muted))];
            for (i, n) in names.iter().enumerate() {
                lines.push(Line::from(vec![
                    ratatui::text::Span::styled(format!(" {i:>2}  "), t.fg(Role::Accent)),
                    ratatui::text::Span::styled(n.clone(), t.fg(Role::Text)),
                ]));
            }
            let title = format!(" GPUs ({}) ", names.len());
            frame.render_widget(
                Paragraph::new(lines).block(super::frame_block(state, title)),
                area,
            );
        }
    }
}
