"""Unit tests of eval.metrics with hand-checked values."""

from __future__ import annotations

import math

import pytest

from eval.metrics import (
    cmrc_normalize,
    cmrc_tokens,
    contains_gold,
    exact_match,
    f1_score,
    first_citation_in_gold,
    hit_at_k,
    longest_common_run,
    ndcg_at_k,
    percentile,
    reciprocal_rank,
    refusal_precision,
    refusal_recall,
)


def test_hit_at_k() -> None:
    ranked = ["a", "a", "b", "c"]
    assert hit_at_k(ranked, ["b"], 1) == 0.0
    assert hit_at_k(ranked, ["b"], 2) == 0.0
    assert hit_at_k(ranked, ["b"], 3) == 1.0
    assert hit_at_k(ranked, ["x", "a"], 1) == 1.0
    assert hit_at_k(ranked, ["z"], 10) == 0.0
    assert hit_at_k([], ["a"], 5) == 0.0


def test_reciprocal_rank() -> None:
    assert reciprocal_rank(["a", "b", "c"], ["a"]) == 1.0
    assert reciprocal_rank(["a", "b", "c"], ["c"]) == pytest.approx(1 / 3)
    assert reciprocal_rank(["a", "b", "c"], ["c", "b"]) == 0.5
    assert reciprocal_rank(["a", "b"], ["z"]) == 0.0


def test_ndcg_dedupes_documents() -> None:
    # distinct docs: a, b, c -> gold b at doc rank 2: (1/log2 3) / 1
    assert ndcg_at_k(["a", "a", "b", "c"], ["b"], 10) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(["b", "b", "a"], ["b"], 10) == 1.0
    # two gold docs at doc ranks 1 and 3: (1 + 1/2) / (1 + 1/log2 3)
    assert ndcg_at_k(["a", "x", "c"], ["a", "c"], 10) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    # cut-off applies after deduplication: doc ranks a, x -> c is outside k=2
    assert ndcg_at_k(["a", "a", "x", "c"], ["c"], 2) == 0.0
    assert ndcg_at_k(["a"], [], 10) == 0.0


def test_contains_gold() -> None:
    text = "江海区有190名专职网格员，后来增至383名。"
    assert contains_gold(text, ["190名", "999名"], require_all=False)
    assert not contains_gold(text, ["190名", "999名"], require_all=True)
    assert contains_gold(text, ["190名", "383名"], require_all=True)
    assert not contains_gold(text, [], require_all=False)
    assert not contains_gold("", ["190名"], require_all=False)
    # full-width gold against a folded answer, and the other way round
    assert contains_gold("市、县(区)精神文明建设指导机构负责", ["市、县（区）精神文明建设指导机构"], require_all=False)
    assert contains_gold("处５０元罚款", ["50元"], require_all=False)


def test_cmrc_tokens_mixed_latin_cjk() -> None:
    # as in the official script, a removed '-' does not split the Latin run around it
    assert cmrc_tokens("光荣和ω-force") == ["光", "荣", "和", "ωforce"]
    assert cmrc_tokens("光荣和ω force") == ["光", "荣", "和", "ω", "force"]
    assert cmrc_tokens("《战国无双3》") == ["战", "国", "无", "双", "3"]
    assert cmrc_tokens("Hello World，江门2024年") == ["hello", "world", "江", "门", "2024", "年"]
    assert cmrc_tokens("22.6亿元") == ["22", ".", "6", "亿", "元"]
    assert cmrc_normalize(" 「战史演武」&「争霸演武」 ") == "战史演武&争霸演武"


def test_exact_match() -> None:
    assert exact_match("《侨都头雁》", ["侨都头雁"]) == 1.0
    assert exact_match("ABC，", ["abc"]) == 1.0
    assert exact_match("21万多名党员", ["21万多名"]) == 0.0
    assert exact_match("近78万人次", ["77.87万人次", "近78万人次"]) == 1.0
    assert exact_match("", ["聂加伟"]) == 0.0


def test_f1() -> None:
    # gold 3 tokens, prediction 5 tokens, common run 3 -> P 3/5, R 1, F1 = 0.75
    assert f1_score("书记聂加伟", ["聂加伟"]) == pytest.approx(0.75)
    assert f1_score("聂加伟", ["聂加伟"]) == 1.0
    assert f1_score("", ["聂加伟"]) == 0.0
    assert f1_score("完全无关", ["聂加伟"]) == 0.0
    # punctuation removed: "《侨都头雁》工程" -> 6 tokens, gold 4 -> P 4/6, R 1 -> 0.8
    assert f1_score("《侨都头雁》工程", ["侨都头雁"]) == pytest.approx(0.8)
    # mixed: pred [光, 荣, ωforce] gold [光, 荣, 和, ωforce]: longest contiguous run 2
    # P 2/3, R 2/4 -> 2*(2/3)*(1/2)/(7/6) = 4/7
    assert f1_score("光荣ω-force", ["光荣和ω-force"]) == pytest.approx(4 / 7)
    # Latin words are whole tokens: pred [ibm, 公, 司] gold [ibm]: P 1/3, R 1 -> 0.5
    assert f1_score("IBM公司", ["ibm"]) == pytest.approx(0.5)
    # max over gold answers
    assert f1_score("近78万人次", ["77.87万人次", "近78万人次"]) == 1.0


def test_longest_common_run_is_contiguous() -> None:
    assert longest_common_run(list("abcde"), list("axcde")) == 3
    assert longest_common_run(list("ab"), list("ba")) == 1
    assert longest_common_run([], list("a")) == 0


def test_refusal_precision_recall() -> None:
    refused = [True, True, False, False, True]
    unans = [True, False, True, False, True]
    assert refusal_precision(refused, unans) == pytest.approx(2 / 3)
    assert refusal_recall(refused, unans) == pytest.approx(2 / 3)
    assert refusal_precision([False, False], [True, False]) is None
    assert refusal_precision([True, False], [False, False]) is None  # no unanswerable question to find
    assert refusal_recall([True], [False]) is None
    assert refusal_recall([False, True], [True, True]) == 0.5


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert percentile([3.0, 1.0, 2.0], 0) == 1.0
    assert percentile([3.0, 1.0, 2.0], 100) == 3.0
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_first_citation_in_gold() -> None:
    assert first_citation_in_gold(["a.doc", "b.doc"], ["a.doc"])
    assert not first_citation_in_gold(["b.doc", "a.doc"], ["a.doc"])  # only the first citation counts
    assert not first_citation_in_gold([], ["a.doc"])


def _row(answers: list[str], gold: list[str], *, short: str | None, cited: list[str], refused: bool = False,
         answerable: bool = True) -> dict:
    return {"answerable": answerable, "answers": answers, "gold_docs": gold, "require_all": False, "tags": [],
            "ranked_doc_ids": cited, "citation_checks": [True] * len(cited),
            "answer": {"answer": "" if refused else f"本条例自{short}起施行。", "short_answer": short,
                       "refused": refused, "citations": [{"doc_id": d, "quote": "q"} for d in cited]}}


def test_short_contains_and_cited_document_scores() -> None:
    from eval.scoring import score_rows

    rows = [
        _row(["2021年5月1日"], ["jm.doc"], short="2021年5月1日起施行", cited=["jm.doc"]),  # EM 0, contains 1
        _row(["2022年3月1日"], ["fs.doc"], short="2022年3月1日", cited=["zs.doc", "fs.doc"]),  # wrong first doc
        _row(["五十元"], ["xn.doc"], short=None, cited=["xn.doc"]),  # no short answer: no short_contains credit
        _row(["二百元"], ["hh.doc"], short="二百元", cited=[], refused=True),  # refused: neither
        _row([], [], short=None, cited=[], refused=True, answerable=False),  # a refused trap
    ]
    out = score_rows(rows)
    assert out["em"] == 0.25 and out["short_contains"] == 0.5
    assert out["citation_doc_accuracy"] == round(2 / 3, 4)  # of the 3 answered answerable questions
    assert out["refusal_recall"] == 1.0
