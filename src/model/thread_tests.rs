//! The candle-based set models give the same bits on 1 and on 2 rayon threads: logits, input
//! gradients and weight gradients of a ParticleNet and a ParT (with pair features) on events
//! spread over several of their parallel chunks, each run inside a local `ThreadPool`.

use ndarray::Array2;
use rand::Rng as _;

use super::{particlenet, GradTarget, Model, Output, Part, PartConfig, ParticleNetConfig, SetLayout, Targets};

const OBJ: [&str; 6] = ["a", "b", "pt", "eta", "phi", "E"];

fn layout() -> SetLayout {
    SetLayout::new(vec!["ht".into()], "part", OBJ.map(String::from).to_vec(), 6).unwrap()
}

/// 200 events with 0–6 particles (more than three of the ParT's chunks of 64 events).
fn events() -> Array2<f32> {
    let l = layout();
    let mut r = crate::rng::rng(31);
    let mut x = Array2::<f32>::zeros((200, l.width()));
    for i in 0..200 {
        let k = i % 7;
        x[[i, 0]] = r.random_range(50.0..150.0);
        x[[i, 1]] = k as f32;
        for s in 0..k {
            let pt: f32 = r.random_range(1.0..30.0);
            let eta: f32 = r.random_range(-1.0..1.0);
            let m: f32 = r.random_range(0.5..2.0);
            let v = [r.random_range(-1.0..1.0), r.random_range(-1.0..1.0), pt, eta, r.random_range(-3.0..3.0)];
            for (j, &v) in v.iter().enumerate() {
                x[[i, l.slot_column(s, j)]] = v;
            }
            x[[i, l.slot_column(s, 5)]] = ((pt * eta.cosh()).powi(2) + m * m).sqrt();
        }
    }
    x
}

/// Logits, input gradient (loss of the true labels) and weight gradient on `threads` threads.
fn run(m: &dyn Model, x: &Array2<f32>, threads: usize) -> (Array2<f32>, Array2<f32>, f64, Vec<f32>) {
    let labels: Vec<i64> = (0..x.nrows() as i64).map(|i| i % 2).collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let z = m.logits(x.view()).unwrap();
        let g = m.input_grad_and_scores(x.view(), GradTarget::Loss(Targets::Labels(&labels))).unwrap();
        let (loss, w) = m.weight_grad(x.view(), Targets::Labels(&labels), None).unwrap();
        (z, g.grad, loss, w)
    })
}

fn check(m: &dyn Model) {
    let x = events();
    let one = run(m, &x, 1);
    let two = run(m, &x, 2);
    assert!(one.1.iter().any(|&v| v != 0.0), "{}: the input gradient is all zero", m.kind());
    assert_eq!(one.0, two.0, "{}: logits differ between 1 and 2 threads", m.kind());
    assert_eq!(one.1, two.1, "{}: input gradients differ between 1 and 2 threads", m.kind());
    assert_eq!(one.2.to_bits(), two.2.to_bits(), "{}: losses differ", m.kind());
    assert_eq!(one.3, two.3, "{}: weight gradients differ between 1 and 2 threads", m.kind());
}

#[test]
fn particlenet_is_identical_on_one_and_two_threads() {
    let cfg = ParticleNetConfig {
        conv: vec![(3, vec![8, 8]), (2, vec![8])],
        fc: vec![(8, 0.0)],
        points: vec![0, 1],
        seed: 5,
        ..ParticleNetConfig::lite()
    };
    let m = particlenet(layout(), &cfg, Output::Softmax).unwrap();
    check(&m);
}

#[test]
fn part_is_identical_on_one_and_two_threads() {
    let cfg = PartConfig {
        embed: vec![8, 8],
        pair_embed: vec![6],
        embed_inputs: vec!["a".into(), "b".into(), "eta".into()],
        pair_inputs: ["pt", "eta", "phi", "E"].map(String::from).to_vec(),
        heads: 2,
        blocks: 1,
        ffn_ratio: 2,
        seed: 6,
        ..PartConfig::default()
    };
    let mut m = Part::new(layout(), &cfg).unwrap();
    m.fit_standardization(events().view()).unwrap();
    check(&m);
}
