"""Shared fixtures. Heavy ones (real model, real index) are session-scoped and built once."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests also run from a plain checkout
    sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from corpus.pipeline import ChunkedCorpus, load_chunked_corpus  # noqa: E402

ARTIFACTS = REPO / "tests" / "artifacts"


@pytest.fixture(scope="session")
def seed_corpus() -> ChunkedCorpus:
    return load_chunked_corpus()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def model_dir() -> Path:
    from index.modelprep import DEFAULT_MODEL_DIR, ensure_model

    return ensure_model(DEFAULT_MODEL_DIR)


@pytest.fixture(scope="session")
def real_engine(tmp_path_factory: pytest.TempPathFactory, model_dir: Path):  # type: ignore[no-untyped-def]
    """The real model and a real FAISS + BM25 index over the seed corpus, built once per test session."""
    from service.engine import Engine
    from service.settings import Settings

    settings = Settings(index_dir=tmp_path_factory.mktemp("index"), model_dir=model_dir)
    engine = Engine(settings)
    engine.build()
    engine.load()
    return engine
