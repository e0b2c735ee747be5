"""The encoder backends against each other (real model, no fakes): the ONNX export matches torch fp32, the
int8 variant passes the quality gate, the ONNX serving path never imports torch, and an index refuses
queries encoded by another variant than its passages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import READER_DIR

from index.builder import passage_text
from index.embedcache import EmbeddingCache, text_key
from index.encoders import BaseEncoder, load_encoder
from index.generations import EncoderMismatch
from index.store import load_index
from service.engine import Engine
from service.settings import Settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
LONG_TEXT = "江门市有21万多名党员，分布在各级基层党组织中，积极参与百千万工程和网格化服务管理。" * 40


def _questions() -> list[str]:
    out = []
    for name in ("seeds-dev", "seeds-calib"):
        with (REPO / "eval" / "sets" / f"{name}.jsonl").open(encoding="utf-8") as fh:
            out += [json.loads(line)["question"] for line in fh if line.strip()]
    return out


@pytest.fixture(scope="module")
def encoders(model_dir: Path) -> dict[str, BaseEncoder]:
    return {b: load_encoder(model_dir, b, query_cache=0) for b in ("torch", "onnx", "onnx-int8")}


@pytest.fixture(scope="module")
def texts(seed_corpus: object) -> tuple[list[str], list[str]]:
    passages = [passage_text(c) for c in seed_corpus.chunks]  # type: ignore[attr-defined]
    return passages, _questions()


@pytest.fixture(scope="module")
def passage_vectors(encoders: dict[str, BaseEncoder], texts: tuple[list[str], list[str]]) -> dict[str, np.ndarray]:
    """Every seed chunk embedded by each backend, once: the gate compares them, and the index builds below
    start from them (`_seed_cache`) instead of embedding the same passages again."""
    return {b: enc.encode_passages(texts[0]) for b, enc in encoders.items()}


def _seed_cache(index_dir: Path, enc: BaseEncoder, passages: list[str], vectors: np.ndarray) -> None:
    """What a build of these passages with `enc` would put in the index folder's embedding cache."""
    cache = EmbeddingCache(index_dir / "cache" / "embeddings.sqlite", enc.fingerprint, enc.dim)
    cache.put_many({text_key(t): v for t, v in zip(passages, vectors, strict=True)})


def test_onnx_variants_against_torch_fp32(encoders: dict[str, BaseEncoder], texts: tuple[list[str], list[str]],
                                          passage_vectors: dict[str, np.ndarray]) -> None:
    """The gate: over >= 300 real texts (every seed chunk as embedded, every seeds-dev/calib question), fp32
    ONNX is the same model (cosine >= 0.9999) and int8 stays within cosine 0.99 of torch fp32."""
    passages, questions = texts
    assert len(passages) + len(questions) >= 300
    ref = np.concatenate([passage_vectors["torch"], encoders["torch"].encode_queries(questions)])
    for backend, floor in (("onnx", 0.9999), ("onnx-int8", 0.99)):
        enc = encoders[backend]
        got = np.concatenate([passage_vectors[backend], enc.encode_queries(questions)])
        assert got.dtype == np.float32 and got.shape == ref.shape
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
        cos = (got * ref).sum(axis=1)
        assert cos.min() >= floor, (backend, float(cos.min()))


def test_onnx_tokens_truncation_and_padding_match_torch(encoders: dict[str, BaseEncoder]) -> None:
    torch_enc, onnx_enc = encoders["torch"], encoders["onnx"]
    for text in ("", "江门市有多少党员？", "tab\tand\r\nbreaks", "ＥＭＳ ①②③", LONG_TEXT):
        for query in (True, False):
            assert onnx_enc.count_tokens(text, query=query) == torch_enc.count_tokens(text, query=query)
    assert onnx_enc.truncates(LONG_TEXT, query=False) and onnx_enc.max_tokens == 512
    # a text past the window is cut the way sentence-transformers cuts it
    a, b = onnx_enc.encode_passages([LONG_TEXT]), torch_enc.encode_passages([LONG_TEXT])
    assert float((a * b).sum()) >= 0.9999
    # padding inside a batch of mixed lengths changes nothing
    mixed = ["网格员", LONG_TEXT[:300], "Ⅳ级应急响应", LONG_TEXT[:90]]
    for enc in (onnx_enc, encoders["onnx-int8"]):
        batched = enc.encode_passages(mixed, batch_size=4)
        single = np.vstack([enc.encode_passages([t]) for t in mixed])
        assert ((batched * single).sum(axis=1)).min() >= 0.9999


def test_variants_have_their_own_fingerprints(encoders: dict[str, BaseEncoder], model_dir: Path) -> None:
    manifest = json.loads((model_dir / "onnx" / "policyqa_onnx.json").read_text(encoding="utf-8"))
    assert encoders["onnx"].fingerprint == manifest["variants"]["onnx"]["sha256"]
    assert encoders["onnx-int8"].fingerprint == manifest["variants"]["onnx-int8"]["sha256"]
    assert len({e.fingerprint for e in encoders.values()}) == 3
    assert [e.backend for e in encoders.values()] == ["torch", "onnx", "onnx-int8"]


def test_retrieval_quality_of_int8_matches_torch(real_engine: Engine, tmp_path_factory: pytest.TempPathFactory,
                                                 model_dir: Path, encoders: dict[str, BaseEncoder],
                                                 texts: tuple[list[str], list[str]],
                                                 passage_vectors: dict[str, np.ndarray]) -> None:
    """seeds-dev: hybrid hit@1 and hit@5 with the int8 index within 0.005 of the torch fp32 index."""
    settings = Settings(index_dir=tmp_path_factory.mktemp("torch-index"), model_dir=model_dir,  # type: ignore[call-arg]
                        encoder_backend="torch", query_cache=0)
    _seed_cache(settings.index_dir, encoders["torch"], texts[0], passage_vectors["torch"])
    torch_engine = Engine(settings, encoder=encoders["torch"])
    build = torch_engine.build()
    assert build.embedded == 0  # the torch vectors of the gate above, not a second embedding of the same text
    torch_engine.load()
    rows = [json.loads(line) for line in (REPO / "eval/sets/seeds-dev.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    rows = [r for r in rows if r.get("gold_docs")]
    assert real_engine.index.manifest["encoder"]["backend"] == "onnx-int8"
    assert torch_engine.index.manifest["encoder"]["backend"] == "torch"
    hits: dict[str, dict[int, float]] = {}
    for name, engine in (("torch", torch_engine), ("onnx-int8", real_engine)):
        found = {1: 0, 5: 0}
        for r in rows:
            ranked = [h.doc_id for h in engine.search(r["question"], 5, "hybrid").results]
            for k in found:
                found[k] += any(d in r["gold_docs"] for d in ranked[:k])
        hits[name] = {k: v / len(rows) for k, v in found.items()}
    for k in (1, 5):
        assert hits["onnx-int8"][k] >= hits["torch"][k] - 0.005, hits


def test_index_refuses_another_encoder_variant(real_engine: Engine, model_dir: Path, tmp_path: Path,
                                               encoders: dict[str, BaseEncoder], texts: tuple[list[str], list[str]],
                                               passage_vectors: dict[str, np.ndarray]) -> None:
    """Decided: mixing variants is refused (EncoderMismatch says how to rebuild); ensure_index rebuilds."""
    root = real_engine.settings.index_dir
    with pytest.raises(EncoderMismatch) as info:
        load_index(root, backend="onnx")
    assert "POLICYQA_ENCODER_BACKEND=onnx-int8" in info.value.hint and "policyqa index build" in info.value.hint
    assert info.value.code == "encoder_mismatch"

    other = Settings(index_dir=tmp_path / "index", model_dir=model_dir, encoder_backend="onnx")  # type: ignore[call-arg]
    import shutil

    shutil.copytree(root, other.index_dir, symlinks=True)
    _seed_cache(other.index_dir, encoders["onnx"], texts[0], passage_vectors["onnx"])
    engine = Engine(other)
    with pytest.raises(EncoderMismatch):
        engine.load()
    loaded = engine.ensure_index()  # rebuilds with the configured variant
    assert loaded.manifest["encoder"]["backend"] == "onnx"
    assert loaded.manifest["model"]["fingerprint"] == engine.encoder.fingerprint
    assert loaded.generation != real_engine.index.generation


def test_onnx_serving_path_never_imports_torch(model_dir: Path, tmp_path: Path) -> None:
    """`policyqa index build`, `ask` and `search` on the default backend, in a fresh process: no torch or
    transformers imported (they are most of the torch backend's cold start)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYQA_")}
    env.update({"POLICYQA_DATA_DIR": str(tmp_path / "data"), "POLICYQA_INDEX_DIR": str(tmp_path / "index"),
                "POLICYQA_MODEL_DIR": str(model_dir), "POLICYQA_READER_DIR": str(READER_DIR),
                "PYTHONPATH": str(REPO)})
    code = (
        "import contextlib, io, json, sys\n"
        "from service.cli import main\n"
        "rc = main(['index', 'build', '-q'])\n"
        "rc = rc or main(['ask', '江门市有多少名党员？', '--json'])\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    rc = rc or main(['search', '党群服务中心', '--json'])\n"
        "print('SEARCH_TIMINGS', sorted(json.loads(out.getvalue())['timings_ms']))\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(rc or (3 if heavy else 0))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "HEAVY []" in done.stdout
    assert "21万" in done.stdout
    # `policyqa search --json` carries the stage timings like /v1/search and /v1/ask
    assert "SEARCH_TIMINGS ['dense', 'encode', 'fuse', 'sparse', 'total']" in done.stdout


def test_any_sentence_transformers_folder_gets_its_own_onnx_export(model_dir: Path, tmp_path: Path) -> None:
    """POLICYQA_EMBEDDING_MODEL with an ONNX backend: the folder is exported once, into its own onnx/; the
    export is deterministic, so the same weights give the same int8 file as the default model's."""
    from index.encoders.variants import backend_fingerprint

    other = tmp_path / "other-model"
    other.mkdir()
    for entry in model_dir.iterdir():
        if entry.name not in ("onnx", "policyqa_model.json"):
            (other / entry.name).symlink_to(entry)
    engine = Engine(Settings(index_dir=tmp_path / "index", embedding_model=other))  # type: ignore[call-arg]
    assert engine.model_dir() == other
    assert (other / "onnx" / "model_int8.onnx").is_file()
    assert backend_fingerprint(other, "onnx-int8") == backend_fingerprint(model_dir, "onnx-int8")
    assert engine.encoder.backend == "onnx-int8" and engine.encoder.dim == 384
