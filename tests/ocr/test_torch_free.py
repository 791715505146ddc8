"""The detector's onnxruntime path never imports torch (~1 s and ~190 MB per process):
its release config comes from the export's metadata, older exports still load (torch reads
the config), and the lazily built torch network is the one the export was made from."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ocr.detect.config import CONFIG_KEY, VARIANTS, DetConfig, config_from_metadata, config_metadata
from ocr.detect import TextDetector
from ocr.settings import WEIGHTS_DIR
from ocr.errors import ModelLoadError

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("onnxruntime")


def test_onnx_detector_runs_without_torch():
    """Load (default weights, engine auto) and detect in a fresh process: boxes, and no torch."""
    code = (
        "import sys\n"
        "from ocr.detect import TextDetector\n"
        "from ocr.imageio import load_image\n"
        "det = TextDetector.load()\n"
        "boxes = det.detect(load_image('examples/invoice_zh.png')).boxes\n"
        "print(det.engine_name, det.variant, len(boxes), 'torch' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    engine, variant, n_boxes, torch_imported = proc.stdout.split()
    assert (engine, variant) == ("onnxruntime-int8", "small")  # int8 by default (weights/README.md)
    assert int(n_boxes) >= 20  # a full invoice page: 63 lines today
    assert torch_imported == "False", "the onnxruntime detector imported torch"


@pytest.mark.parametrize("variant", ["tiny", "small"])
def test_shipped_exports_record_their_release(variant):
    """Each shipped export carries the config its .pt holds (re-export if this fails)."""
    det = TextDetector.load(variant=variant)
    assert det.engine is not None and det.engine.config == VARIANTS[variant]
    assert det.model.config == det.config == VARIANTS[variant]


def _strip_config(onnx_path: Path, value: str | None = None) -> None:
    """Remove the export's det_config entry (an export made before it existed), or set it to ``value``."""
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(str(onnx_path))
    kept = [(p.key, p.value) for p in graph.metadata_props if p.key != CONFIG_KEY]
    del graph.metadata_props[:]
    for key, val in kept + ([(CONFIG_KEY, value)] if value is not None else []):
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, val
    onnx.save(graph, str(onnx_path))


@pytest.fixture
def small_copy(tmp_path: Path) -> Path:
    """det_small.pt and its export in a directory of their own (no SHA256SUMS: edits allowed)."""
    for name in ("det_small.pt", "det_small.onnx"):
        shutil.copy(WEIGHTS_DIR / name, tmp_path / name)
    return tmp_path / "det_small.pt"


def _count_state_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import ocr.detect.detector as detect_module

    reads: list[str] = []
    read = detect_module._read_det_state
    monkeypatch.setattr(detect_module, "_read_det_state", lambda path: reads.append(path.name) or read(path))
    return reads


def test_export_with_config_does_not_read_the_weights(small_copy, monkeypatch):
    reads = _count_state_reads(monkeypatch)
    det = TextDetector.load(small_copy)
    assert det.engine_name == "onnxruntime" and det.variant == "small" and reads == []
    assert det.model.config == VARIANTS["small"] and reads == ["det_small.pt"]  # read on first use only


@pytest.mark.parametrize("metadata", [None, "not json", '["small"]', '{"name": "small"}'])
def test_export_without_a_readable_config_falls_back_to_torch(small_copy, monkeypatch, caplog, metadata):
    """Exports made before det_config (or with one this code cannot read) still load, with the
    release the .pt records, read with torch."""
    _strip_config(small_copy.with_suffix(".onnx"), metadata)
    reads = _count_state_reads(monkeypatch)
    with caplog.at_level("INFO", logger="ocr.detect"):
        det = TextDetector.load(small_copy)
    assert det.engine_name == "onnxruntime" and det.engine.config is None
    assert det.config == VARIANTS["small"] and det.variant == "small"
    assert (det.box_thresh, det.limit_type) == (0.45, "min")  # the small release's, not tiny's defaults
    assert reads == ["det_small.pt"] and "records no det_config" in caplog.text
    assert len(det.detect(_page()).boxes) >= 1


def test_weights_changed_after_load_are_refused_when_the_network_is_built(small_copy):
    """The lazily built torch network must be the one the export was made from."""
    det = TextDetector.load(small_copy)
    shutil.copy(WEIGHTS_DIR / "det.pt", small_copy)  # another release under the same name
    with pytest.raises(ModelLoadError, match="changed since"):
        det.model


def test_config_metadata_round_trip():
    for config in VARIANTS.values():
        assert config_from_metadata({CONFIG_KEY: config_metadata(config)}) == config
    assert config_from_metadata({}) is None
    complete = VARIANTS["small"].to_dict()
    assert config_from_metadata({CONFIG_KEY: json.dumps({**complete, "depth": 9})}) is None  # unknown field
    del complete["neck"]
    assert config_from_metadata({CONFIG_KEY: json.dumps(complete)}) is None  # would default to tiny's 64
    custom = DetConfig(name="wide", stem=8, widths=(8, 16, 24, 32), neck=32, smooth_kernel=3)
    assert config_from_metadata({CONFIG_KEY: config_metadata(custom)}) == custom


def test_export_writes_the_config(tmp_path):
    """``convert_det``'s export records the config beside the source digest."""
    onnx = pytest.importorskip("onnx")
    from ocr.engines import SOURCE_KEY
    from training.convert_det import export_det_onnx
    from ocr.engines import sha256_of

    shutil.copy(WEIGHTS_DIR / "det.pt", tmp_path / "det.pt")
    out = export_det_onnx(tmp_path / "det.pt")
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta[SOURCE_KEY] == sha256_of(tmp_path / "det.pt")
    assert config_from_metadata(meta) == VARIANTS["tiny"]


def _page():
    from ocr.imageio import load_image

    return load_image(str(ROOT / "examples" / "receipt_en.png"))


def test_build_once_builds_a_single_time_under_concurrent_calls():
    import threading
    import time

    from ocr.engines import BuildOnce

    calls: list[int] = []

    def build() -> object:
        calls.append(1)
        time.sleep(0.05)
        return object()

    once: BuildOnce[object] = BuildOnce(build=build)
    assert not once.built
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(once.get())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and once.built and all(g is got[0] for g in got)
    with pytest.raises(ValueError):
        BuildOnce()
