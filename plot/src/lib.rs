//! Line and scatter charts rendered to PNG bytes. Reports describe what to
//! draw; callers write the bytes where they belong (atomically).
//!
//! Never depends on libtorch (`tch`), tract or another squeezebox crate:
//! it draws what it is given.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::OnceLock;

use plotters::coord::ranged1d::{AsRangedCoord, DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Chart size in pixels: readable on a README page.
const SIZE: (u32, u32) = (960, 640);
const FONT: &str = "sans-serif";
/// Where Debian's fonts-dejavu-core puts the font (setup.sh installs it).
const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("no font for chart text: {0} (install fonts-dejavu-core or set SQUEEZEBOX_FONT to a .ttf file)")]
    Font(String),
    #[error("chart {title:?}: {why}")]
    Draw { title: String, why: String },
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Points joined in order, for curves such as accuracy against sparsity.
    Line,
    /// Labelled points, for comparing separate models.
    Points,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    /// Text written beside the point.
    pub label: Option<String>,
}

impl Point {
    pub fn new(x: f64, y: f64) -> Point {
        Point { x, y, label: None }
    }

    pub fn labelled(x: f64, y: f64, label: impl Into<String>) -> Point {
        Point {
            x,
            y,
            label: Some(label.into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend's entry.
    pub name: String,
    pub mark: Mark,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// A logarithmic x axis, for quantities spanning decades (bytes).
    pub log_x: bool,
    /// Where the legend goes: a corner the points leave empty.
    pub legend: Corner,
    pub series: Vec<Series>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corner {
    UpperLeft,
    UpperRight,
    LowerLeft,
    LowerRight,
}

impl Chart {
    /// The chart as a PNG file's bytes.
    pub fn render_png(&self) -> Result<Vec<u8>, PlotError> {
        load_font()?;
        let fail = |why: String| PlotError::Draw {
            title: self.title.clone(),
            why,
        };
        let points: Vec<&Point> = self.series.iter().flat_map(|s| &s.points).collect();
        if points.is_empty() {
            return Err(fail("nothing to plot".into()));
        }
        if self.log_x && points.iter().any(|p| p.x <= 0.0) {
            return Err(fail("a logarithmic x axis needs positive values".into()));
        }
        let x = padded(points.iter().map(|p| self.axis_x(p.x)));
        let y = padded(points.iter().map(|p| p.y));
        let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
            let drawn = if self.log_x {
                self.draw(&root, LogTicks(x), y)
            } else {
                self.draw(&root, x, y)
            };
            drawn.and_then(|()| root.present().map_err(|e| e.to_string()))
        }
        .map_err(fail)?;
        let mut png = Vec::new();
        image::RgbImage::from_raw(SIZE.0, SIZE.1, rgb)
            .expect("the buffer has the chart's size")
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| PlotError::Draw {
                title: self.title.clone(),
                why: format!("cannot encode PNG: {e}"),
            })?;
        Ok(png)
    }

    /// Where a value sits along the x axis: a log axis is drawn linearly in
    /// log10 space, labelled with the values themselves.
    fn axis_x(&self, x: f64) -> f64 {
        if self.log_x {
            x.log10()
        } else {
            x
        }
    }

    fn draw<X>(
        &self,
        root: &DrawingArea<BitMapBackend<'_>, Shift>,
        x: X,
        y: Range<f64>,
    ) -> Result<(), String>
    where
        X: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
    {
        let text = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|e| text(&e))?;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FONT, 26))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(x, y)
            .map_err(|e| text(&e))?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&|v| compact(if self.log_x { 10f64.powf(*v) } else { *v }))
            .y_label_formatter(&|v| compact(*v))
            .light_line_style(WHITE)
            .label_style((FONT, 15))
            .draw()
            .map_err(|e| text(&e))?;
        for (i, series) in self.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let at = |p: &Point| (self.axis_x(p.x), p.y);
            if series.mark == Mark::Line {
                chart
                    .draw_series(LineSeries::new(
                        series.points.iter().map(at),
                        color.stroke_width(2),
                    ))
                    .map_err(|e| text(&e))?;
            }
            chart
                .draw_series(series.points.iter().map(|p| {
                    EmptyElement::at(at(p))
                        + Circle::new((0, 0), 4, color.filled())
                        + Text::new(p.label.clone().unwrap_or_default(), (6, -16), (FONT, 14))
                }))
                .map_err(|e| text(&e))?
                .label(&series.name)
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
        }
        chart
            .configure_series_labels()
            .position(match self.legend {
                Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
                Corner::UpperRight => SeriesLabelPosition::UpperRight,
                Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
                Corner::LowerRight => SeriesLabelPosition::LowerRight,
            })
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 15))
            .draw()
            .map_err(|e| text(&e))
    }
}

/// An axis label: 250000 as "250k", 1500000 as "1.5M", 0.25 as "0.25".
fn compact(v: f64) -> String {
    let (scaled, suffix) = match v.abs() {
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let text = format!("{scaled:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{suffix}")
}

/// The values' range with an 8% margin, so points do not sit on the frame.
fn padded(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let pad = if hi > lo {
        (hi - lo) * 0.08
    } else {
        lo.abs().max(1.0) * 0.1
    };
    lo - pad..hi + pad
}

/// A log axis drawn linearly in log10 space, with ticks at 1, 2 and 5 times
/// the powers of ten (plotters' own log axis labels only the powers).
struct LogTicks(Range<f64>);

impl Ranged for LogTicks {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        RangedCoordf64::from(self.0.clone()).map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        log_ticks(&self.0)
    }

    fn range(&self) -> Range<f64> {
        self.0.clone()
    }
}

/// 1, 2 and 5 times each power of ten inside `range` (in log10 space).
fn log_ticks(range: &Range<f64>) -> Vec<f64> {
    let decades = range.start.floor() as i32..=range.end.ceil() as i32;
    decades
        .flat_map(|d| [1.0, 2.0, 5.0].map(|m: f64| (m * 10f64.powi(d)).log10()))
        .filter(|t| range.contains(t))
        .collect()
}

/// Registers the chart font once per process: `SQUEEZEBOX_FONT` when set,
/// else DejaVu Sans where Debian installs it.
fn load_font() -> Result<(), PlotError> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let path = std::env::var_os("SQUEEZEBOX_FONT")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_FONT));
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font(FONT, FontStyle::Normal, bytes)
                .map_err(|_| format!("{}: not a TrueType font", path.display()))
        })
        .clone()
        .map_err(PlotError::Font)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(log_x: bool, points: Vec<Point>) -> Chart {
        Chart {
            title: "accuracy against bytes".into(),
            x_label: "bytes".into(),
            y_label: "accuracy %".into(),
            log_x,
            legend: Corner::LowerRight,
            series: vec![Series {
                name: "squeeze1".into(),
                mark: Mark::Points,
                points,
            }],
        }
    }

    #[test]
    fn renders_a_png_of_the_chart_size() {
        let points = vec![
            Point::labelled(595_754.0, 82.9, "f32"),
            Point::labelled(172_514.0, 82.75, "int8"),
        ];
        let png = chart(true, points).render_png().unwrap();
        let picture = image::load_from_memory(&png).unwrap();
        assert_eq!((picture.width(), picture.height()), SIZE);
        // Something besides the white background was drawn.
        let rgb = picture.to_rgb8();
        assert!(rgb.pixels().any(|p| p.0 != [255, 255, 255]));
    }

    #[test]
    fn refuses_what_it_cannot_draw() {
        let empty = chart(false, vec![]).render_png().unwrap_err();
        assert!(empty.to_string().contains("nothing to plot"), "{empty}");
        let negative = chart(true, vec![Point::new(0.0, 1.0)])
            .render_png()
            .unwrap_err();
        assert!(negative.to_string().contains("positive"), "{negative}");
    }

    #[test]
    fn axis_labels_are_short() {
        assert_eq!(compact(250_000.0), "250k");
        assert_eq!(compact(1_500_000.0), "1.5M");
        assert_eq!(compact(0.25), "0.25");
        assert_eq!(compact(82.0), "82");
    }

    #[test]
    fn margins_keep_points_inside() {
        let r = padded([1.0, 3.0].into_iter());
        assert!(r.start < 1.0 && r.end > 3.0);
        let r = padded([100.0, 100.0].into_iter());
        assert!(r.start < 100.0 && r.end > 100.0);
        let ticks: Vec<f64> = log_ticks(&(4.9..6.5))
            .iter()
            .map(|t| 10f64.powf(*t).round())
            .collect();
        assert_eq!(
            ticks,
            [100_000.0, 200_000.0, 500_000.0, 1_000_000.0, 2_000_000.0]
        );
    }
}
