//! Plots to PNG or SVG files: overlaid step histograms ([`plot_hist`]) and curves with error
//! bands ([`plot_lines`]), ratio plots of systematic variations ([`plot_ratio`]), and values at
//! named categories with a band ([`plot_points`]), and heat maps of a matrix ([`plot_heatmap`]).
//!
//! Text is drawn with DejaVu Sans, bundled in the binary and registered with plotters on first
//! use, so plots render on machines without any system fonts. A plot is rendered into memory
//! first ([`render_hist`], [`render_lines`]) and then written atomically, so a failed plot never
//! leaves a half-written file behind.
//!
//! Layout follows common HEP conventions: a framed plot area, the legend in the upper right
//! with head-room reserved above the data so it never hides a curve, and colours from the
//! colour-blind-friendly 10-colour palette of M. Petroff (arXiv:2107.02270).

mod axis;
mod heatmap;
mod hist;
mod lines;
mod points;
mod ratio;

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use image::codecs::png::PngEncoder;
use image::{ColorType, ImageEncoder};
use plotters::backend::RGBPixel;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::error::{Error, Result};
use crate::fsutil::atomic_write_bytes;
use axis::Axis;

pub use heatmap::plot_heatmap;
pub use hist::{plot_hist, render_hist, HistSeries};
pub use lines::{plot_lines, render_lines, LineSeries};
pub use points::{plot_points, render_points, PointSeries, PointsChart, MAX_CATEGORIES};
pub use ratio::{plot_ratio, render_ratio, RatioSeries};

/// Smallest and largest accepted image width or height, in pixels.
pub const SIZE_RANGE: (u32, u32) = (100, 8000);

/// Image file format, chosen from the file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Portable Network Graphics (raster).
    Png,
    /// Scalable Vector Graphics (text stays text).
    Svg,
}

impl Format {
    /// The format for `path` from its extension (`.png` or `.svg`, any case).
    pub fn from_path(path: &Path) -> Result<Format> {
        Format::detect("plot", path)
    }

    /// Like [`Format::from_path`], naming `func` in the error.
    pub(crate) fn detect(func: &str, path: &Path) -> Result<Format> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("png") => Ok(Format::Png),
            Some("svg") => Ok(Format::Svg),
            _ => Err(Error::arg(
                func,
                format!(
                    "cannot tell the image format of '{}'; expected a file name ending in .png or .svg",
                    path.display()
                ),
            )),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Png => "png",
            Format::Svg => "svg",
        })
    }
}

/// Labels, scales and size of a plot.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotOptions {
    /// Title above the plot; empty for none.
    pub title: String,
    /// Label of the x axis; empty for none.
    pub xlabel: String,
    /// Label of the y axis; empty for none.
    pub ylabel: String,
    /// Logarithmic y axis. Values ≤ 0 (empty bins, a band reaching below zero) are clipped to
    /// the bottom of the axis; at least one value must be positive.
    pub logy: bool,
    /// Logarithmic x axis. All bin edges / x values must be positive.
    pub logx: bool,
    /// Image width in pixels (100–8000).
    pub width: u32,
    /// Image height in pixels (100–8000).
    pub height: u32,
    /// Histograms only: scale each series (and its errors) to unit area, Σ countᵢ·widthᵢ = 1.
    pub density: bool,
}

impl Default for PlotOptions {
    /// 800×600 pixels, linear axes, no title or labels, no normalisation.
    fn default() -> Self {
        PlotOptions {
            title: String::new(),
            xlabel: String::new(),
            ylabel: String::new(),
            logy: false,
            logx: false,
            width: 800,
            height: 600,
            density: false,
        }
    }
}

impl PlotOptions {
    /// Check the image size.
    pub(crate) fn validate(&self, func: &str) -> Result<()> {
        let (lo, hi) = SIZE_RANGE;
        for (key, v) in [("width", self.width), ("height", self.height)] {
            if !(lo..=hi).contains(&v) {
                return Err(Error::BadOption {
                    func: func.into(),
                    key: key.into(),
                    problem: format!("must be between {lo} and {hi} pixels, got {v}"),
                });
            }
        }
        Ok(())
    }
}

// === Fonts ===

/// DejaVu Sans, see `assets/fonts/LICENSE`.
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Register the bundled font as plotters' "sans-serif", once per process.
fn ensure_font(func: &str) -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font("sans-serif", FontStyle::Normal, DEJAVU_SANS).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::arg(func, "the bundled DejaVu Sans font could not be loaded"))
    }
}

// === Colours and sizes ===

/// M. Petroff's 10-colour palette (arXiv:2107.02270), in its recommended order.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x3f, 0x90, 0xda),
    RGBColor(0xff, 0xa9, 0x0e),
    RGBColor(0xbd, 0x1f, 0x01),
    RGBColor(0x94, 0xa4, 0xa2),
    RGBColor(0x83, 0x2d, 0xb6),
    RGBColor(0xa9, 0x6b, 0x59),
    RGBColor(0xe7, 0x63, 0x00),
    RGBColor(0xb9, 0xac, 0x70),
    RGBColor(0x71, 0x75, 0x81),
    RGBColor(0x92, 0xda, 0xdd),
];

/// Colour of the `i`-th series (the palette repeats after 10).
pub(crate) fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Pixel sizes of text, lines and margins, scaled with the image size.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    width: f64,
    height: f64,
    has_title: bool,
    title_px: f64,
    desc_px: f64,
    tick_px: f64,
    legend_px: f64,
    margin: f64,
    /// Width of data lines.
    pub(crate) line_w: u32,
    /// Length of the line sample in a legend entry.
    pub(crate) key_len: i32,
}

impl Layout {
    /// Sizes for an image of `opts.width × opts.height` (reference: 800×600).
    pub(crate) fn new(opts: &PlotOptions) -> Self {
        let (w, h) = (f64::from(opts.width), f64::from(opts.height));
        // Text follows the image area, but never outgrows the shorter side.
        let s = (w * h / 480_000.0).sqrt().min(1.25 * (w / 800.0).min(h / 600.0)).clamp(0.5, 4.0);
        Layout {
            width: w,
            height: h,
            has_title: !opts.title.is_empty(),
            title_px: 26.0 * s,
            desc_px: 22.0 * s,
            tick_px: 18.0 * s,
            legend_px: 18.0 * s,
            margin: 14.0 * s,
            line_w: (2.0 * s).round().max(1.0) as u32,
            key_len: (28.0 * s).round() as i32,
        }
    }

    fn x_area(&self) -> f64 {
        self.tick_px * 1.6 + self.desc_px * 1.5
    }

    fn y_area(&self, y: &Axis) -> f64 {
        let chars = y.major().iter().map(|v| y.label(*v).chars().count()).max().unwrap_or(1);
        chars as f64 * self.tick_px * 0.62 + self.tick_px * 0.8 + self.desc_px * 1.6
    }

    fn plot_height(&self) -> f64 {
        let title = if self.has_title { self.title_px * 1.5 } else { 0.0 };
        (self.height - 2.0 * self.margin - title - self.x_area()).max(10.0)
    }

    fn plot_width(&self) -> f64 {
        // Assumes y tick labels of about five characters; only used to choose tick counts.
        let y_area = 5.0 * self.tick_px * 0.62 + self.tick_px * 0.8 + self.desc_px * 1.6;
        (self.width - 3.0 * self.margin - y_area).max(10.0)
    }

    /// How many labelled ticks fit on the x axis.
    pub(crate) fn x_ticks(&self) -> usize {
        (self.plot_width() / (self.tick_px * 5.0)) as usize
    }

    /// How many labelled ticks fit on the y axis.
    pub(crate) fn y_ticks(&self) -> usize {
        (self.plot_height() / (self.tick_px * 2.6)) as usize
    }

    /// Fraction of the plot height taken by a legend with `entries` lines (0 for none).
    pub(crate) fn legend_fraction(&self, entries: usize) -> f64 {
        if entries == 0 {
            return 0.0;
        }
        let legend = entries as f64 * self.legend_px * 1.05 + 2.0 * self.margin * 0.8 + 12.0;
        legend / self.plot_height()
    }
}

// === Rendering ===

/// A prepared plot: axes fixed, data checked, ready to paint on any backend.
pub(crate) trait Figure {
    /// The x axis.
    fn x(&self) -> &Axis;
    /// The y axis.
    fn y(&self) -> &Axis;
    /// Number of legend entries (series with a non-empty label).
    fn legend_entries(&self) -> usize;
    /// Draw the data onto the chart (axes, frame and legend are drawn by the caller).
    fn paint<'a, DB: DrawingBackend + 'a>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<Axis, Axis>>,
        layout: &Layout,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

/// Render `fig` to PNG or SVG bytes; drawing errors name `target`.
pub(crate) fn render(
    func: &str,
    fig: &impl Figure,
    opts: &PlotOptions,
    format: Format,
    target: &Path,
) -> Result<Vec<u8>> {
    ensure_font(func)?;
    let layout = Layout::new(opts);
    let fail = |e: &dyn fmt::Display| Error::format(target, format!("{func}: could not draw the {format} plot: {e}"));
    let (w, h) = (opts.width, opts.height);
    match format {
        Format::Png => {
            let mut pixels = vec![0u8; w as usize * h as usize * 3];
            {
                let backend =
                    BitMapBackend::<RGBPixel>::with_buffer_and_format(&mut pixels, (w, h)).map_err(|e| fail(&e))?;
                draw(backend.into_drawing_area(), fig, opts, &layout).map_err(|e| fail(&e))?;
            }
            let mut png = Vec::new();
            PngEncoder::new(&mut png).write_image(&pixels, w, h, ColorType::Rgb8).map_err(|e| fail(&e))?;
            Ok(png)
        }
        Format::Svg => {
            let mut svg = String::new();
            {
                let backend = SVGBackend::with_string(&mut svg, (w, h));
                draw(backend.into_drawing_area(), fig, opts, &layout).map_err(|e| fail(&e))?;
            }
            Ok(svg.into_bytes())
        }
    }
}

/// Render `fig` in the format of `path`'s extension and write it there atomically.
pub(crate) fn write(func: &str, path: &Path, opts: &PlotOptions, fig: &impl Figure) -> Result<()> {
    let format = Format::detect(func, path)?;
    let bytes = render(func, fig, opts, format, path)?;
    atomic_write_bytes(path, &bytes)
}

/// Where `render_*` errors point: there is no file yet.
pub(crate) const IN_MEMORY: &str = "(plot in memory)";

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    fig: &impl Figure,
    opts: &PlotOptions,
    layout: &Layout,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let font = |px: f64| ("sans-serif", px).into_font();
    let mut builder = ChartBuilder::on(&root);
    builder
        .margin(layout.margin as u32)
        .margin_right((layout.margin * 2.0) as u32)
        .x_label_area_size(layout.x_area() as u32)
        .y_label_area_size(layout.y_area(fig.y()) as u32);
    if layout.has_title {
        builder.caption(&opts.title, font(layout.title_px));
    }
    let mut chart = builder.build_cartesian_2d(fig.x().clone(), fig.y().clone())?;

    let mut mesh = chart.configure_mesh();
    mesh.label_style(font(layout.tick_px))
        .axis_desc_style(font(layout.desc_px))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.05));
    if !opts.xlabel.is_empty() {
        mesh.x_desc(opts.xlabel.as_str());
    }
    if !opts.ylabel.is_empty() {
        mesh.y_desc(opts.ylabel.as_str());
    }
    mesh.draw()?;

    fig.paint(&mut chart, layout)?;

    // Frame the whole plot area, as HEP plots usually are.
    let frame = chart.plotting_area().strip_coord_spec();
    let (pw, ph) = frame.dim_in_pixel();
    frame.draw(&Rectangle::new([(0, 0), (pw as i32 - 1, ph as i32 - 1)], BLACK.stroke_width(1)))?;

    if fig.legend_entries() > 0 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .margin((layout.margin * 0.8) as u32)
            .legend_area_size((f64::from(layout.key_len) * 1.4) as u32)
            .label_font(font(layout.legend_px))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.5))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

// === Checks shared by the plot kinds ===

/// Error unless every value is finite.
pub(crate) fn check_finite(func: &str, label: &str, what: &str, values: &[f64]) -> Result<()> {
    let bad = values.iter().filter(|v| !v.is_finite()).count();
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(first) => Err(Error::arg(
            func,
            format!("series '{label}': {bad} non-finite value(s) (NaN or Inf) in {what}, first at index {first}"),
        )),
    }
}

/// Error unless `values` are all positive (for a logarithmic axis).
pub(crate) fn check_positive(func: &str, label: &str, what: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| *v <= 0.0) {
        None => Ok(()),
        Some(i) => Err(Error::arg(
            func,
            format!("series '{label}': a log axis needs positive {what}, found {} at index {i}", values[i]),
        )),
    }
}

/// A linear x axis over the data, or a logarithmic one.
pub(crate) fn x_axis(lo: f64, hi: f64, log: bool, layout: &Layout) -> Axis {
    let (lo, hi) = if hi > lo { (lo, hi) } else { axis::fit(lo, hi, log, 0.0, 0.0, false) };
    Axis::new(lo, hi, log, layout.x_ticks())
}

/// A y axis over data spanning `[lo, hi]`, with head-room for `legend_entries` legend lines.
pub(crate) fn y_axis(lo: f64, hi: f64, log: bool, from_zero: bool, legend_entries: usize, layout: &Layout) -> Axis {
    let top = layout.legend_fraction(legend_entries) + if legend_entries > 0 { 0.03 } else { 0.0 };
    let (lo, hi) = axis::fit(lo, hi, log, 0.05, top, from_zero);
    Axis::new(lo, hi, log, layout.y_ticks())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_extension() {
        assert_eq!(Format::from_path(Path::new("a/b.png")).ok(), Some(Format::Png));
        assert_eq!(Format::from_path(Path::new("B.SVG")).ok(), Some(Format::Svg));
        let e = Format::from_path(Path::new("out.jpg")).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("plot: cannot tell the image format of 'out.jpg'; expected a file name ending in .png or .svg")
        );
        assert!(Format::from_path(Path::new("noext")).is_err());
    }

    #[test]
    fn size_limits() {
        let opts = PlotOptions { width: 50, ..PlotOptions::default() };
        let e = opts.validate("plot_hist").err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("plot_hist: option 'width' must be between 100 and 8000 pixels, got 50"));
        let opts = PlotOptions { height: 9000, ..PlotOptions::default() };
        assert!(opts.validate("plot_hist").is_err());
        assert!(PlotOptions::default().validate("plot_hist").is_ok());
    }

    #[test]
    fn font_registers_once_and_ok() {
        assert!(ensure_font("test").is_ok());
        assert!(ensure_font("test").is_ok());
    }

    #[test]
    fn non_finite_and_non_positive_are_reported() {
        let e = check_finite("plot_lines", "a", "y", &[1.0, f64::NAN, f64::INFINITY]);
        assert_eq!(
            e.err().map(|e| e.to_string()).as_deref(),
            Some("plot_lines: series 'a': 2 non-finite value(s) (NaN or Inf) in y, first at index 1")
        );
        let e = check_positive("plot_lines", "a", "x values", &[1.0, 0.0]);
        assert_eq!(
            e.err().map(|e| e.to_string()).as_deref(),
            Some("plot_lines: series 'a': a log axis needs positive x values, found 0 at index 1")
        );
    }

    #[test]
    fn legend_fraction_grows_with_entries() {
        let l = Layout::new(&PlotOptions::default());
        assert_eq!(l.legend_fraction(0), 0.0);
        assert!(l.legend_fraction(1) > 0.05 && l.legend_fraction(1) < l.legend_fraction(3));
        assert!(l.x_ticks() >= 5 && l.y_ticks() >= 5);
    }
}
