"""Index generations with the real model: build, load, refuse mismatches, survive interruption, rebuild
incrementally."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from corpus.pipeline import load_chunked_corpus
from index.builder import build_index
from index.dense import DenseIndex
from index.fusion import rrf
from index.generations import IndexCorrupt, IndexMismatch, IndexNotFound, current_generation
from index.modelinfo import describe_model
from index.segmentation import Segmenter
from index.store import load_index
from tests.fakes import FakeEncoder


def _copy_corpus(tmp: Path) -> Path:
    dst = tmp / "raw"
    dst.mkdir()
    for p in sorted(Path("corpus/seeds").glob("*.md")):
        shutil.copy(p, dst / p.name)
    return dst


def test_real_build_and_load(real_engine) -> None:  # type: ignore[no-untyped-def]
    idx = real_engine.index
    m = idx.manifest
    assert m["model"]["dim"] == 384 and m["model"]["normalized"]
    assert m["counts"]["chunks"] == len(idx.chunks) == idx.dense.size == idx.sparse.size
    assert m["corpus"]["fingerprint"] == real_engine.corpus().fingerprint()
    assert set(m["corpus"]["documents"]) == set(idx.documents)
    assert m["lexicon"]["hash"] == Segmenter().hash
    assert {"faiss-cpu", "bm25s", "jieba", "torch"} <= set(m["versions"])
    assert m["chunker"]["max_chars"] == 450
    assert idx.dense.kind == "flat"


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFound, match="policyqa index build"):
        load_index(tmp_path)


def _fake_build(root: Path, raw: Path, enc: FakeEncoder, factory=None, **kw):  # type: ignore[no-untyped-def]
    from index.builder import ModelInfo

    info = ModelInfo(enc.model_name, "", enc.fingerprint, enc.dim, enc.max_tokens)
    return build_index(load_chunked_corpus(raw), root, info, factory or (lambda: enc), **kw)


def test_mismatched_model_and_lexicon_refused(tmp_path: Path) -> None:
    raw = _copy_corpus(tmp_path)
    enc = FakeEncoder()
    _fake_build(tmp_path / "idx", raw, enc)
    load_index(tmp_path / "idx", model_fingerprint=enc.fingerprint, lexicon_hash=Segmenter().hash)
    with pytest.raises(IndexMismatch, match="model"):
        load_index(tmp_path / "idx", model_fingerprint="another-model")
    with pytest.raises(IndexMismatch, match="lexicon"):
        load_index(tmp_path / "idx", lexicon_hash="another-lexicon")


def test_partial_generation_refused(tmp_path: Path) -> None:
    raw = _copy_corpus(tmp_path)
    res = _fake_build(tmp_path / "idx", raw, FakeEncoder())
    lines = (res.path / "chunks.jsonl").read_text().splitlines()
    (res.path / "chunks.jsonl").write_text("\n".join(lines[:-3]) + "\n")
    with pytest.raises(IndexCorrupt, match="inconsistent"):
        load_index(tmp_path / "idx")
    (res.path / "manifest.json").unlink()
    with pytest.raises(IndexCorrupt, match="manifest"):
        load_index(tmp_path / "idx")


def test_interrupted_build_leaves_current_generation(tmp_path: Path) -> None:
    raw = _copy_corpus(tmp_path)
    first = _fake_build(tmp_path / "idx", raw, FakeEncoder())
    (raw / "new.md").write_text("---\ntitle: 新文章\ndate: '2026-01'\nsource: 测试\n---\n测试镇建成党群服务驿站17个。\n",
                                encoding="utf-8")

    class Boom(FakeEncoder):
        def encode_passages(self, texts, *, batch_size=16, on_progress=None):  # type: ignore[no-untyped-def]
            raise KeyboardInterrupt("killed mid-build")

    with pytest.raises(KeyboardInterrupt):
        _fake_build(tmp_path / "idx", raw, Boom())
    assert current_generation(tmp_path / "idx") == first.path
    idx = load_index(tmp_path / "idx")
    assert "new" not in idx.documents
    again = _fake_build(tmp_path / "idx", raw, FakeEncoder())  # the next build cleans up and succeeds
    assert "new" in load_index(tmp_path / "idx").documents
    assert again.generation != first.generation
    assert not list((tmp_path / "idx").glob(".tmp-*"))


def test_incremental_rebuild_embeds_only_new_chunks(tmp_path: Path) -> None:
    raw = _copy_corpus(tmp_path)
    enc = FakeEncoder()
    first = _fake_build(tmp_path / "idx", raw, enc)
    assert first.embedded == first.chunks and first.encoder_loaded
    (raw / "new.md").write_text(
        "---\ntitle: 新文章\ndate: '2026-01'\nsource: 测试\n---\n\n测试镇建成党群服务驿站17个。\n\n第二段说明情况。\n",
        encoding="utf-8")
    second = _fake_build(tmp_path / "idx", raw, enc)
    new_chunks = [c for c in load_chunked_corpus(raw).chunks if c.doc_id == "new"]
    assert second.embedded == len(new_chunks) > 0
    assert second.chunks == first.chunks + len(new_chunks)
    calls: list[int] = []

    class Counting(FakeEncoder):
        def __init__(self) -> None:
            super().__init__()
            calls.append(1)

    third = _fake_build(tmp_path / "idx", raw, enc, factory=Counting)
    assert third.embedded == 0 and not third.encoder_loaded and not calls  # unchanged: no encoder at all
    gens = sorted(p.name for p in (tmp_path / "idx" / "generations").iterdir())
    assert len(gens) == 2  # current + previous good one


def test_unchanged_rebuild_links_the_current_indexes(tmp_path: Path) -> None:
    raw = _copy_corpus(tmp_path)
    enc = FakeEncoder()
    first = _fake_build(tmp_path / "idx", raw, enc)
    stages: list[tuple[str, int, int]] = []
    again = _fake_build(tmp_path / "idx", raw, enc, factory=lambda: pytest.fail("encoder created"),
                        progress=lambda *a: stages.append(a))
    manifest = json.loads((again.path / "manifest.json").read_text())
    assert manifest["build"]["reused_indexes_from"] == first.generation
    assert manifest["artifacts_key"] == json.loads((first.path / "manifest.json").read_text())["artifacts_key"]
    assert (again.path / "dense.faiss").samefile(first.path / "dense.faiss")
    for f in (first.path / "sparse").iterdir():
        assert (again.path / "sparse" / f.name).samefile(f)
    total = again.chunks
    assert stages == [("embed", total, total), ("dense", 0, 1), ("dense", 1, 1), ("sparse", 0, total),
                      ("sparse", total, total)]
    idx = load_index(tmp_path / "idx", model_fingerprint=enc.fingerprint, lexicon_hash=Segmenter().hash)
    assert idx.path == again.path and idx.dense.size == idx.sparse.size == total
    q = enc.encode_queries(["江门市党员人数"])
    assert idx.dense.search(q, 5).ids.tolist() == DenseIndex.load(first.path / "dense.faiss").search(q, 5).ids.tolist()

    # Pruning the first generation leaves the linked files of the later ones intact.
    third = _fake_build(tmp_path / "idx", raw, enc, factory=lambda: pytest.fail("encoder created"))
    assert not first.path.exists()
    load_index(tmp_path / "idx")
    assert json.loads((third.path / "manifest.json").read_text())["build"]["reused_indexes_from"] == again.generation


def test_rebuild_does_not_reuse_changed_or_broken_indexes(tmp_path: Path) -> None:
    raw = _copy_corpus(tmp_path)
    enc = FakeEncoder()
    _fake_build(tmp_path / "idx", raw, enc)
    (raw / "new.md").write_text("---\ntitle: 新文章\ndate: '2026-01'\nsource: 测试\n---\n\n测试镇建成党群服务驿站17个。\n",
                                encoding="utf-8")
    changed = _fake_build(tmp_path / "idx", raw, enc)
    assert json.loads((changed.path / "manifest.json").read_text())["build"]["reused_indexes_from"] is None
    assert "new" in load_index(tmp_path / "idx").documents

    forced = _fake_build(tmp_path / "idx", raw, enc, reuse_indexes=False)
    assert json.loads((forced.path / "manifest.json").read_text())["build"]["reused_indexes_from"] is None
    assert not (forced.path / "dense.faiss").samefile(changed.path / "dense.faiss")

    # Another HNSW threshold that changes the dense kind is another index.
    hnsw = _fake_build(tmp_path / "idx", raw, enc, hnsw_threshold=10)
    assert load_index(tmp_path / "idx").dense.kind == "hnsw"
    assert json.loads((hnsw.path / "manifest.json").read_text())["build"]["reused_indexes_from"] is None

    # A damaged current generation is rebuilt from the embedding cache, not copied forward.
    (hnsw.path / "dense.faiss").write_bytes(b"broken")
    repaired = _fake_build(tmp_path / "idx", raw, enc, hnsw_threshold=10,
                           factory=lambda: pytest.fail("encoder created"))
    assert json.loads((repaired.path / "manifest.json").read_text())["build"]["reused_indexes_from"] is None
    assert repaired.embedded == 0 and load_index(tmp_path / "idx").dense.size == repaired.chunks


def test_documents_record_their_chunk_counts(tmp_path: Path) -> None:
    raw = _copy_corpus(tmp_path)
    res = _fake_build(tmp_path / "idx", raw, FakeEncoder())
    counts = {d.doc_id: d.chunks for d in load_index(tmp_path / "idx").documents.values()}
    expected: dict[str, int] = {}
    for c in load_chunked_corpus(raw).chunks:
        expected[c.doc_id] = expected.get(c.doc_id, 0) + 1
    assert counts == expected and sum(counts.values()) == res.chunks


def test_real_model_folder_is_described(model_dir: Path) -> None:
    info = describe_model(model_dir)
    assert info.dim == 384 and info.max_tokens == 512 and len(info.fingerprint) >= 16


def test_dense_exact_and_hnsw_agree() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(2000, 32)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    flat = DenseIndex.build(v, hnsw_threshold=10**9)
    hnsw = DenseIndex.build(v, hnsw_threshold=1000)
    assert (flat.kind, hnsw.kind) == ("flat", "hnsw")
    q = v[:50] + 0.01
    a, b = flat.search(q, 5), hnsw.search(q, 5)
    recall = np.mean([len(set(a.ids[i]) & set(b.ids[i])) / 5 for i in range(50)])
    assert recall > 0.9
    assert (a.ids[:, 0] == np.arange(50)).all()


def test_single_query_search_runs_on_the_calling_thread_only() -> None:
    import threading

    import faiss

    from index.dense import SINGLE_THREAD_MAX_QUERIES

    rng = np.random.default_rng(1)
    v = rng.normal(size=(3000, 32)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q = v[:40] + 0.01
    before = faiss.omp_get_max_threads()
    seen: list[int] = []
    for index in (DenseIndex.build(v, hnsw_threshold=10**9), DenseIndex.build(v, hnsw_threshold=1000)):
        batch = index.search(q, 10)  # > SINGLE_THREAD_MAX_QUERIES: FAISS's default team
        assert q.shape[0] > SINGLE_THREAD_MAX_QUERIES
        for i in range(q.shape[0]):
            one = index.search(q[i], 10)
            assert one.ids[0].tolist() == batch.ids[i].tolist()
            np.testing.assert_allclose(one.scores[0], batch.scores[i], rtol=1e-5, atol=1e-6)
        assert faiss.omp_get_max_threads() == before  # restored after each search

        # Searches in other threads set and restore their own value only.
        def other(index: DenseIndex = index) -> None:
            index.search(q[0], 5)
            seen.append(faiss.omp_get_max_threads())

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert faiss.omp_get_max_threads() == before
    assert len(seen) == 2


def test_rrf_fuses_and_dedupes() -> None:
    hits = rrf([(1, 0.9), (2, 0.8), (1, 0.7)], [(2, 10.0), (3, 5.0)], k=60)
    assert [h.row for h in hits] == [2, 1, 3]
    assert hits[0].dense_rank == 2 and hits[0].sparse_rank == 1
    assert hits[0].fused == pytest.approx(1 / 62 + 1 / 61)
    assert hits[2].dense_rank is None


def test_manifest_is_json(real_engine) -> None:  # type: ignore[no-untyped-def]
    data = json.loads((real_engine.index.path / "manifest.json").read_text())
    assert data["generation"] == real_engine.index.generation


def test_library_versions_match_the_installed_metadata() -> None:
    from importlib import metadata

    from index.builder import _dist_version, library_versions

    versions = library_versions()
    assert versions["numpy"] == metadata.version("numpy") and versions["bm25s"] == metadata.version("bm25s")
    assert _dist_version("no-such-distribution-policyqa") == "not installed"
    versions["numpy"] = "changed"
    assert library_versions()["numpy"] == metadata.version("numpy")  # callers get a copy


def test_repeated_queries_reuse_their_vectors(real_engine) -> None:  # type: ignore[no-untyped-def]
    enc = real_engine.encoder
    first = enc.encode_queries(["江门有多少党员？", "江海区划分了多少个网格？"])
    calls = []
    original = enc._run
    enc._run = lambda texts, *, batch_size, build: calls.append(list(texts)) or original(
        texts, batch_size=batch_size, build=build)
    try:
        again = enc.encode_queries(["江海区划分了多少个网格？", "台山有多少个驿站？", "江门有多少党员？"])
    finally:
        enc._run = original
    assert calls == [["query: 台山有多少个驿站？"]]  # only the new question reached the model
    np.testing.assert_array_equal(again[0], first[1])
    np.testing.assert_array_equal(again[2], first[0])
    fresh = original(["query: 台山有多少个驿站？"], batch_size=1, build=False)[0]
    np.testing.assert_allclose(again[1], fresh, atol=1e-6)


def test_index_knows_which_terms_its_articles_mention(real_engine) -> None:  # type: ignore[no-untyped-def]
    idx = real_engine.index
    assert idx.mentions("奋斗者红色驿站") and not idx.mentions("后进")
    assert idx.mentions("奋斗者红色驿站")  # remembered answer, same result
