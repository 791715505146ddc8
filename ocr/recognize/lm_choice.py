"""Placeholder until ``python -m training.choose_lm`` writes the choice made on the validation slice."""

LM_DEFAULT: dict[str, bool] = {"fast": False, "accurate": False}
LM_WEIGHT: dict[str, float] = {"fast": 0.2, "accurate": 0.2}
LM_BEAM_WIDTH = 4
FIGURES: dict = {}
