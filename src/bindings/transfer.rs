//! Script function for transfer learning: `data_efficiency` (the curves and the efficiency
//! factor of `transfer`), with an optional plot.

use rhai::plugin::*;

/// Registers `data_efficiency`.
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(transfer_api).into());
}

mod helpers {
    use rhai::{Dynamic, Map};

    use crate::bindings::convert::{f64_array, map};
    use crate::transfer::{Curves, Summary};

    fn opt(v: Option<f64>) -> Dynamic {
        v.map_or(Dynamic::UNIT, Dynamic::from_float)
    }

    fn summaries(s: &[Summary]) -> Dynamic {
        let a: rhai::Array = s
            .iter()
            .map(|p| {
                Dynamic::from_map(map([
                    ("n", (p.n as i64).into()),
                    ("mean", p.mean.into()),
                    ("std", p.std.into()),
                    ("bias", opt(p.bias)),
                ]))
            })
            .collect();
        a.into()
    }

    /// The result map (see the function's documentation).
    pub fn result(c: &Curves) -> Map {
        let points: rhai::Array = c
            .points
            .iter()
            .map(|p| {
                Dynamic::from_map(map([
                    ("n", (p.n as i64).into()),
                    ("seed", (p.seed as i64).into()),
                    ("finetuned", p.finetuned.into()),
                    ("value", p.value.into()),
                    ("bias", opt(p.bias)),
                ]))
            })
            .collect();
        let spread = c.factor_spread();
        map([
            ("metric", c.metric.name().into()),
            ("sizes", f64_array(c.scratch.iter().map(|s| s.n as f64)).into()),
            ("scratch", summaries(&c.scratch)),
            ("finetuned", summaries(&c.finetuned)),
            ("factors", c.factors.iter().map(|f| opt(*f)).collect::<rhai::Array>().into()),
            ("factor", opt(c.factor)),
            ("factor_mean", opt(spread.map(|s| s.0))),
            ("factor_std", opt(spread.map(|s| s.1))),
            ("seed_factors", c.seed_factors.iter().map(|f| opt(*f)).collect::<rhai::Array>().into()),
            ("points", points.into()),
        ])
    }
}

#[export_module]
pub mod transfer_api {
    use super::helpers::*;
    use rhai::Map;

    use crate::bindings::model::helpers::train_config;
    use crate::bindings::options::Opts;
    use crate::bindings::{ctx, RhaiResult};
    use crate::data::Dataset;
    use crate::model::SharedModel;
    use crate::plot::{self, LineSeries};
    use crate::transfer::{data_efficiency as run, CurveConfig, Metric};

    /// Data-efficiency curves of transfer learning: for each target-domain training size in
    /// `sizes` and each seed, `scratch` (an untrained architecture, re-drawn per seed) is
    /// trained from scratch and `pretrained` (trained on the source domain) fine-tuned, on the
    /// same first N events of a seeded permutation of `pool`; each model is scored on `test`.
    /// The trainings run in parallel and depend only on their seeds (not on the thread
    /// count); a progress bar counts them.
    ///
    /// Returns `#{ metric, sizes, scratch, finetuned, factors, factor, factor_mean, factor_std,
    /// seed_factors, points }`: `scratch` / `finetuned` hold per size `#{ n, mean, std, bias }`
    /// over the seeds (std the sample standard deviation; bias for regression); `factors` per
    /// size N_scratch/N at equal performance — the scratch mean curve interpolated linearly in
    /// (ln N, metric) at the fine-tuned mean — or `()` outside the scratch range; `factor` their
    /// geometric mean; `seed_factors` the same factor from each seed's own curves, with
    /// `factor_mean` ± `factor_std` their spread; `points` every training's value.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `sizes` | array of ints | required | target-domain training sizes, increasing |
    /// | `seeds` | array of ints | [1, 2, 3] | one training per size, seed and mode |
    /// | `metric` | string | "auc" | "auc", "rejection" (1/ε_B at signal efficiency `efficiency`) "resolution" (regression: σ of prediction − target) or "rmse" (regression: √(σ² + bias²)) |
    /// | `efficiency` | float | 0.5 | the working point of "rejection" |
    /// | `target` | string | none | regression: the target column (as `train`'s), for both modes |
    /// | `scratch` | map | `train` defaults | `train` options from scratch (`seed` and `reinit` are set per training) |
    /// | `finetune` | map | `train` defaults | `train` options of the fine-tuning (`seed` set per training; the pretrained standardization is kept unless `standardize: "refit"`) |
    /// | `plot` | string | none | write the curves (mean ± std over seeds, log N) to this PNG/SVG file |
    /// | `title` | string | none | plot title |
    ///
    /// ```rhai
    /// let source = dataset("gaussians", #{ n: 2000, seed: 1 });
    /// let target = dataset("gaussians", #{ n: 1400, seed: 2 }).split(0.5, #{ seed: 3 });
    /// let arch = mlp([20, 8, 1], #{ seed: 1 });
    /// let pre = train(arch, source, #{ epochs: 3, seed: 1 }).model;
    /// let c = data_efficiency(pre, arch, target.train, target.test, #{ sizes: [50, 200], seeds: [1, 2],
    ///     scratch: #{ epochs: 3 }, finetune: #{ epochs: 3, lr: 3e-4 }, plot: "out/doc_efficiency.svg" });
    /// assert_eq(c.points.len(), 8);
    /// assert_eq(c.sizes, [50.0, 200.0]);
    /// assert(c.finetuned[0].mean > 0.5);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn data_efficiency(
        c: NativeCallContext,
        pretrained: SharedModel,
        scratch: SharedModel,
        pool: Dataset,
        test: Dataset,
        options: Map,
    ) -> RhaiResult<Map> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("data_efficiency", &options);
        let ints = |o: &mut Opts, key: &'static str| -> RhaiResult<Option<Vec<usize>>> {
            o.floats_opt(key)?
                .map(|v| {
                    v.into_iter()
                        .map(|x| {
                            if x >= 0.0 && x.fract() == 0.0 && x <= 1e12 {
                                Ok(x as usize)
                            } else {
                                Err(crate::Error::BadOption {
                                    func: "data_efficiency".into(),
                                    key: key.into(),
                                    problem: format!("must hold non-negative integers, got {x}"),
                                }
                                .into())
                            }
                        })
                        .collect()
                })
                .transpose()
        };
        let sizes = ints(&mut o, "sizes")?.ok_or_else(|| crate::Error::BadOption {
            func: "data_efficiency".into(),
            key: "sizes".into(),
            problem: "is required: the target-domain training sizes".into(),
        })?;
        let seeds: Vec<u64> =
            ints(&mut o, "seeds")?.unwrap_or_else(|| vec![1, 2, 3]).into_iter().map(|s| s as u64).collect();
        let metric = match o.choice("metric", &["auc", "rejection", "resolution", "rmse"], "auc")? {
            "rejection" => Metric::Rejection { efficiency: o.f64("efficiency", 0.5)? },
            "resolution" => Metric::Resolution,
            "rmse" => Metric::Rmse,
            _ => Metric::Auc,
        };
        let target = o.string_opt("target")?;
        let (mut sc, _) = train_config(&cx, &o.map_opt("scratch")?.unwrap_or_default())?;
        let (mut ft, _) = train_config(&cx, &o.map_opt("finetune")?.unwrap_or_default())?;
        if target.is_some() {
            sc.target.clone_from(&target);
            ft.target.clone_from(&target);
        }
        let plot_path = o.string_opt("plot")?;
        let title = o.string("title", "")?;
        o.finish()?;
        let file = plot_path.map(|p| cx.sandbox.check_write(&p)).transpose()?;
        let cfg = CurveConfig { sizes, seeds, scratch: sc, finetune: ft, metric };
        let curves = run(&*pretrained, &*scratch, &pool, &test, &cfg, &cx.control)?;
        if let Some(file) = file {
            let series =
                [("from scratch", &curves.scratch), ("fine-tuned", &curves.finetuned)].map(|(label, s)| LineSeries {
                    label: label.into(),
                    x: s.iter().map(|p| p.n as f64).collect(),
                    y: s.iter().map(|p| p.mean).collect(),
                    lo: Some(s.iter().map(|p| p.mean - p.std).collect()),
                    hi: Some(s.iter().map(|p| p.mean + p.std).collect()),
                    markers: true,
                });
            let opts = plot::PlotOptions {
                title,
                xlabel: "target-domain training events".into(),
                ylabel: curves.metric.name().into(),
                logx: true,
                ..plot::PlotOptions::default()
            };
            plot::plot_lines(&file, &series, &opts)?;
        }
        Ok(result(&curves))
    }

    /// `data_efficiency` needs `sizes`, so this form without options is an error that says
    /// so. Options as the form with an options map.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 100, seed: 1 });
    /// let m = mlp([20, 4, 1]);
    /// try { data_efficiency(m, m, d, d); } catch (e) { assert(e.message.contains("sizes")); }
    /// ```
    #[rhai_fn(return_raw, name = "data_efficiency")]
    pub fn data_efficiency_default(
        c: NativeCallContext,
        pretrained: SharedModel,
        scratch: SharedModel,
        pool: Dataset,
        test: Dataset,
    ) -> RhaiResult<Map> {
        data_efficiency(c, pretrained, scratch, pool, test, Map::new())
    }

    /// A copy of `model` with its output layer (the head) replaced by a new one — e.g. a
    /// classifier pretrained on fast simulation turned into a regression network, or a binary
    /// head into a 3-class one — drawn like a fresh layer (`torch.nn.Linear`'s uniform
    /// initialisation) from `seed`. Every other parameter and the input standardization are
    /// kept bit for bit, so `train` (with `standardize: "auto"`) fine-tunes from the pretrained
    /// body. For the same width, `train`'s `reinit: [-1]` re-draws the head in place. MLPs
    /// (fused or candle) and PFNs; ParticleNet and ParT models say they cannot yet.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `outputs` | int | the model's | width of the new output layer |
    /// | `output` | string | the model's | "sigmoid" (1 output), "softmax" (≥ 2) or "linear" (regression) |
    /// | `seed` | int | 0 | seed of the new head's initialisation |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 400, seed: 1 });
    /// let pre = train(mlp([20, 8, 1], #{ seed: 1 }), d, #{ epochs: 2, seed: 1 }).model;
    /// let reg = replace_head(pre, #{ outputs: 1, output: "linear", seed: 2 });
    /// assert_eq(reg.layers, [20, 8, 1]);
    /// let body = 20 * 8 + 8;                                    // layer 0: weights and biases
    /// assert_eq(reg.params().extract(0, body), pre.params().extract(0, body));   // kept
    /// assert(reg.params().extract(body) != pre.params().extract(body));          // a new head
    /// let three = replace_head(pre, #{ outputs: 3, output: "softmax" });
    /// assert_eq(three.layers, [20, 8, 3]);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn replace_head(model: SharedModel, options: Map) -> RhaiResult<SharedModel> {
        let mut o = Opts::new("replace_head", &options);
        let outputs = o.usize("outputs", model.n_outputs())?;
        let output = match o.string_opt("output")? {
            Some(s) => crate::model::Output::parse(&s)?,
            None => model.output(),
        };
        let seed = o.seed()?.unwrap_or(0);
        o.finish()?;
        if output.check_width(outputs).is_err() || outputs == 0 {
            return Err(crate::error::Error::BadOption {
                func: "replace_head".into(),
                key: "outputs".into(),
                problem: format!("a {output} output layer cannot have {outputs} outputs (sigmoid: exactly 1, softmax: at least 2, linear: at least 1)"),
            }
            .into());
        }
        Ok(std::sync::Arc::from(model.replace_head(outputs, output, seed)?))
    }

    /// `replace_head` with the default options: the same width and output, a head re-drawn
    /// from seed 0 on the kept body.
    ///
    /// ```rhai
    /// let pre = mlp([20, 8, 1], #{ seed: 1 });
    /// let fresh = replace_head(pre);
    /// assert_eq(fresh.layers, [20, 8, 1]);
    /// assert_eq(fresh.params().extract(0, 168), pre.params().extract(0, 168));
    /// ```
    #[rhai_fn(return_raw, name = "replace_head")]
    pub fn replace_head_default(model: SharedModel) -> RhaiResult<SharedModel> {
        replace_head(model, Map::new())
    }
}
