"""Loading stored documents, including each kind of bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus.documents import SEEDS_DIR, load_corpus, validate_date

GOOD = "---\ntitle: 测试文章\ndate: '2024-09'\nsource: 测试来源\nregion: 江门市\n---\n正文第一段。\n"


def _write(folder: Path, name: str, data: bytes | str) -> Path:
    p = folder / name
    p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return p


def test_seed_front_matter() -> None:
    loaded = load_corpus(SEEDS_DIR)
    assert not loaded.problems
    docs = loaded.by_id()
    assert len(docs) == 5
    assert docs["jianghai-party-building-2022-09-26"].date == "2022-09-26"
    assert not docs["jianghai-party-building-2022-09-26"].date_inferred
    assert docs["jiangmen-strong-foundation-2024-09"].date.startswith("2024-09")
    assert docs["jiangmen-party-building-review-2025"].date.startswith("2025")
    for d in docs.values():
        assert d.source and d.region and d.title
        assert d.doc_id.isascii()
        seed = Path(__file__).resolve().parents[2] / "shared" / "seeds" / d.extra["seed_file"]
        if seed.exists():  # the stored body is exactly the capture
            assert d.raw == seed.read_text(encoding="utf-8")


@pytest.mark.parametrize(("name", "data", "code"), [
    ("no-front.md", "只有正文，没有文件头。\n", "no_front_matter"),
    ("bad-utf8.md", b"---\ntitle: x\ndate: '2024'\nsource: y\n---\n\xff\xfe\xfd", "bad_encoding"),
    ("empty.md", "---\ntitle: 空\ndate: '2024'\nsource: y\n---\n   \n\n", "empty_body"),
    ("bad-date.md", "---\ntitle: x\ndate: 去年秋天\nsource: y\n---\n正文。\n", "bad_date"),
    ("bad-date2.md", "---\ntitle: x\ndate: '2024-02-30'\nsource: y\n---\n正文。\n", "bad_date"),
    ("no-title.md", "---\ndate: '2024'\nsource: y\n---\n正文。\n", "missing_field"),
    ("bad-yaml.md", "---\ntitle: [unclosed\ndate: '2024'\n---\n正文。\n", "bad_front_matter"),
])
def test_bad_files_are_reported_and_others_still_load(tmp_path: Path, name: str, data: bytes | str,
                                                      code: str) -> None:
    _write(tmp_path, "good.md", GOOD)
    bad = _write(tmp_path, name, data)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    loaded = load_corpus(tmp_path)
    assert [d.doc_id for d in loaded.documents] == ["good"]
    assert len(loaded.problems) == 1
    problem = loaded.problems[0]
    assert problem.path == bad and problem.code == code
    assert name in str(problem) and problem.message_zh and problem.message_en
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # loading never writes


def test_duplicate_doc_id(tmp_path: Path) -> None:
    _write(tmp_path, "a.md", GOOD.replace("---\ntitle", "---\ndoc_id: same\ntitle"))
    _write(tmp_path, "b.md", GOOD.replace("---\ntitle", "---\ndoc_id: same\ntitle"))
    loaded = load_corpus(tmp_path)
    assert [d.path.name for d in loaded.documents] == ["a.md"]
    assert [(p.path.name, p.code) for p in loaded.problems] == [("b.md", "duplicate_doc_id")]


def test_bad_doc_id(tmp_path: Path) -> None:
    _write(tmp_path, "x.md", GOOD.replace("---\ntitle", "---\ndoc_id: ../../etc/passwd\ntitle"))
    assert load_corpus(tmp_path).problems[0].code == "bad_doc_id"


@pytest.mark.parametrize("value", ["2022", "2022-09", "2022-09-26"])
def test_partial_iso_dates(value: str) -> None:
    assert validate_date(value) == value


@pytest.mark.parametrize("date_line", ["", "date:\n", "date: ''\n"])
def test_a_document_without_a_date_has_none(tmp_path: Path, date_line: str) -> None:
    _write(tmp_path, "undated.md", f"---\ntitle: 无日期\n{date_line}source: y\n---\n正文。\n")
    loaded = load_corpus(tmp_path)
    assert not loaded.problems
    doc = loaded.documents[0]
    assert doc.date == "" and not doc.date_inferred and doc.metadata()["date"] == ""


def test_the_day_a_file_was_uploaded_is_not_its_date(tmp_path: Path) -> None:
    """Files stored before dates stopped being made up carry the upload day, marked by its evidence."""
    _write(tmp_path, "old-upload.md", "---\ntitle: 旧上传\ndate: '2026-12-06'\ndate_inferred: true\n"
           "date_evidence: 上传日期（未提供日期）/ upload date (no date given)\nsource: y\n---\n正文。\n")
    _write(tmp_path, "seed-like.md", "---\ntitle: 推断\ndate: '2024-09'\ndate_inferred: true\n"
           "date_evidence: 版面日期“2024 年 9 月”\nsource: y\n---\n正文。\n")
    docs = load_corpus(tmp_path).by_id()
    assert docs["old-upload"].date == "" and not docs["old-upload"].date_inferred
    assert docs["seed-like"].date == "2024-09" and docs["seed-like"].date_inferred  # inferred from the text
