"""Check (chooses nothing): does ``model="auto"`` stay within 0.5 points of the accurate model on web-style Chinese?

    OMP_NUM_THREADS=1 python -m training.study_cascade_web

The cascade's threshold is chosen on the validation slice of ``../shared/train``, which holds no web or shop
Chinese. Here the 800 web-style validation lines of ``training.zh_text`` (held-out shop reviews, rendered in the
held-out font, never counted into the language model) are read by the fast model, the accurate model and the
cascade as shipped: char / line accuracy and the share of lines the cascade re-read.
"""

from __future__ import annotations

import json

from ocr.textdist import score_lines


def main() -> None:
    from ocr.recognize.recognizer import Recognizer
    from training.zh_text import render, validation_texts

    auto = Recognizer.load(model="auto")
    texts = validation_texts("web", set(auto.fast.charset.chars))
    images = render(texts, auto.fast.charset.chars)
    out = {}
    for name, reader in (("fast", auto.fast), ("accurate", auto.accurate), ("auto", auto)):
        results = reader.recognize(images)
        scores = score_lines([r.text for r in results], texts, "zh")
        out[name] = {"char": round(100 * (scores["char_accuracy"] or 0.0), 2),
                     "line": round(100 * scores["line_accuracy"], 2)}
        if name == "auto":
            out[name]["reread_share"] = round(sum(r.reread for r in results) / len(results), 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
