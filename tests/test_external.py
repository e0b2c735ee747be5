"""External evaluation sets (eval/external/): id mapping, cached corpus, verbatim cleaning, fake-model index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import READER_DIR

from corpus.cleaning import clean_document
from corpus.documents import DOC_ID_RE, load_corpus, parse_document
from corpus.pipeline import load_chunked_corpus
from eval import external as ext
from eval.sets import EXTERNAL_DIR, load_set
from service.settings import Settings
from tests.fakes import FakeEncoder

REAL_SETS = {"cmrc2018_dev": (848, 3219), "chronoqa": (6351, 5176)}

TINY: list[dict[str, Any]] = [
    {"doc_id": "tiny:DOC_A", "title": "锣鼓经", "text": "锣鼓经是大陆传统器乐及戏曲里面常用的打击乐记谱方法。常用的节奏型称为锣鼓点。"},
    {"doc_id": "tiny:doc_a", "title": "", "text": "2019年7月23日，某公司推出了一款能显示歌词的音箱，价格为1995欧元。"},
    # page-chrome words and a heading-like one-liner: default cleaning would drop both
    {"doc_id": "tiny:00002", "title": "", "text": "2019年4月10日，视觉中国因将黑洞照片标注为版权所有，引发公众愤怒。"},
    {"doc_id": "tiny:00003", "title": "", "text": "2019年4月下旬"},
]
TINY_QUESTIONS: list[dict[str, Any]] = [
    {"id": "t-1", "question": "锣鼓经常用的节奏型称为什么？", "answers": ["锣鼓点"], "doc_id": "tiny:DOC_A"},
    {"id": "t-2", "question": "歌词音箱的价格是多少？", "answers": ["1995欧元"], "doc_id": "tiny:doc_a",
     "gold_doc_ids": ["tiny:doc_a"], "answer_type": "numerical", "answer_in_gold": True},
]


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    """(external dir, cache dir) with one small set named "tiny"."""
    folder = tmp_path / "external" / "tiny"
    folder.mkdir(parents=True)
    _write_jsonl(folder / "corpus.jsonl", TINY)
    _write_jsonl(folder / "questions.jsonl", TINY_QUESTIONS)
    (folder / "stats.json").write_text(json.dumps({"dataset": "Tiny", "source_repo": "example.org/tiny",
                                                   "source_commit": "0123456789abcdef", "license": "CC BY 4.0"}))
    return tmp_path / "external", tmp_path / "cache"


def _ids(name: str) -> list[str]:
    with (EXTERNAL_DIR / name / "corpus.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line)["doc_id"] for line in f if line.strip()]


# --- ids ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REAL_SETS))
def test_real_ids_map_one_to_one_and_back(name: str) -> None:
    ids = _ids(name)
    m = ext.build_id_map(ids)
    assert len(set(m.to_safe.values())) == len(ids) == REAL_SETS[name][0]
    assert all(DOC_ID_RE.match(s) and ".." not in s for s in m.to_safe.values())
    assert all(m.external(m.safe(i)) == i for i in ids)
    assert ext.build_id_map(reversed(ids)).to_safe == m.to_safe  # independent of order


def test_slugs_are_readable() -> None:
    m = ext.build_id_map(["cmrc2018-dev:DEV_0", "chronoqa:00000"])
    assert m.safe("cmrc2018-dev:DEV_0") == "cmrc2018-dev.dev_0"
    assert m.safe("chronoqa:00000") == "chronoqa.00000"


def test_colliding_slugs_get_hash_suffixes() -> None:
    m = ext.build_id_map(["tiny:DOC_A", "tiny:doc_a", "tiny:x"])
    a, b = m.safe("tiny:DOC_A"), m.safe("tiny:doc_a")
    assert a != b and a.startswith("tiny.doc_a-") and b.startswith("tiny.doc_a-")
    assert m.safe("tiny:x") == "tiny.x"
    assert {m.external(a), m.external(b)} == {"tiny:DOC_A", "tiny:doc_a"}


@pytest.mark.parametrize("name", sorted(REAL_SETS))
def test_every_gold_id_is_in_the_corpus(name: str) -> None:
    m = ext.build_id_map(_ids(name))
    _, questions = load_set(name)
    assert len(questions) == REAL_SETS[name][1]
    assert all(q.gold_docs and all(g in m.to_safe for g in q.gold_docs) for q in questions)


def test_chronoqa_labels_become_tags() -> None:
    _, questions = load_set("chronoqa", limit=3)
    assert "answer:entity" in questions[0].tags and "docs:multiple" in questions[0].tags
    assert "answer_not_in_gold" in questions[0].tags
    assert not questions[0].require_all
    _, cmrc = load_set("cmrc2018_dev", limit=1)
    assert cmrc[0].tags == ()


@pytest.mark.parametrize(("text", "date"), [
    ("2019年7月23日，COTODAMA推出", "2019-07-23"), ("2020年4月，", "2020-04"), ("2021年，", "2021"),
    ("北京时间2021年4月22日晚，", "2021-04-22"), ("2019年2月30日，", "2019-02"), ("秘鲁前总统于4月23日", None),
])
def test_lead_date(text: str, date: str | None) -> None:
    found = ext.lead_date(text)
    assert (found[0] if found else None) == date


# --- materialised corpus ------------------------------------------------------------------------------


def test_materialise_front_matter_and_ids(tiny: tuple[Path, Path]) -> None:
    external_dir, cache = tiny
    mat = ext.materialise("tiny", external_dir=external_dir, cache_dir=cache)
    assert (mat.written, mat.unchanged, mat.removed) == (4, 0, 0)
    loaded = load_corpus(mat.corpus_dir)
    assert not loaded.problems and len(loaded.documents) == 4
    docs = {d.extra["external_id"]: d for d in loaded.documents}
    assert set(docs) == {r["doc_id"] for r in TINY}
    assert ext.load_id_map(cache / "tiny" / "ids.json") == mat.ids
    a = docs["tiny:DOC_A"]
    assert a.title == "锣鼓经" and a.date == ext.DEFAULT_PLACEHOLDER_DATE
    assert a.date_inferred and a.extra["date_evidence"].startswith("placeholder")
    b = docs["tiny:doc_a"]
    assert b.title == "tiny:doc_a" and b.date == "2019-07-23" and "2019年7月23日" in b.extra["date_evidence"]
    assert b.source == "Tiny, example.org/tiny@0123456, CC BY 4.0"
    for r in TINY:
        d = docs[r["doc_id"]]
        assert d.raw == r["text"] + "\n" and d.extra["cleaning"] == "verbatim"
        assert d.path.name == f"{mat.ids.safe(r['doc_id'])}.md"


def test_render_matches_the_corpus_writer(tiny: tuple[Path, Path]) -> None:
    from corpus.documents import render_document

    doc = ext.ExternalDoc("tiny:DOC_A", "锣鼓经", TINY[0]["text"])
    meta = ext.front_matter(doc, "tiny.doc_a", "tiny", "Tiny")
    assert ext.render(doc, "tiny.doc_a", "tiny", "Tiny") == render_document(meta, doc.text + "\n")


def test_materialise_is_idempotent_and_incremental(tiny: tuple[Path, Path]) -> None:
    external_dir, cache = tiny
    first = ext.materialise("tiny", external_dir=external_dir, cache_dir=cache)
    stamps = {p.name: p.stat().st_mtime_ns for p in first.corpus_dir.iterdir()}
    fp = load_chunked_corpus(first.corpus_dir).fingerprint()
    again = ext.materialise("tiny", external_dir=external_dir, cache_dir=cache)
    assert (again.written, again.unchanged, again.removed) == (0, 4, 0)
    assert {p.name: p.stat().st_mtime_ns for p in again.corpus_dir.iterdir()} == stamps
    assert load_chunked_corpus(again.corpus_dir).fingerprint() == fp

    rows = [dict(r) for r in TINY[:3]]
    rows[0]["text"] += "又称锣鼓谱。"
    _write_jsonl(external_dir / "tiny" / "corpus.jsonl", rows)
    changed = ext.materialise("tiny", external_dir=external_dir, cache_dir=cache)
    assert (changed.written, changed.unchanged, changed.removed) == (1, 2, 1)
    assert len(list(changed.corpus_dir.glob("*.md"))) == 3
    assert "tiny:00003" not in ext.load_id_map(cache / "tiny" / "ids.json").to_safe


def test_verbatim_cleaning_keeps_every_passage_whole(tiny: tuple[Path, Path]) -> None:
    external_dir, cache = tiny
    mat = ext.materialise("tiny", external_dir=external_dir, cache_dir=cache)
    corpus = load_chunked_corpus(mat.corpus_dir)
    for d in corpus.documents:
        clean = corpus.cleaned[d.doc_id]
        assert clean.text == d.raw and not clean.removed
        chunks = [c for c in corpus.chunks if c.doc_id == d.doc_id]
        assert "".join(c.text for c in chunks) == d.raw.strip()
    # the same passages without the flag: the page-chrome and heading rules drop two of them
    for row, safe in ((TINY[2], "tiny.00002"), (TINY[3], "tiny.00003")):
        text = f"---\ntitle: '{row['doc_id']}'\ndate: '2019'\nsource: x\n---\n{row['text']}\n"
        plain = clean_document(parse_document(text.encode(), Path(f"{safe}.md")))
        assert not [b for b in plain.blocks if b.kind == "body"]


def test_verbatim_keeps_lines_as_given() -> None:
    body = "# 不是标题\u3000\u3000正文  继\u200b续。\n\n\u3000第二段。 \n"
    text = f"---\ntitle: t\ndate: '2018'\nsource: x\ncleaning: verbatim\n---\n{body}"
    clean = clean_document(parse_document(text.encode(), Path("t.md")))
    assert clean.text == "# 不是标题\u3000\u3000正文  继\u200b续。\n第二段。\n"
    assert [b.kind for b in clean.blocks] == ["body", "body"]
    first = body.index("\n")
    assert clean.raw_spans(0, len(clean.text)) == [(0, first), (body.index("第"), body.index("。 ") + 1)]


@pytest.mark.parametrize("name", sorted(REAL_SETS))
def test_loader_accepts_every_real_passage(name: str, tmp_path: Path) -> None:
    mat = ext.materialise(name, cache_dir=tmp_path)
    corpus = load_chunked_corpus(mat.corpus_dir)
    assert not corpus.problems and len(corpus.documents) == REAL_SETS[name][0]
    with_chunks = {c.doc_id for c in corpus.chunks}
    assert with_chunks == {d.doc_id for d in corpus.documents}
    assert all(corpus.cleaned[d.doc_id].text == d.raw.strip() + "\n" for d in corpus.documents)


# --- index and runner with the fake encoder -----------------------------------------------------------


def _engine(tiny: tuple[Path, Path], tmp_path: Path, encoder: FakeEncoder) -> Any:
    from service.engine import Engine

    external_dir, cache = tiny
    base = Settings.model_construct(model_dir=tmp_path / "no-model", index_dir=tmp_path / "seed-index",
                                    reader_dir=READER_DIR)
    settings, _ = ext.external_settings("tiny", base, external_dir=external_dir, cache_dir=cache)
    assert settings.corpus_dir == cache / "tiny" / "corpus" and settings.index_dir == cache / "tiny" / "index"
    return Engine(settings, encoder=encoder)


def test_index_built_once_then_reused_and_rebuilt_incrementally(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    enc = FakeEncoder()
    engine = _engine(tiny, tmp_path, enc)
    first = ext.ensure_index(engine)
    assert first is not None and first.chunks == 4 and first.embedded == 4
    assert (engine.settings.index_dir / "cache" / "embeddings.sqlite").is_file()
    assert ext.ensure_index(_engine(tiny, tmp_path, enc)) is None  # unchanged corpus: no build

    external_dir, _ = tiny
    rows = [dict(r) for r in TINY]
    rows[1]["text"] += "音箱不支持蓝牙。"
    _write_jsonl(external_dir / "tiny" / "corpus.jsonl", rows)
    again = ext.ensure_index(_engine(tiny, tmp_path, enc))
    assert again is not None and again.embedded == 1 and again.cached == 3


def test_runner_reports_original_doc_ids(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    from eval.runner import run_set
    from eval.scoring import load_rows, score_run
    from eval.sets import Question

    engine = _engine(tiny, tmp_path, FakeEncoder())
    ext.ensure_index(engine)
    ids = ext.load_id_map(tiny[1] / "tiny" / "ids.json")
    questions = [Question.from_dict(q) for q in TINY_QUESTIONS]
    out = tmp_path / "run.jsonl"
    assert run_set(engine, questions, ["sparse"], out, progress=False, doc_ids=ids.to_external) == 2
    rows = load_rows(out)
    original = {r["doc_id"] for r in TINY}
    assert all(set(r["ranked_doc_ids"]) <= original for r in rows)
    assert all(c["doc_id"] in original for r in rows for c in r["answer"]["citations"])
    assert score_run(rows)["modes"]["sparse"]["overall"]["hit@1"] == 1.0


def test_eval_run_command_on_an_external_set(tiny: tuple[Path, Path], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import eval.sets
    import service.engine
    from eval.cli import main as eval_main

    external_dir, cache = tiny
    monkeypatch.setattr(eval.sets, "EXTERNAL_DIR", external_dir)
    monkeypatch.setattr(ext, "CACHE_DIR", cache)

    class FakeEngine(service.engine.Engine):
        def __init__(self, settings: Settings) -> None:
            super().__init__(settings, encoder=FakeEncoder())

    monkeypatch.setattr(service.engine, "Engine", FakeEngine)
    monkeypatch.setenv("POLICYQA_MODEL_DIR", str(tmp_path / "no-model"))
    run_dir = tmp_path / "run"
    assert eval_main(["eval", "run", "--set", "tiny", "--mode", "all", "--out", str(run_dir), "-q"]) == 0
    meta = json.loads((run_dir / "meta.json").read_text(encoding="utf-8"))
    assert meta["external"]["built"]["chunks"] == 4 and set(meta["timings_s"]) == {"prepare", "questions"}
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["modes"]["sparse"]["overall"]["hit@1"] == 1.0
    assert "answer:numerical" in metrics["modes"]["hybrid"]["by_tag"]
    rows = [json.loads(line) for line in (run_dir / "run.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {d for r in rows for d in r["ranked_doc_ids"]} <= {r["doc_id"] for r in TINY}
