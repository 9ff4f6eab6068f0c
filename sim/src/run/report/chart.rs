//! Line charts for the report: `plotters` rendered to SVG (no `ttf` feature: SVG text is
//! set by the viewer, so plotters' own estimate of text extents is enough for layout).

use plotters::prelude::*;

/// Chart size in SVG pixels.
const WIDTH: u32 = 720;
const HEIGHT: u32 = 300;

/// One line of a chart: (legend, colour as `#rrggbb`, points).
pub type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// A line chart of one or more series of (x, y) points; x in simulated days.
pub fn line_chart(title: &str, y_label: &str, series: &[Series<'_>]) -> Result<String, String> {
    let points = series.iter().flat_map(|(_, _, p)| p.iter());
    let (mut x_max, mut y_max) = (0.0f64, 0.0f64);
    for (x, y) in points {
        x_max = x_max.max(*x);
        y_max = y_max.max(*y);
    }
    let (x_max, y_max) = (x_max.max(1e-9), (y_max * 1.1).max(1e-9));
    let err = |e: &dyn std::fmt::Display| format!("drawing {title:?}: {e}");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("simulated days")
            .y_desc(y_label)
            .x_label_formatter(&|v| short(*v))
            .y_label_formatter(&|v| short(*v))
            .draw()
            .map_err(|e| err(&e))?;
        for (name, color, points) in series {
            let rgb = hex(color);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), rgb.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], rgb));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
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
        _ => format!("{v:.1}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_its_title_axes_legend_and_one_line_per_series() {
        let series = vec![
            (
                "used_memory (MB)",
                "#1f77b4",
                vec![(0.0, 3.0), (1.0, 20.0), (2.0, 25.0)],
            ),
            ("other", "#d62728", vec![(0.0, 1.0), (2.0, 2.0)]),
        ];
        let svg = line_chart("Redis memory over simulated time", "MB", &series).expect("drawn");
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        for text in [
            "Redis memory over simulated time",
            "simulated days",
            "MB",
            "used_memory (MB)",
            "other",
        ] {
            assert!(svg.contains(text), "missing {text:?}");
        }
        // Each series: its line (as many points as it has) and its legend mark.
        for (colour, points) in [("#1F77B4", 3), ("#D62728", 2)] {
            let lines: Vec<&str> = svg
                .lines()
                .filter(|l| l.contains("<polyline") && l.contains(colour))
                .collect();
            assert_eq!(lines.len(), 2, "{colour}: {lines:?}");
            assert!(
                lines.iter().any(|l| l.matches(',').count() == points),
                "{colour}: {lines:?}"
            );
        }
    }
}
