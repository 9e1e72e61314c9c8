//! Bar charts drawn as SVG when the report is written, so the file needs
//! no charting script and nothing from the network to show them.
//!
//! In: bars (a label, one or more stacked segments, each a count with a
//! CSS class). Out: an `<svg>` element whose every segment is a `<rect>`
//! carrying its count in `data-value` and a `<title>` tooltip, and whose
//! `data-total` is the sum of all segments, so what a chart shows can be
//! checked against the numbers it was drawn from.

use maud::{Markup, html};

/// One segment of a bar.
#[derive(Debug, Clone)]
pub struct Segment {
    /// What the segment counts (`done`, `404`): shown in its tooltip.
    pub name: String,
    pub value: i64,
    /// The CSS class that colours it.
    pub class: &'static str,
}

/// One bar: its label under the axis and its segments, bottom first.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub segments: Vec<Segment>,
}

impl Bar {
    /// A bar of one segment.
    pub fn single(label: impl Into<String>, value: i64, class: &'static str) -> Bar {
        let label = label.into();
        Bar {
            segments: vec![Segment {
                name: label.clone(),
                value,
                class,
            }],
            label,
        }
    }

    fn total(&self) -> i64 {
        self.segments.iter().map(|s| s.value).sum()
    }
}

/// A vertical bar chart.
#[derive(Debug, Clone)]
pub struct BarChart {
    /// `data-chart` of the `<svg>`: what the chart is, for scripts and tests.
    pub id: &'static str,
    /// Read by screen readers (`aria-label`).
    pub description: String,
    pub bars: Vec<Bar>,
    /// Bar values are divided by this before they are drawn and labelled
    /// (a count of pages per bucket over the bucket's seconds gives pages
    /// per second); `data-value` keeps the count.
    pub scale: f64,
    /// Unit of the scaled values, after the top of the axis (`pages/s`).
    pub unit: &'static str,
    /// Label every bar (categories); otherwise only the first and last
    /// (a time axis).
    pub label_every_bar: bool,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 34.0;
/// The least height of a segment that counts anything.
const MIN_HEIGHT: f64 = 1.5;

impl BarChart {
    /// The chart as an `<svg>` element (the caller gives it a heading).
    pub fn render(&self) -> Markup {
        let total: i64 = self.bars.iter().map(Bar::total).sum();
        let scale = if self.scale > 0.0 { self.scale } else { 1.0 };
        let max = self.bars.iter().map(Bar::total).max().unwrap_or(0).max(1) as f64 / scale;
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let slot = plot_w / self.bars.len().max(1) as f64;
        let gap = if slot > 6.0 { slot * 0.18 } else { 0.0 };
        let bar_w = round((slot - gap).max(0.5));
        let y_of = |v: f64| TOP + plot_h - v / max * plot_h;
        let last = self.bars.len().saturating_sub(1);
        let bars: Vec<DrawnBar> = self
            .bars
            .iter()
            .enumerate()
            .map(|(i, bar)| {
                let x = LEFT + i as f64 * slot + gap / 2.0;
                let mut base = 0.0;
                let rects = bar
                    .segments
                    .iter()
                    .map(|seg| {
                        let v = seg.value as f64 / scale;
                        let top = y_of(base + v);
                        // A count of one beside thousands still shows.
                        let h = if seg.value > 0 {
                            (y_of(base) - top).max(MIN_HEIGHT)
                        } else {
                            0.0
                        };
                        base += v;
                        (seg, round(y_of(base - v) - h), round(h))
                    })
                    .collect();
                let label = if self.label_every_bar {
                    Some((round(x + bar_w / 2.0), "middle"))
                } else if i == 0 {
                    Some((round(x), "start"))
                } else if i == last {
                    Some((round(x + bar_w), "end"))
                } else {
                    None
                };
                DrawnBar {
                    bar,
                    x: round(x),
                    rects,
                    label,
                }
            })
            .collect();
        html! {
            svg.chart xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
                role="img" aria-label=(self.description) data-chart=(self.id) data-total=(total) {
                line.axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(TOP + plot_h) {}
                line.axis x1=(LEFT) y1=(TOP + plot_h) x2=(WIDTH - RIGHT) y2=(TOP + plot_h) {}
                line.grid x1=(LEFT) y1=(TOP) x2=(WIDTH - RIGHT) y2=(TOP) {}
                text.tick x=(LEFT - 6.0) y=(TOP + 4.0) text-anchor="end" { (axis_number(max)) }
                text.tick x=(LEFT - 6.0) y=(TOP + plot_h + 4.0) text-anchor="end" { "0" }
                @if !self.unit.is_empty() {
                    text.unit x=(LEFT - 6.0) y=(TOP - 12.0) { (self.unit) }
                }
                @for d in &bars {
                    g.bar data-label=(d.bar.label) {
                        @for (seg, y, h) in &d.rects {
                            rect class=(seg.class) x=(d.x) y=(y) width=(bar_w) height=(h) data-value=(seg.value) {
                                title { (d.bar.label) " — " (seg.name) ": " (crate::report::html::int(seg.value)) }
                            }
                        }
                    }
                    @if let Some((lx, anchor)) = d.label {
                        text.tick x=(lx) y=(TOP + plot_h + 16.0) text-anchor=(anchor) { (d.bar.label) }
                    }
                }
            }
        }
    }
}

/// A bar placed on the plot: its left edge, each segment's top and
/// height, and where its label goes (if it has one).
struct DrawnBar<'a> {
    bar: &'a Bar,
    x: f64,
    rects: Vec<(&'a Segment, f64, f64)>,
    label: Option<(f64, &'static str)>,
}

/// A number for an axis: whole numbers as they are, others to one or two
/// significant decimals.
fn axis_number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Coordinates to a tenth of a unit: enough on any screen, and short.
fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_segment_is_a_rect_with_its_count_and_the_total_is_their_sum() {
        let chart = BarChart {
            id: "t",
            description: "test".into(),
            bars: vec![
                Bar::single("a", 3, "ok"),
                Bar {
                    label: "b".into(),
                    segments: vec![
                        Segment {
                            name: "done".into(),
                            value: 5,
                            class: "ok",
                        },
                        Segment {
                            name: "failed".into(),
                            value: 2,
                            class: "bad",
                        },
                    ],
                },
                Bar::single("<c>", 0, "ok"),
            ],
            scale: 1.0,
            unit: "",
            label_every_bar: true,
        };
        let svg = chart.render().into_string();
        assert!(svg.contains(r#"data-total="10""#), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 4);
        for v in ["3", "5", "2", "0"] {
            assert!(svg.contains(&format!(r#"data-value="{v}""#)), "{v}: {svg}");
        }
        // Labels are text, escaped.
        assert!(svg.contains("&lt;c&gt;") && !svg.contains("<c>"), "{svg}");
        // The tallest bar reaches the top of the plot.
        assert!(svg.contains(&format!(r#"y="{TOP}""#)), "{svg}");
    }

    #[test]
    fn axis_numbers_are_short() {
        assert_eq!(axis_number(12.0), "12");
        assert_eq!(axis_number(12.4), "12");
        assert_eq!(axis_number(2.34), "2.3");
        assert_eq!(axis_number(0.125), "0.12");
    }
}
