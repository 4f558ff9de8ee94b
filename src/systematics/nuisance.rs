//! Nuisance parameters: a name, a prior and the effects one θ has on a dataset.
//!
//! Every effect reads its inputs (σ expressions, binned tables, up/down columns) from the
//! **nominal** dataset and acts on the current value `x` of its targets, in declaration order:
//!
//! | effect | `x(θ)` | `dx/dθ` |
//! | --- | --- | --- |
//! | [`Effect::Scale`] relative | `x·(1 + θ·σ)` | `x·σ` |
//! | [`Effect::Scale`] absolute | `x + θ·σ` | `σ` |
//! | [`Effect::Smear`] | `x + θ·z·σ` (`σ·x⁰` when relative), `z ~ N(0, 1)` per event or object, seeded | `z·σ` |
//! | [`Effect::Alternative`] | code 0/2: `x + (I(θ) − x⁰)`; code 1/4: `x·I(θ)/x⁰` | from the code |
//! | [`Effect::Weight`] | the event weight, as an alternative on the weight | from the code |
//! | [`Effect::Norm`] | weight × `(1 + σ)^θ` (log-normal prior) or `(1 + θ·σ)` (Gaussian) | |
//!
//! Additive effects of several nuisances on one target add up, multiplicative ones multiply.
//! The prior is N(0, 1) on θ in both cases: a log-normal prior means the factor `(1 + σ)^θ` is
//! log-normal. The penalty of a θ vector is `Σθ²` (the χ² budget of an attack in θ space).

use super::interp::Code;
use crate::data::expr::Expr;
use crate::error::{Error, Result};

/// The prior of a nuisance parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prior {
    /// θ ~ N(0, 1); normalisations act as `1 + θ·σ`.
    Gaussian,
    /// θ ~ N(0, 1) in the exponent: normalisations act as `(1 + σ)^θ`, a log-normal factor.
    LogNormal,
}

impl Prior {
    /// The prior's name in scripts and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Prior::Gaussian => "gaussian",
            Prior::LogNormal => "lognormal",
        }
    }

    /// The prior for its name.
    pub fn from_name(s: &str) -> Result<Prior> {
        match s {
            "gaussian" => Ok(Prior::Gaussian),
            "lognormal" => Ok(Prior::LogNormal),
            _ => Err(Error::arg("systematics", format!("prior must be gaussian or lognormal, got '{s}'"))),
        }
    }
}

/// A column a variation acts on: an event feature (`met`) or an object feature of a
/// collection (`jets.pt`, every object of every event).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// An event feature.
    Column(String),
    /// An object feature of a collection.
    Object { coll: String, feature: String },
}

impl Target {
    /// `jets.pt` → an object feature, `met` → an event feature.
    pub fn parse(s: &str) -> Result<Target> {
        match s.split_once('.') {
            Some((c, f)) if !c.is_empty() && !f.is_empty() && !f.contains('.') => {
                Ok(Target::Object { coll: c.to_string(), feature: f.to_string() })
            }
            Some(_) => Err(Error::arg("systematics", format!("'{s}' is neither a column nor 'collection.feature'"))),
            None if s.is_empty() => Err(Error::arg("systematics", "an empty column name")),
            None => Ok(Target::Column(s.to_string())),
        }
    }

    /// The name as written (`jets.pt`, `met`).
    pub fn name(&self) -> String {
        match self {
            Target::Column(c) => c.clone(),
            Target::Object { coll, feature } => format!("{coll}.{feature}"),
        }
    }
}

/// A σ: a constant, an expression of the target's row (`0.02 + 0.01*abs(eta)`; for an object
/// target, over the object's features and its event's columns) or a binned table.
#[derive(Clone, Debug, PartialEq)]
pub enum Sigma {
    /// The same σ everywhere.
    Const(f64),
    /// σ per row from an expression.
    Expr(Expr),
    /// σ per row looked up in a table.
    Binned(Binned),
}

/// A σ table binned in one or two variables (expressions, e.g. `pt` and `abs(eta)`); values
/// outside the edges take the first or last bin.
#[derive(Clone, Debug, PartialEq)]
pub struct Binned {
    /// The variables, one or two.
    pub vars: Vec<Expr>,
    /// The bin edges of each variable (increasing, at least two).
    pub edges: Vec<Vec<f64>>,
    /// The σ of each bin, row-major (first variable slowest).
    pub values: Vec<f64>,
}

impl Binned {
    /// Checks the shape: one or two variables, increasing edges, one value ≥ 0 per bin.
    pub fn new(vars: Vec<Expr>, edges: Vec<Vec<f64>>, values: Vec<f64>) -> Result<Binned> {
        let op = "systematics";
        if vars.is_empty() || vars.len() > 2 || vars.len() != edges.len() {
            return Err(Error::arg(
                op,
                format!(
                    "a binned σ needs one or two variables, each with its edges; got {} variables and {} edge lists",
                    vars.len(),
                    edges.len()
                ),
            ));
        }
        for (v, e) in vars.iter().zip(&edges) {
            if e.len() < 2 || e.windows(2).any(|w| w[1] <= w[0]) || e.iter().any(|x| !x.is_finite()) {
                return Err(Error::arg(
                    op,
                    format!("the edges of '{v}' must be at least two finite, increasing numbers, got {e:?}"),
                ));
            }
        }
        let bins: usize = edges.iter().map(|e| e.len() - 1).product();
        if values.len() != bins {
            return Err(Error::arg(
                op,
                format!("a binned σ with {bins} bins needs {bins} values, got {}", values.len()),
            ));
        }
        if let Some(v) = values.iter().find(|v| !(**v > 0.0 && v.is_finite())) {
            return Err(Error::arg(op, format!("σ must be > 0, got {v} in a binned table")));
        }
        Ok(Binned { vars, edges, values })
    }

    /// The σ for the variables' values `u` (one per variable).
    pub fn lookup(&self, u: &[f64]) -> f64 {
        let mut idx = 0;
        for (e, &x) in self.edges.iter().zip(u) {
            let nb = e.len() - 1;
            let b = e[1..nb].partition_point(|edge| *edge <= x);
            idx = idx * nb + b;
        }
        self.values[idx]
    }
}

/// One effect of a nuisance parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// A coherent relative scale or absolute shift of every target.
    Scale { targets: Vec<Target>, sigma: Sigma, relative: bool },
    /// Resolution smearing: a fixed N(0, 1) draw per event (per object for object targets),
    /// from `seed`, times θ·σ.
    Smear { targets: Vec<Target>, sigma: Sigma, relative: bool, seed: u64 },
    /// ±1σ alternative columns, interpolated with `code`.
    Alternative { nominal: Vec<Target>, up: Vec<Target>, down: Vec<Target>, code: Code },
    /// Up/down event-weight columns, interpolated with `code`; without `down` the variation
    /// is symmetrised (`w⁻ = w⁰²/w⁺` for multiplicative codes, `2w⁰ − w⁺` for additive ones).
    Weight { up: String, down: Option<String>, code: Code },
    /// A normalisation: the weight times `1 + θ·size` (Gaussian prior) or `(1 + size)^θ`
    /// (log-normal prior).
    Norm { size: f64 },
}

impl Effect {
    /// The kind's name in scripts and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Effect::Scale { .. } => "scale",
            Effect::Smear { .. } => "smear",
            Effect::Alternative { .. } => "alternative",
            Effect::Weight { .. } => "weight",
            Effect::Norm { .. } => "norm",
        }
    }
}

/// A named nuisance parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct Nuisance {
    /// Its name (unique in a model).
    pub name: String,
    /// Its prior.
    pub prior: Prior,
    /// What θ does, in order.
    pub effects: Vec<Effect>,
}

impl Nuisance {
    /// Checks the definition: a name, at least one effect, constant σ and sizes > 0, as many
    /// up and down columns as nominal ones.
    pub fn new(name: &str, prior: Prior, effects: Vec<Effect>) -> Result<Nuisance> {
        let op = "systematics";
        if name.is_empty() {
            return Err(Error::arg(op, "a nuisance parameter needs a non-empty name"));
        }
        if effects.is_empty() {
            return Err(Error::arg(op, format!("nuisance '{name}' has no effect")));
        }
        for e in &effects {
            match e {
                Effect::Scale { targets, sigma, .. } | Effect::Smear { targets, sigma, .. } => {
                    if targets.is_empty() {
                        return Err(Error::arg(op, format!("nuisance '{name}': {} acts on no column", e.kind())));
                    }
                    if let Sigma::Const(s) = sigma {
                        if !(*s > 0.0 && s.is_finite()) {
                            return Err(Error::arg(op, format!("nuisance '{name}': σ must be > 0, got {s}")));
                        }
                    }
                }
                Effect::Alternative { nominal, up, down, .. } => {
                    if nominal.is_empty() || up.len() != nominal.len() || down.len() != nominal.len() {
                        return Err(Error::arg(
                            op,
                            format!(
                                "nuisance '{name}': an alternative needs one up and one down column per nominal column, got {} nominal, {} up, {} down",
                                nominal.len(),
                                up.len(),
                                down.len()
                            ),
                        ));
                    }
                }
                Effect::Weight { .. } => {}
                Effect::Norm { size } => {
                    if !(*size > 0.0 && size.is_finite()) {
                        return Err(Error::arg(
                            op,
                            format!("nuisance '{name}': a normalisation size must be > 0, got {size}"),
                        ));
                    }
                }
            }
        }
        Ok(Nuisance { name: name.to_string(), prior, effects })
    }
}

/// A derived feature: `name` (an event column, or `coll.feature` for an object feature)
/// recomputed from `expr` after every variation.
#[derive(Clone, Debug, PartialEq)]
pub struct Derived {
    /// What is computed.
    pub target: Target,
    /// From what.
    pub expr: Expr,
}

/// A systematics model: the nuisance parameters and the derived features.
#[derive(Clone, Debug, PartialEq)]
pub struct Systematics {
    nuisances: Vec<Nuisance>,
    derived: Vec<Derived>,
    /// `derived` indices in evaluation order (dependencies first).
    order: Vec<usize>,
}

impl Systematics {
    /// Builds a model; names must be unique and the derived features free of cycles.
    pub fn new(nuisances: Vec<Nuisance>, derived: Vec<Derived>) -> Result<Systematics> {
        let op = "systematics";
        for (i, n) in nuisances.iter().enumerate() {
            if nuisances[..i].iter().any(|m| m.name == n.name) {
                return Err(Error::arg(op, format!("nuisance '{}' is defined twice", n.name)));
            }
        }
        for (i, d) in derived.iter().enumerate() {
            if derived[..i].iter().any(|e| e.target == d.target) {
                return Err(Error::arg(op, format!("derived feature '{}' is defined twice", d.target.name())));
            }
        }
        let order = super::vary::derived_order(&derived)?;
        Ok(Systematics { nuisances, derived, order })
    }

    /// The nuisance parameters, in order.
    pub fn nuisances(&self) -> &[Nuisance] {
        &self.nuisances
    }

    /// The derived features, as declared.
    pub fn derived(&self) -> &[Derived] {
        &self.derived
    }

    /// The derived features in evaluation order.
    pub fn derived_in_order(&self) -> impl Iterator<Item = &Derived> {
        self.order.iter().map(|&i| &self.derived[i])
    }

    /// The index of nuisance `name`; an unknown name is an error with the nearest.
    pub fn index_of(&self, name: &str) -> Result<usize> {
        self.nuisances.iter().position(|n| n.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.nuisances.iter().map(|n| n.name.as_str()).collect();
            let hint = crate::error::nearest(name, names.iter().copied())
                .map_or(String::new(), |n| format!(" (did you mean '{n}'?)"));
            Error::arg(
                "systematics",
                format!("no nuisance parameter '{name}'{hint}; the model has: {}", names.join(", ")),
            )
        })
    }

    /// A θ vector (in nuisance order) from `(name, value)` pairs; the others are 0.
    pub fn theta(&self, values: &[(String, f64)]) -> Result<Vec<f64>> {
        let mut t = vec![0.0; self.nuisances.len()];
        for (name, v) in values {
            if !v.is_finite() {
                return Err(Error::arg("systematics", format!("θ of '{name}' must be finite, got {v}")));
            }
            t[self.index_of(name)?] = *v;
        }
        Ok(t)
    }

    /// The per-feature uncertainty model as nuisances: one absolute shift per non-frozen
    /// feature, `x → x + θ·s·max(√(a² + (r·x⁰)²), floor)`, one θ per feature shared by all
    /// events. Correlations are not carried over (an error for a correlated model).
    pub fn from_uncertainty(u: &crate::attack::UncertaintyModel) -> Result<Systematics> {
        if u.is_correlated() {
            return Err(Error::arg(
                "systematics",
                "a correlated uncertainty model has no independent nuisance per feature; build the nuisances by hand",
            ));
        }
        let mut out = Vec::new();
        for (name, f) in u.names().iter().zip(u.specs()) {
            if f.frozen || (f.absolute == 0.0 && f.relative == 0.0 && f.floor == 0.0) {
                continue;
            }
            let (a, r, fl, s) = (f64::from(f.absolute), f64::from(f.relative), f64::from(f.floor), u.scale());
            let sigma = Sigma::Expr(Expr::parse(&format!(
                "{s} * max(sqrt({a} * {a} + ({r} * `{name}`) * ({r} * `{name}`)), {fl})"
            ))?);
            let effect = Effect::Scale { targets: vec![Target::Column(name.clone())], sigma, relative: false };
            out.push(Nuisance::new(name, Prior::Gaussian, vec![effect])?);
        }
        Systematics::new(out, Vec::new())
    }

    /// The prior penalty `Σθ²` (χ² of θ under the N(0, 1) priors).
    pub fn penalty(theta: &[f64]) -> f64 {
        theta.iter().map(|t| t * t).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binned_lookup_clamps_and_indexes_row_major() {
        let e = |s: &str| Expr::parse(s).unwrap();
        let b = Binned::new(
            vec![e("pt"), e("abs(eta)")],
            vec![vec![0.0, 50.0, 100.0], vec![0.0, 1.5, 2.5]],
            vec![0.1, 0.2, 0.3, 0.4],
        )
        .unwrap();
        // (pt, |η|) = (20, 1) → bin (0, 0); (70, 2) → (1, 1); (500, −1) clamps to (1, 0)
        assert_eq!(b.lookup(&[20.0, 1.0]), 0.1);
        assert_eq!(b.lookup(&[70.0, 2.0]), 0.4);
        assert_eq!(b.lookup(&[500.0, -1.0]), 0.3);
        assert_eq!(b.lookup(&[50.0, 1.5]), 0.4); // a value on an edge belongs to the bin above
        let err = Binned::new(vec![e("pt")], vec![vec![0.0, 10.0]], vec![0.0]).unwrap_err().to_string();
        assert!(err.contains("σ must be > 0, got 0"), "{err}");
        let err = Binned::new(vec![e("pt")], vec![vec![0.0, 10.0, 5.0]], vec![0.1, 0.1]).unwrap_err().to_string();
        assert!(err.contains("increasing"), "{err}");
    }

    #[test]
    fn bad_definitions_are_clear_errors() {
        let t = |s: &str| Target::parse(s).unwrap();
        let scale = |s: f64| Effect::Scale { targets: vec![t("pt")], sigma: Sigma::Const(s), relative: true };
        let e = Nuisance::new("JES", Prior::Gaussian, vec![scale(0.0)]).unwrap_err().to_string();
        assert_eq!(e, "systematics: nuisance 'JES': σ must be > 0, got 0");
        let e = Nuisance::new("JES", Prior::Gaussian, vec![scale(-0.1)]).unwrap_err().to_string();
        assert!(e.contains("σ must be > 0, got -0.1"));
        let alt =
            Effect::Alternative { nominal: vec![t("pt")], up: vec![t("pt_up")], down: vec![], code: Code::Linear };
        let e = Nuisance::new("JES", Prior::Gaussian, vec![alt]).unwrap_err().to_string();
        assert!(e.contains("one up and one down column per nominal column, got 1 nominal, 1 up, 0 down"), "{e}");
        let n = Nuisance::new("JES", Prior::Gaussian, vec![scale(0.1)]).unwrap();
        let e = Systematics::new(vec![n.clone(), n.clone()], vec![]).unwrap_err().to_string();
        assert!(e.contains("nuisance 'JES' is defined twice"));
        let s = Systematics::new(vec![n], vec![]).unwrap();
        let e = s.theta(&[("JER".into(), 1.0)]).unwrap_err().to_string();
        assert!(e.contains("no nuisance parameter 'JER' (did you mean 'JES'?)"), "{e}");
        assert!(Target::parse("a.b.c").is_err());
        assert_eq!(Systematics::penalty(&[1.0, -2.0]), 5.0);
    }
}
