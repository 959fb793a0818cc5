//! Widgets used by several tabs.

pub mod series_chart;
