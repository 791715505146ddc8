"""The character language model and the beam search that uses it: sound probabilities, neutral
non-words, the shipped model's preferences, and the ``lm`` switch from the recogniser to the REST API."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ocr.decode import beam_search_labels, greedy_decode
from ocr.recognize.charset import Charset
from ocr.recognize.language import CharLanguageModel, default_language_model, judged_runs
from ocr.recognize.recognizer import SURE_FRAME, needs_search

WORDS = [("receipt", 3.0), ("recent", 2.0), ("total", 3.0), ("发票", 4.0), ("发展", 2.0), ("票据", 1.0)]


@pytest.fixture(scope="module")
def small_lm() -> CharLanguageModel:
    return CharLanguageModel.from_words(WORDS, order=3)


def test_probabilities_of_one_context_sum_to_at_most_one(small_lm):
    vocab = set("".join(w for w, _ in WORDS))
    for history in ("", "re", "发", "zz"):
        total = sum(small_lm.probability(history, c) for c in vocab)
        assert 0.5 < total <= 1.0 + 1e-9


def test_seen_continuations_beat_unseen_ones(small_lm):
    assert small_lm("recei", "p") > 0 > small_lm("recei", "q")
    assert small_lm("发", "票") > small_lm("发", "据")
    # an unseen pair still backs off to how common the character is: never minus infinity
    assert math.isfinite(small_lm("据", "发"))


def test_a_short_history_is_read_whole_and_cached_apart():
    """A history shorter than ``order - 1`` characters counts in full, and the bonus cache keys on
    all of it: after "xb" has been asked, "ab" must still get its own answer."""
    words = [("abc", 5.0), ("xbd", 5.0)]
    lm = CharLanguageModel.from_words(words, order=4)
    fresh = CharLanguageModel.from_words(words, order=4)
    assert lm.probability("ab", "c") > lm.probability("xb", "c")
    assert lm("xb", "c") < fresh("ab", "c") == lm("ab", "c")


def test_digits_and_punctuation_are_neutral_and_break_the_context(small_lm):
    assert small_lm("total", "5") == 0.0 and small_lm("发", "，") == 0.0
    assert small_lm("re 12", "c") == small_lm("", "c")  # the context starts after the number
    assert small_lm("RECEI", "P") == small_lm("recei", "p")  # case-folded
    assert judged_runs("A1b-发票!") == ["a", "b", "发票"]


def test_save_and_load_round_trip(small_lm, tmp_path):
    path = tmp_path / "lm.txt.gz"
    small_lm.save(path)
    loaded = CharLanguageModel.load(path)
    for prefix, ch in [("recei", "p"), ("", "t"), ("发", "票"), ("x", "q")]:
        assert loaded(prefix, ch) == pytest.approx(small_lm(prefix, ch), rel=1e-3)


def test_the_shipped_model_knows_words_in_both_languages():
    lm = default_language_model()
    assert lm("recei", "p") > lm("recei", "q")
    assert lm("中华人民共", "和") > lm("中华人民共", "利")
    assert lm("发", "票") > lm("发", "栗")


def close_call(charset: Charset, text: str, position: int, rival: str, p_rival: float) -> np.ndarray:
    """Frames spelling ``text`` (blank between letters) where ``position`` also looks like ``rival``."""
    probs = np.full((2 * len(text) + 1, charset.num_classes), 1e-6)
    probs[0::2, 0] = 1.0
    for i, ch in enumerate(text):
        probs[2 * i + 1, charset.encode(ch)[0]] = 1.0
    row = 2 * position + 1
    probs[row, charset.encode(text[position])[0]] = 1.0 - p_rival
    probs[row, charset.encode(rival)[0]] = p_rival
    return probs / probs.sum(axis=1, keepdims=True)


def test_the_language_model_flips_a_close_call_toward_the_word(charset):
    probs = close_call(charset, "recejpt", 4, "i", 0.45)  # the model leans to "j" by 0.55 : 0.45
    assert greedy_decode(probs, charset).text == "recejpt"
    labels = beam_search_labels(probs, charset, beam_width=4, scorer=default_language_model(), scorer_weight=0.2)
    assert charset.decode(list(labels)) == "receipt"
    assert needs_search(probs)


def test_a_sure_line_is_not_searched(charset):
    probs = close_call(charset, "total", 1, "a", 0.01)
    assert probs.max(axis=1).min() >= SURE_FRAME and not needs_search(probs)


def test_recognizer_lm_switch_reads_and_reports(recognizer, latin_font):
    from training.synth import render_text

    image = render_text("Receipt total", latin_font, 36).image
    greedy = recognizer.recognize([image], lm=False)[0]
    searched = recognizer.recognize([image], lm=True)[0]
    assert searched.text == greedy.text  # a clear line: the search agrees with best path
    assert [c.index for c in searched.chars] == [c.index for c in greedy.chars]
    assert recognizer.uses_lm(True) and not recognizer.uses_lm(False)


def test_a_recognizer_decodes_with_the_language_model_and_word_list_set_on_it(recognizer):
    """Studies of candidate models set them on the recogniser (``training.choose_lm_text``) instead of replacing
    the module's loaders; unset, the shipped ones are used."""
    from ocr.recognize.lexicon import Lexicon

    assert recognizer._scorer(True) is default_language_model()
    candidate, words = CharLanguageModel.from_words(WORDS), Lexicon(["receipt"])
    recognizer.language_model, recognizer.lexicon = candidate, words
    try:
        assert recognizer._scorer(True) is candidate and recognizer._scorer(False) is not candidate
    finally:
        recognizer.language_model = recognizer.lexicon = None
    assert recognizer._scorer(True) is default_language_model()


def test_page_answer_says_whether_the_language_model_was_used(service):
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "receipt_en.png"
    on = service.page_answer(example.read_bytes(), lm=True)
    off = service.page_answer(example.read_bytes(), lm=False)
    assert on["lm"] is True and off["lm"] is False
    assert on["text"] and off["text"]


def test_followers_are_looked_up_by_whole_characters():
    """The compact storage keeps a context's followers as one string and a tuple of weights: a follower is
    found only as a whole character, and a folded letter of two code points (``İ`` folds to ``i`` + a
    combining dot) is never taken for the ``i`` it starts with."""
    lm = CharLanguageModel.from_words([("aib", 2.0), ("ac", 1.0)], order=2)
    after_a = lm.followers["a"]
    assert (after_a.chars, after_a.weights, after_a.total, after_a.distinct) == ("ic", (2.0, 1.0), 3.0, 2)
    unseen = lm.probability("a", "z")
    assert lm.probability("a", "İ".lower()) == unseen < lm.probability("a", "c") < lm.probability("a", "i")
