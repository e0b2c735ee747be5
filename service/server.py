"""`policyqa serve`: run uvicorn on the app at once; the app loads or builds the index in the background.

The port opens within a second or two even on a first start: /healthz answers 200 and /readyz reports
the first build's progress (a rebuild job prepares the model and embeds the corpus) until an index is
loaded. With several workers the settings travel to them as POLICYQA_* environment variables and uvicorn
starts them from the import string `service.api.app:app_from_env`; the job store lets only one of them
start the first build. Prometheus metrics are aggregated across the workers through a
PROMETHEUS_MULTIPROC_DIR that lives as long as the server.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import socket
import sys
import tempfile
from typing import TYPE_CHECKING

from service.api.metrics import MULTIPROC_ENV
from service.jobs import env_settings, settings_env
from service.logs import configure_logging
from service.settings import Settings, SettingsError

# uvicorn's supervisor restarts a worker that misses a 5 s health check; a worker loading the model and the index
# on a busy 2-vCPU machine can hold the loop that long, and its restart drops the requests it held
WORKER_HEALTHCHECK_S = 60

if TYPE_CHECKING:
    import uvicorn


log = logging.getLogger("policyqa")
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
        from service.api.app import create_app

        uvicorn.run(create_app(settings), host=host, port=port, log_level=uvicorn_level, access_log=False)
        return
    env = settings_env(settings)
    metrics_dir = tempfile.mkdtemp(prefix="policyqa-metrics-")
    os.environ.update(env)
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        run_workers(uvicorn.Config("service.api.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                                   log_level=uvicorn_level, access_log=False,
                                   timeout_worker_healthcheck=WORKER_HEALTHCHECK_S))
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
