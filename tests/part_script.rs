//! The Particle Transformer from scripts: `part` trains, evaluates, is attacked, saved and
//! loaded like every model (the Rust-level gradients and import are tested in
//! `src/model/part_tests.rs`).

mod common;

/// Jets of 3 particles from the two-Gaussian task: feature `a` carries s = Σ xᵢ / 4.5 (the
/// class-separating direction), `b` mixes it with noise, and (pT, η, φ, E) feed the pair
/// features. The embedding needs two inputs: its first LayerNorm maps a single feature to 0.
const JETS: &str = r#"
let d = dataset("gaussians", #{ n: 400, seed: 1 });
let d = d.derive("s", "(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11 + x12 + x13 + x14 + x15 + x16 + x17 + x18 + x19) / 4.5");
let s = d["s"]; let x1 = d["x1"]; let x2 = d["x2"];
let a = []; let b = []; let pt = []; let eta = []; let phi = []; let e = [];
for i in 0..d.len {
    a.push([s[i], 0.5 * s[i] + 0.1, -s[i]]);
    b.push([x1[i], 1.0 - s[i], 0.5 * x2[i]]);
    let p = [20.0 + 2.0 * x1[i], 10.0, 4.0 + 0.5 * x2[i]];
    let h = [0.1 * x2[i], -0.2, 0.3];
    pt.push(p); eta.push(h); phi.push([0.1, -0.3 + 0.05 * x1[i], 0.4]);
    e.push([p[0] * cosh(h[0]) + 1.0, p[1] * cosh(h[1]) + 1.0, p[2] * cosh(h[2]) + 1.0]);
}
let jets = d.select(["x3"]).with_objects("part", #{ a: a, b: b, pt: pt, eta: eta, phi: phi, E: e });
let m = part("part", ["a", "b", "pt", "eta", "phi", "E"], #{ embed: [8, 8], pair_embed: [4], heads: 2,
    blocks: 1, ffn_ratio: 2, embed_inputs: ["a", "b"], pairs: true, max_objects: 3, seed: 1 });
"#;

#[test]
fn part_trains_evaluates_is_attacked_saved_and_loaded_from_a_script() {
    let script = format!(
        r#"{JETS}
let r = train(m, jets, #{{ epochs: 8, lr: 0.01, batch_size: 32, seed: 2 }});
assert(r.history[7].loss < r.history[0].loss);
// An untrained model scores AUC 0.5 ± 0.03 (400 events); the trained one separates.
let ev = r.model.evaluate(jets);
assert(ev.auc > 0.6);
r.model.save("out/test_part_script.safetensors");
let back = load_model("out/test_part_script.safetensors");
assert_eq(back.kind, "part");
assert_eq(back.params(), r.model.params());
assert_eq(back.scores(jets), r.model.scores(jets));

// PGD (L∞, ε = 1): only `a` moves, by at most ε·σ = 0.2, and the budget is used.
let u = uncertainty(jets, #{{ features: #{{ "part.a": 0.2 }},
    frozen: ["x3", "part.b", "part.pt", "part.eta", "part.phi", "part.E"] }});
let g = pgd(r.model, jets, u, #{{ eps: 1.0, steps: 10 }});
let c0 = jets.collection("part").values("a");
let c1 = g.events.collection("part").values("a");
let mx = 0.0;
for i in 0..c0.len {{ for j in 0..c0[i].len {{ mx = max(mx, abs(c1[i][j] - c0[i][j])); }} }}
assert(mx <= 0.2 + 1e-6);
assert(mx > 0.19);
for f in ["b", "pt", "eta", "phi", "E"] {{
    assert_eq(g.events.collection("part").values(f), jets.collection("part").values(f));
}}
// MiniFool with a wide σ flips some jets; a flipped jet's predicted class changed.
let wide = uncertainty(jets, #{{ features: #{{ "part.a": 1.0 }},
    frozen: ["x3", "part.b", "part.pt", "part.eta", "part.phi", "part.E"] }});
let few = jets.head(40);
let mf = minifool(r.model, few, wide);
assert(mf.flip_fraction > 0.0);
let before = r.model.predict(few);
let after = r.model.predict(mf.events);
let flipped = mf.table["flipped"];
for i in 0..40 {{ if flipped[i] > 0.5 {{ assert(before[i] != after[i]); }} }}
print(`ok ${{fmt(ev.auc, 3)}} ${{mf.flip_fraction}}`);
"#
    );
    let out = common::run(&script).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.starts_with("ok"), "{out}");
}
