//! Charts for the report: `plotters` rendered to SVG (no `ttf` feature: SVG text is set by
//! the viewer, so plotters' own estimate of text extents is enough for layout). Each chart
//! has lines and point sets over simulated time, optionally on a logarithmic y axis, and
//! the run's faults marked as labelled vertical lines at their times.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// Chart size in SVG pixels.
const WIDTH: u32 = 760;
const HEIGHT: u32 = 320;

/// Colour of the fault markers: grey, so they read as annotations, not data.
const MARKER: RGBColor = RGBColor(120, 120, 120);

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Line,
    /// Unconnected points (samples).
    Points,
}

/// One series: legend, colour as `#rrggbb`, style, (x, y) points.
#[derive(Debug, Clone)]
pub struct Series {
    pub legend: String,
    pub color: &'static str,
    pub style: Style,
    pub points: Vec<(f64, f64)>,
}

/// A chart: its text, its series, and the x positions of the faults with their labels.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// A logarithmic y axis (values at or below zero are left out).
    pub log_y: bool,
    pub series: Vec<Series>,
    pub markers: Vec<(f64, String)>,
}

/// Renders `chart` as an SVG document.
pub fn render(chart: &Chart) -> Result<String, String> {
    let err = |e: &dyn std::fmt::Display| format!("drawing {:?}: {e}", chart.title);
    let points = || chart.series.iter().flat_map(|s| s.points.iter());
    let x_max = points()
        .map(|p| p.0)
        .chain(chart.markers.iter().map(|m| m.0))
        .fold(1e-9, f64::max);
    let y_max = points().map(|p| p.1).fold(0.0, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(&chart.title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60);
        if chart.log_y {
            let y_min = points()
                .map(|p| p.1)
                .filter(|y| *y > 0.0)
                .fold(f64::INFINITY, f64::min);
            let y_min = if y_min.is_finite() { y_min / 2.0 } else { 0.1 };
            // Headroom for the legend and the fault labels above the data.
            let y_max = (y_max * 30.0).max(y_min * 100.0);
            let mut ctx = builder
                .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())
                .map_err(|e| err(&e))?;
            draw(&mut ctx, chart, (y_min, y_max)).map_err(|e| err(&e))?;
        } else {
            // Headroom for the legend and the fault labels above the data.
            let y_max = (y_max * 1.5).max(1e-9);
            let mut ctx = builder
                .build_cartesian_2d(0f64..x_max, 0f64..y_max)
                .map_err(|e| err(&e))?;
            draw(&mut ctx, chart, (0.0, y_max)).map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

type Error = DrawingAreaErrorKind<std::io::Error>;

/// Mesh, fault markers, series and legend, on either kind of y axis.
fn draw<'a, Y>(
    ctx: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    chart: &Chart,
    (y_bottom, y_top): (f64, f64),
) -> Result<(), Error>
where
    Y: Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    ctx.configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .x_label_formatter(&|v| short(*v))
        .y_label_formatter(&|v| short(*v))
        // Only the bold grid: a log axis's fine lines crowd into a grey band.
        .light_line_style(WHITE)
        .y_labels(8)
        .draw()?;
    for (x, label) in &chart.markers {
        ctx.draw_series(std::iter::once(PathElement::new(
            vec![(*x, y_bottom), (*x, y_top)],
            MARKER.stroke_width(1),
        )))?;
        // Written down the line from its top, just right of it, inside the plot.
        let font = ("sans-serif", 11)
            .into_font()
            .transform(FontTransform::Rotate90)
            .color(&MARKER);
        ctx.draw_series(std::iter::once(
            EmptyElement::at((*x, y_top)) + Text::new(label.clone(), (14, 4), font),
        ))?;
    }
    for series in &chart.series {
        let rgb = hex(series.color);
        // A line through one point draws nothing: show the point.
        let style = match series.points.len() {
            1 => Style::Points,
            _ => series.style,
        };
        let drawn = match style {
            Style::Line => {
                ctx.draw_series(LineSeries::new(series.points.clone(), rgb.stroke_width(2)))?
            }
            Style::Points => ctx.draw_series(
                series
                    .points
                    .iter()
                    .map(|p| Circle::new(*p, 3, rgb.filled())),
            )?,
        };
        drawn
            .label(series.legend.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], rgb.stroke_width(2)));
    }
    ctx.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

/// `#rrggbb` → colour (black when malformed: the colours are our own constants).
fn hex(color: &str) -> RGBColor {
    let part = |i: usize| {
        color
            .get(1 + 2 * i..3 + 2 * i)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0)
    };
    RGBColor(part(0), part(1), part(2))
}

fn short(v: f64) -> String {
    match v.abs() {
        a if a >= 1e9 => format!("{:.1}G", v / 1e9),
        a if a >= 1e6 => format!("{:.1}M", v / 1e6),
        a if a >= 1e3 => format!("{:.1}k", v / 1e3),
        a if a >= 10.0 || a == 0.0 => format!("{v:.0}"),
        a if a >= 0.1 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(log_y: bool) -> Chart {
        Chart {
            title: "Redis memory over simulated time".into(),
            x_label: "simulated days".into(),
            y_label: "MB".into(),
            log_y,
            series: vec![
                Series {
                    legend: "used_memory (MB)".into(),
                    color: "#1f77b4",
                    style: Style::Line,
                    points: vec![(0.0, 3.0), (1.0, 20.0), (2.0, 25.0)],
                },
                Series {
                    legend: "samples".into(),
                    color: "#d62728",
                    style: Style::Points,
                    points: vec![(0.5, 1.0), (2.0, 2.0)],
                },
            ],
            markers: vec![(1.5, "Redis pause".into())],
        }
    }

    #[test]
    fn a_chart_has_its_title_axes_legend_lines_points_and_fault_markers() {
        for log_y in [false, true] {
            let svg = render(&chart(log_y)).expect("drawn");
            assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
            for text in [
                "Redis memory over simulated time",
                "simulated days",
                "MB",
                "used_memory (MB)",
                "samples",
                "Redis pause",
            ] {
                assert!(svg.contains(text), "log {log_y}: missing {text:?}");
            }
            // The line: one polyline through its three points (and its legend mark).
            let line = svg
                .lines()
                .filter(|l| l.contains("<polyline") && l.contains("#1F77B4"))
                .filter(|l| l.matches(',').count() == 3)
                .count();
            assert_eq!(line, 1, "log {log_y}");
            // The samples: a circle each.
            let circles = svg
                .lines()
                .filter(|l| l.contains("<circle") && l.contains("#D62728"))
                .count();
            assert_eq!(circles, 2, "log {log_y}");
            // The marker: a grey vertical line.
            assert!(svg.contains("#787878"), "log {log_y}: no fault marker");
        }
    }
}
