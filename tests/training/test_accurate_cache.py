"""The accurate model's BiLSTM stage trains on cached neck sequences: the head on a cached sequence
must read as the whole network reads the padded line, and the cache keeps the frozen model's own reading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ocr.recognize.lineprep import batch_tensor, prepare_line
from ocr.recognize.network_accurate import PADDLE_PAD_WIDTH
from training import accurate_cache, real_cache

ROOT = Path(__file__).resolve().parents[2]


def _lines(widths: tuple[int, ...]) -> list[tuple[np.ndarray, dict]]:
    rng = np.random.default_rng(0)
    return [(rng.integers(0, 255, (32, w, 3), dtype=np.uint8),
             {"text": f"t{w}", "label": f"t{w}", "set_name": "s", "source": f"p{w}"}) for w in widths]


def test_cached_sequences_read_as_the_whole_network_in_the_callers_order(monkeypatch):
    """(Batch 1 here: in a batch, the attention neck also sees the padding up to the widest line.)"""
    monkeypatch.setattr(accurate_cache, "BATCH", 1)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = real_cache.load_model(ROOT / "weights" / "crnn_accurate.pt")
    with torch.no_grad():
        model.context_proj.weight.normal_(0, 0.05)  # a live BiLSTM: the cached sequence must carry it
    lines = _lines((300, 80, 700))  # 300 and 80 px wide lines pad to 320 px, the 700 px one to itself
    items = accurate_cache.chunk_items(model, lines)
    assert [it["text"] for it in items] == ["t300", "t80", "t700"]
    for (rgb, _), item in zip(lines, items):
        prepared = prepare_line(rgb, max_width=real_cache.MAX_WIDTH)
        with torch.no_grad():
            full = model(batch_tensor([prepared], pad_to=PADDLE_PAD_WIDTH))[0]
            via_sequence = model.head(item["seq"].float()[None])[0]
            frozen_top = model.classifier(item["seq"].float()).softmax(-1).topk(8).indices
        assert item["seq"].shape == (max(40, -(-prepared.width // 8)), 120)
        assert item["steps"] == prepared.steps
        assert torch.allclose(full, via_sequence, atol=5e-2)  # the cache stores float16
        # (the cache took its top-k before rounding the sequence to float16: near-ties may swap below rank 1)
        assert torch.equal(item["top_index"][:, 0].long(), frozen_top[:, 0])


def test_the_ablation_scores_the_accurate_model_on_its_sequence_cache(tmp_path):
    """``training.bilstm_ablation`` reads an accurate checkpoint's validation from its own sequence cache
    (the fast model's activation cache would not fit its network), per domain as the trainer scores it."""
    from ocr.recognize.charset import Charset
    from training import bilstm_ablation

    torch.set_num_threads(1)
    model = real_cache.load_model(ROOT / "weights" / "crnn_accurate.pt")
    lines = [(rgb, {**fields, "set_name": "en_scene_iiit5k_train"}) for rgb, fields in _lines((120, 200))]
    synthetic = [(rgb, {**fields, "set_name": "synthetic"}) for rgb, fields in _lines((90,))]
    torch.save(accurate_cache.chunk_items(model, lines), tmp_path / "seq_real_val.pt")
    torch.save(accurate_cache.chunk_items(model, synthetic), tmp_path / "seq_synth_val.pt")
    charset = Charset.load(ROOT / "weights" / "charset_accurate.txt")
    assert bilstm_ablation.spec_name(model) == "accurate"
    scores = bilstm_ablation.scorer(model, tmp_path, charset)()
    assert set(scores) == {"en_scene", "synthetic"}
    assert all(0.0 <= v["char"] <= 100.0 for v in scores.values())
