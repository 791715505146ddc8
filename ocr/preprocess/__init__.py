"""Page preprocessing as a pipeline of named, switchable, explainable steps.

    from ocr.preprocess import Preprocessor, PreprocessConfig, config_from_dict
    result = Preprocessor(PreprocessConfig(mode="auto")).run(rgb)
    for step in result.steps:              # the UI shows these one by one
        step.name, step.applied, step.description, step.image, step.params
    result.image                           # final page, HxWx3 uint8 RGB
    result.angle                           # degrees of skew removed (0.0 if not rotated)

Steps, in pipeline order (:data:`STEP_ORDER`); each is also a public function
``step(image, **params) -> StepResult`` that takes a gray (``HxW``) or RGB
(``HxWx3``) uint8 image, never modifies it, and returns the output image plus
a one-line description of what it did:

* :func:`grayscale` – BT.601 luma, kept as 3 equal channels;
* :func:`denoise` – non-local means; a work budget keeps it fast on big pages;
* :func:`contrast` – CLAHE on the lightness (Lab L) or gray channel;
* :func:`binarize` – adaptive Gaussian threshold, always 3-channel {0, 255};
* :func:`deskew` – estimates the dominant text angle (within ±15°) from the
  row profile of the ink pixels and rotates it away on an expanded canvas;
* :func:`normalize_size` – for a single text LINE: height 48 with aspect kept,
  right-padded with the background to a multiple of 8 (or ``fixed=(32, 280)``).

``applied`` means the step changed the image; a step that did not run (or had
nothing to do) passes its input through unchanged with ``applied=False`` and a
description saying why.

Modes (:class:`PreprocessConfig`):

* ``"off"`` – nothing runs; every step is recorded as skipped;
* ``"manual"`` – exactly the steps whose ``enabled`` flag is set run, with the
  given parameters;
* ``"auto"`` (default) – each page step decides from measurable evidence,
  ignoring its ``enabled`` flag, and uses its configured parameters:
  grayscale never (the detector reads colour), denoise only if the estimated
  noise sigma is high, contrast only if the ink/paper spread is low, binarize
  only if the illumination is uneven, deskew only if the text is tilted by more
  than half a degree. ``normalize_size`` is not a page enhancement: it runs in
  auto mode only if enabled. The thresholds are the ``*_THRESHOLD``-style
  constants below; they are conservative, so a clean scan is left untouched.

The evidence (:func:`measure_contrast`, :func:`estimate_noise`,
:func:`measure_illumination`, :func:`estimate_skew`) is public so the UI can
show the numbers, and it is recorded in each step's ``params``.

Only numpy and OpenCV are used: importing this module does not load torch.
"""

from __future__ import annotations

from ocr.preprocess.auto import Preprocessor
from ocr.preprocess.config import (BinarizeConfig, ContrastConfig, DenoiseConfig, DeskewConfig, GrayscaleConfig,
                                   NormalizeConfig, PreprocessConfig, config_from_dict)
from ocr.preprocess.measure import estimate_noise, estimate_skew, measure_contrast, measure_illumination
from ocr.preprocess.steps import (STEP_ORDER, PreprocessResult, StepResult, binarize, contrast, denoise, deskew,
                                  grayscale, normalize_size, rotate)

__all__ = [
    "STEP_ORDER", "StepResult", "PreprocessResult", "PreprocessConfig", "GrayscaleConfig", "DenoiseConfig",
    "ContrastConfig", "BinarizeConfig", "DeskewConfig", "NormalizeConfig", "Preprocessor", "config_from_dict",
    "grayscale", "denoise", "contrast", "binarize", "deskew", "normalize_size", "rotate",
    "measure_contrast", "estimate_noise", "measure_illumination", "estimate_skew",
]
