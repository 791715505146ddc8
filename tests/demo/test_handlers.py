"""Handler helpers that need no running app."""

from __future__ import annotations

import copy

from demo import handlers


def test_the_model_switch_quotes_the_figures_the_cascade_was_chosen_on(monkeypatch):
    """The Fast / Auto / Accurate trade-off is computed from ``cascade_choice.FIGURES``, not typed in (a re-chosen
    threshold left "~13%" behind)."""
    from ocr.recognize import cascade_choice

    figures = copy.deepcopy(cascade_choice.FIGURES)
    figures["auto"]["reread_share"] = 0.5
    monkeypatch.setattr(cascade_choice, "FIGURES", figures)
    text = handlers.model_trade_off()
    assert "~50%" in text and "validation slice" in text
