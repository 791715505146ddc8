"""The word list: CTC likelihoods summed over paths, one-edit neighbours, and corrections that happen only
where the frames allow them (a clearly printed non-word keeps its letters)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from ocr.decode import ctc_log_likelihood, greedy_decode
from ocr.recognize.charset import Charset
from ocr.recognize.lexicon import Lexicon, corrected_labels, correctable_tokens, default_lexicon

CS = Charset(list("abcdeHLOhlo 5"))


def brute_force(p: np.ndarray, labels: tuple[int, ...]) -> float:
    """log P(labels) by enumerating every frame path (tiny inputs only)."""
    total = 0.0
    for path in itertools.product(range(p.shape[1]), repeat=p.shape[0]):
        if [k for k, _ in itertools.groupby(path) if k != 0] == list(labels):
            total += math.prod(p[t, c] for t, c in enumerate(path))
    return math.log(total) if total else -math.inf


@pytest.mark.parametrize("labels", [(), (1,), (1, 2), (1, 1), (2, 3, 1), (1, 1, 1), (1, 2, 1, 2, 1, 2)])
def test_ctc_log_likelihood_sums_every_path(labels):
    p = np.random.default_rng(0).dirichlet(np.ones(4), size=5)
    assert ctc_log_likelihood(p, labels) == pytest.approx(brute_force(p, labels), abs=1e-9)


def test_ctc_log_likelihood_refuses_the_blank():
    with pytest.raises(ValueError):
        ctc_log_likelihood(np.full((3, 3), 1 / 3), [0])


def test_neighbours_are_one_edit_away_and_known():
    lexicon = Lexicon(["hello", "hell", "yellow", "help", "he", "café"])
    assert lexicon.neighbours("HELLO") == ["hell"]  # itself excluded; "he" is too short to propose
    assert lexicon.neighbours("helo") == ["hell", "hello", "help"]
    assert lexicon.neighbours("xyz") == []
    assert "Hello" in lexicon and "café" not in lexicon  # ASCII words only


def test_correctable_tokens_are_latin_words_not_codes():
    text = "TOTAL 5ALE RM12.50 ab 中文Hello A1B2"
    assert [text[a:b] for a, b in correctable_tokens(text)] == ["TOTAL", "5ALE", "Hello"]


def frames(spec: list[dict[str, float]]) -> np.ndarray:
    """One frame per dict (character -> probability, '-' = blank), the rest spread evenly."""
    p = np.full((len(spec), CS.num_classes), 1e-4)
    for t, row in enumerate(spec):
        for ch, v in row.items():
            p[t, 0 if ch == "-" else CS.encode(ch)[0]] = v
    return p / p.sum(axis=1, keepdims=True)


def hello_frames(p_o_in_last: float) -> np.ndarray:
    """``HELLO`` whose last letter looks like ``5`` first and like ``O`` with ``p_o_in_last``."""
    rows = [{"H": 0.9}, {"-": 0.9}, {"e": 0.9}, {"-": 0.9}, {"L": 0.9}, {"-": 0.9}, {"L": 0.9}, {"-": 0.9},
            {"5": 1 - p_o_in_last, "O": p_o_in_last}, {"-": 0.9}]
    return frames(rows)


def test_an_unsure_letter_falls_to_the_word_in_the_case_its_frames_prefer():
    probs = hello_frames(0.35)
    line = greedy_decode(probs, CS)
    assert line.text == "HeLL5"
    labels = corrected_labels(probs, line, CS, Lexicon(["hello"]), margin=2.0)
    assert labels is not None and CS.decode(labels) == "HeLLO"


def test_a_clear_reading_keeps_its_letters():
    probs = hello_frames(0.001)
    line = greedy_decode(probs, CS)
    assert corrected_labels(probs, line, CS, Lexicon(["hello"]), margin=2.0) is None
    # a known word is never changed, however unsure
    probs = hello_frames(0.6)
    line = greedy_decode(probs, CS)
    assert line.text == "HeLLO"
    assert corrected_labels(probs, line, CS, Lexicon(["hello", "hell"]), margin=50.0) is None


def test_the_shipped_word_list_holds_common_words():
    lexicon = default_lexicon()
    assert {"receipt", "total", "chocolate", "station"} <= lexicon.words
    assert len(lexicon.words) > 50_000
    assert "chocolate" in lexicon.neighbours("chcolate")


def test_the_recognizer_consults_the_word_list_only_with_the_language_model(recognizer, latin_font, monkeypatch):
    """``lm=False`` reads greedily and never consults the word list; ``lm=True`` does, and a clear line of
    known words reads the same either way."""
    import ocr.recognize.recognizer as module
    from training.synth import render_text

    calls = []

    def counting(*args, **kwargs):
        calls.append(args[1].text)
        return corrected_labels(*args, **kwargs)

    monkeypatch.setattr(module, "corrected_labels", counting)
    monkeypatch.setattr(recognizer, "lexicon_margin", 2.0)
    image = render_text("Chocolate station", latin_font, 36).image
    assert recognizer.recognize([image], lm=False)[0].text == "Chocolate station"
    assert calls == []
    assert recognizer.recognize([image], lm=True)[0].text == "Chocolate station"
    assert calls == ["Chocolate station"]


def test_the_word_list_ablation_never_consults_it(latin_font, monkeypatch):
    """``word_list=False`` (the benchmark's ``-no-lexicon`` rows) keeps the language model and drops the word list."""
    import ocr.recognize.recognizer as module
    from ocr.recognize.recognizer import Recognizer
    from training.synth import render_text

    calls = []
    monkeypatch.setattr(module, "corrected_labels", lambda *a, **k: calls.append(1))
    plain = Recognizer.load(word_list=False, threads=1)
    assert plain.lexicon_margin is None and plain.uses_lm()
    plain.recognize([render_text("Chocolate station", latin_font, 36).image], lm=True)
    assert calls == []
    assert Recognizer.load(threads=1).lexicon_margin is not None  # the shipped default: chosen on the slice
