"""The page-result cache: keyed by the pixels' digest, bounded in entries and in bytes."""

from __future__ import annotations

import numpy as np

from ocr.cache import ResultCache, page_key, result_nbytes
from ocr.preprocess import PreprocessConfig
from ocr.results import PageResult


def test_cache_is_bounded_in_bytes():
    cache = ResultCache(entries=10, max_bytes=10 * 2**20)

    def page(side: int) -> PageResult:
        return PageResult([], side, side, image=np.zeros((side, side, 3), np.uint8))

    assert result_nbytes(page(512)) == 512 * 512 * 3 + 4 * 512 * 512  # image + full-size probability map
    for i in range(6):  # 1.75 MB each: the byte budget, not the 10 entries, decides
        cache.put(f"k{i}", page(512))
    assert len(cache) == 5 and cache.keys()[0] == "k1"
    assert cache.nbytes == 5 * result_nbytes(page(512)) <= 10 * 2**20
    cache.put("huge", page(2000))  # 28 MB: over the whole budget, never cached
    assert "huge" not in cache and len(cache) == 5
    for i in range(20):
        cache.put(f"s{i}", page(8))
    assert len(cache) == 10  # the entry bound still holds
    cache.clear()
    assert cache.nbytes == 0


def test_cache_key_is_the_digest_of_the_pixels():
    """Hashed from the array's buffer (no copy of the page), the same digest as from ``tobytes()``."""
    import hashlib
    import json as _json

    config = PreprocessConfig()
    rgb = np.arange(30 * 40 * 3, dtype=np.uint8).reshape(30, 40, 3)
    want = hashlib.sha256(rgb.tobytes())
    want.update(repr(rgb.shape).encode())
    want.update(_json.dumps(config.to_dict(), sort_keys=True, default=str).encode())
    want.update(_json.dumps({}, sort_keys=True).encode())
    assert page_key(rgb, config, {}) == want.hexdigest()
    assert page_key(rgb[:, ::-1], config, {}) != want.hexdigest()
