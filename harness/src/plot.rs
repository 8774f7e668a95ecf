//! Line charts as SVG (plotters, SVG backend). Plots are drawn from CSV rows only, never from a
//! fresh computation; the SVG carries the source CSV and the drawing command in a `<metadata>`
//! element.

use std::path::Path;

use anyhow::{ensure, Context, Result};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

/// One named line of `(x, y)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points, drawn in the order given.
    pub points: Vec<(f64, f64)>,
    /// Dashed instead of solid line.
    pub dashed: bool,
}

/// A chart of several series sharing axes.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Title above the plot.
    pub title: String,
    /// X-axis description.
    pub x_label: String,
    /// Y-axis description.
    pub y_label: String,
    /// Logarithmic x axis (all x must then be positive).
    pub x_log: bool,
    /// The lines.
    pub series: Vec<Series>,
}

/// Tableau 10: distinct colours, readable on white.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

const WIDTH: u32 = 960;
const HEIGHT: u32 = 640;

impl LineChart {
    /// Draws the chart to an SVG file at `path`; `provenance` lines (source CSV, command) go into a
    /// `<metadata id="provenance">` element, read back by [`svg_provenance`].
    pub fn write_svg(&self, path: &Path, provenance: &[String]) -> Result<()> {
        let svg = self.to_svg()?;
        let text: String = provenance
            .iter()
            .map(|l| format!("{}\n", xml_escape(l)))
            .collect();
        let block = format!("\n<metadata id=\"provenance\">\n{text}</metadata>");
        // The metadata element goes first inside the root `<svg ...>` element.
        let root_end = svg
            .find("<svg")
            .and_then(|i| svg[i..].find('>').map(|j| i + j + 1))
            .context("plotters wrote no <svg> element")?;
        let (head, tail) = svg.split_at(root_end);
        std::fs::write(path, format!("{head}{block}{tail}"))
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// The chart as an SVG document.
    pub fn to_svg(&self) -> Result<String> {
        let points = || self.series.iter().flat_map(|s| s.points.iter());
        ensure!(points().next().is_some(), "chart '{}' has no points", self.title);
        ensure!(
            points().all(|(x, y)| x.is_finite() && y.is_finite()),
            "chart '{}' has non-finite points",
            self.title
        );
        let (x_min, x_max) = bounds(points().map(|p| p.0));
        let (y_min, y_max) = bounds(points().map(|p| p.1));
        let y_pad = ((y_max - y_min) * 0.05).max(0.1);
        let y_range = (y_min - y_pad)..(y_max + y_pad);
        let mut svg = String::new();
        if self.x_log {
            ensure!(x_min > 0.0, "chart '{}': log x axis needs positive x", self.title);
            let x_range = (x_min / 1.5..x_max * 1.5).log_scale();
            self.draw(&mut svg, x_range, y_range)?;
        } else {
            let x_pad = ((x_max - x_min) * 0.03).max(0.5);
            self.draw(&mut svg, (x_min - x_pad)..(x_max + x_pad), y_range)?;
        }
        Ok(svg)
    }

    /// The corner whose 40% x 40% region holds the fewest points (ties: lower left), so the legend
    /// hides as little data as possible.
    fn legend_corner(&self) -> SeriesLabelPosition {
        let pts: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .collect();
        let xs = pts.iter().map(|p| {
            if self.x_log {
                p.0.max(f64::MIN_POSITIVE).ln()
            } else {
                p.0
            }
        });
        let (x0, x1) = bounds(xs);
        let (y0, y1) = bounds(pts.iter().map(|p| p.1));
        let fx = |x: f64| {
            let x = if self.x_log {
                x.max(f64::MIN_POSITIVE).ln()
            } else {
                x
            };
            (x - x0) / (x1 - x0).max(1e-300)
        };
        let fy = |y: f64| (y - y0) / (y1 - y0).max(1e-300);
        let count = |left: bool, low: bool| {
            pts.iter()
                .filter(|p| {
                    let (u, v) = (fx(p.0), fy(p.1));
                    (if left { u <= 0.4 } else { u >= 0.6 }) && (if low { v <= 0.4 } else { v >= 0.6 })
                })
                .count()
        };
        [
            (SeriesLabelPosition::LowerLeft, count(true, true)),
            (SeriesLabelPosition::LowerRight, count(false, true)),
            (SeriesLabelPosition::UpperRight, count(false, false)),
            (SeriesLabelPosition::UpperLeft, count(true, false)),
        ]
        .into_iter()
        .min_by_key(|c| c.1)
        .map_or(SeriesLabelPosition::LowerLeft, |c| c.0)
    }

    fn draw<X>(&self, svg: &mut String, x_range: X, y_range: std::ops::Range<f64>) -> Result<()>
    where
        X: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
    {
        let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(x_range, y_range)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .label_style(("sans-serif", 14))
            .x_label_formatter(&|x| format_tick(*x))
            .draw()
            .map_err(plot_error)?;
        for (i, s) in self.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let style = ShapeStyle::from(color).stroke_width(2);
            let points = s.points.iter().copied();
            let drawn = if s.dashed {
                chart.draw_series(DashedLineSeries::new(points, 8, 5, style))
            } else {
                chart.draw_series(LineSeries::new(points, style))
            };
            let dashed = s.dashed;
            drawn
                .map_err(plot_error)?
                .label(s.label.as_str())
                .legend(move |(x, y)| {
                    let end = if dashed { x + 9 } else { x + 20 };
                    PathElement::new(vec![(x, y), (end, y)], style)
                });
            chart
                .draw_series(
                    s.points
                        .iter()
                        .map(move |&p| Circle::new(p, 3, ShapeStyle::from(color).filled())),
                )
                .map_err(plot_error)?;
        }
        chart
            .configure_series_labels()
            .position(self.legend_corner())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
        Ok(())
    }
}

/// The provenance lines written by [`LineChart::write_svg`]; empty if there are none.
pub fn svg_provenance(svg: &str) -> Vec<String> {
    svg.split_once("<metadata id=\"provenance\">")
        .and_then(|(_, rest)| rest.split_once("</metadata>"))
        .map_or_else(Vec::new, |(text, _)| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(xml_unescape)
                .collect()
        })
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// Whole numbers without a decimal point, others with up to three significant decimals.
fn format_tick(v: f64) -> String {
    if v == v.round() && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}").trim_end_matches('0').to_owned()
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// plotters' errors borrow the backend; keep only the message.
fn plot_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting failed: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(x_log: bool) -> LineChart {
        LineChart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            x_log,
            series: vec![
                Series {
                    label: "a".into(),
                    points: vec![(1.0, -1.0), (10.0, -3.0), (100.0, -5.0)],
                    dashed: false,
                },
                Series {
                    label: "b".into(),
                    points: vec![(3.0, 0.0), (4.0, 1.0)],
                    dashed: true,
                },
            ],
        }
    }

    #[test]
    fn svg_has_lines_and_provenance() {
        for x_log in [false, true] {
            let dir = crate::test_dir(if x_log { "plot_log" } else { "plot_lin" });
            let path = dir.join("c.svg");
            let lines = vec!["source: x.csv".to_owned(), "command: a --out <b> & c".to_owned()];
            chart(x_log).write_svg(&path, &lines).unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains("<svg"));
            assert!(text.contains("<polyline") || text.contains("<path"));
            assert!(text.contains("&lt;b&gt; &amp; c"));
            assert_eq!(svg_provenance(&text), lines);
            std::fs::remove_dir_all(&dir).unwrap();
        }
        assert!(svg_provenance("<svg/>").is_empty());
    }

    #[test]
    fn ticks() {
        assert_eq!(format_tick(100.0), "100");
        assert_eq!(format_tick(-3.0), "-3");
        assert_eq!(format_tick(2.5), "2.5");
    }

    #[test]
    fn rejects_empty_and_non_finite() {
        let mut c = chart(false);
        c.series.clear();
        assert!(c.to_svg().is_err());
        let mut c = chart(true);
        c.series[0].points[0].0 = 0.0;
        assert!(c.to_svg().is_err());
        let mut c = chart(false);
        c.series[0].points[0].1 = f64::NAN;
        assert!(c.to_svg().is_err());
    }
}
