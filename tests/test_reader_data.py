"""Reader training data (index/reader/drcd.py, index/reader/features.py): DRCD converted to Simplified
Chinese with every answer offset re-checked, negatives that never hold the answer, windows whose labels
point at the answer's tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.reader.drcd import ReaderExample, _relocate, add_negatives, load_drcd, swapped_term, without_answer
from index.reader.features import windows

DRCD = Path(__file__).resolve().parents[2] / "shared" / "trainsets" / "drcd" / "raw"
pytest.importorskip("opencc")


@pytest.fixture(scope="module")
def drcd() -> tuple[list[ReaderExample], object]:
    if not (DRCD / "DRCD_dev.json").is_file():
        pytest.skip("../shared/trainsets/drcd is not beside the checkout")
    return load_drcd([DRCD / "DRCD_dev.json", DRCD / "DRCD_test.json"])


def test_conversion_keeps_every_answer_offset(drcd: tuple[list[ReaderExample], object]) -> None:
    examples, report = drcd
    assert report.questions == 7017  # type: ignore[attr-defined]
    assert len(examples) + len(report.dropped) == 7017  # type: ignore[attr-defined]
    assert len(examples) >= 7000
    for e in examples:
        assert e.answer_start is not None and e.context[e.answer_start : e.answer_start + len(e.answer)] == e.answer
    # Simplified now: traditional forms of common characters are gone
    text = "".join(e.context for e in examples[:200])
    assert "學" not in text and "國" not in text and "学" in text


def test_relocation_prefers_the_nearest_occurrence() -> None:
    context = "江门市有党员。江门市的党员很多。"
    assert _relocate(context, "江门市", 7) == 7
    assert _relocate(context, "江门市", 6) == 7  # an offset moved by conversion finds the nearest copy
    assert _relocate(context, "佛山", 0) is None


def test_negatives_never_hold_the_answer(drcd: tuple[list[ReaderExample], object]) -> None:
    examples = drcd[0][:500]
    mixed = add_negatives(examples, per_question=0.5, seed=1)
    negatives = [e for e in mixed if not e.answerable]
    assert 150 < len(negatives) < 350
    by_id = {e.qid: e for e in examples}
    for n in negatives:
        source = by_id[n.qid.removesuffix("#neg")]
        assert n.article != source.article and source.answer not in n.context


def test_cut_negatives_stay_on_topic_without_the_answer(drcd: tuple[list[ReaderExample], object]) -> None:
    examples = drcd[0][:500]
    cut = without_answer(examples, share=0.5, seed=1)
    assert 100 < len(cut) < 250
    by_id = {e.qid: e for e in examples}
    for n in cut:
        source = by_id[n.qid.removesuffix("#cut")]
        assert not n.answerable and n.article == source.article and source.answer not in n.context
        # what is left is the paragraph's other sentences
        assert len(n.context) < len(source.context)
        rest = iter(source.context)  # a subsequence of the paragraph: sentences dropped, none rewritten
        assert all(ch in rest for ch in n.context)


def test_swapped_questions_ask_what_the_passage_lacks(drcd: tuple[list[ReaderExample], object]) -> None:
    examples = drcd[0][:500]
    swapped = swapped_term(examples, share=0.5, seed=1)
    assert 100 < len(swapped) < 250
    by_id = {e.qid: e for e in examples}
    for n in swapped:
        source = by_id[n.qid.removesuffix("#swap")]
        assert not n.answerable and n.article == source.article
        # set against the sentences around the answer
        assert source.answer in n.context and n.context in source.context
        # one stretch of the question changed, and what it replaced was in the passage
        a, b = n.question, source.question
        p = next(i for i, (x, y) in enumerate(zip(a + "\0", b + "\1", strict=False)) if x != y)
        s = next(i for i, (x, y) in enumerate(zip(a[::-1] + "\0", b[::-1] + "\1", strict=False)) if x != y)
        s = min(s, len(a) - p, len(b) - p)
        assert a[p : len(a) - s] and b[p : len(b) - s] in source.context


def test_a_swap_replaces_a_shared_term_not_the_asked_kind() -> None:
    context = "2021年，新会区地区生产总值达3600亿元。全区常住人口约90万人。"
    asked = ReaderExample("q1", "2021年新会区地区生产总值是多少？", context, "3600亿元", context.index("3600"), "a")
    other = ReaderExample("q2", "哪个城市的陈皮产值最高？", "陈皮产值以新会为最。", "新会", 0, "b")
    swaps = [s for seed in range(30) for s in swapped_term([asked, other], share=1.0, seed=seed) if s.qid == "q1#swap"]
    assert swaps
    # 产值, the other question's noun that the passage lacks, replaces one noun the question shares with it;
    # 城市 (after 哪个: the asked kind) and 2021 (not a noun) are never swapped
    expected = {asked.question.replace(w, "产值") for w in ("新会区", "地区", "生产总值")}
    assert {s.question for s in swaps} <= expected
    assert all(s.answer == "" and s.answer_start is None and "3600亿元" in s.context for s in swaps)


def test_window_labels_cover_the_answer(drcd: tuple[list[ReaderExample], object], model_dir: Path) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    exact = 0
    sample = drcd[0][:300]
    for e in sample:
        ws = windows(tokenizer, e.question, e.context, e.answer_start, e.answer, max_tokens=128, stride=32)
        assert all(len(w.ids) <= 128 for w in ws)
        labelled = [w for w in ws if w.start]
        assert labelled, e.qid  # some window holds the whole answer
        for w in labelled:
            a = w.offsets[w.start - w.context_from][0]
            b = w.offsets[w.end - w.context_from][1]
            assert e.answer in e.context[a:b] or e.context[a:b].strip() in e.answer
            exact += e.context[a:b].strip() == e.answer
    assert exact >= 0.85 * len(sample)  # token edges cut a few answers (8.90% for 8.90)
