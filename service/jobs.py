"""Index rebuild jobs: one low-priority child process at a time, state kept in files every worker reads.

`<index_dir>/jobs/<job_id>.json` holds a job's state (queued → running → succeeded | failed), written
atomically (temp file, fsync, rename) by whoever owns it at that moment: the starting worker while the
job is queued, the child process while it runs. `<job_id>.lock` is flock-ed by the child for its whole
life (the starting worker takes the lock before spawning and hands the file descriptor over), so any
worker can tell a live job from one whose process died (kill -9, OOM): such a job is marked failed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from index.generations import fsync_dir, remove_old_files
from service.settings import Settings, load_settings

log = logging.getLogger("policyqa.jobs")

STATES = ("queued", "running", "succeeded", "failed")
TERMINAL = frozenset({"succeeded", "failed"})
JOB_ID_RE = re.compile(r"^j[0-9]{8}t[0-9]{6}-[0-9a-f]{8}$")
KEEP_JOBS = 50
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class JobProgress:
    done: int = 0
    total: int = 0
    stage: str = "queued"


@dataclass(frozen=True)
class Job:
    job_id: str
    state: str
    progress: JobProgress = field(default_factory=JobProgress)
    error: dict[str, str] | None = None
    generation: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    pid: int | None = None

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def public(self) -> dict[str, Any]:
        """What the API returns (the child's pid stays internal)."""
        d = self.to_dict()
        d.pop("pid", None)
        for k in ("created_at", "started_at", "finished_at"):
            d[k] = _iso(d[k])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        p = data.get("progress") or {}
        return cls(job_id=str(data["job_id"]), state=str(data["state"]),
                   progress=JobProgress(int(p.get("done", 0)), int(p.get("total", 0)), str(p.get("stage", ""))),
                   error=data.get("error"), generation=data.get("generation"),
                   created_at=float(data.get("created_at") or 0.0), started_at=data.get("started_at"),
                   finished_at=data.get("finished_at"), pid=data.get("pid"))


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def new_job_id() -> str:
    return time.strftime("j%Y%m%dt%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def env_settings() -> Settings:
    """Settings from the POLICYQA_* environment (pydantic-settings fills every field)."""
    return load_settings()


def settings_env(settings: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment that recreates `settings` in another process (`Settings()` reads POLICYQA_*)."""
    env = dict(os.environ if base is None else base)
    for name, value in settings.model_dump().items():
        key = f"POLICYQA_{name.upper()}"
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    # `python -m service.rebuild` must find this package even when it is not installed
    paths = [str(REPO_ROOT), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


class JobStore:
    """Job files under `<index_dir>/jobs/`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.json"

    def lock_path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.lock"

    def read(self, job_id: str) -> Job | None:
        if not JOB_ID_RE.match(job_id):
            return None
        try:
            data = json.loads(self.path(job_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("unreadable job file %s: %s", job_id, exc)
            return None
        return Job.from_dict(data)

    def write(self, job: Job) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{job.job_id}.json.tmp-{os.getpid()}-{threading.get_ident()}"
        try:
            with tmp.open("w", encoding="utf-8") as f:
                json.dump(job.to_dict(), f, ensure_ascii=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path(job.job_id))
        except BaseException:
            with contextlib.suppress(OSError):  # a full disk must not leave a temporary file behind
                tmp.unlink()
            raise
        fsync_dir(self.root)

    def alive(self, job_id: str) -> bool:
        """True while the job's process holds its lock file."""
        try:
            fd = os.open(self.lock_path(job_id), os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops our shared lock, if we got it
        return False

    def status(self, job_id: str, *, exit_code: int | None = None) -> Job | None:
        """The job's state; a non-finished job whose process is gone is marked failed first."""
        job = self.read(job_id)
        if job is None or job.finished or self.alive(job_id):
            return job
        job = self.read(job_id)  # the process is gone, so its last write is visible now
        if job is None or job.finished:
            return job
        zh_how = en_how = ""
        if exit_code is not None and exit_code < 0:
            zh_how, en_how = f"（信号 {-exit_code}）", f" (signal {-exit_code})"
        elif exit_code is not None:
            zh_how, en_how = f"（退出码 {exit_code}）", f" (exit code {exit_code})"
        failed = replace(job, state="failed", finished_at=time.time(), error={
            "code": "rebuild_died",
            "message": f"重建进程意外退出{zh_how}，上一个索引版本继续提供服务 / "
                       f"the rebuild process ended unexpectedly{en_how}; the previous index generation "
                       "keeps serving"})
        try:
            self.write(failed)
        except OSError as exc:  # e.g. a full disk: still report the job as failed, write it next time
            log.error("rebuild job %s: process gone; could not record it as failed: %s", job_id, exc)
            return failed
        log.warning("rebuild job %s: process gone without finishing; marked failed", job_id)
        return failed

    def remove_stale_temporaries(self, older_than_s: float = 60.0) -> list[str]:
        """Temporary job files left by a process killed mid-write (younger ones may be in use)."""
        return remove_old_files(self.root, ".j*.json.tmp-*", older_than_s)

    def job_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted((p.stem for p in self.root.glob("j*.json") if JOB_ID_RE.match(p.stem)), reverse=True)

    def active(self) -> Job | None:
        for job_id in self.job_ids()[:KEEP_JOBS]:
            job = self.status(job_id)
            if job is not None and not job.finished:
                return job
        return None

    def prune(self, keep: int = KEEP_JOBS) -> None:
        for job_id in self.job_ids()[keep:]:
            job = self.read(job_id)
            if job is not None and not job.finished:
                continue
            for p in (self.path(job_id), self.lock_path(job_id)):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()

    @contextlib.contextmanager
    def start_lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "start.lock").open("a+") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class JobRunner:
    """Starts rebuild children from this worker and reaps them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = JobStore(settings.index_dir / "jobs")
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def start(self) -> tuple[Job, bool]:
        """Start a rebuild, or return the one already running. Returns (job, started_now)."""
        with self.store.start_lock():
            running = self.store.active()
            if running is not None:
                return running, False
            self.store.prune()
            job = Job(job_id=new_job_id(), state="queued", created_at=time.time())
            # lock first, then the job file: nobody may see a queued job whose lock is free
            lock_fd = os.open(self.store.lock_path(job.job_id), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
                self.store.write(job)
                cmd = [sys.executable, "-m", "service.rebuild", "--job-id", job.job_id, "--lock-fd", str(lock_fd)]
                try:
                    proc = subprocess.Popen(cmd, env=settings_env(self.settings), pass_fds=(lock_fd,),
                                            stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO_ROOT)
                except OSError as exc:
                    log.error("could not start the rebuild process: %s", exc)
                    job = replace(job, state="failed", finished_at=time.time(), error={
                        "code": "spawn_failed",
                        "message": f"无法启动重建进程 / could not start the rebuild process: {exc}"})
                    self.store.write(job)
                    return job, True
            finally:
                os.close(lock_fd)  # the child keeps the lock through its inherited descriptor
        log.info("rebuild job %s started (pid %d)", job.job_id, proc.pid)
        with self._lock:
            self._children[job.job_id] = proc
        threading.Thread(target=self._reap, args=(job.job_id, proc), name=f"reap-{job.job_id}",
                         daemon=True).start()
        return job, True

    def _reap(self, job_id: str, proc: subprocess.Popen[bytes]) -> None:
        code = proc.wait()
        with self._lock:
            self._children.pop(job_id, None)
        job = self.store.status(job_id, exit_code=code)
        log.info("rebuild job %s ended: %s (exit code %d)", job_id, job.state if job else "?", code)

    def get(self, job_id: str) -> Job | None:
        return self.store.status(job_id)

    def active(self) -> Job | None:
        return self.store.active()

    def recent(self, n: int = 20) -> list[Job]:
        jobs = (self.store.status(job_id) for job_id in self.store.job_ids()[:n])
        return [j for j in jobs if j is not None]
