"""training.ship: the first checkpoint that passes its gate is shipped; none passing ships nothing."""

from __future__ import annotations

import pytest
import torch

from training.ship import gate, ship


def scores(real: float, synthetic: float) -> dict:
    return {"zh_doc_xfund_train_lines": {"char": real, "line": real}, "synthetic": {"char": synthetic, "line": 50.0}}


def checkpoint(path, step: int, real: float, synthetic: float, trainer: str = "") -> None:
    torch.save({"state_dict": {"w": torch.tensor([float(step)])}, "config": {}, "step": step, "trainer": trainer,
                "scores": scores(real, synthetic), "start": scores(90.0, 89.0)}, path)


def test_gate_reasons():
    start = scores(90.0, 89.0)
    assert "untrained" in gate({"step": 0, "scores": start, "start": start})
    assert "forgetting" in gate({"step": 5, "scores": scores(91.0, 88.9), "start": start})
    assert "no gain" in gate({"step": 5, "scores": scores(90.0, 89.5), "start": start})
    assert gate({"step": 5, "scores": scores(90.5, 89.0), "start": start}) is None


def test_the_first_passing_checkpoint_ships(tmp_path, capsys):
    context, stage_one, out = tmp_path / "context.pt", tmp_path / "real.pt", tmp_path / "crnn.pt"
    checkpoint(context, 300, 90.0, 89.5, "training.train_context")  # no gain over its start: refused
    checkpoint(stage_one, 1200, 91.0, 89.2)
    ship([tmp_path / "missing.pt", context, stage_one], out)
    shipped = torch.load(out, weights_only=False)
    assert shipped["step"] == 1200 and "stage one" in shipped["source"]
    assert "not shipped: no gain" in capsys.readouterr().out
    checkpoint(context, 300, 90.6, 89.5, "training.train_context")
    ship([context, stage_one], out)
    assert "BiLSTM stage" in torch.load(out, weights_only=False)["source"]


def test_nothing_ships_when_no_checkpoint_passes(tmp_path):
    bad = tmp_path / "bad.pt"
    checkpoint(bad, 10, 95.0, 80.0)
    with pytest.raises(SystemExit, match="no checkpoint passed"):
        ship([bad], tmp_path / "crnn.pt")
    assert not (tmp_path / "crnn.pt").exists()
