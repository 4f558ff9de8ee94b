//! Overlaid step histograms with optional per-bin error bars.

use std::path::Path;

use plotters::prelude::*;

use super::axis::Axis;
use super::{check_finite, check_positive, colour, Figure, Format, Layout, PlotOptions};
use crate::error::{Error, Result};

const FUNC: &str = "plot_hist";

/// One histogram: `counts[i]` is the (weighted) content of the bin `[edges[i], edges[i+1])`.
#[derive(Clone, Debug, PartialEq)]
pub struct HistSeries {
    /// Legend entry; empty for none.
    pub label: String,
    /// Bin edges, strictly increasing, one more than `counts`.
    pub edges: Vec<f64>,
    /// Bin contents (sums of weights; may be negative on a linear axis).
    pub counts: Vec<f64>,
    /// Per-bin uncertainties drawn as vertical error bars, e.g. `sqrt(sumw2)`; non-negative.
    pub errors: Option<Vec<f64>>,
}

/// Draw `series` as overlaid step histograms, one colour each, and write a PNG or SVG file
/// (chosen by the extension of `path`).
///
/// With `opts.density` each series and its errors are scaled to unit area. On a log y axis,
/// empty or negative bins and error bars reaching below zero are clipped to the bottom of the
/// axis. Errors: an empty list, mismatched lengths, edges that do not increase, NaN or Inf
/// values (naming the series), non-positive edges with `logx`, no positive count with `logy`,
/// a size out of range, an unknown extension, or a failed write.
pub fn plot_hist(path: &Path, series: &[HistSeries], opts: &PlotOptions) -> Result<()> {
    let fig = HistFigure::new(series, opts)?;
    super::write(FUNC, path, opts, &fig)
}

/// Like [`plot_hist`], but return the PNG bytes or SVG text instead of writing a file.
pub fn render_hist(series: &[HistSeries], opts: &PlotOptions, format: Format) -> Result<Vec<u8>> {
    let fig = HistFigure::new(series, opts)?;
    super::render(FUNC, &fig, opts, format, Path::new(super::IN_MEMORY))
}

/// Checked, normalised histograms with their axes.
struct HistFigure {
    series: Vec<HistSeries>,
    x: Axis,
    y: Axis,
    entries: usize,
}

impl HistFigure {
    fn new(series: &[HistSeries], opts: &PlotOptions) -> Result<Self> {
        opts.validate(FUNC)?;
        if series.is_empty() {
            return Err(Error::Empty { op: FUNC, what: "the list of series".into() });
        }
        let series: Vec<HistSeries> = series.iter().map(|s| checked(s, opts)).collect::<Result<_>>()?;

        let x_lo = series.iter().map(|s| s.edges[0]).fold(f64::INFINITY, f64::min);
        let x_hi = series.iter().filter_map(|s| s.edges.last()).fold(f64::NEG_INFINITY, |a, b| a.max(*b));

        // Data range on y, error bars included.
        let mut y_lo = f64::INFINITY;
        let mut y_hi = f64::NEG_INFINITY;
        for s in &series {
            for (i, &c) in s.counts.iter().enumerate() {
                let e = s.errors.as_ref().map_or(0.0, |e| e[i]);
                for v in [c - e, c, c + e] {
                    if !opts.logy || v > 0.0 {
                        y_lo = y_lo.min(v);
                        y_hi = y_hi.max(v);
                    }
                }
            }
        }
        if y_lo > y_hi {
            return Err(Error::arg(FUNC, "logy needs at least one positive bin content, but all are zero or negative"));
        }
        let layout = Layout::new(opts);
        let entries = series.iter().filter(|s| !s.label.is_empty()).count();
        let x = super::x_axis(x_lo, x_hi, opts.logx, &layout);
        let y = super::y_axis(y_lo, y_hi, opts.logy, true, entries, &layout);
        Ok(HistFigure { series, x, y, entries })
    }
}

/// Check one series and apply `density`.
fn checked(s: &HistSeries, opts: &PlotOptions) -> Result<HistSeries> {
    let label = s.label.as_str();
    let n = s.counts.len();
    if n == 0 {
        return Err(Error::Empty { op: FUNC, what: format!("series '{label}'") });
    }
    if s.edges.len() != n + 1 {
        return Err(Error::Shape {
            op: FUNC,
            expected: format!("{} bin edges (one more than counts) in series '{label}'", n + 1),
            got: s.edges.len().to_string(),
        });
    }
    if let Some(e) = &s.errors {
        if e.len() != n {
            return Err(Error::Shape {
                op: FUNC,
                expected: format!("{n} errors (one per bin) in series '{label}'"),
                got: e.len().to_string(),
            });
        }
    }
    check_finite(FUNC, label, "edges", &s.edges)?;
    check_finite(FUNC, label, "counts", &s.counts)?;
    if let Some(e) = &s.errors {
        check_finite(FUNC, label, "errors", e)?;
        if let Some(i) = e.iter().position(|v| *v < 0.0) {
            return Err(Error::arg(
                FUNC,
                format!("series '{label}': errors must not be negative, found {} at index {i}", e[i]),
            ));
        }
    }
    if let Some(i) = s.edges.windows(2).position(|w| w[1] <= w[0]) {
        return Err(Error::arg(
            FUNC,
            format!(
                "series '{label}': bin edges must be strictly increasing, but edge {} ({}) is not above edge {i} ({})",
                i + 1,
                s.edges[i + 1],
                s.edges[i]
            ),
        ));
    }
    if opts.logx {
        check_positive(FUNC, label, "bin edges", &s.edges)?;
    }
    let mut out = s.clone();
    if opts.density {
        let area: f64 = s.counts.iter().zip(s.edges.windows(2)).map(|(c, w)| c * (w[1] - w[0])).sum();
        if !(area.is_finite() && area > 0.0) {
            return Err(Error::arg(
                FUNC,
                format!("series '{label}': cannot scale to unit area, the total area is {area}"),
            ));
        }
        out.counts.iter_mut().for_each(|c| *c /= area);
        if let Some(e) = &mut out.errors {
            e.iter_mut().for_each(|v| *v /= area);
        }
    }
    Ok(out)
}

impl Figure for HistFigure {
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
        // On a log axis, values at or below the axis bottom are drawn on it.
        let clip = |v: f64| v.max(y_lo).min(y_hi);
        let base = clip(0.0);
        let key = layout.key_len;
        for (i, s) in self.series.iter().enumerate() {
            let style = colour(i).stroke_width(layout.line_w);
            let n = s.counts.len();
            let mut pts = Vec::with_capacity(2 * n + 2);
            pts.push((s.edges[0], base));
            for (b, &c) in s.counts.iter().enumerate() {
                pts.push((s.edges[b], clip(c)));
                pts.push((s.edges[b + 1], clip(c)));
            }
            pts.push((s.edges[n], base));
            let anno = chart.draw_series(std::iter::once(PathElement::new(pts, style)))?;
            if !s.label.is_empty() {
                anno.label(s.label.as_str()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + key, y)], style));
            }
            if let Some(errors) = &s.errors {
                let logx = self.x.is_log();
                let bars = s.counts.iter().zip(errors).enumerate().filter(|(_, (_, e))| **e > 0.0);
                chart.draw_series(bars.map(|(b, (c, e))| {
                    let (a, z) = (s.edges[b], s.edges[b + 1]);
                    let xc = if logx { (a * z).sqrt() } else { 0.5 * (a + z) };
                    PathElement::new(vec![(xc, clip(c - e)), (xc, clip(c + e))], style)
                }))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(label: &str, edges: &[f64], counts: &[f64]) -> HistSeries {
        HistSeries { label: label.into(), edges: edges.to_vec(), counts: counts.to_vec(), errors: None }
    }

    fn err_msg(series: &[HistSeries], opts: &PlotOptions) -> String {
        match render_hist(series, opts, Format::Svg) {
            Ok(_) => "no error".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn validation_messages() {
        let o = PlotOptions::default();
        assert_eq!(err_msg(&[], &o), "plot_hist: the list of series is empty");
        assert_eq!(
            err_msg(&[series("sig", &[0.0, 1.0], &[1.0, 2.0])], &o),
            "plot_hist: expected 3 bin edges (one more than counts) in series 'sig', got 2"
        );
        assert_eq!(
            err_msg(&[series("sig", &[0.0, 1.0, 1.0], &[1.0, 2.0])], &o),
            "plot_hist: series 'sig': bin edges must be strictly increasing, but edge 2 (1) is not above edge 1 (1)"
        );
        assert_eq!(
            err_msg(&[series("bkg", &[0.0, 1.0, 2.0], &[1.0, f64::NAN])], &o),
            "plot_hist: series 'bkg': 1 non-finite value(s) (NaN or Inf) in counts, first at index 1"
        );
        let mut s = series("sig", &[0.0, 1.0, 2.0], &[1.0, 2.0]);
        s.errors = Some(vec![1.0]);
        assert_eq!(err_msg(&[s.clone()], &o), "plot_hist: expected 2 errors (one per bin) in series 'sig', got 1");
        s.errors = Some(vec![1.0, -1.0]);
        assert_eq!(err_msg(&[s], &o), "plot_hist: series 'sig': errors must not be negative, found -1 at index 1");
        assert_eq!(err_msg(&[series("e", &[0.0], &[])], &o), "plot_hist: series 'e' is empty");
    }

    #[test]
    fn log_axis_rules() {
        let logy = PlotOptions { logy: true, ..PlotOptions::default() };
        // Empty bins are fine on a log axis (clipped), all-empty is not.
        assert_eq!(err_msg(&[series("a", &[0.0, 1.0, 2.0], &[0.0, 5.0])], &logy), "no error");
        assert_eq!(
            err_msg(&[series("a", &[0.0, 1.0, 2.0], &[0.0, -1.0])], &logy),
            "plot_hist: logy needs at least one positive bin content, but all are zero or negative"
        );
        let logx = PlotOptions { logx: true, ..PlotOptions::default() };
        assert_eq!(
            err_msg(&[series("a", &[0.0, 1.0, 2.0], &[1.0, 5.0])], &logx),
            "plot_hist: series 'a': a log axis needs positive bin edges, found 0 at index 0"
        );
        assert_eq!(err_msg(&[series("a", &[1.0, 10.0, 100.0], &[1.0, 5.0])], &logx), "no error");
    }

    #[test]
    fn density_scales_counts_and_errors() {
        let opts = PlotOptions { density: true, ..PlotOptions::default() };
        let mut s = series("a", &[0.0, 2.0, 3.0], &[1.0, 2.0]);
        s.errors = Some(vec![0.5, 1.0]);
        // Area = 1·2 + 2·1 = 4.
        let c = checked(&s, &opts).ok();
        assert_eq!(c.as_ref().map(|c| c.counts.clone()), Some(vec![0.25, 0.5]));
        assert_eq!(c.and_then(|c| c.errors), Some(vec![0.125, 0.25]));
        assert_eq!(
            err_msg(&[series("z", &[0.0, 1.0], &[0.0])], &opts),
            "plot_hist: series 'z': cannot scale to unit area, the total area is 0"
        );
    }

    #[test]
    fn png_has_signature_and_size() {
        let opts = PlotOptions { width: 320, height: 240, ..PlotOptions::default() };
        let png = render_hist(&[series("a", &[0.0, 1.0, 2.0], &[3.0, 4.0])], &opts, Format::Png);
        let png = png.unwrap_or_default();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let img = image::load_from_memory(&png).map(|i| (i.width(), i.height())).ok();
        assert_eq!(img, Some((320, 240)));
    }

    #[test]
    fn png_shows_each_series_in_its_own_colour() {
        let a = series("a", &[0.0, 1.0, 2.0], &[3.0, 4.0]);
        let b = series("b", &[0.0, 1.0, 2.0], &[1.0, 2.0]);
        let png = render_hist(&[a, b], &PlotOptions::default(), Format::Png).unwrap_or_default();
        let img = image::load_from_memory(&png).map(|i| i.to_rgb8()).ok();
        let count = |c: RGBColor| img.as_ref().map_or(0, |i| i.pixels().filter(|p| p.0 == [c.0, c.1, c.2]).count());
        // Both outlines are drawn, at least a few hundred pixels each.
        assert!(count(colour(0)) > 300, "first colour: {}", count(colour(0)));
        assert!(count(colour(1)) > 300, "second colour: {}", count(colour(1)));
        assert_eq!(count(colour(2)), 0);
    }

    #[test]
    fn svg_has_title_and_legend_text() {
        let opts = PlotOptions { title: "Scores & <cuts>".into(), xlabel: "score".into(), ..PlotOptions::default() };
        let a = series("signal", &[0.0, 0.5, 1.0], &[3.0, 4.0]);
        let b = series("background", &[0.0, 0.5, 1.0], &[5.0, 1.0]);
        let svg = render_hist(&[a, b], &opts, Format::Svg).unwrap_or_default();
        let svg = String::from_utf8(svg).unwrap_or_default();
        assert!(svg.starts_with("<svg"));
        for text in ["signal", "background", "score", "Scores &amp; &lt;cuts&gt;"] {
            assert!(svg.contains(&format!(">\n{text}\n</text>")), "missing <text>{text}</text>");
        }
    }

    #[test]
    fn extreme_sizes_still_render() {
        let s = series("a long legend label that does not fit", &[0.0, 1.0, 2.0], &[3.0, 4.0]);
        for (width, height) in [(100, 100), (8000, 100), (100, 8000)] {
            let opts = PlotOptions {
                title: "a title much wider than the tiny image it is drawn on".into(),
                xlabel: "x".into(),
                ylabel: "y".into(),
                width,
                height,
                ..PlotOptions::default()
            };
            let png = render_hist(std::slice::from_ref(&s), &opts, Format::Png);
            let size = png.ok().and_then(|p| image::load_from_memory(&p).ok());
            assert_eq!(size.map(|i| (i.width(), i.height())), Some((width, height)));
        }
    }

    #[test]
    fn writes_into_a_new_directory() {
        let dir = std::env::temp_dir().join(format!("nuisance-plot-hist-{}", std::process::id()));
        let path = dir.join("new").join("h.svg");
        let _ = std::fs::remove_dir_all(&dir);
        let r = plot_hist(&path, &[series("a", &[0.0, 1.0], &[1.0])], &PlotOptions::default());
        assert!(r.is_ok(), "{r:?}");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(text.contains("</svg>"));
        let e = plot_hist(&dir.join("h.jpg"), &[series("a", &[0.0, 1.0], &[1.0])], &PlotOptions::default());
        assert!(e.is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
