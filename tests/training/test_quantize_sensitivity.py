"""The int8 sensitivity study's layer groups (``training.quantize_sensitivity``)."""

from __future__ import annotations

import onnx

from ocr.settings import WEIGHTS_DIR
from training.quantize_sensitivity import CANDIDATES, GROUPS, with_float


def conv_names() -> list[str]:
    graph = onnx.load(str(WEIGHTS_DIR / "crnn.onnx"), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type == "Conv"]


def test_every_convolution_is_in_exactly_one_group():
    """A renamed layer would silently stay float in every run of the study."""
    for name in conv_names():
        groups = [g for g, patterns in GROUPS.items() if any(p in name for p in patterns)]
        assert len(groups) == 1, (name, groups)


def test_float_nodes_of_a_candidate():
    names = conv_names() + ["/model/classifier/MatMul"]
    kept = with_float(CANDIDATES["early-float"], names)
    assert kept[-2:] == ["@dw", "@se"]  # the shipped recipe's float nodes come along
    assert "/model/classifier/MatMul" in kept and "/model/backbone/stem1/Conv" in kept
    assert not any("/blocks.1/" in n for n in kept)
