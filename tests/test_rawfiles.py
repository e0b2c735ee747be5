"""External sets of original files (eval/rawfiles.py): the regulations corpus ingested through the upload path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from corpus.documents import DOC_ID_RE, load_corpus
from corpus.pipeline import load_chunked_corpus
from eval import external as ext
from eval import rawfiles
from eval.sets import load_set
from service.settings import Settings
from tests.fakes import FakeEncoder

# two Word 2007+ files and one Word 97-2003 file (OLE2), all through the upload path
TINY_FILES = ("北京市__2020_北京市文明行为促进条例.docx", "广东省__2022_潮州市文明行为促进条例.docx",
              "广东省__2021_江门市文明行为促进条例.doc")


def _raw() -> Path:
    raw = rawfiles.shared_dir() / "corpora" / "regulations" / "raw"
    if not raw.is_dir():
        pytest.skip(f"the regulations corpus is not here ({raw}): it lives in ../shared beside the clone")
    return raw


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(external dir with a set "tinyreg" over 3 real files, cache dir, raw dir)."""
    raw = tmp_path / "shared" / "regs"
    raw.mkdir(parents=True)
    for name in TINY_FILES:
        shutil.copy(_raw() / name, raw / name)
    folder = tmp_path / "external" / "tinyreg"
    folder.mkdir(parents=True)
    source = json.loads((ext.evalsets.EXTERNAL_DIR / "regulations" / rawfiles.SOURCE_FILE).read_text(encoding="utf-8"))
    (folder / rawfiles.SOURCE_FILE).write_text(json.dumps({**source, "raw_dir": "regs"}), encoding="utf-8")
    questions = [
        {"id": "t-1", "question": "北京市文明行为促进条例什么时候开始施行？", "answers": ["2020年6月1日"],
         "gold_docs": [TINY_FILES[0]], "evidence": ["第六十三条　本条例自2020年6月1日起施行。"], "answerable": True,
         "tags": ["date", "factoid"]},
        {"id": "t-2", "question": "潮州市文明行为促进条例什么时候开始实施？", "answers": ["2023年1月1日"],
         "gold_docs": [TINY_FILES[1]], "evidence": ["第四十七条　本条例自2023年1月1日起施行。"], "answerable": True,
         "tags": ["date", "factoid"]},
        {"id": "t-3", "question": "合肥市文明行为促进条例什么时候开始施行？", "answers": [], "gold_docs": [],
         "evidence": [], "answerable": False, "tags": ["date", "unanswerable", "other_city"]},
    ]
    (folder / "questions.jsonl").write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions),
                                            encoding="utf-8")
    return tmp_path / "external", tmp_path / "cache", raw


def _materialise(tiny: tuple[Path, Path, Path]) -> ext.Materialised:
    external_dir, cache, raw = tiny
    return ext.materialise("tinyreg", external_dir=external_dir, cache_dir=cache, raw_dir=raw)


# --- ids ----------------------------------------------------------------------------------------------


def test_every_file_name_maps_one_to_one_and_every_gold_file_has_an_id() -> None:
    names = sorted(p.name for p in _raw().iterdir() if p.suffix in (".doc", ".docx"))
    assert len(names) == 249
    ids = rawfiles.build_ids(names, "reg")
    assert len(set(ids.values())) == len(names)
    assert all(DOC_ID_RE.match(i) and i.startswith("reg-") and i.isascii() for i in ids.values())
    assert rawfiles.build_ids(list(reversed(names)), "reg") == ids  # independent of order
    _, questions = load_set("regulations")
    assert {g for q in questions for g in q.gold_docs} <= set(ids)


def test_a_missing_corpus_folder_is_a_clear_bilingual_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        ext.materialise("regulations", cache_dir=tmp_path, raw_dir=tmp_path / "no-such-folder")
    assert "is missing" in str(err.value) and "缺少语料目录" in str(err.value)


# --- ingest -------------------------------------------------------------------------------------------


def test_ingest_through_the_upload_path(tiny: tuple[Path, Path, Path]) -> None:
    mat = _materialise(tiny)
    failed = dict(mat.failed)
    assert mat.written == 3 and not failed
    ids = ext.load_id_map(mat.root / "ids.json")
    assert set(ids.to_safe) == set(TINY_FILES) and ids == mat.ids
    report = json.loads((mat.root / rawfiles.INGEST_FILE).read_text(encoding="utf-8"))
    assert report["files"] == 3 and {f["file"] for f in report["failed"]} == set(failed)
    loaded = load_corpus(mat.corpus_dir)
    assert not loaded.problems and len(loaded.documents) == mat.written
    for doc in loaded.documents:
        name = ids.external(doc.doc_id)
        assert doc.extra["original_name"] == name and doc.extra["original_format"] in ("docx", "doc")
        assert (mat.corpus_dir / doc.extra["original"]).read_bytes() == (tiny[2] / name).read_bytes()
        assert "pragmatic_moral_governance" in doc.source
    beijing = next(d for d in loaded.documents if ids.external(d.doc_id) == TINY_FILES[0])
    assert "本条例自2020年6月1日起施行" in beijing.raw


def test_unchanged_files_are_not_rewritten(tiny: tuple[Path, Path, Path]) -> None:
    first = _materialise(tiny)
    fp = load_chunked_corpus(first.corpus_dir).fingerprint()
    stamps = {p: p.stat().st_mtime_ns for p in first.corpus_dir.rglob("*") if p.is_file()}
    again = _materialise(tiny)
    assert (again.written, again.unchanged, again.removed) == (0, first.written, 0)
    assert {p: p.stat().st_mtime_ns for p in again.corpus_dir.rglob("*") if p.is_file()} == stamps
    assert load_chunked_corpus(again.corpus_dir).fingerprint() == fp


def test_the_time_of_preparing_alone_is_no_change(tiny: tuple[Path, Path, Path]) -> None:
    """Each ingest stamps `added` from the clock: a run a second (or a day) later must not rewrite the set."""
    mat = _materialise(tiny)
    path = sorted(mat.corpus_dir.glob("*.md"))[0]
    text = path.read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("added: "))
    path.write_text(text.replace(line, "added: '2001-01-01T00:00:00Z'", 1), encoding="utf-8")  # as if an old run
    again = _materialise(tiny)
    assert (again.written, again.unchanged) == (0, 3) and "added: '2001-01-01T00:00:00Z'" in path.read_text("utf-8")
    # anything else in the front matter or the body is a change
    assert not rawfiles.same_but_clock(b"---\ndate: '2001'\n---\nA\n", b"---\ndate: '2002'\n---\nA\n")
    assert not rawfiles.same_but_clock(b"---\nadded: '1'\n---\nA\n", b"---\nadded: '2'\n---\nB\n")
    assert rawfiles.same_but_clock(b"---\nadded: '1'\n---\nA\n", b"---\nadded: '2'\n---\nA\n")


def test_a_file_gone_from_the_folder_is_removed(tiny: tuple[Path, Path, Path]) -> None:
    mat = _materialise(tiny)
    gone = mat.ids.safe(TINY_FILES[1])
    (tiny[2] / TINY_FILES[1]).unlink()
    again = _materialise(tiny)
    assert again.removed == 1 and not (again.corpus_dir / f"{gone}.md").exists()
    assert not list((again.corpus_dir / ".originals").glob(f"{gone}.*"))
    assert TINY_FILES[1] not in ext.load_id_map(again.root / "ids.json").to_safe


# --- index and run with the fake encoder -------------------------------------------------------------


def test_eval_run_reports_file_names(tiny: tuple[Path, Path, Path], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import eval.sets
    import service.engine
    from eval.cli import main as eval_main

    external_dir, cache, raw = tiny
    monkeypatch.setattr(eval.sets, "EXTERNAL_DIR", external_dir)
    monkeypatch.setattr(ext, "CACHE_DIR", cache)
    monkeypatch.setenv("POLICYQA_SHARED_DIR", str(raw.parent))

    class FakeEngine(service.engine.Engine):
        def __init__(self, settings: Settings) -> None:
            super().__init__(settings, encoder=FakeEncoder())

    monkeypatch.setattr(service.engine, "Engine", FakeEngine)
    monkeypatch.setenv("POLICYQA_MODEL_DIR", str(tmp_path / "no-model"))
    run_dir = tmp_path / "run"
    assert eval_main(["eval", "run", "--set", "tinyreg", "--mode", "sparse", "--out", str(run_dir), "-q"]) == 0
    meta: dict[str, Any] = json.loads((run_dir / "meta.json").read_text(encoding="utf-8"))
    failed = {f["file"] for f in meta["external"]["failed"]}
    assert failed <= {TINY_FILES[2]} and meta["external"]["built"]["chunks"] > 0
    if failed:
        assert "1 of 3 files could not be ingested" in capsys.readouterr().err
    rows = [json.loads(line) for line in (run_dir / "run.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {d for r in rows for d in r["ranked_doc_ids"]} <= set(TINY_FILES)
    assert all(c["doc_id"] in TINY_FILES for r in rows for c in r["answer"]["citations"])
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))["modes"]["sparse"]["overall"]
    assert metrics["hit@1"] == 1.0  # the two named regulations rank first for their own questions
    assert metrics["citation_verification_rate"] in (None, 1.0)
    assert "citation_doc_accuracy" in metrics and "short_contains" in metrics
