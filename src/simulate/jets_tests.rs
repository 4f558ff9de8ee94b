//! The jet response reproduces its configured resolutions by particle type, tracking
//! efficiency, cell merging and soft particles on large samples (tolerances from the sample
//! size, in the comments), and depends only on its seed.

use super::*;

/// A response that changes nothing (perfect resolution, efficiency 1, no cells, no soft
/// particles, no thresholds), to switch on one effect at a time.
fn perfect() -> JetResponse {
    let none = res(0.0, 0.0, 0.0, 0.0);
    JetResponse {
        collection: "part".into(),
        track: none,
        em: none,
        hadron: none,
        tracking_efficiency: 1.0,
        em_cell: 0.0,
        hadron_cell: 0.0,
        soft_mean: 0.0,
        soft_pt: 1.0,
        soft_radius: 0.4,
        track_pt_min: 0.0,
        neutral_pt_min: 0.0,
        seed: 3,
    }
}

/// `n` jets, each of 10 photons (E 50 GeV), 10 π⁺ (E 20 GeV) and 10 neutrons (E 30 GeV) at
/// η = 0.3·k (k = 0..10, so no two share a cell of size ≤ 0.1), φ = 0.1.
fn jets(n: usize) -> Dataset {
    let mut lists: Vec<(String, Vec<Vec<f32>>)> = FEATURES.iter().map(|f| (f.to_string(), Vec::new())).collect();
    for _ in 0..n {
        let mut ev: Vec<Vec<f32>> = vec![Vec::new(); 6];
        for (e, charge, pid) in [(50.0f32, 0.0, 22.0), (20.0, 1.0, 211.0), (30.0, 0.0, 2112.0)] {
            for k in 0..10 {
                let eta = 0.3 * k as f32 - 1.35;
                for (j, v) in [e / eta.cosh(), eta, 0.1, e, charge, pid].into_iter().enumerate() {
                    ev[j].push(v);
                }
            }
        }
        for (l, v) in lists.iter_mut().zip(ev) {
            l.1.push(v);
        }
    }
    let c = Collection::from_lists("part", lists).unwrap();
    let x = ndarray::Array2::<f32>::zeros((n, 1));
    Dataset::new(vec!["jet_pt".into()], x, Some(vec![1; n]), None).unwrap().with_collection(c).unwrap()
}

/// E_out/E_in of every output particle with `pid` (directions are kept without cells, and
/// every input particle of a type has the same energy `e_in`).
fn ratios(out: &Dataset, pid: f32, e_in: f64) -> Vec<f64> {
    let c = out.collection("t", "part").unwrap();
    let (e, p) = (c.values("E").unwrap(), c.values("pid").unwrap());
    e.iter().zip(p).filter(|(_, &q)| q == pid).map(|(&v, _)| f64::from(v) / e_in).collect()
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (m, (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt())
}

#[test]
fn energy_resolution_and_scale_by_particle_type() {
    // 2000 jets × 10 particles of each type = 20 000 per type: the sample std has relative
    // s.e. 1/√(2·20 000) = 0.5 % (4σ: 2 %), the mean s.e. σ/√20 000 (4σ: 0.028·σ).
    let mut r = perfect();
    r.em = res(0.10, 0.01, 0.0, 0.0); // σ/E at 50 GeV: √(0.01/50 + 1e-4) = 0.017321
    r.track = res(0.0, 0.01, 0.0, 1e-4); // at 20 GeV: √(1e-4 + 0.002²) = 0.010198
    r.hadron = Resolution { scale: 0.85, ..res(1.0, 0.10, 0.0, 0.0) }; // at 30: √(1/30 + 0.01) = 0.20817
    let out = r.apply(&jets(2000)).unwrap();
    for (pid, e, scale, sigma) in
        [(22.0, 50.0, 1.0, 0.017321), (211.0, 20.0, 1.0, 0.010198), (2112.0, 30.0, 0.85, 0.85 * 0.20817)]
    {
        let v = ratios(&out, pid, e);
        assert_eq!(v.len(), 20_000, "pid {pid}");
        let (m, s) = mean_std(&v);
        assert!((m - scale).abs() < 0.028 * sigma, "pid {pid}: mean {m}");
        assert!((s / sigma - 1.0).abs() < 0.02, "pid {pid}: std {s} vs {sigma}");
    }
    // Neutral hadrons come out as pid 130 only when cells merge; without cells they keep
    // their id (checked above as 2112).
}

#[test]
fn tracking_efficiency_and_tails() {
    // ε = 0.9 of 20 000 tracks: s.e. √(0.09/20 000) = 0.0021 (4σ: 0.0085). Photon tails
    // f = 0.2, w = 4 on σ = 0.02: std √(0.8 + 0.2·16)·0.02 = 0.04 (kurtosis E z⁴ =
    // 3(0.8 + 0.2·256) = 156, Var z² = 156 − 16 = 140: s.e. of the variance √(140/20 000) =
    // 0.084 on 4, 2.1 %, so 1 % on the std, 4σ: 4.2 %).
    let mut r = perfect();
    r.tracking_efficiency = 0.9;
    r.em = Resolution { tails: Tails { fraction: 0.2, width: 4.0 }, ..res(0.0, 0.02, 0.0, 0.0) };
    let out = r.apply(&jets(2000)).unwrap();
    let kept = ratios(&out, 211.0, 20.0).len() as f64 / 20_000.0;
    assert!((kept - 0.9).abs() < 0.0085, "tracking efficiency {kept}");
    let (_, s) = mean_std(&ratios(&out, 22.0, 50.0));
    assert!((s / 0.04 - 1.0).abs() < 0.042, "std with tails {s}");
}

#[test]
fn cells_merge_neutrals_per_calorimeter_and_conserve_energy() {
    // One jet: two photons 0.01 apart (one cell of 0.05), a third photon 0.3 away and a
    // neutron on top of the first photon (another calorimeter): three photon-like cells
    // would be wrong; two photon cells and one hadron cell are right.
    let mk = |eta: f32, phi: f32, e: f32, pid: f32| [e / eta.cosh(), eta, phi, e, 0.0, pid];
    let ps = [
        mk(0.012, 0.51, 10.0, 22.0),
        mk(0.022, 0.52, 5.0, 22.0),
        mk(0.312, 0.51, 7.0, 22.0),
        mk(0.012, 0.51, 4.0, 2112.0),
    ];
    let lists =
        FEATURES.iter().enumerate().map(|(j, f)| (f.to_string(), vec![ps.iter().map(|p| p[j]).collect()])).collect();
    let c = Collection::from_lists("part", lists).unwrap();
    let ds = Dataset::new(vec!["n_constituents".into()], ndarray::Array2::zeros((1, 1)), None, None)
        .unwrap()
        .with_collection(c)
        .unwrap();
    let mut r = perfect();
    r.em_cell = 0.05;
    r.hadron_cell = 0.1;
    let out = r.apply(&ds).unwrap();
    let c = out.collection("t", "part").unwrap();
    let (e, pid, eta) = (c.values("E").unwrap(), c.values("pid").unwrap(), c.values("eta").unwrap());
    assert_eq!(c.n_objects(), 3);
    assert_eq!(out.column("n_constituents").unwrap()[0], 3.0);
    // Sorted by pT: the merged photon cell (15 GeV at η 0.025, the cell centre), the lone
    // photon (7 GeV, centre 0.325) and the neutron's cell (4 GeV, pid 130, centre 0.05).
    let total: f32 = e.iter().sum();
    assert!((total - 26.0).abs() < 1e-4);
    assert!((e[0] - 15.0).abs() < 1e-4 && (eta[0] - 0.025).abs() < 1e-6 && pid[0] == 22.0);
    assert!((e[1] - 7.0).abs() < 1e-4 && (eta[1] - 0.325).abs() < 1e-6);
    assert!((e[2] - 4.0).abs() < 1e-4 && pid[2] == 130.0 && (eta[2] - 0.05).abs() < 1e-6);
}

#[test]
fn soft_particles_have_the_configured_rate_and_stay_in_the_cone() {
    // Poisson(3) per jet over 4000 jets: mean s.e. √(3/4000) = 0.027 (4σ: 0.11); their pT is
    // exponential with mean 2 GeV: s.e. 2/√12 000 = 0.018 (4σ: 0.073).
    let n = 4000;
    let mut r = perfect();
    r.soft_mean = 3.0;
    r.soft_pt = 2.0;
    let ds = jets(n);
    let out = r.apply(&ds).unwrap();
    let c = out.collection("t", "part").unwrap();
    let extra = (c.n_objects() - 30 * n) as f64 / n as f64;
    assert!((extra - 3.0).abs() < 0.11, "soft particles per jet {extra}");
    let pid = c.values("pid").unwrap();
    let soft: Vec<usize> = (0..c.n_objects()).filter(|&k| pid[k] == 130.0).collect();
    let mean_pt = soft.iter().map(|&k| f64::from(c.values("pt").unwrap()[k])).sum::<f64>() / soft.len() as f64;
    // Only the neutral-hadron half (pid 130) is counted: still exponential with mean 2.
    assert!((mean_pt - 2.0).abs() < 0.073 * 1.5, "soft mean pT {mean_pt}");
    // Every soft particle is within R = 0.4 of the generator-level axis of its jet.
    let axis = jet_vector(
        &(0..30)
            .map(|k| Particle::read(&FEATURES.map(|f| ds.collection("t", "part").unwrap().values(f).unwrap()), k))
            .collect::<Vec<_>>(),
    );
    let (eta, phi) = (c.values("eta").unwrap(), c.values("phi").unwrap());
    for &k in soft.iter().take(2000) {
        let d = f64::from(eta[k]) - axis[1];
        let dp = wrap(f64::from(phi[k]) - axis[2]);
        assert!(d.hypot(dp) <= 0.4 + 1e-5, "soft particle {k} outside the cone");
    }
}

#[test]
fn the_presets_run_deterministically_and_recompute_the_jet() {
    let ds = jets(300).with_column("jet_pt", vec![0.0; 300]).unwrap();
    let r = JetResponse::preset("full", "part", 9).unwrap();
    let a = r.apply(&ds).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let b = pool.install(|| r.apply(&ds).unwrap());
    let (ca, cb) = (a.collection("t", "part").unwrap(), b.collection("t", "part").unwrap());
    assert_eq!(ca.values("E").unwrap(), cb.values("E").unwrap());
    // jet_pt is the pT of the summed constituents.
    let (pt, phi) = (ca.values("pt").unwrap(), ca.values("phi").unwrap());
    let off = ca.offsets();
    let (px, py): (f64, f64) = (off[0]..off[1])
        .map(|k| (f64::from(pt[k]) * f64::from(phi[k]).cos(), f64::from(pt[k]) * f64::from(phi[k]).sin()))
        .fold((0.0, 0.0), |s, v| (s.0 + v.0, s.1 + v.1));
    assert!((px.hypot(py) - f64::from(a.column("jet_pt").unwrap()[0])).abs() < 1e-3);
    // Another seed gives other jets; the hadron calorimeter's cells come out as pid 130.
    let c = JetResponse { seed: 10, ..r.clone() }.apply(&ds).unwrap();
    assert_ne!(c.collection("t", "part").unwrap().values("E").unwrap(), ca.values("E").unwrap());
    assert!(ca.values("pid").unwrap().contains(&130.0));
    let derived = ds.derive_objects("part", "logpt", "log(pt)").unwrap();
    let e = r.apply(&derived).unwrap_err().to_string();
    assert_eq!(
        e,
        "jet_response: collection 'part' has features the response cannot carry: logpt; derive them after the response"
    );
}
