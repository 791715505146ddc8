"""The model choice (issue 16): one name everywhere, the cascade re-reads only unsure lines and says so,
and the pipeline and service read (and pick explainers) by the line's model. Stubs where the networks
do not matter; the accurate network itself only on tiny inputs (it is ~8x slower)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ocr.recognize.cascade import CascadeRecognizer
from ocr.recognize.choice import Recognizers
from ocr.recognize.models import MODELS, SPECS, UnknownModelError
from ocr.results import LineResult

ROOT = Path(__file__).resolve().parents[2]


class _Stub:
    """A single-model recogniser: reads every line as its name, with the confidence of the line's width."""

    def __init__(self, name: str, confidences: dict[int, float] | None = None) -> None:
        self.model_name, self.confidences, self.calls = name, confidences or {}, []

    first_stage = property(lambda self: self)

    def recognize(self, images, lm=None):
        self.calls.append(len(images))
        return [LineResult(self.model_name, self.confidences.get(img.shape[1], 0.99), [], img.shape[1],
                           img.shape[0], self.model_name) for img in images]

    def refine(self, images, results, lm=None):
        return results

    def uses_lm(self, lm=None):
        return bool(lm)

    def torch_models(self):
        return []


def _lines(*widths: int) -> list[np.ndarray]:
    return [np.full((10, w, 3), 128, np.uint8) for w in widths]


def test_the_cascade_rereads_only_lines_below_the_threshold():
    fast, accurate = _Stub("fast", {20: 0.5, 30: 0.89, 40: 0.9}), _Stub("accurate")
    cascade = CascadeRecognizer(fast, accurate, threshold=0.9)
    out = cascade.recognize(_lines(20, 30, 40, 50))
    assert [(r.text, r.model, r.reread) for r in out] == [
        ("accurate", "accurate", True), ("accurate", "accurate", True), ("fast", "fast", False), ("fast", "fast", False)]
    assert fast.calls == [4] and accurate.calls == [2]  # every line read fast once; two re-read, in one call
    assert out[0].to_dict()["reread"] is True and out[2].to_dict()["model"] == "fast"
    # lines with nothing to read (width 0: an unusable crop) and confident ones are never re-read
    assert cascade.unsure([LineResult("", 0.0, [], 0, 0), LineResult("x", 0.95, [], 9, 9)]) == []
    with pytest.raises(ValueError):
        CascadeRecognizer(fast, accurate, threshold=1.5)


def test_the_cascade_rereads_a_plate_however_sure_the_fast_model_is():
    cascade = CascadeRecognizer(_Stub("fast"), _Stub("accurate"), threshold=0.9)
    lines = [LineResult(text, 0.99, [], 94, 24) for text in ("京A12345", "L·05175", "TOTAL 12.50", "U.PRICE")]
    assert cascade.unsure(lines) == [0, 1]  # a plate, and one but for its province; not receipt words


def test_one_name_everywhere_and_a_wrong_one_is_refused():
    from ocr.recognize.recognizer import Recognizer
    from ocr.settings import Settings

    assert MODELS == ("fast", "accurate", "auto") and set(SPECS) == {"fast", "accurate"}
    assert Settings.__dataclass_fields__["model"].metadata["choices"] == MODELS
    with pytest.raises(UnknownModelError, match="choose one of fast, accurate, auto"):
        Recognizer.load(model="best")
    with pytest.raises(ValueError, match="shipped weights"):
        Recognizer.load(ROOT / "weights" / "crnn.pt", model="auto")
    assert SPECS["accurate"].max_batch_columns == SPECS["fast"].max_batch_columns // 2


def test_recognizers_load_each_model_once_and_the_cascade_shares_them():
    built = []

    class Counting(Recognizers):
        def _build(self, name):
            built.append(name)
            return _Stub(name) if name != "auto" else super()._build(name)

    models = Counting("auto")
    cascade = models.get()
    assert isinstance(cascade, CascadeRecognizer) and cascade.fast is models.get("fast")
    assert cascade.accurate is models.get("accurate") and sorted(built) == ["accurate", "auto", "fast"]
    around = Recognizers.of(cascade)
    assert around.default == "auto" and around.get("fast") is cascade.fast and around.get("accurate") is cascade.accurate
    with pytest.raises(UnknownModelError):
        models.get("slow")


def test_the_pipeline_reads_with_the_model_asked_and_decides_orientation_on_the_first_stage():
    from ocr.detect import ClassicalDetector
    from ocr.pipeline import OCRPipeline

    fast, accurate = _Stub("fast", {}), _Stub("accurate")
    fast.confidences = {w: 0.3 for w in range(1, 4000)}  # every fast reading unsure
    models = Recognizers("fast", loaded={"fast": fast, "accurate": accurate,
                                         "auto": CascadeRecognizer(fast, accurate, threshold=0.9)})
    pipeline = OCRPipeline(models, ClassicalDetector(), cache_bytes=2**24)
    page = str(ROOT / "examples" / "receipt_en.png")
    plain = pipeline.run(page)
    assert plain.lines and {ln.line_result.model for ln in plain.lines} == {"fast"}
    auto = pipeline.run(page, model="auto")  # not the cached fast result: the model is in the key
    assert {(ln.line_result.model, ln.line_result.reread) for ln in auto.lines} == {("accurate", True)}
    assert auto.to_dict()["lines"][0]["reread"] is True
    # the upside-down probe (at 0.3 confidence it runs) read the flipped lines with the fast model only
    assert len(accurate.calls) == 1 and accurate.calls[0] == len(auto.lines)


def test_the_service_explains_the_network_that_read_the_line():
    from ocr.detect import ClassicalDetector
    from ocr.pipeline import OCRPipeline
    from ocr.service import OCRService

    fast, accurate = _Stub("fast", {w: 0.3 for w in range(1, 500)}), _Stub("accurate")
    models = Recognizers("auto", loaded={"fast": fast, "accurate": accurate,
                                         "auto": CascadeRecognizer(fast, accurate, threshold=0.9)})
    asked = []

    class Explainer:
        METHODS = ("alignment",)

        def explain_line(self, recognizer, image, **kwargs):
            asked.append(recognizer.model_name)
            return {"text": ""}

    service = OCRService(OCRPipeline(models, ClassicalDetector(), cache_bytes=2**24), explainer=Explainer())
    crop = _lines(100)[0]
    assert service.default_model == "auto" and service.reader("accurate") is accurate
    assert service.explain_line(crop, model="auto")["model"] == "accurate"  # re-read: the accurate one explains
    assert service.explain_line(crop, model="fast")["model"] == "fast"
    assert asked == ["accurate", "fast"]
    view = service.line_view(crop, kind="line", model="accurate")
    assert view.model == "accurate"
    with pytest.raises(UnknownModelError):
        service.ocr(crop, kind="line", model="slow")
    assert set(service.model_choices()) == set(MODELS)


def test_cli_takes_the_model(capsys):
    from ocr.__main__ import build_parser, main

    assert build_parser().parse_args(["page", "--model", "auto", "x.png"]).model == "auto"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["recognize", "--model", "best", "x.png"])
    assert main(["--threads", "1", "recognize", "--model", "accurate", str(ROOT / "examples" / "line_zh.png")]) == 0
    assert capsys.readouterr().out.split("\t")[1] == "价税合计（小写）¥1,234.56"


@pytest.mark.parametrize("model", ["auto", "fast"])
def test_the_service_reads_the_language_model_at_start_not_on_the_first_request(monkeypatch, model):
    """The first click should not pay the language model's 0.8-1.3 s read: the service loads it (and the word
    list) with the weights."""
    from ocr import engines
    from ocr.recognize import language, lexicon
    from ocr.service import OCRService

    monkeypatch.setattr(engines, "_read_once", {})
    service = OCRService.load(threads=1, model=model)
    assert service.reader().uses_lm()
    assert {language.DEFAULT_LM, lexicon.DEFAULT_LEXICON} <= set(engines._read_once)
