"""Questions that name a regulation's article find that article first (service/named_article.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from corpus.documents import render_document
from corpus.pipeline import load_chunked_corpus
from corpus.structure import articles_in
from index.builder import ModelInfo, build_index
from index.segmentation import Segmenter
from index.store import load_index
from service.named_article import named_article
from service.retrieval import Retriever
from tests.fakes import FakeEncoder

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("POLICYQA_SHARED_DIR") or REPO.parent / "shared")
REGULATIONS = SHARED / "corpora" / "regulations" / "raw"


def _regulation(city: str, fine: str) -> str:
    """A model text most cities copied, with the city and a fine of its own."""
    articles = [
        "为了培育和践行社会主义核心价值观，引导和促进文明行为，制定本条例。",
        f"{city}行政区域内的文明行为促进工作，适用本条例。",
        "文明行为促进工作坚持以人为本、社会共治的原则。",
        f"{city}精神文明建设委员会统筹推进本行政区域内的文明行为促进工作。",
        "公民应当自觉遵守公共秩序，文明出行，礼让行人，爱护公共设施。",
        f"在公共场所随地吐痰、乱扔垃圾的，由城市管理部门责令改正，处{fine}罚款。",
        "本条例自2021年5月1日起施行。",
    ]
    numbers = "一二三四五六七"
    lines = [f"# {city}文明行为促进条例", "第一章　总则"]
    lines += [f"第{numbers[i]}条　{t}" for i, t in enumerate(articles)]
    return "\n\n".join(lines) + "\n"


def _corpus(tmp: Path, extra: dict[str, str]) -> Path:
    raw = tmp / "raw"
    raw.mkdir()
    for p in sorted((REPO / "corpus" / "seeds").glob("*.md")):
        shutil.copy(p, raw / p.name)
    for doc_id, (title, body) in {k: (v.split("\n", 1)[0].lstrip("# "), v) for k, v in extra.items()}.items():
        meta = {"doc_id": doc_id, "title": title, "date": "2021-03-31", "source": "测试"}
        (raw / f"{doc_id}.md").write_text(render_document(meta, body), encoding="utf-8")
    return raw


@pytest.mark.parametrize(("question", "number"), [
    ("江门市文明行为促进条例第三十条规定了什么", 30), ("第五十条是怎么规定的", 50), ("第50条讲什么", 50),
    ("第５０条讲什么", 50), ("第一百零五条", 105), ("本条例自何时施行", None), ("第三十条例", None)])
def test_named_article(question: str, number: int | None) -> None:
    assert named_article(question) == number


def test_the_named_article_comes_first(tmp_path: Path) -> None:
    raw = _corpus(tmp_path, {"shili": _regulation("示例市", "五十元"), "yangben": _regulation("样本市", "二十元")})
    enc = FakeEncoder()
    info = ModelInfo(enc.model_name, "", enc.fingerprint, enc.dim, enc.max_tokens)
    build_index(load_chunked_corpus(raw), tmp_path / "idx", info, lambda: enc)
    retriever = Retriever(load_index(tmp_path / "idx"), enc, Segmenter())

    def top(question: str) -> tuple[str, tuple[int, int] | None, str]:
        r = retriever.search(question, 5).results[0]
        return r.doc_id, articles_in(r.section), r.text

    doc_id, span, text = top("样本市文明行为促进条例第六条是怎么规定的")
    assert doc_id == "yangben" and span is not None and span[0] <= 6 <= span[1] and "二十元" in text
    doc_id, span, text = top("示例市文明行为促进条例第6条规定了什么")
    assert doc_id == "shili" and span is not None and span[0] <= 6 <= span[1] and "五十元" in text
    # no title named: the best-ranked document that has the article
    doc_id, span, _ = top("随地吐痰的罚款是多少，第六条")
    assert span is not None and span[0] <= 6 <= span[1]
    # excluded (deleted) documents are never promoted
    gone = Retriever(load_index(tmp_path / "idx"), enc, Segmenter(), exclude=frozenset({"yangben"}))
    assert all(r.doc_id != "yangben" for r in gone.search("样本市文明行为促进条例第六条是怎么规定的", 5).results)
    # a question naming no article ranks as before
    plain = retriever.search("江海区有多少名专职网格员", 5).results
    assert all(articles_in(r.section) is None for r in plain[:1])


def test_real_index_finds_a_named_article(tmp_path: Path, model_dir: Path) -> None:
    files = [REGULATIONS / "山东省__2019_济宁市文明行为促进条例.docx", REGULATIONS / "山东省__2018_威海市文明行为促进条例.docx"]
    if not all(p.is_file() for p in files):
        pytest.skip(f"the regulations corpus is not here ({REGULATIONS})")
    from corpus.formats import extract
    from service.engine import Engine
    from service.settings import Settings

    texts = {}
    for doc_id, p in zip(("jining", "weihai"), files, strict=True):
        ex = extract(p.read_bytes(), p.name)
        texts[doc_id] = ex.text
    raw = _corpus(tmp_path, texts)
    engine = Engine(Settings(index_dir=tmp_path / "idx", model_dir=model_dir, corpus_dir=raw))
    engine.build()
    engine.load()
    hits = engine.search("济宁市文明行为促进条例第四十八条规定了什么", 5).results
    assert hits[0].doc_id == "jining" and hits[0].section == ("第四章 实施与监督", "第四十八条")
    assert hits[0].text.startswith("第四十八条 ")
    hits = engine.search("威海市文明行为促进条例第二十条是怎么规定的", 5).results
    span = articles_in(hits[0].section)
    assert hits[0].doc_id == "weihai" and span is not None and span[0] <= 20 <= span[1]
    # no title: word overlap ranks 第五十一条 first; the article named goes to the top
    hits = engine.search("第五十条是怎么规定的", 5).results
    span = articles_in(hits[0].section)
    assert span is not None and span[0] <= 50 <= span[1] and "第五十条 " in hits[0].text
    answer = engine.answer("济宁市文明行为促进条例第四十八条规定，行为人拒不提供基本信息的，由哪个机关提供协助？")
    assert not answer.refused and answer.citations[0].article == "第四十八条"
    assert answer.answer.startswith("据《济宁市文明行为促进条例》（2021年3月31日）第四十八条，")
