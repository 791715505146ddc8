"""The exact-GELU fusion of the int8 models (``training.quantize.fuse_erf_gelu``)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ocr.engines import cpu_session
from ocr.settings import WEIGHTS_DIR
from training.quantize import SHIPPED, fuse_erf_gelu, int8_name


def gelu_after_dequantize(divisor: float = 2 ** 0.5) -> onnx.ModelProto:
    """x -> Quantize -> Dequantize -> 0.5 * d * (1 + erf(d / divisor)): the QDQ graph's pattern."""
    scalars = {"scale": 0.05, "sqrt2": divisor, "one": 1.0, "half": 0.5}
    inits = [numpy_helper.from_array(np.array(v, np.float32), k) for k, v in scalars.items()]
    inits.append(numpy_helper.from_array(np.array(128, np.uint8), "zero"))
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["d"]),
        helper.make_node("Div", ["d", "sqrt2"], ["div"]),
        helper.make_node("Erf", ["div"], ["erf"]),
        helper.make_node("Add", ["erf", "one"], ["add"]),
        helper.make_node("Mul", ["d", "add"], ["mul"]),
        helper.make_node("Mul", ["mul", "half"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: onnx.ModelProto, x: np.ndarray, tmp_path, name: str) -> np.ndarray:
    path = tmp_path / name
    onnx.save(model, str(path))
    return cpu_session(path, 1).run(None, {"x": x})[0]


def test_the_pattern_becomes_one_gelu_with_the_same_output(tmp_path):
    x = np.linspace(-4, 4, 16, dtype=np.float32).reshape(2, 8)
    model = gelu_after_dequantize()
    before = run(model, x, tmp_path, "before.onnx")
    assert fuse_erf_gelu(model) == 1
    ops = [n.op_type for n in model.graph.node]
    assert ops == ["QuantizeLinear", "DequantizeLinear", "Gelu"]
    assert {t.name for t in model.graph.initializer} == {"scale", "zero"}  # the pattern's constants went with it
    np.testing.assert_allclose(run(model, x, tmp_path, "after.onnx"), before, atol=1e-6)


def test_a_different_function_is_left_alone():
    model = gelu_after_dequantize(divisor=2.0)  # not GELU: erf(x / 2)
    assert fuse_erf_gelu(model) == 0
    assert "Erf" in [n.op_type for n in model.graph.node]


@pytest.mark.parametrize("model", SHIPPED)
def test_shipped_int8_models_hold_no_unfused_gelu(model):
    """``python -m training.quantize`` fuses; a shipped file made without the fusion runs 15% slower."""
    graph = onnx.load(str(WEIGHTS_DIR / int8_name(model))).graph
    ops = [n.op_type for n in graph.node]
    assert "Erf" not in ops and "Gelu" in ops


def test_a_pattern_whose_inner_value_is_used_elsewhere_is_left_alone():
    model = gelu_after_dequantize()
    model.graph.output.append(helper.make_tensor_value_info("div", TensorProto.FLOAT, [2, 8]))
    model.graph.node.append(helper.make_node("Identity", ["div"], ["also"]))
    assert fuse_erf_gelu(model) == 0
