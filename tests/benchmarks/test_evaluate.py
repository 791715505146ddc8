"""benchmarks.evaluate: the scoring protocol of ../shared/eval/INDEX.md."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import types
from pathlib import Path

import pytest

from benchmarks import evaluate
from ocr.textdist import edit_distance as levenshtein
from benchmarks.evaluate import (
    main,
    normalize,
    read_jsonl,
    read_manifest,
    read_predictions,
    score_lines,
    score_pages,
)

ROOT = Path(__file__).resolve().parents[2]


# -- normalisation ---------------------------------------------------------------------


def test_normalize_zh():
    assert normalize("ＡＢＣ　１２３ 中文\t字", "zh") == "ABC123中文字"  # full-width -> half-width
    assert normalize("Abc def", "zh") == "Abcdef"  # case kept
    assert normalize("（价格：１０元）", "zh") == "(价格:10元)"


def test_normalize_upper():
    assert normalize(" abc ｄｅｆ\n", "upper") == "ABCDEF"
    assert normalize("Total: 12.50", "upper") == "TOTAL:12.50"


def test_normalize_alnum():
    assert normalize("Hello, World! 42", "alnum") == "helloworld42"
    assert normalize("Ｈｉ-Ｆｉ", "alnum") == "hifi"
    assert normalize("café", "alnum") == "caf"
    assert normalize(None, "alnum") == ""


def test_normalize_unknown_protocol():
    with pytest.raises(ValueError, match="protocol"):
        normalize("x", "lower")


# -- edit distance --------------------------------------------------------------------


@pytest.mark.parametrize("a, b, d", [
    ("", "", 0), ("abc", "abc", 0), ("", "abc", 3), ("abc", "", 3),
    ("kitten", "sitting", 3), ("flaw", "lawn", 2), ("abc", "cba", 2),
    ("intention", "execution", 5), ("中文字", "中字", 1), ("ab", "ba", 2),
])
def test_levenshtein_known_values(a, b, d):
    assert levenshtein(a, b) == d
    assert levenshtein(b, a) == d


def _reference_levenshtein(a: str, b: str) -> int:
    table = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1,
                              table[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return table[-1][-1]


def test_levenshtein_matches_full_table():
    rng = random.Random(0)
    for _ in range(300):
        a = "".join(rng.choice("abc") for _ in range(rng.randint(0, 9)))
        b = "".join(rng.choice("abc") for _ in range(rng.randint(0, 9)))
        assert levenshtein(a, b) == _reference_levenshtein(a, b), (a, b)


# -- line scoring ------------------------------------------------------------------------


def test_score_lines_known_values():
    r = score_lines(["abc", "xyz", ""], ["abc", "xyw", "ab"], "zh")
    assert (r["n"], r["chars"], r["edits"]) == (3, 8, 3)
    assert r["char_accuracy"] == pytest.approx(1 - 3 / 8)
    assert r["line_accuracy"] == pytest.approx(1 / 3)


def test_score_lines_normalises_both_sides():
    r = score_lines(["ＡＢＣ １"], ["A B C1"], "zh")
    assert r["char_accuracy"] == 1.0 and r["line_accuracy"] == 1.0
    r = score_lines(["total"], ["TOTAL"], "upper")
    assert r["line_accuracy"] == 1.0
    assert score_lines(["total"], ["TOTAL"], "zh")["line_accuracy"] == 0.0


def test_score_lines_can_go_negative():
    r = score_lines(["abcdefgh"], ["a"], "zh")
    assert r["edits"] == 7 and r["chars"] == 1
    assert r["char_accuracy"] == pytest.approx(-6.0)


def test_score_lines_edge_cases():
    with pytest.raises(ValueError):
        score_lines(["a"], ["a", "b"], "zh")
    empty = score_lines([], [], "zh")
    assert empty["char_accuracy"] is None and empty["line_accuracy"] is None
    assert score_lines([""], [" "], "zh")["char_accuracy"] is None  # no label characters: 0/0


# -- files ---------------------------------------------------------------------------------


def test_read_manifest(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_bytes("images/a.jpg\thello\tworld\r\nimages/b.jpg\t\n\nimages/c.jpg\t 中文 \n".encode())
    assert read_manifest(path) == [
        ("images/a.jpg", "hello\tworld"),  # split on the first tab only
        ("images/b.jpg", ""),  # empty text
        ("images/c.jpg", " 中文 "),
    ]
    bad = tmp_path / "bad.tsv"
    bad.write_text("images/a.jpg hello\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.tsv:1"):
        read_manifest(bad)


def test_read_predictions(tmp_path):
    path = tmp_path / "preds.tsv"
    path.write_text("a.jpg\thello\t0.91\nb.jpg\t\t0.10\nc.jpg\twith\ttab\t0.5\nd.jpg\tnoconf\n",
                    encoding="utf-8")
    assert read_predictions(path) == {"a.jpg": "hello", "b.jpg": "", "c.jpg": "with\ttab",
                                      "d.jpg": "noconf"}


def test_read_jsonl(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"image": "a.jpg", "lines": []}\n\n{"image": "b.jpg"}\n', encoding="utf-8")
    assert [r["image"] for r in read_jsonl(path)] == ["a.jpg", "b.jpg"]
    path.write_text('{"image": "a.jpg"}\n{oops\n', encoding="utf-8")
    with pytest.raises(ValueError, match=":2: invalid JSON"):
        read_jsonl(path)


# -- end to end ---------------------------------------------------------------------------


def quad(x1, y1, x2, y2):
    return [x1, y1, x2, y1, x2, y2, x1, y2]


LABEL_PAGE = {"image": "images/p.jpg", "lines": [
    {"box": quad(0, 0, 100, 20), "text": "hello", "vertical": False, "unlabeled": False},
    {"box": quad(0, 30, 100, 50), "text": "world", "illegible": False},
    {"box": quad(0, 60, 100, 80), "text": "###", "unlabeled": True},
]}


def pred(box, text):
    return {"box": box, "text": text, "confidence": 0.9}


def test_score_pages_perfect():
    preds = [{"image": "./images/p.jpg", "lines": [  # "./" still pairs the page
        pred(quad(0, 30, 100, 50), "world"), pred(quad(1, 1, 99, 21), "hello")]}]
    r = score_pages(preds, [LABEL_PAGE], "zh")
    assert r["char_accuracy"] == 1.0 and r["line_accuracy"] == 1.0
    assert (r["precision"], r["recall"], r["f1"]) == (1.0, 1.0, 1.0)
    assert (r["matched"], r["n_labels"], r["n_preds"], r["chars"]) == (2, 2, 2, 10)
    assert r["n_skipped_labels"] == 1


def test_score_pages_one_missed():
    preds = [{"image": "images/p.jpg", "lines": [pred(quad(0, 0, 100, 20), "hello")]}]
    r = score_pages(preds, [LABEL_PAGE], "zh")
    assert r["edits"] == 5 and r["char_accuracy"] == pytest.approx(0.5)
    assert r["precision"] == 1.0 and r["recall"] == 0.5
    assert r["f1"] == pytest.approx(2 / 3)


def test_score_pages_one_extra_prediction():
    preds = [{"image": "images/p.jpg", "lines": [
        pred(quad(0, 0, 100, 20), "hello"), pred(quad(0, 30, 100, 50), "world"),
        pred(quad(200, 200, 300, 220), "x y z")]}]
    r = score_pages(preds, [LABEL_PAGE], "zh")
    assert r["edits"] == 3 and r["char_accuracy"] == pytest.approx(0.7)  # normalised length 3
    assert r["precision"] == pytest.approx(2 / 3) and r["recall"] == 1.0
    assert r["n_preds"] == 3 and r["matched"] == 2


def test_score_pages_prediction_on_a_skipped_box_is_ignored():
    preds = [{"image": "images/p.jpg", "lines": [
        pred(quad(0, 0, 100, 20), "hello"), pred(quad(0, 30, 100, 50), "world"),
        pred(quad(0, 61, 100, 79), "whatever")]}]
    r = score_pages(preds, [LABEL_PAGE], "zh")
    assert r["char_accuracy"] == 1.0 and r["precision"] == 1.0 and r["recall"] == 1.0
    assert r["n_preds"] == 2 and r["n_ignored_preds"] == 1 and r["n_labels"] == 2


def test_score_pages_matching_is_one_to_one_and_needs_iou_half():
    preds = [{"image": "images/p.jpg", "lines": [
        pred(quad(0, 0, 100, 20), "hello"),
        pred(quad(0, 0, 90, 20), "hello"),  # duplicate: a false positive
        pred(quad(0, 30, 40, 50), "world"),  # IoU 0.4 with "world": no match
    ]}]
    r = score_pages(preds, [LABEL_PAGE], "zh")
    assert r["matched"] == 1 and r["n_preds"] == 3
    assert r["edits"] == 5 + 5 + 5  # duplicate + stray + missed "world"
    assert r["char_accuracy"] == pytest.approx(-0.5)


def test_score_pages_substitution_and_missing_page():
    other = {"image": "images/q.jpg", "lines": [{"box": quad(0, 0, 10, 10), "text": "abcd"}]}
    preds = [{"image": "images/p.jpg", "lines": [
        pred(quad(0, 0, 100, 20), "hellp"), pred(quad(0, 30, 100, 50), "world")]}]
    r = score_pages(preds, [LABEL_PAGE, other], "upper")
    assert r["edits"] == 1 + 4 and r["chars"] == 14
    assert r["pages_without_predictions"] == 1 and r["n_pages"] == 2
    assert r["line_accuracy"] == pytest.approx(1 / 3)


# -- command line ---------------------------------------------------------------------------


@pytest.fixture
def line_set(tmp_path):
    labels = tmp_path / "labels.tsv"
    labels.write_text("images/a.jpg\tHello\nimages/b.jpg\t中文\nimages/c.jpg\t\n", encoding="utf-8")
    preds = tmp_path / "preds.tsv"
    preds.write_text("images/a.jpg\tHellp\t0.8\nimages/b.jpg\t中文\t0.99\n", encoding="utf-8")
    return labels, preds


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.evaluate", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_cli_round_trip_json(line_set):
    labels, preds = line_set
    proc = run_cli(labels, "--protocol", "zh", "--preds", preds, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {"char_accuracy", "line_accuracy", "n", "chars", "edits"} <= set(result)
    assert (result["n"], result["chars"], result["edits"]) == (3, 7, 1)
    assert result["char_accuracy"] == pytest.approx(6 / 7)
    assert result["line_accuracy"] == pytest.approx(2 / 3)  # c.jpg: no prediction, empty label


def test_cli_table_output(line_set, capsys):
    labels, preds = line_set
    assert main([str(labels), "--protocol", "upper", "--preds", str(preds)]) == 0
    out = capsys.readouterr().out
    assert "char accuracy" in out and "85.71%" in out


def test_cli_pages(tmp_path, capsys):
    pages = tmp_path / "page.jsonl"
    pages.write_text(json.dumps(LABEL_PAGE) + "\n", encoding="utf-8")
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"image": "images/p.jpg", "lines": [
        pred(quad(0, 0, 100, 20), "hello")]}) + "\n", encoding="utf-8")
    assert main(["--pages", str(pages), "--preds", str(preds), "--protocol", "zh", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["recall"] == 0.5 and result["precision"] == 1.0
    assert result["char_accuracy"] == pytest.approx(0.5)
    assert {"f1", "matched", "n_labels", "n_preds"} <= set(result)


def test_cli_missing_files_exit_2_without_traceback(tmp_path, line_set):
    labels, preds = line_set
    for args in ([tmp_path / "nope.tsv", "--protocol", "zh", "--preds", preds],
                 [labels, "--protocol", "zh", "--preds", tmp_path / "nope_preds.tsv"],
                 ["--pages", tmp_path / "nope.jsonl", "--protocol", "zh", "--preds", preds]):
        proc = run_cli(*args)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr
        assert proc.stderr.strip().count("\n") == 0  # one line
        assert proc.stderr.startswith("error: file not found: ")
        assert proc.stdout == ""


def test_cli_usage_errors(line_set, capsys):
    labels, preds = line_set
    with pytest.raises(SystemExit) as info:
        main(["--protocol", "zh"])  # neither labels nor pages
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main([str(labels), "--protocol", "klingon", "--preds", str(preds)])


def test_cli_without_preds_and_without_model(line_set, monkeypatch, capsys):
    labels, _ = line_set
    monkeypatch.setitem(sys.modules, "ocr.recognize.recognizer", None)  # makes the import fail
    assert main([str(labels), "--protocol", "zh"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no --preds given and the recogniser cannot be imported")
    monkeypatch.setitem(sys.modules, "ocr.pipeline", None)
    pages = labels.parent / "page.jsonl"
    pages.write_text(json.dumps(LABEL_PAGE) + "\n", encoding="utf-8")
    assert main(["--pages", str(pages), "--protocol", "zh"]) == 2
    assert "pipeline cannot be imported" in capsys.readouterr().err


def test_cli_runs_the_recogniser_when_no_preds(tmp_path, monkeypatch, capsys):
    import numpy as np

    from ocr.imageio import encode_png

    (tmp_path / "images").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "images" / name).write_bytes(encode_png(np.zeros((8, 20, 3), np.uint8)))
    (tmp_path / "images" / "broken.png").write_bytes(b"not an image")
    labels = tmp_path / "labels.tsv"
    labels.write_text("images/a.png\tok\nimages/broken.png\tzz\nimages/b.png\tok\n", encoding="utf-8")

    seen = []

    class FakeRecognizer:
        @classmethod
        def load(cls):
            return cls()

        def recognize(self, images):
            seen.append([im.shape for im in images])
            return [types.SimpleNamespace(text="ok", confidence=0.5) for _ in images]

    monkeypatch.setitem(sys.modules, "ocr.recognize.recognizer", types.SimpleNamespace(Recognizer=FakeRecognizer))
    saved = tmp_path / "saved.tsv"
    assert main([str(labels), "--protocol", "zh", "--json", "--save-preds", str(saved)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert seen == [[(8, 20, 3), (8, 20, 3)]]  # the broken image is not sent
    assert result["edits"] == 2 and result["line_accuracy"] == pytest.approx(2 / 3)
    assert read_predictions(saved) == {"images/a.png": "ok", "images/broken.png": "",
                                       "images/b.png": "ok"}


def test_cli_runs_the_pipeline_when_no_preds(tmp_path, monkeypatch, capsys):
    import numpy as np

    from ocr.imageio import encode_png

    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "p.jpg").write_bytes(encode_png(np.zeros((100, 120, 3), np.uint8)))
    pages = tmp_path / "page.jsonl"
    pages.write_text(json.dumps(LABEL_PAGE) + "\n", encoding="utf-8")

    class FakePipeline:
        def run(self, image):
            assert image.shape == (100, 120, 3)
            line = types.SimpleNamespace(box=np.array(quad(0, 0, 100, 20), float).reshape(4, 2),
                                         text="hello")
            return types.SimpleNamespace(lines=[line])

    monkeypatch.setitem(sys.modules, "ocr.pipeline", types.SimpleNamespace(OCRPipeline=FakePipeline))
    assert main(["--pages", str(pages), "--protocol", "zh", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["matched"] == 1 and result["recall"] == 0.5 and result["precision"] == 1.0


def test_module_has_no_heavy_imports():
    code = "import sys, benchmarks.evaluate; print('numpy' in sys.modules, 'torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.stdout.split() == ["False", "False"]
    assert evaluate.IOU_THRESHOLD == 0.5
