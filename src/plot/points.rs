//! Values at named categories (a dot plot, as the impact and pull plots of HEP fits): the
//! categories top to bottom on the y axis, the values along x, a marker per series and
//! category, with an optional shaded band (e.g. a ±1σ envelope) and a reference line.

use std::path::Path;

use plotters::prelude::*;

use super::axis::{self, Axis};
use super::{check_finite, colour, Figure, Format, Layout, PlotOptions};
use crate::error::{Error, Result};

const FUNC: &str = "plot_points";

/// Most categories a dot plot takes (beyond, the names could not be read).
pub const MAX_CATEGORIES: usize = 1_000;

/// Opacity of the band.
const BAND_ALPHA: f64 = 0.25;

/// One set of markers: a value per category, `None` where the series has no point.
#[derive(Clone, Debug, PartialEq)]
pub struct PointSeries {
    /// Legend entry; empty for none.
    pub label: String,
    /// One value per category.
    pub values: Vec<Option<f64>>,
}

/// A dot plot: categories, series, and the optional band and reference line.
#[derive(Clone, Debug, PartialEq)]
pub struct PointsChart {
    /// Category names, drawn top to bottom.
    pub categories: Vec<String>,
    /// The series; series drawn at the same category overlap (marker shapes differ).
    pub series: Vec<PointSeries>,
    /// A shaded band `[lo, hi]` along x over the whole height.
    pub band: Option<(f64, f64)>,
    /// Legend entry of the band; empty for none.
    pub band_label: String,
    /// A vertical line at this x (e.g. 0 for no change).
    pub reference: Option<f64>,
}

/// Draw the chart and write a PNG or SVG file (by the extension of `path`). `opts.logx`,
/// `opts.logy` and `opts.density` must be off. Errors: no categories or too many, a series of
/// another length, no value at all, NaN or Inf values, a band with lo > hi, a size out of
/// range, an unknown extension, or a failed write.
pub fn plot_points(path: &Path, chart: &PointsChart, opts: &PlotOptions) -> Result<()> {
    let fig = PointsFigure::new(chart, opts)?;
    super::write(FUNC, path, opts, &fig)
}

/// Like [`plot_points`], but return the PNG bytes or SVG text instead of writing a file.
pub fn render_points(chart: &PointsChart, opts: &PlotOptions, format: Format) -> Result<Vec<u8>> {
    let fig = PointsFigure::new(chart, opts)?;
    super::render(FUNC, &fig, opts, format, Path::new(super::IN_MEMORY))
}

struct PointsFigure<'c> {
    chart: &'c PointsChart,
    x: Axis,
    y: Axis,
    entries: usize,
}

impl<'c> PointsFigure<'c> {
    fn new(chart: &'c PointsChart, opts: &PlotOptions) -> Result<Self> {
        opts.validate(FUNC)?;
        if opts.logx || opts.logy || opts.density {
            return Err(Error::arg(FUNC, "a dot plot has linear axes and no density"));
        }
        let n = chart.categories.len();
        if n == 0 {
            return Err(Error::Empty { op: FUNC, what: "the list of categories".into() });
        }
        crate::limits::check(FUNC, "categories", n, MAX_CATEGORIES)?;
        let mut xs: Vec<f64> = Vec::new();
        for s in &chart.series {
            if s.values.len() != n {
                return Err(Error::Shape {
                    op: FUNC,
                    expected: format!("one value per category ({n}) in series '{}'", s.label),
                    got: s.values.len().to_string(),
                });
            }
            let v: Vec<f64> = s.values.iter().flatten().copied().collect();
            check_finite(FUNC, &s.label, "values", &v)?;
            xs.extend(v);
        }
        if xs.is_empty() {
            return Err(Error::Empty { op: FUNC, what: "every series".into() });
        }
        if let Some((lo, hi)) = chart.band {
            check_finite(FUNC, &chart.band_label, "band", &[lo, hi])?;
            if lo > hi {
                return Err(Error::arg(FUNC, format!("the band must be [lo, hi] with lo ≤ hi, got [{lo}, {hi}]")));
            }
            xs.extend([lo, hi]);
        }
        if let Some(r) = chart.reference {
            check_finite(FUNC, "reference", "reference", &[r])?;
            xs.push(r);
        }
        let (lo, hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
        let layout = Layout::new(opts);
        let entries = chart.series.iter().filter(|s| !s.label.is_empty()).count()
            + usize::from(chart.band.is_some() && !chart.band_label.is_empty());
        let (lo, hi) = axis::fit(lo, hi, false, 0.08, 0.0, false);
        let x = Axis::new(lo, hi, false, layout.x_ticks());
        let top = if entries > 0 { layout.legend_fraction(entries) + 0.03 } else { 0.0 };
        let y = Axis::categories(&chart.categories, top);
        Ok(PointsFigure { chart, x, y, entries })
    }
}

impl Figure for PointsFigure<'_> {
    fn x(&self) -> &Axis {
        &self.x
    }

    fn y(&self) -> &Axis {
        &self.y
    }

    fn legend_entries(&self) -> usize {
        self.entries
    }

    fn paint<'a, DB: DrawingBackend + 'a>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<Axis, Axis>>,
        layout: &Layout,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let n = self.chart.categories.len();
        let (y_lo, y_hi) = (self.y.lo(), self.y.hi());
        let key = layout.key_len;
        let half = (key / 4).max(3);
        if let Some((lo, hi)) = self.chart.band {
            let fill = colour(3).mix(BAND_ALPHA).filled();
            let band = chart.draw_series(std::iter::once(Rectangle::new([(lo, y_lo), (hi, y_hi)], fill)))?;
            if !self.chart.band_label.is_empty() {
                band.label(self.chart.band_label.as_str())
                    .legend(move |(x, y)| Rectangle::new([(x, y - half), (x + key, y + half)], fill));
            }
        }
        if let Some(r) = self.chart.reference {
            let style = BLACK.mix(0.6).stroke_width(layout.line_w.max(1));
            chart.draw_series(std::iter::once(PathElement::new(vec![(r, y_lo), (r, y_hi)], style)))?;
        }
        let r = (layout.line_w * 3).max(4) as i32;
        for (i, s) in self.chart.series.iter().enumerate() {
            let c = colour(i).filled();
            // The first category at the top: category k sits at y = n − 1 − k.
            let points: Vec<(f64, f64)> =
                s.values.iter().enumerate().filter_map(|(k, v)| v.map(|v| (v, (n - 1 - k) as f64))).collect();
            let label = s.label.as_str();
            // One marker shape per series (circle, triangle, square, repeating), drawn as an
            // offset shape at the point, in the plot and in the legend.
            macro_rules! draw {
                ($shape:expr) => {{
                    let shape = $shape;
                    let anno = chart.draw_series(points.iter().map(|p| EmptyElement::at(*p) + shape((0, 0))))?;
                    if !label.is_empty() {
                        anno.label(label).legend(move |(x, y)| EmptyElement::at((x + key / 2, y)) + shape((0, 0)));
                    }
                }};
            }
            match i % 3 {
                0 => draw!(move |p: (i32, i32)| Circle::new(p, r, c)),
                1 => draw!(move |(x, y): (i32, i32)| Polygon::new(
                    vec![(x, y - r - 1), (x - r - 1, y + r), (x + r + 1, y + r)],
                    c
                )),
                _ => draw!(move |(x, y): (i32, i32)| Rectangle::new([(x - r, y - r), (x + r, y + r)], c)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> PointsChart {
        PointsChart {
            categories: vec!["minifool".into(), "pgd".into(), "shift".into()],
            series: vec![
                PointSeries { label: "admissible".into(), values: vec![Some(-0.5), Some(1.5), None] },
                PointSeries { label: "not admissible".into(), values: vec![None, None, Some(4.0)] },
            ],
            band: Some((-1.0, 1.2)),
            band_label: "±1σ envelope".into(),
            reference: Some(0.0),
        }
    }

    fn err_msg(c: &PointsChart, opts: &PlotOptions) -> String {
        match render_points(c, opts, Format::Svg) {
            Ok(_) => "no error".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn svg_names_every_category_and_legend_entry() {
        let opts = PlotOptions { title: "Δ yield".into(), xlabel: "Δ".into(), ..PlotOptions::default() };
        let svg =
            String::from_utf8(render_points(&chart(), &opts, Format::Svg).unwrap_or_default()).unwrap_or_default();
        for text in ["minifool", "pgd", "shift", "admissible", "not admissible", "±1σ envelope", "Δ yield"] {
            assert!(svg.contains(&format!(">\n{text}\n</text>")), "missing <text>{text}</text>");
        }
        // The band is translucent; 3 points + 2 legend markers: 2 circles (series 0), and
        // series 1's triangles as polygons next to the band's rectangle.
        assert!(svg.contains("opacity=\"0.25\""));
        assert_eq!(svg.matches("<circle").count(), 3, "{svg}");
    }

    #[test]
    fn png_decodes_to_requested_size() {
        let opts = PlotOptions { width: 500, height: 300, ..PlotOptions::default() };
        let png = render_points(&chart(), &opts, Format::Png).unwrap_or_default();
        let size = image::load_from_memory(&png).map(|i| (i.width(), i.height())).ok();
        assert_eq!(size, Some((500, 300)));
    }

    #[test]
    fn validation_messages() {
        let o = PlotOptions::default();
        let mut c = chart();
        c.series[0].values.pop();
        assert_eq!(err_msg(&c, &o), "plot_points: expected one value per category (3) in series 'admissible', got 2");
        let mut c = chart();
        c.series[1].values[2] = Some(f64::NAN);
        assert_eq!(
            err_msg(&c, &o),
            "plot_points: series 'not admissible': 1 non-finite value(s) (NaN or Inf) in values, first at index 0"
        );
        let mut c = chart();
        c.band = Some((1.0, 0.0));
        assert_eq!(err_msg(&c, &o), "plot_points: the band must be [lo, hi] with lo ≤ hi, got [1, 0]");
        let mut c = chart();
        c.series.iter_mut().for_each(|s| s.values = vec![None; 3]);
        assert_eq!(err_msg(&c, &o), "plot_points: every series is empty");
        c.categories.clear();
        assert_eq!(err_msg(&c, &o), "plot_points: the list of categories is empty");
        let logx = PlotOptions { logx: true, ..PlotOptions::default() };
        assert_eq!(err_msg(&chart(), &logx), "plot_points: a dot plot has linear axes and no density");
        // A zero-width band (a quantity no variation moves) is fine.
        let mut c = chart();
        c.band = Some((0.0, 0.0));
        assert_eq!(err_msg(&c, &o), "no error");
    }
}
