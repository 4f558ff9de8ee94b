use super::*;
use crate::model::{Activation, MlpConfig, Output, TrainConfig};
use ndarray::Array2;

fn rows(n: usize, d: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, d), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 5.0 - 1.0)
}

fn net() -> Mlp {
    let cfg = MlpConfig { activation: Activation::Tanh, output: Output::Linear, seed: 5, ..MlpConfig::default() };
    Mlp::new(&[3, 8, 2], cfg).unwrap()
}

/// Σ cot·z of the fused MLP: its weight VJP against central differences (f32 weights, step 1e-2).
#[test]
fn output_vjp_matches_finite_differences() {
    let m = net();
    let x = rows(300, 3);
    let cot = rows(300, 2).mapv(|v| v * 0.5);
    let g = mlp_output_vjp(&m, x.view(), cot.view()).unwrap();
    let f = |m: &Mlp| -> f64 {
        let z = m.forward_logits(x.view()).unwrap();
        z.iter().zip(cot.iter()).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum()
    };
    let h = 1e-2f32;
    for k in (0..m.n_params()).step_by(3) {
        let (mut a, mut b) = (m.clone(), m.clone());
        a.params_mut()[k] += h;
        b.params_mut()[k] -= h;
        let fd = (f(&a) - f(&b)) / (2.0 * f64::from(h));
        assert!((fd - f64::from(g[k])).abs() < 2e-2 * (1.0 + fd.abs()), "param {k}: {} vs {fd}", g[k]);
    }
}

/// A batch objective that needs the whole batch: the variance of output 0 over the batch.
/// Its gradient is 2(zᵢ − z̄)/B per event — not a sum of per-event losses.
struct Variance;

impl BatchObjective for Variance {
    fn name(&self) -> String {
        "variance".into()
    }
    fn eval(&self, _x: ArrayView2<'_, f32>, z: ArrayView2<'_, f32>, _w: &[f32], grad: &mut Array2<f32>) -> Result<f64> {
        let b = z.nrows() as f64;
        let mean = z.column(0).iter().map(|&v| f64::from(v)).sum::<f64>() / b;
        grad.fill(0.0);
        let mut v = 0.0;
        for (i, &zi) in z.column(0).iter().enumerate() {
            let d = f64::from(zi) - mean;
            v += d * d / b;
            grad[[i, 0]] = (2.0 * d / b) as f32;
        }
        Ok(v)
    }
}

/// The trainer's fused gradient over a whole batch (two halves) equals the generic path's
/// (one VJP of the whole batch), and a full-batch epoch lowers the batch objective.
#[test]
fn fused_and_generic_batch_gradients_agree_and_training_descends() {
    let m = net();
    let x = rows(200, 3);
    let obj = Weighted::new(vec![(2.0, Box::new(Variance) as Box<dyn BatchObjective>)]).unwrap();
    let cfg = TrainConfig { epochs: 1, batch_size: 200, ..TrainConfig::default() };
    let q = Control::quiet();
    let mut fused = ObjectiveTrainer::new(&m, x.view(), None, &obj, &cfg, None, &q).unwrap();
    let all: Vec<usize> = (0..200).collect();
    let v = fused.gradient(&all, 1).unwrap();
    let z = m.forward_logits(x.view()).unwrap();
    let mut cot = Array2::zeros((200, 2));
    let v2 = obj.eval(x.view(), z.view(), &[1.0; 200], &mut cot).unwrap();
    let g2 = mlp_output_vjp(&m, x.view(), cot.view()).unwrap();
    assert!((v - v2).abs() < 1e-9);
    for (a, b) in fused.grads[0].iter().zip(&g2) {
        assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
    let cfg = TrainConfig {
        epochs: 30,
        batch_size: 200,
        optimizer: crate::model::Optimizer::adam(1e-2),
        ..TrainConfig::default()
    };
    let mut t =
        ObjectiveTrainer::new(&m, x.view(), None, &obj, &cfg, Some(Convergence { tol: 0.0, patience: 100 }), &q)
            .unwrap();
    q.executor(30).run(&mut t).unwrap();
    let h = t.history();
    assert!(h[h.len() - 1].objective < 0.5 * h[0].objective, "{:?}", h);
}

#[test]
fn frozen_groups_never_move_and_bad_weights_are_refused() {
    let m = net();
    let x = rows(100, 3);
    let obj = Weighted::new(vec![(1.0, Box::new(Variance) as Box<dyn BatchObjective>)]).unwrap();
    let cfg = TrainConfig { epochs: 3, batch_size: 50, freeze: vec!["layer0".into()], ..TrainConfig::default() };
    let q = Control::quiet();
    let mut t = ObjectiveTrainer::new(&m, x.view(), None, &obj, &cfg, None, &q).unwrap();
    q.executor(3).run(&mut t).unwrap();
    let (trained, _) = t.finish();
    let r = m.param_groups()[0].range.clone();
    assert_eq!(&trained.params()[r.clone()], &m.params()[r]);
    assert_ne!(trained.params(), m.params().to_vec());
    let e =
        ObjectiveTrainer::new(&m, x.view(), Some(&vec![-1.0; 100]), &obj, &cfg, None, &q).err().unwrap().to_string();
    assert!(e.contains("needs finite weights ≥ 0"), "{e}");
    let e = Weighted::new(vec![(-1.0, Box::new(Variance) as Box<dyn BatchObjective>)]).err().unwrap().to_string();
    assert!(e.contains("weights must be finite and ≥ 0"), "{e}");
}
