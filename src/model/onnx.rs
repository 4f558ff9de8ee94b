//! Importing a dense MLP from an ONNX file (optional cargo feature `onnx`).
//!
//! The graph is walked once, in node order, and turned into a native [`Mlp`]: every attack then
//! runs on the fused forward/backward path, never on an ONNX interpreter. What is accepted is
//! a plain chain from the one graph input to the one graph output:
//!
//! - linear layers: `Gemm` (`transA = 0`; `transB` 0 or 1; `alpha` and `beta` folded into the
//!   weight and bias), or `MatMul` with an optional `Add` of a bias right after it (in either
//!   input order); weights and biases are initializers or `Constant` nodes, float32 or
//!   float64;
//! - one hidden activation, the same between every pair of linear layers: `Relu`, `Tanh`,
//!   `Gelu` (exact, `approximate = "none"`), `LeakyRelu` (`alpha = 0.01`, PyTorch's
//!   default), or `Sigmoid` followed by `Mul` with its input (SiLU, as PyTorch exports it);
//! - after the last linear layer, optionally `Sigmoid` (binary classifier) or `Softmax` over
//!   the last axis (multi-class); without one, the graph's output is the logit and the
//!   `output` option (default sigmoid for one output, softmax for more) says what it is;
//! - `Identity` and inference-mode `Dropout` anywhere (they do nothing).
//!
//! Anything else (another op, a branch, a second input, weights computed in the graph, weights
//! in an external file) is refused with an error naming the node and its op.
//!
//! Without the feature, [`import_onnx`] exists and returns [`Error::FeatureMissing`].
//!
//! Tests: `tests/onnx.rs` and `tests/onnx/graphs.rs` (`--features onnx`); the error without the
//! feature is tested here and in `tests/errors.rs`.

use std::path::Path;

use super::loss::Output;
use super::mlp::Mlp;
#[cfg(not(feature = "onnx"))]
use crate::error::Error;
use crate::error::Result;

/// Options of [`import_onnx`]: what the ONNX file does not record.
#[derive(Clone, Debug, Default)]
pub struct OnnxImport {
    /// Expected widths (inputs first); `None` accepts what the file has.
    pub layers: Option<Vec<usize>>,
    /// Output layer when the graph ends on the last linear layer (logits); `None`: sigmoid
    /// for one output, softmax for several. When the graph ends in `Sigmoid` or `Softmax`, it
    /// must agree with it.
    pub output: Option<Output>,
    /// Feature names of the inputs.
    pub feature_names: Option<Vec<String>>,
    /// Standardisation the model was trained with (identity when `None`).
    pub mean: Option<Vec<f32>>,
    /// Standardisation scale (ones when `None`).
    pub std: Option<Vec<f32>>,
}

/// Builds an [`Mlp`] from an ONNX file holding a dense MLP (see the module documentation for
/// what is accepted). The weights are read once; the model is native from then on.
#[cfg(feature = "onnx")]
pub fn import_onnx(path: &Path, spec: &OnnxImport) -> Result<Mlp> {
    let data = crate::io_guard::read_regular(path)?;
    let chain = graph::parse(path, &data)?;
    chain.into_mlp(path, spec)
}

/// Builds an [`Mlp`] from an ONNX file: this build has no `onnx` feature, so it always
/// returns [`Error::FeatureMissing`].
#[cfg(not(feature = "onnx"))]
pub fn import_onnx(_path: &Path, _spec: &OnnxImport) -> Result<Mlp> {
    Err(Error::FeatureMissing {
        what: "ONNX import",
        feature: "onnx",
        requires: "requires protoc, Debian package protobuf-compiler",
    })
}

#[cfg(feature = "onnx")]
mod graph {
    use std::collections::HashMap;
    use std::path::Path;

    use candle_onnx::onnx::attribute_proto::AttributeType;
    use candle_onnx::onnx::tensor_proto::{DataLocation, DataType};
    use candle_onnx::onnx::{type_proto, ModelProto, NodeProto, TensorProto};
    use prost::Message as _;

    use crate::error::{Error, Result};
    use crate::model::activation::{Activation, LEAKY_SLOPE};
    use crate::model::loss::Output;
    use crate::model::mlp::{Mlp, MlpConfig};

    use super::OnnxImport;

    /// The ops a plain MLP may contain, for error messages.
    const SUPPORTED: &str = "Gemm, MatMul, Add (bias), Relu, Tanh, Gelu, LeakyRelu, Sigmoid (+ Mul: SiLU), \
                             Softmax, Identity, Dropout, Constant";

    /// One linear layer in PyTorch's layout: weight out × in (row-major), bias.
    struct Linear {
        out: usize,
        inp: usize,
        weight: Vec<f32>,
        bias: Vec<f32>,
        node: String,
    }

    /// What the walk found, in graph order.
    enum Item {
        Linear(Linear),
        /// A hidden activation, with the node that applies it.
        Act(Activation, String),
        /// Sigmoid or softmax applied to logits, with the node.
        Final(Output, String),
    }

    /// The chain of a plain MLP, checked.
    pub(super) struct Chain {
        layers: Vec<Linear>,
        activation: Option<Activation>,
        final_output: Option<(Output, String)>,
    }

    fn describe(i: usize, node: &NodeProto) -> String {
        format!("node {i} '{}' ({})", node.name, node.op_type)
    }

    fn bad(path: &Path, message: impl Into<String>) -> Error {
        Error::format(path, message)
    }

    /// Decodes the file and walks its graph.
    pub(super) fn parse(path: &Path, data: &[u8]) -> Result<Chain> {
        let model = ModelProto::decode(data)
            .map_err(|e| bad(path, format!("not an ONNX model (protobuf decoding failed: {e})")))?;
        let graph = model.graph.as_ref().ok_or_else(|| bad(path, "not an ONNX model: it has no graph"))?;
        if graph.node.is_empty() {
            return Err(bad(path, "the ONNX graph has no nodes"));
        }
        let mut constants: HashMap<&str, &TensorProto> =
            graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect();

        // The one real input (older exporters also list the initializers as inputs).
        let inputs: Vec<_> = graph.input.iter().filter(|v| !constants.contains_key(v.name.as_str())).collect();
        let [input] = inputs.as_slice() else {
            let names: Vec<&str> = inputs.iter().map(|v| v.name.as_str()).collect();
            return Err(bad(
                path,
                format!("the graph has {} inputs ({}); an MLP has exactly one", names.len(), names.join(", ")),
            ));
        };
        let input_width = input_width(path, input)?;
        let [output] = graph.output.as_slice() else {
            let names: Vec<&str> = graph.output.iter().map(|v| v.name.as_str()).collect();
            return Err(bad(
                path,
                format!("the graph has {} outputs ({}); an MLP has exactly one", names.len(), names.join(", ")),
            ));
        };

        let mut items: Vec<Item> = Vec::new();
        let mut cur = input.name.clone();
        let mut i = 0;
        while i < graph.node.len() {
            let node = &graph.node[i];
            let desc = describe(i, node);
            if !(node.domain.is_empty() || node.domain == "ai.onnx") {
                return Err(bad(
                    path,
                    format!("{desc}: unsupported op from domain '{}'; a plain MLP has only {SUPPORTED}", node.domain),
                ));
            }
            let out: &str = match node.output.first() {
                Some(o) if !o.is_empty() => o,
                _ => return Err(bad(path, format!("{desc} has no output"))),
            };
            if node.op_type == "Constant" {
                let t = attr(node, "value").and_then(|a| a.t.as_ref()).ok_or_else(|| {
                    bad(path, format!("{desc}: only Constant nodes with a tensor 'value' are supported"))
                })?;
                constants.insert(out, t);
                i += 1;
                continue;
            }
            let first = node.input.first().map(String::as_str).unwrap_or("");
            let takes_cur = match node.op_type.as_str() {
                "Add" | "Mul" => node.input.contains(&cur),
                _ => first == cur,
            };
            if !takes_cur {
                return Err(bad(
                    path,
                    format!(
                        "{desc} does not take the previous layer's output '{cur}' as its input: \
                         not a plain chain of layers (branches and skip connections are not supported)"
                    ),
                ));
            }
            match node.op_type.as_str() {
                "Gemm" => items.push(Item::Linear(gemm(path, &desc, node, &constants)?)),
                "MatMul" => {
                    let b = input_n(path, &desc, node, 1)?;
                    let (dims, w) = constant(path, &desc, b, &constants)?;
                    let &[inp, out] = dims.as_slice() else {
                        return Err(bad(
                            path,
                            format!("{desc}: weight '{b}' has shape {dims:?}, expected 2-D (in × out)"),
                        ));
                    };
                    items.push(Item::Linear(Linear {
                        out,
                        inp,
                        weight: transpose(&w, inp, out),
                        bias: vec![0.0; out],
                        node: desc.clone(),
                    }));
                }
                "Add" => {
                    let other = node.input.iter().find(|n| **n != cur).ok_or_else(|| {
                        bad(path, format!("{desc} adds the layer output to itself; only a constant bias may be added"))
                    })?;
                    if !constants.contains_key(other.as_str()) {
                        return Err(bad(
                            path,
                            format!(
                                "{desc} adds two computed tensors ('{cur}' and '{other}'): skip connections are not \
                                 supported; only a constant bias may be added"
                            ),
                        ));
                    }
                    let Some(Item::Linear(lin)) = items.last_mut() else {
                        return Err(bad(path, format!("{desc}: an Add must follow a MatMul or Gemm (as its bias)")));
                    };
                    let (dims, b) = constant(path, &desc, other, &constants)?;
                    for (acc, v) in lin.bias.iter_mut().zip(broadcast_bias(path, &desc, other, &dims, b, lin.out)?) {
                        *acc += v;
                    }
                }
                "Relu" => items.push(Item::Act(Activation::Relu, desc.clone())),
                "Tanh" => items.push(Item::Act(Activation::Tanh, desc.clone())),
                "Gelu" => {
                    let approx = match attr(node, "approximate") {
                        None => "none".to_string(),
                        Some(a) => String::from_utf8_lossy(&a.s).into_owned(),
                    };
                    if approx != "none" {
                        return Err(bad(
                            path,
                            format!(
                                "{desc}: Gelu with approximate = '{approx}' is not supported (only the exact erf form)"
                            ),
                        ));
                    }
                    items.push(Item::Act(Activation::Gelu, desc.clone()));
                }
                "LeakyRelu" => {
                    let alpha = match attr(node, "alpha") {
                        None => LEAKY_SLOPE,
                        Some(a) => float_attr(path, &desc, a)?,
                    };
                    if alpha != LEAKY_SLOPE {
                        return Err(bad(
                            path,
                            format!("{desc}: LeakyRelu slope {alpha} is not supported (only {LEAKY_SLOPE}, PyTorch's default)"),
                        ));
                    }
                    items.push(Item::Act(Activation::LeakyRelu, desc.clone()));
                }
                "Sigmoid" => {
                    // x · sigmoid(x) is how PyTorch exports SiLU.
                    let silu = graph.node.get(i + 1).is_some_and(|m| {
                        m.op_type == "Mul"
                            && m.domain.is_empty()
                            && m.input.len() == 2
                            && cur != out
                            && m.input.contains(&cur)
                            && m.input.iter().any(|n| n == out)
                    });
                    if silu {
                        let mul = &graph.node[i + 1];
                        let mul_out = match mul.output.first() {
                            Some(o) if !o.is_empty() => o.clone(),
                            _ => return Err(bad(path, format!("{} has no output", describe(i + 1, mul)))),
                        };
                        items.push(Item::Act(Activation::Silu, desc.clone()));
                        cur = mul_out;
                        i += 2;
                        continue;
                    }
                    items.push(Item::Final(Output::Sigmoid, desc.clone()));
                }
                "Softmax" => {
                    let axis = match attr(node, "axis") {
                        None => -1,
                        Some(a) => int_attr(path, &desc, a)?,
                    };
                    if axis != -1 && axis != 1 {
                        return Err(bad(
                            path,
                            format!("{desc}: Softmax over axis {axis} is not supported (only the last axis, of the classes)"),
                        ));
                    }
                    items.push(Item::Final(Output::Softmax, desc.clone()));
                }
                "Identity" => {}
                "Dropout" => {
                    if node.input.get(2).is_some_and(|n| !n.is_empty()) {
                        return Err(bad(path, format!("{desc}: Dropout with a training_mode input is not supported")));
                    }
                }
                op => {
                    return Err(bad(path, format!("{desc}: unsupported op '{op}'; a plain MLP has only {SUPPORTED}")));
                }
            }
            cur = out.to_string();
            i += 1;
        }
        if cur != output.name {
            return Err(bad(
                path,
                format!("the graph output '{}' is not the end of the chain of layers ('{cur}')", output.name),
            ));
        }
        check_chain(path, items, input_width, &input.name)
    }

    /// The declared width of the `n × d` float input, if the file gives it.
    fn input_width(path: &Path, input: &candle_onnx::onnx::ValueInfoProto) -> Result<Option<usize>> {
        let Some(type_proto::Value::TensorType(tt)) = input.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
            return Ok(None);
        };
        if tt.elem_type != DataType::Float as i32 {
            return Err(bad(
                path,
                format!("input '{}' has element type {}, expected float32", input.name, type_name(tt.elem_type)),
            ));
        }
        let Some(shape) = &tt.shape else { return Ok(None) };
        use candle_onnx::onnx::tensor_shape_proto::dimension::Value;
        match shape.dim.as_slice() {
            [_, d] => Ok(match d.value {
                Some(Value::DimValue(v)) => Some(
                    usize::try_from(v).map_err(|_| bad(path, format!("input '{}' declares width {v}", input.name)))?,
                ),
                _ => None,
            }),
            dims => Err(bad(
                path,
                format!("input '{}' has rank {}, expected 2 (events × features)", input.name, dims.len()),
            )),
        }
    }

    fn gemm(path: &Path, desc: &str, node: &NodeProto, constants: &HashMap<&str, &TensorProto>) -> Result<Linear> {
        let get_int = |name: &str| attr(node, name).map_or(Ok(0), |a| int_attr(path, desc, a));
        let get_float = |name: &str| attr(node, name).map_or(Ok(1.0), |a| float_attr(path, desc, a));
        if get_int("transA")? != 0 {
            return Err(bad(path, format!("{desc}: Gemm with transA = 1 is not supported (events must be rows)")));
        }
        let trans_b = get_int("transB")?;
        if trans_b != 0 && trans_b != 1 {
            return Err(bad(path, format!("{desc}: Gemm transB = {trans_b}, expected 0 or 1")));
        }
        let (alpha, beta) = (get_float("alpha")?, get_float("beta")?);
        let b = input_n(path, desc, node, 1)?;
        let (dims, w) = constant(path, desc, b, constants)?;
        let &[d0, d1] = dims.as_slice() else {
            return Err(bad(path, format!("{desc}: weight '{b}' has shape {dims:?}, expected 2-D")));
        };
        // transB = 1: B is out × in (torch.nn.Linear); transB = 0: B is in × out.
        let (out, inp, mut weight) = if trans_b == 1 { (d0, d1, w) } else { (d1, d0, transpose(&w, d0, d1)) };
        if alpha != 1.0 {
            weight.iter_mut().for_each(|v| *v *= alpha);
        }
        let bias = match node.input.get(2).filter(|n| !n.is_empty()) {
            None => vec![0.0; out],
            Some(c) => {
                let (cdims, cv) = constant(path, desc, c, constants)?;
                let mut bias = broadcast_bias(path, desc, c, &cdims, cv, out)?;
                if beta != 1.0 {
                    bias.iter_mut().for_each(|v| *v *= beta);
                }
                bias
            }
        };
        Ok(Linear { out, inp, weight, bias, node: desc.to_string() })
    }

    /// A bias of shape `[out]`, `[1, out]`, or one value (`[]`, `[1]`, `[1, 1]`) broadcast.
    fn broadcast_bias(
        path: &Path,
        desc: &str,
        name: &str,
        dims: &[usize],
        v: Vec<f32>,
        out: usize,
    ) -> Result<Vec<f32>> {
        match (dims, v.len()) {
            ([n] | [1, n], _) if *n == out => Ok(v),
            ([] | [1] | [1, 1], 1) => Ok(vec![v[0]; out]),
            _ => Err(bad(path, format!("{desc}: bias '{name}' has shape {dims:?}, expected [{out}]"))),
        }
    }

    fn input_n<'a>(path: &Path, desc: &str, node: &'a NodeProto, k: usize) -> Result<&'a str> {
        match node.input.get(k) {
            Some(n) if !n.is_empty() => Ok(n),
            _ => Err(bad(path, format!("{desc} has no input {k}"))),
        }
    }

    fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a candle_onnx::onnx::AttributeProto> {
        node.attribute.iter().find(|a| a.name == name)
    }

    fn int_attr(path: &Path, desc: &str, a: &candle_onnx::onnx::AttributeProto) -> Result<i64> {
        if a.r#type() != AttributeType::Int {
            return Err(bad(path, format!("{desc}: attribute '{}' is not an integer", a.name)));
        }
        Ok(a.i)
    }

    fn float_attr(path: &Path, desc: &str, a: &candle_onnx::onnx::AttributeProto) -> Result<f32> {
        if a.r#type() != AttributeType::Float {
            return Err(bad(path, format!("{desc}: attribute '{}' is not a float", a.name)));
        }
        if !a.f.is_finite() {
            return Err(bad(path, format!("{desc}: attribute '{}' is {}", a.name, a.f)));
        }
        Ok(a.f)
    }

    fn type_name(t: i32) -> String {
        DataType::try_from(t).map_or_else(|_| format!("#{t}"), |d| d.as_str_name().to_lowercase())
    }

    /// A constant tensor (initializer or `Constant` node) as f32, with its shape.
    fn constant(
        path: &Path,
        desc: &str,
        name: &str,
        constants: &HashMap<&str, &TensorProto>,
    ) -> Result<(Vec<usize>, Vec<f32>)> {
        let t = constants.get(name).ok_or_else(|| {
            bad(
                path,
                format!(
                    "{desc}: '{name}' is not a constant (initializer); weights computed in the graph are not supported"
                ),
            )
        })?;
        if t.data_location == DataLocation::External as i32 {
            return Err(bad(
                path,
                format!(
                    "{desc}: tensor '{name}' is stored in an external data file; export the weights inside the model"
                ),
            ));
        }
        let mut dims = Vec::with_capacity(t.dims.len());
        let mut n: usize = 1;
        for &d in &t.dims {
            let d = usize::try_from(d).map_err(|_| bad(path, format!("tensor '{name}' has dimension {d}")))?;
            n = n
                .checked_mul(d)
                .ok_or_else(|| bad(path, format!("tensor '{name}' has shape {:?}, too large", t.dims)))?;
            dims.push(d);
        }
        let values: Vec<f32> = match DataType::try_from(t.data_type) {
            Ok(DataType::Float) if !t.float_data.is_empty() => t.float_data.clone(),
            Ok(DataType::Float) => le_values::<4>(&t.raw_data).map(f32::from_le_bytes).collect(),
            Ok(DataType::Double) if !t.double_data.is_empty() => t.double_data.iter().map(|&v| v as f32).collect(),
            Ok(DataType::Double) => le_values::<8>(&t.raw_data).map(|b| f64::from_le_bytes(b) as f32).collect(),
            _ => {
                return Err(bad(
                    path,
                    format!(
                        "tensor '{name}' has element type {}; only float32 and float64 weights are supported",
                        type_name(t.data_type)
                    ),
                ))
            }
        };
        if values.len() != n {
            return Err(bad(
                path,
                format!("tensor '{name}' has shape {dims:?} ({n} values) but holds {} values", values.len()),
            ));
        }
        if let Some(k) = values.iter().position(|v| !v.is_finite()) {
            return Err(bad(path, format!("tensor '{name}' holds {} at index {k}", values[k])));
        }
        Ok((dims, values))
    }

    /// Little-endian chunks of `N` bytes (a trailing partial chunk is dropped; the count
    /// check after catches it).
    fn le_values<const N: usize>(raw: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        raw.chunks_exact(N).map(|c| {
            let mut b = [0u8; N];
            b.copy_from_slice(c);
            b
        })
    }

    /// `rows × cols` row-major → `cols × rows` row-major.
    fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let mut t = vec![0.0; v.len()];
        for r in 0..rows {
            for c in 0..cols {
                t[c * rows + r] = v[r * cols + c];
            }
        }
        t
    }

    /// Checks `Linear (Act Linear)* [Final]` with one activation kind and matching widths.
    fn check_chain(path: &Path, items: Vec<Item>, input_width: Option<usize>, input_name: &str) -> Result<Chain> {
        let mut layers: Vec<Linear> = Vec::new();
        let mut activation: Option<(Activation, String)> = None;
        let mut pending_act: Option<(Activation, String)> = None;
        let mut final_output: Option<(Output, String)> = None;
        for item in items {
            if let Some((o, f)) = &final_output {
                let what = match &item {
                    Item::Linear(l) => &l.node,
                    Item::Act(_, n) | Item::Final(_, n) => n,
                };
                return Err(only_as_output(path, f, *o, &format!(", but {what} follows it")));
            }
            match item {
                Item::Linear(l) => {
                    if let Some(prev) = layers.last() {
                        // The activation just seen is a hidden one: it must be the same everywhere.
                        let Some((a, node)) = pending_act.take() else {
                            return Err(bad(
                                path,
                                format!(
                                    "{} follows {} with no activation between them; nuisance MLPs have one \
                                     activation between every pair of linear layers",
                                    l.node, prev.node
                                ),
                            ));
                        };
                        match &activation {
                            Some((first, first_node)) if *first != a => {
                                return Err(bad(
                                    path,
                                    format!(
                                        "{node} applies {} but {first_node} applies {}; nuisance MLPs have one \
                                         hidden activation",
                                        a.name(),
                                        first.name()
                                    ),
                                ))
                            }
                            Some(_) => {}
                            None => activation = Some((a, node)),
                        }
                        if l.inp != prev.out {
                            return Err(bad(
                                path,
                                format!(
                                    "{} takes {} inputs but {} gives {} outputs",
                                    l.node, l.inp, prev.node, prev.out
                                ),
                            ));
                        }
                    }
                    layers.push(l);
                }
                Item::Act(a, node) => {
                    if layers.is_empty() {
                        return Err(bad(path, format!("{node} comes before the first linear layer (Gemm or MatMul)")));
                    }
                    if let Some((_, p)) = &pending_act {
                        return Err(bad(path, format!("{node} follows the activation {p}: two activations in a row")));
                    }
                    pending_act = Some((a, node));
                }
                Item::Final(o, node) => {
                    if layers.is_empty() || pending_act.is_some() {
                        return Err(only_as_output(path, &node, o, ""));
                    }
                    final_output = Some((o, node));
                }
            }
        }
        let Some(first) = layers.first() else {
            return Err(bad(path, "the graph has no linear layer (Gemm or MatMul)"));
        };
        if let Some((_, p)) = pending_act {
            return Err(bad(
                path,
                format!("{p} comes after the last linear layer; only Sigmoid or Softmax (or nothing) may follow it"),
            ));
        }
        if let Some(w) = input_width {
            if w != first.inp {
                return Err(bad(
                    path,
                    format!("input '{input_name}' declares {w} features but {} takes {}", first.node, first.inp),
                ));
            }
        }
        Ok(Chain { layers, activation: activation.map(|(a, _)| a), final_output })
    }

    fn only_as_output(path: &Path, node: &str, o: Output, detail: &str) -> Error {
        bad(
            path,
            format!(
                "{node}: {} is only supported as the output, right after the last linear layer{detail}; \
                 hidden activations: {}",
                o.name(),
                Activation::NAMES.join(", ")
            ),
        )
    }

    impl Chain {
        /// The native model, with the options applied.
        pub(super) fn into_mlp(self, path: &Path, spec: &OnnxImport) -> Result<Mlp> {
            let mut widths = Vec::with_capacity(self.layers.len() + 1);
            widths.push(self.layers[0].inp);
            widths.extend(self.layers.iter().map(|l| l.out));
            if let Some(want) = &spec.layers {
                if *want != widths {
                    return Err(bad(
                        path,
                        format!("layers {want:?} were requested but the ONNX graph has widths {widths:?}"),
                    ));
                }
            }
            let k = widths[widths.len() - 1];
            let output = match (&self.final_output, spec.output) {
                (Some((o, node)), Some(want)) if *o != want => {
                    return Err(bad(
                        path,
                        format!(
                            "output '{}' was requested but the graph ends with {node}, a {} output",
                            want.name(),
                            o.name()
                        ),
                    ))
                }
                (Some((o, _)), _) => *o,
                (None, Some(want)) => want,
                (None, None) if k == 1 => Output::Sigmoid,
                (None, None) => Output::Softmax,
            };
            let cfg = MlpConfig {
                activation: self.activation.unwrap_or(Activation::Relu),
                output,
                dropout: 0.0,
                seed: 0,
                feature_names: spec.feature_names.clone(),
            };
            let mut m = Mlp::new(&widths, cfg)?;
            let mut flat = Vec::with_capacity(m.n_params());
            for l in &self.layers {
                flat.extend_from_slice(&l.weight);
                flat.extend_from_slice(&l.bias);
            }
            m.set_params_flat(&flat)?;
            let d = m.n_inputs();
            let mean = spec.mean.clone().unwrap_or_else(|| vec![0.0; d]);
            let std = spec.std.clone().unwrap_or_else(|| vec![1.0; d]);
            m.set_standardization(mean, std)?;
            Ok(m)
        }
    }
}

#[cfg(all(test, not(feature = "onnx")))]
mod tests_without_feature {
    use super::*;

    #[test]
    fn import_onnx_without_the_feature_says_how_to_build_it() {
        let e = import_onnx(Path::new("model.onnx"), &OnnxImport::default()).unwrap_err();
        assert_eq!(e.kind(), "feature_missing");
        assert_eq!(
            e.to_string(),
            "ONNX import needs the `onnx` cargo feature: cargo build --release --features onnx \
             (requires protoc, Debian package protobuf-compiler)"
        );
    }
}
