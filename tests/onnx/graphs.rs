//! ONNX graphs built here with candle-onnx's protobuf types, converted, and compared with its
//! interpreter (`simple_eval`) on the same inputs; and every refusal, with its message.
//! (Integration tests rather than unit tests, so that CI builds only the library and this one
//! test binary with the feature.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_onnx::onnx::attribute_proto::AttributeType;
use candle_onnx::onnx::tensor_shape_proto::{dimension, Dimension};
use candle_onnx::onnx::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};
use ndarray::Array2;
use prost::Message as _;
use rand::Rng as _;

use nuisance::error::Result;
use nuisance::model::{import_onnx, Activation, Mlp, OnnxImport, Output};

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("nuisance_onnx_{}_{name}", std::process::id()))
}

fn tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..TensorProto::default()
    }
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i, ..AttributeProto::default() }
}

fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Float as i32, f, ..AttributeProto::default() }
}

fn string(name: &str, s: &str) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::String as i32, s: s.into(), ..AttributeProto::default() }
}

fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        name: format!("{op}_{output}"),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..NodeProto::default()
    }
}

fn value(name: &str, width: Option<i64>) -> ValueInfoProto {
    let dim = |v: dimension::Value| Dimension { value: Some(v), ..Dimension::default() };
    let mut dims = vec![dim(dimension::Value::DimParam("n".into()))];
    dims.extend(width.map(|w| dim(dimension::Value::DimValue(w))));
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: 1,
                shape: Some(TensorShapeProto { dim: dims }),
            })),
            ..TypeProto::default()
        }),
        ..ValueInfoProto::default()
    }
}

fn model(nodes: Vec<NodeProto>, initializer: Vec<TensorProto>, d: i64, out: &str) -> ModelProto {
    ModelProto {
        ir_version: 9,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 20 }],
        graph: Some(GraphProto {
            name: "test".into(),
            node: nodes,
            initializer,
            input: vec![value("x", Some(d))],
            output: vec![value(out, None)],
            ..GraphProto::default()
        }),
        ..ModelProto::default()
    }
}

/// Values in (−1, 1) from a seed.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut r = nuisance::rng::rng(seed);
    (0..n).map(|_| r.random_range(-1.0f32..1.0)).collect()
}

fn write(name: &str, m: &ModelProto) -> PathBuf {
    let p = tmp(name);
    std::fs::write(&p, m.encode_to_vec()).unwrap();
    p
}

fn import(name: &str, m: &ModelProto, spec: &OnnxImport) -> Result<Mlp> {
    let p = write(name, m);
    let r = import_onnx(&p, spec);
    std::fs::remove_file(&p).unwrap();
    r
}

fn import_err(name: &str, m: &ModelProto) -> String {
    let e = import(name, m, &OnnxImport::default()).unwrap_err();
    assert_eq!(e.kind(), "format", "{e}");
    e.to_string()
}

/// candle-onnx's interpreter on `x`, the one output.
fn simple_eval(m: &ModelProto, x: &Array2<f32>) -> Array2<f32> {
    let t = candle_core::Tensor::from_slice(x.as_slice().unwrap(), x.dim(), &candle_core::Device::Cpu).unwrap();
    let graph = m.graph.as_ref().unwrap();
    let out = candle_onnx::simple_eval(m, HashMap::from([(graph.input[0].name.clone(), t)])).unwrap();
    let y = &out[&graph.output[0].name];
    let (r, c) = y.dims2().unwrap();
    Array2::from_shape_vec((r, c), y.flatten_all().unwrap().to_vec1::<f32>().unwrap()).unwrap()
}

/// The native model's output on 33 random events equals the interpreter's: scores when the
/// graph ends in Sigmoid/Softmax (`scores`), logits otherwise.
fn assert_same_as_interpreter(m: &ModelProto, mlp: &Mlp, scores: bool) {
    let d = mlp.n_inputs();
    let x = Array2::from_shape_vec((33, d), values(33 * d, 9).iter().map(|v| 3.0 * v).collect()).unwrap();
    let want = simple_eval(m, &x);
    let got = if scores { mlp.scores(x.view()).unwrap() } else { mlp.forward_logits(x.view()).unwrap() };
    assert_eq!(got.dim(), want.dim());
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }
}

/// 3 → 4 → 2 as Gemm(transB = 1) · act · Gemm(transB = 1), logits out.
fn gemm_mlp(act: Vec<NodeProto>, final_op: Option<&str>) -> ModelProto {
    let mut nodes = vec![node("Gemm", &["x", "w0", "b0"], "h0", vec![int("transB", 1)])];
    let mut cur = "h0".to_string();
    for (k, mut a) in act.into_iter().enumerate() {
        if a.input.is_empty() {
            a.input = vec![cur.clone()];
        }
        cur = format!("a{k}");
        a.output = vec![cur.clone()];
        nodes.push(a);
    }
    nodes.push(node("Gemm", &[&cur, "w1", "b1"], "z", vec![int("transB", 1)]));
    let mut out = "z".to_string();
    if let Some(op) = final_op {
        nodes.push(node(op, &["z"], "p", vec![]));
        out = "p".into();
    }
    let init = vec![
        tensor("w0", &[4, 3], &values(12, 1)),
        tensor("b0", &[4], &values(4, 2)),
        tensor("w1", &[2, 4], &values(8, 3)),
        tensor("b1", &[2], &values(2, 4)),
    ];
    model(nodes, init, 3, &out)
}

fn unary(op: &str, attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto { name: format!("my_{op}"), op_type: op.into(), attribute: attrs, ..NodeProto::default() }
}

#[test]
fn every_activation_matches_the_interpreter() {
    let cases = [
        (unary("Relu", vec![]), Activation::Relu),
        (unary("Tanh", vec![]), Activation::Tanh),
        (unary("Gelu", vec![]), Activation::Gelu),
        (unary("Gelu", vec![string("approximate", "none")]), Activation::Gelu),
        (unary("LeakyRelu", vec![]), Activation::LeakyRelu),
        (unary("LeakyRelu", vec![float("alpha", 0.01)]), Activation::LeakyRelu),
    ];
    for (act, want) in cases {
        let m = gemm_mlp(vec![act], Some("Softmax"));
        let mlp = import("act.onnx", &m, &OnnxImport::default()).unwrap();
        assert_eq!((mlp.activation(), mlp.output(), mlp.layers()), (want, Output::Softmax, &[3, 4, 2][..]));
        assert_same_as_interpreter(&m, &mlp, true);
    }
}

#[test]
fn silu_exported_as_sigmoid_times_input_is_recognised() {
    let sig = unary("Sigmoid", vec![]);
    let mul = NodeProto { input: vec!["h0".into(), "a0".into()], ..unary("Mul", vec![]) };
    let m = gemm_mlp(vec![sig, mul], None);
    let mlp = import("silu.onnx", &m, &OnnxImport { output: Some(Output::Linear), ..OnnxImport::default() }).unwrap();
    assert_eq!(mlp.activation(), Activation::Silu);
    assert_same_as_interpreter(&m, &mlp, false);
}

#[test]
fn matmul_add_and_gemm_attributes_are_folded_exactly() {
    // MatMul (in × out) + Add with the bias first, Tanh, Dropout and Identity (no-ops), then
    // Gemm with transB = 0, alpha, beta, a [1, out] bias from a Constant node, Sigmoid.
    let c = NodeProto {
        name: "bias_const".into(),
        op_type: "Constant".into(),
        output: vec!["b1".into()],
        attribute: vec![AttributeProto {
            name: "value".into(),
            r#type: AttributeType::Tensor as i32,
            t: Some(tensor("", &[1, 1], &[0.25])),
            ..AttributeProto::default()
        }],
        ..NodeProto::default()
    };
    let nodes = vec![
        node("MatMul", &["x", "w0"], "m0", vec![]),
        node("Add", &["b0", "m0"], "h0", vec![]),
        node("Tanh", &["h0"], "a0", vec![]),
        node("Dropout", &["a0"], "d0", vec![]),
        c,
        node("Identity", &["d0"], "i0", vec![]),
        node("Gemm", &["i0", "w1", "b1"], "z", vec![int("transB", 0), float("alpha", 0.5), float("beta", 2.0)]),
        node("Sigmoid", &["z"], "p", vec![]),
    ];
    let init = vec![
        tensor("w0", &[3, 5], &values(15, 5)),
        tensor("b0", &[5], &values(5, 6)),
        tensor("w1", &[5, 1], &values(5, 7)),
    ];
    let m = model(nodes, init, 3, "p");
    let mlp = import("matmul.onnx", &m, &OnnxImport::default()).unwrap();
    assert_eq!((mlp.layers(), mlp.activation(), mlp.output()), (&[3, 5, 1][..], Activation::Tanh, Output::Sigmoid));
    assert_same_as_interpreter(&m, &mlp, true);
    // Parameters in PyTorch order: w0 transposed, b0, 0.5·w1 (transposed), 2·0.25.
    let p = mlp.params_flat();
    let w0 = values(15, 5);
    assert_eq!(p[1], w0[5], "row 0 of the out × in weight is column 0 of the in × out one");
    assert_eq!(p[p.len() - 1], 0.5);
    assert_eq!(p[p.len() - 2], 0.5 * values(5, 7)[4]);
}

#[test]
fn float64_weights_and_float_data_are_read() {
    let mut m = gemm_mlp(vec![unary("Relu", vec![])], None);
    let g = m.graph.as_mut().unwrap();
    let w0 = values(12, 1);
    g.initializer[0] = TensorProto {
        name: "w0".into(),
        dims: vec![4, 3],
        data_type: 11,
        double_data: w0.iter().map(|&v| f64::from(v)).collect(),
        ..TensorProto::default()
    };
    g.initializer[1] = TensorProto {
        name: "b0".into(),
        dims: vec![4],
        data_type: 1,
        float_data: values(4, 2),
        ..TensorProto::default()
    };
    let mlp = import("f64.onnx", &m, &OnnxImport::default()).unwrap();
    assert_eq!(mlp.output(), Output::Softmax, "two logits and no output op: softmax by default");
    assert_eq!(&mlp.params_flat()[..16], &[w0, values(4, 2)].concat()[..]);
}

#[test]
fn options_apply_and_are_checked() {
    let m = gemm_mlp(vec![unary("Relu", vec![])], Some("Softmax"));
    let spec = OnnxImport {
        layers: Some(vec![3, 4, 2]),
        output: Some(Output::Softmax),
        feature_names: Some(vec!["a".into(), "b".into(), "c".into()]),
        mean: Some(vec![1.0, 2.0, 3.0]),
        std: Some(vec![2.0, 2.0, 2.0]),
    };
    let mlp = import("opts.onnx", &m, &spec).unwrap();
    assert_eq!(mlp.feature_names().unwrap(), &["a", "b", "c"]);
    assert_eq!((mlp.mean(), mlp.std()), (&[1.0, 2.0, 3.0][..], &[2.0, 2.0, 2.0][..]));
    let e = import("opts.onnx", &m, &OnnxImport { layers: Some(vec![3, 8, 2]), ..OnnxImport::default() });
    assert!(e
        .unwrap_err()
        .to_string()
        .ends_with("layers [3, 8, 2] were requested but the ONNX graph has widths [3, 4, 2]"));
    let e = import("opts.onnx", &m, &OnnxImport { output: Some(Output::Linear), ..OnnxImport::default() });
    let e = e.unwrap_err().to_string();
    assert!(
        e.ends_with(
            "output 'linear' was requested but the graph ends with node 3 'Softmax_p' (Softmax), a softmax output"
        ),
        "{e}"
    );
    let e = import("opts.onnx", &m, &OnnxImport { mean: Some(vec![0.0]), ..OnnxImport::default() });
    assert_eq!(e.unwrap_err().kind(), "shape");
}

#[test]
fn non_mlp_graphs_are_refused_naming_the_node_and_op() {
    let relu = || unary("Relu", vec![]);
    let cases: Vec<(ModelProto, &str)> = vec![
        (gemm_mlp(vec![unary("Conv", vec![])], None), "node 1 'my_Conv' (Conv): unsupported op 'Conv'; a plain MLP has only Gemm,"),
        (gemm_mlp(vec![relu(), relu()], None), "node 2 'my_Relu' (Relu) follows the activation node 1 'my_Relu' (Relu): two activations in a row"),
        (gemm_mlp(vec![], None), "node 1 'Gemm_z' (Gemm) follows node 0 'Gemm_h0' (Gemm) with no activation between them"),
        (gemm_mlp(vec![unary("Sigmoid", vec![])], None), "node 1 'my_Sigmoid' (Sigmoid): sigmoid is only supported as the output, right after the last linear layer, but node 2 'Gemm_z' (Gemm) follows it; hidden activations: relu, tanh"),
        (gemm_mlp(vec![unary("Gelu", vec![string("approximate", "tanh")])], None), "node 1 'my_Gelu' (Gelu): Gelu with approximate = 'tanh' is not supported"),
        (gemm_mlp(vec![unary("LeakyRelu", vec![float("alpha", 0.2)])], None), "LeakyRelu slope 0.2 is not supported (only 0.01, PyTorch's default)"),
        (gemm_mlp(vec![relu()], Some("Relu")), "node 3 'Relu_p' (Relu) comes after the last linear layer; only Sigmoid or Softmax (or nothing) may follow it"),
        (gemm_mlp(vec![relu()], Some("Tanh")), "comes after the last linear layer"),
    ];
    for (m, want) in cases {
        let e = import_err("bad.onnx", &m);
        assert!(e.contains(want), "{e}\nwanted: {want}");
    }
    // Mixed activations.
    let mut m = gemm_mlp(vec![relu()], None);
    let g = m.graph.as_mut().unwrap();
    g.node.insert(2, node("Tanh", &["h1"], "a1", vec![]));
    g.node.insert(2, node("Gemm", &["a0", "w2", "b2"], "h1", vec![int("transB", 1)]));
    g.node[4].input[0] = "a1".into();
    g.initializer.push(tensor("w2", &[4, 4], &values(16, 8)));
    g.initializer.push(tensor("b2", &[4], &values(4, 9)));
    let e = import_err("mixed.onnx", &m);
    assert!(e.contains("node 3 'Tanh_a1' (Tanh) applies tanh but node 1 'my_Relu' (Relu) applies relu"), "{e}");
    // A skip connection: the last layer reads the first layer's output, not the activation's.
    let mut m = gemm_mlp(vec![relu()], None);
    m.graph.as_mut().unwrap().node[2].input[0] = "h0".into();
    let e = import_err("skip.onnx", &m);
    assert!(e.contains("node 2 'Gemm_z' (Gemm) does not take the previous layer's output 'a0' as its input"), "{e}");
}

#[test]
fn bad_weights_and_attributes_are_refused() {
    let edit = |f: &dyn Fn(&mut GraphProto)| {
        let mut m = gemm_mlp(vec![unary("Relu", vec![])], None);
        f(m.graph.as_mut().unwrap());
        import_err("w.onnx", &m)
    };
    let e = edit(&|g| g.node[0].attribute.push(int("transA", 1)));
    assert!(e.contains("node 0 'Gemm_h0' (Gemm): Gemm with transA = 1 is not supported"), "{e}");
    let e = edit(&|g| g.node[0].attribute[0] = float("transB", 1.0));
    assert!(e.contains("attribute 'transB' is not an integer"), "{e}");
    let e = edit(&|g| g.initializer[0].raw_data.truncate(10));
    assert!(e.contains("tensor 'w0' has shape [4, 3] (12 values) but holds 2 values"), "{e}");
    let e = edit(&|g| g.initializer[0].dims = vec![4, -3]);
    assert!(e.contains("tensor 'w0' has dimension -3"), "{e}");
    let e = edit(&|g| g.initializer[0].dims = vec![i64::MAX, i64::MAX]);
    assert!(e.contains("too large"), "{e}");
    let e = edit(&|g| g.initializer[0].data_type = 7);
    assert!(e.contains("tensor 'w0' has element type int64; only float32 and float64 weights are supported"), "{e}");
    let e = edit(&|g| g.initializer[0].data_location = 1);
    assert!(e.contains("stored in an external data file"), "{e}");
    let e = edit(&|g| g.initializer[1] = tensor("b0", &[4], &[0.0, f32::NAN, 0.0, 0.0]));
    assert!(e.contains("tensor 'b0' holds NaN at index 1"), "{e}");
    let e = edit(&|g| g.initializer[1] = tensor("b0", &[3], &[0.0; 3]));
    assert!(e.contains("bias 'b0' has shape [3], expected [4]"), "{e}");
    let e = edit(&|g| g.initializer[2] = tensor("w1", &[2, 5], &[0.0; 10]));
    assert!(e.contains("node 2 'Gemm_z' (Gemm) takes 5 inputs but node 0 'Gemm_h0' (Gemm) gives 4 outputs"), "{e}");
    let e = edit(&|g| {
        g.initializer.remove(0);
    });
    assert!(e.contains("node 0 'Gemm_h0' (Gemm): 'w0' is not a constant (initializer)"), "{e}");
    let e = edit(&|g| g.input[0] = value("x", Some(7)));
    assert!(e.contains("input 'x' declares 7 features but node 0 'Gemm_h0' (Gemm) takes 3"), "{e}");
    let e = edit(&|g| g.input.push(value("y", Some(3))));
    assert!(e.contains("the graph has 2 inputs (x, y); an MLP has exactly one"), "{e}");
    let e = edit(&|g| g.output[0].name = "h0".into());
    assert!(e.contains("the graph output 'h0' is not the end of the chain of layers ('z')"), "{e}");
    let e = edit(&|g| g.node[1].domain = "com.microsoft".into());
    assert!(e.contains("node 1 'my_Relu' (Relu): unsupported op from domain 'com.microsoft'"), "{e}");
    let e = edit(&|g| g.node.clear());
    assert!(e.ends_with("the ONNX graph has no nodes"), "{e}");
}

#[test]
fn files_that_are_not_onnx_models_are_refused() {
    let e = import_onnx(Path::new("/nonexistent/model.onnx"), &OnnxImport::default()).unwrap_err();
    assert_eq!(e.kind(), "io");
    let p = tmp("garbage.onnx");
    std::fs::write(&p, b"\xff\xff\xff\xff certainly not protobuf").unwrap();
    let e = import_onnx(&p, &OnnxImport::default()).unwrap_err().to_string();
    assert!(e.contains("not an ONNX model (protobuf decoding failed"), "{e}");
    std::fs::write(&p, b"").unwrap();
    let e = import_onnx(&p, &OnnxImport::default()).unwrap_err().to_string();
    assert!(e.ends_with("not an ONNX model: it has no graph"), "{e}");
    std::fs::remove_file(&p).unwrap();
}
