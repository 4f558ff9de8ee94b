//! The hidden-systematics report (`std/hidden_systematics`): its numbers against a direct
//! computation from scores and weights, and its admissibility filter against `checks`.

mod common;

/// A small collider sample, a briefly trained classifier, a JES + luminosity model with m12
/// recomputed, and the report of the window yield above 0.5 with CONSERVAttack (strict),
/// MiniFool and one extra sample that must fail the checks (m12 scaled by 1.1). The checks in
/// the script recompute every number the report gives:
/// - the yield of a sample: Σ w over events with |m12 − 125| < 20 and score > 0.5, summed in
///   event order from `scores` and `weights` (the same f32 → f64 values, the same order, so
///   the same f64 sum);
/// - the envelope: per nuisance the yields at θ = ±1 minus θ = 0, the largest increase and
///   decrease (0 if none) added in quadrature;
/// - Δ/envelope = Δ / up (Δ ≥ 0) or Δ / |down|;
/// - admissible = `checks(clean, events, #{ bins: 20 }).passed`.
const SCRIPT: &str = r#"
import "std/hidden_systematics" as hs;
let d = dataset("collider", #{ n: 1200, seed: 3 });
let m = train(mlp([11, 16, 1], #{ features: d.features, seed: 1 }), d, #{ epochs: 3, seed: 2 }).model;
let u = uncertainty(d, #{ preset: "collider" });
let syst = systematics([
    #{ name: "JES", kind: "scale", targets: ["pt1", "pt2"], sigma: 0.05, relative: true },
    #{ name: "lumi", kind: "norm", size: 0.1 },
], #{ derived: #{ m12: "sqrt(2 * pt1 * pt2 * (cosh(eta1 - eta2) - cos(dphi(phi1, phi2))))" } });
let q = #{ kind: "yield", region: "abs(m12 - 125) < 20", threshold: 0.5 };
let r = hs::report(m, d, u, syst, q, #{
    attacks: ["conservattack", "minifool"],
    conservattack: #{ steps: 2, num_candidates: 10 },
    minifool: [#{ name: "up", target: 1 }, #{ name: "down", target: 0 }],
    checks: #{ bins: 20 },
    extra: [#{ source: "m12 x 1.1", events: d.derive("m12", "m12 * 1.1") }],
});
print(r.table);

fn by_hand(m, ds) {
    let s = scores(m, ds);
    let x = ds["m12"];
    let w = ds.weights();
    let y = 0.0;
    for i in 0..ds.len {
        if abs(x[i] - 125.0) < 20.0 && s[i] > 0.5 { y += w[i]; }
    }
    y
}

let nominal = by_hand(m, d);
assert_eq(r.nominal, nominal);
assert(nominal > 0.0);

// The envelope, nuisance by nuisance.
let y0 = by_hand(m, vary(d, syst, #{}));
let up2 = 0.0;
let down2 = 0.0;
for k in 0..2 {
    let name = syst.nuisances[k];
    let t_up = #{}; t_up[name] = 1.0;
    let t_down = #{}; t_down[name] = -1.0;
    let a = by_hand(m, vary(d, syst, t_up)) - y0;
    let b = by_hand(m, vary(d, syst, t_down)) - y0;
    let row = r.envelope.rows[k];
    assert_eq(row.nuisance, name);
    assert(abs(row.up - a) < 1e-9 && abs(row.down - b) < 1e-9);
    let hi = max(max(a, b), 0.0);
    let lo = min(min(a, b), 0.0);
    up2 += hi * hi;
    down2 += lo * lo;
}
// lumi: every weight × 1.1 or / 1.1, so the yield changes by +10 % and 1/1.1 − 1.
assert(abs(r.envelope.rows[1].up - 0.1 * y0) < 1e-6 * y0);
assert(abs(r.envelope.up - up2.sqrt()) < 1e-9 && abs(r.envelope.down + down2.sqrt()) < 1e-9);
assert(r.envelope.up > 0.0 && r.envelope.down < 0.0);

// Every source: value, Δ, Δ/envelope and admissibility recomputed.
assert_eq(r.rows.map(|x| x.source), ["conservattack seed=1", "minifool up s=1.0", "minifool down s=1.0", "m12 x 1.1"]);
let best = ();
for row in r.rows {
    let v = by_hand(m, row.events);
    assert(abs(row.value - v) < 1e-9);
    assert(abs(row.delta - (v - nominal)) < 1e-9);
    let side = if row.delta >= 0.0 { r.envelope.up } else { -r.envelope.down };
    assert(abs(row.in_envelope - row.delta / side) < 1e-12);
    let c = checks(d, row.events, #{ bins: 20 });
    assert_eq(row.admissible, c.passed);
    assert_eq(row.failures, c.failures);
    if row.admissible && (best == () || abs(row.delta) > abs(best.delta)) { best = row; }
}
assert_eq(r.max_admissible.source, best.source);
assert_eq(r.admissible, r.rows.filter(|x| x.admissible).len);

// Strict CONSERVAttack passes the checks by construction and moved events; the rescaled
// m12 cannot pass (a 10 % scale of a peaked distribution), and the failure names m12.
assert(r.rows[0].admissible && r.rows[0].flip_fraction > 0.0);
assert(!r.rows[3].admissible);
assert(r.rows[3].failures.some(|f| f.starts_with("all/m12: JSD")));
assert(r.table.contains("not admissible, m12 x 1.1: all/m12: JSD"));
hs::plot(r, "out/test_hidden_systematics.svg", "");
"#;

#[test]
fn report_numbers_match_a_direct_computation() {
    if let Err(e) = common::run(SCRIPT) {
        panic!("{e}");
    }
}

#[test]
fn unknown_options_and_attacks_are_named() {
    let setup = r#"
import "std/hidden_systematics" as hs;
let d = dataset("gaussians", #{ n: 200, seed: 1 }).select(["x0", "x1"]);
let m = mlp([2, 4, 1], #{ features: d.features, seed: 1 });
let u = uncertainty(d, #{ all: #{ abs: 0.1 } });
"#;
    let e = common::run(&format!("{setup}hs::report(m, d, u, (), #{{ kind: \"mean_score\" }}, #{{ seed: 1 }});"))
        .err()
        .unwrap_or_default();
    assert!(e.contains("hidden_systematics::report: unknown option 'seed'"), "{e}");
    let e = common::run(&format!(
        "{setup}hs::report(m, d, u, (), #{{ kind: \"mean_score\" }}, #{{ attacks: [\"fgsm\"] }});"
    ))
    .err()
    .unwrap_or_default();
    assert!(e.contains("unknown attack 'fgsm'"), "{e}");
    let e = common::run(&format!("{setup}hs::report(m, d, u, (), #{{ kind: \"mean\" }});")).err().unwrap_or_default();
    assert!(e.contains("quantity: kind must be \"yield\", \"efficiency\" or \"mean_score\", got \"mean\""), "{e}");
}

/// Given a systematics model, the report runs the nuisance-space attacks as sources: per-event
/// θ and a coherent θ pushing the report's own quantity up and down (χ² ≤ 1). Their rows are
/// recomputed as above, and the coherent rows' values equal the coherent attack's own hard-cut
/// value (`nuisance_attack` run directly with the quantity's options): the spread they give is
/// the attack's. With lumi (10 %) among the nuisances, the yield moves by ≥ 1/1.1 − 1 of its
/// nominal along the lumi pull alone, so the coherent spread is strictly two-sided.
const NUISANCE_SCRIPT: &str = r#"
import "std/hidden_systematics" as hs;
let d = dataset("collider", #{ n: 800, seed: 3 });
let m = train(mlp([11, 16, 1], #{ features: d.features, seed: 1 }), d, #{ epochs: 2, seed: 2 }).model;
let u = uncertainty(d, #{ preset: "collider" });
let syst = systematics([
    #{ name: "JES", kind: "scale", targets: ["pt1", "pt2"], sigma: 0.05, relative: true },
    #{ name: "lumi", kind: "norm", size: 0.1 },
], #{ derived: #{ m12: "sqrt(2 * pt1 * pt2 * (cosh(eta1 - eta2) - cos(dphi(phi1, phi2))))" } });
let q = #{ kind: "yield", region: "abs(m12 - 125) < 40", threshold: 0.5 };
let r = hs::report(m, d, u, syst, q, #{ attacks: ["nuisance"], checks: #{ bins: 20 } });
print(r.table);
assert_eq(r.rows.map(|x| x.source),
          ["nuisance event chi2=1.0", "nuisance coherent up chi2=1.0", "nuisance coherent down chi2=1.0"]);
assert(r.table.contains("nuisance coherent up chi2=1.0"));
let nominal = quantity(m, d, q);
for row in r.rows {
    assert(abs(row.value - quantity(m, row.events, q)) < 1e-9);
    assert(abs(row.delta - (row.value - nominal)) < 1e-9);
    assert_eq(row.admissible, checks(d, row.events, #{ bins: 20 }).passed);
}
assert(r.rows[0].flip_fraction > 0.0 && r.rows[1].flip_fraction == ());
let opts = #{ mode: "coherent", quantity: "yield", region: q.region, threshold: 0.5 };
for side in [["up", 1], ["down", 2]] {
    let o = opts;
    o.direction = side[0];
    let a = nuisance_attack(m, d, syst, o);
    assert(abs(r.rows[side[1]].value - a.value) < 1e-9);
    assert(a.chi2 <= 1.0 + 1e-9);
}
assert(r.rows[1].delta >= 0.09 * nominal / 1.1 && r.rows[2].delta <= -0.09 * nominal / 1.1);
"#;

#[test]
fn nuisance_space_attacks_are_sources_with_their_spread() {
    if let Err(e) = common::run(NUISANCE_SCRIPT) {
        panic!("{e}");
    }
    // without a systematics model there is none to attack in
    let e = common::run(
        r#"
import "std/hidden_systematics" as hs;
let d = dataset("gaussians", #{ n: 200, seed: 1 }).select(["x0", "x1"]);
let m = mlp([2, 4, 1], #{ features: d.features, seed: 1 });
hs::report(m, d, uncertainty(d, #{ all: #{ abs: 0.1 } }), (), #{ kind: "mean_score" }, #{ attacks: ["nuisance"] });
"#,
    )
    .err()
    .unwrap_or_default();
    assert!(e.contains("the 'nuisance' attack needs a systematics model (syst is ())"), "{e}");
}
