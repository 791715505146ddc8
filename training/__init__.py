"""How the shipped weights are made: synthetic lines, training, distillation caches, converters, export.

Each step runs as ``python -m training.<step>`` (``make train`` runs the recogniser recipe,
``make weights`` the converters and exports). Never imported by the runtime (``ocr``).
"""
