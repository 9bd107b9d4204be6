//! Figures for `because`, written as PNG and SVG with no system libraries:
//! the font is compiled in (DejaVu Sans, see `assets/DejaVu-LICENSE.txt`).
//!
//! # Brief overview
//!
//! A [`Figure`] is plain data (bars or lines); [`save`] renders it to
//! `stem.png` and `stem.svg` in a folder.
//!
//! ```
//! use because_plot::{save, Bars, Figure};
//! let dir = std::env::temp_dir().join(format!("because-plot-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let fig = Figure::Bars(Bars {
//!     title: "Ratings".into(), x_label: "rating".into(), y_label: "count".into(),
//!     labels: vec!["1".into(), "2".into()], values: vec![3.0, 5.0], log_y: false,
//! });
//! let [png, svg] = save(&fig, &dir, "ratings").unwrap();
//! assert!(png.exists() && svg.exists());
//! ```
#![deny(missing_docs)]

use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// Errors of rendering.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Drawing failed.
    #[error("cannot draw {path}: {message}")]
    Draw {
        /// The file being drawn.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Nothing to draw.
    #[error("figure {0:?} has no data")]
    NoData(String),
}

/// Result with the plot [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A bar chart over categories.
#[derive(Clone, Debug, PartialEq)]
pub struct Bars {
    /// Title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Category labels.
    pub labels: Vec<String>,
    /// Bar heights.
    pub values: Vec<f64>,
    /// Logarithmic y axis.
    pub log_y: bool,
}

/// A named line.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// Points in x order.
    pub points: Vec<(f64, f64)>,
}

/// A line chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Lines {
    /// Title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Logarithmic x axis.
    pub log_x: bool,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Labels for integer x positions, if the x axis is categorical (time buckets).
    pub x_ticks: Option<Vec<String>>,
}

/// A matrix of values shown as coloured cells.
#[derive(Clone, Debug, PartialEq)]
pub struct Heatmap {
    /// Title.
    pub title: String,
    /// Row labels (top to bottom).
    pub rows: Vec<String>,
    /// Column labels (left to right).
    pub cols: Vec<String>,
    /// Values, row-major (`rows × cols`).
    pub values: Vec<f64>,
}

/// Points in the plane, coloured by group.
#[derive(Clone, Debug, PartialEq)]
pub struct Scatter {
    /// Title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Points: x, y and group index.
    pub points: Vec<(f64, f64, usize)>,
    /// Group names (for the legend).
    pub groups: Vec<String>,
}

/// A figure.
#[derive(Clone, Debug, PartialEq)]
pub enum Figure {
    /// Bars.
    Bars(Bars),
    /// Lines.
    Lines(Lines),
    /// A heatmap.
    Heatmap(Heatmap),
    /// A scatter plot.
    Scatter(Scatter),
}

const SIZE: (u32, u32) = (960, 540);
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and known to parse; a failure would show as missing text.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Renders `fig` to `dir/stem.png` and `dir/stem.svg`.
pub fn save(fig: &Figure, dir: &Path, stem: &str) -> Result<[PathBuf; 2]> {
    ensure_font();
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    {
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        draw(fig, &root).map_err(|m| Error::Draw {
            path: png.clone(),
            message: m,
        })?;
        root.present().map_err(|e| Error::Draw {
            path: png.clone(),
            message: e.to_string(),
        })?;
    }
    {
        let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
        draw(fig, &root).map_err(|m| Error::Draw {
            path: svg.clone(),
            message: m,
        })?;
        root.present().map_err(|e| Error::Draw {
            path: svg.clone(),
            message: e.to_string(),
        })?;
    }
    Ok([png, svg])
}

fn draw<DB: DrawingBackend>(
    fig: &Figure,
    root: &DrawingArea<DB, Shift>,
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    match fig {
        Figure::Bars(b) => draw_bars(b, root).map_err(|e| e.to_string()),
        Figure::Lines(l) => draw_lines(l, root).map_err(|e| e.to_string()),
        Figure::Heatmap(h) => draw_heatmap(h, root).map_err(|e| e.to_string()),
        Figure::Scatter(sc) => draw_scatter(sc, root).map_err(|e| e.to_string()),
    }
}

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw_bars<DB: DrawingBackend>(b: &Bars, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
    let n = b.values.len().max(1);
    let max = b.values.iter().cloned().fold(0.0, f64::max).max(1e-9);
    let labels = b.labels.clone();
    let every = (n / 16).max(1);
    let fmt_x = move |x: &f64| {
        let k = x.round() as usize;
        if (x - k as f64).abs() < 0.01 && k < labels.len() && k.is_multiple_of(every) {
            labels[k].clone()
        } else {
            String::new()
        }
    };
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(&b.title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72);
    let x_range = -0.6f64..(n as f64 - 0.4);
    let bar = |k: usize, lo: f64, v: f64| {
        Rectangle::new(
            [(k as f64 - 0.4, lo), (k as f64 + 0.4, v)],
            PALETTE[0].filled(),
        )
    };
    if b.log_y {
        let lo = b
            .values
            .iter()
            .cloned()
            .filter(|&v| v > 0.0)
            .fold(f64::INFINITY, f64::min)
            .min(1.0)
            * 0.8;
        let mut chart = builder.build_cartesian_2d(x_range, (lo..max * 1.5).log_scale())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.min(40) + 1)
            .x_label_formatter(&fmt_x)
            .x_desc(&b.x_label)
            .y_desc(&b.y_label)
            .y_label_formatter(&|y: &f64| format_number(*y))
            .label_style(("sans-serif", 14))
            .draw()?;
        chart.draw_series(
            b.values
                .iter()
                .enumerate()
                .filter(|(_, &v)| v > 0.0)
                .map(|(k, &v)| bar(k, lo, v)),
        )?;
    } else {
        let mut chart = builder.build_cartesian_2d(x_range, 0f64..max * 1.1)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.min(40) + 1)
            .x_label_formatter(&fmt_x)
            .x_desc(&b.x_label)
            .y_desc(&b.y_label)
            .y_label_formatter(&|y: &f64| format_number(*y))
            .label_style(("sans-serif", 14))
            .draw()?;
        chart.draw_series(b.values.iter().enumerate().map(|(k, &v)| bar(k, 0.0, v)))?;
    }
    Ok(())
}

fn bounds(points: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for p in points.filter(|p| p.is_finite() && (!log || *p > 0.0)) {
        lo = lo.min(p);
        hi = hi.max(p);
    }
    if !lo.is_finite() {
        return (if log { 1.0 } else { 0.0 }, 1.0);
    }
    if hi <= lo {
        hi = lo + if log { lo } else { 1.0 };
    }
    if log {
        (lo * 0.9, hi * 1.1)
    } else {
        let pad = (hi - lo) * 0.05;
        (
            if lo >= 0.0 && lo - pad < 0.0 {
                0.0
            } else {
                lo - pad
            },
            hi + pad,
        )
    }
}

fn draw_lines<DB: DrawingBackend>(l: &Lines, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>
where
    DB::ErrorType: 'static,
{
    let (x0, x1) = bounds(
        l.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)),
        l.log_x,
    );
    let (y0, y1) = bounds(
        l.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
        l.log_y,
    );
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(&l.title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72);
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            let ticks = l.x_ticks.clone();
            let fmt = move |x: &f64| match &ticks {
                Some(t) => {
                    let k = x.round();
                    if (x - k).abs() < 0.01 && k >= 0.0 && (k as usize) < t.len() {
                        t[k as usize].clone()
                    } else {
                        String::new()
                    }
                }
                None => format_number(*x),
            };
            chart
                .configure_mesh()
                .x_desc(&l.x_label)
                .y_desc(&l.y_label)
                .x_labels(8)
                .x_label_formatter(&fmt)
                .y_label_formatter(&|y: &f64| format_number(*y))
                .label_style(("sans-serif", 14))
                .draw()?;
            for (k, s) in l.series.iter().enumerate() {
                let color = PALETTE[k % PALETTE.len()];
                let pts: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .copied()
                    .filter(|&(x, y)| (!l.log_x || x > 0.0) && (!l.log_y || y > 0.0))
                    .collect();
                chart
                    .draw_series(LineSeries::new(pts, color.stroke_width(2)))?
                    .label(s.name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
            }
            if l.series.len() > 1 {
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .label_font(("sans-serif", 14))
                    .draw()?;
            }
        }};
    }
    match (l.log_x, l.log_y) {
        (false, false) => finish!(builder.build_cartesian_2d(x0..x1, y0..y1)?),
        (true, false) => finish!(builder.build_cartesian_2d((x0..x1).log_scale(), y0..y1)?),
        (false, true) => finish!(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?),
        (true, true) => {
            finish!(builder.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?)
        }
    }
    Ok(())
}

fn clip_label(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        s.chars().take(n - 1).collect::<String>() + "…"
    } else {
        s.to_string()
    }
}

fn draw_heatmap<DB: DrawingBackend>(h: &Heatmap, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
    let (nr, nc) = (h.rows.len().max(1), h.cols.len().max(1));
    let max = h
        .values
        .iter()
        .cloned()
        .fold(0.0f64, |a, v| a.max(v.abs()))
        .max(1e-12);
    let rows = h.rows.clone();
    let cols = h.cols.clone();
    let mut chart = ChartBuilder::on(root)
        .caption(&h.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(150)
        .y_label_area_size(200)
        .build_cartesian_2d(0f64..nc as f64, 0f64..nr as f64)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(nc * 2 + 1)
        .y_labels(nr * 2 + 1)
        .x_label_formatter(&|x: &f64| {
            let k = (x - 0.5).round();
            if (x - 0.5 - k).abs() < 0.01 && k >= 0.0 && (k as usize) < cols.len() {
                clip_label(&cols[k as usize], 11)
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y: &f64| {
            let k = (y - 0.5).round();
            let r = nr as f64 - 1.0 - k;
            if (y - 0.5 - k).abs() < 0.01 && r >= 0.0 && (r as usize) < rows.len() {
                clip_label(&rows[r as usize], 28)
            } else {
                String::new()
            }
        })
        .x_label_style(
            ("sans-serif", 12)
                .into_font()
                .transform(FontTransform::Rotate90),
        )
        .label_style(("sans-serif", 12))
        .draw()?;
    chart.draw_series(
        (0..h.rows.len())
            .flat_map(|r| (0..h.cols.len()).map(move |c| (r, c)))
            .map(|(r, c)| {
                let v = h.values.get(r * h.cols.len() + c).copied().unwrap_or(0.0) / max;
                // Blue for positive, red for negative, white for zero.
                let t = v.abs().min(1.0);
                let (base, other) = if v >= 0.0 {
                    ((31.0, 119.0, 180.0), 255.0)
                } else {
                    ((214.0, 39.0, 40.0), 255.0)
                };
                let mix = |b: f64| (other + (b - other) * t) as u8;
                let color = RGBColor(mix(base.0), mix(base.1), mix(base.2));
                let y = (nr - 1 - r) as f64;
                Rectangle::new([(c as f64, y), (c as f64 + 1.0, y + 1.0)], color.filled())
            }),
    )?;
    Ok(())
}

fn draw_scatter<DB: DrawingBackend>(sc: &Scatter, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>
where
    DB::ErrorType: 'static,
{
    let (x0, x1) = bounds(sc.points.iter().map(|p| p.0), false);
    let (y0, y1) = bounds(sc.points.iter().map(|p| p.1), false);
    let mut chart = ChartBuilder::on(root)
        .caption(&sc.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc(&sc.x_label)
        .y_desc(&sc.y_label)
        .label_style(("sans-serif", 12))
        .draw()?;
    let palette = [
        PALETTE[0],
        PALETTE[1],
        PALETTE[2],
        PALETTE[3],
        PALETTE[4],
        PALETTE[5],
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    for (g, name) in sc.groups.iter().enumerate().take(palette.len()) {
        let color = palette[g];
        chart
            .draw_series(
                sc.points
                    .iter()
                    .filter(|p| p.2 == g)
                    .map(|p| Circle::new((p.0, p.1), 3, color.mix(0.7).filled())),
            )?
            .label(name.clone())
            .legend(move |(x, y)| Circle::new((x + 6, y), 4, color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()?;
    Ok(())
}

/// Short number labels: 12000 as "12k", 0.25 as "0.25".
pub fn format_number(x: f64) -> String {
    let a = x.abs();
    if a >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if a >= 100.0 || (x.fract() == 0.0 && a >= 1.0) {
        format!("{x:.0}")
    } else if a >= 1.0 {
        format!("{x:.1}")
    } else if a == 0.0 {
        "0".into()
    } else {
        format!("{x:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_png_and_svg_with_text() {
        let dir = tempfile::tempdir().unwrap();
        let fig = Figure::Lines(Lines {
            title: "Long tail".into(),
            x_label: "item rank".into(),
            y_label: "interactions".into(),
            series: vec![Series {
                name: "items".into(),
                points: (1..100).map(|k| (k as f64, 1000.0 / k as f64)).collect(),
            }],
            log_x: true,
            log_y: true,
            x_ticks: None,
        });
        let [png, svg] = save(&fig, dir.path(), "tail").unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.contains("Long tail"));
        let bars = Figure::Bars(Bars {
            title: "Users".into(),
            x_label: "interactions".into(),
            y_label: "users".into(),
            labels: (0..5).map(|k| k.to_string()).collect(),
            values: vec![1.0, 10.0, 0.0, 100.0, 3.0],
            log_y: true,
        });
        save(&bars, dir.path(), "bars").unwrap();
    }

    #[test]
    fn heatmaps_and_scatter_plots() {
        let dir = tempfile::tempdir().unwrap();
        let h = Figure::Heatmap(Heatmap {
            title: "Similarity".into(),
            rows: vec!["Alien".into(), "Aliens".into()],
            cols: vec!["Predator".into(), "Heat".into(), "Up".into()],
            values: vec![0.5, 0.1, -0.2, 0.4, 0.0, 0.3],
        });
        let [_, svg] = save(&h, dir.path(), "heat").unwrap();
        assert!(std::fs::read_to_string(svg).unwrap().contains("Predator"));
        let sc = Figure::Scatter(Scatter {
            title: "Items".into(),
            x_label: "pc1".into(),
            y_label: "pc2".into(),
            points: vec![(0.0, 1.0, 0), (1.0, 0.0, 1), (0.5, 0.5, 1)],
            groups: vec!["Drama".into(), "Comedy".into()],
        });
        let [png, _] = save(&sc, dir.path(), "map").unwrap();
        assert!(png.exists());
    }

    #[test]
    fn number_labels() {
        assert_eq!(format_number(12_000.0), "12k");
        assert_eq!(format_number(2_500_000.0), "2.5M");
        assert_eq!(format_number(0.25), "0.25");
        assert_eq!(format_number(3.0), "3");
    }
}
