"""Real Milvus server processes on a loopback port, for tests/test_milvus_server.py (and bench/bench_scale.py).

Two kinds, both from the `milvus` extra:

- ``standalone``: milvus 2.3.5 ("Embedded Milvus", the `milvus-server` command): a Milvus standalone server
  with its etcd and local storage in one data folder. Milvus 2.3 predates BM25 functions, so the store keeps
  BM25 in bm25s beside it. ~10 s to start.
- ``lite``: milvus-lite 2.5.1's `milvus` binary (the engine pymilvus starts for a local file) started on a
  TCP address instead of a unix socket, as milvus_lite/server.py does when given an address: the real 2.5
  engine with BM25 functions, reached over http://. Under 1 s to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _descendants(root: int) -> list[int]:
    """The processes below `root` (children first found, then theirs), from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(stat.parent.name))
    out: list[int] = []
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class ServerUnavailable(RuntimeError):
    """The server binary is not installed or cannot start on this platform."""


class MilvusServer:
    def __init__(self, kind: str, data: Path, port: int | None = None) -> None:
        assert kind in ("standalone", "lite")
        self.kind, self.data, self.port = kind, data, port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data / f"{kind}-server.log"

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> tuple[list[str], dict[str, str]]:
        env = dict(os.environ)
        if self.kind == "standalone":
            exe = Path(sys.executable).with_name("milvus-server")
            if not exe.exists():
                raise ServerUnavailable("milvus (Embedded Milvus 2.3.5) is not installed: pip install 'policyqa[milvus]'")
            return [str(exe), "--data", str(self.data / "standalone"), "--proxy-port", str(self.port)], env
        try:
            import milvus_lite
        except ImportError as exc:
            raise ServerUnavailable("milvus-lite is not installed: pip install 'policyqa[milvus]'") from exc
        lib = Path(milvus_lite.__file__).parent / "lib"
        if not (lib / "milvus").exists():
            raise ServerUnavailable(f"milvus-lite ships no milvus binary for this platform ({lib})")
        env["LD_LIBRARY_PATH"] = f"{lib}:{env.get('LD_LIBRARY_PATH', '')}"
        return [str(lib / "milvus"), str(self.data / "lite.db"), f"127.0.0.1:{self.port}", "ERROR"], env

    def start(self, timeout: float = 90.0) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        cmd, env = self._command()
        with self.log.open("ab") as log:
            # its own process group: stop() kills the server and every process it started, nothing else
            self.proc = subprocess.Popen(cmd, env=env, cwd=self.data, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerUnavailable(f"the {self.kind} Milvus server exited with {self.proc.returncode}: "
                                        + self.log.read_text(errors="replace")[-2000:])
            if self._answers():
                return
            time.sleep(0.5)
        self.stop()
        raise ServerUnavailable(f"the {self.kind} Milvus server did not answer within {timeout:.0f} s")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                pass
        except OSError:
            return False
        from pymilvus import MilvusClient

        try:
            # a connection of its own (pymilvus shares one per URI, which may be in gRPC's reconnect backoff)
            c = MilvusClient(self.uri, timeout=3, alias=f"probe-{uuid.uuid4().hex}")
            c.list_collections(timeout=3)
            c.close()
        except Exception:
            return False
        return True

    def stop(self, sig: int = signal.SIGKILL) -> None:
        """Kill the server and every process it started (kill -9 by default: what a crash looks like to the
        clients). The standalone's `milvus` binary leaves the wrapper's process group, so descendants are
        found through /proc, not the group alone; a survivor would hold /run/milvus/standalone.pid and keep
        the next standalone server from starting."""
        if self.proc is None:
            return
        for pid in [*_descendants(self.proc.pid), self.proc.pid]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None
