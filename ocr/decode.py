"""CTC decoding that keeps, for every read character, where and how sure it was.

The recogniser emits one softmax distribution per time step (``STRIDE_X``
input pixels). A plain string throws away what the demo needs to explain a
reading, so every decoder here returns a :class:`LineDecoding` whose
:class:`CharSpan` s carry the frames that produced the character, the pixel
range those frames cover in the original image, a confidence computed from the
character's own frames, and the runner-up characters.

* :func:`greedy_decode` / :func:`greedy_decode_batch` – best path, used on
  every request, so the batch version does one numpy ``argmax`` and only loops
  in python over runs of frames.
* :func:`beam_search_decode` – CTC prefix beam search with an optional
  language-model hook (``ocr.recognize.language.CharLanguageModel``, :class:`LexiconScorer`);
  the recogniser uses it where ``ocr.recognize.lm_choice`` says it helps. Its spans come from
  :func:`forced_align` (Viterbi alignment of the chosen labels), so character boxes stay meaningful.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from ocr.recognize.charset import BLANK, Charset
from ocr.recognize.lineprep import STRIDE_X

__all__ = [
    "CharSpan",
    "LineDecoding",
    "greedy_decode",
    "greedy_decode_batch",
    "best_path_texts",
    "beam_search_decode",
    "beam_search_labels",
    "forced_align",
    "ctc_log_likelihood",
    "LexiconScorer",
]

_NEG_INF = -math.inf
#: runner-up candidates are searched among classes above this first (see ``_make_span``)
CANDIDATE_FLOOR = 1e-6
_LOG_FLOOR = 1e-30  # log(0) guard: keeps Viterbi/beam arithmetic finite


@dataclass
class CharSpan:
    """One decoded character and the evidence for it.

    ``index`` is the character's *class index* in the charset (the CTC output
    an explainer attributes), not its position in the text – that is the
    span's position in :attr:`LineDecoding.chars`.

    ``confidence`` is the mean, over the character's own frames only
    (``t_start..t_end``; blank frames around it never count), of the
    probability of this class. The mean rather than the max so that a
    character held confidently for one frame but doubtfully for the others
    does not look certain.

    ``t_start``/``t_end`` are inclusive time steps; ``x_start``/``x_end`` the
    pixel range ``[t_start*STRIDE_X, (t_end+1)*STRIDE_X)`` of the normalised
    line mapped back to the original image (times ``scale``, clipped to the
    image width). ``candidates`` are the top runner-up characters with their
    probabilities averaged over the same frames (blank and the chosen
    character excluded), best first.
    """

    char: str
    index: int
    confidence: float
    t_start: int
    t_end: int
    x_start: float
    x_end: float
    candidates: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class LineDecoding:
    """A decoded line.

    ``confidence`` is the geometric mean of the character confidences: one
    doubtful character pulls the line down more than an arithmetic mean
    would, and it does not shrink merely because the line is long (as a
    product would). A line read as empty gets the mean blank probability of
    its valid frames (how sure the model is that nothing is there); a line
    with no valid frames gets 0.0. Always in [0, 1].
    """

    text: str
    confidence: float
    chars: list[CharSpan]


# ---------------------------------------------------------------------------
# shared helpers


def _clip01(x: float) -> float:
    """Float rounding (float32 rows summing to 1.0000001) must not leak out."""
    return float(min(1.0, max(0.0, x)))


def _n_valid(total: int, valid_steps: int | None) -> int:
    if valid_steps is None:
        return total
    return int(min(max(int(valid_steps), 0), total))


def _as_probs(probs: np.ndarray, ndim: int) -> np.ndarray:
    arr = np.asarray(probs)
    if arr.ndim != ndim:
        raise ValueError(f"expected a {ndim}-D probability array, got shape {arr.shape}")
    return arr


def _x_range(t_start: int, t_end: int, scale: float, image_width: float | None) -> tuple[float, float]:
    """Frame range -> pixel range of the original image."""
    x0 = t_start * STRIDE_X * scale
    x1 = (t_end + 1) * STRIDE_X * scale
    hi = math.inf if image_width is None else float(image_width)
    return float(min(max(x0, 0.0), hi)), float(min(max(x1, 0.0), hi))


def _make_span(
    probs: np.ndarray,
    cls: int,
    t_start: int,
    t_end: int,
    charset: Charset,
    scale: float,
    image_width: float | None,
    top_k: int,
    confidence: float | None = None,
) -> CharSpan:
    """Build a span from the frames ``t_start..t_end`` that emitted ``cls``."""
    frames = probs[t_start : t_end + 1]
    avg = frames.mean(axis=0, dtype=np.float64)
    if confidence is None:
        confidence = float(avg[cls])
    candidates: list[tuple[str, float]] = []
    k = min(top_k, avg.shape[0] - 2)
    if k > 0:
        avg[BLANK] = -1.0
        avg[cls] = -1.0
        # exact shortcut: when k classes clear the floor, the k largest are among them, so the
        # partial sort runs over those few instead of all ~7,000 (the outputs are peaked: on
        # synthetic lines 74% of characters have k runner-ups above 1e-6)
        pool = np.flatnonzero(avg > CANDIDATE_FLOOR)
        if pool.size >= k:
            idx = pool[np.argpartition(-avg[pool], k - 1)[:k]]
        else:
            idx = np.argpartition(-avg, k - 1)[:k]
        idx = idx[np.argsort(-avg[idx], kind="stable")]
        candidates = [(charset.char(int(i)), _clip01(avg[i])) for i in idx]
    x0, x1 = _x_range(t_start, t_end, scale, image_width)
    return CharSpan(
        char=charset.char(cls),
        index=int(cls),
        confidence=_clip01(confidence),
        t_start=int(t_start),
        t_end=int(t_end),
        x_start=x0,
        x_end=x1,
        candidates=candidates,
    )


def _line(chars: list[CharSpan], probs: np.ndarray) -> LineDecoding:
    """Assemble the line and its confidence (see :class:`LineDecoding`)."""
    text = "".join(c.char for c in chars)
    if chars:
        logs = [math.log(max(c.confidence, _LOG_FLOOR)) for c in chars]
        conf = math.exp(sum(logs) / len(logs))
    elif probs.shape[0]:
        conf = float(probs[:, BLANK].mean(dtype=np.float64))
    else:
        conf = 0.0
    return LineDecoding(text=text, confidence=_clip01(conf), chars=chars)


def _decode_path(
    probs: np.ndarray,
    path: np.ndarray,
    best_p: np.ndarray,
    charset: Charset,
    scale: float,
    image_width: float | None,
    top_k: int,
) -> LineDecoding:
    """Collapse a best path (already cut to the valid frames) into spans.

    Runs of equal classes are found with numpy; python only loops over runs.
    """
    n = path.shape[0]
    if n == 0:
        return _line([], probs[:0])
    change = np.flatnonzero(path[1:] != path[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change - 1, [n - 1]))
    classes = path[starts]
    conf = np.add.reduceat(best_p.astype(np.float64), starts) / (ends - starts + 1)
    chars = [
        _make_span(probs, int(c), int(s), int(e), charset, scale, image_width, top_k, float(m))
        for c, s, e, m in zip(classes, starts, ends, conf)
        if c != BLANK
    ]
    return _line(chars, probs)


# ---------------------------------------------------------------------------
# greedy


def greedy_decode(
    probs: np.ndarray,
    charset: Charset,
    *,
    scale: float = 1.0,
    image_width: float | None = None,
    valid_steps: int | None = None,
    top_k: int = 3,
) -> LineDecoding:
    """Best-path CTC decoding of one line, ``probs`` of shape [T, C] (softmax).

    Repeats are merged, blanks dropped, so a character repeated across a
    blank yields two characters. Frames from ``valid_steps`` on (batch
    padding) are ignored.
    """
    p = _as_probs(probs, 2)
    p = p[: _n_valid(p.shape[0], valid_steps)]
    path = p.argmax(axis=1)
    best_p = np.take_along_axis(p, path[:, None], axis=1)[:, 0]
    return _decode_path(p, path, best_p, charset, scale, image_width, top_k)


def greedy_decode_batch(
    probs: np.ndarray,
    charset: Charset,
    scales: Sequence[float] | None = None,
    widths: Sequence[float | None] | None = None,
    valid_steps: Sequence[int | None] | None = None,
    *,
    top_k: int = 3,
) -> list[LineDecoding]:
    """Greedy decoding of a padded batch [B, T, C] with one argmax for all lines.

    ``scales``/``widths``/``valid_steps`` are per line (original width over
    resized width, original width, number of real frames); ``None`` means
    1.0 / no clipping / all frames. Gives exactly what :func:`greedy_decode`
    gives line by line.
    """
    p = _as_probs(probs, 3)
    b, t, _ = p.shape
    scales = [1.0] * b if scales is None else list(scales)
    widths = [None] * b if widths is None else list(widths)
    valid = [None] * b if valid_steps is None else list(valid_steps)
    if not (len(scales) == len(widths) == len(valid) == b):
        raise ValueError("scales, widths and valid_steps need one entry per line")
    paths = p.argmax(axis=2)
    best_p = np.take_along_axis(p, paths[:, :, None], axis=2)[:, :, 0]
    out = []
    for i in range(b):
        n = _n_valid(t, valid[i])
        out.append(
            _decode_path(p[i, :n], paths[i, :n], best_p[i, :n], charset, float(scales[i]), widths[i], top_k)
        )
    return out


def best_path_texts(paths: np.ndarray, char_of: Callable[[int], str],
                    valid_steps: Sequence[int] | None = None) -> list[str]:
    """Text only, for scoring: each row of best paths ``[B, T]`` (argmax class per frame) with
    repeats merged and blanks dropped, cut to its ``valid_steps``. The one plain greedy CTC collapse
    (training accuracy, benchmark peers); :func:`greedy_decode` adds the per-character evidence."""
    texts = []
    for i, row in enumerate(np.asarray(paths)):
        if valid_steps is not None:
            row = row[: valid_steps[i]]
        keep = np.ones(len(row), bool)
        keep[1:] = row[1:] != row[:-1]
        keep &= row != BLANK
        texts.append("".join(char_of(int(k)) for k in row[keep]))
    return texts


# ---------------------------------------------------------------------------
# forced alignment


def forced_align(probs: np.ndarray, labels: Sequence[int]) -> list[tuple[int, int]]:
    """Viterbi CTC alignment: the best frame path that reads exactly ``labels``.

    Returns ``(t_start, t_end)`` (inclusive) of the frames emitting each label,
    in order, or ``[]`` when the labels cannot fit the frames (each label needs
    a frame, plus a blank between equal neighbours) – and for no labels.
    Python loops over frames only; the states are handled with numpy.
    """
    p = _as_probs(probs, 2)
    labels = [int(x) for x in labels]
    if any(x == BLANK for x in labels):
        raise ValueError("labels must not contain the blank class")
    n_t, n_l = p.shape[0], len(labels)
    if n_l == 0:
        return []
    repeats = sum(1 for a, b in zip(labels, labels[1:]) if a == b)
    if n_t < n_l + repeats:
        return []

    ext = np.zeros(2 * n_l + 1, dtype=np.int64)  # blank, l1, blank, l2, ..., blank
    ext[1::2] = labels
    n_s = ext.shape[0]
    # a skip s-2 -> s is allowed into a label state whose label differs from the previous label
    can_skip = np.zeros(n_s, dtype=bool)
    can_skip[3::2] = ext[3::2] != ext[1:-2:2]
    lp = np.log(np.maximum(p[:, ext].astype(np.float64), _LOG_FLOOR))

    back = np.zeros((n_t, n_s), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    score = np.full(n_s, _NEG_INF)
    score[0] = lp[0, 0]
    score[1] = lp[0, 1]
    for t in range(1, n_t):
        stay = score
        step = np.concatenate(([_NEG_INF], score[:-1]))
        skip = np.where(can_skip, np.concatenate(([_NEG_INF, _NEG_INF], score[:-2])), _NEG_INF)
        cand = np.stack((stay, step, skip))
        choice = cand.argmax(axis=0)
        back[t] = choice
        score = cand[choice, np.arange(n_s)] + lp[t]

    ends = (n_s - 1, n_s - 2)
    s = max(ends, key=lambda e: score[e])
    if not np.isfinite(score[s]):
        return []
    states = np.empty(n_t, dtype=np.int64)
    for t in range(n_t - 1, -1, -1):
        states[t] = s
        s -= int(back[t, s])
    spans: list[tuple[int, int]] = []
    for k in range(n_l):
        frames = np.flatnonzero(states == 2 * k + 1)
        if frames.size == 0:  # cannot happen for a finite path; be safe
            return []
        spans.append((int(frames[0]), int(frames[-1])))
    return spans


def ctc_log_likelihood(probs: np.ndarray, labels: Sequence[int]) -> float:
    """log P(labels | probs): the CTC forward sum over every frame path that reads exactly ``labels``
    (``-inf`` when they cannot fit the frames). Unlike :func:`forced_align`'s single best path, the sum
    is what two readings of the same frames should be compared by."""
    p = _as_probs(probs, 2)
    labels = [int(x) for x in labels]
    if any(x == BLANK for x in labels):
        raise ValueError("labels must not contain the blank class")
    n_t = p.shape[0]
    ext = np.zeros(2 * len(labels) + 1, dtype=np.int64)  # blank, l1, blank, l2, ..., blank
    ext[1::2] = labels
    n_s = ext.shape[0]
    if n_t == 0:
        return 0.0 if not labels else _NEG_INF
    can_skip = np.zeros(n_s, dtype=bool)
    can_skip[3::2] = ext[3::2] != ext[1:-2:2]
    lp = np.log(np.maximum(p[:, ext].astype(np.float64), _LOG_FLOOR))
    alpha = np.full(n_s, _NEG_INF)
    alpha[: min(2, n_s)] = lp[0, : min(2, n_s)]
    pad = np.full(2, _NEG_INF)
    for t in range(1, n_t):
        shifted = np.concatenate((pad, alpha))
        step, skip = shifted[1:-1], np.where(can_skip, shifted[:-2], _NEG_INF)
        alpha = np.logaddexp(np.logaddexp(alpha, step), skip) + lp[t]
    return float(np.logaddexp.reduce(alpha[-2:])) if labels else float(alpha[-1])


def decoding_of(probs: np.ndarray, classes: Sequence[int], charset: Charset, *, scale: float = 1.0,
                image_width: float | None = None, top_k: int = 3) -> LineDecoding | None:
    """The reading ``classes`` (class indices another engine or decoder emitted) laid on ``probs``:
    each character's frames by :func:`forced_align`, its confidence and runner-ups from ``probs``
    over those frames, as :func:`greedy_decode` builds them. None when the reading cannot fit the frames.

    An int8 engine's reading explained with the float model: the explanation then refers to the
    very characters the engine emitted, even where the float model's own best path differs.
    """
    p = _as_probs(probs, 2)
    classes = [int(c) for c in classes]
    spans = forced_align(p, classes) if classes else []
    if classes and not spans:
        return None
    chars = [_make_span(p, c, t0, t1, charset, scale, image_width, top_k) for c, (t0, t1) in zip(classes, spans)]
    return _line(chars, p)


# ---------------------------------------------------------------------------
# beam search

Scorer = Callable[[str, str], float]


def _frame_candidates(p: np.ndarray, threshold: float, max_candidates: int) -> list[list[int]]:
    """Per frame of ``p`` [T, C]: the non-blank classes worth extending with (above ``threshold``,
    best first, at most ``max_candidates``; at least the best one). One pass over the whole line:
    the outputs are peaked, so most frames keep one or two classes."""
    if p.shape[1] <= 1 or max_candidates <= 0:
        return [[] for _ in range(p.shape[0])]
    above = p > threshold
    above[:, BLANK] = False
    # flat indices split by divmod: 2-D ``np.nonzero`` took ~7x as long on a [40, 6906] line
    rows, cols = np.divmod(np.flatnonzero(above), p.shape[1])
    by_row: list[list[int]] = [[] for _ in range(p.shape[0])]
    for r, c in zip(rows.tolist(), cols.tolist()):
        by_row[r].append(c)
    empty = [t for t, cands in enumerate(by_row) if not cands]
    if empty:  # the best non-blank class of those frames only (no copy of the whole line)
        q = p[empty]
        q[:, BLANK] = -1.0
        for t, c in zip(empty, q.argmax(axis=1).tolist()):
            by_row[t].append(c)
    for t, cands in enumerate(by_row):
        if len(cands) > 1:
            cands.sort(key=lambda c: -p[t, c])
            del cands[max_candidates:]
    return by_row


def _logaddexp(a: float, b: float) -> float:
    """log(e^a + e^b) on python floats (numpy's ufunc costs ~1 us a call on scalars)."""
    if a == _NEG_INF:
        return b
    if b == _NEG_INF:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def beam_search_decode(
    probs: np.ndarray,
    charset: Charset,
    *,
    beam_width: int = 8,
    scorer: Scorer | None = None,
    scorer_weight: float = 0.5,
    valid_steps: int | None = None,
    scale: float = 1.0,
    image_width: float | None = None,
    top_k: int = 3,
    prune_threshold: float = 1e-3,
    max_candidates: int = 16,
) -> LineDecoding:
    """CTC prefix beam search (:func:`beam_search_labels`) as a decoded line.

    Unlike best path, prefixes sum over paths, so even ``beam_width=1`` can
    differ from greedy on flat distributions; on peaked ones they agree.
    Character spans come from :func:`forced_align` of the chosen labels, so
    confidences and boxes mean the same as for greedy decoding.
    """
    p = _as_probs(probs, 2)
    p = p[: _n_valid(p.shape[0], valid_steps)]
    best = beam_search_labels(p, charset, beam_width=beam_width, scorer=scorer, scorer_weight=scorer_weight,
                              prune_threshold=prune_threshold, max_candidates=max_candidates)
    line = decoding_of(p, best, charset, scale=scale, image_width=image_width, top_k=top_k)
    if line is None:  # unalignable only if a scorer made it so: keep the text, no boxes
        line = _line([], p)
        line.text = "".join(charset.char(c) for c in best)
    return line


class _Prefixes:
    """The prefixes a beam search has reached, as integer ids of a trie (id 0: the empty prefix).

    Beams, merges and the language model's bonus cache are keyed by these ids: hashing a growing tuple of
    classes at every extension made the search quadratic in the line's length (receipt lines run to 60
    characters). Each prefix's text and bonus are made once, when it is first reached."""

    def __init__(self, charset: Charset, scorer: Scorer | None, scorer_weight: float) -> None:
        self.charset, self.scorer, self.weight = charset, scorer, scorer_weight
        self.parent: list[int] = [-1]
        self.last: list[int] = [-1]  # the prefix's last class (-1: none)
        self.text: list[str] = [""]
        self.bonus: list[float] = [0.0]  # what appending ``last`` to ``parent`` earned
        self.child: dict[tuple[int, int], int] = {}

    def add(self, node: int, c: int) -> int:
        """The new prefix ``node`` + ``c`` (the caller found it absent from ``child``)."""
        ext = self.child[(node, c)] = len(self.parent)
        char = self.charset.char(c)
        self.parent.append(node)
        self.last.append(c)
        self.text.append(self.text[node] + char)
        scorer = self.scorer
        self.bonus.append(0.0 if scorer is None else self.weight * float(scorer(self.text[node], char)))
        return ext

    def labels(self, node: int) -> tuple[int, ...]:
        out = []
        while node > 0:
            out.append(self.last[node])
            node = self.parent[node]
        return tuple(reversed(out))


def beam_search_labels(
    p: np.ndarray,
    charset: Charset,
    *,
    beam_width: int = 8,
    scorer: Scorer | None = None,
    scorer_weight: float = 0.5,
    prune_threshold: float = 1e-3,
    max_candidates: int = 16,
) -> tuple[int, ...]:
    """CTC prefix beam search (log space) over ``p`` [T, C] with an optional language-model hook:
    the class indices of the best prefix.

    Each prefix keeps the log-probability of ending in a blank and in a
    non-blank. Per frame only the classes above ``prune_threshold`` (at most
    ``max_candidates``) are tried as extensions. ``scorer(prefix_text,
    next_char)`` returns a log-domain bonus added, times ``scorer_weight``,
    whenever a character is appended.
    """
    if beam_width < 1:
        raise ValueError("beam_width must be >= 1")
    candidates = _frame_candidates(p, prune_threshold, max_candidates)
    # the log of the columns the search can read only: blank and every frame's candidates (a repeated
    # last character was a candidate where it was appended); the whole [T, C] log cost more than the search
    columns = sorted({BLANK}.union(*candidates))
    column_of = {c: j for j, c in enumerate(columns)}
    lp = np.log(np.maximum(p[:, columns].astype(np.float64), _LOG_FLOOR))
    prefixes = _Prefixes(charset, scorer, scorer_weight)
    last_of, bonus_of, add, child = prefixes.last, prefixes.bonus, prefixes.add, prefixes.child
    lae = _logaddexp
    blank_column = column_of[BLANK]
    beams: dict[int, tuple[float, float]] = {0: (0.0, _NEG_INF)}
    for t in range(lp.shape[0]):
        row = lp[t].tolist()
        blank = row[blank_column]
        cands = [(c, row[column_of[c]]) for c in candidates[t]]
        nxt: dict[int, list[float]] = {}
        for node, (pb, pnb) in beams.items():
            total = lae(pb, pnb)
            cur = nxt.get(node)
            if cur is None:
                cur = nxt[node] = [_NEG_INF, _NEG_INF]
            cur[0] = lae(cur[0], total + blank)
            last = last_of[node]
            if last >= 0:  # repeat of the last char collapses into it (never pruned)
                cur[1] = lae(cur[1], pnb + row[column_of[last]])
            for c, lp_c in cands:
                ext = child.get((node, c))
                if ext is None:
                    ext = add(node, c)
                # after a non-blank, the same char only starts a new one via a blank
                src = pb if c == last else total
                tgt = nxt.get(ext)
                if tgt is None:
                    tgt = nxt[ext] = [_NEG_INF, _NEG_INF]
                tgt[1] = lae(tgt[1], src + lp_c + bonus_of[ext])
        ranked = sorted(((lae(v[0], v[1]), k, v) for k, v in nxt.items()), key=lambda e: e[0], reverse=True)
        beams = {k: (v[0], v[1]) for _, k, v in ranked[:beam_width]}
    return prefixes.labels(max(beams.items(), key=lambda kv: lae(kv[1][0], kv[1][1]))[0])


# ---------------------------------------------------------------------------
# scorers for the beam-search hook


class LexiconScorer:
    """Bonus when the last whitespace-separated token plus ``next_char`` is in a word trie.

    Appending a space after a complete lexicon word also earns the bonus;
    anything else gets ``penalty`` (0 by default: the lexicon only prefers,
    never forbids).
    """

    _END = ""

    def __init__(self, words: Iterable[str], bonus: float = 1.0, penalty: float = 0.0) -> None:
        self.trie: dict = {}
        for word in words:
            node = self.trie
            for ch in word:
                node = node.setdefault(ch, {})
            node[self._END] = {}
        self.bonus = bonus
        self.penalty = penalty

    def _node(self, token: str) -> dict | None:
        node = self.trie
        for ch in token:
            node = node.get(ch)
            if node is None:
                return None
        return node

    def __call__(self, prefix: str, next_char: str) -> float:
        parts = prefix.split()
        token = parts[-1] if parts and not prefix[-1:].isspace() else ""
        if next_char.isspace():
            node = self._node(token) if token else None
            return self.bonus if node is not None and self._END in node else (self.penalty if token else 0.0)
        return self.bonus if self._node(token + next_char) is not None else self.penalty
