"""A local Ray cluster and the regulations corpus, for tests/test_raybuild.py and bench/bench_raybuild.py.

`LocalRayCluster` runs `ray start --head` (no CPUs of its own: it only coordinates, like a head node) and
`workers` worker nodes of `cpus_per_worker` CPUs each, all on this machine, every one with `--block` in a
process group of its own. Stopping it signals those groups only: never `ray stop`, which would stop every
Ray process of the user. Each node's temporary folder (TMPDIR) is its own, so the model copies the build
ships to "each machine" are separate, as on a real cluster.

`corpus_dir` writes the seed articles plus the first `regulations` Word files of
`../shared/corpora/regulations/raw/` (by file name), ingested exactly as `policyqa corpus add` does
(eval/rawfiles.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).with_name("ray")
SEEDS = REPO / "corpus" / "seeds"


def _running(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalRayCluster:
    def __init__(self, root: Path, *, workers: int = 2, cpus_per_worker: int = 1,
                 object_store_mb: int = 400) -> None:
        self.root = root
        self.workers = workers
        self.cpus_per_worker = cpus_per_worker
        self.object_store_mb = object_store_mb
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        # Ray's own session folder: short (its socket paths must stay under 107 characters)
        self.temp_dir = Path(tempfile.mkdtemp(prefix="pqray-", dir="/tmp"))
        self._procs: list[subprocess.Popen[bytes]] = []

    def node_tmp(self, i: int) -> Path:
        """The TMPDIR of node i (0 = head): where its actors write the shipped model."""
        return self.root / f"node{i}-tmp"

    def _env(self, i: int) -> dict[str, str]:
        tmp = self.node_tmp(i)
        tmp.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYQA_")}
        env.update({"TMPDIR": str(tmp), "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1",
                    "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)})
        return env

    def _start(self, i: int, args: list[str]) -> None:
        log = (self.root / f"node{i}.log").open("wb")
        cmd = [str(RAY), "start", "--block", "--disable-usage-stats",
               f"--object-store-memory={self.object_store_mb * 1024 * 1024}", *args]
        self._procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self._env(i),
                                            start_new_session=True))

    def start(self, timeout: float = 180.0) -> LocalRayCluster:
        """Start the head, then the workers; returns once all are in `ray status` (stops them on failure)."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            # every fixed default port moved to a free one: several nodes (and clusters) share this host
            self._start(0, ["--head", "--num-cpus=0", f"--port={self.port}", "--node-ip-address=127.0.0.1",
                            "--include-dashboard=false", f"--dashboard-port={_free_port()}",
                            f"--ray-client-server-port={_free_port()}", f"--temp-dir={self.temp_dir}/n0",
                            f"--dashboard-agent-listen-port={_free_port()}"])
            self._wait(1, 0, timeout)
            for i in range(1, self.workers + 1):  # one at a time: a node joining on a busy 2-vCPU host can time out
                self._start(i, [f"--address={self.address}", f"--num-cpus={self.cpus_per_worker}",
                                "--node-ip-address=127.0.0.1", f"--dashboard-agent-listen-port={_free_port()}",
                                # a session folder of its own (sockets, logs), as on a machine of its own
                                f"--temp-dir={self.temp_dir}/n{i}"])
                self._wait(i + 1, i * self.cpus_per_worker, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, nodes: int, cpus: int, timeout: float) -> None:
        """Until `ray status` shows the nodes and CPUs (a node process that exits is an error at once)."""
        deadline = time.monotonic() + timeout
        status = ""
        while time.monotonic() < deadline:
            for i, p in enumerate(self._procs):
                if p.poll() is not None:
                    raise RuntimeError(f"ray node {i} exited ({p.returncode}): {self.log_tail(i)}")
            done = subprocess.run([str(RAY), "status", f"--address={self.address}"], capture_output=True,
                                  text=True, env=self._env(0), timeout=60)
            status = done.stdout
            active = status.split("Pending:")[0]
            if done.returncode == 0 and active.count(" node_") >= nodes and (not cpus or f"/{cpus}.0 CPU" in status):
                return
            time.sleep(2.0)  # `ray status` itself costs ~1 s of CPU
        raise TimeoutError(f"the local Ray cluster did not come up in {timeout:.0f} s: {status[-2000:]}")

    def log_tail(self, i: int, n: int = 3000) -> str:
        try:
            return (self.root / f"node{i}.log").read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def _descendants(self) -> set[int]:
        """Every process below the `ray start` processes (Ray's workers put themselves in groups of their own)."""
        parent: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            parent[int(stat.parent.name)] = int(fields[1])
        found, todo = set(), [p.pid for p in self._procs]
        while todo:
            pid = todo.pop()
            for child, ppid in parent.items():
                if ppid == pid and child not in found:
                    found.add(child)
                    todo.append(child)
        return found

    def stop(self) -> None:
        """SIGTERM to every node's process group at once, SIGKILL to what still runs 3 s later; then any process
        that was below them and still runs (by pid). A throwaway cluster: nothing in it needs a clean exit."""
        below = self._descendants()
        for p in self._procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(p.poll() is None for p in self._procs):
            time.sleep(0.1)
        for p in self._procs:
            with contextlib.suppress(ProcessLookupError):  # anything left in the group (raylet, workers)
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        self._procs.clear()
        below = {pid for pid in below if _running(pid)}
        for pid in below:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalRayCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def regulations_dir() -> Path:
    from eval.rawfiles import shared_dir

    return shared_dir() / "corpora" / "regulations" / "raw"


def corpus_dir(dst: Path, regulations: int | None) -> tuple[Path, int]:
    """The seeds plus the first `regulations` files (all with None) as stored documents in `dst`; returns
    (dst, regulations ingested). Raises RuntimeError when a file could not be ingested."""
    from eval.rawfiles import Source, ingest

    dst.mkdir(parents=True, exist_ok=True)
    for p in sorted(SEEDS.glob("*.md")):
        shutil.copy2(p, dst / p.name)
    raw = regulations_dir()
    files = sorted(p for p in raw.iterdir() if p.suffix in (".doc", ".docx"))
    if regulations is not None:
        files = files[:regulations]
    picked = dst.parent / f"{dst.name}-raw"
    picked.mkdir(exist_ok=True)
    for p in files:
        link = picked / p.name
        if not link.exists():
            link.symlink_to(p)
    # ingest() keeps only what it stores itself: ingest into a scratch folder, then add its files to dst
    scratch = dst.parent / f"{dst.name}-regs"
    result = ingest(Source(picked, "reg", "regulations (国家法律法规数据库)", (".doc", ".docx")), scratch)
    if result.failed:
        raise RuntimeError(f"could not ingest {result.failed}")
    for p in scratch.iterdir():
        target = dst / p.name
        if p.is_dir():
            shutil.copytree(p, target, dirs_exist_ok=True)
        else:
            shutil.copy2(p, target)
    return dst, len(files)
