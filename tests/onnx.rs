#![cfg(feature = "onnx")]
//! ONNX import (cargo feature `onnx`): `cargo test --release --features onnx --test onnx`.
//! Graphs built in the test, edge case by edge case: `onnx/graphs.rs`.
//!
//! The PyTorch-exported reference model reproduces PyTorch's scores and equals the
//! `import_torch` model; the native model agrees with candle-onnx's interpreter and with the
//! `onnx` package's reference evaluator; non-MLP, corrupted and missing files give clear errors.

mod common;
#[path = "onnx/graphs.rs"]
mod graphs;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use nuisance::model::{import_onnx, import_torch, Activation, Mlp, OnnxImport, Output, TorchImport};

fn data(name: &str) -> PathBuf {
    common::root().join("tests/data").join(name)
}

/// The first 2,000 reference test events and PyTorch's logits and scores
/// (tests/data/reference_subset.f32, written by scripts/make_reference_subset.py).
fn reference_subset() -> (Array2<f32>, Vec<f32>, Vec<f32>) {
    let bytes = std::fs::read(data("reference_subset.f32")).unwrap();
    let v: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let t = Array2::from_shape_vec((2000, 24), v).unwrap();
    (t.slice(ndarray::s![.., ..20]).to_owned(), t.column(21).to_vec(), t.column(22).to_vec())
}

/// candle-onnx's interpreter (`simple_eval`) on `x`: the graph's one output.
fn simple_eval(path: &Path, x: &Array2<f32>) -> Array2<f32> {
    let model = candle_onnx::read_file(path).unwrap();
    let graph = model.graph.as_ref().unwrap();
    let t = candle_core::Tensor::from_slice(x.as_slice().unwrap(), x.dim(), &candle_core::Device::Cpu).unwrap();
    let out = candle_onnx::simple_eval(&model, HashMap::from([(graph.input[0].name.clone(), t)])).unwrap();
    let y = &out[&graph.output[0].name];
    let (r, c) = y.dims2().unwrap();
    Array2::from_shape_vec((r, c), y.flatten_all().unwrap().to_vec1::<f32>().unwrap()).unwrap()
}

fn assert_close(got: &Array2<f32>, want: &Array2<f32>, tol: f32) {
    assert_eq!(got.dim(), want.dim());
    for ((i, a), b) in got.indexed_iter().zip(want) {
        assert!((a - b).abs() <= tol * b.abs().max(1.0), "{i:?}: {a} vs {b}");
    }
}

fn reference() -> Mlp {
    import_onnx(&data("reference_mlp.onnx"), &OnnxImport::default()).unwrap()
}

#[test]
fn reference_onnx_reproduces_pytorch_and_equals_import_torch() {
    let m = reference();
    assert_eq!((m.layers(), m.activation(), m.output()), (&[20, 64, 64, 64, 1][..], Activation::Relu, Output::Sigmoid));
    assert_eq!(m.n_params(), 9729);
    let (x, logit, score) = reference_subset();
    let z = m.forward_logits(x.view()).unwrap();
    let s = m.scores(x.view()).unwrap();
    for i in 0..2000 {
        assert!(
            (z[[i, 0]] - logit[i]).abs() <= 1e-5 * logit[i].abs().max(1.0),
            "event {i}: {} vs {}",
            z[[i, 0]],
            logit[i]
        );
        assert!((s[[i, 0]] - score[i]).abs() <= 1e-5, "event {i}: score {} vs {}", s[[i, 0]], score[i]);
    }
    // Gemm with transB = 1 stores torch.nn.Linear's out × in weights: the same f32 values as
    // the state dict, so the two imports are the same model, bit for bit.
    let spec = TorchImport { activation: Some(Activation::Relu), raw_inputs: true, ..TorchImport::default() };
    let t = import_torch(&data("reference_mlp.safetensors"), &spec).unwrap();
    assert_eq!(m, t);
    assert_eq!(s, t.scores(x.view()).unwrap());
}

#[test]
fn native_model_agrees_with_candle_onnx_simple_eval() {
    let (x, _, _) = reference_subset();
    let want = simple_eval(&data("reference_mlp.onnx"), &x);
    assert_close(&reference().scores(x.view()).unwrap(), &want, 1e-6);
}

#[test]
fn onnx_package_reference_outputs_are_reproduced() {
    // MatMul + Add, Tanh, Gemm (transB = 0, alpha 0.5, beta 2), Softmax; written by the onnx
    // package, with onnx.reference's outputs in its metadata (scripts/make_onnx_fixtures.py).
    let path = data("onnx_matmul_tanh_softmax.onnx");
    let proto = candle_onnx::read_file(&path).unwrap();
    let meta = proto.metadata_props.iter().find(|p| p.key == "nuisance_test").unwrap();
    let v: serde_json::Value = serde_json::from_str(&meta.value).unwrap();
    let rows = |k: &str| -> Array2<f32> {
        let r: Vec<Vec<f32>> = serde_json::from_value(v[k].clone()).unwrap();
        Array2::from_shape_vec((r.len(), r[0].len()), r.concat()).unwrap()
    };
    let (x, y) = (rows("x"), rows("y"));
    let m = import_onnx(&path, &OnnxImport::default()).unwrap();
    assert_eq!((m.layers(), m.activation(), m.output()), (&[4, 6, 3][..], Activation::Tanh, Output::Softmax));
    assert_close(&m.scores(x.view()).unwrap(), &y, 1e-6);
    assert_close(&simple_eval(&path, &x), &y, 1e-6);
}

#[test]
fn non_mlp_corrupted_and_missing_files_are_refused_clearly() {
    let err = |p: &Path| import_onnx(p, &OnnxImport::default()).unwrap_err();
    let e = err(&data("onnx_skip.onnx"));
    assert_eq!(e.kind(), "format");
    assert!(
        e.to_string().ends_with(
            "node 3 'residual/Add' (Add) adds two computed tensors ('h1' and 'x'): skip connections are not \
             supported; only a constant bias may be added"
        ),
        "{e}"
    );
    let e = err(&data("onnx_layernorm.onnx")).to_string();
    assert!(
        e.contains("node 1 'norm0/LayerNormalization' (LayerNormalization): unsupported op 'LayerNormalization'; a plain MLP has only Gemm, MatMul"),
        "{e}"
    );
    // A truncated copy of the reference file.
    let bytes = std::fs::read(data("reference_mlp.onnx")).unwrap();
    let cut = std::env::temp_dir().join(format!("nuisance_onnx_truncated_{}.onnx", std::process::id()));
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = err(&cut);
    std::fs::remove_file(&cut).unwrap();
    assert_eq!(e.kind(), "format");
    assert!(e.to_string().contains("not an ONNX model (protobuf decoding failed"), "{e}");
    // Another format altogether.
    let e = err(&data("reference_mlp.safetensors"));
    assert_eq!(e.kind(), "format", "{e}");
    assert!(e.to_string().contains("not an ONNX model"), "{e}");
    let e = err(&data("no_such_model.onnx"));
    assert_eq!(e.kind(), "io");
    assert!(e.to_string().contains("no_such_model.onnx"), "{e}");
}

#[test]
fn import_onnx_from_a_script() {
    let out = common::run(
        r#"
        let d = dataset("gaussians", #{ n: 500, seed: 4 });
        let mean = d.features.map(|f| 0.5);
        let std = d.features.map(|f| 2.0);
        let m = import_onnx("tests/data/reference_mlp.onnx", #{ features: d.features, mean: mean, std: std });
        let t = import_torch("tests/data/reference_mlp.safetensors", #{ features: d.features, mean: mean, std: std, activation: "relu" });
        assert_eq(m.scores(d), t.scores(d));
        print(m);
        print(import_onnx("tests/data/onnx_matmul_tanh_softmax.onnx").layers);
        try { import_onnx("tests/data/onnx_skip.onnx") } catch (e) { print(e.kind) }
        try { import_onnx("/nonexistent/model.onnx") } catch (e) { print(e.kind) }
        try { import_onnx("tests/data/reference_mlp.onnx", #{ outptu: "sigmoid" }) } catch (e) { print(e.hint) }
        try { import_onnx("tests/data/reference_mlp.onnx", #{ output: "softmax" }) } catch (e) { print(e.message) }
        "#,
    )
    .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Mlp(20→64→64→64→1, relu, sigmoid, 9729 params)");
    assert_eq!(lines[1], "[4, 6, 3]");
    assert_eq!(lines[2], "format");
    assert_eq!(lines[3], "sandbox");
    assert!(lines[4].starts_with("did you mean 'output'?"), "{}", lines[4]);
    assert!(
        lines[5].ends_with(
            "output 'softmax' was requested but the graph ends with node 7 '/Sigmoid' (Sigmoid), a sigmoid output"
        ),
        "{}",
        lines[5]
    );
}
