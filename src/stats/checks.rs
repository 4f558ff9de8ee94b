//! Population-level checks of a candidate sample (adversarial, corrected, varied) against a
//! reference, as one primitive: per feature the event-weighted two-sample KS test, the χ² and
//! the Jensen–Shannon distance of binned histograms (flow bins included), the change of the
//! correlation matrix, and optionally a classifier two-sample test — over all events and inside
//! control regions given by cut expressions — with a pass/fail verdict against thresholds.
//!
//! Pass rules (`shared/guide/methods.md` §2 for the defaults): JSD `< jsd` (0.06), relative
//! correlation change `< corr` (0.006), KS and χ² p-values `≥ ks_p`, `≥ chi2_p`, C2ST AUC `≤
//! c2st_auc`; a threshold that is not set is not applied.

use std::fmt;

use ndarray::Array2;
use rayon::prelude::*;

use super::binned::{chi2, Binning, Chi2, FlowHist};
use super::c2st::{c2st, C2st, C2stConfig};
use super::ks::{ks_2samp, KsResult};
use crate::data::expr::Expr;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::optim::Control;

/// Most in-range bins a histogram may have.
pub const MAX_BINS: usize = 1_000_000;

/// Thresholds of the verdict; `None` leaves a test out of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    /// Largest JSD (strict), default 0.06.
    pub jsd: Option<f64>,
    /// Largest relative Frobenius change of the correlation matrix (strict), default 0.006.
    pub corr: Option<f64>,
    /// Smallest KS p-value.
    pub ks_p: Option<f64>,
    /// Smallest χ² p-value.
    pub chi2_p: Option<f64>,
    /// Largest C2ST AUC.
    pub c2st_auc: Option<f64>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { jsd: Some(0.06), corr: Some(0.006), ks_p: None, chi2_p: None, c2st_auc: None }
    }
}

/// What to check.
#[derive(Clone, Debug, PartialEq)]
pub struct ChecksConfig {
    /// Features to compare (default: all of the reference).
    pub features: Option<Vec<String>>,
    /// In-range bins of the χ² and JSD histograms (plus two flow bins).
    pub bins: usize,
    /// Control regions `(name, cut expression)`, checked in addition to all events.
    pub regions: Vec<(String, String)>,
    /// Pass/fail thresholds.
    pub thresholds: Thresholds,
    /// Run the classifier two-sample test with this configuration.
    pub c2st: Option<C2stConfig>,
    /// Use the event weights of the samples (when they have them).
    pub weighted: bool,
}

impl Default for ChecksConfig {
    /// All features, 100 bins, no regions, default thresholds, no C2ST, weighted.
    fn default() -> Self {
        ChecksConfig {
            features: None,
            bins: 100,
            regions: Vec::new(),
            thresholds: Thresholds::default(),
            c2st: None,
            weighted: true,
        }
    }
}

/// The comparison of one feature in one region.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureCheck {
    /// Region name (`all` for every event).
    pub region: String,
    /// Feature name.
    pub feature: String,
    /// Weighted two-sample KS test.
    pub ks: KsResult,
    /// χ² of the binned histograms.
    pub chi2: Chi2,
    /// Jensen–Shannon distance (base 2) with flow bins.
    pub jsd: f64,
    /// Verdict of this row (every applied threshold).
    pub passed: bool,
}

/// Correlation-matrix change in one region.
#[derive(Clone, Debug, PartialEq)]
pub struct CorrelationCheck {
    /// Region name.
    pub region: String,
    /// `‖C_cand − C_ref‖_F / ‖C_ref‖_F` over entries finite in both.
    pub relative_frobenius: f64,
    /// `max |C_cand − C_ref|` over entries finite in both.
    pub max_abs_delta: f64,
    /// Verdict (true when the threshold is not applied).
    pub passed: bool,
}

/// One region of a check: event counts and the C2ST.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionCheck {
    /// Region name.
    pub name: String,
    /// Cut expression (empty for `all`).
    pub cut: String,
    /// Reference events in the region.
    pub n_reference: usize,
    /// Candidate events in the region.
    pub n_candidate: usize,
    /// The classifier two-sample test, if run.
    pub c2st: Option<C2st>,
    /// Verdict of the C2ST (true when not run or not applied).
    pub c2st_passed: bool,
}

/// Everything [`checks`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckReport {
    /// One row per (region, feature), regions in order.
    pub features: Vec<FeatureCheck>,
    /// One row per region.
    pub correlation: Vec<CorrelationCheck>,
    /// One entry per region.
    pub regions: Vec<RegionCheck>,
    /// Thresholds applied.
    pub thresholds: Thresholds,
    /// Every row and region passed.
    pub passed: bool,
}

impl CheckReport {
    /// Largest JSD over all rows (NaN without rows).
    pub fn max_jsd(&self) -> f64 {
        self.features.iter().map(|f| f.jsd).fold(f64::NAN, f64::max)
    }
}

impl CheckReport {
    /// Every failed test, one line each: `region/feature: JSD 0.081 ≥ 0.06`, `region:
    /// correlation change 0.012 ≥ 0.006`, `region: C2ST AUC 0.71 > 0.6` (empty when passed).
    pub fn failures(&self) -> Vec<String> {
        let th = &self.thresholds;
        let mut out = Vec::new();
        for f in &self.features {
            let at = format!("{}/{}", f.region, f.feature);
            if let Some(t) = th.jsd.filter(|t| !below(f.jsd, *t)) {
                out.push(format!("{at}: JSD {:.4} ≥ {t}", f.jsd));
            }
            if let Some(t) = th.ks_p.filter(|t| below(f.ks.p_value, *t) || f.ks.p_value.is_nan()) {
                out.push(format!("{at}: KS p {:.3e} < {t}", f.ks.p_value));
            }
            if let Some(t) = th.chi2_p.filter(|t| below(f.chi2.p_value, *t) || f.chi2.p_value.is_nan()) {
                out.push(format!("{at}: χ² p {:.3e} < {t}", f.chi2.p_value));
            }
        }
        for c in self.correlation.iter().filter(|c| !c.passed) {
            let t = th.corr.unwrap_or(f64::NAN);
            out.push(format!("{}: correlation change {:.4} ≥ {t}", c.region, c.relative_frobenius));
        }
        for g in self.regions.iter().filter(|g| !g.c2st_passed) {
            let (auc, t) = (g.c2st.map_or(f64::NAN, |c| c.auc), th.c2st_auc.unwrap_or(f64::NAN));
            out.push(format!("{}: C2ST AUC {auc:.4} > {t}", g.name));
        }
        out
    }
}

/// `v < t` (false for NaN).
fn below(v: f64, t: f64) -> bool {
    v < t
}

/// Relative Frobenius change and max |Δ| of two correlation matrices (entries finite in both).
pub fn correlation_change(c0: &Array2<f64>, c1: &Array2<f64>) -> (f64, f64) {
    let (mut num, mut den, mut mx) = (0.0, 0.0, 0.0f64);
    for (a, b) in c0.iter().zip(c1) {
        if a.is_finite() && b.is_finite() {
            num += (b - a) * (b - a);
            den += a * a;
            mx = mx.max((b - a).abs());
        }
    }
    (if den > 0.0 { (num / den).sqrt() } else { f64::NAN }, mx)
}

/// The features to compare, checked to exist in both samples.
fn feature_list(reference: &Dataset, candidate: &Dataset, cfg: &ChecksConfig) -> Result<Vec<String>> {
    let features = cfg.features.clone().unwrap_or_else(|| reference.names().to_vec());
    if features.is_empty() {
        return Err(Error::Empty { op: "checks", what: "the list of features".into() });
    }
    for f in &features {
        reference.index_of("checks", f)?;
    }
    let missing: Vec<String> =
        features.iter().filter(|f| !candidate.names().contains(f)).map(|f| format!("'{f}'")).collect();
    if !missing.is_empty() {
        return Err(Error::arg(
            "checks",
            format!(
                "the candidate has no feature {} of the reference (candidate features: {})",
                missing.join(", "),
                candidate.names().join(", ")
            ),
        ));
    }
    Ok(features)
}

/// Rows of `ds` inside the cut (all rows for an empty cut), as a dataset of `features`.
fn region(ds: &Dataset, features: &[String], name: &str, cut: &str, which: &str) -> Result<Dataset> {
    let sel = if cut.is_empty() {
        ds.clone()
    } else {
        let mask = Expr::parse(cut)?.eval_mask(ds)?;
        if !mask.contains(&true) {
            return Err(Error::Empty { op: "checks", what: format!("region '{name}' ('{cut}') of the {which}") });
        }
        ds.filter_mask(&mask)?
    };
    if sel.is_empty() {
        return Err(Error::Empty { op: "checks", what: format!("the {which} sample") });
    }
    sel.select(features)
}

/// Compares `candidate` with `reference` (see the module documentation).
pub fn checks(reference: &Dataset, candidate: &Dataset, cfg: &ChecksConfig, control: &Control) -> Result<CheckReport> {
    let features = feature_list(reference, candidate, cfg)?;
    if cfg.bins == 0 || cfg.bins > MAX_BINS {
        return Err(Error::arg("checks", format!("bins must be between 1 and {MAX_BINS}, got {}", cfg.bins)));
    }
    if cfg.regions.iter().any(|(n, _)| n == "all") {
        return Err(Error::arg("checks", "the region name 'all' is reserved for all events"));
    }
    let mut all_regions = vec![("all".to_string(), String::new())];
    all_regions.extend(cfg.regions.iter().cloned());
    let th = &cfg.thresholds;
    let mut report =
        CheckReport { features: vec![], correlation: vec![], regions: vec![], thresholds: th.clone(), passed: true };
    for (name, cut) in &all_regions {
        control.check()?;
        let r = region(reference, &features, name, cut, "reference")?;
        let c = region(candidate, &features, name, cut, "candidate")?;
        r.check_finite("checks")?;
        c.check_finite("checks")?;
        let (wr, wc) = if cfg.weighted { (r.weight(), c.weight()) } else { (None, None) };
        let rows: Vec<FeatureCheck> = (0..features.len())
            .into_par_iter()
            .map(|j| -> Result<FeatureCheck> {
                let (a, b) = (r.x().column(j).to_vec(), c.x().column(j).to_vec());
                let ks = ks_2samp(&a, wr, &b, wc)?;
                let binning = Binning::of_reference(&a, cfg.bins)?;
                let (ha, hb) = (FlowHist::fill(&binning, &a, wr), FlowHist::fill(&binning, &b, wc));
                let x2 = chi2(&ha, &hb);
                let jsd = ha.jsd(&hb);
                let passed = th.jsd.is_none_or(|t| jsd < t)
                    && th.ks_p.is_none_or(|t| ks.p_value >= t)
                    && th.chi2_p.is_none_or(|t| x2.p_value >= t);
                Ok(FeatureCheck { region: name.clone(), feature: features[j].clone(), ks, chi2: x2, jsd, passed })
            })
            .collect::<Result<_>>()?;
        let (rel, mx) = correlation_change(&r.correlation(cfg.weighted), &c.correlation(cfg.weighted));
        let corr_passed = th.corr.is_none_or(|t| rel < t || (rel.is_nan() && features.len() < 2));
        let c2 = match &cfg.c2st {
            Some(c2cfg) => Some(c2st(r.x(), wr, c.x(), wc, c2cfg, control)?),
            None => None,
        };
        let c2st_passed = match (&c2, th.c2st_auc) {
            (Some(c2), Some(t)) => c2.auc <= t,
            _ => true,
        };
        report.passed &= rows.iter().all(|f| f.passed) && corr_passed && c2st_passed;
        report.features.extend(rows);
        report.correlation.push(CorrelationCheck {
            region: name.clone(),
            relative_frobenius: rel,
            max_abs_delta: mx,
            passed: corr_passed,
        });
        report.regions.push(RegionCheck {
            name: name.clone(),
            cut: cut.clone(),
            n_reference: r.len(),
            n_candidate: c.len(),
            c2st: c2,
            c2st_passed,
        });
    }
    Ok(report)
}

fn verdict(p: bool) -> &'static str {
    if p {
        "pass"
    } else {
        "FAIL"
    }
}

fn limit(t: Option<f64>, op: &str) -> String {
    t.map_or("not applied".into(), |t| format!("{op} {t}"))
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let th = &self.thresholds;
        writeln!(f, "checks: {}", if self.passed { "PASSED" } else { "FAILED" })?;
        writeln!(
            f,
            "thresholds: jsd {}, corr {}, ks_p {}, chi2_p {}, c2st_auc {}",
            limit(th.jsd, "<"),
            limit(th.corr, "<"),
            limit(th.ks_p, ">="),
            limit(th.chi2_p, ">="),
            limit(th.c2st_auc, "<="),
        )?;
        let rw = self.features.iter().map(|r| r.region.chars().count()).max().unwrap_or(6).max(6);
        let fw = self.features.iter().map(|r| r.feature.chars().count()).max().unwrap_or(7).max(7);
        writeln!(
            f,
            "{:<rw$}  {:<fw$}  {:>8}  {:>9}  {:>12}  {:>9}  {:>8}  verdict",
            "region", "feature", "KS D", "KS p", "chi2/ndf", "chi2 p", "JSD"
        )?;
        for r in &self.features {
            writeln!(
                f,
                "{:<rw$}  {:<fw$}  {:>8.4}  {:>9.3e}  {:>12}  {:>9.3e}  {:>8.5}  {}",
                r.region,
                r.feature,
                r.ks.statistic,
                r.ks.p_value,
                format!("{:.1}/{}", r.chi2.chi2, r.chi2.ndf),
                r.chi2.p_value,
                r.jsd,
                verdict(r.passed)
            )?;
        }
        writeln!(
            f,
            "{:<rw$}  {:>8}  {:>8}  {:>9}  {:>8}  {:>9}  verdict",
            "region", "n_ref", "n_cand", "corr rel", "max|dρ|", "C2ST AUC"
        )?;
        for (c, g) in self.correlation.iter().zip(&self.regions) {
            let auc = g.c2st.map_or("-".to_string(), |a| format!("{:.4}", a.auc));
            writeln!(
                f,
                "{:<rw$}  {:>8}  {:>8}  {:>9.5}  {:>8.5}  {:>9}  {}",
                c.region,
                g.n_reference,
                g.n_candidate,
                c.relative_frobenius,
                c.max_abs_delta,
                auc,
                verdict(c.passed && g.c2st_passed)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Rows (a, b, region flag): in the reference b = a; the candidate keeps region r = 1 and
    /// reverses b where r = 0.
    fn pair() -> (Dataset, Dataset) {
        let names = vec!["a".to_string(), "b".to_string(), "r".to_string()];
        let n = 40;
        let x0 = ndarray::Array2::from_shape_fn((n, 3), |(i, j)| match j {
            0 | 1 => (i % 20) as f32,
            _ => (i / 20) as f32,
        });
        let mut x1 = x0.clone();
        for i in 0..20 {
            x1[[i, 1]] = 19.0 - x0[[i, 1]];
        }
        (Dataset::new(names.clone(), x0, None, None).unwrap(), Dataset::new(names, x1, None, None).unwrap())
    }

    #[test]
    fn control_regions_select_the_right_events() {
        let (r, c) = pair();
        let cfg = ChecksConfig {
            features: Some(vec!["a".into(), "b".into()]),
            bins: 5,
            regions: vec![("same".into(), "r > 0.5".into()), ("flipped".into(), "r < 0.5".into())],
            thresholds: Thresholds { jsd: Some(0.06), corr: Some(0.006), ..Thresholds::default() },
            ..ChecksConfig::default()
        };
        let rep = checks(&r, &c, &cfg, &Control::quiet()).unwrap();
        let names: Vec<&str> = rep.regions.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["all", "same", "flipped"]);
        assert_eq!(
            rep.regions.iter().map(|g| (g.n_reference, g.n_candidate)).collect::<Vec<_>>(),
            [(40, 40), (20, 20), (20, 20)]
        );
        // Marginals are identical everywhere (b is a permutation of 0..19 in each region).
        assert!(rep.features.iter().all(|f| f.jsd == 0.0 && f.ks.statistic == 0.0), "{rep}");
        // In "same" nothing changed; in "flipped" ρ(a, b) goes from +1 to −1: ΔC has two entries
        // of 2, ‖ΔC‖ = √8, ‖C‖ = √4 → √2, max |Δρ| = 2.
        let corr = |name: &str| rep.correlation.iter().find(|c| c.region == name).unwrap();
        assert_eq!(corr("same").relative_frobenius, 0.0);
        assert!(corr("same").passed);
        assert!((corr("flipped").relative_frobenius - 2f64.sqrt()).abs() < 1e-12);
        assert!((corr("flipped").max_abs_delta - 2.0).abs() < 1e-12);
        assert!(!corr("flipped").passed && !rep.passed);
        assert!(rep.to_string().contains("FAIL"), "{rep}");
    }

    #[test]
    fn correlation_change_matches_direct_computation() {
        // c0 = [[1, .5], [.5, 1]], c1 = [[1, .2], [.2, 1]]: ‖Δ‖ = √(2·0.09), ‖c0‖ = √2.5.
        let c0 = array![[1.0, 0.5], [0.5, 1.0]];
        let c1 = array![[1.0, 0.2], [0.2, 1.0]];
        let (rel, mx) = correlation_change(&c0, &c1);
        assert!((rel - (0.18f64 / 2.5).sqrt()).abs() < 1e-12);
        assert!((mx - 0.3).abs() < 1e-12);
        // Against the datasets' own matrices.
        let (r, c) = pair();
        let (a, b) = (r.select(&["a".into(), "b".into()]).unwrap(), c.select(&["a".into(), "b".into()]).unwrap());
        let (ca, cb) = (a.correlation(true), b.correlation(true));
        let direct = ((cb[[0, 1]] - ca[[0, 1]]).powi(2) * 2.0 / (2.0 + 2.0 * ca[[0, 1]].powi(2))).sqrt();
        assert!((correlation_change(&ca, &cb).0 - direct).abs() < 1e-12);
    }

    #[test]
    fn a_shifted_sample_fails_the_jsd_and_ks() {
        let (r, _) = pair();
        let shifted = r.derive("a", "a + 10").unwrap();
        let cfg = ChecksConfig {
            features: Some(vec!["a".into()]),
            bins: 4,
            thresholds: Thresholds { ks_p: Some(0.01), ..Thresholds::default() },
            ..ChecksConfig::default()
        };
        let rep = checks(&r, &shifted, &cfg, &Control::quiet()).unwrap();
        let f = &rep.features[0];
        // Half of the shifted values (10..19 → 20..29) leave the reference range [0, 19].
        assert!(f.jsd > 0.3 && f.ks.statistic == 0.5 && f.ks.p_value < 0.01, "{f:?}");
        assert!(!rep.passed);
        // Both failed tests are named, with their values; the passed correlation is not.
        let why = rep.failures();
        assert_eq!(why.len(), 2, "{why:?}");
        assert_eq!(why[0], format!("all/a: JSD {:.4} ≥ 0.06", f.jsd));
        assert_eq!(why[1], format!("all/a: KS p {:.3e} < 0.01", f.ks.p_value));
        let same = checks(&r, &r, &cfg, &Control::quiet()).unwrap();
        assert!(same.passed && same.failures().is_empty());
    }

    #[test]
    fn missing_features_are_named() {
        let (r, c) = pair();
        let c = c.select(&["a".into()]).unwrap();
        let e = checks(&r, &c, &ChecksConfig::default(), &Control::quiet()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "checks: the candidate has no feature 'b', 'r' of the reference (candidate features: a)"
        );
        let cfg = ChecksConfig { regions: vec![("x".into(), "r > 5".into())], ..ChecksConfig::default() };
        let e = checks(&r, &r, &cfg, &Control::quiet()).unwrap_err();
        assert!(e.to_string().contains("region 'x' ('r > 5') of the reference is empty"), "{e}");
        let e = checks(&r, &r.head(0), &ChecksConfig::default(), &Control::quiet()).unwrap_err();
        assert_eq!(e.to_string(), "checks: the candidate sample is empty");
        let huge = ChecksConfig { bins: usize::MAX, ..ChecksConfig::default() };
        let e = checks(&r, &r, &huge, &Control::quiet()).unwrap_err();
        assert!(e.to_string().contains("bins must be between 1 and 1000000"), "{e}");
    }
}
