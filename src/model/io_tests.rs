use std::collections::BTreeMap;
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
        activation: Some(Activation::Relu),
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
    let spec = TorchImport { activation: Some(Activation::Relu), raw_inputs: true, ..TorchImport::default() };
    let m = import_torch(&data_path("reference_mlp.safetensors"), &spec).unwrap();
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

/// A safetensors file of F32 tensors (zeros) with the given shapes and metadata.
fn craft(name: &str, shapes: &[(&str, &[usize])], meta: &[(&str, &str)]) -> PathBuf {
    let tensors =
        shapes.iter().map(|(n, s)| (n.to_string(), s.to_vec(), vec![0u8; 4 * s.iter().product::<usize>()])).collect();
    let meta: BTreeMap<String, String> = meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let p = tmp(name);
    std::fs::write(&p, serialize(tensors, &meta)).unwrap();
    p
}

fn relu() -> TorchImport {
    TorchImport { activation: Some(Activation::Relu), raw_inputs: true, ..TorchImport::default() }
}

#[test]
fn saving_twice_gives_identical_bytes() {
    let cfg = MlpConfig { feature_names: Some(vec!["a".into(), "b".into()]), ..MlpConfig::default() };
    let m = Mlp::new(&[2, 4, 1], cfg).unwrap();
    let (p, q) = (tmp("twice_a.safetensors"), tmp("twice_b.safetensors"));
    m.save(&p).unwrap();
    m.clone().save(&q).unwrap();
    let (a, b) = (std::fs::read(&p).unwrap(), std::fs::read(&q).unwrap());
    assert_eq!(a, b);
    // The header lists the metadata keys in sorted order, then the tensors sorted by name.
    let header = std::str::from_utf8(&a[8..8 + u64::from_le_bytes(a[..8].try_into().unwrap()) as usize]).unwrap();
    let keys =
        ["activation", "dropout", "feature_names", "format", "format_version", "layers", "mean", "output", "std"];
    let at: Vec<usize> = keys.iter().map(|k| header.find(&format!("\"{k}\":")).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{header}");
    assert!(header.find("net.0.bias").unwrap() < header.find("net.0.weight").unwrap());
    assert_eq!(Mlp::load(&p).unwrap(), m);
}

#[test]
fn normalisation_and_convolution_tensors_are_refused_by_name() {
    // nn.Sequential(Linear(3, 4), BatchNorm1d(4), ReLU(), Linear(4, 1)): what PyTorch saves.
    let bn = craft(
        "bn.safetensors",
        &[
            ("net.0.weight", &[4, 3]),
            ("net.0.bias", &[4]),
            ("net.1.weight", &[4]),
            ("net.1.bias", &[4]),
            ("net.1.running_mean", &[4]),
            ("net.1.running_var", &[4]),
            ("net.1.num_batches_tracked", &[]),
            ("net.3.weight", &[1, 4]),
            ("net.3.bias", &[1]),
        ],
        &[],
    );
    let e = import_torch(&bn, &relu()).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "import_torch reads a stack of Linear layers only; these tensors are not Linear weight/bias pairs: \
             net.1.bias [4], net.1.num_batches_tracked [], net.1.running_mean [4], net.1.running_var [4], \
             net.1.weight [4] (normalisation layers, convolutions and other layers are not supported)"
        ),
        "{e}"
    );
    // A convolution's 4-D weight is not taken as a Linear layer either.
    let conv = craft(
        "conv.safetensors",
        &[("conv.weight", &[2, 1, 3, 3]), ("conv.bias", &[2]), ("fc.weight", &[1, 8]), ("fc.bias", &[1])],
        &[],
    );
    let e = import_torch(&conv, &relu()).unwrap_err().to_string();
    assert!(e.contains("not Linear weight/bias pairs: conv.bias [2], conv.weight [2, 1, 3, 3] ("), "{e}");
}

#[test]
fn activation_is_required_unless_the_file_records_it() {
    let e = import_torch(&data_path("reference_mlp.safetensors"), &TorchImport::default()).unwrap_err();
    assert_eq!(e.kind(), "bad_option");
    assert_eq!(
        e.to_string(),
        "import_torch: option 'activation' is needed: a PyTorch state dict does not record the hidden \
         activation; pass the one the model was trained with, e.g. #{ activation: \"relu\" }"
    );
    // A file nuisance saved records activation, output and standardization.
    let mut m = Mlp::new(
        &[2, 3, 2],
        MlpConfig { activation: Activation::Tanh, output: Output::Softmax, ..MlpConfig::default() },
    )
    .unwrap();
    m.set_standardization(vec![1.0, 2.0], vec![3.0, 4.0]).unwrap();
    let p = tmp("ours.safetensors");
    m.save(&p).unwrap();
    let (back, warnings) = import_torch_with_warnings(&p, &TorchImport::default()).unwrap();
    assert_eq!((back.activation(), back.output()), (Activation::Tanh, Output::Softmax));
    assert_eq!((back.mean(), back.std()), (&[1.0f32, 2.0][..], &[3.0f32, 4.0][..]));
    assert!(warnings.is_empty(), "{warnings:?}");
    // No hidden layer: nothing to ask.
    let lin = craft("linear.safetensors", &[("fc.weight", &[1, 3]), ("fc.bias", &[1])], &[]);
    assert!(import_torch(&lin, &TorchImport::default()).is_ok());
}

#[test]
fn missing_standardization_is_warned_about() {
    let p = data_path("reference_mlp.safetensors");
    let spec = TorchImport { activation: Some(Activation::Relu), ..TorchImport::default() };
    let (_, w) = import_torch_with_warnings(&p, &spec).unwrap();
    assert_eq!(w.len(), 1);
    assert!(w[0].starts_with("import_torch: no standardization given for '"), "{}", w[0]);
    let (_, w) = import_torch_with_warnings(&p, &TorchImport { raw_inputs: true, ..spec.clone() }).unwrap();
    assert!(w.is_empty());
    let given = TorchImport { mean: Some(vec![0.5; 20]), std: Some(vec![2.0; 20]), ..spec };
    let (m, w) = import_torch_with_warnings(&p, &given).unwrap();
    assert!(w.is_empty());
    assert_eq!(m.mean(), &[0.5f32; 20][..]);
}

#[test]
fn crafted_layer_lists_and_shapes_are_refused_before_allocating() {
    let meta = |layers: &str| {
        vec![
            ("format", FORMAT_NAME),
            ("format_version", "1"),
            ("activation", "relu"),
            ("output", "sigmoid"),
            ("dropout", "0e0"),
            ("mean", "[0e0]"),
            ("std", "[1e0]"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([("layers".to_string(), layers.to_string())])
        .collect::<Vec<_>>()
    };
    let shapes: &[(&str, &[usize])] = &[("net.0.weight", &[1, 1]), ("net.0.bias", &[1])];
    for (layers, want) in [
        // 10⁵ × 10⁵ weights (40 GB) from a file of a few hundred bytes
        ("[100000, 100000, 1]", "needs more weights than the file's"),
        ("[18446744073709551615, 2]", "needs more weights than the file's"),
        ("[1]", "must list 2 to 10000 positive widths, got 1 widths"),
        ("[3, 0, 1]", "must list 2 to 10000 positive widths"),
    ] {
        let m = meta(layers);
        let kv: Vec<(&str, &str)> = m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let p = craft("layers.safetensors", shapes, &kv);
        let e = Mlp::load(&p).unwrap_err();
        assert_eq!(e.kind(), "format");
        assert!(e.to_string().contains(want), "{layers}: {e}");
    }
    // A header claiming a 2^62 × 4 tensor in a file of 8 data bytes: the safetensors parser
    // refuses it (the element count overflows / does not match the offsets).
    let mut h = String::from(
        "{\"net.0.weight\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,4]},\
         \"net.0.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
    );
    while h.len() % 8 != 0 {
        h.push(' ');
    }
    let bytes = [(h.len() as u64).to_le_bytes().to_vec(), h.into_bytes(), vec![0u8; 8]].concat();
    let p = tmp("shape_big.safetensors");
    std::fs::write(&p, bytes).unwrap();
    let e = import_torch(&p, &relu()).unwrap_err();
    assert_eq!(e.kind(), "format");
    assert!(e.to_string().contains("not a safetensors file"), "{e}");
}
