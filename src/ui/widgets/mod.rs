//! Widgets used by several tabs.

pub mod confirm;
pub mod series_chart;
