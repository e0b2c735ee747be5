"""Cited answers with the real model and index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.answering import cn_number_value, verify_citation
from service.questions import analyse

SETS = sorted(Path("eval/sets").glob("*.jsonl"))


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
    "江海区区长是谁？",  # the articles name the district party secretary, not the district head
    "“十四五”期间江城区新增规上企业多少家？",  # the article gives the 十三五 figure
])
def test_unanswerable_refused_with_passages(real_engine, question: str) -> None:  # type: ignore[no-untyped-def]
    a = real_engine.answer(question)
    assert a.refused and a.reason in ("no_evidence", "low_confidence", "out_of_scope")
    assert not a.citations and a.passages


@pytest.mark.parametrize(("question", "gold"), [
    ("阳江市江城区委书记是谁？", "陈基文"),  # from the article's byline
    ("哪位副市长参加了科技部系统青年干部在江门双碳实验室的调研？", "周佩珊"),
    ("2024年暑运江门站发送旅客中，江门站为重点旅客提供服务的服务台叫什么？", "五邑之窗"),
])
def test_names_and_roles(real_engine, question: str, gold: str) -> None:  # type: ignore[no-untyped-def]
    a = real_engine.answer(question)
    assert not a.refused, a.to_dict()
    assert gold in a.answer


def test_questions_about_the_coming_days_are_out_of_scope(real_engine) -> None:  # type: ignore[no-untyped-def]
    a = real_engine.answer("下周江门还会有台风吗？")
    assert a.refused and a.reason == "out_of_scope" and "已发表的报道" in a.answer


def test_comparison_year_does_not_date_the_sentence(real_engine) -> None:  # type: ignore[no-untyped-def]
    # "2024年，…比2023年增加53个村；农村居民人均收入增长5.6%": the 2023 is a comparison, the fact is 2024's
    a = real_engine.answer("2024年江门农村居民人均收入增长了多少？")
    assert not a.refused and "5.6%" in a.answer


def test_sparse_mode_answers_with_dense_evidence(real_engine) -> None:  # type: ignore[no-untyped-def]
    a = real_engine.answer("江门市目前有多少名党员？", mode="sparse")
    assert not a.refused and a.short_answer == "21万多名"
    assert all(p.dense_score is not None for p in a.passages)


def test_every_citation_of_every_question_set_verifies(real_engine) -> None:  # type: ignore[no-untyped-def]
    n = 0
    for path in SETS:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            a = real_engine.answer(json.loads(line)["question"])
            for c in a.citations:
                verify_citation(real_engine.index, c)
                assert real_engine.index.documents[c.doc_id].text[c.start:c.end] == c.quote
                n += 1
    assert n > 100


def test_question_analysis(real_engine) -> None:  # type: ignore[no-untyped-def]
    info = analyse("2023年佛山市新会区有多少名网格员？", real_engine.segmenter)
    assert info.answer_type == "number" and info.unit == "名"
    assert info.years == ("2023",) and "佛山" in info.places and "新会" in info.places
    assert analyse("谁带队调研？", real_engine.segmenter).answer_type == "person"
    assert analyse("为什么要建强基层党组织？", real_engine.segmenter).answer_type == "why"


@pytest.mark.parametrize(("text", "value"), [("21万多名", 210000), ("22.6亿元", 2.26e9), ("三千", 3000),
                                            ("两万", 20000), ("60%以上", 60)])
def test_chinese_numbers(text: str, value: float) -> None:
    assert cn_number_value(text) == pytest.approx(value)
