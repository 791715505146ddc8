"""Page-level (end-to-end) benchmark: our pipeline beside RapidOCR, plus a preprocessing ablation.

    python -m benchmarks.pages [--sets NAME[:PROTOCOL] ...] [--systems crnn crnn-accurate crnn-auto rapidocr]
                               [--quick | --limit N]
                              [--threads 2] [--ablation] [--json] [--out BENCHMARKS.md]
                              [--eval-root DIR] [--preds-dir DIR] [--detector db|tiny|small]
                              [--engine auto|onnx|onnx-int8|torch]

Systems (one that cannot run is reported as missing, with the reason):

* ``crnn``: this project's :class:`ocr.pipeline.OCRPipeline` (DB detector + CRNN
  recogniser), ``OCRPipeline.load(threads=t, detector=d)`` (``--detector``: the PP-OCRv6
  ``tiny`` or ``small`` DB network; ``db``, the default, is the pipeline's default
  detector), timed with ``use_cache=False``; default
  preprocessing (``auto``) and ``auto_rotate=True``. The workers run on a copy of
  ``ocr/`` and ``weights/`` taken when the benchmark starts (people edit the code and a
  training job rewrites ``weights/crnn.pt`` meanwhile; the report names the git commit,
  the weights' hash and any file of the live tree that changed during the run);
* ``rapidocr``: RapidOCR 3.x as shipped (PP-OCRv6 small det + rec, PP-OCR mobile
  direction classifier, the package's default config), forced to the models bundled
  in ``rapidocr/models`` (it is never allowed to download), onnxruntime intra-op
  threads set to ``--threads``.

Sets: the page sets of ``../shared/eval`` (INDEX.md: ``en_receipts_sroie_pages``
scored with protocol ``upper``, ``zh_web_mtwi_pages`` with ``zh``) and the project's
``examples/index.jsonl`` (``examples``, protocol ``zh``). ``--sets NAME:PROTOCOL``
names any other ``EVAL_ROOT/NAME/page.jsonl``. ``--quick``: the first 5 pages of each;
``--limit N``: the first N pages of each (a quicker partial run; the markdown names the count).

Figures (scored by :func:`benchmarks.evaluate.score_pages`, the protocol of INDEX.md):
end-to-end char and line accuracy, detection precision / recall / F1 at IoU 0.5,
median and p90 seconds per page at ``--threads`` (image decoding not included, the
same decoded RGB array goes to both systems), the rapidocr / crnn time ratio per set,
model load time and peak RSS (``ru_maxrss``). Each system runs in its own fresh
subprocess (``--worker``), one after the other, so thread pools and memory never mix.
The machine is shared: ``--rounds`` (default 2, 1 with ``--quick``) times every system
that many times in alternating order (A B, B A, ...) and keeps each page's fastest
round, and the report gives how many cores other processes kept busy during each worker;
``--ablation`` adds a third one: our pipeline with preprocessing ``off``, ``auto`` and
each page step (denoise, contrast, binarize, deskew) forced on alone in ``manual``
mode, and how often ``auto`` applied each step.

The markdown section is written between ``<!-- bench:pages:start -->`` and
``<!-- bench:pages:end -->`` of ``--out`` (default ``BENCHMARKS.md`` of the project;
with ``--quick`` or ``--limit`` nothing is written unless ``--out`` is given; ``--out -`` never
writes). Everything outside the markers is kept byte for byte. ``--json`` prints
every figure as one JSON object on stdout; progress goes to stderr.

The eval data is read to measure only: nothing of it is written anywhere but the
figures (and, only with ``--preds-dir``, the predictions, to a directory you choose).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from benchmarks.evaluate import score_pages
from ocr.manifest import read_jsonl
from benchmarks import workers
from benchmarks.report import cpu_and_ram, import_seconds, positive_int, package_version, write_marked_section
from ocr.engines import CHECKSUMS_NAME, ENGINES, recorded_checksums, sha256_of
from ocr.settings import EVAL_ROOT, ROOT, WEIGHTS_DIR

log = logging.getLogger("benchmarks.pages")

DEFAULT_EVAL_ROOT = EVAL_ROOT
DEFAULT_OUT = ROOT / "BENCHMARKS.md"
EXAMPLES_INDEX = ROOT / "examples" / "index.jsonl"

MARK_START = "<!-- bench:pages:start -->"
MARK_END = "<!-- bench:pages:end -->"

#: page sets of ../shared/eval/INDEX.md and their scoring protocol
KNOWN_SETS: dict[str, str] = {"en_receipts_sroie_pages": "upper", "zh_web_mtwi_pages": "zh"}
EXAMPLES_SET = "examples"
DEFAULT_SETS = ("en_receipts_sroie_pages", "zh_web_mtwi_pages", EXAMPLES_SET)
SYSTEMS = ("crnn", "crnn-accurate", "crnn-auto", "rapidocr")
#: our pipeline's systems: the recogniser each reads with (``OCRPipeline.load(model=...)``, issue 16)
CRNN_MODELS = {"crnn": "fast", "crnn-accurate": "accurate", "crnn-auto": "auto"}
QUICK_PAGES = 5

#: the page steps of the ablation, in pipeline order
ABLATION_STEPS = ("denoise", "contrast", "binarize", "deskew")
_ALL_OFF = {"grayscale": False, "denoise": False, "contrast": False, "binarize": False, "deskew": False,
            "normalize_size": False}
#: ablation label -> ``ocr.preprocess.config_from_dict`` input
ABLATION_CONFIGS: dict[str, dict[str, Any]] = {
    "off": {"mode": "off"},
    "auto": {"mode": "auto"},
    **{step: {"mode": "manual", **_ALL_OFF, step: True} for step in ABLATION_STEPS},
}

RAPIDOCR_MODELS = {"Det": "PP-OCRv6_det_small.onnx", "Rec": "PP-OCRv6_rec_small.onnx",
                   "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx"}


# -- sets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PageSet:
    name: str
    protocol: str
    path: str  # the page.jsonl; images are relative to its folder


def resolve_set(spec: str, eval_root: Path) -> PageSet:
    """``NAME`` or ``NAME:PROTOCOL`` -> the page set (``examples`` is the project's own)."""
    name, _, protocol = spec.partition(":")
    if name == EXAMPLES_SET:
        path = EXAMPLES_INDEX
    else:
        path = eval_root / name / "page.jsonl"
    if not protocol:
        protocol = "zh" if name == EXAMPLES_SET else KNOWN_SETS.get(name, "")
        if not protocol:
            protocol = "upper" if name.startswith("en_") else "zh"
            log.warning("set %s is not in INDEX.md: scored with protocol %s (name it NAME:PROTOCOL to choose)",
                        name, protocol)
    if protocol not in ("zh", "upper", "alnum"):
        raise ValueError(f"unknown protocol {protocol!r} for set {name}")
    return PageSet(name, protocol, str(path))


# -- small helpers ---------------------------------------------------------------------


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def current_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    return None


def quantile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated quantile (numpy's default), ``q`` in [0, 1]."""
    xs = sorted(values)
    if not xs:
        return None
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


# -- systems (inside a worker) -----------------------------------------------------------


class CRNNSystem:
    """This project's pipeline, ``OCRPipeline.load(threads=t, model=...)`` (weights from the worker's project copy)."""

    #: imported (and timed) before the load is; torch only if an ONNX export is missing (``torch_imported``)
    runtime = ("onnxruntime",)

    def __init__(self, threads: int, detector: str = "db", name: str = "crnn", engine: str = "auto") -> None:
        self.name = name
        self.model = CRNN_MODELS[name]
        self.threads = threads
        self.detector = detector
        self.engine = engine  # ocr.engines.ENGINES: auto (int8 where the model card says), onnx, onnx-int8, torch
        self.pipeline = None

    def load(self) -> None:
        from ocr.pipeline import OCRPipeline

        self.pipeline = OCRPipeline.load(threads=self.threads, detector=self.detector, model=self.model,
                                         engine=self.engine)

    def read(self, rgb, preprocess: Any = None) -> tuple[list[dict], dict[str, Any]]:
        result = self.pipeline.run(rgb, preprocess=preprocess, use_cache=False)
        lines = [{"box": [float(v) for v in ln.box], "text": ln.text, "confidence": float(ln.confidence)}
                 for ln in result.lines]
        extra = {"timings": {k: float(v) for k, v in result.timings.items()}, "rotation": result.rotation,
                 "applied": list(result.preprocess.applied) if result.preprocess is not None else []}
        return lines, extra

    def describe(self) -> dict[str, Any]:
        rec = self.pipeline.recognizer
        det = self.pipeline.detector
        return {"engine": rec.engine_name, "model": self.model, "detector": type(det).__name__,
                "detector_variant": getattr(det, "variant", None),
                "detector_engine": getattr(det, "engine_name", None),
                "preprocess": self.pipeline.preprocess.mode, "threads": self.threads,
                "torch_threads": _torch_threads(), "code": str(Path(__file__).resolve().parents[1])}


def _torch_threads() -> int | None:
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


class RapidOCRSystem:
    name = "rapidocr"
    runtime = ("onnxruntime",)

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.engine = None
        self.model_paths: dict[str, str] = {}

    def load(self) -> None:
        import rapidocr
        from rapidocr import RapidOCR
        from rapidocr.utils import download_file

        def _offline(*args: Any, **kwargs: Any):
            raise RuntimeError("rapidocr tried to download a file; this benchmark runs offline on its bundled models")

        download_file.DownloadFile._make_http_request = classmethod(_offline)  # never download
        models = Path(rapidocr.__file__).resolve().parent / "models"
        params: dict[str, Any] = {"Global.log_level": "warning",
                                  "EngineConfig.onnxruntime.intra_op_num_threads": self.threads}
        for section, filename in RAPIDOCR_MODELS.items():
            path = models / filename
            if not path.exists():
                raise FileNotFoundError(f"bundled model {path} is missing")
            params[f"{section}.model_path"] = str(path)
            self.model_paths[section] = str(path)
        self.engine = RapidOCR(params=params)
        # models load lazily on first use: load them now so load time is load time
        self.engine._load_det_model()
        if self.engine.use_cls:
            self.engine._load_cls_model()
        self.engine._load_rec_model()

    def read(self, rgb, preprocess: Any = None) -> tuple[list[dict], dict[str, Any]]:
        import numpy as np

        out = self.engine(np.ascontiguousarray(rgb[:, :, ::-1]))  # an ndarray is taken as BGR
        boxes, txts, scores = getattr(out, "boxes", None), getattr(out, "txts", None), getattr(out, "scores", None)
        lines = []
        if boxes is not None and txts is not None:
            for box, text, score in zip(boxes, txts, scores if scores is not None else [None] * len(txts)):
                lines.append({"box": [float(v) for v in np.asarray(box, dtype=float).reshape(-1)], "text": str(text),
                              "confidence": None if score is None else float(score)})
        return lines, {}

    def describe(self) -> dict[str, Any]:
        cfg = self.engine.cfg
        return {
            "version": package_version("rapidocr"), "models": {k: Path(v).name for k, v in self.model_paths.items()},
            "use_cls": bool(cfg.Global.use_cls), "text_score": float(cfg.Global.text_score),
            "max_side_len": int(cfg.Global.max_side_len),
            "det_limit": f"{cfg.Det.limit_type}:{cfg.Det.limit_side_len}",
            "intra_op_num_threads": int(cfg.EngineConfig.onnxruntime.intra_op_num_threads),
            "threads": self.threads,
        }


def make_system(name: str, threads: int, detector: str = "db", engine: str = "auto") -> Any:
    if name in CRNN_MODELS:
        return CRNNSystem(threads, detector, name, engine)
    if name == "rapidocr":
        return RapidOCRSystem(threads)
    raise ValueError(f"unknown system {name!r}")


# -- the worker ---------------------------------------------------------------------------


@dataclass
class Job:
    system: str
    threads: int
    sets: list[dict[str, str]]  # PageSet as dicts
    limit: int | None
    result_path: str
    ablation: bool = False  # run the preprocessing ablation instead of the plain measurement
    preds_dir: str | None = None
    log_level: int = logging.INFO
    detector: str = "db"  # crnn's detector: OCRPipeline.load(detector=...)
    engine: str = "auto"  # crnn's engine: OCRPipeline.load(engine=...)


def _load_pages(page_set: PageSet, limit: int | None) -> list[dict]:
    pages = read_jsonl(page_set.path)
    return pages[:limit] if limit else pages


def _per_page(pred: dict, label: dict, protocol: str) -> dict[str, Any]:
    s = score_pages([pred], [label], protocol)
    return {k: s[k] for k in ("n_labels", "n_preds", "matched", "chars", "edits")}


def _summarise(pred_pages: list[dict], label_pages: list[dict], protocol: str, seconds: list[float]) -> dict[str, Any]:
    scores = score_pages(pred_pages, label_pages, protocol)
    return {
        "scores": {k: (_r(v) if isinstance(v, float) else v) for k, v in scores.items()},
        "n_pages": len(label_pages),
        "median_s": _r(quantile(seconds, 0.5)), "p90_s": _r(quantile(seconds, 0.9)),
        "mean_s": _r(sum(seconds) / len(seconds)) if seconds else None, "total_s": _r(sum(seconds), 3),
        "max_s": _r(max(seconds)) if seconds else None,
    }


def _write_preds(job: Job, tag: str, page_set: PageSet, pred_pages: list[dict]) -> None:
    if not job.preds_dir:
        return
    out = Path(job.preds_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"{tag}__{page_set.name}.jsonl", "w", encoding="utf-8") as f:
        for page in pred_pages:
            f.write(json.dumps(page, ensure_ascii=False) + "\n")


def _measure_set(system: Any, page_set: PageSet, pages: list[dict], job: Job) -> dict[str, Any]:
    from ocr.imageio import load_image

    base = Path(page_set.path).parent
    preds, seconds, per_page, stages, applied, rotations = [], [], [], {}, {}, {}
    for i, page in enumerate(pages, 1):
        lines: list[dict] = []
        page_s = None
        try:
            rgb = load_image(base / page["image"])
        except Exception as e:  # noqa: BLE001 - an unreadable page is scored as empty, and said so
            log.warning("%s: %s; scored as a page with no predictions", page["image"], e)
        else:
            t = time.perf_counter()
            lines, extra = system.read(rgb)
            page_s = time.perf_counter() - t
            seconds.append(page_s)
            for stage, v in extra.get("timings", {}).items():
                stages.setdefault(stage, []).append(v)
            for step in extra.get("applied", []):
                applied[step] = applied.get(step, 0) + 1
            if extra.get("rotation"):
                rotations[str(extra["rotation"])] = rotations.get(str(extra["rotation"]), 0) + 1
        pred = {"image": page["image"], "lines": lines}
        preds.append(pred)
        row = {"image": page["image"], "seconds": _r(page_s)}
        if page_s is not None and system.name == "crnn":
            row.update(applied=extra.get("applied", []), rotation=extra.get("rotation", 0))
        row.update(_per_page(pred, page, page_set.protocol))
        per_page.append(row)
        if i % 10 == 0 or i == len(pages):
            log.info("%s: %d / %d pages (median %.2f s/page)", page_set.name, i, len(pages),
                     quantile(seconds, 0.5) or 0.0)
    _write_preds(job, system.name, page_set, preds)
    out = _summarise(preds, pages, page_set.protocol, seconds)
    out["protocol"] = page_set.protocol
    if stages:
        out["stage_median_s"] = {k: _r(quantile(v, 0.5)) for k, v in stages.items()}
    if applied or system.name == "crnn":
        out["auto_applied"] = applied
    if rotations:
        out["rotated_pages"] = rotations
    out["pages"] = per_page
    return out


def _ablate_set(system: CRNNSystem, page_set: PageSet, pages: list[dict], job: Job) -> dict[str, Any]:
    from ocr.imageio import load_image
    from ocr.preprocess import config_from_dict

    configs = {label: config_from_dict(d) for label, d in ABLATION_CONFIGS.items()}
    base = Path(page_set.path).parent
    preds = {label: [] for label in configs}
    seconds = {label: [] for label in configs}
    applied = {label: {} for label in configs}
    for i, page in enumerate(pages, 1):
        try:
            rgb = load_image(base / page["image"])
        except Exception as e:  # noqa: BLE001
            log.warning("%s: %s; scored as a page with no predictions", page["image"], e)
            rgb = None
        for label, cfg in configs.items():
            lines: list[dict] = []
            if rgb is not None:
                t = time.perf_counter()
                lines, extra = system.read(rgb, preprocess=cfg)
                seconds[label].append(time.perf_counter() - t)
                for step in extra.get("applied", []):
                    applied[label][step] = applied[label].get(step, 0) + 1
            preds[label].append({"image": page["image"], "lines": lines})
        if i % 10 == 0 or i == len(pages):
            log.info("ablation %s: %d / %d pages", page_set.name, i, len(pages))
    out: dict[str, Any] = {"protocol": page_set.protocol, "n_pages": len(pages), "configs": {}}
    for label in configs:
        _write_preds(job, f"crnn-pre-{label}", page_set, preds[label])
        entry = _summarise(preds[label], pages, page_set.protocol, seconds[label])
        entry["applied"] = applied[label]
        entry["config"] = ABLATION_CONFIGS[label]
        out["configs"][label] = entry
    return out


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 1 << 62  # unreadable: never the warm-up page


def run_job(job: Job) -> dict[str, Any]:
    system = make_system(job.system, job.threads, job.detector, job.engine)
    import_s = import_seconds(system.runtime)
    rss_before = current_rss_mb()
    t = time.perf_counter()
    system.load()
    load_s = time.perf_counter() - t
    rss_loaded = current_rss_mb()
    log.info("%s loaded in %.2f s (threads %d)", job.system, load_s, job.threads)
    result: dict[str, Any] = {"system": job.system, "threads": job.threads, "load_s": _r(load_s, 3),
                              "import_s": _r(import_s, 3),
                              "rss_before_load_mb": rss_before, "rss_after_load_mb": rss_loaded,
                              "info": system.describe(), "sets": {}}
    sets = [PageSet(**s) for s in job.sets]
    loaded = {s.name: _load_pages(s, job.limit) for s in sets}

    # warm-up: the first call pays for lazy initialisation; it is reported, not counted
    from ocr.imageio import load_image

    # the smallest page file: lazy initialisation is the same for any page, and a big first page
    # would add seconds to every worker for nothing
    candidates = [(s, p) for s in sets for p in loaded[s.name]]
    first = min(candidates, key=lambda sp: _file_size(Path(sp[0].path).parent / sp[1]["image"]), default=None)
    if first is not None:
        try:
            rgb = load_image(Path(first[0].path).parent / first[1]["image"])
            t = time.perf_counter()
            system.read(rgb)
            result["first_call_s"] = _r(time.perf_counter() - t, 3)
        except Exception as e:  # noqa: BLE001
            log.warning("warm-up failed: %s", e)

    for s in sets:
        log.info("%s%s on %s (%d pages)", job.system, " ablation" if job.ablation else "", s.name,
                 len(loaded[s.name]))
        if job.ablation:
            result["sets"][s.name] = _ablate_set(system, s, loaded[s.name], job)
        else:
            result["sets"][s.name] = _measure_set(system, s, loaded[s.name], job)
    # what a long-running app holds after serving these pages (the peak is one page's transient)
    result["pages_read"] = (sum(len(v) for v in loaded.values()) * (len(ABLATION_CONFIGS) if job.ablation else 1)
                            + ("first_call_s" in result))
    result["rss_after_pages_mb"] = current_rss_mb()
    result["rss_peak_mb"] = round(maxrss_mb(), 1)
    result["torch_imported"] = "torch" in sys.modules
    return result


def worker_main(job_path: str) -> int:
    return workers.worker_main(job_path, Job, run_job,
                               lambda job: f"{job.system}{'-ablation' if job.ablation else ''}/t{job.threads}")


# -- orchestration (parent) ------------------------------------------------------------------


def availability(system: str, detector: str = "db") -> str | None:
    """Why ``system`` cannot run here, or None if it can (checked without importing heavy modules)."""
    import importlib.util

    if system in CRNN_MODELS:
        if importlib.util.find_spec("torch") is None:
            return "torch is not installed"
        det_file = "det_small.pt" if detector == "small" else "det.pt"
        accurate = ("crnn_accurate.pt", "charset_accurate.txt") if system != "crnn" else ()
        for name in ("crnn.pt", "charset.txt", det_file, *accurate):
            if not (WEIGHTS_DIR / name).exists():
                return f"weights/{name} is missing"
        return None
    if system == "rapidocr":
        spec = importlib.util.find_spec("rapidocr")
        if spec is None:
            return "rapidocr is not installed"
        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed"
        models = Path(spec.origin).parent / "models"
        missing = [f for f in (RAPIDOCR_MODELS["Det"], RAPIDOCR_MODELS["Rec"]) if not (models / f).exists()]
        if missing:
            return f"bundled model(s) missing from {models}: {', '.join(missing)}"
        return None
    return f"unknown system {system!r}"


def spawn_worker(job: Job, tmp: Path, project: Path) -> dict[str, Any]:
    """Run ``job`` in a fresh ``python -m benchmarks.pages --worker`` process on the project copy."""
    tag = f"{job.system}{'-ablation' if job.ablation else ''}"
    return workers.spawn_worker("benchmarks.pages", job, tmp / f"{tag}.job.json", project,
                                {"MKL_NUM_THREADS": str(job.threads)})


def snapshot_weights(weights_dir: Path = WEIGHTS_DIR) -> list[str]:
    """The files of ``weights/`` the pipeline reads: every file ``SHA256SUMS`` lists (the runtime checks each one
    against it) and the listing itself. Derived from the listing, so a new weight file cannot be left out of the
    copy (the word list once was, and every ``crnn`` row came out "missing")."""
    return [*recorded_checksums(weights_dir / CHECKSUMS_NAME), CHECKSUMS_NAME]


def _code_digest(ocr_dir: Path) -> dict[str, str]:
    """Short digests of every module of the runtime, sub-packages included (``detect/detector.py`` ...)."""
    return {p.relative_to(ocr_dir).as_posix(): sha256_of(p)[:16] for p in sorted(ocr_dir.rglob("*.py"))
            if "__pycache__" not in p.parts}


def _weights_digest(weights_dir: Path) -> dict[str, str]:
    return {n: sha256_of(weights_dir / n)[:16] for n in snapshot_weights(weights_dir) if (weights_dir / n).exists()}


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _checksums_ok(weights_dir: Path) -> bool:
    return all(sha256_of(weights_dir / name) == digest
               for name, digest in recorded_checksums(weights_dir / CHECKSUMS_NAME).items()
               if (weights_dir / name).exists())


def snapshot_project(tmp: Path) -> tuple[Path, dict[str, Any]]:
    """Copy ``ocr/`` (and ``benchmarks/``, whose worker runs it) and the weights the pipeline reads into ``tmp``; every worker runs on the copy.

    Other people edit the code and a training job rewrites ``weights/crnn.pt`` while a
    benchmark runs: without the copy, workers started minutes apart would measure different
    pipelines. A copy whose files disagree with ``weights/SHA256SUMS`` (a write in progress)
    is retried a few times; ``OCRPipeline.load`` refuses a file that still disagrees.
    """
    dst = tmp / "project"
    for package in ("ocr", "benchmarks"):  # the runtime measured, and the worker harness that runs it
        shutil.copytree(ROOT / package, dst / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    weights = dst / "weights"
    for attempt in range(3):
        weights.mkdir(parents=True, exist_ok=True)
        for name in snapshot_weights():
            if (WEIGHTS_DIR / name).exists():
                shutil.copy2(WEIGHTS_DIR / name, weights / name)
        if _checksums_ok(weights):
            break
        log.warning("weights/ disagree with weights/SHA256SUMS (being written?); copying again")
        time.sleep(5)
    crnn = WEIGHTS_DIR / "crnn.pt"
    dirty = _git("status", "--porcelain", "--", "ocr", "weights")
    info = {
        "git_head": _git("rev-parse", "--short", "HEAD"),
        "uncommitted": [line.split(maxsplit=1)[-1] for line in dirty.splitlines() if line.strip()] if dirty else [],
        "code": _code_digest(dst / "ocr"), "weights": _weights_digest(weights),
        "crnn_mtime": (datetime.fromtimestamp(crnn.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
                       if crnn.exists() else None),
        "checksums_ok": _checksums_ok(weights),
    }
    return dst, info


def changed_since(info: dict[str, Any]) -> list[str]:
    """Files of the live ``ocr/`` and ``weights/`` that differ from the snapshot."""
    live = {f"ocr/{k}": v for k, v in _code_digest(ROOT / "ocr").items()}
    live.update({f"weights/{k}": v for k, v in _weights_digest(WEIGHTS_DIR).items()})
    snap = {f"ocr/{k}": v for k, v in info["code"].items()}
    snap.update({f"weights/{k}": v for k, v in info["weights"].items()})
    return sorted(k for k in set(live) | set(snap) if live.get(k) != snap.get(k))


def machine_facts() -> dict[str, Any]:
    cpu, ram_gb = cpu_and_ram()
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    return {
        "nproc": nproc, "cpu_count": os.cpu_count(), "cpu": cpu, "ram_gb": ram_gb,
        "python": platform.python_version(), "torch": package_version("torch"),
        "onnxruntime": package_version("onnxruntime"), "rapidocr": package_version("rapidocr"),
        "numpy": package_version("numpy"),
        "opencv": package_version("opencv-python-headless") or package_version("opencv-python"),
        "loadavg_start": [round(v, 2) for v in os.getloadavg()],
    }


def add_ratios(data: dict[str, Any], reference: str = "crnn", other: str = "rapidocr") -> None:
    """Per set: ``other`` time / ``reference`` time, on the median, the p90 and the total."""
    ref, oth = data["systems"].get(reference, {}), data["systems"].get(other, {})
    ratios: dict[str, Any] = {}
    for name, entry in oth.get("sets", {}).items():
        base = ref.get("sets", {}).get(name)
        if not base:
            continue
        r = {}
        for key in ("median_s", "p90_s", "total_s"):
            if entry.get(key) and base.get(key):
                r[key] = round(entry[key] / base[key], 3)
        ratios[name] = r
    data["time_ratio"] = {"what": f"{other} / {reference}", "sets": ratios}


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    try:
        fields_ = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields_[3] + (fields_[4] if len(fields_) > 4 else 0)  # idle + iowait
    return sum(fields_[:8]) - idle, sum(fields_[:8])


def run_measured(job: Job, tmp: Path, project: Path) -> dict[str, Any]:
    """``spawn_worker`` plus how busy the rest of the machine was meanwhile (in cores)."""
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    before_cpu, before_own = _cpu_jiffies(), resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    result = spawn_worker(job, tmp, project)
    wall = time.perf_counter() - t
    after_cpu, after_own = _cpu_jiffies(), resource.getrusage(resource.RUSAGE_CHILDREN)
    result["worker_wall_s"] = round(wall, 1)
    if before_cpu and after_cpu and wall > 0:
        busy_s = (after_cpu[0] - before_cpu[0]) / hz
        own_s = (after_own.ru_utime + after_own.ru_stime) - (before_own.ru_utime + before_own.ru_stime)
        result["worker_cpu_s"] = round(own_s, 1)
        result["other_cpu_cores"] = round(max(0.0, busy_s - own_s) / wall, 2)
    return result


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One system's worker results over several rounds: per page the fastest round's seconds.

    Accuracy comes from the first round; ``deterministic`` says whether every round scored the
    same. Load and first-call times are the minimum, peak RSS the maximum, over rounds.
    """
    merged = json.loads(json.dumps(rounds[0]))
    merged["rounds"] = len(rounds)
    merged["load_s"] = min(r["load_s"] for r in rounds)
    merged["load_s_rounds"] = [r["load_s"] for r in rounds]
    merged["import_s"] = min((r.get("import_s") or 0.0) for r in rounds)
    merged["torch_imported"] = any(r.get("torch_imported") for r in rounds)
    if all(r.get("first_call_s") is not None for r in rounds):
        merged["first_call_s"] = min(r["first_call_s"] for r in rounds)
    merged["rss_peak_mb"] = max(r["rss_peak_mb"] for r in rounds)
    after = [r["rss_after_pages_mb"] for r in rounds if r.get("rss_after_pages_mb") is not None]
    merged["rss_after_pages_mb"] = max(after) if after else None
    merged["worker_wall_s_rounds"] = [r.get("worker_wall_s") for r in rounds]
    merged["other_cpu_cores_rounds"] = [r.get("other_cpu_cores") for r in rounds]
    for name, entry in merged["sets"].items():
        per_round = [r["sets"][name] for r in rounds]
        entry["deterministic"] = all(
            {k: e["scores"][k] for k in ("edits", "matched", "n_preds")} ==
            {k: entry["scores"][k] for k in ("edits", "matched", "n_preds")} for e in per_round)
        entry["median_s_rounds"] = [e["median_s"] for e in per_round]
        fastest: dict[str, float] = {}
        for e in per_round:
            for row in e["pages"]:
                if row.get("seconds") is not None:
                    fastest[row["image"]] = min(fastest.get(row["image"], float("inf")), row["seconds"])
        for row in entry["pages"]:
            if row["image"] in fastest:
                row["seconds"] = fastest[row["image"]]
        seconds = list(fastest.values())
        if seconds:
            entry.update(median_s=_r(quantile(seconds, 0.5)), p90_s=_r(quantile(seconds, 0.9)),
                         mean_s=_r(sum(seconds) / len(seconds)), total_s=_r(sum(seconds), 3),
                         max_s=_r(max(seconds)))
    return merged


def run_benchmark(systems: Sequence[str], sets: Sequence[PageSet], threads: int, limit: int | None,
                  ablation: bool, preds_dir: str | None = None, rounds: int = 1,
                  detector: str = "db", engine: str = "auto") -> dict[str, Any]:
    started = time.perf_counter()
    data: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_facts(), "threads": threads, "limit": limit, "rounds": rounds, "detector": detector,
        "engine": engine, "sets": {}, "systems": {}, "missing": {},
    }
    present: list[PageSet] = []
    for s in sets:
        if not Path(s.path).exists():
            data["sets"][s.name] = {"protocol": s.protocol, "missing": f"{s.path} not found"}
            log.warning("set %s: %s not found; skipped", s.name, s.path)
            continue
        n = len(read_jsonl(s.path))
        data["sets"][s.name] = {"protocol": s.protocol, "path": _short_path(Path(s.path)), "pages_total": n,
                                "pages_used": min(n, limit) if limit else n}
        present.append(s)
    with tempfile.TemporaryDirectory(prefix="ocr_bench_pages_") as tmp_name:
        tmp = Path(tmp_name)
        project, data["snapshot"] = snapshot_project(tmp)
        log.info("measuring a copy of ocr/ and weights/ (git %s%s)", data["snapshot"]["git_head"],
                 ", with uncommitted changes" if data["snapshot"]["uncommitted"] else "")
        runnable = []
        for name in systems:
            reason = availability(name, detector)
            if reason:
                log.warning("%s: missing (%s)", name, reason)
                data["missing"][name] = reason
            else:
                runnable.append(name)
        # A B, then B A, ...: a slow spell of the shared machine does not land on one system only
        plan = [(name, False, r) for r in range(rounds) for name in (runnable if r % 2 == 0 else runnable[::-1])]
        if ablation:
            reason = availability("crnn", detector)
            if reason:
                data["missing"]["crnn_ablation"] = reason
            else:
                plan.append(("crnn", True, 0))
        results: dict[str, list[dict[str, Any]]] = {}
        for name, is_ablation, r in plan:
            key = "crnn_ablation" if is_ablation else name
            if key in data["missing"]:
                continue  # failed in an earlier round
            log.info("running %s%s in a fresh worker process", key, f" (round {r + 1}/{rounds})" if rounds > 1 else "")
            job = Job(system=name, threads=threads, sets=[asdict(s) for s in present], limit=limit,
                      result_path=str(tmp / f"{key}.r{r}.result.json"), ablation=is_ablation,
                      preds_dir=preds_dir if r == 0 else None, log_level=log.getEffectiveLevel(),
                      detector=detector, engine=engine)
            result = run_measured(job, tmp, project)
            if "error" in result:
                log.warning("%s failed: %s", key, result["error"])
                data["missing"][key] = result["error"]
                results.pop(key, None)
                continue
            log.info("%s done in %.0f s; other processes used %s cores meanwhile", key, result["worker_wall_s"],
                     result.get("other_cpu_cores", "?"))
            results.setdefault(key, []).append(result)
        for key, rs in results.items():
            if key == "crnn_ablation":
                data["ablation"] = rs[0]
            else:
                data["systems"][key] = merge_rounds(rs)
    add_ratios(data)
    data["snapshot"]["changed_during_run"] = changed_since(data["snapshot"])
    data["machine"]["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    data["wall_s"] = round(time.perf_counter() - started, 1)
    return data


# -- markdown ----------------------------------------------------------------------------------


def _short_path(path: Path) -> str:
    path = path.resolve()
    for base, label in ((ROOT, ""), (ROOT.parent, "../")):
        try:
            return label + str(path.relative_to(base))
        except ValueError:
            continue
    return str(path)


def _pct(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 0:
        return f"0.0 (raw {100 * value:.1f})"  # INDEX.md: clamp at 0 for display only
    return f"{100 * value:.1f}"


def _num(value: Any, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _delta(value: float | None, base: float | None) -> str:
    if value is None or base is None:
        return ""
    return f" ({100 * (value - base):+.1f})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
            + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def render_section(data: dict[str, Any], title: str = "## Page-level benchmark (end to end)") -> str:
    m = data["machine"]
    lines = [title, ""]
    lines.append(f"Command: `{data.get('command', 'python -m benchmarks.pages')}`  ")
    lines.append(f"Date: {data['date']} · wall time {data['wall_s'] / 60:.1f} min"
                 + (f" · **quick run: first {data['limit']} pages of each set**" if data.get("limit") else ""))
    lines.append("")
    lines.append(f"Machine: nproc {m['nproc']}, {m['cpu']}, {m.get('ram_gb')} GB RAM; Python {m['python']}, "
                 f"torch {m['torch']}, onnxruntime {m['onnxruntime']}, rapidocr {m['rapidocr']}, "
                 f"numpy {m.get('numpy')}, OpenCV {m.get('opencv')}. Load average "
                 f"{'/'.join(str(v) for v in m['loadavg_start'])} at the start, "
                 f"{'/'.join(str(v) for v in m.get('loadavg_end', []))} at the end.")
    lines.append("")
    lines.append("> The machine is shared and noisy (a training job and other people's tests run beside "
                 "the benchmark), so absolute seconds move from run to run. Compare latency as the ratio "
                 "between systems measured in the same run, not across runs.")
    lines.append("")
    snap = data.get("snapshot", {})
    crnn_info = data["systems"].get("crnn", {}).get("info", {})
    rapid_info = data["systems"].get("rapidocr", {}).get("info", {})
    lines.append(f"Systems, each in its own fresh process at {data['threads']} thread(s) "
                 f"(`OMP_NUM_THREADS`, torch and onnxruntime intra-op threads):")
    lines.append("")
    variant = crnn_info.get("detector_variant")
    det_desc = f"DB detector PP-OCRv6 {variant}" if variant else "DB detector"
    if crnn_info.get("detector_engine"):
        det_desc += f" on {crnn_info['detector_engine']}"
    crnn_desc = (f"- **crnn**: this project's `OCRPipeline.load(threads=t, detector={data.get('detector', 'db')!r}, "
                 f"engine={data.get('engine', 'auto')!r})` "
                 f"({det_desc} + CRNN recogniser"
                 + (f", recogniser on {crnn_info['engine']}" if crnn_info.get("engine") else "")
                 + "), default `auto` preprocessing, `auto_rotate=True`, `use_cache=False`")
    if snap:
        crnn_desc += (f"; code at git {snap.get('git_head')}"
                      + (f" + uncommitted {', '.join(snap['uncommitted'])}" if snap.get("uncommitted") else "")
                      + f", weights/crnn.pt sha256 {snap.get('weights', {}).get('crnn.pt', '?')[:12]}… "
                      f"(mtime {snap.get('crnn_mtime')}). `ocr/` and `weights/` were copied at the start and "
                      "every worker ran the copy")
        if snap.get("changed_during_run"):
            crnn_desc += (" (the live tree changed meanwhile: "
                          + ", ".join(snap["changed_during_run"]) + "; not measured here)")
    lines.append(crnn_desc + ".")
    if rapid_info:
        lines.append(f"- **rapidocr**: RapidOCR {rapid_info.get('version')} as shipped: "
                     f"{', '.join(rapid_info.get('models', {}).values())} (bundled, offline), "
                     f"direction classifier {'on' if rapid_info.get('use_cls') else 'off'}, det "
                     f"`{rapid_info.get('det_limit')}`, max side {rapid_info.get('max_side_len')}, "
                     f"text score ≥ {rapid_info.get('text_score')}.")
    for key, reason in data.get("missing", {}).items():
        lines.append(f"- **{key}**: missing — {reason}")
    lines.append("")
    lines.append("Scoring: `benchmarks.evaluate.score_pages`, exactly ../shared/eval/INDEX.md (boxes matched one-to-one "
                 "at IoU ≥ 0.5 of the axis-aligned boxes; a missed label is an empty prediction, an unmatched "
                 "prediction adds its length to the errors). Accuracies and P/R/F1 in %. Seconds per page exclude "
                 "image decoding (both systems get the same decoded array).")
    lines.append("")

    # main table
    header = ["set (protocol, pages)", "system", "char acc", "line acc", "det P", "det R", "det F1",
              "median s/page", "p90 s/page"]
    rows = []
    for set_name, set_info in data["sets"].items():
        if "missing" in set_info:
            rows.append([f"{set_name}", "—", f"missing: {set_info['missing']}", "", "", "", "", "", ""])
            continue
        label = f"{set_name} ({set_info['protocol']}, {set_info['pages_used']})"
        for sys_name in SYSTEMS:
            entry = data["systems"].get(sys_name, {}).get("sets", {}).get(set_name)
            if entry is None:
                continue
            s = entry["scores"]
            rows.append([label, sys_name, _pct(s["char_accuracy"]), _pct(s["line_accuracy"]), _pct(s["precision"]),
                         _pct(s["recall"]), _pct(s["f1"]), _num(entry["median_s"]), _num(entry["p90_s"])])
            label = ""
        ratio = data.get("time_ratio", {}).get("sets", {}).get(set_name)
        if ratio:
            rows.append(["", "*time rapidocr / crnn*", "", "", "", "", "",
                         f"*{_num(ratio.get('median_s'))}×*", f"*{_num(ratio.get('p90_s'))}×*"])
    lines.append("### Accuracy and speed per set")
    lines.append("")
    lines += _table(header, rows)
    lines.append("")
    timing = []
    if data.get("rounds", 1) > 1:
        order = [n for n in SYSTEMS if n in data["systems"]]
        timing.append(f"Timing: {data['rounds']} rounds per system, in alternating order ({', '.join(order)}, then "
                      f"{', '.join(order[::-1])}, ...); each page counts with its fastest round.")
    for sys_name in SYSTEMS:
        e = data["systems"].get(sys_name)
        if not e:
            continue
        medians = {n: v.get("median_s_rounds") for n, v in e.get("sets", {}).items()}
        other = [v for v in e.get("other_cpu_cores_rounds", [e.get("other_cpu_cores")]) if v is not None]
        part = f"{sys_name}: median s/page per round " + "; ".join(
            f"{n} {' / '.join(_num(x) for x in v)}" for n, v in medians.items() if v)
        if other:
            part += (f"; other processes kept {' / '.join(_num(x) for x in other)} of the "
                     f"{data['machine']['nproc']} cores busy meanwhile")
        timing.append(part + ".")
        nondet = [n for n, v in e.get("sets", {}).items() if v.get("deterministic") is False]
        if nondet:
            timing.append(f"**{sys_name} scored differently between rounds on {', '.join(nondet)}** "
                          "(first round reported).")
    if timing:
        lines += timing[:1] + [""] + [f"- {t}" for t in timing[1:]] + [""]

    # load / memory
    rows = []
    for sys_name in SYSTEMS:
        e = data["systems"].get(sys_name)
        if not e:
            continue
        info = e.get("info", {})
        runtime = "onnxruntime"
        if sys_name == "crnn":
            runtime = f"{info.get('engine')}" + (" + torch" if e.get("torch_imported") else " (no torch)")
        rows.append([sys_name, runtime, _num(e.get("import_s")), _num(e.get("load_s")), _num(e.get("first_call_s")),
                     _num(e.get("rss_after_load_mb"), 0),
                     f"{_num(e.get('rss_after_pages_mb'), 0)} ({e.get('pages_read', '?')} pages)",
                     _num(e.get("rss_peak_mb"), 0)])
    if rows:
        lines.append("### Load time and memory")
        lines.append("")
        lines += _table(["system", "runtime", "import s", "load s", "first page s (warm-up)", "RSS after load MB",
                         "RSS after the pages MB", "peak RSS MB (ru_maxrss)"], rows)
        lines.append("")
        lines.append("Import: the runtime libraries (both: onnxruntime; the pipeline imports torch only for a "
                     "model without a current ONNX export, `torch_imported` in the JSON), timed apart. Load: constructing the system with every model loaded (RapidOCR loads lazily; its "
                     "det, cls and rec models are forced). RSS after the pages: the worker's resident memory "
                     "once every page of every set (warm-up included) is read, as a long-running app would hold "
                     "it. Peak RSS: `ru_maxrss` of the worker at the end (the largest page dominates).")
        lines.append("")
        stage = {n: e.get("stage_median_s") for n, e in data["systems"].get("crnn", {}).get("sets", {}).items()}
        if any(stage.values()):
            srows = [[n, _num(v.get("preprocess"), 3), _num(v.get("detect"), 3), _num(v.get("recognize"), 3),
                      _num(v.get("total"), 3)] for n, v in stage.items() if v]
            lines.append("crnn median seconds per stage:")
            lines.append("")
            lines += _table(["set", "preprocess", "detect", "recognize", "total"], srows)
            lines.append("")

    ab = data.get("ablation")
    if ab:
        lines += _render_ablation(ab, data)
    return "\n".join(lines).rstrip() + "\n"


ABLATION_LABELS = {"off": "off (nothing)", "auto": "auto (default)", "denoise": "denoise only",
                   "contrast": "contrast only", "binarize": "binarize only", "deskew": "deskew only"}


def _render_ablation(ab: dict[str, Any], data: dict[str, Any]) -> list[str]:
    lines = ["### Preprocessing ablation (crnn only)", ""]
    lines.append("Char accuracy and detection F1 (%) with preprocessing off, in auto mode (the default), and with "
                 "each page step forced on alone (manual mode, the step's default parameters); in brackets the "
                 "change in points against `off`. Median seconds per page in the last column of each set "
                 "(one round, one worker"
                 + (f", other processes kept {_num(ab['other_cpu_cores'])} cores busy meanwhile"
                    if ab.get("other_cpu_cores") is not None else "")
                 + "; compare within a column only).")
    lines.append("")
    sets = list(ab.get("sets", {}))
    header = ["preprocessing"]
    for n in sets:
        header += [f"{n} char", f"{n} F1", f"{n} s/page"]
    rows = []
    for label in ABLATION_CONFIGS:
        row = [ABLATION_LABELS[label]]
        for n in sets:
            c = ab["sets"][n]["configs"].get(label)
            off = ab["sets"][n]["configs"].get("off")
            if c is None:
                row += ["n/a", "n/a", "n/a"]
                continue
            s, so = c["scores"], (off or {}).get("scores", {})
            d_char = "" if label == "off" else _delta(s["char_accuracy"], so.get("char_accuracy"))
            d_f1 = "" if label == "off" else _delta(s["f1"], so.get("f1"))
            row += [_pct(s["char_accuracy"]) + d_char, _pct(s["f1"]) + d_f1, _num(c["median_s"])]
        rows.append(row)
    lines += _table(header, rows)
    lines.append("")
    # each step: on vs off
    lines.append("Accuracy with each step on and off (char accuracy %, off → on alone; auto column: pages where "
                 "auto mode applied the step):")
    lines.append("")
    header = ["step"] + [f"{n} char off → on" for n in sets] + [f"{n} auto applied" for n in sets]
    rows = []
    for step in ABLATION_STEPS:
        row = [step]
        for n in sets:
            cfgs = ab["sets"][n]["configs"]
            off, on = cfgs.get("off", {}).get("scores", {}), cfgs.get(step, {}).get("scores", {})
            row.append(f"{_pct(off.get('char_accuracy'))} → {_pct(on.get('char_accuracy'))}"
                       f"{_delta(on.get('char_accuracy'), off.get('char_accuracy'))}")
        for n in sets:
            auto = ab["sets"][n]["configs"].get("auto", {})
            row.append(f"{auto.get('applied', {}).get(step, 0)} / {ab['sets'][n]['n_pages']}")
        rows.append(row)
    lines += _table(header, rows)
    lines.append("")
    consistent = []
    for n in sets:
        a = ab["sets"][n]["configs"].get("auto", {})
        m = data["systems"].get("crnn", {}).get("sets", {}).get(n)
        if m is not None and a:
            consistent.append(a["scores"]["edits"] == m["scores"]["edits"] and a["scores"]["matched"] ==
                              m["scores"]["matched"])
    if consistent:
        lines.append("The `auto` row was re-run in the ablation worker; it "
                     + ("reproduces the main table exactly." if all(consistent)
                        else "**differs from the main table** (non-deterministic pipeline?)."))
        lines.append("")
    return lines


def write_section(path: Path, body: str, title: str = "# Benchmarks") -> None:
    """This report's section of ``path`` (see :func:`benchmarks.report.write_marked_section`)."""
    write_marked_section(path, MARK_START, MARK_END, body, title)


# -- command line ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 2 and argv[0] == "--worker":
        return worker_main(argv[1])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pages", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS), metavar="NAME[:PROTOCOL]",
                        help=f"page sets (default: {' '.join(DEFAULT_SETS)})")
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--quick", action="store_true", help=f"first {QUICK_PAGES} pages of each set")
    parser.add_argument("--limit", type=positive_int, default=None, help="first N pages of each set")
    parser.add_argument("--threads", type=positive_int, default=2, help="threads per system (default 2)")
    parser.add_argument("--ablation", action="store_true", help="also run the preprocessing ablation of crnn")
    parser.add_argument("--json", action="store_true", help="print every figure as JSON on stdout")
    parser.add_argument("--out", help="markdown file to write the section into (default BENCHMARKS.md; "
                        "with --quick or --limit only if given; '-' never writes)")
    parser.add_argument("--eval-root", type=Path, default=DEFAULT_EVAL_ROOT,
                        help="folder holding the page sets (default ../shared/eval)")
    parser.add_argument("--rounds", type=positive_int, default=None,
                        help="timing rounds per system, alternating the order (A B, B A, ...); per page the "
                        "fastest round counts (default 2, 1 with --quick)")
    parser.add_argument("--preds-dir", help="also save every system's predictions here (JSON lines)")
    parser.add_argument("--detector", choices=("db", "tiny", "small"), default="db",
                        help="crnn's text detector: PP-OCRv6 tiny or small (default db: the pipeline's default)")
    parser.add_argument("--engine", choices=ENGINES, default="auto",
                        help="crnn's engine (ocr.engines.ENGINES; default auto: int8 where the model card says)")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s [bench_pages] %(message)s", datefmt="%H:%M:%S")
    try:
        sets = [resolve_set(s, args.eval_root) for s in args.sets]
    except ValueError as e:
        parser.error(str(e))
    systems = list(dict.fromkeys(args.systems))
    rounds = args.rounds or (1 if args.quick else 2)
    limit = QUICK_PAGES if args.quick else args.limit
    data = run_benchmark(systems, sets, args.threads, limit, args.ablation,
                         args.preds_dir, rounds, args.detector, args.engine)
    data["command"] = "python -m benchmarks.pages" + ("" if not argv else " " + shlex.join(argv))
    out = args.out if args.out is not None else (None if limit else str(DEFAULT_OUT))
    if out and out != "-":
        write_section(Path(out), render_section(data))
        log.info("wrote the pages section of %s", out)
        data["markdown"] = out
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    log.info("done in %.1f min", data["wall_s"] / 60)
    return 0 if data["systems"] or data.get("ablation") else 1


if __name__ == "__main__":
    sys.exit(main())
