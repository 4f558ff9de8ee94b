#!/usr/bin/env python3
"""Writes the small ONNX fixtures of tests/onnx.rs with the official `onnx` package.

Run from the crate root (onnx 1.23.2 and numpy 2.4.6 made the committed files):
    pip install onnx && python3 scripts/make_onnx_fixtures.py

Every weight is a fixed function of its index, so the files are reproducible byte for byte.

- tests/data/onnx_matmul_tanh_softmax.onnx — a valid MLP written the way other exporters do
  it (not PyTorch's Gemm with transB = 1): 4 -> 6 -> 3, opset 13, as
      MatMul(x, W0 [4 x 6]) -> Add(b0, .) -> Tanh -> Gemm(., W1 [6 x 3], b1 [3],
      transB = 0, alpha = 0.5, beta = 2) -> Softmax(axis = 1).
  Weights float32. Its metadata_props hold, under the key
  "nuisance_test", a JSON object {"x": 5 x 4 inputs, "y": 5 x 3 outputs} computed by
  onnx.reference.ReferenceEvaluator (the onnx package's own reference implementation).
- tests/data/onnx_skip.onnx — not a plain MLP: 4 -> 4 -> 4 with a skip connection,
      Gemm -> Relu -> Gemm -> Add(., x) -> Sigmoid (the residual adds the input back).
- tests/data/onnx_layernorm.onnx — not a plain MLP: Gemm -> LayerNormalization -> Relu ->
  Gemm -> Sigmoid, 4 -> 4 -> 1, opset 17 (an op nuisance MLPs do not have).
"""
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

OUT = Path(__file__).resolve().parent.parent / "tests" / "data"


def weights(shape, scale, offset, dtype=np.float32):
    """A deterministic pattern: scale * sin(offset + index)."""
    n = int(np.prod(shape))
    return (scale * np.sin(offset + np.arange(n))).reshape(shape).astype(dtype)


def io(name, width):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", width])


def save(model, name):
    onnx.checker.check_model(model, full_check=True)
    path = OUT / name
    onnx.save(model, str(path))
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def matmul_tanh_softmax():
    w0 = weights((4, 6), 0.8, 0.0)
    b0 = weights((6,), 0.3, 1.0)
    w1 = weights((6, 3), 0.9, 2.0)
    b1 = weights((3,), 0.2, 3.0)
    nodes = [
        helper.make_node("MatMul", ["x", "W0"], ["m0"], name="layer0/MatMul"),
        helper.make_node("Add", ["b0", "m0"], ["h0"], name="layer0/Add"),
        helper.make_node("Tanh", ["h0"], ["a0"], name="act0/Tanh"),
        helper.make_node("Gemm", ["a0", "W1", "b1"], ["z"], name="layer1/Gemm", transB=0, alpha=0.5, beta=2.0),
        helper.make_node("Softmax", ["z"], ["p"], name="out/Softmax", axis=1),
    ]
    init = [
        numpy_helper.from_array(w0, "W0"),
        numpy_helper.from_array(b0, "b0"),
        numpy_helper.from_array(w1, "W1"),
        numpy_helper.from_array(b1, "b1"),
    ]
    graph = helper.make_graph(nodes, "matmul_tanh_softmax", [io("x", 4)], [io("p", 3)], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_onnx_fixtures")
    model.ir_version = 8
    x = weights((5, 4), 2.0, 4.0)
    (y,) = ReferenceEvaluator(model).run(None, {"x": x})
    helper.set_model_props(model, {"nuisance_test": json.dumps({"x": x.tolist(), "y": y.tolist()})})
    save(model, "onnx_matmul_tanh_softmax.onnx")


def skip():
    nodes = [
        helper.make_node("Gemm", ["x", "W0", "b0"], ["h0"], name="layer0/Gemm", transB=1),
        helper.make_node("Relu", ["h0"], ["a0"], name="act0/Relu"),
        helper.make_node("Gemm", ["a0", "W1", "b1"], ["h1"], name="layer1/Gemm", transB=1),
        helper.make_node("Add", ["h1", "x"], ["r"], name="residual/Add"),
        helper.make_node("Sigmoid", ["r"], ["p"], name="out/Sigmoid"),
    ]
    init = [
        numpy_helper.from_array(weights((4, 4), 0.5, 0.0), "W0"),
        numpy_helper.from_array(weights((4,), 0.1, 1.0), "b0"),
        numpy_helper.from_array(weights((4, 4), 0.5, 2.0), "W1"),
        numpy_helper.from_array(weights((4,), 0.1, 3.0), "b1"),
    ]
    graph = helper.make_graph(nodes, "skip", [io("x", 4)], [io("p", 4)], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_onnx_fixtures")
    model.ir_version = 8
    save(model, "onnx_skip.onnx")


def layernorm():
    nodes = [
        helper.make_node("Gemm", ["x", "W0", "b0"], ["h0"], name="layer0/Gemm", transB=1),
        helper.make_node("LayerNormalization", ["h0", "gamma", "beta"], ["n0"], name="norm0/LayerNormalization"),
        helper.make_node("Relu", ["n0"], ["a0"], name="act0/Relu"),
        helper.make_node("Gemm", ["a0", "W1", "b1"], ["z"], name="layer1/Gemm", transB=1),
        helper.make_node("Sigmoid", ["z"], ["p"], name="out/Sigmoid"),
    ]
    init = [
        numpy_helper.from_array(weights((4, 4), 0.5, 0.0), "W0"),
        numpy_helper.from_array(weights((4,), 0.1, 1.0), "b0"),
        numpy_helper.from_array(np.ones(4, np.float32), "gamma"),
        numpy_helper.from_array(np.zeros(4, np.float32), "beta"),
        numpy_helper.from_array(weights((1, 4), 0.5, 2.0), "W1"),
        numpy_helper.from_array(weights((1,), 0.1, 3.0), "b1"),
    ]
    graph = helper.make_graph(nodes, "layernorm", [io("x", 4)], [io("p", 1)], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_onnx_fixtures")
    model.ir_version = 8
    save(model, "onnx_layernorm.onnx")


if __name__ == "__main__":
    matmul_tanh_softmax()
    skip()
    layernorm()
