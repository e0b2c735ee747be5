"""Real regulations end to end: one file of each kind from the corpus (OLE2 .doc, .docx, a zip named .doc, OLE2
named .docx, Word's one-file XML, a package python-docx refuses) added through the upload path, a real index with
the real model, and questions asked of the real answerer: each one's own effective date cited with its article,
versions (the newest answers, an older one when asked), a place without a regulation refused naming it, a question
naming no place answered per place, or for the default place."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.answering import Answerer
from service.docstore import DocumentStore, prepare_from_file
from service.engine import Engine
from service.settings import Settings

RAW = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "regulations" / "raw"
# kind → (file, the question's place, effective date as the text says it)
KINDS = {
    "ole2-doc": ("广东省__2021_江门市文明行为促进条例.doc", "江门市", "2021年5月1日"),
    "docx": ("云南省__2019_曲靖市文明行为促进条例.docx", "曲靖市", "2019年11月1日"),
    "zip-named-doc": ("云南省__2018_昆明市文明行为促进条例.doc", "昆明市", "2018年12月1日"),
    "ole2-named-docx": ("江苏省__2019_盐城市文明行为促进条例.docx", "盐城市", "2019年7月1日"),
    "flat-xml-doc": ("海南省__2020_海南省文明行为促进条例.doc", "海南省", "2021年1月1日"),
    "damaged-docx": ("江西省__2020_九江市文明行为促进条例.docx", "九江市", "2020年10月1日"),
}
GUIYANG = {year: f"贵州省__{year}_贵阳市建设生态文明城市条例.docx" for year in ("2013", "2019", "2021")}
GUANGDONG = "广东省__2021_广东省文明行为促进条例.docx"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> tuple[Engine, dict[str, str]]:
    if not RAW.is_dir():
        pytest.skip(f"the regulations corpus is not here ({RAW}): it lives in ../shared beside the clone")
    root = tmp_path_factory.mktemp("regulations")
    corpus_dir = root / "documents"
    corpus_dir.mkdir()
    store = DocumentStore(corpus_dir, root / "documents.lock")
    ids: dict[str, str] = {}
    for name in [k[0] for k in KINDS.values()] + list(GUIYANG.values()) + [GUANGDONG]:
        ids[name] = store.add(prepare_from_file((RAW / name).read_bytes(), name, corpus_dir)).doc_id
    settings = Settings(data_dir=root, corpus_dir=corpus_dir, index_dir=root / "index", model_dir=model_dir)
    eng = Engine(settings)
    eng.build()
    eng.load()
    return eng, ids


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_answers_with_its_own_effective_date(engine: tuple[Engine, dict[str, str]], kind: str) -> None:
    eng, ids = engine
    name, place, date = KINDS[kind]
    answer = eng.answerer().answer(f"{place[:-1]}的文明行为促进条例是什么时候开始生效的？")
    assert not answer.refused, answer.answer
    assert answer.short_answer == date
    first = answer.citations[0]
    assert first.doc_id == ids[name]  # its own city's regulation among near-identical ones
    assert first.article.startswith("第") and first.article.endswith("条")
    assert f"{first.article}，" in answer.answer  # 据《…条例》（日期）第五十二条，…
    doc = eng.index.documents[first.doc_id]
    assert doc.text[first.start:first.end] == first.quote and date in first.quote


@pytest.mark.slow
def test_versions_newest_by_default_older_on_request(engine: tuple[Engine, dict[str, str]]) -> None:
    eng, ids = engine
    now = eng.answerer().answer("贵阳市建设生态文明城市条例是什么时候施行的？")
    assert not now.refused and now.citations[0].doc_id == ids[GUIYANG["2021"]]
    assert now.scope is not None and any("现行版本" in v for v in now.scope["versions"])
    old = eng.answerer().answer("2013年版的贵阳市建设生态文明城市条例是什么时候施行的？")
    assert not old.refused and old.citations[0].doc_id == ids[GUIYANG["2013"]]
    assert old.scope is not None and any("旧版本" in v for v in old.scope["versions"])
    missing = eng.answerer().answer("2016年版的贵阳市建设生态文明城市条例是什么时候施行的？")
    assert missing.refused and missing.reason == "no_such_version"


@pytest.mark.slow
def test_place_without_regulation_is_refused_naming_it(engine: tuple[Engine, dict[str, str]]) -> None:
    eng, ids = engine
    answer = eng.answerer().answer("阳江市的文明行为促进条例什么时候施行？")
    assert answer.refused and answer.reason == "no_regulation_for_place"
    assert "没有阳江市的文明行为促进条例" in answer.answer and "《广东省文明行为促进条例》" in answer.answer
    assert not answer.citations  # never another city's clause as the answer
    assert {p.doc_id for p in answer.passages} == {ids[GUANGDONG]}  # the province's regulation, as related


@pytest.mark.slow
def test_no_place_answers_per_place_or_for_the_default(engine: tuple[Engine, dict[str, str]]) -> None:
    eng, ids = engine
    several = eng.answerer().answer("文明行为促进条例是什么时候开始施行的？")
    assert not several.refused and several.answer.startswith("各地规定不同")
    assert several.scope is not None and len(several.scope["differs_by_place"]) >= 2
    assert len({c.doc_id for c in several.citations}) >= 2
    answer = Answerer(eng.retriever(), eng.reader, default_place="江门").answer("文明行为促进条例是什么时候开始施行的？")
    assert not answer.refused and answer.short_answer == "2021年5月1日"
    assert answer.citations[0].doc_id == ids[KINDS["ole2-doc"][0]]
