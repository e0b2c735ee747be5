"""A question's scope over regulations of many places and versions (service/answering/scope.py), and the facts
read by rule (regfacts.py). Unit tests over stored-document records; tests/test_regulations.py asks the real
service over real files."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from index.gazetteer import load_divisions
from index.store import StoredDocument
from index.synonyms import expand_terms
from service.answering.regfacts import asked_fact, find_fact, find_fine, fine_short
from service.answering.scope import build_view, decide


def _doc(doc_id: str, title: str, text: str = "正文", **extra: str) -> StoredDocument:
    return StoredDocument(doc_id=doc_id, title=title, date=extra.pop("date", ""), date_inferred=False, source="s",
                          region="", url=None, text=text, chunks=3, content_hash=doc_id, extra=extra)


def _index(*docs: StoredDocument) -> Any:
    # decide() reads only the documents and the generation's path (its cache key)
    return SimpleNamespace(path=Path(f"/generation/{'-'.join(d.doc_id for d in docs)}"),
                           documents={d.doc_id: d for d in docs})


CORPUS = _index(
    _doc("jiangmen", "江门市文明行为促进条例", doc_type="regulation", approved_date="2021-01-22"),
    _doc("heihe", "黑河市文明行为促进条例", doc_type="regulation", approved_date="2020-06-01"),
    _doc("guangdong", "广东省文明行为促进条例", doc_type="regulation", approved_date="2021-07-30"),
    _doc("zhuhai-2013", "珠海经济特区生态文明建设促进条例", doc_type="regulation", approved_date="2013-12-19"),
    _doc("zhuhai-2019", "珠海经济特区生态文明建设促进条例", doc_type="regulation", approved_date="2019-06-04"),
    _doc("zhuhai-2020", "珠海经济特区生态文明建设促进条例", doc_type="regulation", approved_date="2020-12-03"),
    _doc("news", "党建引领 奋进新程", date="2022-09-26"),
)
REGS = {"jiangmen", "heihe", "guangdong", "zhuhai-2013", "zhuhai-2019", "zhuhai-2020"}


def test_divisions_short_names() -> None:
    d = load_divisions()
    assert d.by_name["延边朝鲜族自治州"].short == "延边"
    assert d.by_name["黔东南苗族侗族自治州"].short == "黔东南"
    assert [x.name for x in d.find("阳江的条例和江门市比呢")] == ["阳江市", "江门市"]
    assert d.by_name["台山市"].city == "江门市"


def test_view_places_names_and_versions() -> None:
    view = build_view(CORPUS.documents)
    assert set(view.regulations) == REGS  # the news article is no regulation
    assert view.regulations["zhuhai-2013"].place == "珠海市"
    assert view.regulations["zhuhai-2013"].name == "生态文明建设促进条例"
    assert view.regulations["guangdong"].place == "广东省"
    assert view.current >= {"zhuhai-2020", "jiangmen"} and "zhuhai-2013" not in view.current
    assert view.superseded_by == {"zhuhai-2013": "zhuhai-2020", "zhuhai-2019": "zhuhai-2020"}


def test_named_place_keeps_only_its_regulations() -> None:
    scope = decide("江门遛狗不牵绳罚多少钱？", CORPUS)
    assert scope.places == ("江门市",) and scope.refusal is None
    assert scope.denied == frozenset(REGS - {"jiangmen"})  # the news article is never denied


def test_county_falls_back_to_its_city() -> None:
    scope = decide("台山市遛狗不牵绳罚多少钱？", CORPUS)
    assert scope.places == ("江门市",) and "jiangmen" not in scope.denied


def test_place_without_regulation_is_refused_naming_it() -> None:
    scope = decide("阳江市文明行为促进条例什么时候施行？", CORPUS)
    assert scope.refusal == "no_regulation_for_place"
    assert scope.refusal_text == "找到的资料中没有阳江市的文明行为促进条例，可参考《广东省文明行为促进条例》"
    assert scope.related == ("guangdong",) and scope.denied == frozenset(REGS)
    # a place's news question (no regulation words) is no refusal: other places' regulations are left out only
    news = decide("阳江市江城区共有多少名党员？", CORPUS)
    assert news.refusal is None and news.denied == frozenset(REGS)


def test_versions_newest_by_default_older_on_request() -> None:
    now = decide("珠海经济特区生态文明建设促进条例什么时候施行？", CORPUS)
    assert "zhuhai-2020" not in now.denied and {"zhuhai-2013", "zhuhai-2019"} <= now.denied
    assert now.versions == ("《珠海经济特区生态文明建设促进条例》现行版本：2020年",)
    old = decide("2013年版的珠海经济特区生态文明建设促进条例什么时候施行？", CORPUS)
    assert "zhuhai-2013" not in old.denied and "zhuhai-2020" in old.denied
    assert old.consumed_years == ("2013",)
    before = decide("珠海生态文明建设促进条例修订前是怎么规定的？", CORPUS)
    assert "zhuhai-2019" not in before.denied and "zhuhai-2020" in before.denied
    missing = decide("珠海经济特区生态文明建设促进条例2015年版什么时候施行？", CORPUS)
    assert missing.refusal == "no_such_version" and "2015年版本" in (missing.refusal_text or "")


def test_no_place_default_place_and_superseded() -> None:
    plain = decide("文明行为促进条例什么时候施行？", CORPUS)
    assert plain.places == () and plain.denied == frozenset({"zhuhai-2013", "zhuhai-2019"})
    default = decide("文明行为促进条例什么时候施行？", CORPUS, default_place="江门")
    assert default.default_place and default.places == ("江门市",)
    assert default.denied == frozenset(REGS - {"jiangmen"})


def test_regulation_facts_by_rule() -> None:
    text = ("江门市文明行为促进条例\n\n（2020年10月29日江门市第十五届人民代表大会常务委员会第三十九次会议通过　"
            "2021年1月22日广东省第十三届人民代表大会常务委员会第二十八次会议批准）\n\n第一章　总则\n\n"
            "第五十条　本条例自2021年5月1日起施行。")
    doc = _doc("jm", "江门市文明行为促进条例", text, doc_type="regulation")
    assert asked_fact("江门的文明条例什么时候开始生效？") == "effective"
    assert asked_fact("第五十条规定了什么？") is None
    fact = find_fact("江门的文明条例什么时候开始生效？", doc)
    assert fact is not None and fact.short == "2021年5月1日"
    assert text[fact.start:fact.end] == "第五十条　本条例自2021年5月1日起施行。"
    approved = find_fact("江门市文明行为促进条例是什么时候批准的？", doc)
    assert approved is not None and approved.short == "2021年1月22日" and approved.kind == "approved"
    meeting = find_fact("江门市文明行为促进条例是哪次会议通过的？", doc)
    assert meeting is not None and meeting.short == "江门市第十五届人民代表大会常务委员会第三十九次会议"
    on_publication = _doc("x", "某市条例", "第四十条　本条例自公布之日起施行。", published_date="2020-01-02")
    fact = find_fact("某市条例什么时候施行？", on_publication)
    assert fact is not None and fact.short + fact.note == "自公布之日起施行（2020-01-02公布）"


def test_fine_short_answer_is_the_whole_range() -> None:
    text = "由城市管理部门处以一百元以上二百元以下的罚款。逾期未改正的，处以每只五百元的罚款。由公安机关处以二百元的罚款"
    at = text.find("一百元")
    assert fine_short(text, at, at + 3) == "一百元以上二百元以下"
    at = text.find("五百元的")
    assert fine_short(text, at, at + 4) == "每只五百元"
    at = text.rfind("二百元的")
    assert fine_short(text, at, at + 4) == "二百元"


def test_colloquial_phrases_expand_to_the_texts_words() -> None:
    assert expand_terms("遛狗不牵绳罚多少钱？") == "遛狗不牵绳罚多少钱？（携犬 犬只 牵引带 犬绳 犬链 束犬链 罚款）"
    assert expand_terms("江海区有多少个网格？") == "江海区有多少个网格？"


FINES = ("第八条　公民应当遵守公共环境文明行为规范，不得实施下列不文明行为：（一）在禁止吸烟的公共场所内吸烟；\n"
         "（二）随地吐痰、便溺；\n（三）从建筑物内向外抛掷物品；\n"
         "第三十三条　违反本条例第八条第一项规定，在禁止吸烟的公共场所内吸烟的，由卫生主管部门处五十元罚款；"
         "经营管理单位对吸烟行为不予劝阻的，处五百元以上五千元以下罚款。\n"
         "第三十四条　违反本条例第八条第三项规定的，由城市管理部门对个人处五十元以上二百元以下罚款，"
         "对单位处一千元以上五千元以下罚款。\n")


def test_fine_for_the_named_behaviour_and_party() -> None:
    doc = _doc("nb", "宁波市文明行为促进条例", FINES, doc_type="regulation")
    smoking = find_fine("在公共场所吸烟罚多少钱？", doc, ["公共场所", "吸烟"])
    assert smoking is not None and smoking.short == "五十元"  # the smoker's fine, not the manager's
    assert FINES[smoking.start:smoking.end].startswith("第三十三条")
    # the behaviour's article and item, then the fine clause citing them
    person = find_fine("个人从楼上向外抛掷物品罚多少？", doc, ["抛掷", "物品"])
    assert person is not None and person.short == "五十元以上二百元以下"
    unit = find_fine("单位从楼上向外抛掷物品罚多少？", doc, ["抛掷", "物品"])
    assert unit is not None and unit.short == "一千元以上五千元以下"
    # 随地吐痰 is a rule here without a fine: no fine from another clause
    assert find_fine("随地吐痰罚多少钱？", doc, ["随地吐痰"]) is None


def test_the_regulation_the_question_names_among_a_places_two() -> None:
    corpus = _index(
        _doc("dg-civil", "东莞市文明行为促进条例", doc_type="regulation", approved_date="2022-12-01"),
        _doc("dg-eco", "东莞市生态文明建设促进与保障条例", doc_type="regulation", approved_date="2018-08-30"))
    named = decide("东莞市文明行为促进条例什么时候施行？", corpus)
    assert named.denied == frozenset({"dg-eco"})
    both = decide("东莞遛狗不牵绳罚多少钱？", corpus)
    assert both.denied == frozenset()
