from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="module")
def one_opencv_thread():
    """Another job may own the second core: keep OpenCV's thread pool to one thread in a module."""
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    yield
    cv2.setNumThreads(before)


@pytest.fixture(scope="session")
def service():
    """The one loaded model for the whole run (explanations wired in, as ``python app.py`` serves it)."""
    import explain
    from ocr.service import OCRService

    return OCRService.load(threads=1, explainer=explain)


@pytest.fixture(scope="session")
def recognizer():
    from ocr.recognize.recognizer import Recognizer

    return Recognizer.load()


@pytest.fixture(scope="session")
def charset():
    from ocr.recognize.charset import Charset

    return Charset.load(ROOT / "weights" / "charset.txt")


@pytest.fixture(scope="session")
def cjk_font():
    from training.synth import training_fonts

    fonts = [f for f in training_fonts() if f.cjk and "wqy-microhei" in f.path] or \
            [f for f in training_fonts() if f.cjk]
    assert fonts, "no CJK font installed: run `make install-dev` (installs Debian's fonts-wqy-microhei)"
    return fonts[0]


@pytest.fixture(scope="session")
def latin_font():
    from training.synth import training_fonts

    fonts = [f for f in training_fonts() if "DejaVuSans.ttf" in f.path] or training_fonts()
    assert fonts
    return fonts[0]
