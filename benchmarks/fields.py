"""Key fields (``ocr.fields``): exact match and F1 per field, the rules beside a plain baseline.

    python -m benchmarks.fields --eval               # our pipeline end to end on the SROIE eval pages and the
                                                     # examples/ invoices and receipts; writes BENCHMARKS.md
    python -m benchmarks.fields --train              # SROIE training receipts, ground-truth lines (develop here)
    python -m benchmarks.fields --train --errors     # … and print every miss
    python -m benchmarks.fields --train --ocr-lines  # the same receipts, each line crop read by our recogniser
    python -m benchmarks.fields --train --perturb-layout   # boxes cut and joined at random, as a detector might
    python -m benchmarks.fields --train --ocr-lines --calibrate   # the "check it" thresholds (RECEIPT_REVIEW_BELOW)

Scoring (SROIE task 3 style): a field is correct when its normalised value equals the normalised
truth (``ocr.fields.normalize_field``: dates as ISO, amounts as decimals, text under the ``upper``
protocol). Exact-match accuracy is over pages whose truth is non-empty; precision = correct / fields
answered, recall = correct / fields in the truth, F1 their harmonic mean. The rules were developed
on the training receipts only; ``--eval`` is for measuring, never for tuning (``../shared/eval/INDEX.md``).

The markdown section is written between ``<!-- bench:fields:start -->`` and ``<!-- bench:fields:end -->``
of ``--out`` (default ``BENCHMARKS.md``; with ``--limit`` only if given). ``python -m benchmarks`` runs
:func:`evaluate` after the pages and writes the same section.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import shlex
import statistics
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from benchmarks.report import positive_int, write_marked_section
from ocr.fields import FIELD_NAMES, RECEIPT, VAT_INVOICE, baseline_fields, extract_fields, normalize_field
from ocr.manifest import read_jsonl
from ocr.recognize.models import MODELS
from ocr.settings import EVAL_ROOT, EXAMPLES_DIR, ROOT, Settings

log = logging.getLogger("benchmarks.fields")

DEFAULT_OUT = ROOT / "BENCHMARKS.md"
MARK_START = "<!-- bench:fields:start -->"
MARK_END = "<!-- bench:fields:end -->"
SROIE_PAGES = "en_receipts_sroie_pages"
TRAIN_SET = "en_receipts_sroie_train_lines"
EXAMPLES_TRUTH = EXAMPLES_DIR / "fields.json"
METHODS: dict[str, Callable[..., Any]] = {"rules": extract_fields, "baseline": baseline_fields}
#: the issue's targets on the SROIE eval pages, read end to end (exact match of the rules)
TARGETS = {"total": 0.85, "date": 0.85, "company": 0.70, "address": 0.50}


# -- scoring ------------------------------------------------------------------------------------


def _prf(correct: int, answered: int, n_truth: int) -> dict[str, Any]:
    prec = correct / answered if answered else 0.0
    rec = correct / n_truth if n_truth else 0.0
    return {"n": n_truth, "correct": correct, "answered": answered, "exact": rec, "precision": prec,
            "recall": rec, "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0}


def score(preds: Sequence[dict[str, str]], truths: Sequence[dict[str, str]], names: Sequence[str]) -> dict[str, Any]:
    """Per field and over all fields: exact-match accuracy (non-empty truths) and precision / recall / F1."""
    out: dict[str, Any] = {}
    total = [0, 0, 0]
    for name in names:
        counts = [0, 0, 0]  # correct, answered, in the truth
        for pred, truth in zip(preds, truths):
            p, t = normalize_field(name, pred.get(name, "")), normalize_field(name, truth.get(name, ""))
            counts[0] += bool(t) and p == t
            counts[1] += bool(p)
            counts[2] += bool(t)
        out[name] = _prf(*counts)
        total = [a + b for a, b in zip(total, counts)]
    out["all"] = _prf(*total)
    return out


def run_methods(pages: Sequence[Any], kind: str | None = None) -> dict[str, list[dict[str, str]]]:
    """Values of every page by the rules and by the baseline."""
    return {m: [{k: f.value for k, f in fn(p, kind).fields.items()} for p in pages] for m, fn in METHODS.items()}


def print_errors(ids: Sequence[str], preds: Sequence[dict[str, str]], truths: Sequence[dict[str, str]],
                 names: Sequence[str]) -> None:
    for i, pred, truth in zip(ids, preds, truths):
        for name in names:
            p, t = normalize_field(name, pred.get(name, "")), normalize_field(name, truth.get(name, ""))
            if t and p != t:
                print(f"{i} {name:8s} got {pred.get(name, '')!r}\n{'':13s}want {truth.get(name)!r}")


# -- the training receipts (development) -----------------------------------------------------------


def load_train_receipts(folder: Path) -> list[dict[str, Any]]:
    """The 167 training receipts as {id, lines: [{text, box, image}], truth}: lines rebuilt from labels + provenance."""
    labels = dict(line.rstrip("\n").split("\t", 1) for line in open(folder / "labels.tsv", encoding="utf-8"))
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with open(folder / "provenance.tsv", encoding="utf-8") as fh:
        next(fh)
        for row in fh:
            image, source, _sha, box = row.rstrip("\n").split("\t")
            by_source[source].append({"text": labels[image], "box": [float(v) for v in box.split(",")], "image": image})
    return [{"id": item["receipt"], "lines": by_source[item["source_path"]], "truth": item["key_fields"]}
            for item in read_jsonl(folder / "key_fields.jsonl")]


def reader_key() -> str:
    """What a cached reading depends on: the weights (``ocr.service.weights_fingerprint``), the
    language-model choice and the decoding code (a cache of an older reader once went unnoticed)."""
    from ocr.recognize import lm_choice
    from ocr.service import weights_fingerprint

    root = Path(__file__).resolve().parents[1] / "ocr"
    digest = hashlib.sha256(weights_fingerprint().encode())
    digest.update(repr((lm_choice.LM_DEFAULT, lm_choice.LM_WEIGHT, lm_choice.LM_BEAM_WIDTH)).encode())
    for source in ("decode.py", "recognize/language.py", "recognize/recognizer.py", "recognize/lineprep.py"):
        digest.update((root / source).read_bytes())
    return digest.hexdigest()


def read_train_lines(receipts: list[dict[str, Any]], folder: Path, cache: Path) -> list[dict[str, Any]]:
    """The training receipts with each line's text as our recogniser reads its crop (confidences kept).

    Robustness to recognition noise without touching the eval pages: the boxes stay the annotated
    ones (no detection errors), the text and per-character confidences are ours. Cached as JSON at
    ``cache`` (outside the repository): reading 8,576 crops takes minutes. The cache holds the
    ``reader_key`` it was read with; another key (new weights, decoder or language model) reads again.
    """
    key = reader_key()
    stored = json.loads(cache.read_text(encoding="utf-8")) if cache.exists() else {}
    reads = stored.get("reads") if stored.get("key") == key else None
    if reads is None:
        from ocr.recognize.recognizer import Recognizer

        rec = Recognizer.load(threads=1)
        paths = [line.rstrip("\n").split("\t", 1)[0] for line in open(folder / "labels.tsv", encoding="utf-8")]
        reads = {}
        for start in range(0, len(paths), 64):
            batch = paths[start:start + 64]
            for path, res in zip(batch, rec.recognize([str(folder / p) for p in batch])):
                reads[path] = {"text": res.text, "confidence": res.confidence,
                               "chars": [{"char": c.char, "confidence": c.confidence} for c in res.chars]}
        cache.write_text(json.dumps({"key": key, "reads": reads}, ensure_ascii=False), encoding="utf-8")
    return [{**r, "lines": [{**line, **reads[line["image"]]} for line in r["lines"]]} for r in receipts]


def _cut(lines: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Each line with a space cut at a random space with probability 0.3 (box split by characters)."""
    out = []
    for ln in lines:
        x1, y1, x2, y2 = ln["box"]
        spaces = [i for i, ch in enumerate(ln["text"]) if ch == " "]
        if spaces and rng.random() < 0.3:
            cut = rng.choice(spaces)
            xc = x1 + (x2 - x1) * cut / len(ln["text"])
            out.append({"text": ln["text"][:cut], "box": [x1, y1, xc - 2, y2]})
            out.append({"text": ln["text"][cut + 1:], "box": [xc + 2, y1, x2, y2]})
        else:
            out.append({"text": ln["text"], "box": [x1, y1, x2, y2]})
    return sorted(out, key=lambda ln: (ln["box"][1], ln["box"][0]))


def _join(lines: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """With probability 0.3 a line joined to the next box on its row when the gap is under three characters."""
    joined: list[dict[str, Any]] = []
    for ln in lines:
        prev = joined[-1] if joined else None
        height = ln["box"][3] - ln["box"][1]
        if prev is not None and rng.random() < 0.3 and abs(prev["box"][1] - ln["box"][1]) < 0.3 * height:
            char_w = (prev["box"][2] - prev["box"][0]) / max(len(prev["text"]), 1)
            if 0 <= ln["box"][0] - prev["box"][2] < 3 * char_w:
                b = prev["box"]
                joined[-1] = {"text": prev["text"] + " " + ln["text"],
                              "box": [b[0], min(b[1], ln["box"][1]), ln["box"][2], max(b[3], ln["box"][3])]}
                continue
        joined.append(ln)
    return joined


def perturb_layout(receipts: list[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """The receipts with their boxes cut and joined the way a detector might; the text stays the annotation's."""
    rng = random.Random(seed)
    return [{**r, "lines": _join(_cut(r["lines"], rng), rng)} for r in receipts]


def rule_reliability(receipts: list[dict[str, Any]]) -> dict[str, str]:
    """How often each rule's pick is right on the training receipts (the RELIABILITY constants)."""
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in receipts:
        for name, f in extract_fields(r["lines"]).fields.items():
            t = normalize_field(name, r["truth"].get(name, ""))
            if t:
                hits[f.rule][0] += normalize_field(name, f.value) == t
                hits[f.rule][1] += 1
    return {rule: f"{ok}/{n} = {ok / n:.2f}" for rule, (ok, n) in sorted(hits.items())}


def review_thresholds(receipts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per field, the confidence at or below which marking a field "check it" best catches the wrong ones
    (F1 of marked vs wrong, on a 0.01 grid): ``ocr.fields.model.RECEIPT_REVIEW_BELOW``."""
    seen: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    for r in receipts:
        for name, f in extract_fields(r["lines"]).fields.items():
            t = normalize_field(name, r["truth"].get(name, ""))
            if t:
                seen[name].append((f.confidence, normalize_field(name, f.value) != t))
    out = {}
    for name, rows in seen.items():
        wrong = sum(w for _, w in rows)
        best = (-1.0, 0.0, 0, 0)
        for step in range(30, 100):
            t = step / 100
            marked = [w for c, w in rows if c <= t]
            caught = sum(marked)
            f1 = 2 * caught / (len(marked) + wrong) if marked or wrong else 0.0
            if f1 > best[0] + 1e-9:
                best = (f1, t, len(marked), caught)
        out[name] = {"review_below": best[1], "f1": round(best[0], 3), "marked": best[2], "wrong_caught": best[3],
                     "wrong": wrong, "fields": len(rows)}
    return out


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Score both methods on the training receipts (printed; never written to BENCHMARKS.md)."""
    folder = args.train_dir
    receipts = load_train_receipts(folder)
    if args.ocr_lines:
        receipts = read_train_lines(receipts, folder, args.ocr_cache)
    if args.perturb_layout:
        receipts = perturb_layout(receipts)
    names = FIELD_NAMES[RECEIPT]
    truths = [r["truth"] for r in receipts]
    started = time.perf_counter()
    preds = run_methods([r["lines"] for r in receipts])
    elapsed = time.perf_counter() - started
    kinds = sum(extract_fields(r["lines"]).kind == RECEIPT for r in receipts)
    results = {m: score(p, truths, names) for m, p in preds.items()}
    if args.errors:
        print_errors([r["id"] for r in receipts], preds["rules"], truths, names)
    source = "line crops read by our recogniser" if args.ocr_lines else "ground-truth lines"
    source += ", boxes cut and joined at random" if args.perturb_layout else ""
    print("\n".join(table(f"SROIE training receipts, {source} ({len(receipts)} receipts)", results, names)))
    print(f"\nkind detected as receipt: {kinds}/{len(receipts)}; both methods in {elapsed:.2f} s")
    if args.reliability:
        print(json.dumps(rule_reliability(receipts), indent=1))
    if args.calibrate:
        print(json.dumps(review_thresholds(receipts), indent=1))
    return {"train": results, "kind_receipt": kinds, "n": len(receipts)}


# -- end to end (measurement) ----------------------------------------------------------------------


def _read_pages(pipeline: Any, paths: Sequence[Path]) -> tuple[list[Any], list[float]]:
    """Each image read by our pipeline; and the milliseconds the rules took on each page."""
    pages, extract_ms = [], []
    for i, path in enumerate(paths, 1):
        started = time.perf_counter()
        pages.append(pipeline.run(str(path)))
        t0 = time.perf_counter()
        extract_fields(pages[-1])
        extract_ms.append((time.perf_counter() - t0) * 1000)
        log.info("read %s (%d/%d) in %.1f s", path.name, i, len(paths), t0 - started)
    return pages, extract_ms


def _score_set(name: str, pipeline: Any, paths: Sequence[Path], truths: Sequence[dict[str, str]],
               kind: str) -> dict[str, Any]:
    """One set read end to end, both methods scored on ``kind``'s fields."""
    pages, extract_ms = _read_pages(pipeline, paths)
    preds = run_methods(pages)
    sets = [extract_fields(p) for p in pages]
    out = {"name": name, "n": len(pages), "kind": kind, "fields": list(FIELD_NAMES[kind]),
           "results": {m: score(p, truths, FIELD_NAMES[kind]) for m, p in preds.items()},
           "kind_detected": sum(fs.kind == kind for fs in sets), "extract_ms": extract_ms,
           "low_confidence": sum(f.low_confidence for fs in sets for f in fs.fields.values()),
           "answered": sum(len(fs.fields) for fs in sets), **_flags_on_wrong(sets, truths)}
    if kind == VAT_INVOICE:
        out["checks_passed"] = sum(bool(fs.checks.get("all_passed")) for fs in sets)
    return out


def _flags_on_wrong(sets: Sequence[Any], truths: Sequence[dict[str, str]]) -> dict[str, int]:
    """How many answered fields are wrong, and how many of those the low-confidence flag marks."""
    wrong = flagged = 0
    for fs, truth in zip(sets, truths):
        for name, f in fs.fields.items():
            t = normalize_field(name, truth.get(name, ""))
            if t and normalize_field(name, f.value) != t:
                wrong += 1
                flagged += f.low_confidence
    return {"wrong": wrong, "wrong_flagged": flagged}


def evaluate(eval_root: Path = EVAL_ROOT, limit: int | None = None, threads: int = 1,
             model: str = Settings().model) -> dict[str, Any]:
    """Our pipeline reads the SROIE eval pages and the examples/ pages with ``model`` (default: the app's);
    both methods extract; scored per field."""
    from ocr.pipeline import OCRPipeline

    started = time.perf_counter()
    pipeline = OCRPipeline.load(threads=threads, model=model)
    out: dict[str, Any] = {"sets": [], "threads": threads, "limit": limit, "model": model,
                           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    sroie = eval_root / SROIE_PAGES
    if (sroie / "page.jsonl").exists():
        items = read_jsonl(sroie / "page.jsonl")[:limit]
        out["sets"].append(_score_set(SROIE_PAGES, pipeline, [sroie / it["image"] for it in items],
                                      [it["key_fields"] for it in items], RECEIPT))
    else:
        out["missing"] = f"{sroie} not found"
    truth = json.loads(EXAMPLES_TRUTH.read_text(encoding="utf-8"))
    for kind in (VAT_INVOICE, RECEIPT):
        files = [n for n, t in truth.items() if not n.startswith("_") and t.get("kind") == kind][:limit]
        out["sets"].append(_score_set(f"examples/ {kind}", pipeline, [EXAMPLES_DIR / n for n in files],
                                      [truth[n]["fields"] for n in files], kind))
        out["sets"][-1]["files"] = files
    out["wall_s"] = round(time.perf_counter() - started, 1)
    return out


# -- report ----------------------------------------------------------------------------------------


def table(title: str, results: dict[str, dict[str, Any]], names: Sequence[str]) -> list[str]:
    """Markdown table: one row per field, exact and F1 for each method."""
    methods = list(results)
    lines = [f"### {title}", "", "| field | n | " + " | ".join(f"{m} exact | {m} F1" for m in methods) + " |",
             "|---|---:|" + "---:|" * (2 * len(methods))]
    for name in (*names, "all"):
        cells = " | ".join(f"{results[m][name]['correct']}/{results[m][name]['n']} = "
                           f"{results[m][name]['exact']:.1%} | {results[m][name]['f1']:.1%}" for m in methods)
        lines.append(f"| {'**all fields**' if name == 'all' else name} | {results[methods[0]][name]['n']} | {cells} |")
    return lines


def _targets(sroie: dict[str, Any]) -> list[str]:
    rules = sroie["results"]["rules"]
    rows = [f"| {name} | ≥ {goal:.0%} | {rules[name]['exact']:.1%} | {'met' if rules[name]['exact'] >= goal else 'NOT MET'} |"
            for name, goal in TARGETS.items()]
    return ["Targets (issue 20, rules, SROIE eval pages end to end):", "", "| field | target | measured | |",
            "|---|---:|---:|---|", *rows, ""]


def render_section(data: dict[str, Any], command: str = "python -m benchmarks.fields --eval") -> str:
    """The "Key fields" section of BENCHMARKS.md."""
    lines = ["## Key fields (invoice and receipt extraction, `ocr.fields`)", "",
             f"`{command}`, {data['date']}; pages read end to end by our pipeline ({data['threads']} thread, "
             f"model {data.get('model', 'fast')}), then "
             "the rules (`extract_fields`) and the plain baseline (`baseline_fields`: company = first line, address = "
             "lines 2-3, first date, largest amount after TOTAL; invoices: first number of each length, first two "
             "名称, largest amount) pick the fields. Exact = right / pages whose truth has the field, after "
             "normalisation (dates ISO, amounts decimal, text NFKC + upper case + no spaces); F1 with precision = "
             "right / answered. The rules were developed on the 167 SROIE training receipts only.", ""]
    if data.get("limit"):
        lines += [f"**Partial run: first {data['limit']} pages of each set.**", ""]
    if data.get("missing"):
        lines += [f"Missing: {data['missing']}.", ""]
    for entry in data["sets"]:
        title = f"{entry['name']} ({entry['n']} pages)"
        lines += table(title, entry["results"], entry["fields"]) + [""]
        ms = entry["extract_ms"]
        note = (f"Kind recognised as `{entry['kind']}`: {entry['kind_detected']}/{entry['n']}; "
                f"{entry['low_confidence']} of {entry['answered']} fields answered are flagged low-confidence "
                f"({entry.get('wrong_flagged', 0)} of the {entry.get('wrong', 0)} wrong ones); "
                f"extraction {statistics.median(ms):.1f} ms median, {max(ms):.1f} ms max a page" if ms else "")
        if "checks_passed" in entry:
            note += f"; invoice cross-checks (大写 = 小写, 金额 + 税额 = 价税合计) all passed on {entry['checks_passed']}/{entry['n']}"
        lines += [note + ".", ""]
        if entry["name"] == SROIE_PAGES and not data.get("limit"):
            lines += _targets(entry)
    return "\n".join(lines)


def write_section(path: Path, body: str) -> None:
    """This report's section of ``path`` (see :func:`benchmarks.report.write_marked_section`)."""
    write_marked_section(path, MARK_START, MARK_END, body)


# -- command line ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fields", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", action="store_true", help="score on the SROIE training receipts (ground-truth lines)")
    ap.add_argument("--eval", action="store_true", help="read the eval pages and examples/ with our pipeline")
    ap.add_argument("--errors", action="store_true", help="with --train: print each miss")
    ap.add_argument("--reliability", action="store_true", help="with --train: each rule's share of right picks")
    ap.add_argument("--calibrate", action="store_true",
                    help="with --train: per field, the confidence below which a field is best marked 'check it'")
    ap.add_argument("--ocr-lines", action="store_true",
                    help="with --train: our recogniser reads each annotated line crop (recognition noise, no detection)")
    ap.add_argument("--perturb-layout", action="store_true",
                    help="with --train: cut and join line boxes at random, as a detector might (ground-truth text)")
    ap.add_argument("--ocr-cache", type=Path, default=Path("/tmp/fields_train_reads.json"),
                    help="where --ocr-lines keeps its reads")
    ap.add_argument("--train-dir", type=Path, default=EVAL_ROOT.parent / "train" / TRAIN_SET)
    ap.add_argument("--eval-root", type=Path, default=EVAL_ROOT, help=f"the eval sets (default {EVAL_ROOT})")
    ap.add_argument("--limit", type=positive_int, help="with --eval: first N pages of each set (no report unless --out)")
    ap.add_argument("--threads", type=positive_int, default=1, help="pipeline threads for --eval (default 1)")
    ap.add_argument("--model", choices=MODELS, default=Settings().model,
                    help=f"recogniser for --eval (default: the app's, {Settings().model})")
    ap.add_argument("--out", help="with --eval: markdown file for the section (default BENCHMARKS.md; '-' never writes)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    if not (args.train or args.eval):
        ap.error("give --train and/or --eval")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s [bench_fields] %(message)s",
                        datefmt="%H:%M:%S")
    out: dict[str, Any] = {}
    if args.train:
        out.update(train(args))
    if args.eval:
        out["eval"] = evaluate(args.eval_root, args.limit, args.threads, args.model)
        command = shlex.join(["python", "-m", "benchmarks.fields", *argv])
        body = render_section(out["eval"], command)
        print(body)
        target = args.out if args.out is not None else (None if args.limit else str(DEFAULT_OUT))
        if target and target != "-":
            write_section(Path(target), body)
            log.info("wrote the key-fields section of %s", target)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
