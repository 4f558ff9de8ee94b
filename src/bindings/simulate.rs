//! Script functions for the detector response (`simulate`): `jet_response` and
//! `event_response`, each from a `fast` or `full` preset with every parameter open.

use rhai::plugin::*;

/// Registers the detector-response functions.
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(simulate_api).into());
}

mod helpers {
    use rhai::Map;

    use crate::bindings::options::Opts;
    use crate::bindings::RhaiResult;
    use crate::simulate::{FeatureResponse, Resolution, Tails};

    /// A resolution map (`jet_response (resolution)` keys) over the preset's values.
    pub fn resolution(m: &Map, base: Resolution) -> RhaiResult<Resolution> {
        let mut o = Opts::new("jet_response (resolution)", m);
        let r = Resolution {
            stochastic: o.f64("stochastic", base.stochastic)?,
            constant: o.f64("constant", base.constant)?,
            noise: o.f64("noise", base.noise)?,
            linear: o.f64("linear", base.linear)?,
            scale: o.f64("scale", base.scale)?,
            tails: Tails {
                fraction: o.f64("tail_fraction", base.tails.fraction)?,
                width: o.f64("tail_width", base.tails.width)?,
            },
        };
        o.finish()?;
        Ok(r)
    }

    /// A feature map (`event_response (feature)` keys) over `base` (the preset's, or none).
    pub fn feature(name: &str, m: &Map, base: Option<&FeatureResponse>) -> RhaiResult<FeatureResponse> {
        let d = base.cloned().unwrap_or_else(|| FeatureResponse::relative(name, 0.0));
        let mut o = Opts::new("event_response (feature)", m);
        let f = FeatureResponse {
            name: name.to_string(),
            absolute: o.f64("absolute", d.absolute)?,
            relative: o.f64("relative", d.relative)?,
            stochastic: o.f64("stochastic", d.stochastic)?,
            reference: o.string_opt("reference")?.or(d.reference),
            scale: o.f64("scale", d.scale)?,
            tails: Tails {
                fraction: o.f64("tail_fraction", d.tails.fraction)?,
                width: o.f64("tail_width", d.tails.width)?,
            },
            efficiency: o.f64_opt("efficiency")?.or(d.efficiency),
            min: o.f64_opt("min")?.or(d.min),
            periodic: o.bool("periodic", d.periodic)?,
        };
        o.finish()?;
        Ok(f)
    }
}

#[export_module]
pub mod simulate_api {
    use super::helpers::*;
    use rhai::Map;

    use crate::bindings::options::Opts;
    use crate::bindings::{ctx, RhaiResult};
    use crate::data::Dataset;
    use crate::simulate::{EventResponse, JetResponse};

    /// The detector response of particle jets: the constituents of `collection` (features `pt`,
    /// `eta`, `phi`, `E`, `charge`, `pid`, as in `pythia_qg_jets.parquet`) become what a
    /// detector records — tracks found with `tracking_efficiency` and smeared by the `track`
    /// resolution (electrons by `em`), soft extra particles around the jet axis, neutral
    /// particles merged into calorimeter cells (photons in `em_cell`, neutral hadrons in
    /// `hadron_cell`; 0 for none) and smeared by `em` / `hadron`, thresholds — and `jet_pt`,
    /// `jet_eta`, `jet_phi`, `jet_mass`, `n_constituents` are recomputed from them. Derive
    /// object features (log pT, Δη, …) after the response. Seeded per jet: the same seed gives
    /// the same jets on any number of threads.
    ///
    /// A resolution map holds `stochastic` (a in a/√E), `constant` (b), `noise` (c/E),
    /// `linear` (d·E), `scale` (mean response), `tail_fraction` and `tail_width` (a double
    /// Gaussian: with probability f the spread is w times wider); σ/E = a/√E ⊕ b ⊕ c/E ⊕ d·E.
    /// Keys not given keep the preset's values (the table in the README).
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `preset` | string | "fast" | "fast" or "full": the starting values of every parameter |
    /// | `collection` | string | "part" | the constituents' collection |
    /// | `track` | map | preset | resolution of charged hadrons and muons |
    /// | `em` | map | preset | resolution of photons and electrons |
    /// | `hadron` | map | preset | resolution of neutral hadrons |
    /// | `tracking_efficiency` | float | preset | probability that a charged particle's track is found |
    /// | `em_cell` | float | preset | photon calorimeter cell size Δη = Δφ (0: no merging) |
    /// | `hadron_cell` | float | preset | hadron calorimeter cell size (0: no merging) |
    /// | `soft_mean` | float | preset | mean number of soft extra particles per jet (Poisson) |
    /// | `soft_pt` | float | 1 | their mean pT in GeV (exponential) |
    /// | `soft_radius` | float | 0.4 | the disc around the jet axis they fall in |
    /// | `track_pt_min` | float | preset | tracks below this pT (GeV) are dropped |
    /// | `neutral_pt_min` | float | preset | calorimeter particles below this pT (GeV) are dropped |
    /// | `seed` | int | from the session seed | every draw |
    ///
    /// ```rhai
    /// // 100 jets of one photon (E 50 GeV) and one π⁺ (E 20 GeV), 0.3 apart in η.
    /// let d = dataset("gaussians", #{ n: 100, seed: 1 }).select(["x0"]).derive("n_constituents", "0 * x0 + 2");
    /// let pt = []; let eta = []; let phi = []; let e = []; let q = []; let pid = [];
    /// for i in 0..100 {
    ///     pt.push([50.0, 20.0]); eta.push([0.0, 0.3]); phi.push([0.1, 0.1]);
    ///     e.push([50.0, 20.0 * cosh(0.3)]); q.push([0.0, 1.0]); pid.push([22.0, 211.0]);
    /// }
    /// let jets = d.with_objects("part", #{ pt: pt, eta: eta, phi: phi, E: e, charge: q, pid: pid });
    /// let full = jet_response(jets, #{ preset: "full", soft_mean: 0.0, seed: 1 });
    /// assert(full["n_constituents"].all(|k| k <= 2));     // lost tracks, no soft particles
    /// let perfect = jet_response(jets, #{ tracking_efficiency: 1.0, em_cell: 0.0, hadron_cell: 0.0,
    ///     track: #{ constant: 0.0, linear: 0.0 }, em: #{ stochastic: 0.0, constant: 0.0 },
    ///     track_pt_min: 0.0, neutral_pt_min: 0.0 });
    /// assert_eq(perfect["n_constituents"], jets["n_constituents"]);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn jet_response(c: NativeCallContext, data: Dataset, options: Map) -> RhaiResult<Dataset> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("jet_response", &options);
        let preset = o.choice("preset", &["fast", "full"], "fast")?;
        let collection = o.string("collection", "part")?;
        let p = JetResponse::preset(preset, &collection, 0)?;
        let res = |o: &mut Opts, key: &'static str, base| -> RhaiResult<_> {
            match o.map_opt(key)? {
                Some(m) => resolution(&m, base),
                None => Ok(base),
            }
        };
        let r = JetResponse {
            track: res(&mut o, "track", p.track)?,
            em: res(&mut o, "em", p.em)?,
            hadron: res(&mut o, "hadron", p.hadron)?,
            tracking_efficiency: o.f64("tracking_efficiency", p.tracking_efficiency)?,
            em_cell: o.f64("em_cell", p.em_cell)?,
            hadron_cell: o.f64("hadron_cell", p.hadron_cell)?,
            soft_mean: o.f64("soft_mean", p.soft_mean)?,
            soft_pt: o.f64("soft_pt", p.soft_pt)?,
            soft_radius: o.f64("soft_radius", p.soft_radius)?,
            track_pt_min: o.f64("track_pt_min", p.track_pt_min)?,
            neutral_pt_min: o.f64("neutral_pt_min", p.neutral_pt_min)?,
            seed: cx.seed_or_next(o.seed()?),
            collection,
        };
        o.finish()?;
        Ok(r.apply(&data)?)
    }

    /// The `fast` jet response with the default options (as the form with an options map).
    ///
    /// ```rhai
    /// let d = dataset("gaussians", #{ n: 2, seed: 1 }).select(["x0"]);
    /// let jets = d.with_objects("part", #{ pt: [[5.0], [7.0]], eta: [[0.0], [0.1]], phi: [[0.0], [0.0]],
    ///     E: [[5.0], [7.0 * cosh(0.1)]], charge: [[0.0], [0.0]], pid: [[22.0], [22.0]] });
    /// assert_eq(jet_response(jets).len, 2);
    /// ```
    #[rhai_fn(return_raw, name = "jet_response")]
    pub fn jet_response_default(c: NativeCallContext, data: Dataset) -> RhaiResult<Dataset> {
        jet_response(c, data, Map::new())
    }

    /// The detector response of event-level features (the toy collider's by default, or any
    /// table's): per feature x' = scale·x + σ·z with σ = √(absolute² + (relative·x)² +
    /// stochastic²·|ref|) and z a double Gaussian (`tail_fraction`, `tail_width`), clipped at
    /// `min`, wrapped into [−π, π) when `periodic`; a count with an `efficiency` ε is thinned
    /// binomially instead (each object found with probability ε). Events are recorded with
    /// probability `efficiency`. `truth` columns are copied to `<name>_true` first (regression
    /// targets), and the `derived` features are recomputed afterwards (the collider preset
    /// recomputes `m12` and `dr12`). Seeded per event.
    ///
    /// Feature maps hold `absolute`, `relative`, `stochastic`, `reference` (the column whose
    /// generator-level value is `ref`; the feature itself by default), `scale`,
    /// `tail_fraction`, `tail_width`, `efficiency`, `min`, `periodic`; a feature the preset
    /// has keeps the preset's values for keys not given.
    ///
    /// | option | type | default | meaning |
    /// |---|---|---|---|
    /// | `preset` | string | "fast" | "fast", "full" (the collider features) or "none" (only what `features` lists) |
    /// | `features` | map | none | per feature a map as above, added to or replacing the preset's |
    /// | `efficiency` | float | preset | probability that an event is recorded |
    /// | `truth` | array of strings | none | columns copied to `<name>_true` before the response |
    /// | `derived` | map | preset | feature name → expression recomputed after the response |
    /// | `seed` | int | from the session seed | every draw |
    ///
    /// ```rhai
    /// let d = dataset("collider", #{ n: 2000, seed: 1 });
    /// let full = event_response(d, #{ preset: "full", truth: ["met"], seed: 2 });
    /// assert(full.len < 2000);                          // 95 % of the events are recorded
    /// assert(full.features.contains("met_true"));
    /// let wider = event_response(d, #{ preset: "none", features: #{ met: #{ absolute: 10.0, min: 0.0 } } });
    /// assert_eq(wider.len, 2000);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn event_response(c: NativeCallContext, data: Dataset, options: Map) -> RhaiResult<Dataset> {
        let cx = ctx(&c)?;
        let mut o = Opts::new("event_response", &options);
        let preset = o.choice("preset", &["fast", "full", "none"], "fast")?;
        let mut r = match preset {
            "none" => {
                EventResponse { features: Vec::new(), efficiency: 1.0, truth: Vec::new(), derived: Vec::new(), seed: 0 }
            }
            p => EventResponse::collider(p, 0)?,
        };
        if let Some(m) = o.map_opt("features")? {
            for (name, v) in &m {
                let fm = v.read_lock::<Map>().map(|g| g.clone()).ok_or_else(|| crate::Error::BadOption {
                    func: "event_response".into(),
                    key: "features".into(),
                    problem: format!("the entry of '{name}' must be a map"),
                })?;
                let pos = r.features.iter().position(|f| f.name == name.as_str());
                let f = feature(name, &fm, pos.map(|i| &r.features[i]))?;
                match pos {
                    Some(i) => r.features[i] = f,
                    None => r.features.push(f),
                }
            }
        }
        r.efficiency = o.f64("efficiency", r.efficiency)?;
        r.truth = o.strings_opt("truth")?.unwrap_or_default();
        if let Some(m) = o.map_opt("derived")? {
            r.derived = m.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        }
        r.seed = cx.seed_or_next(o.seed()?);
        o.finish()?;
        Ok(r.apply(&data)?)
    }

    /// The collider's `fast` event response with the default options (as the form with an
    /// options map).
    ///
    /// ```rhai
    /// let d = event_response(dataset("collider", #{ n: 100, seed: 1 }));
    /// assert_eq(d.len, 100);
    /// ```
    #[rhai_fn(return_raw, name = "event_response")]
    pub fn event_response_default(c: NativeCallContext, data: Dataset) -> RhaiResult<Dataset> {
        event_response(c, data, Map::new())
    }
}
