"""What the routes share: the engine, the document store, rebuild jobs, the index watcher and the metrics,
reached through FastAPI dependencies (`Depends(context)`, `Depends(loaded_index)`).

The port opens before anything heavy happens: the watcher loads the index (or starts the job that builds
the first one) in the background, and `/readyz` reports its progress until an index is loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import Request

from corpus.documents import seed_documents
from index.generations import IndexCorrupt, IndexError_, IndexMismatch, IndexNotFound, current_generation
from index.store import LoadedIndex
from service.api.errors import ApiError
from service.api.metrics import AppMetrics
from service.docstore import DocumentStore
from service.jobs import Job, JobRunner
from service.logbook import Logbook
from service.settings import Settings

if TYPE_CHECKING:
    from service.engine import Engine

log = logging.getLogger("policyqa")

REFRESH_EVERY_S = 1.0
RETRY_AFTER_S = 5
TIDY_EVERY_S = 300.0
WARMUP_QUERY = "党建引领基层治理"

# What a server that is not ready yet is doing, in the order a first start goes through them (/readyz's
# `stage`). building_index counts chunks (done/total); the others have no count (0/0).
STAGES = ("starting", "preparing_model", "building_index", "loading_index", "assembling_reader", "warming_up",
          "failed")
STAGE_MESSAGES: dict[str, tuple[str, str]] = {
    "starting": ("服务正在启动", "the service is starting"),
    "preparing_model": ("正在准备模型", "preparing the embedding model"),
    "loading_index": ("正在加载索引", "loading the index"),
    "assembling_reader": ("正在组装阅读模型", "assembling the reader model"),
    "warming_up": ("正在预热模型", "warming up the models"),
    "failed": ("索引建立失败", "the index build failed"),
}


def stage_message(r: dict[str, Any]) -> tuple[str, str]:
    """(Chinese, English) for a not-ready /readyz body: the stage, with the build's chunk count."""
    if r["stage"] == "building_index":
        return (f"正在建立索引（{r['done']}/{r['total']}）", f"building the index ({r['done']}/{r['total']} chunks)")
    return STAGE_MESSAGES.get(r["stage"], STAGE_MESSAGES["starting"])


class IndexWatcher:
    """Loads the index in the background and follows the CURRENT pointer afterwards.

    With no index yet (a first start) it starts the rebuild job that builds one at once and becomes ready
    when that job's generation appears; with an unusable one (another model, encoder or lexicon, or a
    corrupt generation) it does the same after trying to load it.
    """

    def __init__(self, engine: Engine, jobs: JobRunner, metrics: AppMetrics) -> None:
        self.engine = engine
        self.jobs = jobs
        self.metrics = metrics
        self.generation: str | None = None
        self.error: str | None = None
        self.job_id: str | None = None  # the job building the index this server waits for
        self.started = False
        self.stage: str | None = None  # what this process is doing before it is ready (None: waiting for a job)
        self._failed: Path | None = None

    def startup(self) -> None:
        try:
            if current_generation(self.engine.settings.index_dir) is None:
                raise IndexNotFound(f"no index in {self.engine.settings.index_dir}")
            self._prepare_model()
            self.stage = "loading_index"
            idx = self.engine.load()
        except (IndexNotFound, IndexMismatch, IndexCorrupt) as exc:
            self._build_first(exc.message)
            return
        except IndexError_ as exc:
            self.error = str(exc)
            log.warning("not ready: %s", exc)
            return
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("index loading failed")
            return
        finally:
            self.started = True
        self._warm_up()
        self._loaded(idx)

    def _prepare_model(self) -> None:
        """An index is there but the model folder is not (removed, or another data directory): prepare it now,
        under its own stage rather than as part of loading the index."""
        from index.modelprep import is_complete

        settings = self.engine.settings
        if settings.embedding_model is None and not is_complete(settings.model_dir):
            self.stage = "preparing_model"
            self.engine.model_dir()

    def _build_first(self, why: str) -> None:
        self.stage = None  # the job's progress says what happens next
        job, started = self.jobs.start()
        self.job_id = job.job_id
        self.error = f"{why}: building a new generation (job {job.job_id})"
        log.warning("no usable index in %s (%s): %s rebuild job %s; ready when it finishes",
                    self.engine.settings.index_dir, why, "started" if started else "waiting for", job.job_id)

    def _warm_up(self) -> None:
        """Load the encoder, jieba and the reader now rather than on the first request (assembling the reader
        first on a new machine: its own stage, ~15 s)."""
        try:
            from index.reader.assemble import reader_complete

            if not reader_complete(self.engine.settings.reader_dir):
                self.stage = "assembling_reader"
                self.engine.reader  # noqa: B018 - assembles it
        except Exception:
            log.exception("assembling the reader failed")
        self.stage = "warming_up"
        try:
            self.engine.answer(WARMUP_QUERY, 1, "hybrid", answer_mode="extractive")  # never pays an LLM
        except Exception:
            log.exception("warm-up query failed")

    def _loaded(self, idx: LoadedIndex) -> None:
        self.generation = idx.generation
        self.error = None
        self._failed = None
        self.metrics.index_loaded(idx.generation, len(idx.chunks))

    def check(self, *, first: bool = True) -> None:
        """Switch to a newer generation if there is one; a broken one is logged once and skipped.

        ``first=False`` (a request's check) leaves the first index to the background watcher: loading it
        includes the warm-up (the encoder's and reader's ONNX sessions, a first answer), seconds that a request
        doing it would wait (measured 5.6 s here, past a 10 s client timeout in CI) instead of a 503 at once."""
        if not self.started or (self.generation is None and not first):
            return
        try:
            current = current_generation(self.engine.settings.index_dir)
        except IndexCorrupt as exc:
            self.error = str(exc)
            return
        if current is None or current == self._failed:
            return
        idx = self._engine_index()
        if idx is not None and idx.path == current:  # the common case: nothing new (one file read)
            if idx.generation != self.generation:
                self._loaded(idx)
            return
        if self.generation is None:
            self.stage = "loading_index"
        try:
            self.engine.refresh()
        except Exception as exc:
            if self.generation is None:
                self.stage = None
            self._failed = current
            self.error = f"generation {current.name} not loaded: {exc}"
            log.error("could not switch to index generation %s: %s (still serving %s)", current.name, exc,
                      self.generation)
            return
        idx = self._engine_index()
        if idx is not None and idx.generation != self.generation:
            if self.generation is None:
                self._warm_up()
            self._loaded(idx)

    def _engine_index(self) -> LoadedIndex | None:
        idx: LoadedIndex | None = getattr(self.engine, "_index", None)
        return idx

    def loaded(self) -> LoadedIndex | None:
        """The index requests are answered from; None until the first one is loaded and warmed up."""
        return None if self.generation is None else self._engine_index()

    def readiness(self) -> dict[str, Any]:
        """/readyz's body: ready with the generation, or the stage a start is in (`STAGES`) with its own
        progress: the first build's chunks done/total (its inner step: embed, dense, sparse), else 0/0."""
        idx = self.loaded()
        if idx is not None:
            return {"status": "ready", "state": "ready", "generation": idx.generation}
        out: dict[str, Any] = {"state": "starting", "stage": self.stage or "starting", "done": 0, "total": 0,
                               "step": None, "job_id": self.job_id}
        job: Job | None = self.jobs.active() if self.job_id is None else self.jobs.get(self.job_id)
        if job is not None:
            out["job_id"] = job.job_id
            if not job.finished:
                out["state"] = "building"
            elif job.state == "failed":
                out["state"] = out["stage"] = "failed"
                self.error = (job.error or {}).get("message") or "rebuild failed"
            if self.stage is None and not job.finished:
                step = job.progress.stage
                if step == "preparing_model":
                    out["stage"] = "preparing_model"
                else:
                    out.update(stage="building_index", step=step, done=job.progress.done,
                               total=job.progress.total)
            elif self.stage is None and job.state == "succeeded":
                out["stage"] = "loading_index"  # published; the watcher picks it up within a second
        out["reason"] = self.error
        return out

    async def run(self) -> None:
        await anyio.to_thread.run_sync(self.startup)
        while True:
            await asyncio.sleep(REFRESH_EVERY_S)
            try:
                await anyio.to_thread.run_sync(self.check)
            except Exception:  # pragma: no cover - check() already catches
                log.exception("index watcher")


class AutoRebuild:
    """Starts a rebuild once documents stop changing for `delay_s` (POLICYQA_AUTO_REBUILD).

    A change made while a rebuild runs that started before it is not in that rebuild: another one follows
    when it ends. Several workers each schedule their own; the job store lets only one job run at a time.
    """

    def __init__(self, jobs: JobRunner, delay_s: float, on_start: Any = None) -> None:
        self.jobs = jobs
        self.delay_s = delay_s
        self.on_start = on_start
        self._changed_at: float | None = None  # wall clock of the oldest change not yet in a started job
        self._due = 0.0
        self._lock = threading.Lock()

    def changed(self) -> None:
        with self._lock:
            if self._changed_at is None:
                self._changed_at = time.time()
            self._due = time.monotonic() + self.delay_s

    @property
    def pending(self) -> bool:
        return self._changed_at is not None

    def tick(self) -> Job | None:
        """Start the rebuild when it is due (called about every quarter second). Returns a started job."""
        with self._lock:
            if self._changed_at is None or time.monotonic() < self._due:
                return None
            changed_at = self._changed_at
        job, started = self.jobs.start()
        if not started and job.created_at < changed_at:
            return None  # a rebuild that read the documents before the change: wait for it to end
        with self._lock:
            if self._changed_at == changed_at:
                self._changed_at = None
        if started and self.on_start is not None:
            self.on_start(job)
        return job if started else None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            if self.pending:
                try:
                    await anyio.to_thread.run_sync(self.tick)
                except Exception:
                    log.exception("automatic rebuild")


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    store: DocumentStore
    jobs: JobRunner
    watcher: IndexWatcher
    auto: AutoRebuild | None
    metrics: AppMetrics = field(default_factory=AppMetrics)
    logbook: Logbook | None = None  # the question log and feedback (service/logbook.py)

    def start_job(self) -> tuple[Job, bool]:
        job, started = self.jobs.start()
        if started:
            self.metrics.rebuilds.inc()
        return job, started

    def documents_changed(self) -> None:
        if self.auto is not None:
            self.auto.changed()

    def tidy(self) -> None:
        """Remove what writes cut short by a crash left behind (never acknowledged: nothing is lost)."""
        for name in self.store.remove_stale_temporaries() + self.jobs.store.remove_stale_temporaries():
            log.info("removed a temporary file left by an interrupted write: %s", name)

    async def _tidy_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await anyio.to_thread.run_sync(self.tidy)
            except Exception:
                log.exception("tidying temporary files")

    def first_start(self) -> None:
        """Seed the documents folder before anything can write to it: an add that created the folder first
        would leave the embedded articles out for good."""
        if seed_documents(self.settings.corpus_dir):
            log.info("seeded %s with the embedded articles", self.settings.corpus_dir)
        self.tidy()

    async def background(self) -> list[asyncio.Task[None]]:
        await anyio.to_thread.run_sync(self.first_start)
        tasks = [asyncio.create_task(self.watcher.run()), asyncio.create_task(self._tidy_every(TIDY_EVERY_S))]
        if self.auto is not None:
            tasks.append(asyncio.create_task(self.auto.run()))
        return tasks


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --- dependencies ---------------------------------------------------------------------------------------


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def not_ready(ctx: AppContext) -> ApiError:
    r = ctx.watcher.readiness()
    zh, en = stage_message(r)
    return ApiError(503, "not_ready", f"{zh}，请稍后再试", f"not ready: {en}; try again shortly",
                    detail={k: r.get(k) for k in ("state", "stage", "done", "total", "job_id")},
                    headers={"Retry-After": str(RETRY_AFTER_S)})


def loaded_index(request: Request) -> LoadedIndex:
    """The index a question is answered from, switching to a newer generation first; 503 + Retry-After
    while there is none."""
    ctx = context(request)
    ctx.watcher.check(first=False)
    idx = ctx.watcher.loaded()
    if idx is None:
        raise not_ready(ctx)
    return idx
