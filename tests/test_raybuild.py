"""`policyqa index build --ray ADDRESS`: the new passages embedded on a Ray cluster (index/raybuild.py).

The builder's side (any PassageEmbedder, parts in any order, into the same cache) is tested without Ray. The
cluster test starts a local cluster (`ray start --head` and two worker nodes of one CPU each, on this
machine; bench/raycluster.py), builds the seeds plus 3 regulations with --ray and locally, and compares
the two generations: the same chunks, documents and manifest (but for the generation's name, time and build
record) and the same vectors. bench/bench_raybuild.py does the same over all 249 regulations and measures.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from corpus.pipeline import load_chunked_corpus
from index.builder import ModelInfo, build_index, passage_text
from index.embedcache import EmbeddingCache, text_key
from tests.fakes import FakeEncoder

REPO = Path(__file__).resolve().parent.parent
HAS_RAY = importlib.util.find_spec("ray") is not None


def _seeds(tmp: Path) -> Path:
    dst = tmp / "raw"
    dst.mkdir()
    for p in sorted((REPO / "corpus" / "seeds").glob("*.md")):
        shutil.copy(p, dst / p.name)
    return dst


class ShuffledEmbedder:
    """A PassageEmbedder that embeds with a FakeEncoder in parts of 7, yielded last part first."""

    def __init__(self, enc: FakeEncoder, *, drop: int = 0) -> None:
        self.enc = enc
        self.drop = drop
        self.calls = 0

    @property
    def fingerprint(self) -> str:
        return self.enc.fingerprint

    @property
    def dim(self) -> int:
        return self.enc.dim

    def describe(self) -> dict[str, Any]:
        return {"kind": "shuffled-fake"}

    def __call__(self, texts: Sequence[str]) -> Iterator[tuple[Sequence[int], np.ndarray]]:
        self.calls += 1
        parts = [list(range(s, min(s + 7, len(texts)))) for s in range(0, len(texts), 7)]
        for rows in reversed(parts):
            rows = rows[self.drop:]
            yield rows, self.enc.encode_passages([texts[r] for r in rows])


def _vectors(generation: Path) -> np.ndarray:
    import faiss

    index = faiss.read_index(str(generation / "dense.faiss"))
    return np.asarray(index.reconstruct_n(0, index.ntotal))


def test_builder_takes_vectors_from_an_embedder_in_any_order(tmp_path: Path) -> None:
    raw = _seeds(tmp_path)
    enc = FakeEncoder()
    info = ModelInfo(enc.model_name, "", enc.fingerprint, enc.dim, enc.max_tokens, "fake")
    corpus = load_chunked_corpus(raw)

    def no_local_encoder() -> FakeEncoder:
        raise AssertionError("the local encoder is not loaded when an embedder is given")

    embedder = ShuffledEmbedder(enc)
    remote = build_index(corpus, tmp_path / "remote", info, no_local_encoder, embedder=embedder)
    local = build_index(corpus, tmp_path / "local", info, lambda: enc)
    assert embedder.calls == 1 and remote.embedded == local.embedded == remote.chunks > 7 and not remote.encoder_loaded
    np.testing.assert_array_equal(_vectors(remote.path), _vectors(local.path))  # each row where it belongs
    assert (remote.path / "chunks.jsonl").read_bytes() == (local.path / "chunks.jsonl").read_bytes()
    manifest = json.loads((remote.path / "manifest.json").read_text())
    assert manifest["build"]["embedder"] == {"kind": "shuffled-fake"}
    assert "embedder" not in json.loads((local.path / "manifest.json").read_text())["build"]
    # the vectors went into the embedding cache: a local rebuild embeds nothing, and needs no encoder
    keys = {text_key(passage_text(c)) for c in corpus.chunks}
    cache = EmbeddingCache(tmp_path / "remote" / "cache" / "embeddings.sqlite", enc.fingerprint, enc.dim)
    assert set(cache.get_many(keys)) == keys
    again = build_index(corpus, tmp_path / "remote", info, no_local_encoder, reuse_indexes=False)
    assert again.embedded == 0 and again.cached == again.chunks


def test_builder_refuses_an_embedder_of_another_model_or_a_short_answer(tmp_path: Path) -> None:
    raw = _seeds(tmp_path)
    enc = FakeEncoder()
    corpus = load_chunked_corpus(raw)
    other = ModelInfo("other", "", "other-model", enc.dim, enc.max_tokens, "fake")
    with pytest.raises(ValueError, match="is not the model"):
        build_index(corpus, tmp_path / "a", other, lambda: enc, embedder=ShuffledEmbedder(enc))
    info = ModelInfo(enc.model_name, "", enc.fingerprint, enc.dim, enc.max_tokens, "fake")
    with pytest.raises(RuntimeError, match="no vector for"):
        build_index(corpus, tmp_path / "b", info, lambda: enc, embedder=ShuffledEmbedder(enc, drop=1))


def test_cli_ray_options_are_checked_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from service.cli import main

    assert main(["index", "build", "--ray-actors", "2"]) == 2
    assert "--ray-actors" in capsys.readouterr().err
    if not HAS_RAY:
        assert main(["index", "build", "--ray", "auto"]) == 2
        assert "pip install 'policyqa[ray]'" in capsys.readouterr().err


def test_importing_the_module_does_not_import_ray() -> None:
    code = "import sys, index.raybuild, service.cli, service.engine; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


# --- on a local Ray cluster --------------------------------------------------------------------------------

REGULATIONS = 3  # each adds ~36 chunks to the 94 seed chunks; bench/bench_raybuild.py takes all 249


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not HAS_RAY:
        pytest.skip("ray is not installed: pip install -e '.[ray]' (the optional `ray` extra)")
    from bench.raycluster import LocalRayCluster

    c = LocalRayCluster(tmp_path_factory.mktemp("ray"), workers=2, cpus_per_worker=1)
    c.start()
    yield c
    c.stop()


def _build(env: dict[str, str], *extra: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "service.cli", "index", "build", "--json", "-q", *extra],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_cluster_build_equals_local_build(cluster: Any, tmp_path: Path, model_dir: Path) -> None:
    from bench.raycluster import corpus_dir, regulations_dir

    if not regulations_dir().is_dir():
        pytest.skip(f"the regulations are not at {regulations_dir()} (../shared beside the clone)")
    docs, n = corpus_dir(tmp_path / "documents", REGULATIONS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYQA_")}
    env.update({"POLICYQA_DATA_DIR": str(tmp_path / "data"), "POLICYQA_CORPUS_DIR": str(docs),
                "POLICYQA_MODEL_DIR": str(model_dir), "HF_HUB_OFFLINE": "1"})
    ray_run = _build({**env, "POLICYQA_INDEX_DIR": str(tmp_path / "index-ray")}, "--ray", cluster.address)
    local = _build({**env, "POLICYQA_INDEX_DIR": str(tmp_path / "index-local")})
    assert n == REGULATIONS and ray_run["chunks"] == local["chunks"] > 94 + 10 * REGULATIONS
    assert ray_run["embedded"] == local["embedded"] == local["chunks"]  # no cache: all embedded, by the cluster
    assert not ray_run["encoder_loaded"] and local["encoder_loaded"]

    a, b = Path(ray_run["path"]), Path(local["path"])
    for name in ("chunks.jsonl", "documents.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ma, mb = (json.loads((p / "manifest.json").read_text()) for p in (a, b))
    build_a, build_b = ma.pop("build"), mb.pop("build")
    for m in (ma, mb):
        del m["generation"], m["created_at"]
    assert ma == mb
    assert {k: build_a[k] for k in ("embedded", "cached")} == {k: build_b[k] for k in ("embedded", "cached")}
    assert build_a["embedder"]["kind"] == "ray" and build_a["embedder"]["nodes"] == 3
    assert build_a["embedder"]["actors"] == 2 and build_a["embedder"]["cluster_cpus"] == 2

    # the int8 encoder runs one text per call, so a vector depends on its text alone: the same model file
    # on the same CPU gives the same vector (0.9999 is test_encoders' "same model" floor; int8 vs fp32 is 0.99)
    va, vb = _vectors(a), _vectors(b)
    assert va.shape == vb.shape == (local["chunks"], 384)
    cos = (va * vb).sum(axis=1)
    assert cos.min() >= 0.9999, float(cos.min())
    np.testing.assert_allclose(va, vb, atol=1e-5)

    # the model went to the nodes through the object store: each worker node wrote its own checked copy
    for i in (1, 2):
        copies = list((cluster.node_tmp(i) / "policyqa-ray-models").glob("onnx-int8-*/.complete"))
        assert len(copies) == 1 and ma["model"]["fingerprint"].startswith(copies[0].read_text()[:16])
