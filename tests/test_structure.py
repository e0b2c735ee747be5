"""A regulation's 编/章/节/条 structure read from its text, and chunks that follow its articles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corpus.chunking import ChunkerConfig, chunk_document
from corpus.cleaning import CleanDocument, clean_document
from corpus.documents import Document, parse_document, render_document
from corpus.pipeline import ChunkedCorpus
from corpus.structure import (
    article_at,
    article_label,
    article_range,
    article_start,
    articles_in,
    cn_int,
    division,
    find_structure,
)

REPO = Path(__file__).resolve().parent.parent
# ../shared beside the clone (CI); POLICYQA_SHARED_DIR names it elsewhere (a worktree's checkout)
SHARED = Path(os.environ.get("POLICYQA_SHARED_DIR") or REPO.parent / "shared")
REGULATIONS = SHARED / "corpora" / "regulations" / "raw"
LONG = "公共交通工具的驾驶人和乘客应当遵守安全规定，文明出行，礼让行人，不得在车厢内饮食、喧哗或者占用多个座位。" * 10

REGULATION = f"""
# 示例市文明行为促进条例

（2021年3月1日示例市第十五届人民代表大会常务委员会第三十次会议通过　2021年3月31日广东省第十三届人民代表大会常务委员会第三十次会议批准）

目　　录

第一章　总则
第二章　文明行为规范
第三章　法律责任
第四章　附则

第一章　总则

第一条　为了培育和践行社会主义核心价值观，制定本条例。

第二条　本市行政区域内的文明行为促进工作，适用本条例。

第二章　文明行为规范

第一节　公共秩序

第三条　公民应当遵守下列公共秩序规定：

（一）不随地吐痰

（二）不乱扔垃圾；

第十条规定的劝阻人依法劝阻的，受法律保护。

第二节　公共交通

第四条　{LONG}

第三章　法律责任

第五条　违反本条例第三条规定的，由城市管理部门责令改正；拒不改正的，处五十元罚款，情节严重的依法吊销经营许可证。

第六条　国家工作人员在文明行为促进工作中滥用职权、玩忽职守的，由有关机关依法给予处分。

第四章　附则

第七条　本条例自2021年5月1日起施行

有关部门应当公布投诉举报联系电话。
"""


def _doc(body: str, title: str = "示例市文明行为促进条例") -> Document:
    data = render_document({"title": title, "date": "2021-03-31", "source": "测试"}, body).encode("utf-8")
    return parse_document(data, Path("reg.md"))


def _block_texts(clean: CleanDocument, kind: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(clean.text[b.start:b.end], b.section) for b in clean.blocks if b.kind == kind]


def test_numbers_and_lines() -> None:
    assert [cn_int(s) for s in ("一", "十", "十二", "四十八", "一百零五", "一百一十", "50")] == [1, 10, 12, 48, 105, 110, 50]
    assert [article_label(n) for n in (1, 10, 15, 48, 100, 105, 110)] == [
        "第一条", "第十条", "第十五条", "第四十八条", "第一百条", "第一百零五条", "第一百一十条"]
    assert article_start("第四十八条　市、县人民政府") is not None
    assert article_start("第四十八条") is not None  # the label alone on its line, the text in the next paragraph
    assert article_start("第十条之一 本市") is not None
    for ref in ("第三十条规定的行为", "第十条第二款", "第五条、第六条", "第七条的规定", "第三条中"):
        assert article_start(ref) is None, ref
    assert division("第五章　法律责任") is not None and division("第五章　法律责任").label == "第五章 法律责任"  # type: ignore[union-attr]
    assert division("第二节 一般规定……3").label == "第二节 一般规定"  # type: ignore[union-attr]
    assert division("第五章规定的罚款，由财政部门收缴。") is None


def test_structure_of_a_regulation() -> None:
    clean = clean_document(_doc(REGULATION))
    headings = _block_texts(clean, "heading")
    assert headings == [
        ("第一章 总则", ("第一章 总则",)),
        ("第二章 文明行为规范", ("第二章 文明行为规范",)),
        ("第一节 公共秩序", ("第二章 文明行为规范", "第一节 公共秩序")),
        ("第二节 公共交通", ("第二章 文明行为规范", "第二节 公共交通")),
        ("第三章 法律责任", ("第三章 法律责任",)),
        ("第四章 附则", ("第四章 附则",)),
    ]
    toc = [r.text for r in clean.removed if r.reason == "table_of_contents"]
    assert toc == ["目 录", "第一章 总则", "第二章 文明行为规范", "第三章 法律责任", "第四章 附则"]
    body = dict(_block_texts(clean, "body"))
    assert body["第三条 公民应当遵守下列公共秩序规定："] == ("第二章 文明行为规范", "第一节 公共秩序", "第三条")
    # items, a paragraph without final punctuation, and a paragraph opening with a cross-reference stay in 第三条
    assert body["（一）不随地吐痰"] == ("第二章 文明行为规范", "第一节 公共秩序", "第三条")
    assert body["第十条规定的劝阻人依法劝阻的，受法律保护。"] == ("第二章 文明行为规范", "第一节 公共秩序", "第三条")
    assert body["第七条 本条例自2021年5月1日起施行"] == ("第四章 附则", "第七条")
    assert body[next(t for t in body if t.startswith("（2021年3月1日"))] == ()  # the meetings line, before 第一章
    assert clean.stories[0].title == "示例市文明行为促进条例"
    # words that mark a news page's footer are law here (chrome filtering stops at the structure)
    assert "情节严重的依法吊销经营许可证。" in clean.text and "有关部门应当公布投诉举报联系电话。" in clean.text
    assert not [r for r in clean.removed if r.reason != "table_of_contents"]
    # the law's own repetitions are kept (no dedup), and no paragraph is glued onto the next
    assert clean.text.count(LONG[:40]) == 10
    assert "（一）不随地吐痰\n（二）不乱扔垃圾；" in clean.text


def test_word_heading_styles_do_not_matter() -> None:
    """An extractor's `#` lines (Word heading styles on chapters, or on an article) give the same structure."""
    styled = (REGULATION.replace("\n第一章　总则\n\n第一条", "\n# 第一章　总则\n\n第一条")
              .replace("\n第二章　文明行为规范", "\n## 第二章　文明行为规范")  # in the TOC too, as Word styles it
              .replace("\n第一节", "\n### 第一节").replace("\n第七条", "\n## 第七条"))
    assert sum(line.startswith("#") for line in styled.splitlines()) == 6
    plain, heading = clean_document(_doc(REGULATION)), clean_document(_doc(styled))
    assert [(b.kind, b.section) for b in heading.blocks] == [(b.kind, b.section) for b in plain.blocks]
    assert heading.text == plain.text


def test_chunks_follow_articles() -> None:
    clean = clean_document(_doc(REGULATION))
    config = ChunkerConfig()
    chunks = chunk_document(clean, config)
    sections = [c.section for c in chunks]
    assert sections[0] == ()  # the meetings line
    assert ("第一章 总则", "第一条、第二条") in sections  # two short neighbours share a chunk
    long = [c for c in chunks if c.section == ("第二章 文明行为规范", "第二节 公共交通", "第四条")]
    assert len(long) > 1 and all(len(c.text) <= config.max_chars for c in long)
    assert long[0].text.startswith("第四条 ")
    assert ("第三章 法律责任", "第五条、第六条") in sections
    assert ("第四章 附则", "第七条") in sections  # not merged across a chapter
    for c in chunks:
        assert c.text == clean.text[c.start:c.end]
        span = articles_in(c.section)
        starts = [article_start(line) for line in c.text.split("\n")]
        numbers = [a.number for a in starts if a is not None]
        if span is None:
            assert not numbers
        else:  # no chunk holds part of an article outside its path
            assert all(span[0] <= n <= span[1] for n in numbers), (c.section, numbers)
    merged = next(c for c in chunks if c.section[-1:] == ("第五条、第六条",))
    assert article_at(merged.section, merged.text, merged.text.index("国家工作人员")) == "第六条"
    assert article_at(merged.section, merged.text, 3) == "第五条"
    assert article_at(("第四章 附则", "第七条"), "第七条 本条例", 4) == "第七条"
    assert article_at(("A 党建",), "江门", 0) == ""
    assert article_range("第三条", "第五条") == "第三条至第五条"


def test_lost_first_label() -> None:
    """Word numbering an extractor did not render can lose 第一条's label: its paragraph stays under 第一章."""
    lines = ["广州市文明行为促进条例", "第一章　总　则", "为了培育和践行社会主义核心价值观，制定本条例。",
             "第二条　本条例适用于本市。", "第三条　文明行为促进工作坚持党委领导。", "第四条　市人民政府负责。"]
    structure = find_structure(lines)
    assert structure is not None
    roles = structure.roles
    assert roles[0] is None and roles[1] is not None and roles[1].path == ("第一章 总则",)
    assert roles[2] is not None and roles[2].path == ("第一章 总则",) and roles[2].article == ""
    assert roles[3] is not None and roles[3].path == ("第一章 总则", "第二条")


def test_no_structure_without_articles_in_order() -> None:
    assert find_structure(["第一条 为了。", "第二条 本市。"]) is None  # too few
    assert find_structure(["第四条 甲。", "第五条 乙。", "第六条 丙。"]) is None  # not from the first articles
    assert find_structure(["第一条 甲。", "第五条 乙。", "第九条 丙。"]) is None  # references, not the next articles
    news = "\n江门推进文明城市建设\n\n第一条经验是党建引领。\n\n依照本条例第三十条规定，市民可以举报。\n"
    clean = clean_document(_doc(news, "江门推进文明城市建设"))
    assert all(not b.article for b in clean.blocks)


def test_seeds_have_no_article_structure(seed_corpus: ChunkedCorpus) -> None:
    for clean in seed_corpus.cleaned.values():
        assert all(not b.article for b in clean.blocks)
        assert not any(r.reason == "table_of_contents" for r in clean.removed)


def test_real_regulation_article_paths() -> None:
    path = REGULATIONS / "山东省__2019_济宁市文明行为促进条例.docx"
    if not path.is_file():
        pytest.skip(f"the regulations corpus is not here ({REGULATIONS})")
    from corpus.formats import extract

    ex = extract(path.read_bytes(), path.name)
    clean = clean_document(_doc(ex.text, "济宁市文明行为促进条例"))
    chunks = chunk_document(clean)
    art48 = [c for c in chunks if c.section == ("第四章 实施与监督", "第四十八条")]
    assert len(art48) == 1 and art48[0].text.startswith("第四十八条 市、县（市、区）人民政府")
    assert "行为人拒不提供的，公安机关应当依据法律规定提供协助。" in art48[0].text
    articles = {b.article for b in clean.blocks if b.article}
    assert len(articles) == 52
    assert [t for t, _ in _block_texts(clean, "heading")] == [
        "第一章 总则", "第二章 基本行为规范", "第三章 鼓励与促进", "第四章 实施与监督", "第五章 附则"]
    last = [c for c in chunks if (span := articles_in(c.section)) and span[0] <= 52 <= span[1]]
    assert [c.section[0] for c in last] == ["第五章 附则"] and last[0].text.endswith("本条例自2019年9月20日起施行。")
