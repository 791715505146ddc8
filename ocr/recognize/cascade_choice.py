"""The cascade's threshold and the accurate model's pad width, as chosen on the validation slice.

Placeholder until ``python -m training.choose_cascade`` writes the measured values.
"""

THRESHOLD = 0.9
ACCURATE_PAD_WIDTH = 160
FIGURES: dict = {}
