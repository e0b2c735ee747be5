"""Storing and correcting documents (service/docstore.py) in process: no date is made up, and a correction
rewrites only the front matter, durably, keeping the previous file in the trash."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from corpus.documents import load_corpus, split_document
from corpus.formats.measure import seed, word_file
from service.api.errors import ApiError
from service.docstore import (
    TRASH_DIR,
    DocumentStore,
    NewDocumentFields,
    check_corrections,
    prepare_from_fields,
    prepare_from_file,
)


@pytest.fixture
def store(tmp_path: Path) -> DocumentStore:
    return DocumentStore(tmp_path / "documents", tmp_path / "corpus.lock")


def add_text(store: DocumentStore, text: str = "没有日期的正文，只讲文明行为。", **fields: str) -> str:
    prepared = prepare_from_fields(NewDocumentFields(title="无日期文档", text=text, **fields), store.corpus_dir)
    return store.add(prepared).doc_id


def test_no_date_given_means_no_date(store: DocumentStore) -> None:
    doc_id = add_text(store)
    path = store.corpus_dir / f"{doc_id}.md"
    meta, _ = split_document(path.read_bytes())
    assert "date" not in meta and "date_inferred" not in meta and meta["added"].endswith("Z")
    doc = store.get(doc_id)
    assert doc is not None and doc.date == "" and not doc.date_inferred


def test_a_correction_rewrites_the_front_matter_only(store: DocumentStore) -> None:
    doc_id = add_text(store, "第一段。\n\n  第二段，缩进与空行都照原样。  \n")
    path = store.corpus_dir / f"{doc_id}.md"
    old = path.read_bytes()
    done = store.correct(doc_id, check_corrections({"title": "更正后的标题", "date": "2021-05-01",
                                                     "place": "江门市", "published_date": "2021-03-25"}))
    assert done.changed == ("title", "date", "place", "published_date")
    new = path.read_bytes()
    assert split_document(new)[1].encode("utf-8") == split_document(old)[1].encode("utf-8")  # byte for byte
    assert new.endswith(split_document(old)[1].encode("utf-8"))
    doc = load_corpus(store.corpus_dir).by_id()[doc_id]
    assert (doc.title, doc.date, doc.date_inferred) == ("更正后的标题", "2021-05-01", False)
    assert doc.extra["place"] == "江门市" and doc.extra["corrected_fields"] == "title,date,place,published_date"
    assert doc.content_hash == done.document.content_hash != hashlib.sha256(old).hexdigest()
    assert done.trashed_as is not None
    assert (store.corpus_dir / done.trashed_as).read_bytes() == old  # the previous file is kept
    assert not list(store.corpus_dir.glob(".*.tmp-*"))
    again = store.correct(doc_id, check_corrections({"title": "更正后的标题", "version": "2021"}))
    assert again.changed == ("version",)
    assert load_corpus(store.corpus_dir).by_id()[doc_id].extra["corrected_fields"] == \
        "title,date,place,published_date,version"
    removed = store.correct(doc_id, check_corrections({"date": None}))
    assert removed.document.date == "" and removed.changed == ("date",)


def test_nothing_to_change_writes_nothing(store: DocumentStore) -> None:
    doc_id = add_text(store)
    before = sorted(p.name for p in store.corpus_dir.rglob("*"))
    done = store.correct(doc_id, check_corrections({"title": "无日期文档"}))
    assert done.changed == () and done.trashed_as is None
    assert sorted(p.name for p in store.corpus_dir.rglob("*")) == before


def test_unknown_document(store: DocumentStore) -> None:
    add_text(store)
    with pytest.raises(ApiError) as info:
        store.correct("no-such-doc", {"title": "x"})
    assert (info.value.status, info.value.code) == (404, "document_not_found")


@pytest.mark.parametrize(("changes", "code"), [
    ({"date": "2021-13-01"}, "bad_date"),
    ({"effective_date": "明年"}, "bad_date"),
    ({"doc_id": "other"}, "protected_field"),
    ({"original": "x.pdf"}, "protected_field"),
    ({"title": None}, "missing_field"),
    ({"Title": "x"}, "bad_field"),
    ({"place": 3}, "bad_value"),
    ({}, "no_changes"),
])
def test_bad_corrections(changes: dict[str, object], code: str) -> None:
    with pytest.raises(ApiError) as info:
        check_corrections(changes)
    assert (info.value.status, info.value.code) == (422, code)
    assert info.value.message_zh and info.value.message_en


def test_a_crash_before_the_rename_keeps_the_old_file(store: DocumentStore, monkeypatch: pytest.MonkeyPatch) -> None:
    doc_id = add_text(store)
    path = store.corpus_dir / f"{doc_id}.md"
    old = path.read_bytes()

    def crash(src: str | Path, dst: str | Path) -> None:
        raise OSError(5, "simulated I/O error")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.correct(doc_id, {"title": "不会保存"})
    assert path.read_bytes() == old
    assert not list(store.corpus_dir.glob(".*.tmp-*"))
    assert [d.doc_id for d in load_corpus(store.corpus_dir).documents] == [doc_id]


def test_an_uploaded_file_keeps_its_original_and_provenance(store: DocumentStore) -> None:
    data = word_file(seed("jiangmen-strong-foundation-2024-09"))
    doc = store.add(prepare_from_file(data, "强基.docx", store.corpus_dir))
    originals = {p.name: p.read_bytes() for p in (store.corpus_dir / ".originals").iterdir()}
    done = store.correct(doc.doc_id, {"title": "强基（更正）"})
    assert done.document.raw == doc.raw
    assert {p.name: p.read_bytes() for p in (store.corpus_dir / ".originals").iterdir()} == originals
    assert (store.corpus_dir / TRASH_DIR).is_dir()
