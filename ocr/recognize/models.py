"""The recognisers a reader may choose, by one name everywhere: ``fast``, ``accurate`` or ``auto``.

``fast`` is the CRNN with PP-OCRv6 tiny's CNN (``crnn.pt``); ``accurate`` the CRNN with PP-OCRv6
small's CNN and attention neck (``crnn_accurate.pt``, about 8x the time per word); ``auto`` the
cascade of the two (``ocr.recognize.cascade``): every line read fast, the unsure ones re-read
accurately. What differs between the two networks is data, here, not code paths.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocr.errors import OCRError
from ocr.recognize.cascade_choice import ACCURATE_PAD_WIDTH
from ocr.recognize.lineprep import PAD_MIN_WIDTH

#: every name ``model=`` accepts (the API, the CLI, the REST field, ``OCR_MODEL``)
MODELS = ("fast", "accurate", "auto")


class UnknownModelError(OCRError):
    """A model name outside :data:`MODELS`."""

    code = "invalid_model"
    default_message = "unknown model; choose fast, accurate or auto"


@dataclass(frozen=True)
class ModelSpec:
    """One network: its files in ``weights/`` and how it is fed and explained."""

    name: str
    weights: str
    charset: str
    #: batches are right-padded to at least this width (the network's squeeze-excite blocks, and the
    #: accurate model's attention, see the padding)
    pad_min_width: int
    #: padded input columns per batch (bounds activation memory; the accurate model's are ~2x wider)
    max_batch_columns: int
    #: the CNN layer Grad-CAM hooks by default: the last block before the height is pooled away
    cam_layer: str
    #: time steps decoded past a line's content (``PreparedLine.tail_frames``; chosen on the validation slice)
    tail_frames: int = 0
    #: decode every step of the narrowest batch (``pad_min_width``) even past a short line's content, as PaddleOCR
    #: decodes its whole padded input (chosen on the validation slice)
    decode_padding: bool = False


SPECS: dict[str, ModelSpec] = {
    # tail_frames=1 for both, decode_padding for the accurate model: chosen on the validation slice
    # (training.choose_tail; model card, "The last frame")
    "fast": ModelSpec("fast", "crnn.pt", "charset.txt", PAD_MIN_WIDTH, 3200, "backbone.blocks.8", tail_frames=1),
    "accurate": ModelSpec("accurate", "crnn_accurate.pt", "charset_accurate.txt", ACCURATE_PAD_WIDTH, 1600,
                          "backbone.blocks.12", tail_frames=1, decode_padding=True),
}


def check_model(name: str) -> str:
    """``name`` if it is one of :data:`MODELS`, else :class:`UnknownModelError`."""
    if name not in MODELS:
        raise UnknownModelError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return name


#: what each choice is, before its measured figures
SUMMARIES = {
    "fast": "Fast: PP-OCRv6 tiny's CNN, for many pages",
    "accurate": "Accurate: PP-OCRv6 small's CNN and attention neck, for text that must be right",
    "auto": "Auto: every line read fast, the unsure ones re-read accurately",
}


def describe_models() -> dict[str, str]:
    """Each model name with its measured trade-off on the validation slice (``cascade_choice.FIGURES``)."""
    from ocr.recognize.cascade_choice import FIGURES, THRESHOLD

    out = {}
    for name, summary in SUMMARIES.items():
        figures = FIGURES.get("accurate_pad%d" % ACCURATE_PAD_WIDTH if name == "accurate" else name)
        if not figures:
            out[name] = summary
            continue
        accuracy = 100 * sum(figures["char_accuracy"].values()) / len(figures["char_accuracy"])
        text = f"{summary}: {accuracy:.1f}% mean char accuracy, {figures['ms_per_line_all']:.0f} ms a line"
        if name == "auto":
            text += f"; re-reads the {100 * figures['reread_share']:.0f}% of lines below confidence {THRESHOLD:g}"
        out[name] = text + " on the validation slice, 1 thread"
    return out
