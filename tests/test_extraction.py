"""Short-answer extraction and question analysis, without the model (fast)."""

from __future__ import annotations

import pytest

from index.fusion import rrf, score_fusion
from index.segmentation import Segmenter
from service.extraction import fits_constraint, is_rate, number_spans, role_names, short_answer
from service.questions import analyse, asks_future, expand_aliases

SEG = Segmenter()


@pytest.mark.parametrize(("question", "kind", "measure", "role", "head"), [
    ("江海区区长是谁？", "person", None, "区长", None),
    ("2024年9月人大代表约见市长时，侨都的市长是谁？", "person", None, "市长", None),
    ("哪位省人大代表指出绿美江门建设存在问题？", "person", None, "省人大代表", None),
    ("“侨都质量贷”的贷款利率是多少？", "number", "percent", None, None),
    ("新会陈皮现在多少钱一斤？", "number", "money", None, None),
    ("驿站一天开放多长时间？", "number", "duration", None, None),
    ("建设银行江门分行给予3.5亿元授信额度的是哪家企业？", "organization", None, None, "企业"),
    ("陈岸明调研去了哪几个区？", "list", None, None, None),
])
def test_question_slots(question: str, kind: str, measure: str | None, role: str | None, head: str | None) -> None:
    info = analyse(question, SEG)
    assert (info.answer_type, info.measure, info.role, info.head) == (kind, measure, role, head)


def test_periods_ordinals_quotes_and_places() -> None:
    info = analyse("“十四五”期间江门市第二批党群服务好项目有多少个？", SEG)
    assert info.periods == ("十四五",) and info.ordinals == ("第二批",) and "十四五" in info.quoted
    both = analyse("江门江海区和阳江江城区都推行的做法叫什么？", SEG)
    assert both.any_place and {"江门", "阳江"} <= set(both.places)
    assert not analyse("广州市人才资源总量达到多少？", SEG).any_place


@pytest.mark.parametrize(("question", "kind", "unit", "counted"), [
    ("阳江江城区有多少党员报名当了志愿者？", "number", None, "党员"),
    ("2024年江门马拉松有多少名选手参赛？", "number", "名", "选手"),
    ("江门站每天有几趟开往深圳北站的列车？", "number", "趟", None),
    ("江门站为重点旅客提供服务的服务台叫什么名字？", "name", None, None),  # a thing's name, not a person's
    ("江门市委书记叫什么名字？", "person", None, None),
])
def test_counted_nouns_and_name_questions(question: str, kind: str, unit: str | None, counted: str | None) -> None:
    info = analyse(question, SEG)
    assert (info.answer_type, info.unit, info.counted) == (kind, unit, counted)


def test_counted_noun_picks_the_number_that_counts_it() -> None:
    info = analyse("江城区有多少党员报名当了志愿者？", SEG)
    text = "3000多名志愿者组成168个临时党支部，全区至今已有1383名党员登记为志愿者。"
    assert short_answer(info, text) == "1383名"


def test_generic_area_words_are_not_places_and_future_is_flagged() -> None:
    assert analyse("“十三五”期间阳江主城区居民收入每年平均涨了多少？", SEG).places == ("阳江",)
    assert "驻区" not in analyse("江海区社区大党委带动了多少家驻区单位？", SEG).places
    assert asks_future("明天江门会下雨吗？") and asks_future("下周江门还会有台风吗？")
    assert not asks_future("2024年9月江门启动了几级防风应急响应？")


def test_number_spans_skip_dates_and_years() -> None:
    text = "9月3日，2024年全市共发送旅客37.5万人次，近六成为党员。"
    assert [m.group(0) for m in number_spans(text)] == ["37.5万人次", "近六成"]


def test_rates_are_not_totals() -> None:
    text = "每个网格内配备1名网格长、1名专职网格员，目前全区190名专职网格员均已到位"
    spans = number_spans(text)
    assert [is_rate(text, m) for m in spans] == [True, True, False]
    assert short_answer(analyse("江海区有多少名专职网格员？", SEG), text) == "190名"


def test_role_names_need_a_surname() -> None:
    assert role_names("市委副书记、市长吴晓晖等领导出席", "市长") == [(8, "吴晓晖")]
    assert role_names("人大代表约见市长工作会议", "市长") == []
    assert [n for _, n in role_names("以江海区委书记聂加伟为组长", "组长")] == ["聂加伟"]


def test_slot_constraints() -> None:
    rate = analyse("“侨都质量贷”的贷款利率是多少？", SEG)
    assert not fits_constraint(rate, "3家企业共获4.7亿元授信额度")
    assert fits_constraint(rate, "贷款利率下浮10%")
    firm = analyse("建设银行江门分行给予3.5亿元授信额度的是哪家企业？", SEG)
    assert not fits_constraint(firm, "分别向1家大中型企业、2家小微企业给予授信")
    assert short_answer(firm, "向江门市荣信电子科技有限公司授信") == "江门市荣信电子科技有限公司"


def test_short_answers_keep_the_written_form() -> None:
    assert short_answer(analyse("江门有多大比例的村集体收入超百万元？", SEG),
                        "2024年，江门60%以上村集体经济经营性收入超100万元") == "60%以上"
    assert short_answer(analyse("全省首家新型侨资企业党校是哪一所？", SEG),
                        "建成全省首家新型侨资企业党校——雁图仕党委党校") == "雁图仕党委党校"


def test_score_fusion_keeps_a_clear_sparse_winner_and_breakdowns() -> None:
    dense = [(2, 0.90), (1, 0.89), (0, 0.85)]
    sparse = [(1, 20.0), (2, 5.0)]
    fused = score_fusion(dense, sparse, alpha=0.3)
    assert fused[0].row == 1 and fused[0].sparse_rank == 1 and fused[0].dense_rank == 2
    assert rrf(dense, sparse)[0].row in (1, 2)
    assert [h.row for h in score_fusion(dense, [], alpha=0.3)] == [2, 1, 0]
    assert {h.row for h in fused} == {0, 1, 2}


def test_aliases_of_jiangmen_are_added_to_the_lookup() -> None:
    assert expand_aliases("侨都农民收入的增幅在珠三角排第几？") == "侨都农民收入的增幅在珠三角排第几？（江门）"
    assert expand_aliases("“侨都质量贷”的利率是多少？").startswith("“侨都质量贷”")  # names stay whole
    assert expand_aliases("江门侨乡有多少侨胞？") == "江门侨乡有多少侨胞？"  # already named
    assert expand_aliases("台山有多少个驿站？") == "台山有多少个驿站？"
