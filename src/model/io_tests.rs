use std::path::PathBuf;

use ndarray::Array2;
use rand::Rng as _;

use super::*;
use crate::model::{GradTarget, Targets};

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("nuisance_model_io_{}_{name}", std::process::id()))
}

fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

#[test]
fn save_then_load_is_bit_identical() {
    let cfg = MlpConfig {
        activation: Activation::Gelu,
        output: Output::Softmax,
        dropout: 0.1,
        seed: 5,
        feature_names: Some(vec!["pt".into(), "eta \"quoted\"".into(), "φ".into()]),
    };
    let mut m = Mlp::new(&[3, 7, 3], cfg).unwrap();
    // Awkward f32 values: not exactly decimal, tiny, huge, subnormal.
    m.set_standardization(vec![0.1, -1e-30, 3.0e38], vec![1.0 / 3.0, 1e-45, 7.7e-3]).unwrap();
    let p = tmp("roundtrip.safetensors");
    m.save(&p).unwrap();
    let back = Mlp::load(&p).unwrap();
    assert_eq!(back, m, "every field, including params, mean and std, round-trips exactly");
    let mut r = crate::rng::rng(1);
    let x = Array2::from_shape_fn((50, 3), |(_, j)| m.mean()[j] + m.std()[j] * r.random_range(-2.0f32..2.0));
    let (a, b) = (m.scores(x.view()).unwrap(), back.scores(x.view()).unwrap());
    assert!(a.iter().zip(&b).all(|(u, v)| u.to_bits() == v.to_bits()));
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn saved_files_use_pytorch_names_and_layout() {
    let m = Mlp::new(&[2, 3, 1], MlpConfig::default()).unwrap();
    let p = tmp("names.safetensors");
    m.save(&p).unwrap();
    // Importing our own file as a PyTorch state dict gives the same parameters.
    let imported = import_torch(&p, &TorchImport::default()).unwrap();
    assert_eq!(imported.params_flat(), m.params_flat());
    let data = std::fs::read(&p).unwrap();
    let st = SafeTensors::deserialize(&data).unwrap();
    assert_eq!(st.tensor("net.0.weight").unwrap().shape(), &[3, 2]);
    assert_eq!(st.tensor("net.2.bias").unwrap().shape(), &[1]);
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn load_errors_name_the_problem() {
    let e = Mlp::load(&tmp("does_not_exist.safetensors")).unwrap_err();
    assert_eq!(e.kind(), "io");
    let garbage = tmp("garbage.safetensors");
    std::fs::write(&garbage, b"certainly not a safetensors file").unwrap();
    let e = Mlp::load(&garbage).unwrap_err().to_string();
    assert!(e.contains("not a safetensors file"), "{e}");
    // A PyTorch file has no nuisance metadata.
    let e = Mlp::load(&data_path("reference_mlp.safetensors")).unwrap_err().to_string();
    assert!(e.ends_with("metadata format is 'pt', expected 'nuisance-mlp'"), "{e}");
    // Missing tensor, named; wrong shape, both shapes named.
    let spec = TorchImport {
        tensor_names: Some(vec![
            ("net.0.weight".into(), "net.0.bias".into()),
            ("net.2.weight".into(), "net.3.bias".into()),
        ]),
        ..TorchImport::default()
    };
    let e = import_torch(&data_path("reference_mlp.safetensors"), &spec).unwrap_err().to_string();
    assert!(e.contains("missing tensor 'net.3.bias'; the file has: net.0.bias, net.0.weight, net.2.bias"), "{e}");
    let pair = |w: &str, b: &str| (w.to_string(), b.to_string());
    let spec = TorchImport {
        tensor_names: Some(vec![pair("net.0.weight", "net.6.bias")]),
        output: Some(Output::Linear),
        ..TorchImport::default()
    };
    let e = import_torch(&data_path("reference_mlp.safetensors"), &spec).unwrap_err().to_string();
    assert!(e.ends_with("tensor 'net.6.bias' has shape [1], expected [64]"), "{e}");
    // The second layer must take the first's 64 outputs, not 20 inputs.
    let spec = TorchImport {
        tensor_names: Some(vec![pair("net.0.weight", "net.0.bias"), pair("net.0.weight", "net.0.bias")]),
        output: Some(Output::Linear),
        ..TorchImport::default()
    };
    let e = import_torch(&data_path("reference_mlp.safetensors"), &spec).unwrap_err().to_string();
    assert!(e.ends_with("tensor 'net.0.weight' has shape [64, 20], expected [64, 64]"), "{e}");
    let spec = TorchImport { layers: Some(vec![20, 32, 1]), ..TorchImport::default() };
    let e = import_torch(&data_path("reference_mlp.safetensors"), &spec).unwrap_err().to_string();
    assert!(e.ends_with("layers [20, 32, 1] were requested but the weights have widths [20, 64, 64, 64, 1]"), "{e}");
    std::fs::remove_file(&garbage).unwrap();
}

/// The first 2,000 reference test events with PyTorch's logit, score and FGSM flip
/// (written by scripts/make_reference_subset.py; column 20, the label, is not needed).
struct Subset {
    x: Array2<f32>,
    logit: Vec<f32>,
    score: Vec<f32>,
    fgsm_flipped: Vec<bool>,
}

fn reference_subset() -> Subset {
    let bytes = std::fs::read(data_path("reference_subset.f32")).unwrap();
    let v: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let t = Array2::from_shape_vec((2000, 24), v).unwrap();
    Subset {
        x: t.slice(ndarray::s![.., ..20]).to_owned(),
        logit: t.column(21).to_vec(),
        score: t.column(22).to_vec(),
        fgsm_flipped: t.column(23).iter().map(|&v| v == 1.0).collect(),
    }
}

#[test]
fn imported_reference_model_reproduces_pytorch_outputs() {
    let m = import_torch(&data_path("reference_mlp.safetensors"), &TorchImport::default()).unwrap();
    assert_eq!(m.layers(), &[20, 64, 64, 64, 1]);
    assert_eq!(m.n_params(), 9729);
    let Subset { x, logit, score, fgsm_flipped } = reference_subset();
    let z = m.forward_logits(x.view()).unwrap();
    let s = m.scores(x.view()).unwrap();
    // Same f32 network, different summation order: logits agree to ~1e-6; 1e-5 is the brief.
    for i in 0..2000 {
        assert!(
            (z[[i, 0]] - logit[i]).abs() <= 1e-5 * logit[i].abs().max(1.0),
            "event {i}: {} vs {}",
            z[[i, 0]],
            logit[i]
        );
        assert!((s[[i, 0]] - score[i]).abs() <= 1e-6, "event {i} score");
    }
    // FGSM (ε = 0.1, BCE against the clean predicted class) flips the same events as PyTorch.
    let y = m.predict_class(x.view()).unwrap();
    let g = m.input_grad(x.view(), GradTarget::Loss(Targets::Labels(&y))).unwrap();
    let adv = &x + &g.mapv(|v| 0.1 * v.signum() * f32::from(u8::from(v != 0.0)));
    let y2 = m.predict_class(adv.view()).unwrap();
    let ours: Vec<bool> = y.iter().zip(&y2).map(|(a, b)| a != b).collect();
    assert_eq!(ours, fgsm_flipped);
}
