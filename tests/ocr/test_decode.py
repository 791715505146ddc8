"""CTC decoding: collapse rules, spans, confidences, batch/beam agreement, alignment."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ocr.recognize.charset import Charset
from ocr.decode import (
    LexiconScorer,
    LineDecoding,
    beam_search_decode,
    forced_align,
    greedy_decode,
    greedy_decode_batch,
)
from ocr.recognize.network import STRIDE_X

CS = Charset(list("abc元无 "))
C = CS.num_classes


def frames(seq: str, p: float = 0.9) -> np.ndarray:
    """One peaked frame per symbol of ``seq`` ('-' = blank); the rest spread evenly."""
    out = np.full((len(seq), C), (1.0 - p) / (C - 1))
    for t, s in enumerate(seq):
        out[t, 0 if s == "-" else CS.encode(s)[0]] = p
    return out


def random_probs(rng: np.random.Generator, t: int, sharp: float = 2.0) -> np.ndarray:
    z = rng.standard_normal((t, C)) * sharp
    z[:, 0] += 1.0  # blanks common, as in a real CTC model
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def spans(line: LineDecoding) -> list[tuple[int, int]]:
    return [(c.t_start, c.t_end) for c in line.chars]


def assert_same(a: LineDecoding, b: LineDecoding) -> None:
    assert a.text == b.text
    assert a.confidence == pytest.approx(b.confidence)
    assert len(a.chars) == len(b.chars)
    for x, y in zip(a.chars, b.chars):
        assert (x.char, x.index, x.t_start, x.t_end) == (y.char, y.index, y.t_start, y.t_end)
        assert x.confidence == pytest.approx(y.confidence)
        assert (x.x_start, x.x_end) == pytest.approx((y.x_start, y.x_end))
        assert [c for c, _ in x.candidates] == [c for c, _ in y.candidates]
        assert [q for _, q in x.candidates] == pytest.approx([q for _, q in y.candidates])


# --- greedy: collapse rules and spans ------------------------------------------------


def test_repeats_merge():
    assert greedy_decode(frames("aa-b"), CS).text == "ab"


def test_blank_separates_repeats():
    line = greedy_decode(frames("a-a"), CS)
    assert line.text == "aa"
    assert spans(line) == [(0, 0), (2, 2)]


def test_adjacent_different_chars_without_blank():
    assert greedy_decode(frames("ab"), CS).text == "ab"


def test_all_blank_is_empty():
    probs = frames("----", p=0.8)
    line = greedy_decode(probs, CS)
    assert line.text == "" and line.chars == []
    assert line.confidence == pytest.approx(0.8)  # mean blank probability


def test_no_frames():
    line = greedy_decode(np.zeros((0, C)), CS)
    assert line == LineDecoding("", 0.0, [])


def test_spans_exact():
    line = greedy_decode(frames("-aa--bbb-元-元元 -"), CS)
    assert line.text == "ab元元 "
    assert spans(line) == [(1, 2), (5, 7), (9, 9), (11, 12), (13, 13)]
    assert [c.index for c in line.chars] == CS.encode("ab元元 ")


def test_x_ranges_scaled_and_clipped():
    probs = frames("---aa--b")
    line = greedy_decode(probs, CS, scale=2.0)
    a, b = line.chars
    assert (a.t_start, a.t_end) == (3, 4)
    assert (a.x_start, a.x_end) == (48.0, 80.0)
    assert (b.x_start, b.x_end) == (7 * STRIDE_X * 2.0, 8 * STRIDE_X * 2.0)
    clipped = greedy_decode(probs, CS, scale=2.0, image_width=120.0)
    assert (clipped.chars[0].x_start, clipped.chars[0].x_end) == (48.0, 80.0)
    assert (clipped.chars[1].x_start, clipped.chars[1].x_end) == (112.0, 120.0)


def test_confidence_from_own_frames_only():
    probs = np.vstack([frames("--", p=0.99), frames("aa", p=0.9), frames("--", p=0.99)])
    line = greedy_decode(probs, CS)
    assert line.text == "a"
    assert line.chars[0].confidence == pytest.approx(0.9)
    assert line.confidence == pytest.approx(0.9)


def test_confidence_is_mean_of_own_frames():
    probs = np.vstack([frames("a", p=0.9), frames("a", p=0.5)])
    assert greedy_decode(probs, CS).chars[0].confidence == pytest.approx(0.7)


def test_candidates_are_runners_up():
    probs = np.full((2, C), 0.01)
    a, b, yuan = CS.encode("ab元")
    probs[:, a] = 0.6
    probs[:, b] = [0.2, 0.12]
    probs[:, yuan] = [0.1, 0.18]
    probs[:, 0] = 0.05
    probs /= probs.sum(axis=1, keepdims=True)
    (ch,) = greedy_decode(probs, CS, top_k=2).chars
    assert [c for c, _ in ch.candidates] == ["b", "元"]  # 0.16 vs 0.14 on average
    assert all(c not in ("a", "") for c, _ in ch.candidates)
    assert sum(q for _, q in ch.candidates) == pytest.approx(probs[:, [b, yuan]].mean(axis=0).sum())
    assert len(greedy_decode(probs, CS).chars[0].candidates) == 3
    assert greedy_decode(probs, CS, top_k=0).chars[0].candidates == []


def test_valid_steps_cuts_padding():
    probs = frames("a-b-c")
    line = greedy_decode(probs, CS, valid_steps=3)
    assert line.text == "ab"
    assert max(c.t_end for c in line.chars) < 3


# --- greedy: random invariants -------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_random_invariants(seed):
    rng = np.random.default_rng(seed)
    t = int(rng.integers(1, 61))
    probs = random_probs(rng, t)
    valid = int(rng.integers(0, t + 1))
    scale = float(rng.uniform(0.5, 3.0))
    width = float(rng.uniform(1.0, t * STRIDE_X * scale))
    for v in (None, valid):
        line = greedy_decode(probs, CS, scale=scale, image_width=width, valid_steps=v)
        n = t if v is None else v
        assert 0.0 <= line.confidence <= 1.0
        assert line.text == "".join(c.char for c in line.chars)
        prev_end = -1
        for c in line.chars:
            assert c.char in CS and CS.char(c.index) == c.char
            assert 0.0 <= c.confidence <= 1.0
            assert prev_end < c.t_start <= c.t_end < n
            assert 0.0 <= c.x_start <= c.x_end <= width
            assert all(0.0 <= q <= 1.0 and ch in CS and ch != c.char for ch, q in c.candidates)
            prev_end = c.t_end


# --- batch ---------------------------------------------------------------------------


def test_batch_equals_per_line():
    rng = np.random.default_rng(7)
    b, t = 5, 40
    probs = np.stack([random_probs(rng, t) for _ in range(b)]).astype(np.float32)
    valid = [40, 0, 17, 1, 33]
    scales = [1.0, 2.0, 0.5, 1.5, 3.0]
    widths = [320.0, 100.0, None, 50.0, 800.0]
    batch = greedy_decode_batch(probs, CS, scales, widths, valid)
    assert len(batch) == b
    for i in range(b):
        single = greedy_decode(probs[i], CS, scale=scales[i], image_width=widths[i], valid_steps=valid[i])
        assert_same(batch[i], single)


def test_batch_defaults():
    probs = np.stack([frames("a-b"), frames("--c")])
    assert [d.text for d in greedy_decode_batch(probs, CS)] == ["ab", "c"]


# --- beam search ---------------------------------------------------------------------


def random_peaked(rng: np.random.Generator, t: int) -> np.ndarray:
    seq = "".join(rng.choice(list("-----abc元无 "), size=t))
    return frames(seq, p=0.95)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("width", [1, 8])
def test_beam_equals_greedy_on_peaked(seed, width):
    rng = np.random.default_rng(100 + seed)
    probs = random_peaked(rng, int(rng.integers(1, 40)))
    g = greedy_decode(probs, CS, scale=1.5)
    b = beam_search_decode(probs, CS, beam_width=width, scale=1.5)
    assert_same(b, g)


def test_beam_collapse_rules():
    assert beam_search_decode(frames("aa-b"), CS).text == "ab"
    assert beam_search_decode(frames("a-a"), CS).text == "aa"
    line = beam_search_decode(frames("---"), CS)
    assert line.text == "" and line.chars == []


@pytest.mark.parametrize("seed", range(4))
def test_beam_random_invariants(seed):
    rng = np.random.default_rng(200 + seed)
    t = int(rng.integers(1, 30))
    probs = random_probs(rng, t, sharp=1.0)
    valid = int(rng.integers(0, t + 1))
    line = beam_search_decode(probs, CS, beam_width=4, valid_steps=valid)
    assert 0.0 <= line.confidence <= 1.0
    assert line.text == "".join(c.char for c in line.chars)
    prev_end = -1
    for c in line.chars:
        assert 0.0 <= c.confidence <= 1.0
        assert prev_end < c.t_start <= c.t_end < valid
        prev_end = c.t_end


def _best_by_enumeration(probs: np.ndarray, scorer, weight: float) -> tuple[int, ...]:
    """Every label sequence over a 3-class alphabet that fits the frames, scored exactly: the CTC forward
    sum plus ``weight`` times the scorer's bonus for each appended character."""
    import itertools

    from ocr.decode import ctc_log_likelihood

    alphabet = CS.encode("ab元")
    best, best_score = (), -math.inf
    for n in range(probs.shape[0] + 1):
        for labels in itertools.product(alphabet, repeat=n):
            text = "".join(CS.char(c) for c in labels)
            bonus = sum(scorer(text[:i], text[i]) for i in range(n)) if scorer else 0.0
            score = ctc_log_likelihood(probs, labels) + weight * bonus
            if score > best_score:
                best, best_score = labels, score
    return best


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("with_scorer", [False, True])
def test_beam_search_is_exact_when_nothing_is_pruned(seed, with_scorer):
    """With every class tried and every prefix kept, the prefix search must find the exact best reading
    (prefixes that reach one label sequence by different frame paths merged into one): checks the search's
    prefix bookkeeping against brute force, with and without a language-model bonus."""
    from ocr.decode import beam_search_labels

    rng = np.random.default_rng(500 + seed)
    probs = random_probs(rng, 5, sharp=1.5)
    keep = [0, *CS.encode("ab元")]  # a 3-letter alphabet keeps the enumeration small
    probs[:, [c for c in range(C) if c not in keep]] = 0.0
    probs /= probs.sum(axis=1, keepdims=True)
    scorer = LexiconScorer(["ab", "元a"], bonus=1.5) if with_scorer else None
    found = beam_search_labels(probs, CS, beam_width=10_000, scorer=scorer, scorer_weight=1.0,
                               prune_threshold=0.0, max_candidates=C)
    assert found == _best_by_enumeration(probs, scorer, 1.0)


def close_call() -> np.ndarray:
    probs = frames("---")
    yuan, wu = CS.encode("元无")
    probs[1] = 0.0
    probs[1, yuan], probs[1, wu], probs[1, 0] = 0.45, 0.40, 0.15
    return probs


def test_lexicon_flips_close_decision():
    probs = close_call()
    assert greedy_decode(probs, CS).text == "元"
    assert beam_search_decode(probs, CS).text == "元"
    line = beam_search_decode(probs, CS, scorer=LexiconScorer(["无"]))
    assert line.text == "无"
    assert (line.chars[0].t_start, line.chars[0].t_end) == (1, 1)
    assert line.chars[0].confidence == pytest.approx(0.40)
    assert line.chars[0].candidates[0][0] == "元"


def test_ngram_flips_close_decision():
    from ocr.recognize.language import CharLanguageModel

    scorer = CharLanguageModel.from_words([("无无无", 1.0), ("无a", 1.0), ("无b", 1.0), ("a元", 0.1)], order=3)
    assert scorer("", "无") > 0 > scorer("", "元")
    assert beam_search_decode(close_call(), CS, scorer=scorer).text == "无"


def test_lexicon_scorer_tokens():
    lex = LexiconScorer(["cab", "ab"], bonus=2.0)
    assert lex("", "c") == 2.0
    assert lex("ca", "b") == 2.0
    assert lex("ca", "c") == 0.0
    assert lex("x ca", "b") == 2.0
    assert lex("x cab", " ") == 2.0
    assert lex("x ca", " ") == 0.0


# --- forced alignment ----------------------------------------------------------------


def test_forced_align_exact():
    a, b = CS.encode("ab")
    assert forced_align(frames("-aa-b-"), [a, b]) == [(1, 2), (4, 4)]
    assert forced_align(frames("a-a"), [a, a]) == [(0, 0), (2, 2)]


def test_forced_align_impossible():
    a, b, c = CS.encode("abc")
    assert forced_align(frames("--"), [a, a]) == []  # needs a blank between the a's
    assert forced_align(frames("--"), [a, b, c]) == []
    assert forced_align(frames("---"), []) == []
    assert forced_align(frames("ab"), [a, b]) == [(0, 0), (1, 1)]


@pytest.mark.parametrize("seed", range(8))
def test_forced_align_random(seed):
    rng = np.random.default_rng(300 + seed)
    labels = [int(x) for x in rng.integers(1, C, size=int(rng.integers(1, 8)))]
    need = len(labels) + sum(x == y for x, y in zip(labels, labels[1:]))
    t = need + int(rng.integers(0, 20))
    out = forced_align(random_probs(rng, t), labels)
    assert len(out) == len(labels)
    prev_end = -1
    for (s, e), x, nxt in zip(out, labels, labels[1:] + [None]):
        assert prev_end < s <= e < t
        prev_end = e if nxt != x else e + 1  # equal neighbours need a blank frame between
    assert forced_align(random_probs(rng, need - 1), labels) == []


def test_candidates_are_the_exact_runner_ups_on_peaked_and_flat_frames():
    """The floor shortcut of ``_make_span`` finds the same runner-ups as a full sort."""
    from ocr.decode import _make_span

    rng = np.random.default_rng(11)
    charset = Charset([chr(0x4E00 + i) for i in range(3000)])  # a real-sized class count
    n = charset.num_classes
    for trial in range(200):
        logits = rng.normal(0, 1 + 15 * (trial % 3), (4, n))  # flat to very peaked
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs = (probs / probs.sum(1, keepdims=True)).astype(np.float32)
        cls = int(probs.mean(0).argmax()) or 1
        span = _make_span(probs, cls, 0, 3, charset, 1.0, None, top_k=3)
        avg = probs.mean(0, dtype=np.float64)
        avg[0] = avg[cls] = -1.0
        expected = [charset.char(int(i)) for i in np.argsort(-avg, kind="stable")[:3]]
        assert [c for c, _ in span.candidates] == expected
