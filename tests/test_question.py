"""Question analysis, the lexicon data files, the filters and the composition, without the model (fast)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from index.fusion import rrf, score_fusion
from index.gazetteer import load_gazetteer
from index.reader.features import Window, top_spans
from index.segmentation import Segmenter
from service.answering.candidates import Candidate, whole_quantity
from service.answering.compose import (
    answer_text,
    citations_for,
    cn_number_value,
    date_label,
    per_unit,
    rival_value,
)
from service.answering.filters import not_yet, violation
from service.answering.question import analyse, asks_future, reader_question
from service.retrieval import SearchResult

SEG = Segmenter()


def passage(text: str, *, doc: str = "d1", date: str = "2024-09-10", title: str = "标题", start: int = 0,
            section: tuple[str, ...] = ()) -> SearchResult:
    return SearchResult(rank=1, doc_id=doc, chunk_id=f"{doc}#0", title=title, section=section, date=date,
                        kind="body", text=text, start=start, end=start + len(text), score=1.0,
                        fused_score=None, dense_rank=None, dense_score=0.9, sparse_rank=None, sparse_score=None)


def candidate(p: SearchResult, span: str, margin: float = 10.0, sentence: str | None = None) -> Candidate:
    sent = sentence or next(s + "。" for s in p.text.split("。") if span in s)
    s0 = p.text.index(sent)
    a = p.text.index(span)
    return Candidate(p, span, p.start + a, p.start + a + len(span), p.start + s0, p.start + s0 + len(sent), sent,
                     margin)


@pytest.mark.parametrize(("question", "kind"), [
    ("江海区区长是谁？", "person"),
    ("“侨都质量贷”的贷款利率是多少？", "number"),
    ("建设银行江门分行给予3.5亿元授信额度的是哪家企业？", "organization"),
    ("陈岸明调研去了哪几个区？", "list"),
    ("为什么要建强基层党组织？", "why"),
    ("江门站为重点旅客提供服务的服务台叫什么名字？", "name"),  # a thing's name, not a person's
    ("江门市委书记叫什么名字？", "person"),
])
def test_answer_types(question: str, kind: str) -> None:
    assert analyse(question, SEG).answer_type == kind


@pytest.mark.parametrize(("question", "role"), [
    ("江门市委组织部部长是谁？", "组织部部长"),
    ("2024年9月3日到江门双碳实验室调研，哪位副市长参加了调研？", "副市长"),  # the longer post wins
    ("谁是江门市委书记？", "市委书记"),
    ("江门市纪委书记是谁？", "纪委书记"),  # not the 市委书记
    ("新会陈皮产业链党委的书记是谁？", "书记"),
    ("睦洲派出所所长叫什么名字？", "所长"),
    ("这本书的作者是谁？", None),  # not a post
    ("江门市有多少名党员？", None),
])
def test_the_post_a_person_question_asks_about(question: str, role: str | None) -> None:
    assert analyse(question, SEG).role == role


def test_a_name_beside_another_post_is_not_the_holder_asked_for() -> None:
    p = passage("市委书记陈岸明出席会议并讲话。市委常委、组织部部长李某主持会议。", title="江门召开会议")
    info = analyse("江门市委组织部部长是谁？", SEG)
    assert violation(info, candidate(p, "陈岸明"), None) == "找到的段落没有说明谁是组织部部长"
    assert violation(info, candidate(p, "李某"), None) is None


def test_periods_ordinals_quotes_and_places() -> None:
    info = analyse("“十四五”期间江门市第二批党群服务好项目有多少个？", SEG)
    assert info.periods == ("十四五",) and info.ordinals == ("第二批",) and "十四五" in info.quoted
    both = analyse("江门江海区和阳江江城区都推行的做法叫什么？", SEG)
    assert both.any_place and {"江门", "阳江"} <= set(both.places)
    assert not analyse("广州市人才资源总量达到多少？", SEG).any_place
    info = analyse("2023年佛山市新会区有多少名网格员？", SEG)
    assert info.years == ("2023",) and "佛山" in info.places and "新会" in info.places


def test_generic_area_words_are_not_places_and_future_is_flagged() -> None:
    assert analyse("“十三五”期间阳江主城区居民收入每年平均涨了多少？", SEG).places == ("阳江",)
    assert "驻区" not in analyse("江海区社区大党委带动了多少家驻区单位？", SEG).places
    # a common word before 区/县 names a kind of area or an act, not a place; a name stays a place
    assert analyse("蒲葵一般生长在什么气候区？", SEG).places == ()
    assert analyse("金华县是什么时候被撤县的？", SEG).places == ("金华县",)
    assert analyse("杜阮镇上巷村那位女支书叫什么？", SEG).places == ("杜阮镇", "上巷村")
    assert asks_future("明天江门会下雨吗？") and asks_future("下周江门还会有台风吗？")
    assert not asks_future("2024年9月江门启动了几级防风应急响应？")


def test_the_reader_reads_place_aliases_as_the_name_the_articles_use() -> None:
    assert reader_question("侨都现在一共有多少名党员？", SEG) == "江门现在一共有多少名党员？"
    assert reader_question("五邑地区和侨乡的人才总量有多少？", SEG) == "江门地区和江门的人才总量有多少？"
    # part of a longer word of the lexicon, or quoted: a name, kept as written
    for q in ("“侨都质量贷”的贷款利率是多少？", "侨都质量贷的贷款利率是多少？", "作为中国侨都，江门为什么要坚持党建带侨建？",
              "“五邑之窗”服务队服务了多少人次？", "江门有多少名党员？"):
        assert reader_question(q, SEG) == q


def test_lexicon_files_hold_places_and_aliases() -> None:
    g = load_gazetteer()
    assert "江门" in g.cities and "新会" in g.places and "新会" not in g.cities
    assert g.aliases["侨都"] == ("江门",) and "共产党员" not in g.place_aliases
    assert g.expand("侨都农民收入的增幅在珠三角排第几？") == "侨都农民收入的增幅在珠三角排第几？（江门）"
    assert g.expand("“侨都质量贷”的利率是多少？").startswith("“侨都质量贷”")  # names stay whole
    assert g.expand("江门侨乡有多少侨胞？") == "江门侨乡有多少侨胞？"  # already named
    assert g.expand("台山有多少个驿站？") == "台山有多少个驿站？"


def test_year_filter_reads_the_sentence_the_passage_and_the_date() -> None:
    p = passage("2024年，全市新增党员1200名。农村居民人均收入增长5.6%，比2023年增加53个村。", title="江门年度综述")
    info = analyse("2023年江门农村居民人均收入增长了多少？", SEG)
    assert violation(info, candidate(p, "5.6%"), None) == "找到的段落没有提到2023年的情况"
    # the 2023 is a comparison: the fact is 2024's
    assert violation(analyse("2024年江门农村居民人均收入增长了多少？", SEG), candidate(p, "5.6%"), None) is None
    undated = passage("今年暑运江门站发送旅客37.5万人次。", date="2024-09-02")
    assert violation(analyse("2024年暑运江门站发送旅客多少人次？", SEG), candidate(undated, "37.5万人次"), None) is None
    assert violation(analyse("2022年暑运江门站发送旅客多少人次？", SEG), candidate(undated, "37.5万人次"), None)


def test_a_year_compared_with_is_not_the_year_asked_about() -> None:
    info = analyse("2024年江门村集体经济经营性收入超100万元的村比2023年增加了多少个？", SEG)
    assert (info.years, info.compared) == (("2024",), ("2023",))
    p = passage("2024年，江门60%以上村集体经济经营性收入超100万元，比2023年增加53个村。")
    assert violation(info, candidate(p, "53个"), None) is None
    # the right year, but no comparison with 2023
    assert violation(info, candidate(passage("2024年，江门新增53个村。"), "53个"), None) == "找到的段落没有与2023年比较"
    assert analyse("与2019年相比，2020年江门的产值增长了多少？", SEG).compared == ("2019",)


def test_money_and_people_asked_without_a_measure_word() -> None:
    spent = passage("截至目前,江城区已投入超2200万元,完成56个“老危旧小”社区党群服务中心的改造升级。")
    info = analyse("江城区投入了多少资金改造升级社区党群服务中心？", SEG)
    assert (info.unit, info.counted) == ("元", ())
    assert violation(info, candidate(spent, "56个"), None) == "找到的段落没有以“元”计的数字"
    assert violation(info, candidate(spent, "超2200万元"), None) is None
    assert analyse("《行动方案》的总预算是多少？", SEG).unit == "元"
    assert analyse("唐鱼的体长约为多少？", SEG).unit is None  # not money
    # a foreign currency is not a count in another measure
    assert violation(analyse("华堡于1957年的售价是多少？", SEG), candidate(passage("1957年华堡售价0.37美元。"), "0.37美元"),
                     None) is None
    people = analyse("阳江江城区有多少党员报名当了志愿者？", SEG)
    assert (people.unit, people.counted) == ("名", ("党员",))
    v = passage("阳江市江城区3000多名志愿者组成168个临时党支部。")
    assert violation(people, candidate(v, "168个"), None) == "找到的段落没有给出党员的数字"


def test_a_single_day_figure_is_not_a_total() -> None:
    info = analyse("2024年暑运江门站单日最高到发旅客多少人次？", SEG)
    assert info.rates == (("单日", "单天"),)
    p = passage("今年暑运江门站共计到发旅客77.87万人次。江门站最高峰单日到发旅客2.6万人次。", date="2024-09-02")
    assert violation(info, candidate(p, "77.87万人次"), None) == "找到的段落没有提到“单日”的数字"
    assert violation(info, candidate(p, "2.6万人次"), None) is None


def test_a_price_per_unit_needs_that_unit() -> None:
    info = analyse("新会陈皮现在多少钱一斤？", SEG)
    assert info.rates == (("每斤", "一斤", "/斤"),) and info.unit == "元"
    p = passage("2020年新会陈皮全产业链产值达102亿元。十年陈皮每斤售价约800元。")
    assert violation(info, candidate(p, "102亿元"), None) == "找到的段落没有提到“每斤”的数字"
    assert violation(info, candidate(p, "800元"), None) is None


def test_a_quantity_the_question_states_must_be_in_the_passage() -> None:
    info = analyse("签字的11名科学家中谁不是诺贝尔奖得主？", SEG)
    assert info.stated == ("11名",)
    # the number as written, in any measure (11名 … 11位), not inside another number (110)
    signed = passage("宣言的签字者包括11位著名的科学家，其中10人均为诺贝尔奖得主，只有英费尔德例外。")
    assert violation(info, candidate(signed, "英费尔德"), None) is None
    other = passage("宣言的签字者包括110位科学家，只有英费尔德例外。")
    assert violation(info, candidate(other, "英费尔德"), None) == "找到的段落没有提到“11名”"
    assert analyse("建设银行江门分行给予3.5亿元授信额度的是哪家企业？", SEG).stated == ("3.5亿元",)


@pytest.mark.parametrize(("text", "span", "whole"), [
    ("暑期客流逾10万人次。", "10万人次", "逾10万人次"),
    ("党员占比近六成，队伍年轻。", "六成", "近六成"),  # a quantity in Chinese numerals takes its qualifier too
    ("60%以上村集体经济收入超100万元。", "60%", "60%以上"),
    ("全市统一部署。", "统一", "统一"),  # 一 inside a word is not a quantity
])
def test_a_quantity_is_quoted_whole(text: str, span: str, whole: str) -> None:
    a = text.index(span)
    b0, b1 = whole_quantity(text, a, a + len(span))
    assert text[b0:b1] == whole


def test_first_is_also_said_with_shou() -> None:
    p = passage("江门市首批党群服务好项目共12个。")
    assert violation(analyse("江门市第一批党群服务好项目有多少个？", SEG), candidate(p, "12个"), None) is None
    assert violation(analyse("江门市第二批党群服务好项目有多少个？", SEG), candidate(p, "12个"), None) == \
        "找到的段落没有提到“第二批”"


def test_a_period_is_met_by_any_of_its_years() -> None:
    info = analyse("布拉德利在1993-1996期间效力于哪个队？", SEG)
    assert info.years == () and info.year_ranges == ((1993, 1996),)
    drafted = passage("1993年，布拉德利在当年的NBA选秀上被费城76人队选中。")
    assert violation(info, candidate(drafted, "费城76人队"), None) is None
    assert violation(info, candidate(passage("1999年，他加盟小牛队。"), "小牛队"), None) == \
        "找到的段落没有提到1993—1996年间的情况"
    assert analyse("2010-11赛季他效力于哪个队？", SEG).year_ranges == ((2010, 2011),)
    # the evidence's own periods date its facts with each of their years, with or without 年
    made = passage("塞斯纳170型在1948-1956年期间生产数量达5174架。")
    assert violation(analyse("1948年赛斯纳170型的生产数量是多少？", SEG), candidate(made, "5174架"), None) is None
    named = passage("球队此前的队名叫作 Iskra (1958-1964)，后改名。")
    assert violation(analyse("1960年球队的队名是什么？", SEG), candidate(named, "Iskra"), None) is None
    assert violation(analyse("1970年球队的队名是什么？", SEG), candidate(named, "Iskra"), None) is not None
    races = passage("于2003/2004马季起，锦标降格为第一班或第二班赛事。")
    assert violation(analyse("2004年锦标降格为第几班赛事？", SEG), candidate(races, "第一班或第二班"), None) is None


def test_place_filter_needs_a_city_in_the_sentence_and_an_area_in_the_passage() -> None:
    p = passage("江海区学习佛山经验，划分190个网格。全区383名专职网格员到位。", title="江海区党建")
    assert violation(analyse("佛山有多少名专职网格员？", SEG), candidate(p, "383名"), None) is not None
    assert violation(analyse("江海区有多少名专职网格员？", SEG), candidate(p, "383名"), None) is None
    assert violation(analyse("台山有多少名专职网格员？", SEG), candidate(p, "383名"), None) == "找到的段落没有关于“台山”的内容"


def test_not_announced_yet() -> None:
    p = passage("受台风影响，川山群岛航线暂停运营，具体恢复运营时间另行通知。")
    info = analyse("川山群岛航线什么时候恢复运营？", SEG)
    assert not_yet(info, candidate(p, "另行通知"))
    assert not not_yet(analyse("川山群岛航线为什么暂停？", SEG), candidate(p, "受台风影响"))


def test_conflicting_values_cite_both_and_the_newest_prevails() -> None:
    old = passage("目前全区190名专职网格员均已到位。", doc="a", date="2022-05", title="甲")
    new = passage("全区383名专职网格员定期巡查。", doc="b", date="2022-09-26", title="乙")
    best, other = candidate(new, "383名", 12.0), candidate(old, "190名", 11.0)
    assert rival_value(best, [other]) is other
    assert rival_value(best, [candidate(old, "190名", 5.0)]) is None  # far less sure: not a disagreement
    assert rival_value(best, [candidate(passage("全区383名专职网格员。", doc="c"), "383名")]) is None
    text = answer_text(citations_for([best, other]), conflict=True)
    assert text.index("2022年5月") < text.index("2022年9月26日") and "以日期较新的报道为准" in text


def test_a_value_per_unit_does_not_rival_a_total() -> None:
    old = passage("“每个网格内配备1名网格长、1名专职网格员。目前全区190名专职网格员均已到位。", doc="a", date="2022-05")
    new = passage("全区383名专职网格员定期巡查。", doc="b", date="2022-09-26")
    best = candidate(new, "383名", 15.0)
    per_grid = Candidate(old, "1名", old.text.index("1名专职"), old.text.index("1名专职") + 2,
                         0, old.text.index("。") + 1, old.text[: old.text.index("。") + 1], 11.2)
    assert per_unit(per_grid) and not per_unit(best)
    total = candidate(old, "190名", 11.0)
    assert rival_value(best, [per_grid, total]) is total  # rated a little above the total, as the reader did
    assert rival_value(best, [per_grid]) is None


def test_rate_words_and_the_counted_thing_pin_a_count_down() -> None:
    p = passage("今年暑运江门站共计到发旅客77.87万人次。日均到发旅客超1.25万人次，同比增长13.06%。", title="江门站暑运")
    info = analyse("今年暑运江门站日均到发旅客多少人次？", SEG)
    assert info.rates == (("日均", "每天", "每日", "平均每天", "平均每日"),)
    assert violation(info, candidate(p, "77.87万人次"), None) == "找到的段落没有提到“日均”的数字"
    assert violation(info, candidate(p, "超1.25万人次"), None) is None
    assert analyse("平均每天发送旅客多少人次？", SEG).rates == (("日均", "每天", "每日", "平均每天", "平均每日"),)

    v = passage("疫情防控中，阳江市江城区3000多名志愿者组成168个临时党支部，哪里有需要哪里就有“红马甲党员”。")
    info = analyse("阳江市江城区共有多少名党员？", SEG)
    assert (info.unit, info.counted[:1]) == ("名", ("党员",))
    # 党员 is in the sentence but not in the clause of either count; 168个 is not counted in 名 either
    assert violation(info, candidate(v, "3000多名"), None) == "找到的段落没有给出党员的数字"
    assert violation(info, candidate(v, "168个"), None) == "找到的段落没有给出党员的数字"
    members = passage("江门市目前有21万多名共产党员。")
    assert violation(analyse("江门市目前有多少名党员？", SEG), candidate(members, "21万多名"), None) is None
    assert violation(analyse("江门市目前有多少名共产党员？", SEG), candidate(passage("江门全市党员21万多名。"), "21万多名"),
                     None) is None  # the head of 共产党员 is 党员
    # in the asked measure, the words after the count may name the thing another way (队员 … 球员)
    team = passage("轻艇水球是一项由两队对垒的球类运动，每队派出五名球员作赛。")
    assert violation(analyse("轻艇水球每队中有几名队员？", SEG), candidate(team, "五名"), None) is None
    assert violation(analyse("轻艇水球每队中有几名裁判？", SEG), candidate(team, "五名"), None) == \
        "找到的段落没有给出裁判的数字"
    units = passage("江门全市已成立52个产业链党组织。")
    assert violation(analyse("全市成立了多少名产业链党组织？", SEG), candidate(units, "52个"), None) == \
        "找到的段落没有以“名”计的数字"


def test_citations_and_dates() -> None:
    p = passage("首句。江门市目前有21万多名党员。", start=100)
    c = citations_for([candidate(p, "21万多名")])[0]
    assert (c.start, c.end, c.quote) == (103, 103 + len("江门市目前有21万多名党员。"), "江门市目前有21万多名党员。")
    assert date_label("2022-05") == "2022年5月" and date_label("") == ""
    assert answer_text((c,), conflict=False).startswith("据《标题》（2024年9月10日），江门市目前有")


def test_a_citation_names_its_article() -> None:
    """A regulation's quote is cited with its article: the chunk's own, or the quote's in a chunk of several."""
    text = "第五十条 文明行为促进工作责任单位应当积极履行职责。\n不履行职责的，公民有权进行监督。"
    one = passage(text, title="江门市文明行为促进条例", start=500, section=("第五章 法律责任", "第五十条"))
    c = citations_for([candidate(one, "积极履行职责", sentence="第五十条 文明行为促进工作责任单位应当积极履行职责。")])[0]
    assert c.article == "第五十条"
    assert c.quote == "文明行为促进工作责任单位应当积极履行职责。" and c.start == 500 + len("第五十条 ")  # the label is named
    assert one.text[c.start - 500:c.end - 500] == c.quote
    assert answer_text((c,), conflict=False) == (
        "据《江门市文明行为促进条例》（2024年9月10日）第五十条，文明行为促进工作责任单位应当积极履行职责。[1]")
    label = citations_for([candidate(one, "第五十条", sentence="第五十条 文明行为促进工作责任单位应当积极履行职责。")])[0]
    assert label.quote.startswith("第五十条 ") and label.start == 500  # the answer is the label itself: kept
    second = citations_for([candidate(one, "有权进行监督", sentence="不履行职责的，公民有权进行监督。")])[0]
    assert second.article == "第五十条" and second.quote == "不履行职责的，公民有权进行监督。"
    # a chunk of two short articles: each quote names its own
    pair = passage("第三条 本条例适用于本市。\n第四条 市人民政府领导文明行为促进工作。", title="条例", date="",
                   section=("第一章 总则", "第三条、第四条"))
    c4 = citations_for([candidate(pair, "市人民政府", sentence="第四条 市人民政府领导文明行为促进工作。")])[0]
    assert (c4.article, c4.quote) == ("第四条", "市人民政府领导文明行为促进工作。")
    assert answer_text((c4,), conflict=False) == "据《条例》第四条，市人民政府领导文明行为促进工作。[1]"  # no date
    news = citations_for([candidate(passage("江门市目前有21万多名党员。", section=("A 党建",)), "21万多名")])[0]
    assert news.article == "" and answer_text((news,), conflict=False).startswith("据《标题》（2024年9月10日），")


@pytest.mark.parametrize(("text", "value"), [("21万多名", 210000), ("22.6亿元", 2.26e9), ("三千", 3000),
                                            ("两万", 20000), ("60%以上", 60)])
def test_chinese_numbers(text: str, value: float) -> None:
    assert cn_number_value(text) == pytest.approx(value)


def test_top_spans_are_distinct_and_best_first() -> None:
    w = Window(ids=tuple(range(10)), context_from=4, offsets=tuple((i, i + 1) for i in range(5)), start=0, end=0)
    s = np.full(10, -5.0)
    e = np.full(10, -5.0)
    s[0] = e[0] = 0.0  # no-answer score 0
    s[5], e[6] = 4.0, 4.0  # best span: context tokens 1..2
    s[8], e[8] = 2.0, 2.0  # a second one: token 4
    spans = top_spans(s, e, w, n=3)
    assert spans[0] == (8.0, 1, 3) and spans[1] == (4.0, 4, 5)
    assert all(not (a < d and c < b) for (_, a, b), (_, c, d) in pairwise(spans))


def test_score_fusion_keeps_a_clear_sparse_winner_and_breakdowns() -> None:
    dense = [(2, 0.90), (1, 0.89), (0, 0.85)]
    sparse = [(1, 20.0), (2, 5.0)]
    fused = score_fusion(dense, sparse, alpha=0.3)
    assert fused[0].row == 1 and fused[0].sparse_rank == 1 and fused[0].dense_rank == 2
    assert rrf(dense, sparse)[0].row in (1, 2)
    assert [h.row for h in score_fusion(dense, [], alpha=0.3)] == [2, 1, 0]
    assert {h.row for h in fused} == {0, 1, 2}
