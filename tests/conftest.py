"""Shared fixtures. Heavy ones (real model, real index, a live server) are session-scoped and built once.

The live HTTP server (`LiveServer`, fixture `server`) is a real uvicorn server in a subprocess on a free
127.0.0.1 port. The session's shared one serves tests/test_app.py and tests/test_openapi_fuzz.py; other
tests start their own from the same parts (tests/test_web.py, the no-token and two-worker servers).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from service.engine import Engine

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests also run from a plain checkout
    sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from corpus.pipeline import ChunkedCorpus, load_chunked_corpus  # noqa: E402
from service.server import WORKER_HEALTHCHECK_S  # noqa: E402

ARTIFACTS = REPO / "tests" / "artifacts"
SEED_CORPUS = REPO / "corpus" / "seeds"
READER_DIR = REPO / "index" / "models" / "reader"  # the reader assembled once for the whole suite
# Settings made in this process read only the seeds and write under tests/artifacts, never the user's data
# directory; the prepared e5 folder and reader are shared with eval and bench (index/models, git-ignored).
os.environ.setdefault("POLICYQA_DATA_DIR", str(ARTIFACTS / "data"))
os.environ.setdefault("POLICYQA_CORPUS_DIR", str(SEED_CORPUS))
os.environ.setdefault("POLICYQA_MODEL_DIR", str(REPO / "index" / "models" / "multilingual-e5-small"))
os.environ.setdefault("POLICYQA_READER_DIR", str(READER_DIR))


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
def real_engine(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Engine:
    """The real model and a real FAISS + BM25 index over the seed corpus, built once per test session."""
    from service.engine import Engine
    from service.settings import Settings

    index_dir = tmp_path_factory.mktemp("index")
    share_embedding_cache(index_dir)
    settings = Settings(index_dir=index_dir, model_dir=model_dir)
    engine = Engine(settings)
    engine.build()
    engine.load()
    return engine


# --- a live HTTP server --------------------------------------------------------------------------------

HTTP_CACHE_DIR = ARTIFACTS / "http-embedding-cache"  # shared embedding cache: only new text is embedded
ADMIN_TOKEN = "test-" + secrets.token_hex(16)
START_TIMEOUT_S = 900.0  # a first start on a fresh machine prepares the model and embeds the corpus
FACTORY = "service.api.app:app_from_env"


def share_embedding_cache(index_dir: Path) -> None:
    """Point an index folder's embedding cache at the suite's shared one: a build embeds only text no build of
    this or an earlier run embedded (the seed corpus is embedded once per clone, not once per server)."""
    HTTP_CACHE_DIR.mkdir(parents=True, exist_ok=True)
    index_dir.mkdir(parents=True, exist_ok=True)
    (index_dir / "cache").symlink_to(HTTP_CACHE_DIR, target_is_directory=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Workspace:
    """A server's own folders: a copy of the seed corpus and an index folder (empty at first)."""

    root: Path
    corpus_dir: Path
    index_dir: Path

    def env(self, admin_token: str | None = ADMIN_TOKEN, **extra: str) -> dict[str, str]:
        from index.modelprep import DEFAULT_MODEL_DIR

        env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYQA_")}
        env.update({"POLICYQA_DATA_DIR": str(self.root), "POLICYQA_CORPUS_DIR": str(self.corpus_dir),
                    "POLICYQA_INDEX_DIR": str(self.index_dir), "POLICYQA_MODEL_DIR": str(DEFAULT_MODEL_DIR),
                    "POLICYQA_READER_DIR": str(READER_DIR), "POLICYQA_LOG_LEVEL": "info",
                    "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
        if admin_token:
            env["POLICYQA_ADMIN_TOKEN"] = admin_token
        env.update(extra)
        return env

    def jobs(self) -> list[dict[str, Any]]:
        out = []
        for p in sorted((self.index_dir / "jobs").glob("j*.json")):
            try:
                out.append(json.loads(p.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return out

    def kill_rebuild_children(self) -> None:
        """Rebuild children run in their own session; stop any still running (test teardown)."""
        for job in self.jobs():
            if job.get("state") in ("queued", "running") and job.get("pid"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(job["pid"]), signal.SIGKILL)


def make_workspace(root: Path) -> Workspace:
    from index.modelprep import DEFAULT_MODEL_DIR, ensure_model

    ensure_model(DEFAULT_MODEL_DIR)
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    for p in SEED_CORPUS.glob("*.md"):
        shutil.copy2(p, corpus / p.name)
    index = root / "index"
    share_embedding_cache(index)
    return Workspace(root, corpus, index)


def no_traceback(response: httpx.Response) -> None:
    response.read()
    assert b"Traceback" not in response.content, response.text[:2000]


class LiveServer:
    """A server subprocess in its own session (so kill -9 reaches its workers too), logging to a file.

    By default `python -m service.server` (the code path of `policyqa serve`); with `factory`, uvicorn
    runs that app factory (`uvicorn --factory service.api.app:app_from_env`).
    """

    def __init__(self, workspace: Workspace, env: dict[str, str], name: str = "server", workers: int = 1,
                 factory: str | None = None) -> None:
        self.workspace = workspace
        self.env = env
        self.name = name
        self.workers = workers
        self.factory = factory
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workspace.root / f"{name}.log"
        self.responses = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_token(self) -> str | None:
        return self.env.get("POLICYQA_ADMIN_TOKEN")

    def command(self) -> list[str]:
        where = ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]
        if self.factory:
            # as policyqa serve does (service/server.py): a worker busy starting is not taken for a dead one
            return [sys.executable, "-m", "uvicorn", "--factory", self.factory, *where,
                    "--timeout-worker-healthcheck", str(WORKER_HEALTHCHECK_S)]
        return [sys.executable, "-m", "service.server", *where]

    def launch(self) -> None:
        """Start the process (without waiting for anything)."""
        self.port = free_port()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.command(), cwd=REPO, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start and wait for /readyz; until then it may only refuse connections or answer 503 not_ready."""
        self.launch()
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=10) as c:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    r = c.get("/readyz")
                except httpx.TransportError:
                    r = None
                if r is not None and r.status_code == 200:
                    return
                if r is not None and (r.status_code != 503 or r.json()["error"]["code"] != "not_ready"):
                    self.kill()
                    raise RuntimeError(f"{self.name}: /readyz answered {r.status_code} {r.text[:500]}")
                time.sleep(0.3)
        self.kill()
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)  # the server and its uvicorn workers (its own session)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def log_tail(self, n: int = 6000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-n:]
        except OSError:
            return ""

    def client(self, token: str | None = None, timeout: float = 120.0, **kwargs: Any) -> httpx.Client:
        """An httpx client that fails any response carrying a traceback."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, timeout=timeout, headers=headers,
                            event_hooks={"response": [no_traceback, self._count]}, **kwargs)

    def _count(self, response: httpx.Response) -> None:
        self.responses += 1


@contextlib.contextmanager
def running(server: LiveServer, timeout: float = START_TIMEOUT_S) -> Iterator[LiveServer]:
    """Start the server; stop it (and any rebuild child it left running) afterwards."""
    try:
        server.start(timeout)
        yield server
    finally:
        server.stop()
        server.workspace.kill_rebuild_children()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The session's shared server (tests/test_app.py, tests/test_openapi_fuzz.py), started on first use.

    `policyqa serve` on a copy of the seed corpus with an empty index folder, so its first start builds
    the index (the path a new machine takes). Admin routes take ADMIN_TOKEN. Automatic rebuilds are off
    here, so the tests of rebuild jobs start each one themselves; tests/test_server.py tests them on.
    """
    ws = make_workspace(tmp_path_factory.mktemp("http"))
    with running(LiveServer(ws, ws.env(POLICYQA_AUTO_REBUILD="false"))) as live:
        yield live
