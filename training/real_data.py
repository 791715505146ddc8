"""The real labelled line crops of ``../shared/train``: reading, the validation split, label conventions.

Why a module of its own: the split must be the same for every training run, every
checkpoint choice and the model card, so it is computed here, from the data alone,
by source page / receipt (never by line: lines of one receipt are near-duplicates).

Label conventions (``../shared/train/INDEX.md``) become *loss* conventions, not
rewritten targets: SROIE labels are upper case even where the print is mixed case,
so for that set an upper-case target accepts the lower-case class too (the loss is
case-agnostic; nothing teaches the model to print lower case as upper case);
XFUND labels are NFKC with spaces dropped, so its targets are NFKC and a space on
the image may be read as blank. Every set accepts the NFKC aliases of a target
(full-width ``（`` for ``(``), the form the scoring protocols compare anyway.
"""

from __future__ import annotations

import csv
import hashlib
import unicodedata
from dataclasses import dataclass
from pathlib import Path

#: where the training crops live, relative to the project root
TRAIN_ROOT = Path("../shared/train")
#: per set: the scoring protocol of its kind (ocr's evaluate protocols) and its label convention
SETS: dict[str, tuple[str, str]] = {
    "zh_doc_xfund_train_lines": ("zh", "nfkc_nospace"),
    "en_receipts_sroie_train_lines": ("upper", "upper"),
    "en_scene_iiit5k_train": ("alnum", "exact"),
    "en_scene_svt_train": ("alnum", "exact"),
    "en_scene_ic15_train": ("alnum", "exact"),
}
#: share of each set's source pages / receipts / scene images held out for validation
VALIDATION_SHARE = 0.10


@dataclass(frozen=True)
class RealLine:
    set_name: str
    image: Path
    text: str  # the training target, after the set's convention (NFKC; no spaces for XFUND)
    label: str  # verbatim label, for scoring with the set's protocol
    source: str  # the source page / receipt / scene image: the unit of the split

    @property
    def protocol(self) -> str:
        return SETS[self.set_name][0]

    @property
    def convention(self) -> str:
        return SETS[self.set_name][1]


def validation_sources(sources: set[str]) -> set[str]:
    """The first ``VALIDATION_SHARE`` of a set's sources ordered by the SHA-256 of their path:
    stable, independent of file order and of any model, and exactly sized per set."""
    ranked = sorted(sources, key=lambda s: hashlib.sha256(s.encode("utf-8")).hexdigest())
    return set(ranked[: round(len(ranked) * VALIDATION_SHARE)])


def target_text(label: str, convention: str) -> str:
    text = unicodedata.normalize("NFKC", label).strip()
    if convention == "nfkc_nospace":
        return "".join(c for c in text if not c.isspace())
    return " ".join(text.split())  # runs of spaces collapse: one space class per gap


def read_set(root: Path, set_name: str) -> list[RealLine]:
    folder = root / set_name
    with (folder / "provenance.tsv").open(encoding="utf-8") as f:
        sources = {row["image"]: row["source_path"] for row in csv.DictReader(f, delimiter="\t")}
    lines = []
    for raw in (folder / "labels.tsv").read_text(encoding="utf-8").splitlines():
        if "\t" not in raw:
            continue
        rel, label = raw.split("\t", 1)
        text = target_text(label, SETS[set_name][1])
        if text:
            lines.append(RealLine(set_name, folder / rel, text, label, sources.get(rel, rel)))
    return lines


def read_all(root: Path = TRAIN_ROOT) -> tuple[list[RealLine], list[RealLine]]:
    """(training lines, validation lines) over every set."""
    train, val = [], []
    for name in SETS:
        lines = read_set(root, name)
        held_out = validation_sources({line.source for line in lines})
        for line in lines:
            (val if line.source in held_out else train).append(line)
    return train, val
