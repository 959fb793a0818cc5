//! A braille line chart of several series, downsampled per dot column with min and max so a
//! spike never disappears and a 1M-point series draws in one frame. Works in one pass per series
//! over the points inside the zoom window (found by binary search), with optional EMA smoothing
//! (debiased, as TensorBoard does) and a log y axis. Allocates in proportion to the width only.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType};

use crate::app::runs::{ChartOpts, XMode};
use crate::domain::Series;
use crate::format::{axis_label, compact};

/// One line of a chart.
pub struct Line_<'a> {
    pub series: &'a Series,
    pub color: Color,
    pub label: &'a str,
}

/// An event to mark on a chart: a vertical line where it fell, in its colour, its label read at
/// the cursor (`domain::flight::marks`: alerts and flight-recorder events).
pub struct Mark<'a> {
    pub step: Option<i64>,
    pub at_ms: i64,
    pub label: &'a str,
    pub color: Color,
}

/// A mark's x: its step, or its time (since the first line's first point for relative time).
fn mark_x(m: &Mark, mode: XMode, lines: &[Line_]) -> Option<f64> {
    match mode {
        XMode::Step => m.step.map(|s| s as f64),
        XMode::Wall => Some(m.at_ms as f64 / 1000.0),
        XMode::Relative => {
            let t0 = lines.first()?.series.times_ms.first()?;
            Some((m.at_ms - t0) as f64 / 1000.0)
        }
    }
}

/// A chart's x value of point i.
fn x_of(s: &Series, i: usize, mode: XMode) -> f64 {
    match mode {
        XMode::Step => s.steps[i] as f64,
        XMode::Wall => s.times_ms[i] as f64 / 1000.0,
        XMode::Relative => (s.times_ms[i] - s.times_ms[0]) as f64 / 1000.0,
    }
}

/// The downsampled outline of one series: per dot column, the (x, min) and (x, max) of the
/// (smoothed) values there. Also the value at the cursor.
pub struct Outline {
    pub points: Vec<(f64, f64)>,
    pub lo: f64,
    pub hi: f64,
    pub at_cursor: Option<f64>,
}

/// The x range covered by all lines.
pub fn x_range(lines: &[Line_], mode: XMode) -> Option<(f64, f64)> {
    let mut r: Option<(f64, f64)> = None;
    for l in lines.iter().filter(|l| !l.series.is_empty()) {
        let (a, b) = (
            x_of(l.series, 0, mode),
            x_of(l.series, l.series.len() - 1, mode),
        );
        let (a, b) = (a.min(b), a.max(b));
        r = Some(r.map_or((a, b), |(lo, hi)| (lo.min(a), hi.max(b))));
    }
    r
}

pub fn outline(
    s: &Series,
    opts: &ChartOpts,
    x0: f64,
    x1: f64,
    columns: usize,
    cursor_x: Option<f64>,
) -> Outline {
    let mut out = Outline {
        points: Vec::with_capacity(columns * 2),
        lo: f64::INFINITY,
        hi: f64::NEG_INFINITY,
        at_cursor: None,
    };
    if s.is_empty() || columns == 0 {
        return out;
    }
    let w = opts.ema();
    // Smoothing needs the points before the window; without it, start at the window.
    let first = if w > 0.0 {
        0
    } else {
        lower_bound(s, x0, opts.x)
    };
    let span = (x1 - x0).max(f64::MIN_POSITIVE);
    let mut col_lo = vec![f64::INFINITY; columns];
    let mut col_hi = vec![f64::NEG_INFINITY; columns];
    // One loop per x mode, so the mode is not matched again for each of a million points.
    let t0 = s.times_ms[0];
    let cols = Columns {
        x0,
        x1,
        scale: (columns as f64 - 1.0) / span,
        last: columns - 1,
    };
    let mut scan = Scan {
        s,
        first,
        ema: w,
        log_y: opts.log_y,
        cursor_x,
        at_cursor: None,
        lo: &mut col_lo,
        hi: &mut col_hi,
    };
    match opts.x {
        XMode::Step => scan.run(&cols, |i| s.steps[i] as f64),
        XMode::Wall => scan.run(&cols, |i| s.times_ms[i] as f64 / 1000.0),
        XMode::Relative => scan.run(&cols, |i| (s.times_ms[i] - t0) as f64 / 1000.0),
    }
    out.at_cursor = scan.at_cursor;
    for c in 0..columns {
        if col_lo[c].is_finite() {
            let x = x0 + span * c as f64 / (columns as f64 - 1.0).max(1.0);
            out.points.push((x, col_lo[c]));
            if col_hi[c] != col_lo[c] {
                out.points.push((x, col_hi[c]));
            }
            out.lo = out.lo.min(col_lo[c]);
            out.hi = out.hi.max(col_hi[c]);
        }
    }
    out
}

/// How x values fall into dot columns.
struct Columns {
    x0: f64,
    x1: f64,
    /// Columns per unit of x.
    scale: f64,
    last: usize,
}

/// One pass over a series' points in the window, keeping each column's min and max.
struct Scan<'a> {
    s: &'a Series,
    first: usize,
    /// EMA weight (0: none).
    ema: f64,
    log_y: bool,
    cursor_x: Option<f64>,
    at_cursor: Option<f64>,
    lo: &'a mut [f64],
    hi: &'a mut [f64],
}

impl Scan<'_> {
    #[inline(always)]
    fn run(&mut self, c: &Columns, x_of: impl Fn(usize) -> f64) {
        let w = self.ema;
        let (mut ema, mut n) = (0.0f64, 0i32);
        for i in self.first..self.s.len() {
            let x = x_of(i);
            if x > c.x1 {
                break;
            }
            let raw = self.s.values[i];
            if !raw.is_finite() {
                continue;
            }
            let v = if w > 0.0 {
                ema = ema * w + (1.0 - w) * raw;
                n += 1;
                ema / (1.0 - w.powi(n))
            } else {
                raw
            };
            if x < c.x0 {
                continue;
            }
            let y = if self.log_y {
                if v <= 0.0 {
                    continue;
                }
                v.log10()
            } else {
                v
            };
            if let Some(cx) = self.cursor_x
                && x <= cx
            {
                self.at_cursor = Some(v);
            }
            // Rounded to the nearest column (x >= x0 here, so adding a half and truncating
            // rounds).
            let col = (((x - c.x0) * c.scale + 0.5) as usize).min(c.last);
            self.lo[col] = self.lo[col].min(y);
            self.hi[col] = self.hi[col].max(y);
        }
    }
}

/// Index of the first point at or after x (points are in x order).
fn lower_bound(s: &Series, x: f64, mode: XMode) -> usize {
    let (mut lo, mut hi) = (0, s.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if x_of(s, mid, mode) < x {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

fn x_label(x: f64, mode: XMode) -> String {
    match mode {
        XMode::Step => compact(x.round()),
        XMode::Wall => chrono::DateTime::from_timestamp(x as i64, 0)
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%H:%M:%S")
                    .to_string()
            })
            .unwrap_or_default(),
        XMode::Relative => crate::format::duration((x * 1000.0) as i64),
    }
}

/// Draw a chart of `lines` with a titled border. Returns nothing; the cursor readout goes in the
/// bottom title.
#[allow(clippy::too_many_arguments)]
pub fn render(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    lines: &[Line_],
    opts: &ChartOpts,
    border: Style,
    muted: Style,
    cursor_color: Color,
    marks: &[Mark],
) {
    let block = Block::bordered()
        .title(Span::styled(format!(" {title} "), border))
        .border_style(border);
    let inner = block.inner(area);
    let Some((full0, full1)) = x_range(lines, opts.x) else {
        frame.render_widget(block.title_bottom(Line::styled(" no data ", muted)), area);
        return;
    };
    let span = (full1 - full0).max(1e-9);
    let (x0, x1) = (full0 + opts.window.0 * span, full0 + opts.window.1 * span);
    // Braille: two dots per cell across; leave room for the y labels.
    let columns = usize::from(inner.width.saturating_sub(8)) * 2;
    let cursor_x = opts.cursor.map(|c| x0 + c * (x1 - x0));
    let outlines: Vec<Outline> = lines
        .iter()
        .map(|l| outline(l.series, opts, x0, x1, columns, cursor_x))
        .collect();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for o in &outlines {
        lo = lo.min(o.lo);
        hi = hi.max(o.hi);
    }
    if !lo.is_finite() {
        frame.render_widget(
            block.title_bottom(Line::styled(" nothing in view ", muted)),
            area,
        );
        return;
    }
    if hi - lo < 1e-12 {
        lo -= 0.5;
        hi += 0.5;
    }
    let pad = (hi - lo) * 0.05;
    let (ylo, yhi) = (lo - pad, hi + pad);
    let ylabel = |v: f64| {
        if opts.log_y {
            axis_label(10f64.powf(v))
        } else {
            axis_label(v)
        }
    };
    let cursor_line: Vec<(f64, f64)> = cursor_x
        .map(|x| vec![(x, ylo), (x, yhi)])
        .unwrap_or_default();
    let mut datasets: Vec<Dataset> = outlines
        .iter()
        .zip(lines)
        .map(|(o, l)| {
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(l.color))
                .data(&o.points)
        })
        .collect();
    let in_view: Vec<(f64, &Mark)> = marks
        .iter()
        .filter_map(|m| Some((mark_x(m, opts.x, lines)?, m)))
        .filter(|(x, _)| (x0..=x1).contains(x))
        .collect();
    let mark_lines: Vec<Vec<(f64, f64)>> = in_view
        .iter()
        .map(|(x, _)| vec![(*x, ylo), (*x, yhi)])
        .collect();
    for ((_, m), line) in in_view.iter().zip(&mark_lines) {
        datasets.push(
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(m.color))
                .data(line),
        );
    }
    if !cursor_line.is_empty() {
        datasets.push(
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(cursor_color))
                .data(&cursor_line),
        );
    }
    let mut bottom: Vec<Span> = Vec::new();
    if let Some(cx) = cursor_x {
        bottom.push(Span::styled(format!(" {} ", x_label(cx, opts.x)), muted));
        // The mark under the cursor (within a dot column), by name.
        let near = (x1 - x0) / columns.max(1) as f64;
        for (_, m) in in_view.iter().filter(|(x, _)| (x - cx).abs() <= near) {
            bottom.push(Span::styled(
                format!("▲ {} ", m.label),
                Style::new().fg(m.color),
            ));
        }
        for (o, l) in outlines.iter().zip(lines) {
            if let Some(v) = o.at_cursor {
                bottom.push(Span::styled(
                    format!("{}:{} ", crate::format::fit(l.label, 12), compact(v)),
                    Style::new().fg(l.color),
                ));
            }
        }
    }
    let chart = Chart::new(datasets)
        .block(block.title_bottom(Line::from(bottom)))
        .x_axis(
            Axis::default()
                .bounds([x0, x1])
                .style(muted)
                .labels([x_label(x0, opts.x), x_label(x1, opts.x)]),
        )
        .y_axis(
            Axis::default()
                .bounds([ylo, yhi])
                .style(muted)
                .labels([ylabel(lo), ylabel(hi)]),
        );
    frame.render_widget(chart, area);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize, f: impl Fn(usize) -> f64) -> Series {
        let mut s = Series::default();
        for i in 0..n {
            s.push(i as i64, i as i64 * 1000, f(i));
        }
        s
    }

    #[test]
    fn a_single_spike_in_a_million_points_survives_downsampling() {
        let s = series(1_000_000, |i| if i == 777_777 { 100.0 } else { 1.0 });
        let o = outline(&s, &ChartOpts::default(), 0.0, 999_999.0, 200, None);
        assert!(o.points.len() <= 400);
        assert_eq!(o.hi, 100.0);
        assert_eq!(o.lo, 1.0);
    }

    #[test]
    fn zoom_window_log_y_and_cursor() {
        let s = series(100, |i| (i + 1) as f64);
        let mut opts = ChartOpts::default();
        let o = outline(&s, &opts, 10.0, 20.0, 50, Some(15.5));
        assert_eq!((o.lo, o.hi), (11.0, 21.0), "only the window");
        assert_eq!(
            o.at_cursor,
            Some(16.0),
            "the last point at or before the cursor"
        );
        opts.log_y = true;
        let o = outline(&s, &opts, 0.0, 99.0, 50, None);
        assert_eq!((o.lo, o.hi), (0.0, 2.0), "log10 of 1..100");
    }

    #[test]
    fn ema_smooths_and_is_debiased() {
        let s = series(50, |i| if i % 2 == 0 { 0.0 } else { 2.0 });
        let opts = ChartOpts {
            smoothing: 5,
            ..ChartOpts::default()
        }; // 0.95
        let o = outline(&s, &opts, 0.0, 49.0, 100, None);
        assert!(o.hi - o.lo < 2.0, "smoothed range {}..{}", o.lo, o.hi);
        let flat = series(10, |_| 3.0);
        let o = outline(&flat, &opts, 0.0, 9.0, 20, None);
        assert!(
            (o.lo - 3.0).abs() < 1e-9 && (o.hi - 3.0).abs() < 1e-9,
            "debiased: a flat line stays put"
        );
    }

    #[test]
    fn nan_and_inf_are_skipped() {
        let s = series(10, |i| {
            if i == 3 {
                f64::NAN
            } else if i == 4 {
                f64::INFINITY
            } else {
                1.0
            }
        });
        let o = outline(&s, &ChartOpts::default(), 0.0, 9.0, 20, None);
        assert_eq!((o.lo, o.hi), (1.0, 1.0));
    }
}
