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


def test_a_candidate_recipe_leaves_the_shipped_registry_alone(tmp_path):
    """A recipe under study is passed to ``quantize``, never written into ``RECIPES`` (which the shipped files'
    rebuild reads); the file records the candidate's name."""
    from training import quantize as q

    before = dict(q.RECIPES)
    out = q.quantize("crnn", "probe-dynamic", tmp_path / "crnn.probe.int8.onnx",
                     candidate=("dynamic", None, ["MatMul"], {}))
    meta = {p.key: p.value for p in onnx.load(str(out), load_external_data=False).metadata_props}
    assert q.RECIPES == before and "probe-dynamic" not in q.RECIPES
    assert meta[q.QUANTIZATION_KEY] == "probe-dynamic"
    assert any(n.op_type == "MatMulInteger" for n in onnx.load(str(out)).graph.node)
