//! A ratio plot: a main panel with the nominal histogram and its up/down variations, and a
//! ratio panel below with each variation divided by the nominal and the envelope as a band.
//!
//! The band in the ratio panel spans, per bin, the lowest and highest ratio of all variations
//! (1 where the nominal bin is empty). Up variations are drawn as thick lines, down variations
//! as thin ones, in the same colour per nuisance.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis::Axis;
use super::{check_finite, colour, ensure_font, Format, Layout, PlotOptions};
use crate::error::{Error, Result};
use crate::fsutil::atomic_write_bytes;

const FUNC: &str = "plot_ratio";

/// The histograms of a ratio plot, all on the same bin edges.
#[derive(Clone, Debug, PartialEq)]
pub struct RatioSeries {
    /// Bin edges, strictly increasing, one more than every histogram's bins.
    pub edges: Vec<f64>,
    /// The nominal bin contents.
    pub nominal: Vec<f64>,
    /// One `(label, up, down)` per nuisance.
    pub variations: Vec<(String, Vec<f64>, Vec<f64>)>,
}

/// Draws the ratio plot and writes it as PNG or SVG (by the extension of `path`).
///
/// Errors: no variation, histograms of different lengths, edges that do not increase, NaN or
/// Inf, a size out of range, an unknown extension, or a failed write.
pub fn plot_ratio(path: &Path, s: &RatioSeries, opts: &PlotOptions) -> Result<()> {
    let format = Format::detect(FUNC, path)?;
    let bytes = render_ratio(s, opts, format)?;
    atomic_write_bytes(path, &bytes)
}

/// Like [`plot_ratio`], returning the PNG bytes or SVG text.
pub fn render_ratio(s: &RatioSeries, opts: &PlotOptions, format: Format) -> Result<Vec<u8>> {
    opts.validate(FUNC)?;
    check(s)?;
    ensure_font(FUNC)?;
    let target = Path::new(super::IN_MEMORY);
    let fail =
        |e: &dyn std::fmt::Display| Error::format(target, format!("{FUNC}: could not draw the {format} plot: {e}"));
    let (w, h) = (opts.width, opts.height);
    match format {
        Format::Png => {
            let mut pixels = vec![0u8; w as usize * h as usize * 3];
            {
                let backend = BitMapBackend::<plotters::backend::RGBPixel>::with_buffer_and_format(&mut pixels, (w, h))
                    .map_err(|e| fail(&e))?;
                draw(backend.into_drawing_area(), s, opts).map_err(|e| fail(&e))?;
            }
            let mut png = Vec::new();
            use image::ImageEncoder;
            image::codecs::png::PngEncoder::new(&mut png)
                .write_image(&pixels, w, h, image::ColorType::Rgb8)
                .map_err(|e| fail(&e))?;
            Ok(png)
        }
        Format::Svg => {
            let mut svg = String::new();
            {
                let backend = SVGBackend::with_string(&mut svg, (w, h));
                draw(backend.into_drawing_area(), s, opts).map_err(|e| fail(&e))?;
            }
            Ok(svg.into_bytes())
        }
    }
}

fn check(s: &RatioSeries) -> Result<()> {
    let n = s.nominal.len();
    if n == 0 || s.variations.is_empty() {
        return Err(Error::Empty { op: FUNC, what: "the nominal histogram or the list of variations".into() });
    }
    if s.edges.len() != n + 1 {
        return Err(Error::Shape {
            op: FUNC,
            expected: format!("{} bin edges", n + 1),
            got: s.edges.len().to_string(),
        });
    }
    check_finite(FUNC, "nominal", "edges", &s.edges)?;
    check_finite(FUNC, "nominal", "counts", &s.nominal)?;
    if let Some(i) = s.edges.windows(2).position(|w| w[1] <= w[0]) {
        return Err(Error::arg(
            FUNC,
            format!("bin edges must be strictly increasing, edge {} is not above edge {i}", i + 1),
        ));
    }
    for (label, up, down) in &s.variations {
        for (what, v) in [("up", up), ("down", down)] {
            if v.len() != n {
                return Err(Error::Shape {
                    op: FUNC,
                    expected: format!("{n} bins in the {what} histogram of '{label}' (as the nominal)"),
                    got: v.len().to_string(),
                });
            }
            check_finite(FUNC, label, what, v)?;
        }
    }
    Ok(())
}

/// Per bin, each variation over the nominal (1 where the nominal is 0).
fn ratio(v: &[f64], nominal: &[f64]) -> Vec<f64> {
    v.iter().zip(nominal).map(|(a, b)| if *b != 0.0 { a / b } else { 1.0 }).collect()
}

/// The step line of a histogram.
fn steps(edges: &[f64], c: &[f64]) -> Vec<(f64, f64)> {
    c.iter().enumerate().flat_map(|(b, &v)| [(edges[b], v), (edges[b + 1], v)]).collect()
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    s: &RatioSeries,
    opts: &PlotOptions,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let font = |px: f64| ("sans-serif", px).into_font();
    // The main panel takes 70 % of the height, the ratio panel the rest.
    let main_opts = PlotOptions { height: (f64::from(opts.height) * 0.7) as u32, ..opts.clone() };
    let ratio_opts = PlotOptions { height: opts.height - main_opts.height, title: String::new(), ..opts.clone() };
    let (top, bottom) = root.split_vertically(main_opts.height);
    let lm = Layout::new(&main_opts);
    let lr = lm.clone();
    let all = s.variations.iter().flat_map(|(_, u, d)| u.iter().chain(d)).chain(&s.nominal);
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
    let (x_lo, x_hi) = (s.edges[0], s.edges[s.edges.len() - 1]);
    let entries = 1 + s.variations.len();
    let x = super::x_axis(x_lo, x_hi, false, &lm);
    let y = super::y_axis(lo.min(0.0), hi, false, true, entries, &lm);
    let ratios: Vec<(Vec<f64>, Vec<f64>)> =
        s.variations.iter().map(|(_, u, d)| (ratio(u, &s.nominal), ratio(d, &s.nominal))).collect();
    let n = s.nominal.len();
    let band: Vec<(f64, f64)> = (0..n)
        .map(|b| ratios.iter().flat_map(|(u, d)| [u[b], d[b]]).fold((1.0f64, 1.0f64), |(a, z), v| (a.min(v), z.max(v))))
        .collect();
    let (r_lo, r_hi) = band.iter().fold((1.0f64, 1.0f64), |(a, z), (l, h)| (a.min(*l), z.max(*h)));
    let pad = ((r_hi - r_lo) * 0.15).max(0.01);
    let lr_ratio = Layout::new(&ratio_opts);
    let ry = Axis::new(r_lo - pad, r_hi + pad, false, lr_ratio.y_ticks().clamp(2, 4));
    let y_area = lm.y_area(&y).max(lr.y_area(&ry)) as u32;

    // Main panel.
    let mut b = ChartBuilder::on(&top);
    b.margin(lm.margin as u32)
        .margin_right((lm.margin * 2.0) as u32)
        .margin_bottom(0)
        .x_label_area_size(0)
        .y_label_area_size(y_area);
    if !opts.title.is_empty() {
        b.caption(&opts.title, font(lm.title_px));
    }
    let mut chart = b.build_cartesian_2d(x.clone(), y)?;
    let mut mesh = chart.configure_mesh();
    mesh.label_style(font(lm.tick_px))
        .axis_desc_style(font(lm.desc_px))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.05));
    if !opts.ylabel.is_empty() {
        mesh.y_desc(opts.ylabel.as_str());
    }
    mesh.draw()?;
    let key = lm.key_len;
    let thick = BLACK.stroke_width(lm.line_w);
    chart
        .draw_series(std::iter::once(PathElement::new(steps(&s.edges, &s.nominal), thick)))?
        .label("nominal")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + key, y)], thick));
    for (i, (label, up, down)) in s.variations.iter().enumerate() {
        let (u, d) = (colour(i).stroke_width(lm.line_w), colour(i).stroke_width(1));
        chart
            .draw_series(std::iter::once(PathElement::new(steps(&s.edges, up), u)))?
            .label(format!("{label} up / down"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + key, y)], u));
        chart.draw_series(std::iter::once(PathElement::new(steps(&s.edges, down), d)))?;
    }
    let frame = chart.plotting_area().strip_coord_spec();
    let (pw, ph) = frame.dim_in_pixel();
    frame.draw(&Rectangle::new([(0, 0), (pw as i32 - 1, ph as i32 - 1)], BLACK.stroke_width(1)))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .margin((lm.margin * 0.8) as u32)
        .legend_area_size((f64::from(key) * 1.4) as u32)
        .label_font(font(lm.legend_px))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.5))
        .draw()?;

    // Ratio panel.
    let mut rc = ChartBuilder::on(&bottom)
        .margin(lr.margin as u32)
        .margin_right((lr.margin * 2.0) as u32)
        .margin_top(0)
        .x_label_area_size(lr.x_area() as u32)
        .y_label_area_size(y_area)
        .build_cartesian_2d(x, ry)?;
    let mut mesh = rc.configure_mesh();
    mesh.label_style(font(lr.tick_px))
        .axis_desc_style(font(lr.desc_px))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.05));
    mesh.y_desc("ratio");
    if !opts.xlabel.is_empty() {
        mesh.x_desc(opts.xlabel.as_str());
    }
    mesh.draw()?;
    rc.draw_series(
        band.iter()
            .enumerate()
            .map(|(b, (l, h))| Rectangle::new([(s.edges[b], *l), (s.edges[b + 1], *h)], BLACK.mix(0.15).filled())),
    )?;
    rc.draw_series(std::iter::once(PathElement::new(vec![(x_lo, 1.0), (x_hi, 1.0)], BLACK.stroke_width(1))))?;
    for (i, (u, d)) in ratios.iter().enumerate() {
        rc.draw_series(std::iter::once(PathElement::new(steps(&s.edges, u), colour(i).stroke_width(lr.line_w))))?;
        rc.draw_series(std::iter::once(PathElement::new(steps(&s.edges, d), colour(i).stroke_width(1))))?;
    }
    let frame = rc.plotting_area().strip_coord_spec();
    let (pw, ph) = frame.dim_in_pixel();
    frame.draw(&Rectangle::new([(0, 0), (pw as i32 - 1, ph as i32 - 1)], BLACK.stroke_width(1)))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> RatioSeries {
        RatioSeries {
            edges: vec![0.0, 1.0, 2.0, 3.0],
            nominal: vec![10.0, 20.0, 0.0],
            variations: vec![("JES".into(), vec![11.0, 19.0, 1.0], vec![9.0, 21.0, 0.0])],
        }
    }

    #[test]
    fn renders_svg_and_png_with_both_panels() {
        let svg = String::from_utf8(render_ratio(&series(), &PlotOptions::default(), Format::Svg).unwrap()).unwrap();
        assert!(svg.contains("JES up / down") && svg.contains("ratio") && svg.contains("nominal"));
        let png = render_ratio(&series(), &PlotOptions::default(), Format::Png).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        // ratios: 1.1, 0.95, (empty nominal bin) 1; 0.9, 1.05, 1
        assert_eq!(ratio(&[11.0, 19.0, 1.0], &[10.0, 20.0, 0.0]), vec![1.1, 0.95, 1.0]);
    }

    #[test]
    fn bad_series_are_errors() {
        let mut s = series();
        s.variations[0].2.pop();
        let e = render_ratio(&s, &PlotOptions::default(), Format::Svg).unwrap_err().to_string();
        assert!(e.contains("3 bins in the down histogram of 'JES'"), "{e}");
        let mut s = series();
        s.variations.clear();
        assert!(render_ratio(&s, &PlotOptions::default(), Format::Svg).is_err());
        let mut s = series();
        s.nominal[1] = f64::NAN;
        assert!(render_ratio(&s, &PlotOptions::default(), Format::Svg).unwrap_err().to_string().contains("non-finite"));
    }
}
