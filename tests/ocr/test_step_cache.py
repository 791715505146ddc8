"""A preprocessing change recomputes only from the changed step: earlier steps come from the step cache."""

from __future__ import annotations

import numpy as np
import pytest

from ocr.cache import ResultCache, image_digest
from ocr.preprocess import auto
from ocr.preprocess.config import config_from_dict


def manual(block_size: int, clip: float = 2.0) -> dict:
    return {"mode": "manual", "grayscale": {"enabled": True}, "denoise": {"enabled": True, "h": 7},
            "contrast": {"enabled": True, "clip_limit": clip}, "binarize": {"enabled": True, "block_size": block_size},
            "deskew": {"enabled": False}, "normalize_size": {"enabled": False}}


@pytest.fixture
def counted(monkeypatch):
    calls: list[str] = []
    for name, fn in list(auto._STEP_FUNCTIONS.items()):
        def wrapper(*args, _fn=fn, _name=name, **kwargs):
            calls.append(_name)
            return _fn(*args, **kwargs)
        monkeypatch.setitem(auto._STEP_FUNCTIONS, name, wrapper)
    return calls


def test_a_changed_step_recomputes_from_there_and_reads_the_same(counted):
    rng = np.random.default_rng(0)
    page = (rng.random((120, 200, 3)) * 255).astype(np.uint8)
    cache = ResultCache(36, 64 * 2**20, size_of=lambda step: step.image.nbytes)
    key = image_digest(page)
    first = auto.Preprocessor(manual(11)).run(page, steps_cache=cache, image_key=key)
    assert counted == ["grayscale", "denoise", "contrast", "binarize"]
    counted.clear()
    changed = auto.Preprocessor(manual(15)).run(page, steps_cache=cache, image_key=key)
    assert counted == ["binarize"]  # grayscale, denoise and contrast came from the cache
    assert [s.seconds for s in changed.steps[:3]] == [0.0, 0.0, 0.0]
    fresh = auto.Preprocessor(manual(15)).run(page)
    assert np.array_equal(changed.image, fresh.image)
    counted.clear()
    auto.Preprocessor(manual(15, clip=3.0)).run(page, steps_cache=cache, image_key=key)
    assert counted == ["contrast", "binarize"]  # a change upstream recomputes everything after it
    counted.clear()
    auto.Preprocessor(manual(11)).run(page[::-1].copy(), steps_cache=cache, image_key=image_digest(page[::-1].copy()))
    assert counted == ["grayscale", "denoise", "contrast", "binarize"]  # another page shares nothing
    assert first.image.shape == changed.image.shape


def test_step_keys_depend_on_the_prefix_only():
    a, b = auto.step_keys("k", config_from_dict(manual(11))), auto.step_keys("k", config_from_dict(manual(15)))
    assert a[2] == b[2]  # binarize (index 3) differs, contrast not
    assert a[3] != b[3]
    assert a[0] != auto.step_keys("other", config_from_dict(manual(11)))[0]
