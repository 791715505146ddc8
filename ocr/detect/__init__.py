"""Text-line detection: where on a page are the lines of text?

    det = TextDetector.load()
    result = det.detect(rgb)                  # DetectionResult(boxes, prob_map, seconds)
    for box in sort_reading_order(result.boxes):
        line = crop_line(rgb, box)            # upright crop, ready for the recogniser

``config`` (the PP-OCRv6 DB releases), ``network`` (their torch port), ``postprocess``
(probability map -> boxes), ``geometry`` (boxes, crops, reading order, quarter turns),
``detector`` (the DB detector on onnxruntime or torch), ``classical`` (a plain-OpenCV fallback).
"""

from __future__ import annotations

from ocr.detect.classical import ClassicalDetector
from ocr.detect.detector import (DEFAULT_DET_WEIGHTS, DEFAULT_VARIANT, VARIANT_WEIGHTS, DetectionResult, Detector,
                                 OnnxDetEngine, TextDetector, check_det_weights, full_resolution, load_det_model,
                                 variant_weights)
from ocr.detect.geometry import TextBox, crop_line, rotate, sort_reading_order
from ocr.detect.postprocess import db_boxes, detection_size

__all__ = ["ClassicalDetector", "DEFAULT_DET_WEIGHTS", "DEFAULT_VARIANT", "VARIANT_WEIGHTS", "DetectionResult",
           "Detector", "OnnxDetEngine", "TextDetector", "check_det_weights", "full_resolution", "load_det_model",
           "variant_weights", "TextBox", "crop_line", "rotate", "sort_reading_order", "db_boxes", "detection_size"]
