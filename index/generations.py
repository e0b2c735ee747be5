"""Index generations on disk: `<root>/generations/<name>/` plus a `CURRENT` pointer switched atomically.

A build writes into `<root>/.tmp-<name>/`, fsyncs every file, renames the folder into `generations/`,
then replaces `CURRENT`. A crash at any point leaves the previous generation current and intact.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CURRENT = "CURRENT"
GENERATIONS = "generations"
KEEP_GENERATIONS = 2  # the current one and the previous good one


class IndexError_(RuntimeError):
    """Base of the index stage's errors; `hint` tells the operator what to do."""

    code = "index_error"

    def __init__(self, message: str, hint: str = "run `policyqa index build`") -> None:
        super().__init__(f"{message} ({hint})")
        self.message = message
        self.hint = hint


class IndexNotFound(IndexError_):
    code = "index_not_found"


class IndexMismatch(IndexError_):
    code = "index_mismatch"


class EncoderMismatch(IndexMismatch):
    """The index's passages were encoded by another encoder variant than the one that would encode queries.

    Refused rather than allowed: int8 and fp32 vectors of one text differ by up to ~0.006 in cosine, about
    the median gap between a query's first and second hit, so mixed variants would reorder results.
    """

    code = "encoder_mismatch"


class IndexCorrupt(IndexError_):
    code = "index_corrupt"


class StoreUnavailable(IndexError_):
    """The configured store cannot be used by this installation (POLICYQA_STORE=milvus without pymilvus)."""

    code = "store_unavailable"


class BuildInProgress(IndexError_):
    code = "build_in_progress"


def fsync_file(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_old_files(folder: Path, pattern: str, older_than_s: float) -> list[str]:
    """Delete the files in `folder` matching `pattern` whose last write is older than `older_than_s` (the
    temporaries of writes a crash cut short; a younger one may belong to a write still running in another
    process). Returns the names removed."""
    removed: list[str] = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for p in folder.glob(pattern):
        with contextlib.suppress(OSError):
            if now - p.stat().st_mtime > older_than_s:
                p.unlink()
                removed.append(p.name)
    return removed


def fsync_tree(folder: Path) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            fsync_file(p)
    for p in sorted((d for d in folder.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
        fsync_dir(p)
    fsync_dir(folder)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def new_generation_name() -> str:
    """Names sort in build order (prune keeps the newest by name): seconds, then microseconds, then pid."""
    seconds, micros = divmod(time.time_ns() // 1000, 10**6)
    return time.strftime("g%Y%m%dT%H%M%S", time.gmtime(seconds)) + f".{micros:06d}-{os.getpid()}"


def current_generation(root: Path) -> Path | None:
    pointer = root / CURRENT
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not name or "/" in name or name.startswith("."):
        raise IndexCorrupt(f"index pointer {pointer} is invalid")
    return root / GENERATIONS / name


def publish(root: Path, tmp_folder: Path, name: str) -> Path:
    """Move a finished build into place and make it current (rename + pointer replace, both fsynced)."""
    gens = root / GENERATIONS
    gens.mkdir(parents=True, exist_ok=True)
    fsync_tree(tmp_folder)
    final = gens / name
    os.replace(tmp_folder, final)
    fsync_dir(gens)
    pointer_tmp = root / f".{CURRENT}.tmp"
    pointer_tmp.write_text(name + "\n", encoding="utf-8")
    fsync_file(pointer_tmp)
    os.replace(pointer_tmp, root / CURRENT)
    fsync_dir(root)
    return final


def prune(root: Path, keep: int = KEEP_GENERATIONS) -> list[str]:
    """Delete old generations and leftovers of interrupted builds. Call only while holding the build lock."""
    removed: list[str] = []
    current = current_generation(root)
    gens = root / GENERATIONS
    if gens.is_dir():
        names = sorted((p.name for p in gens.iterdir() if p.is_dir()), reverse=True)
        keep_names = set(names[:keep])
        if current is not None:
            keep_names.add(current.name)
        for n in names:
            if n not in keep_names:
                shutil.rmtree(gens / n, ignore_errors=True)
                removed.append(n)
    for p in root.glob(".tmp-*"):
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p.name)
    return removed


@contextlib.contextmanager
def build_lock(root: Path) -> Iterator[None]:
    """One build at a time per index folder, across processes."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "build.lock").open("a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BuildInProgress("another index build is running", "wait for it to finish") from exc
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
