//! A heat map of a square matrix with named rows and columns (a correlation change): one cell
//! per entry on a blue–white–red scale from −1 to +1 (values beyond are clipped to the ends),
//! the value written in each cell when there are at most 12 rows.

use std::path::Path;

use ndarray::Array2;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{ensure_font, Format, Layout, PlotOptions};
use crate::error::{Error, Result};
use crate::fsutil::atomic_write_bytes;

const FUNC: &str = "plot_correlation_change";

/// Rows up to which each cell shows its value.
const LABELLED: usize = 12;

/// Draws the heat map of `m` (rows and columns named by `names`) as PNG or SVG by the
/// extension of `path`.
pub fn plot_heatmap(path: &Path, names: &[String], m: &Array2<f64>, opts: &PlotOptions) -> Result<()> {
    let format = Format::detect(FUNC, path)?;
    opts.validate(FUNC)?;
    let n = names.len();
    if n == 0 || m.dim() != (n, n) {
        return Err(Error::arg(FUNC, format!("needs an n × n matrix for {n} names, got {:?}", m.dim())));
    }
    if m.iter().any(|v| !v.is_finite()) {
        return Err(Error::arg(FUNC, "the matrix has NaN or infinite values"));
    }
    ensure_font(FUNC)?;
    let fail =
        |e: &dyn std::fmt::Display| Error::format(path, format!("{FUNC}: could not draw the {format} plot: {e}"));
    let (w, h) = (opts.width, opts.height);
    let bytes = match format {
        Format::Png => {
            let mut pixels = vec![0u8; w as usize * h as usize * 3];
            {
                let backend = BitMapBackend::<plotters::backend::RGBPixel>::with_buffer_and_format(&mut pixels, (w, h))
                    .map_err(|e| fail(&e))?;
                draw(backend.into_drawing_area(), names, m, opts).map_err(|e| fail(&e))?;
            }
            let mut png = Vec::new();
            use image::ImageEncoder;
            image::codecs::png::PngEncoder::new(&mut png)
                .write_image(&pixels, w, h, image::ColorType::Rgb8)
                .map_err(|e| fail(&e))?;
            png
        }
        Format::Svg => {
            let mut svg = String::new();
            {
                let backend = SVGBackend::with_string(&mut svg, (w, h));
                draw(backend.into_drawing_area(), names, m, opts).map_err(|e| fail(&e))?;
            }
            svg.into_bytes()
        }
    };
    atomic_write_bytes(path, &bytes)
}

/// Blue (−1) – white (0) – red (+1).
fn shade(v: f64) -> RGBColor {
    let t = v.clamp(-1.0, 1.0);
    let f = |a: f64| (255.0 * (1.0 - a)).round() as u8;
    if t >= 0.0 {
        RGBColor(255, f(t), f(t))
    } else {
        RGBColor(f(-t), f(-t), 255)
    }
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    names: &[String],
    m: &Array2<f64>,
    opts: &PlotOptions,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let l = Layout::new(opts);
    let font = |px: f64| ("sans-serif", px).into_font();
    let n = names.len();
    let longest = names.iter().map(|s| s.chars().count()).max().unwrap_or(1) as f64;
    let mut b = ChartBuilder::on(&root);
    b.margin(l.margin as u32)
        .x_label_area_size((l.tick_px * 2.0) as u32)
        .y_label_area_size((l.tick_px * 0.6 * longest + l.tick_px) as u32);
    if !opts.title.is_empty() {
        b.caption(&opts.title, font(l.title_px));
    }
    let mut chart = b.build_cartesian_2d((0..n).into_segmented(), (0..n).into_segmented())?;
    let label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    // Row 0 at the top, as a matrix is read.
    let row_label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) if *i < n => names[n - 1 - *i].clone(),
        _ => String::new(),
    };
    let mut mesh = chart.configure_mesh();
    mesh.disable_mesh()
        .x_labels(n)
        .y_labels(n)
        .x_label_formatter(&label)
        .y_label_formatter(&row_label)
        .label_style(font(l.tick_px));
    if !opts.xlabel.is_empty() {
        mesh.x_desc(&opts.xlabel);
    }
    if !opts.ylabel.is_empty() {
        mesh.y_desc(&opts.ylabel);
    }
    mesh.axis_desc_style(font(l.desc_px)).draw()?;
    for i in 0..n {
        for j in 0..n {
            let v = m[[i, j]];
            let (x0, y0) = (SegmentValue::Exact(j), SegmentValue::Exact(n - 1 - i));
            let (x1, y1) = (SegmentValue::Exact(j + 1), SegmentValue::Exact(n - i));
            chart.draw_series(std::iter::once(Rectangle::new([(x0, y0), (x1, y1)], shade(v).filled())))?;
            if n <= LABELLED {
                let text = format!("{v:+.2}");
                let style = font(l.tick_px * 0.8).color(&BLACK).pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Center,
                ));
                chart.draw_series(std::iter::once(Text::new(
                    text,
                    (SegmentValue::CenterOf(j), SegmentValue::CenterOf(n - 1 - i)),
                    style,
                )))?;
            }
        }
    }
    Ok(())
}
