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
def recognizer():
    from ocr.recognizer import Recognizer

    return Recognizer.load()


@pytest.fixture(scope="session")
def charset():
    from ocr.charset import Charset

    return Charset.load(ROOT / "weights" / "charset.txt")


@pytest.fixture(scope="session")
def cjk_font():
    from ocr.synth import training_fonts

    fonts = [f for f in training_fonts() if f.cjk and "wqy-microhei" in f.path] or \
            [f for f in training_fonts() if f.cjk]
    assert fonts, "no CJK font installed: run `make install-dev` (installs Debian's fonts-wqy-microhei)"
    return fonts[0]


@pytest.fixture(scope="session")
def latin_font():
    from ocr.synth import training_fonts

    fonts = [f for f in training_fonts() if "DejaVuSans.ttf" in f.path] or training_fonts()
    assert fonts
    return fonts[0]
