"""HTTP load benchmark for the policyqa service (loopback only, bounded loops).

Starts real servers (`python -m service.server`, the code path of `policyqa serve`) on a temporary copy of
the seed corpus and measures, for 1 and 2 uvicorn workers:

  * GET /v1/search and POST /v1/ask with 1 and 4 concurrent clients: p50, p99 (ms) and requests/s;
  * /v1/search p50/p99 while index rebuilds run, against the same loop when idle. Each rebuild is cold:
    the embedding cache is dropped and a small new article replaces the previous round's (an unchanged
    corpus would let the build reuse the current generation's indexes), so the low-priority child embeds
    the whole corpus again and rebuilds both indexes.

    .venv/bin/python bench/bench_http.py                    # the full matrix (a few minutes)
    .venv/bin/python bench/bench_http.py --repeat 3         # the matrix 3 times, then the medians
    .venv/bin/python bench/bench_http.py --workers 1 --search-requests 50 --ask-requests 20
    .venv/bin/python bench/bench_http.py --json bench-http.json

The load generator shares the machine with the server, so it is kept light: each client is a thread with
one keep-alive connection of the standard library's http.client (about a quarter of httpx's CPU per
request). The 1-minute load average is printed before and after each round: other work on the machine
shows there, and figures taken while it is high understate the service.

An embedding cache is copied in (never modified) from tests/artifacts or index/artifacts when one exists,
so the first start does not have to embed the seed corpus.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import httpx
from common import drop_embedding_cache, free_port, nearest_rank  # bench/ is the script's folder
from machine import cpu_info, describe

REPO = Path(__file__).resolve().parent.parent
CACHE_CANDIDATES = (REPO / "tests" / "artifacts" / "http-embedding-cache" / "embeddings.sqlite",
                    REPO / "index" / "artifacts" / "cache" / "embeddings.sqlite")
QUESTIONS = [
    "江门市目前有多少名党员？",
    "党群服务中心开展了哪些活动？",
    "江海区如何推进基层治理？",
    "网格员的职责是什么？",
    "阳江市江城区城市基层党建有哪些做法？",
    "江门市镇村四级党群服务中心有什么作用？",
    "百千万工程是什么？",
    "侨都高质量发展的党建举措有哪些？",
    "如何发挥党员先锋模范作用？",
    "社区党组织如何服务群众？",
    "江门强基工程包括哪些内容？",
    "党建引领乡村振兴有哪些成效？",
]


@dataclass(frozen=True)
class Figures:
    backend: str
    workers: int
    endpoint: str
    clients: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    rps: float
    round: int = 1


class Server:
    def __init__(self, root: Path, workers: int, token: str, backend: str = "onnx-int8") -> None:
        self.root = root
        self.backend = backend
        self.index_dir = root / f"index-{backend}"  # an index is tied to the encoder variant that built it
        self.workers = workers
        self.token = token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / f"server-{backend}-{workers}w.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYQA_")}
        env.update({"POLICYQA_CORPUS_DIR": str(self.root / "corpus"), "POLICYQA_INDEX_DIR": str(self.index_dir),
                    "POLICYQA_ENCODER_BACKEND": self.backend,
                    "POLICYQA_ADMIN_TOKEN": self.token, "POLICYQA_LOG_LEVEL": "warning",
                    # the request mix repeats a few questions: measure the encoder, not the query cache
                    "POLICYQA_QUERY_CACHE": "0",
                    "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
                    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
        return env

    def start(self, timeout: float = 900) -> float:
        t0 = time.monotonic()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service.server", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", str(self.workers)],
                cwd=REPO, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        with httpx.Client(base_url=self.url, timeout=5) as c:
            while time.monotonic() - t0 < timeout:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited:\n{self.log_path.read_text(errors='replace')[-4000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if c.get("/readyz").status_code == 200:
                        return time.monotonic() - t0
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout}s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


class Connection:
    """One keep-alive HTTP/1.1 connection (http.client), reopened after an error."""

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        headers = {"content-type": "application/json"} if body is not None else {}
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


Call = Callable[[Connection, int], int]
SEARCH_PATHS = ["/v1/search?" + urllib.parse.urlencode({"q": q, "k": 5}) for q in QUESTIONS]
ASK_BODIES = [json.dumps({"question": q}, ensure_ascii=False).encode() for q in QUESTIONS]


def search_call(conn: Connection, i: int) -> int:
    status, body = conn.request("GET", SEARCH_PATHS[i % len(SEARCH_PATHS)])
    if status == 200:
        json.loads(body)  # a client reads what it asked for
    return status


def ask_call(conn: Connection, i: int) -> int:
    status, body = conn.request("POST", "/v1/ask", ASK_BODIES[i % len(ASK_BODIES)])
    if status == 200:
        json.loads(body)
    return status


def load(url: str, call: Call, clients: int, requests: int, max_seconds: float,
         stop: threading.Event | None = None) -> tuple[list[float], int, float]:
    """`requests` calls spread over `clients` threads (each with its own keep-alive connection).
    Stops early after max_seconds or when `stop` is set. Returns latencies (ms), errors, wall seconds."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(requests))
    deadline = time.monotonic() + max_seconds

    def worker() -> None:
        nonlocal errors
        conn = Connection(url)
        try:
            while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t = time.perf_counter()
                try:
                    ok = call(conn, i) == 200
                except (OSError, http.client.HTTPException, ValueError):
                    ok = False
                ms = (time.perf_counter() - t) * 1000
                with lock:
                    latencies.append(ms)
                    errors += 0 if ok else 1
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - t0


def figures(backend: str, workers: int, endpoint: str, clients: int, lat: list[float], errors: int,
            seconds: float) -> Figures:
    return Figures(backend, workers, endpoint, clients, len(lat), errors, round(seconds, 2),
                   round(statistics.median(lat), 1) if lat else float("nan"), round(nearest_rank(lat, 99), 1),
                   round(len(lat) / seconds, 2) if seconds > 0 else 0.0)


def copy_cache(dest: Path) -> Path | None:
    for src in CACHE_CANDIDATES:
        if src.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.closing(sqlite3.connect(src)) as a, contextlib.closing(sqlite3.connect(dest)) as b:
                a.backup(b)  # a consistent copy even if another process writes the source
            return src
    return None


def start_cold_rebuild(admin: httpx.Client, server: Server) -> str:
    """Drop the embedding cache, swap the bench's own article for a new one, start a rebuild: its job_id."""
    drop_embedding_cache(server.index_dir / "cache")
    for old in server.root.joinpath("corpus").glob("bench-rebuild-*.md"):
        admin.delete(f"/v1/documents/{old.stem}").raise_for_status()
    nonce = secrets.token_hex(6)
    text = "\n\n".join(f"基准测试第{i}段（{nonce}）：社区网格员每周走访居民，收集诉求并及时反馈。" for i in range(6))
    r = admin.post("/v1/documents", params={"rebuild": "true"},
                   json={"title": "重建基准", "text": text, "doc_id": f"bench-rebuild-{nonce}", "date": "2026-01-01"})
    r.raise_for_status()
    return str(r.json()["job_id"])


def rebuild_window(server: Server, rebuild_requests: int, max_seconds: float) -> tuple[Figures, Figures, dict]:
    """/v1/search with one client: idle, then while cold rebuilds run (one after another until as many
    requests were timed during rebuilds as idle, so both p99s rest on as many samples)."""
    idle_lat, idle_err, idle_s = load(server.url, search_call, 1, rebuild_requests, max_seconds)
    busy_lat: list[float] = []
    busy_err, busy_s = 0, 0.0
    jobs: list[dict] = []
    headers = {"Authorization": f"Bearer {server.token}"}
    deadline = time.monotonic() + max_seconds * 20
    with httpx.Client(base_url=server.url, timeout=60, headers=headers) as admin:
        while len(busy_lat) < rebuild_requests and time.monotonic() < deadline:
            job_id = start_cold_rebuild(admin, server)
            done = threading.Event()
            job: dict = {}

            def poll(job_id: str = job_id, done: threading.Event = done, job: dict = job) -> None:
                while not done.is_set():
                    job.update(admin.get(f"/v1/jobs/{job_id}").json())
                    if job["state"] in ("succeeded", "failed"):
                        done.set()
                        return
                    time.sleep(0.5)

            poller = threading.Thread(target=poll)
            poller.start()
            lat, err, secs = load(server.url, search_call, 1, 10**6, deadline - time.monotonic(), stop=done)
            done.set()
            poller.join()
            busy_lat += lat
            busy_err += err
            busy_s += secs
            jobs.append(job)
            if job.get("state") != "succeeded":
                break
    summary = {"rebuilds": len(jobs), "states": sorted({str(j.get("state")) for j in jobs}),
               "generation": jobs[-1].get("generation") if jobs else None}
    return (figures(server.backend, server.workers, "search idle", 1, idle_lat, idle_err, idle_s),
            figures(server.backend, server.workers, "search during rebuild", 1, busy_lat, busy_err, busy_s), summary)


def metric_total(url: str, route: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    pattern = re.compile(r'^policyqa_http_requests_total\{([^}]*)\} ([0-9.e+]+)$', re.M)
    return sum(float(v) for labels, v in pattern.findall(text) if f'route="{route}"' in labels)


def print_header() -> None:
    print(f"{'encoder':<10} {'workers':>7} {'endpoint':<24} {'clients':>7} {'requests':>8} {'errors':>6} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'req/s':>7}", flush=True)


def print_row(f: Figures) -> None:
    print(f"{f.backend:<10} {f.workers:>7} {f.endpoint:<24} {f.clients:>7} {f.requests:>8} {f.errors:>6} {f.p50_ms:>8} "
          f"{f.p99_ms:>8} {f.rps:>7}", flush=True)


def print_table(rows: list[Figures]) -> None:
    print_header()
    for f in rows:
        print_row(f)


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="policyqa-bench-http-"))
    try:
        shutil.copytree(REPO / "corpus" / "seeds", root / "corpus", ignore=shutil.ignore_patterns(".*"))
        yield root
    finally:
        if keep:
            print(f"workspace kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def medians(rows: list[Figures]) -> list[Figures]:
    """One row per (backend, workers, endpoint, clients): the median p50, p99 and req/s over the rounds."""
    groups: dict[tuple[str, int, str, int], list[Figures]] = {}
    for f in rows:
        groups.setdefault((f.backend, f.workers, f.endpoint, f.clients), []).append(f)
    out = []
    for fs in groups.values():
        out.append(replace(fs[0], requests=sum(f.requests for f in fs), errors=sum(f.errors for f in fs),
                           seconds=round(sum(f.seconds for f in fs), 2),
                           p50_ms=round(statistics.median(f.p50_ms for f in fs), 1),
                           p99_ms=round(statistics.median(f.p99_ms for f in fs), 1),
                           rps=round(statistics.median(f.rps for f in fs), 2), round=0))
    return out


def rebuild_ratios(rows: list[Figures]) -> dict[str, float]:
    """p99 during the rebuild / p99 idle, by workers (and round, when there are several)."""
    out: dict[str, float] = {}
    for busy in (f for f in rows if f.endpoint == "search during rebuild"):
        idle = next(f for f in rows if f.endpoint == "search idle" and f.workers == busy.workers
                    and f.round == busy.round and f.backend == busy.backend)
        key = f"{busy.backend} {busy.workers}w" + (f" round {busy.round}" if busy.round else "")
        out[key] = round(busy.p99_ms / idle.p99_ms, 2) if idle.p99_ms else float("nan")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="onnx-int8",
                   help="comma-separated encoder backends, each with its own servers (e.g. torch,onnx-int8)")
    p.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    p.add_argument("--clients", default="1,4", help="comma-separated concurrent clients (default 1,4)")
    p.add_argument("--search-requests", type=int, default=200)
    p.add_argument("--ask-requests", type=int, default=60)
    p.add_argument("--rebuild-requests", type=int, default=100, help="idle search requests before the rebuild")
    p.add_argument("--max-seconds", type=float, default=60.0, help="cap per measurement")
    p.add_argument("--repeat", type=int, default=1, help="rounds per server; the summary gives medians")
    p.add_argument("--no-rebuild", action="store_true", help="skip the rebuild measurement")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--keep", action="store_true", help="keep the temporary workspace (logs)")
    args = p.parse_args(argv)
    worker_counts = [int(x) for x in args.workers.split(",") if x]
    client_counts = [int(x) for x in args.clients.split(",") if x]
    token = secrets.token_hex(16)
    rows: list[Figures] = []
    notes: dict[str, object] = {"cpu": cpu_info(), "python": sys.version.split()[0]}
    print(describe(notes["cpu"]))  # type: ignore[arg-type]
    loads: dict[str, list[float]] = {}
    notes["load_average_1m"] = loads

    print_header()
    with workspace(args.keep) as root:
        backends = [b for b in args.backends.split(",") if b]
        for backend in backends:
            source = copy_cache(root / f"index-{backend}" / "cache" / "embeddings.sqlite")
            notes[f"embedding_cache_from_{backend}"] = str(source) if source else None
        for backend, workers in ((b, w) for b in backends for w in worker_counts):
            server = Server(root, workers, token, backend)
            tag = f"{backend}_{workers}w"
            try:
                notes[f"ready_s_{tag}"] = round(server.start(), 1)
                load(server.url, search_call, 1, 10, 30)  # warm every worker a little
                load(server.url, ask_call, 2, 6, 60)
                for rnd in range(1, args.repeat + 1):
                    before = load_average()
                    for clients in client_counts:
                        for name, call, n in (("search", search_call, args.search_requests),
                                              ("ask", ask_call, args.ask_requests)):
                            lat, err, secs = load(server.url, call, clients, n, args.max_seconds)
                            rows.append(replace(figures(backend, workers, name, clients, lat, err, secs), round=rnd))
                            print_row(rows[-1])
                    if not args.no_rebuild:
                        idle, busy, job = rebuild_window(server, args.rebuild_requests, args.max_seconds)
                        rows += [replace(idle, round=rnd), replace(busy, round=rnd)]
                        print_row(rows[-2])
                        print_row(rows[-1])
                        notes[f"rebuild_{tag}_round{rnd}"] = {**job, "window_s": busy.seconds}
                    loads[f"{tag} round {rnd}"] = [before, load_average()]
                    print(f"# {backend}, {workers} worker(s), round {rnd}: 1-minute load average {before} → "
                          f"{load_average()} on {os.cpu_count()} CPUs", flush=True)
                if workers > 1:
                    sent = sum(f.requests for f in rows if f.workers == workers and f.backend == backend
                               and f.endpoint == "search") + 10
                    notes[f"metrics_search_count_{tag}"] = {"sent": sent,
                                                                 "metrics": metric_total(server.url, "/v1/search")}
            finally:
                server.stop()

    print()
    summary = medians(rows) if args.repeat > 1 else rows
    print(f"== summary{f' (medians of {args.repeat} rounds)' if args.repeat > 1 else ''} ==")
    print_table(summary)
    if not args.no_rebuild:
        notes["p99_rebuild_over_idle"] = rebuild_ratios(rows) | (
            {f"{k} median": v for k, v in rebuild_ratios(summary).items()} if args.repeat > 1 else {})
    print(json.dumps(notes, ensure_ascii=False, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"figures": [asdict(f) for f in rows],
                                         "summary": [asdict(f) for f in summary], "notes": notes},
                                        ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 1 if any(f.errors for f in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
