//! Script functions for the detector mitigation of an attack (`attack::detector`):
//! `train_detector` and `detector_mitigation`.

use rhai::plugin::*;

/// Registers `train_detector` and `detector_mitigation`.
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(detector_api).into());
}

#[export_module]
pub mod detector_api {
    use rhai::{Dynamic, Map};

    use crate::attack::detector::{fooling_events, train_detector as train, DetectorConfig, Mitigation};
    use crate::bindings::convert::map;
    use crate::bindings::model::helpers::{train_result, widths};
    use crate::bindings::options::Opts;
    use crate::bindings::{ctx, RhaiResult};
    use crate::data::Dataset;
    use crate::model::SharedModel;

    /// Trains an adversarial-event detector as the CONSERVAttack reference does: an MLP
    /// (`hidden`, ReLU, sigmoid output) separating the `clean` events (detector class 1) from
    /// the events of `attacked` that fool `model` (their class differs from their label;
    /// class 0), with L1 regularisation of its hidden layers' weight matrices (the penalty is in
    /// the reported losses), balanced class weights
    /// `n / (2·n_class)`, Adam and early stopping on the validation loss of a held-out fraction
    /// (best weights kept). The reference's batch normalisation is replaced by the input
    /// standardisation the model stores. Returns the map of `train` (`model` — the detector —,
    /// `history`, `stopped`, `best_epoch`) plus `n_clean` and `n_adversarial`.
    ///
    /// | key | type | default | meaning |
    /// |---|---|---|---|
    /// | `hidden` | array | [128, 64, 32] | hidden widths |
    /// | `l1` | float | 0.003 | L1 penalty of the hidden layers' weight matrices |
    /// | `lr` | float | 1e-4 | Adam learning rate |
    /// | `epochs` | int | 200 | most epochs |
    /// | `batch_size` | int | 256 | events per step |
    /// | `patience` | int | 10 | early stopping: epochs without a lower validation loss |
    /// | `validation_fraction` | float | 0.2 | held out for the validation loss (0: no early stopping) |
    /// | `balanced` | bool | true | balanced class weights |
    /// | `seed` | int | session | initialisation, shuffling, validation split |
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2000, seed: 1 }).select(["x0", "x1"]);
    /// let m = train(mlp([2, 16, 1]), d, #{ epochs: 3, seed: 1 }).model;
    /// let a = conservattack(m, d, #{ mode: "faithful", steps: 3, num_candidates: 30, seed: 2 });
    /// let det = train_detector(m, d, a.events, #{ epochs: 5, lr: 1e-3, seed: 3 });
    /// assert_eq(det.n_clean, 2000);
    /// assert(det.n_adversarial > 0);
    /// let r = detector_mitigation(m, det.model, d, a.events);
    /// assert(r.corrected <= r.initial);
    /// print(r);
    /// ```
    #[rhai_fn(return_raw, name = "train_detector")]
    pub fn train_detector(
        c: NativeCallContext,
        model: SharedModel,
        clean: Dataset,
        attacked: Dataset,
        options: Map,
    ) -> RhaiResult<Map> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("train_detector", &options);
        let d = DetectorConfig::default();
        let hidden = match o.floats_opt("hidden")? {
            Some(h) => widths("train_detector", h)?,
            None => d.hidden.clone(),
        };
        let cfg = DetectorConfig {
            hidden,
            l1: o.f64("l1", d.l1)?,
            lr: o.f64("lr", d.lr)?,
            epochs: o.usize("epochs", d.epochs)?,
            batch_size: o.usize("batch_size", d.batch_size)?,
            patience: o.usize("patience", d.patience)?,
            validation_fraction: o.f64("validation_fraction", d.validation_fraction)?,
            balanced: o.bool("balanced", d.balanced)?,
            seed: cx.seed_or_next(o.seed()?),
        };
        o.finish()?;
        let adversarial = fooling_events(&*model, &attacked)?;
        let r = train(&clean, &adversarial, &cfg, &cx.control)?;
        let mut m = train_result(r);
        m.insert("n_clean".into(), Dynamic::from_int(clean.len() as i64));
        m.insert("n_adversarial".into(), Dynamic::from_int(adversarial.len() as i64));
        Ok(m)
    }

    /// The detector with the reference's settings. Options as the form with an options map.
    #[rhai_fn(return_raw, name = "train_detector")]
    pub fn train_detector_default(
        c: NativeCallContext,
        model: SharedModel,
        clean: Dataset,
        attacked: Dataset,
    ) -> RhaiResult<Map> {
        train_detector(c, model, clean, attacked, Map::new())
    }

    /// What `detector` does to the attack on `model`: its efficiency on the `clean` events
    /// (the fraction it calls clean) and on the events of `attacked` that fool `model` (the
    /// fraction it calls adversarial), the initial fooling ratio (fooling / attacked events)
    /// and the corrected one, `initial × (1 − efficiency_adversarial)` — the fooling events it
    /// misses. Evaluate on events the detector was not trained on; a detector of one run on
    /// another run's events gives the reference's cross-run estimate. Returns
    /// `#{ efficiency_clean, efficiency_adversarial, initial, corrected, n_attacked, n_fooled,
    /// n_clean }`.
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2000, seed: 1 }).select(["x0", "x1"]);
    /// let m = train(mlp([2, 16, 1]), d, #{ epochs: 3, seed: 1 }).model;
    /// let p = d.split(0.5, #{ seed: 4 });
    /// let a = conservattack(m, p.train, #{ mode: "faithful", steps: 3, num_candidates: 30, seed: 2 });
    /// let det = train_detector(m, p.train, a.events, #{ epochs: 5, lr: 1e-3, seed: 3 }).model;
    /// let b = conservattack(m, p.test, #{ mode: "faithful", steps: 3, num_candidates: 30, seed: 5 });
    /// let r = detector_mitigation(m, det, p.test, b.events);
    /// assert(r.efficiency_clean >= 0.0 && r.efficiency_clean <= 1.0);
    /// assert(abs(r.corrected - r.initial * (1.0 - r.efficiency_adversarial)) < 1e-12);
    /// ```
    #[rhai_fn(return_raw, name = "detector_mitigation")]
    pub fn detector_mitigation(
        model: SharedModel,
        detector: SharedModel,
        clean: Dataset,
        attacked: Dataset,
    ) -> RhaiResult<Map> {
        let r = Mitigation::evaluate(&*model, &*detector, &clean, &attacked)?;
        Ok(map([
            ("efficiency_clean", Dynamic::from_float(r.efficiency_clean)),
            ("efficiency_adversarial", Dynamic::from_float(r.efficiency_adversarial)),
            ("initial", Dynamic::from_float(r.initial)),
            ("corrected", Dynamic::from_float(r.corrected)),
            ("n_attacked", Dynamic::from_int(r.n_attacked as i64)),
            ("n_fooled", Dynamic::from_int(r.n_fooled as i64)),
            ("n_clean", Dynamic::from_int(r.n_clean as i64)),
        ]))
    }
}
