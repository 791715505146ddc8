"""training.choose_lm: the weight with the best mean, on by default only if it helps, loses nowhere and is cheap."""

from __future__ import annotations

from training.choose_lm import MAX_EXTRA_MS, decide


def run(mean: float, chars: dict[str, float], ms: float) -> dict:
    return {"mean": mean, "scores": {d: {"char": c, "line": 50.0} for d, c in chars.items()}, "ms_per_word_scene": ms}


GREEDY = run(90.0, {"zh": 99.0, "receipts": 97.0, "scene": 88.0}, 3.0)


def test_the_best_weight_is_on_when_it_helps_everywhere_cheaply():
    runs = {0.1: run(90.3, {"zh": 99.0, "receipts": 97.1, "scene": 88.8}, 3.5),
            0.2: run(90.5, {"zh": 99.0, "receipts": 97.2, "scene": 89.0}, 3.6)}
    assert decide(GREEDY, runs) == (0.2, True)


def test_off_when_a_domain_loses_or_it_costs_too_much_or_gains_too_little():
    loses = {0.2: run(90.6, {"zh": 98.8, "receipts": 97.5, "scene": 89.5}, 3.5)}
    assert decide(GREEDY, loses) == (0.2, False)
    slow = {0.2: run(90.6, {"zh": 99.0, "receipts": 97.5, "scene": 89.5}, 3.0 + MAX_EXTRA_MS + 0.1)}
    assert decide(GREEDY, slow) == (0.2, False)
    tiny_gain = {0.2: run(90.05, {"zh": 99.0, "receipts": 97.0, "scene": 88.1}, 3.1)}
    assert decide(GREEDY, tiny_gain) == (0.2, False)


def test_the_written_module_credits_each_model_to_its_own_run(tmp_path):
    """A run with ``--models accurate`` keeps the fast entry: the docstring must name the run that wrote each."""
    import importlib.util

    from training.choose_lm import write_choice

    entry = {"weight": 0.15, "default": True, "greedy": {}, "by_weight": {}}
    choice = {"fast": {**entry, "written": "choose_lm --models fast (00:04 UTC)"},
              "accurate": {**entry, "weight": 0.25, "default": False, "written": "choose_lm --models accurate (01:28 UTC)"}}
    out = tmp_path / "lm_choice.py"
    write_choice(out, choice)
    text = out.read_text(encoding="utf-8")
    assert "- fast: ``choose_lm --models fast (00:04 UTC)``" in text
    assert "- accurate: ``choose_lm --models accurate (01:28 UTC)``" in text
    spec = importlib.util.spec_from_file_location("written_choice", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.LM_WEIGHT == {"fast": 0.15, "accurate": 0.25} and module.LM_DEFAULT == {"fast": True, "accurate": False}


def test_the_word_list_margin_is_written_only_where_it_is_on(tmp_path):
    """``--lexicon`` adds a margin per model; a model whose word list did not pass the rule is left out."""
    import importlib.util

    from training.choose_lm import write_choice

    entry = {"weight": 0.15, "default": True, "greedy": {}, "by_weight": {}, "written": "choose_lm (00:04 UTC)"}
    choice = {"fast": {**entry, "lexicon": {"margin": 3.0, "tried": 3.0, "written": "choose_lm --lexicon (09:58 UTC)"}},
              "accurate": {**entry, "lexicon": {"margin": None, "tried": 4.0, "written": "choose_lm --lexicon"}}}
    out = tmp_path / "lm_choice.py"
    write_choice(out, choice)
    assert "its word list: ``choose_lm --lexicon (09:58 UTC)``" in out.read_text(encoding="utf-8")
    spec = importlib.util.spec_from_file_location("written_choice", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.LEXICON_MARGIN == {"fast": 3.0}
