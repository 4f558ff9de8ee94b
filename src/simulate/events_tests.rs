//! The event response reproduces its configured resolution, tails and efficiencies on large
//! samples (tolerances from the sample size, in the comments), and depends only on its seed.

use ndarray::Array2;

use super::*;

/// `n` events of constant columns `e` = 100, `k` = 10 (a count) and `ref` = 400.
fn constant(n: usize) -> Dataset {
    let mut x = Array2::<f32>::zeros((n, 3));
    x.column_mut(0).fill(100.0);
    x.column_mut(1).fill(10.0);
    x.column_mut(2).fill(400.0);
    Dataset::new(vec!["e".into(), "k".into(), "ref".into()], x, Some(vec![0; n]), None).unwrap()
}

fn response(features: Vec<FeatureResponse>, efficiency: f64) -> EventResponse {
    EventResponse { features, efficiency, truth: Vec::new(), derived: Vec::new(), seed: 7 }
}

fn moments(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v.iter().map(|&x| (f64::from(x) - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, var.sqrt())
}

#[test]
fn gaussian_resolution_and_scale_are_reproduced() {
    // σ = √(3² + (0.05·100)² + 0.2²·400) = √(9 + 25 + 16) = √50 = 7.071 around 0.98·100 = 98.
    // n = 40 000: the sample std has relative s.e. 1/√(2n) = 0.35 % (4σ: 1.4 %), the mean
    // s.e. 7.07/200 = 0.035 (4σ: 0.14).
    let n = 40_000;
    let f = FeatureResponse {
        absolute: 3.0,
        stochastic: 0.2,
        reference: Some("ref".into()),
        scale: 0.98,
        ..FeatureResponse::relative("e", 0.05)
    };
    let out = response(vec![f], 1.0).apply(&constant(n)).unwrap();
    let (m, s) = moments(&out.column("e").unwrap().to_vec());
    assert!((m - 98.0).abs() < 0.14, "mean {m}");
    assert!((s / 50f64.sqrt() - 1.0).abs() < 0.014, "std {s}");
}

#[test]
fn tails_widen_the_response_as_configured() {
    // f = 0.1, w = 3, σ = 5: Var = (0.9 + 0.1·9)·25 = 45, std 6.708. E z⁴ = 3(0.9 + 0.1·81) =
    // 27, so the sample variance of z has s.e. √((27 − 1.8²)/n) = 0.0244 at n = 40 000,
    // 1.35 % of 1.8, i.e. 0.68 % on the std (4σ: 2.7 %). Beyond 4σ of the core:
    // 0.9·P(|N| > 4) + 0.1·P(|N| > 4/3) = 0.9·6.3e-5 + 0.1·0.1824 = 0.01830, binomial s.e.
    // 0.00067 (4σ: 0.0027).
    let n = 40_000;
    let f = FeatureResponse { tails: Tails { fraction: 0.1, width: 3.0 }, ..FeatureResponse::absolute("e", 5.0) };
    let out = response(vec![f], 1.0).apply(&constant(n)).unwrap();
    let v = out.column("e").unwrap().to_vec();
    let (_, s) = moments(&v);
    assert!((s / 45f64.sqrt() - 1.0).abs() < 0.027, "std {s}");
    let far = v.iter().filter(|&&x| (f64::from(x) - 100.0).abs() > 20.0).count() as f64 / n as f64;
    assert!((far - 0.01830).abs() < 0.0027, "fraction beyond 4σ {far}");
}

#[test]
fn efficiencies_are_reproduced() {
    // Event efficiency 0.8 of n = 20 000: binomial s.e. √(0.16/n) = 0.0028 (4σ: 0.0113).
    // Count efficiency 0.9 of 10 objects: mean 9, s.e. √(10·0.09/n) = 0.0067 (4σ: 0.027);
    // every count stays an integer in 0..=10.
    let n = 20_000;
    let out = response(vec![FeatureResponse::count("k", 0.9)], 0.8).apply(&constant(n)).unwrap();
    let kept = out.len() as f64 / n as f64;
    assert!((kept - 0.8).abs() < 0.0113, "kept {kept}");
    let k = out.column("k").unwrap().to_vec();
    assert!(k.iter().all(|v| v.fract() == 0.0 && (0.0..=10.0).contains(v)));
    let (m, _) = moments(&k);
    assert!((m - 9.0).abs() < 0.027, "mean count {m}");
    assert_eq!(out.label().unwrap().len(), out.len());
}

#[test]
fn the_collider_presets_recompute_derived_features_and_depend_only_on_the_seed() {
    let ds = crate::data::synthetic::collider(&crate::data::synthetic::ColliderConfig::new(3000, 1)).unwrap();
    let mut r = EventResponse::collider("full", 5).unwrap();
    r.truth = vec!["met".into()];
    let a = r.apply(&ds).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let b = pool.install(|| r.apply(&ds).unwrap());
    assert_eq!(a.x(), b.x());
    // 95 % of 3000 recorded: s.e. √(0.0475·3000) = 11.9 events (4σ: 48).
    assert!((a.len() as f64 - 2850.0).abs() < 48.0, "{} events", a.len());
    assert!(a.names().contains(&"met_true".to_string()));
    // m12 follows from the responded momenta (f32 inputs, so a relative 1e-5).
    let col = |n: &str| a.column(n).unwrap().to_vec();
    let (pt1, pt2, e1, e2, p1, p2, m12) =
        (col("pt1"), col("pt2"), col("eta1"), col("eta2"), col("phi1"), col("phi2"), col("m12"));
    for i in 0..a.len() {
        // cos is 2π-periodic, so the unwrapped difference gives the same cos Δφ.
        let dphi = f64::from(p1[i]) - f64::from(p2[i]);
        let m = (2.0 * f64::from(pt1[i]) * f64::from(pt2[i]) * ((f64::from(e1[i] - e2[i])).cosh() - dphi.cos())).sqrt();
        assert!((m - f64::from(m12[i])).abs() < 1e-4 * m.max(1.0), "event {i}: {m} vs {}", m12[i]);
    }
    assert!(p1.iter().all(|p| (-std::f32::consts::PI..=std::f32::consts::PI).contains(p)));
    let e = EventResponse::collider("slow", 1).unwrap_err().to_string();
    assert_eq!(e, "event_response: option 'preset' must be \"fast\" or \"full\", got 'slow'");
    let bad = response(vec![FeatureResponse::relative("nope", 0.1)], 1.0).apply(&constant(3)).unwrap_err();
    assert!(bad.to_string().contains("nope"), "{bad}");
}
