"""`policyqa serve`: prepare the model and the index on first start, then run uvicorn.

With one worker the app runs in this process and reuses the engine that checked (or built) the index.
With several, the first-start work runs in a child process (so this supervisor never holds the model),
the settings travel to the workers as POLICYQA_* environment variables, and uvicorn starts the workers
from the import string `service.app:app_from_env`. Prometheus metrics are then aggregated across the
workers through a PROMETHEUS_MULTIPROC_DIR that lives as long as the server.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING

from index.generations import IndexCorrupt, IndexMismatch, IndexNotFound
from service.jobs import env_settings, settings_env
from service.metrics import MULTIPROC_ENV
from service.settings import Settings, SettingsError

if TYPE_CHECKING:
    import uvicorn

    from service.engine import Engine

log = logging.getLogger("policyqa")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"


class LogProgress:
    """Build progress as log lines: each stage's start and end, and every 10 s in between."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._stage = ""
        self._last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != self._stage or done >= total or now - self._last >= self.every_s:
            log.info("index build: %s %d/%d", stage, done, total)
            self._stage = stage
            self._last = now


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format=LOG_FORMAT, stream=sys.stderr)
    logging.getLogger("policyqa").setLevel(level.upper())


def ensure_index(settings: Settings, engine: Engine | None = None) -> Engine:
    """Load the current generation, building one first when there is none (or it cannot be used), and the
    reader (assembled on a first start)."""
    from service.engine import Engine

    engine = engine or Engine(settings)
    engine.reader  # noqa: B018 - assembles the reader on a first start, before the port opens
    try:
        engine.load()
        return engine
    except IndexNotFound:
        log.info("first start: no index in %s; preparing the model and building one", settings.index_dir)
    except (IndexMismatch, IndexCorrupt) as exc:
        log.warning("the current index cannot be used (%s); building a new generation", exc)
    t0 = time.perf_counter()
    result = engine.build(progress=LogProgress())
    log.info("built index generation %s: %d chunks in %.1fs", result.generation, result.chunks,
             time.perf_counter() - t0)
    engine.load()
    return engine


def serve(settings: Settings, host: str | None = None, port: int | None = None,
          workers: int | None = None) -> None:
    """Run the HTTP service (blocks until it is stopped). Unset arguments come from settings."""
    import uvicorn

    host = host or settings.host
    port = settings.port if port is None else port
    workers = workers or settings.workers
    configure_logging(settings.log_level)
    uvicorn_level = settings.log_level.lower()
    if workers <= 1:
        from service.app import create_app

        engine = ensure_index(settings)
        uvicorn.run(create_app(settings, engine), host=host, port=port, log_level=uvicorn_level,
                    access_log=False)
        return
    env = settings_env(settings)
    if subprocess.run([sys.executable, "-m", "service.rebuild", "--ensure"], env=env).returncode != 0:
        raise SystemExit("could not prepare the model and the index (see the log above) / 无法准备模型和索引")
    metrics_dir = tempfile.mkdtemp(prefix="policyqa-metrics-")
    os.environ.update(env)
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        run_workers(uvicorn.Config("service.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                                   log_level=uvicorn_level, access_log=False))
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def run_workers(config: uvicorn.Config) -> None:
    """uvicorn.run's multi-worker path, with TCP_NODELAY on the listening socket.

    uvicorn binds it with proto 0, so asyncio does not set TCP_NODELAY on the connections the workers
    accept; a keep-alive client then waits ~40 ms per request (Nagle + delayed ACK). Linux copies the
    option from the listening socket to accepted ones.
    """
    from uvicorn.supervisors import Multiprocess

    sock = config.bind_socket()
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[sock]).run()


def main(argv: list[str] | None = None) -> int:
    """`python -m service.server` — the same as `policyqa serve`."""
    p = argparse.ArgumentParser(prog="python -m service.server", description="Run the policyqa HTTP service.")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--workers", type=int, default=None)
    args = p.parse_args(argv)
    try:
        settings = env_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve(settings, args.host, args.port, args.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
