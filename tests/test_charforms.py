"""Text as people typed it: folded character forms and dropped layout spaces, with exact offsets."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from corpus.charforms import LayoutSpaces, fold_ideograph, fold_text, fold_typed
from corpus.chunking import chunk_document
from corpus.cleaning import CleanDocument, clean_document
from corpus.documents import Document, parse_document, render_document
from corpus.pipeline import ChunkedCorpus


def _doc(body: str, **meta: str) -> Document:
    data = render_document({"title": "测试", "date": "2026-01-05", "source": "测试", **meta}, body).encode("utf-8")
    return parse_document(data, Path("t.md"))


def _maps_back(doc: Document, clean: CleanDocument) -> None:
    """Every cleaned character comes from its stored character, folded (or is whitespace normalised to a space)."""
    verbatim = doc.extra.get("cleaning") == "verbatim"
    for cs, rs, n in clean.segments:
        for k in range(n):
            got, raw = clean.text[cs + k], doc.raw[rs + k]
            assert got == (" " if raw.isspace() else fold_text(raw, verbatim)), (cs + k, got, raw)


def test_fold_tables() -> None:
    assert fold_text("⽼旧⼩区改造资⾦") == "老旧小区改造资金"
    assert fold_typed("\uf900") == "豈" and fold_typed("\u2f00") == "一" and fold_typed("\u2e9f") == "母"
    assert fold_text("２０２１年ＡＢｃ") == "2021年ABc"
    assert fold_ideograph("２") == "２"  # verbatim passages keep full-width digits
    # full-width punctuation and spaces, and other NFKC compatibility forms, are kept as typed
    kept = "，。：；！？（）《》“”、〔〕【】\u3000…Ⅳ①㈠％"
    assert fold_text(kept) == kept
    assert all(unicodedata.normalize("NFKC", c) != c for c in "，（）\u3000Ⅳ①")  # NFKC would have changed them


def test_kangxi_text_is_folded_with_exact_offsets() -> None:
    body = "\n# ⽼旧⼩区改造\n\n今年全市⽼旧⼩区改造资⾦共1860万元，惠及居民。\n"
    doc = _doc(body)
    clean = clean_document(doc)
    assert "今年全市老旧小区改造资金共1860万元，惠及居民。" in clean.text
    assert "⼩" not in clean.text
    _maps_back(doc, clean)
    i = clean.text.index("改造资金")
    (a, b), = clean.raw_spans(i, i + 4)
    assert doc.raw[a:b] == "改造资⾦"  # the citation's source characters, as stored
    for c in chunk_document(clean):
        assert c.text == clean.text[c.start:c.end]
    assert clean.stories[0].title == "老旧小区改造"  # the heading is classified from its folded text


def test_pdf_spaced_text_loses_its_layout_spaces() -> None:
    body = ("\n关于印发《江门市老旧小区改造方案》的通知\n\n江府〔 2026 〕 9 号\n\n"
            "2026 年全市安排资金 1860 万元 ，改造小区 35 个 。\n\n"
            "项目于 2026 年 3 月开工，COVID 19 期间停工的 Phase 2 工程同步推进。\n\n聚焦民生 共建家园\n")
    doc = _doc(body)
    assert LayoutSpaces.measure(doc.raw) == LayoutSpaces(around_numbers=True, between_ideographs=False)
    clean = clean_document(doc)
    assert "江府〔2026〕9号" in clean.text
    assert "2026年全市安排资金1860万元，改造小区35个。" in clean.text
    assert "COVID 19期间停工的 Phase 2工程同步推进。" in clean.text  # Latin words/numbers keep their spaces
    assert "聚焦民生 共建家园" in clean.text  # between ideographs only where most of them are spaced
    _maps_back(doc, clean)
    i = clean.text.index("1860万元")
    spans = clean.raw_spans(i, i + len("1860万元"))
    assert [doc.raw[a:b] for a, b in spans] == ["1860", "万元"]  # the dropped space maps nowhere
    for c in chunk_document(clean):
        assert c.text == clean.text[c.start:c.end]


def test_letter_spaced_text_is_joined() -> None:
    body = "\n本 市 全 面 推 进 老 旧 小 区 改 造 ， 惠 及 居 民 3 万 户 。\n"
    doc = _doc(body)
    assert LayoutSpaces.measure(doc.raw).between_ideographs
    clean = clean_document(doc)
    assert clean.text.strip() == "本市全面推进老旧小区改造，惠及居民3万户。"
    _maps_back(doc, clean)


def test_a_few_spaced_titles_keep_their_spaces() -> None:
    body = ("\n党建引领 奋进新程\n\n文/图 李雨溪 陈婵\n\n2024年全市新建党群服务中心12个，覆盖率达100%。"
            "截至9月，共发展党员1860名，同比增长3%。\n")
    clean = clean_document(_doc(body))
    assert LayoutSpaces.measure(body) == LayoutSpaces(False, False)
    assert "党建引领 奋进新程" in clean.text and "李雨溪 陈婵" in clean.text


def test_verbatim_passages_fold_ideographs_only() -> None:
    doc = _doc("⽼旧⼩区改造于２０２１年 开始 。\n", cleaning="verbatim")
    clean = clean_document(doc)
    assert clean.text == "老旧小区改造于２０２１年 开始 。\n"
    _maps_back(doc, clean)


def test_seeds_are_typed_text_already(seed_corpus: ChunkedCorpus) -> None:
    """The seeds hold no foldable form and no text-layer spacing: cleaning leaves their characters alone."""
    for d in seed_corpus.documents:
        assert fold_text(d.raw) == d.raw
        assert LayoutSpaces.measure(d.raw) == LayoutSpaces(False, False)
        _maps_back(d, seed_corpus.cleaned[d.doc_id])
