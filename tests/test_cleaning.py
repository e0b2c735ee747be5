"""Cleaning of the five seed captures: chrome, duplicates, page-break joins, captions, headings, stories."""

from __future__ import annotations

import re

import pytest

from corpus.cleaning import clean_document
from corpus.documents import parse_document
from corpus.pipeline import ChunkedCorpus

JM = "jiangmen-party-building-governance-2022"
YJ = "yangjiang-jiangcheng-urban-party-building-2021"
JH = "jianghai-party-building-2022-09-26"
RV = "jiangmen-party-building-review-2025"
SF = "jiangmen-strong-foundation-2024-09"

BOILERPLATE = ["版面导航", "上一版", "下一版", "放大", "缩小", "默认", ".jpg", "/T01/", "Copyright", "版权所有",
               "ICP备", "经营许可证", "联系电话", "All Rights Reserved", "相关新闻", "\u00a0"]

EXPECTED_SECTIONS = {
    JM: ["A “党建”是第一要务", "B 党员筑起“红色防线”", "C 小区里“树起党旗”", "D 党建引领乡村治理",
         "E 新业态中建设党支部", "F 抓好党建促经济", "G 基层打下党建“梁柱根基”", "H 基层社会治理“开新局”"],
    YJ: ["创新机制固阵地 系统联动合力强", "优化组织重服务 基层治理活力旺", "工作落实显成效 建设发展路宽阔"],
    JH: ["党建有力 强基固本", "建强基层组织 厚植治理之根", "选优配强队伍 熔铸治理之魂", "激活红色动能 夯实治理之本"],
    RV: ["A 党的创新理论武装持续加强", "B 锻造高素质干部队伍", "——坚持“六重”导向，重用干事创业干部。",
         "——围绕“补齐短板”，培养本领过硬干部。", "——突出“容错免责”，支持敢闯敢试干部。",
         "C 基层党建不断开创新局面", "D 党建领航聚力高质量发展"],
    SF: ["理论武装长效机制再健全", "抓党建促乡村振兴再提质", "基层治理共建共治共享体系更完善",
         "传统领域和新兴领域党建双提升", "引导党员干部敢担当善作为",
         "推进绿美生态建设 破解重数量轻质量、重种轻管等问题", "加快老旧小区改造 提升居住品质"],
}

STORIES = [
    "抓基层 强基础 固根基",
    "科技部系统青年干部到江门双碳实验室调研 探讨服务地方经济 高质量发展的措施和路径",
    "我市质量金融增信标准 正式落地实施",
    "创历史新高 今年暑运江门站到发旅客近78万人次",
    "暑假我市亲水休闲游客量“狂飙” 共发送旅客135万人次",
    "我市连续31年开展人大代表约见市长活动 共商绿美江门建设 助力“百千万工程”",
    "我市启动防风Ⅳ级应急响应",
    "台山川山群岛海上高速客船、车渡船9月5日起暂停服务",
]


def _headings(corpus: ChunkedCorpus, doc_id: str) -> list[str]:
    cl = corpus.cleaned[doc_id]
    return [cl.text[b.start:b.end] for b in cl.blocks if b.kind == "heading"]


@pytest.mark.parametrize("doc_id", sorted(EXPECTED_SECTIONS))
def test_section_titles_per_seed(seed_corpus: ChunkedCorpus, doc_id: str) -> None:
    assert _headings(seed_corpus, doc_id) == EXPECTED_SECTIONS[doc_id]


def test_titles_and_subtitles(seed_corpus: ChunkedCorpus) -> None:
    for d in seed_corpus.documents:
        assert seed_corpus.cleaned[d.doc_id].stories[0].title == d.title
    assert seed_corpus.cleaned[JH].stories[0].subtitles == ("高新区(江海区)奋力以高质量党建提升基层治理效能",)
    assert seed_corpus.cleaned[SF].stories[0].subtitles == (
        "——江门提出8方面20条具体举措落实强基工程", "——深入实施基层党建强基工程行动计划")


def test_multi_story_page_is_split(seed_corpus: ChunkedCorpus) -> None:
    cl = seed_corpus.cleaned[SF]
    assert [s.title for s in cl.stories] == STORIES
    # each story's chunks carry their own story title
    titles = {c.title for c in seed_corpus.chunks if c.doc_id == SF}
    assert titles == set(STORIES)
    by_title: dict[str, str] = {}
    for c in seed_corpus.chunks:
        if c.doc_id == SF:
            by_title[c.title] = by_title.get(c.title, "") + c.text
    assert "77.87万人次" in by_title[STORIES[3]]
    assert "135万人次" in by_title[STORIES[4]]


def test_page_break_across_story_heading_is_rejoined(seed_corpus: ChunkedCorpus) -> None:
    """The 防风 story's last sentence was split by the next story's heading; it must stay in 防风."""
    chunks = [c for c in seed_corpus.chunks if c.doc_id == SF]
    wind = " ".join(c.text for c in chunks if c.title == STORIES[6])
    ferry = " ".join(c.text for c in chunks if c.title == STORIES[7])
    assert "截至9月3日16时，全市江河水库水情平稳" in wind
    assert "全市江河水库" not in ferry
    assert ferry.startswith("此外，受台风“摩羯”影响，台山川山群岛")
    # but a truncated paragraph is not glued onto the next story's news lead
    assert "人口通江门日报讯" not in seed_corpus.cleaned[SF].text


@pytest.mark.parametrize(("doc_id", "joined"), [
    (JM, "回顾江门地方党史、重温入党誓词"),
    (JM, "全面参与疫情防控一线的宣传引导"),
    (JM, "面积十多平方米的驿站配有书籍"),
    (JM, "鹤山雁图仕印刷有限公司党委"),
    (JM, "城市党建方面，完善街道"),
    (JM, "警民融合、联防联控的基层社会治理新格局"),
    (YJ, "构建“以区委为中心、辐射镇(街道)"),
    (YJ, "突出“红色基因”和革命传承,建设"),
    (YJ, "招商引资实现规模和质量的双突破"),
    (SF, "建强社区网格党组织，优化整合网格力量配备"),
    (SF, "推动成立交通运输、物业服务"),
    (SF, "预计将在海南岛东部到粤西一带沿海登陆"),
    (SF, "海上防风方面，要按照省统一的指令要求"),
])
def test_page_break_joins(seed_corpus: ChunkedCorpus, doc_id: str, joined: str) -> None:
    assert joined in seed_corpus.cleaned[doc_id].text


def test_repeated_sentence_dropped(seed_corpus: ChunkedCorpus) -> None:
    text = seed_corpus.cleaned[JM].text
    assert text.count("成立300多个小区物业党组织") == 1
    assert any(r.reason == "repeated_sentence" for r in seed_corpus.cleaned[JM].removed)
    # the page-nav title duplicate and the repeated Markdown heading are gone too
    assert seed_corpus.cleaned[JH].text.count("党建引领 奋进新程") == 1
    assert seed_corpus.cleaned[SF].text.count("抓基层 强基础 固根基") == 1


def test_no_boilerplate_in_any_chunk(seed_corpus: ChunkedCorpus) -> None:
    for c in seed_corpus.chunks:
        for s in BOILERPLATE:
            assert s not in c.text, (c.chunk_id, s)
        assert not re.search(r"[ \t]{2,}", c.text), c.chunk_id


def test_captions_kept_apart(seed_corpus: ChunkedCorpus) -> None:
    captions = {seed_corpus.cleaned[c.doc_id].text[c.start:c.end] for c in seed_corpus.chunks if c.kind == "caption"}
    assert "鹤山党员在核酸检测点服务群众 陈卓栋 摄" in captions
    assert "今年暑运，江门站创旅客到发量历史新高。图为该站候车大厅。" in captions
    assert "广东省委党校专家教授到阳江市江城区调研城市基层党建工作。 阳江市江城区委组织部供图" in captions
    assert "江门市安全应急产业园迎来大开发、大建设、大发展热潮,为基层治理赋能。" in captions
    for c in seed_corpus.chunks:
        if c.kind == "body":
            assert "供图" not in c.text and " 摄" not in c.text, c.chunk_id


def test_offsets_map_back_to_the_stored_body(seed_corpus: ChunkedCorpus) -> None:
    for d in seed_corpus.documents:
        cl = seed_corpus.cleaned[d.doc_id]
        for cs, rs, n in cl.segments:
            assert cl.text[cs:cs + n] == re.sub(r"\s", " ", d.raw[rs:rs + n])  # whitespace is normalised to one space
    # a joined phrase maps to two stored spans, one on each side of the page break
    cl = seed_corpus.cleaned[JM]
    i = cl.text.index("江门地方党史")
    spans = cl.raw_spans(i, i + len("江门地方党史"))
    doc = seed_corpus.document(JM)
    assert doc is not None
    assert [doc.raw[a:b] for a, b in spans] == ["江门地方", "党史"]


def test_cleaning_is_deterministic_and_read_only(seed_corpus: ChunkedCorpus) -> None:
    for d in seed_corpus.documents:
        before = d.path.read_bytes()
        again = clean_document(parse_document(before, d.path))
        assert again.text == seed_corpus.cleaned[d.doc_id].text
        assert d.path.read_bytes() == before
