//! Script functions for plots (PNG or SVG, chosen by the file extension).

use rhai::plugin::*;

/// Registers the plot functions.
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(plot_api).into());
}

pub(crate) mod helpers {
    use rhai::{Array, Dynamic, Map};

    use crate::bindings::options::{floats, type_name, Opts};
    use crate::bindings::RhaiResult;
    use crate::data::Dataset;
    use crate::error::Error;
    use crate::plot::PlotOptions;

    /// The options every plot reads (title, axis labels, logarithmic axes, size, density).
    pub fn plot_options(func: &'static str, o: &mut Opts) -> RhaiResult<PlotOptions> {
        let d = PlotOptions::default();
        Ok(PlotOptions {
            logy: o.bool("logy", d.logy)?,
            logx: o.bool("logx", d.logx)?,
            density: o.bool("density", d.density)?,
            ..frame_options(func, o)?
        })
    }

    /// The options of plots without logarithmic axes or normalisation: title, axis labels and
    /// the image size (`width`, `height` in pixels; the range is checked when drawing).
    pub fn frame_options(func: &'static str, o: &mut Opts) -> RhaiResult<PlotOptions> {
        let d = PlotOptions::default();
        let mut pixels = |key: &'static str, default: u32| -> RhaiResult<u32> {
            let v = o.usize(key, default as usize)?;
            u32::try_from(v).map_err(|_| {
                let (lo, hi) = crate::plot::SIZE_RANGE;
                Error::BadOption {
                    func: func.into(),
                    key: key.into(),
                    problem: format!("must be between {lo} and {hi} pixels, got {v}"),
                }
                .into()
            })
        };
        let (width, height) = (pixels("width", d.width)?, pixels("height", d.height)?);
        Ok(PlotOptions {
            title: o.string("title", &d.title)?,
            xlabel: o.string("xlabel", &d.xlabel)?,
            ylabel: o.string("ylabel", &d.ylabel)?,
            width,
            height,
            ..d
        })
    }

    /// Series given as an array of maps (each with `label`) or a map label → series map.
    pub fn labelled(func: &str, series: &Dynamic) -> RhaiResult<Vec<(String, Map)>> {
        if let Some(m) = series.read_lock::<Map>() {
            return m.iter().map(|(k, v)| Ok((k.to_string(), as_map(func, k, v)?))).collect();
        }
        if let Some(a) = series.read_lock::<Array>() {
            return a
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let m = as_map(func, &format!("series[{i}]"), v)?;
                    let label = m.get("label").map(|l| l.to_string()).unwrap_or_else(|| format!("series {i}"));
                    Ok((label, m))
                })
                .collect();
        }
        Err(Error::arg(
            func,
            format!("series must be an array of maps or a map of label → series, got {}", type_name(series)),
        )
        .into())
    }

    pub fn as_map(func: &str, what: &str, v: &Dynamic) -> RhaiResult<Map> {
        v.read_lock::<Map>()
            .map(|m| m.clone())
            .ok_or_else(|| Error::arg(func, format!("{what} must be a map, got {}", type_name(v))).into())
    }

    pub fn numbers(func: &str, label: &str, m: &Map, key: &str) -> RhaiResult<Option<Vec<f64>>> {
        match m.get(key) {
            None => Ok(None),
            Some(v) => match v.read_lock::<Array>() {
                Some(a) => Ok(Some(floats(func, &format!("{label}.{key}"), &a)?)),
                None => {
                    Err(Error::arg(func, format!("{label}.{key} must be an array of numbers, got {}", type_name(v)))
                        .into())
                }
            },
        }
    }

    pub fn required(func: &str, label: &str, m: &Map, key: &str) -> RhaiResult<Vec<f64>> {
        numbers(func, label, m, key)?.ok_or_else(|| Error::arg(func, format!("series '{label}' has no '{key}'")).into())
    }

    pub fn common_range(column: &str, sets: &[(String, Dataset)]) -> crate::Result<(f64, f64)> {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for (_, d) in sets {
            for v in d.column(column)? {
                lo = lo.min(f64::from(*v));
                hi = hi.max(f64::from(*v));
            }
        }
        if !lo.is_finite() || !hi.is_finite() || lo >= hi {
            hi = lo + 1.0;
        }
        Ok((lo, hi))
    }
}

#[export_module]
pub mod plot_api {
    use super::helpers::*;
    use rhai::Map;

    use crate::bindings::options::{type_name, Opts};
    use crate::bindings::{ctx, RhaiResult};
    use crate::data::Dataset;
    use crate::error::Error;
    use crate::plot::{self, HistSeries, LineSeries};

    /// Overlaid (weighted) histograms with a legend, written as PNG or SVG. Each series is a
    /// histogram map as `Dataset.histogram` returns (`edges`, `counts`, optional `errors`),
    /// given as a map label → histogram or an array of histograms with a `label` key.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `title` | string | "" | plot title |
    /// | `xlabel` | string | "" | x-axis label |
    /// | `ylabel` | string | "" | y-axis label |
    /// | `logy` | bool | false | logarithmic y axis |
    /// | `logx` | bool | false | logarithmic x axis |
    /// | `density` | bool | false | normalise each histogram to unit area |
    /// | `width` | int | 800 | pixels |
    /// | `height` | int | 600 | pixels |
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 2000, seed: 1 });
    /// let sig = d.filter("label == 1").histogram("m12", #{ bins: 40, range: [0, 300] });
    /// let bkg = d.filter("label == 0").histogram("m12", #{ bins: 40, range: [0, 300] });
    /// plot_hist("out/doc_m12.png", #{ signal: sig, background: bkg }, #{ xlabel: "m12 [GeV]", density: true });
    /// ```
    #[rhai_fn(return_raw)]
    pub fn plot_hist(c: NativeCallContext, path: &str, series: Dynamic, options: Map) -> RhaiResult<()> {
        let mut o = Opts::new("plot_hist", &options);
        let opts = plot_options("plot_hist", &mut o)?;
        o.finish()?;
        let file = ctx(&c)?.sandbox.check_write(path)?;
        let list = labelled("plot_hist", &series)?
            .into_iter()
            .map(|(label, m)| {
                Ok(HistSeries {
                    edges: required("plot_hist", &label, &m, "edges")?,
                    counts: required("plot_hist", &label, &m, "counts")?,
                    errors: numbers("plot_hist", &label, &m, "errors")?,
                    label,
                })
            })
            .collect::<RhaiResult<Vec<_>>>()?;
        Ok(plot::plot_hist(&file, &list, &opts)?)
    }

    /// Histograms with the default options. Options as the form with an options map.
    #[rhai_fn(return_raw, name = "plot_hist")]
    pub fn plot_hist_default(c: NativeCallContext, path: &str, series: Dynamic) -> RhaiResult<()> {
        plot_hist(c, path, series, Map::new())
    }

    /// Lines (e.g. a robustness curve) with optional error bands, written as PNG or SVG.
    /// Each series is a map with `x`, `y` and optionally `lo`, `hi` (band) and `markers`.
    /// Options as for `plot_hist` (`density` has no effect on lines).
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `title` | string | "" | plot title |
    /// | `xlabel` | string | "" | x-axis label |
    /// | `ylabel` | string | "" | y-axis label |
    /// | `logy` | bool | false | logarithmic y axis |
    /// | `logx` | bool | false | logarithmic x axis |
    /// | `density` | bool | false | normalise each histogram to unit area |
    /// | `width` | int | 800 | pixels |
    /// | `height` | int | 600 | pixels |
    ///
    /// ```rhai
    /// let s = [0.5, 1.0, 2.0];
    /// plot_lines("out/doc_curve.svg", [#{ label: "flip fraction", x: s, y: [0.1, 0.2, 0.4],
    ///     lo: [0.08, 0.18, 0.37], hi: [0.12, 0.22, 0.43], markers: true }], #{ xlabel: "s" });
    /// ```
    #[rhai_fn(return_raw)]
    pub fn plot_lines(c: NativeCallContext, path: &str, series: Dynamic, options: Map) -> RhaiResult<()> {
        let mut o = Opts::new("plot_lines", &options);
        let opts = plot_options("plot_lines", &mut o)?;
        o.finish()?;
        let file = ctx(&c)?.sandbox.check_write(path)?;
        let list = labelled("plot_lines", &series)?
            .into_iter()
            .map(|(label, m)| {
                Ok(LineSeries {
                    x: required("plot_lines", &label, &m, "x")?,
                    y: required("plot_lines", &label, &m, "y")?,
                    lo: numbers("plot_lines", &label, &m, "lo")?,
                    hi: numbers("plot_lines", &label, &m, "hi")?,
                    markers: m.get("markers").and_then(|v| v.as_bool().ok()).unwrap_or(false),
                    label,
                })
            })
            .collect::<RhaiResult<Vec<_>>>()?;
        Ok(plot::plot_lines(&file, &list, &opts)?)
    }

    /// Lines with the default options. Options as the form with an options map.
    #[rhai_fn(return_raw, name = "plot_lines")]
    pub fn plot_lines_default(c: NativeCallContext, path: &str, series: Dynamic) -> RhaiResult<()> {
        plot_lines(c, path, series, Map::new())
    }

    /// A dot plot of values at named categories (as HEP impact plots): `categories` top to
    /// bottom on the y axis, the values along x, one marker shape and colour per series, with
    /// an optional shaded `band` (e.g. a ±1σ envelope) and a vertical `reference` line. Each
    /// series is a map with `values` (one per category; `()` where the series has no point),
    /// given as an array of maps with a `label` or a map label → series. PNG or SVG by the
    /// extension.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `title` | string | "" | plot title |
    /// | `xlabel` | string | "" | x-axis label |
    /// | `ylabel` | string | "" | y-axis label |
    /// | `band` | [lo, hi] | none | shaded band along x (lo ≤ hi) |
    /// | `band_label` | string | "" | legend entry of the band |
    /// | `reference` | float | none | x of a vertical reference line |
    /// | `width` | int | 800 | pixels |
    /// | `height` | int | 600 | pixels |
    ///
    /// ```rhai
    /// plot_points("out/doc_points.svg", ["minifool", "pgd", "shift"],
    ///     [#{ label: "admissible", values: [-0.5, 1.5, ()] }, #{ label: "rejected", values: [(), (), 4.0] }],
    ///     #{ band: [-1.0, 1.2], band_label: "±1σ", reference: 0.0, xlabel: "Δ yield" });
    /// ```
    #[rhai_fn(return_raw)]
    pub fn plot_points(
        c: NativeCallContext,
        path: &str,
        categories: rhai::Array,
        series: Dynamic,
        options: Map,
    ) -> RhaiResult<()> {
        let mut o = Opts::new("plot_points", &options);
        let opts = helpers::frame_options("plot_points", &mut o)?;
        let band = match o.floats_opt("band")? {
            None => None,
            Some(v) if v.len() == 2 => Some((v[0], v[1])),
            Some(v) => {
                return Err(Error::arg("plot_points", format!("band must be [lo, hi], got {} values", v.len())).into())
            }
        };
        let band_label = o.string("band_label", "")?;
        let reference = o.f64_opt("reference")?;
        o.finish()?;
        let categories = crate::bindings::options::strings("plot_points", "categories", &categories)?;
        crate::limits::check("plot_points", "categories", categories.len(), plot::MAX_CATEGORIES)?;
        let list = labelled("plot_points", &series)?
            .into_iter()
            .map(|(label, m)| {
                let values =
                    m.get("values").and_then(|v| v.read_lock::<rhai::Array>().map(|a| a.clone())).ok_or_else(|| {
                        Error::arg(
                            "plot_points",
                            format!("series '{label}' needs `values`, an array (one per category)"),
                        )
                    })?;
                let values = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        if v.is_unit() {
                            return Ok(None);
                        }
                        crate::bindings::options::as_f64(v).map(Some).ok_or_else(|| {
                            Error::arg(
                                "plot_points",
                                format!("{label}.values[{i}] must be a number or (), got {}", type_name(v)),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                Ok(plot::PointSeries { label, values })
            })
            .collect::<RhaiResult<Vec<_>>>()?;
        let chart = plot::PointsChart { categories, series: list, band, band_label, reference };
        let file = ctx(&c)?.sandbox.check_write(path)?;
        Ok(plot::plot_points(&file, &chart, &opts)?)
    }

    /// The dot plot with the default options. Options as the form with an options map.
    #[rhai_fn(return_raw, name = "plot_points")]
    pub fn plot_points_default(
        c: NativeCallContext,
        path: &str,
        categories: rhai::Array,
        series: Dynamic,
    ) -> RhaiResult<()> {
        plot_points(c, path, categories, series, Map::new())
    }

    /// Overlays one column of several datasets (weighted, common binning) — e.g. simulation
    /// against data, or original against perturbed. `datasets` maps a label to a Dataset.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `bins` | int | 50 | number of bins |
    /// | `range` | [lo, hi] | min..max over all datasets | histogram range |
    /// | `title` | string | "" | plot title |
    /// | `xlabel` | string | the column | x-axis label |
    /// | `ylabel` | string | "" | y-axis label |
    /// | `logy` | bool | false | logarithmic y axis |
    /// | `logx` | bool | false | logarithmic x axis |
    /// | `density` | bool | false | normalise each histogram to unit area |
    /// | `width` | int | 800 | pixels |
    /// | `height` | int | 600 | pixels |
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 1000, seed: 2 });
    /// plot_compare("out/doc_met.png", "met", #{ all: d, central: d.filter("abs(eta1) < 1") }, #{ bins: 30 });
    /// ```
    #[rhai_fn(return_raw)]
    pub fn plot_compare(c: NativeCallContext, path: &str, column: &str, datasets: Map, options: Map) -> RhaiResult<()> {
        let mut o = Opts::new("plot_compare", &options);
        let bins = o.usize("bins", 50)?;
        crate::limits::check("plot_compare", "bins", bins, crate::limits::HISTOGRAM_BINS)?;
        let range = o.range_opt("range")?;
        let mut opts = plot_options("plot_compare", &mut o)?;
        o.finish()?;
        if opts.xlabel.is_empty() {
            opts.xlabel = column.to_string();
        }
        let sets: Vec<(String, Dataset)> = datasets
            .iter()
            .map(|(k, v)| {
                v.clone().try_cast::<Dataset>().map(|d| (k.to_string(), d)).ok_or_else(|| {
                    Error::arg("plot_compare", format!("datasets.{k} must be a Dataset, got {}", type_name(v)))
                })
            })
            .collect::<Result<_, _>>()?;
        if sets.is_empty() {
            return Err(Error::Empty { op: "plot_compare", what: "the datasets map".into() }.into());
        }
        let range = match range {
            Some(r) => r,
            None => common_range(column, &sets)?,
        };
        let list = sets
            .iter()
            .map(|(label, d)| {
                let h = d.histogram(column, bins, Some(range), true)?;
                Ok(HistSeries {
                    label: label.clone(),
                    edges: h.edges.clone(),
                    counts: h.counts.clone(),
                    errors: Some(h.sumw2.iter().map(|v| v.sqrt()).collect()),
                })
            })
            .collect::<crate::Result<Vec<_>>>()?;
        let file = ctx(&c)?.sandbox.check_write(path)?;
        Ok(plot::plot_hist(&file, &list, &opts)?)
    }

    /// The comparison plot with the default options. Options as the form with an options map.
    #[rhai_fn(return_raw, name = "plot_compare")]
    pub fn plot_compare_default(c: NativeCallContext, path: &str, column: &str, datasets: Map) -> RhaiResult<()> {
        plot_compare(c, path, column, datasets, Map::new())
    }
}
