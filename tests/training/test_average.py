"""Checkpoint averaging (``training.average``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.average import average_state, main

ROOT = Path(__file__).resolve().parents[2]


def test_floats_are_averaged_and_counters_kept():
    a = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(4)}
    b = {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(9)}
    out = average_state([a, b])
    assert torch.equal(out["w"], torch.tensor([2.0, 4.0])) and out["n"].item() == 9


def test_checkpoints_of_different_networks_are_refused():
    with pytest.raises(ValueError, match="not one run"):
        average_state([{"w": torch.zeros(1)}, {"v": torch.zeros(1)}])
    with pytest.raises(ValueError):
        average_state([])


def test_the_command_writes_a_loadable_checkpoint(tmp_path):
    net = torch.nn.Linear(2, 2)
    paths = []
    for i in range(3):
        with torch.no_grad():
            net.weight.fill_(float(i))
        paths.append(tmp_path / f"step{i}.pt")
        torch.save({"arch": "x", "state_dict": {k: v.clone() for k, v in net.state_dict().items()}, "step": i,
                    "scores": {}}, paths[-1])
    main([*map(str, paths), "--out", str(tmp_path / "avg.pt")])
    avg = torch.load(tmp_path / "avg.pt", weights_only=False)
    assert torch.allclose(avg["state_dict"]["weight"], torch.full((2, 2), 1.0)) and avg["arch"] == "x"
    assert "scores" not in avg and len(avg["averaged"]) == 3


def test_an_average_scored_on_a_cache_carries_what_the_ship_gate_reads(tmp_path):
    """``--cache``: the average is scored on the cached validation slice, so ``training.ship`` can judge it."""
    import numpy as np

    from training import real_cache
    from training.ship import gate

    shipped = torch.load(ROOT / "weights" / "crnn.pt", map_location="cpu", weights_only=False)
    model = real_cache.load_model(ROOT / "weights" / "crnn.pt")
    rgb = np.full((32, 120, 3), 255, np.uint8)
    rgb[8:24, 8:112] = 30

    def items(set_name: str) -> list[dict]:
        item = real_cache.cache_item(model, rgb)
        item.update(text="AB", label="AB", set_name=set_name, source="x")
        return [item]

    cache = tmp_path / "cache"
    cache.mkdir()
    for name, set_name in (("real_train.pt", "en_receipts_sroie_train_lines"),
                           ("real_val.pt", "en_receipts_sroie_train_lines"),
                           ("synth_replay.pt", "synthetic"), ("synth_val.pt", "synthetic")):
        torch.save(items(set_name), cache / name)
    start = {"en_receipts_sroie_train_lines": {"char": 0.0, "line": 0.0}, "synthetic": {"char": 0.0, "line": 0.0}}
    paths = []
    for step in (1, 2):
        paths.append(tmp_path / f"step{step}.pt")
        torch.save({**shipped, "step": step, "start": start, "scores": {}}, paths[-1])
    main([*map(str, paths), "--out", str(tmp_path / "avg.pt"), "--cache", str(cache)])
    avg = torch.load(tmp_path / "avg.pt", weights_only=False)
    assert set(avg["scores"]) == {"en_receipts_sroie_train_lines", "synthetic"}
    assert "untrained start" not in (gate(avg) or "")  # judged on its scores, not refused for having none
