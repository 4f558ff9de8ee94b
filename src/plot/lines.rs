//! Curves with optional shaded error bands and point markers.

use std::path::Path;

use plotters::prelude::*;

use super::axis::Axis;
use super::{check_finite, check_positive, colour, Figure, Format, Layout, PlotOptions};
use crate::error::{Error, Result};

const FUNC: &str = "plot_lines";

/// Opacity of the shaded band around a curve.
const BAND_ALPHA: f64 = 0.25;

/// One curve through the points `(x[i], y[i])`, in the given order.
#[derive(Clone, Debug, PartialEq)]
pub struct LineSeries {
    /// Legend entry; empty for none.
    pub label: String,
    /// x coordinates.
    pub x: Vec<f64>,
    /// y coordinates, one per x.
    pub y: Vec<f64>,
    /// Lower edge of the shaded band, one per x; `None` uses `y` (a one-sided band).
    pub lo: Option<Vec<f64>>,
    /// Upper edge of the shaded band, one per x; `None` uses `y`.
    pub hi: Option<Vec<f64>>,
    /// Draw a dot at every point.
    pub markers: bool,
}

/// Draw `series` as curves, one colour each, with semi-transparent bands where `lo`/`hi` are
/// given, and write a PNG or SVG file (chosen by the extension of `path`).
///
/// On a log y axis, values ≤ 0 (of the curve or its band) are clipped to the bottom of the
/// axis. `opts.density` is ignored. Errors: an empty list, a series without points, mismatched
/// lengths, NaN or Inf values (naming the series), non-positive x with `logx`, no positive value
/// with `logy`, a size out of range, an unknown extension, or a failed write.
pub fn plot_lines(path: &Path, series: &[LineSeries], opts: &PlotOptions) -> Result<()> {
    let fig = LinesFigure::new(series, opts)?;
    super::write(FUNC, path, opts, &fig)
}

/// Like [`plot_lines`], but return the PNG bytes or SVG text instead of writing a file.
pub fn render_lines(series: &[LineSeries], opts: &PlotOptions, format: Format) -> Result<Vec<u8>> {
    let fig = LinesFigure::new(series, opts)?;
    super::render(FUNC, &fig, opts, format, Path::new(super::IN_MEMORY))
}

/// Checked curves with their axes.
struct LinesFigure<'s> {
    series: &'s [LineSeries],
    x: Axis,
    y: Axis,
    entries: usize,
}

impl<'s> LinesFigure<'s> {
    fn new(series: &'s [LineSeries], opts: &PlotOptions) -> Result<Self> {
        opts.validate(FUNC)?;
        if series.is_empty() {
            return Err(Error::Empty { op: FUNC, what: "the list of series".into() });
        }
        for s in series {
            check(s, opts)?;
        }
        let all_x = series.iter().flat_map(|s| s.x.iter().copied());
        let (x_lo, x_hi) = min_max(all_x);
        let all_y = series.iter().flat_map(|s| {
            let band = [&s.lo, &s.hi].into_iter().flatten().flat_map(|v| v.iter());
            s.y.iter().chain(band).copied()
        });
        let (y_lo, y_hi) = min_max(all_y.filter(|v| !opts.logy || *v > 0.0));
        if y_lo > y_hi {
            return Err(Error::arg(FUNC, "logy needs at least one positive y value, but all are zero or negative"));
        }
        let layout = Layout::new(opts);
        let entries = series.iter().filter(|s| !s.label.is_empty()).count();
        let x = super::x_axis(x_lo, x_hi, opts.logx, &layout);
        let y = super::y_axis(y_lo, y_hi, opts.logy, false, entries, &layout);
        Ok(LinesFigure { series, x, y, entries })
    }
}

/// Smallest and largest value (`(inf, -inf)` for none).
fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)))
}

/// Check one series.
fn check(s: &LineSeries, opts: &PlotOptions) -> Result<()> {
    let label = s.label.as_str();
    let n = s.x.len();
    if n == 0 {
        return Err(Error::Empty { op: FUNC, what: format!("series '{label}'") });
    }
    let parts = [("y", Some(&s.y)), ("lo", s.lo.as_ref()), ("hi", s.hi.as_ref())];
    for (name, values) in parts {
        if let Some(v) = values {
            if v.len() != n {
                return Err(Error::Shape {
                    op: FUNC,
                    expected: format!("as many {name} values as x values ({n}) in series '{label}'"),
                    got: v.len().to_string(),
                });
            }
        }
    }
    check_finite(FUNC, label, "x", &s.x)?;
    for (name, values) in parts {
        if let Some(v) = values {
            check_finite(FUNC, label, name, v)?;
        }
    }
    if opts.logx {
        check_positive(FUNC, label, "x values", &s.x)?;
    }
    Ok(())
}

impl Figure for LinesFigure<'_> {
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
        let (y_lo, y_hi) = (self.y.lo(), self.y.hi());
        let clip = move |v: f64| v.max(y_lo).min(y_hi);

        // Bands first, so no band hides another series' curve.
        for (i, s) in self.series.iter().enumerate() {
            if s.lo.is_none() && s.hi.is_none() {
                continue;
            }
            let lo = s.lo.as_ref().unwrap_or(&s.y);
            let hi = s.hi.as_ref().unwrap_or(&s.y);
            let upper = s.x.iter().zip(hi).map(|(x, h)| (*x, clip(*h)));
            let lower = s.x.iter().zip(lo).rev().map(|(x, l)| (*x, clip(*l)));
            let outline: Vec<(f64, f64)> = upper.chain(lower).collect();
            let fill = colour(i).mix(BAND_ALPHA).filled();
            chart.draw_series(std::iter::once(Polygon::new(outline, fill)))?;
        }

        let key = layout.key_len;
        let half = (key / 4).max(3);
        let radius = (layout.line_w * 2).max(3);
        for (i, s) in self.series.iter().enumerate() {
            let c = colour(i);
            let style = c.stroke_width(layout.line_w);
            let pts: Vec<(f64, f64)> = s.x.iter().zip(&s.y).map(|(x, y)| (*x, clip(*y))).collect();
            let anno = chart.draw_series(std::iter::once(PathElement::new(pts.clone(), style)))?;
            if !s.label.is_empty() {
                let band =
                    if s.lo.is_some() || s.hi.is_some() { c.mix(BAND_ALPHA).filled() } else { TRANSPARENT.filled() };
                let dot = if s.markers { c.filled() } else { TRANSPARENT.filled() };
                anno.label(s.label.as_str()).legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + Rectangle::new([(0, -half), (key, half)], band)
                        + PathElement::new(vec![(0, 0), (key, 0)], style)
                        + Circle::new((key / 2, 0), radius, dot)
                });
            }
            if s.markers {
                chart.draw_series(pts.into_iter().map(|p| Circle::new(p, radius, c.filled())))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(label: &str, x: &[f64], y: &[f64]) -> LineSeries {
        LineSeries { label: label.into(), x: x.to_vec(), y: y.to_vec(), lo: None, hi: None, markers: false }
    }

    fn err_msg(series: &[LineSeries], opts: &PlotOptions) -> String {
        match render_lines(series, opts, Format::Svg) {
            Ok(_) => "no error".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn validation_messages() {
        let o = PlotOptions::default();
        assert_eq!(err_msg(&[], &o), "plot_lines: the list of series is empty");
        assert_eq!(
            err_msg(&[line("a", &[0.0, 1.0], &[1.0])], &o),
            "plot_lines: expected as many y values as x values (2) in series 'a', got 1"
        );
        let mut s = line("a", &[0.0, 1.0], &[1.0, 2.0]);
        s.hi = Some(vec![3.0]);
        assert_eq!(
            err_msg(&[s.clone()], &o),
            "plot_lines: expected as many hi values as x values (2) in series 'a', got 1"
        );
        s.hi = None;
        s.lo = Some(vec![0.0, f64::NAN]);
        assert_eq!(
            err_msg(&[s], &o),
            "plot_lines: series 'a': 1 non-finite value(s) (NaN or Inf) in lo, first at index 1"
        );
        assert_eq!(
            err_msg(&[line("b", &[f64::NAN], &[1.0])], &o),
            "plot_lines: series 'b': 1 non-finite value(s) (NaN or Inf) in x, first at index 0"
        );
        assert_eq!(err_msg(&[line("e", &[], &[])], &o), "plot_lines: series 'e' is empty");
        let tiny = PlotOptions { height: 99, ..PlotOptions::default() };
        assert_eq!(
            err_msg(&[line("a", &[0.0], &[1.0])], &tiny),
            "plot_lines: option 'height' must be between 100 and 8000 pixels, got 99"
        );
    }

    #[test]
    fn log_axis_rules() {
        let logy = PlotOptions { logy: true, ..PlotOptions::default() };
        let mut s = line("a", &[0.0, 1.0, 2.0], &[1.0, 0.5, 0.1]);
        s.lo = Some(vec![-1.0, 0.0, 0.05]);
        assert_eq!(err_msg(&[s], &logy), "no error");
        assert_eq!(
            err_msg(&[line("a", &[0.0, 1.0], &[0.0, -2.0])], &logy),
            "plot_lines: logy needs at least one positive y value, but all are zero or negative"
        );
        let logx = PlotOptions { logx: true, ..PlotOptions::default() };
        assert_eq!(
            err_msg(&[line("a", &[-1.0, 1.0], &[1.0, 2.0])], &logx),
            "plot_lines: series 'a': a log axis needs positive x values, found -1 at index 0"
        );
    }

    #[test]
    fn png_decodes_to_requested_size() {
        let mut s = line("roc", &[0.0, 0.5, 1.0], &[0.0, 0.8, 1.0]);
        s.lo = Some(vec![0.0, 0.7, 1.0]);
        s.hi = Some(vec![0.0, 0.9, 1.0]);
        s.markers = true;
        let opts = PlotOptions { width: 640, height: 480, ..PlotOptions::default() };
        let png = render_lines(&[s], &opts, Format::Png).unwrap_or_default();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let size = image::load_from_memory(&png).map(|i| (i.width(), i.height())).ok();
        assert_eq!(size, Some((640, 480)));
    }

    #[test]
    fn svg_has_labels_and_a_translucent_band() {
        let mut s = line("nominal", &[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]);
        s.lo = Some(vec![0.5, 1.5, 2.5]);
        s.hi = Some(vec![1.5, 2.5, 3.5]);
        let opts = PlotOptions { title: "AUC vs ε".into(), ylabel: "AUC".into(), ..PlotOptions::default() };
        let t = line("shifted", &[1.0, 3.0], &[2.0, 2.0]);
        let svg = render_lines(&[s, t], &opts, Format::Svg).unwrap_or_default();
        let svg = String::from_utf8(svg).unwrap_or_default();
        for text in ["nominal", "shifted", "AUC", "AUC vs ε"] {
            assert!(svg.contains(&format!(">\n{text}\n</text>")), "missing <text>{text}</text>");
        }
        assert!(svg.contains("<polygon") && svg.contains("opacity=\"0.25\""));
    }

    #[test]
    fn writes_png_file() {
        let dir = std::env::temp_dir().join(format!("nuisance-plot-lines-{}", std::process::id()));
        let path = dir.join("l.PNG");
        let r = plot_lines(&path, &[line("a", &[0.0, 1.0], &[1.0, 3.0])], &PlotOptions::default());
        assert!(r.is_ok(), "{r:?}");
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(bytes.starts_with(b"\x89PNG"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
