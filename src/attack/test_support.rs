//! Small models and data shared by the attack tests.

use ndarray::array;

use crate::data::synthetic::{gaussians_with, GaussiansConfig};
use crate::data::Dataset;
use crate::model::{train, Activation, Mlp, MlpConfig, Output, TrainConfig};
use crate::optim::Control;

use super::{FeatureSigma, UncertaintyModel};

/// The reference task with `d` features.
pub fn gaussians(n: usize, d: usize, seed: u64) -> Dataset {
    gaussians_with(&GaussiansConfig { n, d, seed, ..Default::default() }).unwrap()
}

/// A small tanh MLP trained a few epochs on [`gaussians`] (smooth, so finite differences and
/// line searches behave).
pub fn trained(d: usize, output: Output) -> (Mlp, Dataset) {
    let ds = gaussians(3000, d, 1);
    let width = if output == Output::Softmax { 2 } else { 1 };
    let cfg = MlpConfig { activation: Activation::Tanh, output, seed: 5, ..MlpConfig::default() };
    let m = Mlp::new(&[d, 16, 16, width], cfg).unwrap();
    let tc = TrainConfig { epochs: 3, batch_size: 64, seed: 2, ..TrainConfig::default() };
    let m = train(&m, &ds, &tc, &Control::quiet()).unwrap().model;
    (m.as_mlp().unwrap().clone(), ds)
}

/// σ = 0.25·(1 + i mod 4), the benchmark's uncertainty, over `ds`'s features.
pub fn bench_sigma(ds: &Dataset) -> UncertaintyModel {
    let specs = (0..ds.n_features()).map(|i| FeatureSigma::absolute(0.25 * (1 + i % 4) as f32)).collect();
    UncertaintyModel::new(ds.names().to_vec(), specs).unwrap()
}

/// A correlated model over `ds`'s first three features (the rest diagonal, the last frozen).
pub fn correlated(ds: &Dataset) -> UncertaintyModel {
    let d = ds.n_features();
    let mut specs: Vec<FeatureSigma> = (0..d).map(|i| FeatureSigma::absolute(0.2 + 0.1 * i as f32)).collect();
    specs[d - 1] = FeatureSigma::frozen();
    let mut rho = ndarray::Array2::<f64>::eye(d);
    let block = array![[1.0, 0.6, 0.3], [0.6, 1.0, -0.4], [0.3, -0.4, 1.0]];
    rho.slice_mut(ndarray::s![0..3, 0..3]).assign(&block);
    UncertaintyModel::new(ds.names().to_vec(), specs).unwrap().with_correlation(rho).unwrap()
}

/// A one-layer sigmoid model (logistic regression) with weights `w`, bias `b`, no scaling.
pub fn logistic(w: &[f32], b: f32) -> Mlp {
    let d = w.len();
    let cfg = MlpConfig { output: Output::Sigmoid, ..MlpConfig::default() };
    let mut m = Mlp::new(&[d, 1], cfg).unwrap();
    let mut flat = w.to_vec();
    flat.push(b);
    m.set_params_flat(&flat).unwrap();
    m
}
