"""Real-line training: the split is by source, the label conventions live in the loss, the top of the
network trains from cached activations exactly as the full network reads."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from ocr.recognize.charset import Charset
from training import real_cache, real_data, train_real

ROOT = Path(__file__).resolve().parents[2]
CHARSET = ROOT / "weights" / "charset.txt"


def _write_set(root: Path, name: str, rows: list[tuple[str, str, str]]) -> None:
    folder = root / name
    (folder / "images").mkdir(parents=True)
    (folder / "labels.tsv").write_text("".join(f"{img}\t{text}\n" for img, text, _ in rows), encoding="utf-8")
    (folder / "provenance.tsv").write_text(
        "image\tsource_path\tsource_sha256\tbox\n" + "".join(f"{img}\t{src}\tx\t\n" for img, _, src in rows),
        encoding="utf-8")


def test_validation_split_keeps_every_line_of_a_source_together(tmp_path, monkeypatch):
    rows = [(f"images/{s}_{i}.jpg", f"LINE {i}", f"page_{s}.jpg") for s in range(40) for i in range(5)]
    monkeypatch.setattr(real_data, "SETS", {"receipts": ("upper", "upper")})
    _write_set(tmp_path, "receipts", rows)
    train, val = real_data.read_all(tmp_path)
    assert len(train) + len(val) == 200
    assert len({line.source for line in val}) == 4  # 10% of 40 sources, exactly
    assert not {line.source for line in val} & {line.source for line in train}
    again_train, again_val = real_data.read_all(tmp_path)
    assert [line.image for line in again_val] == [line.image for line in val]


def test_targets_follow_each_sets_convention():
    assert real_data.target_text("发票 代码：（１２）", "nfkc_nospace") == "发票代码:(12)"
    assert real_data.target_text("  TOTAL   RM 12.00 ", "upper") == "TOTAL RM 12.00"
    assert real_data.target_text("Café", "exact") == "Café"


def test_ctc_columns_add_the_aliases_mass_and_nothing_else():
    charset = Charset.load(CHARSET)
    aliases = train_real.AliasTable(charset)
    logp = torch.randn(2, 12, charset.num_classes).log_softmax(-1)
    columns, targets, lengths = aliases.ctc_inputs(logp, ["TA", "(1"], charset, "upper")
    assert lengths.tolist() == [2, 2] and columns.shape == (2, 12, 5)
    classes = sorted(set(charset.encode("TA(1")))
    a, lower_a = charset.encode("A")[0], charset.encode("a")[0]
    col_a = columns[..., 1 + classes.index(a)]
    assert torch.all(col_a > torch.logaddexp(logp[..., a], logp[..., lower_a]) - 1e-6)
    full_width = [i for i in aliases.tables["upper"][a] if i != lower_a]
    expected = torch.logsumexp(logp[..., [a, lower_a, *full_width]], -1)
    assert torch.allclose(col_a, expected)
    exact_cols, _, _ = aliases.ctc_inputs(logp, ["a"], charset, "exact")
    exact_aliases = aliases.tables["exact"].get(lower_a, [])
    assert a not in exact_aliases  # scene words keep their case
    assert torch.allclose(exact_cols[..., 1], torch.logsumexp(logp[..., [lower_a, *exact_aliases]], -1))
    space = charset.encode(" ")[0]
    nospace, _, _ = aliases.ctc_inputs(logp, ["发"], charset, "nfkc_nospace")
    assert torch.allclose(nospace[..., 0], torch.logaddexp(logp[..., 0], logp[..., space]))


@pytest.mark.parametrize("frozen", [real_cache.FROZEN_BLOCKS, 5])
def test_cached_top_of_the_network_reads_like_the_whole_network(frozen):
    model = real_cache.load_model(ROOT / "weights" / "crnn.pt")
    images = torch.randn(2, 3, 48, 200)
    with torch.no_grad():
        split = real_cache.upper_logits(model, real_cache.lower_cnn(model, images, frozen), frozen)
        assert torch.allclose(split, model(images), atol=1e-5)


def test_a_cache_records_how_many_blocks_it_froze(tmp_path):
    assert real_cache.cache_depth(tmp_path) == real_cache.FROZEN_BLOCKS  # caches made before the record
    (tmp_path / "meta.json").write_text('{"frozen_blocks": 5}')
    assert real_cache.cache_depth(tmp_path) == 5
    with pytest.raises(SystemExit, match="after 5 blocks"):
        real_cache.build(tmp_path, ROOT / "weights" / "crnn.pt", CHARSET, 0, 0, frozen=7)


@pytest.mark.parametrize("frozen", [real_cache.FROZEN_BLOCKS, 5])
def test_a_few_steps_lower_the_loss_on_cached_items(frozen):
    torch.manual_seed(0)
    charset = Charset.load(CHARSET)
    model = real_cache.load_model(ROOT / "weights" / "crnn.pt")
    rng = np.random.default_rng(0)
    items = []
    for text in ["HELLO", "TOTAL 12.00", "WORLD", "CASH"]:
        rgb = np.full((32, 24 * len(text), 3), 255, np.uint8)
        rgb[8:24, 4:-4] = rng.integers(0, 120, (16, 24 * len(text) - 8, 3))
        item = real_cache.cache_item(model, rgb, frozen)
        item.update(text=text, label=text, set_name="en_receipts_sroie_train_lines", source="x")
        items.append(item)
    pad = real_cache.pad_column(model, frozen)
    groups = train_real.trainable_groups(model, 3e-3, 1e-3, 3e-4, frozen)
    trained = {id(p) for g in groups for p in g["params"]}
    assert (id(model.backbone.blocks[frozen].ffn_in.weight) in trained) and not any(
        id(p) in trained for p in model.backbone.blocks[frozen - 1].parameters())
    optimizer = torch.optim.Adam(groups)
    aliases = train_real.AliasTable(charset)
    losses = []
    for _ in range(15):
        train_real.set_train_mode(model)
        loss, _, _ = train_real.batch_loss(model, items, pad, charset, aliases, 1.0, "upper", frozen=frozen)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert not model.neck.bn1.training  # BatchNorm statistics stay pretrained
    batches = train_real.make_batches(items * 3, 4, random.Random(0))
    assert sum(len(b) for b in batches) == 12


def test_the_teacher_term_pulls_only_where_the_teacher_disagrees():
    """``--kd``: KL(teacher || student) on items that carry the teacher's targets; none on the others."""
    charset = Charset.load(CHARSET)
    model = real_cache.load_model(ROOT / "weights" / "crnn.pt")
    rgb = np.full((32, 96, 3), 255, np.uint8)
    rgb[8:24, 8:88] = 40
    item = real_cache.cache_item(model, rgb)
    item.update(text="AB", label="AB", set_name="synthetic", source="x")
    pad = real_cache.pad_column(model)
    aliases = train_real.AliasTable(charset)

    def kd_part(batch: list[dict]) -> float:
        with torch.no_grad():
            with_kd = train_real.batch_loss(model, batch, pad, charset, aliases, 0.0, None, kd=1.0)[0]
        return float(with_kd)

    assert kd_part([item]) == 0.0  # no teacher targets cached: nothing to pull towards
    agreeing = {**item, "t_index": item["top_index"], "t_prob": item["top_prob"]}
    disagreeing = {**item, "t_index": (item["top_index"] + 7) % charset.num_classes, "t_prob": item["top_prob"]}
    assert kd_part([agreeing]) < 0.05 < kd_part([disagreeing])
    index, prob = real_cache.stack_targets([agreeing], 3, prefix="t")
    assert index.shape == (1, 3, real_cache.TOP_K) and torch.equal(index[0], item["top_index"][:3].long())


def test_own_targets_make_the_forgetting_term_vanish_at_the_start():
    """``--lwf-from-init``: the cached targets become the start model's own reading, so before any step
    the KL term is ~0 (with the port's targets it is not, once the start has a live BiLSTM)."""
    charset = Charset.load(CHARSET)
    model = real_cache.load_model(ROOT / "weights" / "crnn.pt")
    rgb = np.full((32, 120, 3), 255, np.uint8)
    rgb[8:24, 8:112] = np.random.default_rng(1).integers(0, 120, (16, 104, 3))
    item = real_cache.cache_item(model, rgb)
    item.update(text="AB", label="AB", set_name="synthetic", source="x")
    item["top_index"] = (item["top_index"] + 3) % charset.num_classes  # someone else's reading
    pad = real_cache.pad_column(model)
    aliases = train_real.AliasTable(charset)

    def kl() -> float:
        with torch.no_grad():
            return float(train_real.batch_loss(model, [item], pad, charset, aliases, 1.0, None)[0])

    assert kl() > 1.0
    train_real.own_targets(model, [item])
    assert kl() < 0.05


def test_the_bilstm_stage_reads_cached_sequences_exactly_as_the_network_reads_activations():
    """``training.train_context`` trains on the frozen network's feature sequences: the head on a
    cached sequence must give the logits the full top of the network gives on the cached activations,
    and the cached top-k is the frozen model's own reading."""
    from training import train_context

    torch.manual_seed(0)
    model = real_cache.load_model(ROOT / "weights" / "crnn.pt")
    with torch.no_grad():
        model.context_proj.weight.normal_(0, 0.05)  # a live BiLSTM: the sequence path must carry it too
        acts = real_cache.lower_cnn(model, torch.rand(1, 3, 48, 160) * 2 - 1)
        item = {"acts": acts[0].half(), "steps": 20, "text": "x", "label": "x", "set_name": "s", "source": "p"}
        seq_item = train_context.sequence_item(model, item)
        full = real_cache.upper_logits(model.eval(), item["acts"].float()[None])
        via_sequence = model.head(seq_item["seq"].float()[None])
    assert seq_item["seq"].shape == (20, 160)
    assert torch.allclose(full, via_sequence, atol=2e-2)
    frozen_top = model.classifier(model.feature_proj(seq_item["seq"].float())).softmax(-1).topk(8).indices
    assert torch.equal(seq_item["top_index"].long(), frozen_top)
