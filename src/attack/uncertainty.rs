//! The experiment's uncertainty model: the budget every attack is measured in.
//!
//! Per feature `i`: an absolute σ `aᵢ`, a relative σ `rᵢ` (so σ varies per event) and a floor,
//! combined as `σᵢ(x) = max(√(aᵢ² + (rᵢ·xᵢ)²), floorᵢ)`; or the feature is *frozen* (σ = 0,
//! never perturbed: multiplicities, flags). A scale `s` multiplies every σ. Correlations enter
//! as a correlation matrix `ρ` (from a full covariance or from named groups), so the per-event
//! covariance is `Σ(x) = s²·D(x) ρ D(x)` with `D = diag(σ(x))`, factorised once as `ρ = L Lᵀ`.
//!
//! Attacks work in *whitened* coordinates `u`: `δ = s·σ(x⁰) ⊙ (L u)`, so that
//! `χ² = δᵀ Σ⁻¹ δ = ‖u‖²` and `∂/∂u = Lᵀ (s·σ ⊙ ∂/∂x)`.
//!
//! ```
//! use nuisance::attack::{FeatureSigma, UncertaintyModel};
//! use ndarray::array;
//! let m = UncertaintyModel::new(
//!     vec!["pt".into(), "eta".into()],
//!     vec![FeatureSigma::relative(0.1), FeatureSigma::absolute(0.05)],
//! ).unwrap();
//! let x0 = array![[50.0f32, 1.0]];
//! let xa = array![[55.0f32, 1.0]];
//! let c = m.chi2(x0.view(), xa.view(), true).unwrap();
//! // δ/σ = 5 / (0.1·50) = 1 on pt, 0 on eta.
//! assert!((c.chi2[0] - 1.0).abs() < 1e-9);
//! assert_eq!(c.dof, [2]);
//! ```

use ndarray::{s, Array1, Array2, ArrayView2, Axis, Zip};
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::chi2_tail::Chi2Tail;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::SetLayout;
use crate::rng::{rng, substream};

/// Events per parallel chunk when drawing variations.
const SMEAR_CHUNK: usize = 4096;

/// Events per parallel chunk of χ² and p-values.
const CHI2_CHUNK: usize = 2048;

/// The uncertainty of one feature.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeatureSigma {
    /// Absolute σ in the feature's unit.
    pub absolute: f32,
    /// Relative σ (0.05 = 5 % of |x|).
    pub relative: f32,
    /// Smallest σ an event gets (matters for relative σ on values near 0).
    pub floor: f32,
    /// Never perturbed.
    pub frozen: bool,
}

impl FeatureSigma {
    /// An absolute σ.
    pub fn absolute(a: f32) -> Self {
        FeatureSigma { absolute: a, relative: 0.0, floor: 0.0, frozen: false }
    }
    /// A relative σ.
    pub fn relative(r: f32) -> Self {
        FeatureSigma { absolute: 0.0, relative: r, floor: 0.0, frozen: false }
    }
    /// A frozen feature.
    pub fn frozen() -> Self {
        FeatureSigma { absolute: 0.0, relative: 0.0, floor: 0.0, frozen: true }
    }

    /// σ at value `x` (before the scale s).
    #[inline]
    pub fn at(&self, x: f32) -> f32 {
        if self.frozen {
            return 0.0;
        }
        let rx = self.relative * x;
        (self.absolute * self.absolute + rx * rx).sqrt().max(self.floor)
    }
}

/// A correlation matrix and its Cholesky factor, over all features (frozen features have an
/// identity row and column) — or, for a model expanded over a set layout, over the leading
/// event features only (the count and the object slots beyond are uncorrelated).
#[derive(Clone, Debug, PartialEq)]
struct Correlation {
    rho: Array2<f64>,
    /// Lower-triangular `L` with `ρ = L Lᵀ`.
    l: Array2<f32>,
    /// `L⁻¹`.
    l_inv: Array2<f32>,
}

impl Correlation {
    /// `a · m` where `m` acts on the leading `m.nrows()` columns of `a` (identity beyond).
    fn mix(a: ArrayView2<'_, f32>, m: ArrayView2<'_, f32>) -> Array2<f32> {
        let k = m.nrows();
        if k == a.ncols() {
            return a.dot(&m);
        }
        let mut out = a.to_owned();
        out.slice_mut(s![.., ..k]).assign(&a.slice(s![.., ..k]).dot(&m));
        out
    }
}

/// Per-event χ² of perturbations under an [`UncertaintyModel`].
#[derive(Clone, Debug, PartialEq)]
pub struct Chi2 {
    /// χ² per event.
    pub chi2: Vec<f64>,
    /// Degrees of freedom per event: the entries that are not frozen (for a set model, the
    /// event features and the object features of the event's *real* objects).
    pub dof: Vec<usize>,
    /// p-value per event, `1 − CDF_χ²(χ²; dof)`.
    pub p_value: Vec<f64>,
}

/// Per-feature uncertainties, optional correlations, and the scale `s`.
///
/// Besides the dataset's (event) features, a model may hold σ for *object features* by name
/// `coll.feature` ([`UncertaintyModel::with_object_sigma`]); they matter for set models, over
/// whose input layout attacks expand the model ([`UncertaintyModel::over_inputs`]).
#[derive(Clone, Debug, PartialEq)]
pub struct UncertaintyModel {
    names: Vec<String>,
    specs: Vec<FeatureSigma>,
    scale: f32,
    corr: Option<Correlation>,
    /// σ of object features, by `coll.feature`, in the order given.
    objects: Vec<(String, FeatureSigma)>,
    /// The set layout this model was expanded over: slot columns beyond each event's count
    /// get σ = 0 (frozen per event).
    slots: Option<SetLayout>,
}

impl UncertaintyModel {
    /// A diagonal model with scale 1. Every σ must be finite and ≥ 0, and every feature that is
    /// not frozen needs an absolute or relative σ > 0.
    pub fn new(names: Vec<String>, specs: Vec<FeatureSigma>) -> Result<Self> {
        if names.len() != specs.len() {
            return Err(Error::Shape {
                op: "uncertainty",
                expected: format!("{} feature uncertainties (one per name)", names.len()),
                got: format!("{}", specs.len()),
            });
        }
        if names.is_empty() {
            return Err(Error::Empty { op: "uncertainty", what: "the feature list".into() });
        }
        for (name, s) in names.iter().zip(&specs) {
            check_spec(name, s)?;
        }
        Ok(UncertaintyModel { names, specs, scale: 1.0, corr: None, objects: Vec::new(), slots: None })
    }

    /// The same model with scale `s` (every σ multiplied by `s`; `s > 0`).
    pub fn with_scale(&self, s: f64) -> Result<Self> {
        if !(s.is_finite() && s > 0.0) {
            return Err(Error::BadArgument {
                func: "uncertainty".into(),
                problem: format!("the scale s must be a finite number > 0, got {s}"),
            });
        }
        Ok(UncertaintyModel { scale: s as f32, ..self.clone() })
    }

    /// The same model with correlation matrix `rho` (d × d over all features, symmetric, unit
    /// diagonal, positive definite on the features that are not frozen).
    pub fn with_correlation(&self, rho: Array2<f64>) -> Result<Self> {
        let d = self.names.len();
        if rho.dim() != (d, d) {
            return Err(Error::Shape {
                op: "uncertainty correlation",
                expected: format!("a {d} × {d} matrix (one row per feature)"),
                got: format!("{} × {}", rho.nrows(), rho.ncols()),
            });
        }
        for i in 0..d {
            if (rho[[i, i]] - 1.0).abs() > 1e-9 {
                return Err(Error::BadArgument {
                    func: "uncertainty".into(),
                    problem: format!(
                        "correlation of feature '{}' with itself must be 1, got {}",
                        self.names[i],
                        rho[[i, i]]
                    ),
                });
            }
            for j in 0..i {
                let (a, b) = (rho[[i, j]], rho[[j, i]]);
                if !a.is_finite() || (a - b).abs() > 1e-9 || a.abs() > 1.0 {
                    return Err(Error::BadArgument {
                        func: "uncertainty".into(),
                        problem: format!(
                            "correlation between '{}' and '{}' must be symmetric and in [-1, 1], got {a} and {b}",
                            self.names[i], self.names[j]
                        ),
                    });
                }
            }
        }
        let mut active = rho.clone();
        for (i, s) in self.specs.iter().enumerate() {
            if s.frozen {
                active.row_mut(i).fill(0.0);
                active.column_mut(i).fill(0.0);
                active[[i, i]] = 1.0;
            }
        }
        let l = cholesky(&active, &self.names)?;
        let l_inv = lower_inverse(&l);
        let corr = Correlation { rho: active, l: l.mapv(|v| v as f32), l_inv: l_inv.mapv(|v| v as f32) };
        Ok(UncertaintyModel { corr: Some(corr), ..self.clone() })
    }

    /// A model from a covariance matrix in the features' units: σᵢ = √Σᵢᵢ (absolute) and the
    /// correlation Σᵢⱼ/(σᵢσⱼ) (see [`split_covariance`]). Frozen features are given by name.
    pub fn from_covariance(names: Vec<String>, cov: Array2<f64>, frozen: &[bool]) -> Result<Self> {
        let (sd, rho) = split_covariance(&names, &cov, frozen)?;
        let specs = sd
            .iter()
            .zip(frozen)
            .map(|(&s, &f)| if f { FeatureSigma::frozen() } else { FeatureSigma::absolute(s as f32) })
            .collect();
        UncertaintyModel::new(names, specs)?.with_correlation(rho)
    }

    /// The same model with σ `spec` for the object feature `name` (`coll.feature`, e.g.
    /// `part.logpt`), replacing an earlier one. Object features are uncorrelated (with each
    /// other, across objects and with the event features).
    pub fn with_object_sigma(&self, name: &str, spec: FeatureSigma) -> Result<Self> {
        match name.split_once('.') {
            Some((c, f)) if !c.is_empty() && !f.is_empty() => {}
            _ => {
                return Err(Error::arg(
                    "uncertainty",
                    format!("object feature '{name}' must be named collection.feature"),
                ))
            }
        }
        check_spec(name, &spec)?;
        let mut out = self.clone();
        match out.objects.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = spec,
            None => out.objects.push((name.to_string(), spec)),
        }
        Ok(out)
    }

    /// σ of object features, by `coll.feature`.
    pub fn object_sigmas(&self) -> &[(String, FeatureSigma)] {
        &self.objects
    }

    /// The set layout the model was expanded over ([`UncertaintyModel::over_inputs`]).
    pub fn set_layout(&self) -> Option<&SetLayout> {
        self.slots.as_ref()
    }

    /// Feature names, in column order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
    /// Per-feature specifications.
    pub fn specs(&self) -> &[FeatureSigma] {
        &self.specs
    }
    /// The scale `s`.
    pub fn scale(&self) -> f64 {
        self.scale as f64
    }
    /// True when the model has correlations.
    pub fn is_correlated(&self) -> bool {
        self.corr.is_some()
    }
    /// The correlation matrix (identity when uncorrelated).
    pub fn correlation(&self) -> Array2<f64> {
        let mut rho = Array2::eye(self.names.len());
        if let Some(c) = &self.corr {
            let k = c.rho.nrows();
            rho.slice_mut(s![..k, ..k]).assign(&c.rho);
        }
        rho
    }
    /// Which features are frozen.
    pub fn frozen(&self) -> Vec<bool> {
        self.specs.iter().map(|s| s.frozen).collect()
    }
    /// Number of features that can move (the χ² degrees of freedom; for a model expanded over
    /// a set layout, of an event with every slot filled — see [`UncertaintyModel::dofs`]).
    pub fn dof(&self) -> usize {
        self.specs.iter().filter(|s| !s.frozen).count()
    }

    /// The χ² degrees of freedom of each event of `x0` (`n × d`): the features that are not
    /// frozen; for a set model only the object features of the event's real objects count
    /// (`E′ + k·f′` with `E′` free event features, `k` real objects, `f′` free object features).
    pub fn dofs(&self, x0: ArrayView2<'_, f32>) -> Vec<usize> {
        let Some(l) = &self.slots else { return vec![self.dof(); x0.nrows()] };
        let first = l.count_column() + 1;
        let free = |r: std::ops::Range<usize>| self.specs[r].iter().filter(|s| !s.frozen).count();
        let (base, per) = (free(0..first), free(first..first + l.n_object()));
        x0.rows().into_iter().map(|r| base + l.count_of(r[l.count_column()]) * per).collect()
    }

    /// Checks that `ds` has exactly the model's features, in the same order.
    pub fn check_dataset(&self, op: &'static str, ds: &Dataset) -> Result<()> {
        if ds.names() != self.names.as_slice() {
            return Err(Error::BadArgument {
                func: op.into(),
                problem: format!(
                    "the uncertainty model's features [{}] do not match the dataset's [{}]",
                    self.names.join(", "),
                    ds.names().join(", ")
                ),
            });
        }
        if ds.is_empty() {
            return Err(Error::Empty { op, what: "the dataset".into() });
        }
        Ok(())
    }

    /// s·σ(x) per event and feature, `n × d` (0 for frozen features; for a model expanded over
    /// a set layout also 0 on the count and on every slot beyond the event's real objects, so
    /// `x` must be the original events).
    pub fn sigma(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        let mut out = self.sigma_dense(x);
        if let Some(l) = &self.slots {
            let first = l.count_column() + 1;
            Zip::from(out.rows_mut()).and(x.rows()).par_for_each(|mut o, xr| {
                let k = l.count_of(xr[l.count_column()]);
                o.slice_mut(s![first + k * l.n_object()..]).fill(0.0);
            });
        }
        out
    }

    /// σ per feature before padded slots are zeroed.
    fn sigma_dense(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        if self.specs.iter().all(|s| s.relative == 0.0) {
            // σ does not depend on x: one row, broadcast.
            let row = Array1::from_iter(self.specs.iter().map(|s| self.scale * s.at(0.0)));
            if let Some(b) = row.broadcast(x.raw_dim()) {
                return b.to_owned();
            }
        }
        let mut out = Array2::<f32>::zeros(x.raw_dim());
        Zip::from(out.rows_mut()).and(x.rows()).par_for_each(|mut o, xr| {
            for ((o, &v), s) in o.iter_mut().zip(xr).zip(&self.specs) {
                *o = self.scale * s.at(v);
            }
        });
        out
    }

    /// δ = s·σ ⊙ (L u) per event, from whitened coordinates `u` (`n × d`) and `sigma` from
    /// [`UncertaintyModel::sigma`].
    pub fn delta_from_whitened(&self, sigma: ArrayView2<'_, f32>, u: ArrayView2<'_, f32>) -> Array2<f32> {
        match &self.corr {
            Some(c) => {
                let mut z = Correlation::mix(u, c.l.t());
                Zip::from(&mut z).and(&sigma).par_for_each(|z, &s| *z *= s);
                z
            }
            None => Zip::from(&u).and(&sigma).par_map_collect(|&u, &s| u * s),
        }
    }

    /// Maps a gradient with respect to x (`n × d`) to the gradient with respect to u:
    /// `Lᵀ (s·σ ⊙ g)` per event.
    pub fn grad_to_whitened(&self, sigma: ArrayView2<'_, f32>, g: ArrayView2<'_, f32>) -> Array2<f32> {
        let sg = Zip::from(&g).and(&sigma).par_map_collect(|&g, &s| g * s);
        match &self.corr {
            Some(c) => Correlation::mix(sg.view(), c.l.view()),
            None => sg,
        }
    }

    /// `Lᵀ (m ⊙ L⁻ᵀ u')` per event (`m` a 0/1 mask, `n × d`). When a projection with Jacobian
    /// `m` maps the perturbation `δ = s·σ ⊙ L u` to `δ'` with whitened coordinates `u'`, then
    /// `∂u'/∂u = L⁻¹ diag(m) L`, so this is half the gradient of χ²(δ') = ‖u'‖² with respect
    /// to `u` (`m` must be 0 where σ = 0). Without correlations it is `m ⊙ u'`.
    pub fn masked_metric(&self, u: ArrayView2<'_, f32>, mask: ArrayView2<'_, f32>) -> Array2<f32> {
        match &self.corr {
            Some(c) => Correlation::mix((&Correlation::mix(u, c.l_inv.view()) * &mask).view(), c.l.view()),
            None => &u * &mask,
        }
    }

    /// Whitened coordinates of perturbations δ (`n × d`): `u = L⁻¹ (δ / (s·σ))`, with 0/0
    /// (frozen, or σ = 0 on that event) taken as 0. With `mahalanobis = false` the correlation
    /// is ignored (the diagonal χ²).
    pub fn whiten(&self, sigma: ArrayView2<'_, f32>, delta: ArrayView2<'_, f32>, mahalanobis: bool) -> Array2<f32> {
        self.whiten_owned(sigma, delta.to_owned(), mahalanobis)
    }

    /// [`UncertaintyModel::whiten`] reusing the buffer of `z` (the perturbations).
    fn whiten_owned(&self, sigma: ArrayView2<'_, f32>, mut z: Array2<f32>, mahalanobis: bool) -> Array2<f32> {
        Zip::from(&mut z).and(&sigma).par_for_each(|d, &s| *d = if s > 0.0 { *d / s } else { 0.0 });
        match (&self.corr, mahalanobis) {
            (Some(c), true) => Correlation::mix(z.view(), c.l_inv.t()),
            _ => z,
        }
    }

    /// χ² of `perturbed` relative to `original` (σ evaluated at the original), its degrees of
    /// freedom and p-value. `mahalanobis = false` ignores correlations (diagonal form).
    pub fn chi2(
        &self,
        original: ArrayView2<'_, f32>,
        perturbed: ArrayView2<'_, f32>,
        mahalanobis: bool,
    ) -> Result<Chi2> {
        if original.dim() != perturbed.dim() || original.ncols() != self.names.len() {
            return Err(Error::Shape {
                op: "chi2",
                expected: format!("original and perturbed events with {} features each", self.names.len()),
                got: format!(
                    "{} × {} and {} × {}",
                    original.nrows(),
                    original.ncols(),
                    perturbed.nrows(),
                    perturbed.ncols()
                ),
            });
        }
        Ok(self.chi2_at(self.sigma(original).view(), original, perturbed, mahalanobis))
    }

    /// [`UncertaintyModel::chi2`] with σ at the original events already computed (shapes
    /// checked by the caller).
    pub(crate) fn chi2_at(
        &self,
        sigma: ArrayView2<'_, f32>,
        original: ArrayView2<'_, f32>,
        perturbed: ArrayView2<'_, f32>,
        mahalanobis: bool,
    ) -> Chi2 {
        let n = original.nrows();
        let dof = self.dofs(original);
        let mut tails = std::collections::BTreeMap::new();
        for &k in &dof {
            tails.entry(k).or_insert_with(|| Chi2Tail::new(k));
        }
        let mut chi2 = vec![0.0f64; n];
        let mut p_value = vec![0.0f64; n];
        chi2.par_chunks_mut(CHI2_CHUNK).zip(p_value.par_chunks_mut(CHI2_CHUNK)).enumerate().for_each(
            |(c, (chunk, p))| {
                let rows = s![c * CHI2_CHUNK..c * CHI2_CHUNK + chunk.len(), ..];
                let delta = &perturbed.slice(rows) - &original.slice(rows);
                let u = self.whiten_owned(sigma.slice(rows), delta, mahalanobis);
                let dofs = &dof[c * CHI2_CHUNK..c * CHI2_CHUNK + chunk.len()];
                for (((dst, p), r), k) in chunk.iter_mut().zip(p.iter_mut()).zip(u.rows()).zip(dofs) {
                    *dst = r.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
                    *p = tails.get(k).map_or(f64::NAN, |t| t.sf(*dst));
                }
            },
        );
        Chi2 { chi2, dof, p_value }
    }

    /// The dataset with every event varied by a Gaussian draw from the model (the "nominal ± σ"
    /// variations): `x + s·σ(x) ⊙ (L ξ)`, ξ ~ N(0, I), deterministic for `seed`.
    pub fn smear(&self, ds: &Dataset, seed: u64) -> Result<Dataset> {
        self.check_dataset("smear", ds)?;
        if let Some((name, _)) = self.objects.first() {
            return Err(Error::arg(
                "smear",
                format!(
                    "varies the dataset's event features only; this uncertainty model also has σ for object feature '{name}', which smear cannot vary yet"
                ),
            ));
        }
        let (n, d) = (ds.len(), ds.n_features());
        let mut xi = Array2::<f32>::zeros((n, d));
        xi.axis_chunks_iter_mut(Axis(0), SMEAR_CHUNK).into_par_iter().enumerate().for_each(|(c, mut chunk)| {
            let mut r = rng(substream(seed, c as u64));
            chunk.iter_mut().for_each(|v| *v = StandardNormal.sample(&mut r));
        });
        let sigma = self.sigma(ds.x());
        let delta = self.delta_from_whitened(sigma.view(), xi.view());
        ds.with_x(&ds.x() + &delta)
    }
}

/// Splits a covariance matrix over `names` into standard deviations √Σᵢᵢ and the correlation
/// Σᵢⱼ/(σᵢσⱼ) (clamped to [−1, 1]; 0 against features marked `skip`, whose variance may be 0).
/// The matrix must be square, symmetric, with variances > 0 on the other features.
pub fn split_covariance(names: &[String], cov: &Array2<f64>, skip: &[bool]) -> Result<(Vec<f64>, Array2<f64>)> {
    let d = names.len();
    if cov.dim() != (d, d) || skip.len() != d {
        return Err(Error::Shape {
            op: "uncertainty covariance",
            expected: format!("a {d} × {d} matrix (one row per feature)"),
            got: format!("{} × {}", cov.nrows(), cov.ncols()),
        });
    }
    for i in 0..d {
        let v = cov[[i, i]];
        let positive = v.is_finite() && v > 0.0;
        if !(skip[i] || positive) {
            return Err(Error::BadArgument {
                func: "uncertainty".into(),
                problem: format!("variance of feature '{}' must be > 0, got {v}", names[i]),
            });
        }
        for j in 0..i {
            if (cov[[i, j]] - cov[[j, i]]).abs() > 1e-9 * (1.0 + cov[[i, j]].abs()) {
                return Err(Error::BadArgument {
                    func: "uncertainty".into(),
                    problem: format!(
                        "covariance must be symmetric: entries ('{}', '{}') differ ({} vs {})",
                        names[i],
                        names[j],
                        cov[[i, j]],
                        cov[[j, i]]
                    ),
                });
            }
        }
    }
    let sd: Vec<f64> = (0..d).map(|i| if skip[i] { 0.0 } else { cov[[i, i]].sqrt() }).collect();
    let rho = Array2::from_shape_fn((d, d), |(i, j)| {
        if i == j {
            1.0
        } else if sd[i] > 0.0 && sd[j] > 0.0 {
            (cov[[i, j]] / (sd[i] * sd[j])).clamp(-1.0, 1.0)
        } else {
            0.0
        }
    });
    Ok((sd, rho))
}

/// The toy collider's documented uncertainties (`data::synthetic::collider_uncertainties`) for
/// the features `names`, which must all be collider features.
pub fn collider_model(names: &[String]) -> Result<UncertaintyModel> {
    let table = crate::data::synthetic::collider_uncertainties();
    let specs = names
        .iter()
        .map(|n| {
            let u = table.iter().find(|u| &u.name == n).ok_or_else(|| Error::BadArgument {
                func: "uncertainty".into(),
                problem: format!(
                    "the collider preset has no uncertainty for feature '{n}'; it knows: {}",
                    table.iter().map(|u| u.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            })?;
            Ok(if u.frozen {
                FeatureSigma::frozen()
            } else {
                FeatureSigma { absolute: u.absolute as f32, relative: u.relative as f32, floor: 0.0, frozen: false }
            })
        })
        .collect::<Result<Vec<_>>>()?;
    UncertaintyModel::new(names.to_vec(), specs)
}

/// Standard deviation of every column of `ds` (for σ given as a fraction of a feature's spread).
pub fn column_std(ds: &Dataset) -> Vec<f32> {
    let x = ds.x();
    x.axis_iter(Axis(1)).map(|c| c.mapv(f64::from).std(0.0) as f32).collect()
}

/// `1 − CDF_χ²(c; dof)` for every value (1 when dof = 0; NaN for a NaN χ²).
pub fn p_values(chi2: &[f64], dof: usize) -> Vec<f64> {
    let tail = Chi2Tail::new(dof);
    chi2.par_iter().map(|&c| tail.sf(c)).collect()
}

fn check_spec(name: &str, s: &FeatureSigma) -> Result<()> {
    let bad = |what: &str, v: f32| Error::BadArgument {
        func: "uncertainty".into(),
        problem: format!("{what} σ of feature '{name}' must be a finite number ≥ 0, got {v}"),
    };
    for (what, v) in [("absolute", s.absolute), ("relative", s.relative), ("floor", s.floor)] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(bad(what, v));
        }
    }
    if !s.frozen && s.absolute == 0.0 && s.relative == 0.0 {
        return Err(Error::BadArgument {
            func: "uncertainty".into(),
            problem: format!(
                "feature '{name}' has σ = 0 (no absolute or relative uncertainty); give it one > 0 or mark it frozen"
            ),
        });
    }
    Ok(())
}

/// Cholesky factor of a symmetric matrix, naming the feature whose pivot fails.
fn cholesky(a: &Array2<f64>, names: &[String]) -> Result<Array2<f64>> {
    let d = a.nrows();
    let mut l = Array2::<f64>::zeros((d, d));
    for j in 0..d {
        let mut diag = a[[j, j]];
        for k in 0..j {
            diag -= l[[j, k]] * l[[j, k]];
        }
        if diag <= 1e-10 {
            return Err(Error::NotPositiveDefinite {
                op: "uncertainty correlation",
                detail: format!(
                    "feature '{}' is (almost) a linear combination of the features before it (pivot {diag:.3e}); \
                     lower correlations of ±1 to e.g. 0.999, or drop one of the features",
                    names[j]
                ),
            });
        }
        let ljj = diag.sqrt();
        l[[j, j]] = ljj;
        for i in j + 1..d {
            let mut v = a[[i, j]];
            for k in 0..j {
                v -= l[[i, k]] * l[[j, k]];
            }
            l[[i, j]] = v / ljj;
        }
    }
    Ok(l)
}

/// Inverse of a lower-triangular matrix with a positive diagonal.
fn lower_inverse(l: &Array2<f64>) -> Array2<f64> {
    let d = l.nrows();
    let mut inv = Array2::<f64>::zeros((d, d));
    for c in 0..d {
        // Solve L x = e_c by forward substitution.
        for i in c..d {
            let mut v = if i == c { 1.0 } else { 0.0 };
            for k in c..i {
                v -= l[[i, k]] * inv[[k, c]];
            }
            inv[[i, c]] = v / l[[i, i]];
        }
    }
    inv
}

#[path = "uncertainty_sets.rs"]
mod sets;

#[cfg(test)]
#[path = "uncertainty_tests.rs"]
mod tests;
