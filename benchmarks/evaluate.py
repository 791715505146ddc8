"""Score OCR output exactly as ``../shared/eval/INDEX.md`` prescribes.

Line sets (``labels.tsv``: ``relative/path<TAB>text``)::

    python -m benchmarks.evaluate LABELS.tsv --protocol zh|upper|alnum [--preds PREDS.tsv] [--json]

Page sets, end to end (``page.jsonl``)::

    python -m benchmarks.evaluate --pages PAGE.jsonl --protocol zh|upper [--preds PREDS.jsonl] [--json]

Without ``--preds`` the project's own recogniser (line sets) or pipeline
(page sets) is run to produce the predictions; ``--save-preds`` keeps them.
Errors (missing file, malformed input, model unavailable) print one line on
stderr and exit with status 2.

The protocol: normalise prediction and label (:func:`normalize`), then

* char accuracy = 1 - sum(edit distance) / sum(label length), over the whole
  set. It may go below 0; only the human-readable table clamps it at 0. It is
  ``None`` when the labels hold no characters at all (0/0);
* line accuracy = the share of items whose prediction equals the label.

End to end (:func:`score_pages`): label boxes flagged ``vertical``,
``illegible`` or ``unlabeled`` (true) are not scored. Predicted lines are
matched one-to-one to the scored label boxes by the IoU of their axis-aligned
boxes (>= 0.5), greedily by IoU, highest first. A label left unmatched counts
as an empty prediction; a prediction left unmatched adds its normalised length
to the edits and is a false positive. **Choice:** a prediction left unmatched
that overlaps a *skipped* box with IoU >= 0.5 is ignored, neither an error nor
a false positive: it found real text that simply is not scored. Skipped boxes
never take part in the one-to-one matching, so they cannot take a prediction
from a scored box, and several predictions may be ignored on one skipped box.
"""

from __future__ import annotations

import argparse
import json
import logging
import posixpath
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

from ocr.manifest import read_jsonl, read_lines, read_manifest
from ocr.textdist import PROTOCOLS, edit_distance, normalize, score_lines  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

IOU_THRESHOLD = 0.5
SKIP_FLAGS = ("vertical", "illegible", "unlabeled")

# -- end to end -------------------------------------------------------------------


def box_to_xyxy(box: Sequence[float]) -> tuple[float, float, float, float]:
    """The axis-aligned ``(x_min, y_min, x_max, y_max)`` of a box.

    ``box`` is a polygon ``[x1, y1, ..., xn, yn]`` (the 8-number quadrilateral
    of the page sets) or, with exactly 4 numbers, ``[x1, y1, x2, y2]``.
    """
    values = [float(v) for v in box]
    if len(values) < 4 or len(values) % 2:
        raise ValueError(f"a box needs 4 or an even number >= 6 of coordinates, got {len(values)}")
    xs, ys = values[0::2], values[1::2]
    return min(xs), min(ys), max(xs), max(ys)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x_min, y_min, x_max, y_max)`` boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_boxes(
    pred_boxes: Sequence[Sequence[float]],
    label_boxes: Sequence[Sequence[float]],
    threshold: float = IOU_THRESHOLD,
) -> list[tuple[int, int, float]]:
    """One-to-one ``(pred_index, label_index, iou)`` matches, greedy by IoU descending.

    Boxes are ``(x_min, y_min, x_max, y_max)``; pairs below ``threshold`` never
    match. Ties are broken by index, so the result is deterministic.
    """
    pairs = []
    for pi, pb in enumerate(pred_boxes):
        for li, lb in enumerate(label_boxes):
            v = iou(pb, lb)
            if v >= threshold:
                pairs.append((-v, pi, li))
    pairs.sort()
    used_p: set[int] = set()
    used_l: set[int] = set()
    matches = []
    for neg_v, pi, li in pairs:
        if pi not in used_p and li not in used_l:
            used_p.add(pi)
            used_l.add(li)
            matches.append((pi, li, -neg_v))
    return matches


def _is_skipped(line: dict) -> bool:
    return isinstance(line, dict) and any(bool(line.get(flag)) for flag in SKIP_FLAGS)


def _line_box(line: dict, where: str) -> tuple[float, float, float, float]:
    if not isinstance(line, dict) or "box" not in line:
        raise ValueError(f"{where}: every line needs a 'box'")
    try:
        return box_to_xyxy(line["box"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: bad box {line['box']!r} ({e})") from None


def _path_key(path: str) -> str:
    """Paths compare after ``\\`` -> ``/`` and ``./``, ``a/../`` clean-up."""
    return posixpath.normpath(str(path).replace("\\", "/"))


def _pages_by_image(pages: Iterable[dict], what: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for page in pages:
        if not isinstance(page, dict) or "image" not in page:
            raise ValueError(f"every {what} page needs an 'image'")
        key = _path_key(page["image"])
        if key in out:
            log.warning("%s page %s appears twice; the last one is used", what, page["image"])
        out[key] = page
    return out


def score_pages(pred_pages: Sequence[dict], label_pages: Sequence[dict], protocol: str) -> dict[str, Any]:
    """End-to-end scores of predicted page lines against labelled pages (see module doc).

    Pages are paired by their ``image`` path. Returns ``char_accuracy`` (None
    if the scored labels hold no characters), ``line_accuracy`` (exact matches
    over scored labels), ``precision``, ``recall``, ``f1`` (0.0 when a
    denominator is 0), ``matched``, ``n_labels`` (scored label boxes),
    ``n_preds`` (predictions, not counting those ignored on skipped boxes),
    ``chars``, ``edits``, ``n_pages``, ``n_skipped_labels``,
    ``n_ignored_preds``, ``pages_without_predictions``.
    """
    normalize("", protocol)  # fail early on a bad protocol
    labels_by_image = _pages_by_image(label_pages, "label")
    preds_by_image = _pages_by_image(pred_pages, "prediction")
    extra = set(preds_by_image) - set(labels_by_image)
    if extra:
        log.warning("%d predicted pages have no labelled page and are not scored", len(extra))

    edits = chars = exact = matched = n_labels = n_preds = n_skipped = n_ignored = 0
    without_preds = 0
    for key, label_page in labels_by_image.items():
        where = f"page {label_page['image']}"
        all_labels = label_page.get("lines") or []
        scored = [line for line in all_labels if not _is_skipped(line)]
        skipped = [line for line in all_labels if _is_skipped(line)]
        pred_page = preds_by_image.get(key)
        if pred_page is None:
            without_preds += 1
        preds = (pred_page or {}).get("lines") or []

        label_boxes = [_line_box(line, where) for line in scored]
        skipped_boxes = [_line_box(line, where) for line in skipped]
        pred_boxes = [_line_box(line, f"predictions for {where}") for line in preds]
        label_texts = [normalize(line.get("text") or "", protocol) for line in scored]
        pred_texts = [normalize(line.get("text") or "", protocol) for line in preds]

        matches = match_boxes(pred_boxes, label_boxes)
        matched_p = {pi for pi, _, _ in matches}
        matched_l = {li for _, li, _ in matches}
        for pi, li, _ in matches:
            edits += edit_distance(pred_texts[pi], label_texts[li])
            exact += pred_texts[pi] == label_texts[li]
        for li, text in enumerate(label_texts):
            chars += len(text)
            if li not in matched_l:
                edits += len(text)  # missed: scored as an empty prediction
        page_ignored = 0
        for pi, text in enumerate(pred_texts):
            if pi in matched_p:
                continue
            if any(iou(pred_boxes[pi], sb) >= IOU_THRESHOLD for sb in skipped_boxes):
                page_ignored += 1  # real text, but on a box that is not scored
            else:
                edits += len(text)  # false positive
        matched += len(matches)
        n_labels += len(scored)
        n_preds += len(preds) - page_ignored
        n_skipped += len(skipped)
        n_ignored += page_ignored

    if without_preds:
        log.warning("%d of %d labelled pages have no predictions; all their boxes count as missed",
                    without_preds, len(labels_by_image))
    precision = matched / n_preds if n_preds else 0.0
    recall = matched / n_labels if n_labels else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "char_accuracy": 1.0 - edits / chars if chars else None,
        "line_accuracy": exact / n_labels if n_labels else None,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "matched": matched,
        "n_labels": n_labels,
        "n_preds": n_preds,
        "chars": chars,
        "edits": edits,
        "n_pages": len(labels_by_image),
        "n_skipped_labels": n_skipped,
        "n_ignored_preds": n_ignored,
        "pages_without_predictions": without_preds,
    }


# -- files -------------------------------------------------------------------------


def _is_confidence(field: str) -> bool:
    if not field.strip():
        return True
    try:
        float(field)
    except ValueError:
        return False
    return True


def read_predictions(path: Path | str) -> dict[str, str]:
    """``{relative_path: prediction}`` of a ``preds.tsv`` (``path<TAB>prediction<TAB>confidence``).

    The path ends at the first tab. The confidence column is optional: the
    last field counts as one only if it is a number (or empty), so a
    prediction may itself hold a tab. On a repeated path the last line wins.
    """
    preds: dict[str, str] = {}
    for lineno, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise ValueError(f"{path}:{lineno}: expected 'path<TAB>prediction<TAB>confidence'")
        rel, rest = line.split("\t", 1)
        text = rest
        if "\t" in rest:
            head, tail = rest.rsplit("\t", 1)
            if _is_confidence(tail):
                text = head
        if rel in preds:
            log.warning("%s:%d: %s predicted twice; the last one is used", path, lineno, rel)
        preds[rel] = text
    return preds


# -- running the project's own model -------------------------------------------------


class _CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _tsv_field(text: str) -> str:
    # Whitespace is not scored by any protocol, so this changes no score.
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _recognize_lines(items: list[tuple[str, str]], base: Path, batch_size: int) -> list[tuple[str, float]]:
    try:
        from ocr.recognize.recognizer import Recognizer
    except ImportError as e:
        raise _CLIError(f"no --preds given and the recogniser cannot be imported ({e})") from None
    from ocr.errors import OCRError
    from ocr.imageio import load_image

    recognizer = Recognizer.load()
    out: list[tuple[str, float]] = []
    for start in range(0, len(items), batch_size):
        batch = items[start:start + batch_size]
        images, loaded = [], []
        for rel, _ in batch:
            try:
                images.append(load_image(base / rel))
                loaded.append(True)
            except OCRError as e:
                log.warning("%s: %s; scored as an empty prediction", rel, e)
                loaded.append(False)
        results = iter(recognizer.recognize(images) if images else [])
        for ok in loaded:
            if ok:
                r = next(results)
                out.append((r.text, float(r.confidence)))
            else:
                out.append(("", 0.0))
        log.info("recognised %d / %d lines", len(out), len(items))
    return out


def _run_pipeline(label_pages: list[dict], base: Path) -> list[dict]:
    try:
        from ocr.pipeline import OCRPipeline
    except ImportError as e:
        raise _CLIError(f"no --preds given and the OCR pipeline cannot be imported ({e})") from None
    import numpy as np

    from ocr.errors import OCRError
    from ocr.imageio import load_image

    # OCRPipeline() is the documented constructor; prefer a load() factory if it has one.
    pipeline = OCRPipeline.load() if callable(getattr(OCRPipeline, "load", None)) else OCRPipeline()
    pred_pages = []
    for i, page in enumerate(label_pages, 1):
        lines = []
        try:
            image = load_image(base / page["image"])
        except OCRError as e:
            log.warning("%s: %s; scored as a page with no predictions", page["image"], e)
        else:
            for line in pipeline.run(image).lines:
                confidence = getattr(line, "confidence", None)
                lines.append({
                    "box": np.asarray(line.box, dtype=float).reshape(-1).tolist(),
                    "text": line.text,
                    "confidence": None if confidence is None else float(confidence),
                })
        pred_pages.append({"image": page["image"], "lines": lines})
        log.info("page %d / %d done", i, len(label_pages))
    return pred_pages


# -- command line --------------------------------------------------------------------


def _require_file(path: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise _CLIError(f"file not found: {path}")
    if p.is_dir():
        raise _CLIError(f"a directory, not a file: {path}")
    return p


def _evaluate_lines(labels: str, preds: str | None, protocol: str,
                    save_preds: str | None, batch_size: int) -> dict[str, Any]:
    labels_path = _require_file(labels)
    items = read_manifest(labels_path)
    if preds is not None:
        by_key = {_path_key(k): v for k, v in read_predictions(_require_file(preds)).items()}
        texts, missing = [], 0
        for rel, _ in items:
            text = by_key.get(_path_key(rel))
            if text is None:
                missing += 1
                text = ""
            texts.append(text)
        if missing:
            log.warning("%d of %d items have no prediction; scored as empty", missing, len(items))
    else:
        recognised = _recognize_lines(items, labels_path.parent, batch_size)
        texts, missing = [t for t, _ in recognised], 0
        if save_preds:
            with open(save_preds, "w", encoding="utf-8") as f:
                for (rel, _), (text, conf) in zip(items, recognised):
                    f.write(f"{rel}\t{_tsv_field(text)}\t{conf:.4f}\n")
    result = score_lines(texts, [t for _, t in items], protocol)
    result.update(protocol=protocol, labels=str(labels), predictions=preds or "model",
                  missing_predictions=missing)
    return result


def _evaluate_pages(pages: str, preds: str | None, protocol: str, save_preds: str | None) -> dict[str, Any]:
    pages_path = _require_file(pages)
    label_pages = read_jsonl(pages_path)
    if preds is not None:
        pred_pages = read_jsonl(_require_file(preds))
    else:
        pred_pages = _run_pipeline(label_pages, pages_path.parent)
        if save_preds:
            with open(save_preds, "w", encoding="utf-8") as f:
                for page in pred_pages:
                    f.write(json.dumps(page, ensure_ascii=False) + "\n")
    result = score_pages(pred_pages, label_pages, protocol)
    result.update(protocol=protocol, pages=str(pages), predictions=preds or "model")
    return result


def _pct(value: float | None, clamp: bool = False) -> str:
    if value is None:
        return "n/a"
    if clamp and value < 0:
        return f"0.00% (raw {100 * value:.2f}%)"
    return f"{100 * value:.2f}%"


def format_table(result: dict[str, Any]) -> str:
    """A small human-readable table of a line or page result."""
    if "precision" in result:
        rows = [
            ("pages", result["pages"]),
            ("protocol", result["protocol"]),
            ("page count", f"{result['n_pages']} (without predictions: {result['pages_without_predictions']})"),
            ("label boxes", f"{result['n_labels']} (skipped: {result['n_skipped_labels']})"),
            ("predicted lines", f"{result['n_preds']} (ignored on skipped boxes: {result['n_ignored_preds']})"),
            ("matched", result["matched"]),
            ("precision", _pct(result["precision"])),
            ("recall", _pct(result["recall"])),
            ("F1", _pct(result["f1"])),
            ("char accuracy", _pct(result["char_accuracy"], clamp=True)),
            ("line accuracy", _pct(result["line_accuracy"])),
        ]
    else:
        rows = [
            ("labels", result["labels"]),
            ("protocol", result["protocol"]),
            ("items", f"{result['n']} (without prediction: {result['missing_predictions']})"),
            ("characters", result["chars"]),
            ("edits", result["edits"]),
            ("char accuracy", _pct(result["char_accuracy"], clamp=True)),
            ("line accuracy", _pct(result["line_accuracy"])),
        ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.evaluate",
        description="Score OCR predictions per ../shared/eval/INDEX.md.",
    )
    parser.add_argument("labels", nargs="?", help="a line set's labels.tsv")
    parser.add_argument("--pages", help="a page set's page.jsonl (end-to-end scoring)")
    parser.add_argument("--protocol", required=True, choices=PROTOCOLS, help="normalisation")
    parser.add_argument("--preds", help="predictions: preds.tsv for lines, preds.jsonl for pages; "
                        "without it the project's model is run")
    parser.add_argument("--save-preds", help="when the model is run, also write its predictions here")
    parser.add_argument("--batch-size", type=int, default=32, help="recogniser batch size (default 32)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = parser.parse_args(argv)
    if (args.labels is None) == (args.pages is None):
        parser.error("give either LABELS.tsv or --pages PAGE.jsonl")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")

    from ocr.errors import OCRError

    try:
        if args.pages is not None:
            result = _evaluate_pages(args.pages, args.preds, args.protocol, args.save_preds)
        else:
            result = _evaluate_lines(args.labels, args.preds, args.protocol, args.save_preds,
                                     args.batch_size)
    except (_CLIError, OCRError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        name = f": {e.filename}" if e.filename else ""
        print(f"error: {e.strerror or e}{name}", file=sys.stderr)
        return 2

    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
