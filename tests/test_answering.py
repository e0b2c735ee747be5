"""Cited answers with the real model, the real reader and a real index."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from service.answering import Answer, verify_citation
from service.answering.answerer import Answerer
from service.answering.candidates import PassageReader

SETS = sorted(Path("eval/sets").glob("seeds-*.jsonl"))  # the question sets over the seed articles


@pytest.mark.parametrize(("question", "gold"), [
    ("江门市目前有多少名党员？", "21万多名"),
    ("江门累计落实基层党建经费多少？", "22.6亿元"),
    ("江城区建成的区级党群服务中心面积多大？", "3200平方米"),
    ("2024年暑运江门站共计到发旅客多少人次？", "77.87万人次"),
    ("暑假江门亲水休闲游共发送旅客多少人次？", "135万人次"),
])
def test_factoid_answers(real_engine, question: str, gold: str) -> None:  # type: ignore[no-untyped-def]
    a = real_engine.answer(question)
    assert not a.refused, a.to_dict()
    assert gold in a.answer
    assert a.citations and a.citations[0].quote in a.answer
    assert a.answer.startswith("据《")


def test_short_answer_keeps_number_as_written(real_engine) -> None:  # type: ignore[no-untyped-def]
    a = real_engine.answer("江门市目前有多少名党员？")
    assert a.short_answer == "21万多名"


def test_a_list_question_gets_the_whole_list_as_its_short_answer(real_engine) -> None:  # type: ignore[no-untyped-def]
    a = real_engine.answer("江门推动成立了哪些行业党委？")
    assert a.answer_type == "list" and not a.refused, a.to_dict()
    assert a.short_answer == "交通运输、物业服务、外卖送餐"
    assert a.short_answer in a.citations[0].quote


def test_a_daily_figure_is_not_answered_with_the_total(real_engine) -> None:  # type: ignore[no-untyped-def]
    a = real_engine.answer("今年暑运江门站日均到发旅客多少人次？")
    assert not a.refused, a.to_dict()
    assert a.short_answer == "超1.25万人次" and "日均" in a.citations[0].quote


def test_a_count_of_something_else_is_refused(real_engine) -> None:  # type: ignore[no-untyped-def]
    # the article counts volunteers (3000多名) and temporary branches (168个), never 江城区's party members
    a = real_engine.answer("阳江市江城区共有多少名党员？")
    assert a.refused and "党员" in a.answer, a.to_dict()


def test_a_sum_of_money_is_answered_in_yuan(real_engine) -> None:  # type: ignore[no-untyped-def]
    a = real_engine.answer("江城区投入了多少资金改造升级“老危旧小”社区党群服务中心？")
    assert not a.refused and a.short_answer == "超2200万元", a.to_dict()  # not 56个 (centres) in the same sentence
    b = real_engine.answer("江门强基工程《行动方案》（2024—2026年）的总预算是多少？")
    assert b.refused and "以“元”计" in b.answer, b.to_dict()  # the plan counts 8个方面20条, never money


def test_a_year_compared_with_is_not_the_year_asked_about(real_engine) -> None:  # type: ignore[no-untyped-def]
    a = real_engine.answer("2024年江门村集体经济经营性收入超100万元的村比2023年增加了多少个？")
    assert not a.refused and a.short_answer == "53个", a.to_dict()


def test_a_refusal_gives_no_reason_the_evidence_contradicts(real_engine) -> None:  # type: ignore[no-untyped-def]
    # a threshold nothing reaches, so both questions are refused for low confidence whatever the calibration
    base = real_engine.answerer()
    unsure = base.with_thresholds(replace(base.thresholds, min_confidence=1.01))
    # the reader rates 8600个 (sailings) above 135万人次, which passes the filters: "no count in 人次" would be false
    a = unsure.answer("今年暑假坐船出海游玩的人很多，江门水上旅游一共运送了多少人次？")
    assert a.refused and a.reason == "low_confidence" and "以“人次”计" not in a.answer, a.to_dict()
    # no money figure at all: the span kept is no count, so the failing of the ones above it is the reason
    b = unsure.answer("江门强基工程《行动方案》（2024—2026年）的总预算是多少？")
    assert b.refused and b.reason == "no_evidence" and "以“元”计" in b.answer, b.to_dict()


def test_conflict_is_reported_with_both_dates(real_engine) -> None:  # type: ignore[no-untyped-def]
    a = real_engine.answer("江海区有多少名专职网格员？")
    assert not a.refused
    assert a.conflict, a.answer
    assert "190名" in a.answer and "383名" in a.answer
    assert {c.date for c in a.citations} == {"2022-05", "2022-09-26"}


@pytest.mark.parametrize("question", [
    "佛山市有多少名党员？",
    "2019年江门地区生产总值是多少？",
    "明天江门的天气怎么样？",
    "“十四五”期间江城区新增规上企业多少家？",  # the article gives the 十三五 figure
])
def test_unanswerable_refused_with_passages(real_engine, question: str) -> None:  # type: ignore[no-untyped-def]
    a = real_engine.answer(question)
    assert a.refused and a.reason in ("no_evidence", "low_confidence", "out_of_scope")
    assert not a.citations and a.passages


def test_a_post_nobody_is_named_for_is_refused(real_engine) -> None:  # type: ignore[no-untyped-def]
    # the articles name 江门's 市委书记 (陈岸明) with confidence, never its 纪委书记
    a = real_engine.answer("江门市纪委书记是谁？")
    assert a.refused and a.reason == "no_evidence" and "纪委书记" in a.answer, a.answer
    b = real_engine.answer("谁是江门市委书记？")
    assert not b.refused and b.short_answer == "陈岸明" and "市委书记" in b.citations[0].quote


@pytest.mark.parametrize(("question", "gold"), [
    ("阳江市江城区委书记是谁？", "陈基文"),  # from the article's byline
    ("哪位副市长参加了科技部系统青年干部在江门双碳实验室的调研？", "周佩珊"),
    pytest.param("2024年暑运江门站发送旅客中，江门站为重点旅客提供服务的服务台叫什么？", "五邑之窗",
                 marks=pytest.mark.xfail(strict=True, reason=(
                     "fp32 reader: 五邑之窗 (passage 2, margin 3.96) does not make up the rank prior 3.36 over "
                     "爱心服务 (passage 1, 2.31); the int8 reader answered it. Passes again when it is fixed."))),
])
def test_names_and_roles(real_engine, question: str, gold: str) -> None:  # type: ignore[no-untyped-def]
    a = real_engine.answer(question)
    assert not a.refused, a.to_dict()
    assert gold in a.answer


def test_a_place_alias_is_read_as_the_city_it_names(real_engine) -> None:  # type: ignore[no-untyped-def]
    # 侨都 is what 江门 calls itself. Read as asked, the reader (trained on DRCD) is unsure of 吴晓晖 and the
    # question is refused; read with the articles' name, it is answered
    a = real_engine.answer("侨都的市长是谁？")
    assert not a.refused and a.short_answer == "吴晓晖", a.to_dict()


def test_questions_about_the_coming_days_are_out_of_scope(real_engine) -> None:  # type: ignore[no-untyped-def]
    a = real_engine.answer("下周江门还会有台风吗？")
    assert a.refused and a.reason == "out_of_scope" and "已发表的报道" in a.answer


def test_sparse_mode_answers_with_dense_evidence(real_engine) -> None:  # type: ignore[no-untyped-def]
    a = real_engine.answer("江门市目前有多少名党员？", mode="sparse")
    assert all(p.dense_score is not None for p in a.passages)
    assert a.signals["dense_top"] == max(p.dense_score or 0.0 for p in a.passages)


def test_other_city_and_other_year_unanswerables_are_refused(real_engine) -> None:  # type: ignore[no-untyped-def]
    # the smoke set's labelled unanswerables that the filters must catch; its third ("not stated": 江门市委组织部
    # 部长是谁) is answered with the party secretary's name today, a reader miss stated in the reader issue
    rows = [json.loads(line) for line in Path("eval/sets/seeds-smoke.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    caught = [r for r in rows if not r["answerable"] and {"other_city", "other_year"} & set(r["tags"])]
    assert len(caught) == 2
    for r in caught:
        a = real_engine.answer(r["question"])
        assert a.refused and a.reason == "no_evidence" and not a.citations, (r["question"], a.answer)
        assert "找到的段落没有" in a.answer  # says what is missing


class RecordingReader:
    """The real reader, noting the rank of every passage it is given."""

    def __init__(self, inner: PassageReader) -> None:
        self.inner, self.fingerprint, self.ranks = inner, inner.fingerprint, []  # type: list[int]

    def candidates(self, question, passages, rank_prior=()):  # type: ignore[no-untyped-def]
        self.ranks += [p.rank for p in passages]
        return self.inner.candidates(question, passages, rank_prior)


def _recording(real_engine, **thresholds):  # type: ignore[no-untyped-def]
    base = real_engine.answerer()
    reader = RecordingReader(base.reader)
    answerer = Answerer(base.retriever, reader, replace(base.thresholds, **thresholds))  # type: ignore[arg-type]
    return answerer, reader


def test_a_sure_first_passage_settles_the_answer(real_engine) -> None:  # type: ignore[no-untyped-def]
    assert math.isfinite(real_engine.answerer().thresholds.sure_margin)  # the shipped calibration has one
    answerer, reader = _recording(real_engine)
    a = answerer.answer("高新区（江海区）党建引领基层治理领导小组的组长是谁？")
    assert reader.ranks == [1] and a.signals["passages_read"] == 1
    assert a.short_answer == "聂加伟" and a.signals["margin"] >= answerer.thresholds.sure_margin
    assert set(a.timings_ms) >= {"encode", "read", "total"}
    everything, all_read = _recording(real_engine, sure_margin=math.inf)
    b = everything.answer("高新区（江海区）党建引领基层治理领导小组的组长是谁？")
    assert all_read.ranks == [1, 2, 3] and b.short_answer == a.short_answer and b.citations == a.citations


def test_a_number_is_checked_against_the_other_documents(real_engine) -> None:  # type: ignore[no-untyped-def]
    # sure of 76个 in the first passage, but another article may state another count (a conflict)
    answerer, reader = _recording(real_engine)
    a = answerer.answer("新会区共组建了多少个小区党支部？")
    assert a.signals["rank1_margin"] >= answerer.thresholds.sure_margin and a.short_answer == "76个"
    assert len({p.doc_id for p in a.passages[:3]}) > 1 and reader.ranks == [1, 2, 3]


def test_a_lower_passage_can_still_win_below_the_sure_margin(real_engine) -> None:  # type: ignore[no-untyped-def]
    # passage 1 offers 数百万名 (margin 6.7); passage 2 says 21万多名 (15.1), which wins despite its rank
    answerer, reader = _recording(real_engine)
    a = answerer.answer("江门市目前有多少名党员？")
    assert a.signals["rank1_margin"] < answerer.thresholds.sure_margin and reader.ranks == [1, 2, 3]
    assert a.short_answer == "21万多名" and a.signals["lower_margin"] > a.signals["rank1_margin"]


@pytest.fixture(scope="module")
def set_answers(real_engine) -> dict[str, Answer]:  # type: ignore[no-untyped-def]
    """The engine's answer to every question of every shipped set (dev, calib, smoke), computed once for the
    tests below that read them all."""
    answerer = real_engine.answerer()
    out: dict[str, Answer] = {}
    for path in SETS:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and (q := json.loads(line)["question"]) not in out:
                out[q] = answerer.answer(q)
    return out


def test_reading_less_changes_no_answer(real_engine, set_answers: dict[str, Answer]) -> None:  # type: ignore[no-untyped-def]
    """Over the dev set (not the calibration set the sure margin was fitted on), settling on a sure first
    passage gives the answers that reading every passage gives."""
    questions = [json.loads(line)["question"] for line in Path("eval/sets/seeds-dev.jsonl").read_text(
        encoding="utf-8").splitlines() if line.strip()]
    base = real_engine.answerer()
    assert math.isfinite(base.thresholds.sure_margin)
    full = base.with_thresholds(replace(base.thresholds, sure_margin=math.inf))
    settled, differ = 0, []
    for q in questions:
        a = set_answers[q]
        if a.signals.get("passages_read") != 1:
            continue  # it read every passage already: reading every passage is what it did
        settled += 1
        b = full.answer(q)
        if (a.short_answer, a.refused, a.citations) != (b.short_answer, b.refused, b.citations):
            differ.append((q, a.short_answer, b.short_answer))
    assert settled >= len(questions) // 10  # it does save reading (measured: 24 of 179)
    assert len(differ) <= 2, differ  # measured: none; room for a margin that another CPU rounds across


def test_every_citation_of_every_question_set_verifies(real_engine, set_answers: dict[str, Answer]) -> None:  # type: ignore[no-untyped-def]
    n = 0
    assert len(set_answers) > 300
    for a in set_answers.values():
        for c in a.citations:
            verify_citation(real_engine.index, c)
            assert real_engine.index.documents[c.doc_id].text[c.start:c.end] == c.quote
            n += 1
    assert n > 100
