"""Questions first: an index build pauses between embedding batches while questions are being answered.

On two vCPUs a build at the lowest priority (service/rebuild.py: SCHED_IDLE) still slowed answers 2.4-2.7x at
p99 on a Zen 4 host: a batch it is running shares the cores' caches and memory bandwidth, and takes a core
whenever a reader thread waits. So every answer holds a shared lock on ``<index_dir>/answering.lock`` while it
retrieves and reads, in whichever process (server workers, the CLI), and the build takes that lock exclusively,
for an instant, before each batch: it waits until no question is in flight and the last one ended (the lock
file's mtime, which each answer touches) ``quiet_s`` ago.

Questions asked back to back leave the build almost no quiet moment: after ``max_wait_s`` it embeds one passage
(~30 ms) beside them and waits again, so a service answering without pause still gets its index rebuilt.

flock is released by the kernel when a process dies, so a crashed worker never stalls a build.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = "answering.lock"
POLL_S = 0.005
# Free this long before a batch runs: questions asked back to back leave gaps of a few ms between them, which a
# build that took any free moment filled with a batch the next question then ran beside (measured on the 249
# regulations, Zen 4: p50 2.33x idle with that, against 2.65x with no gate at all)
QUIET_S = 0.2


class AnswerGate:
    def __init__(self, index_dir: Path, *, max_wait_s: float = 2.0, quiet_s: float = QUIET_S) -> None:
        self.path = Path(index_dir) / LOCK_NAME
        self.max_wait_s = max_wait_s
        self.quiet_s = quiet_s
        self.waited_s = 0.0  # the build's total pause, for its log line

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Held around one answer's retrieval and reading. Its own descriptor per answer: flock locks belong to
        the open file, so concurrent answers in one process each hold a share."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # no index folder yet, or read-only: answering never depends on the gate
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            with contextlib.suppress(OSError):
                os.utime(fd)  # when the last answer ended: the file's mtime
            os.close(fd)  # closing releases the share

    def wait_for_quiet(self) -> bool:
        """Block until no answer holds the gate and the last one ended ``quiet_s`` ago, at most ``max_wait_s``.
        True when it is quiet, False when the wait ran out with questions still being answered."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except OSError:  # no answer yet on this index (the first answer makes the file), or none can be
            return True
        t0 = time.monotonic()
        quiet = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    if time.time() - os.fstat(fd).st_mtime >= self.quiet_s:
                        quiet = True
                        break
                except BlockingIOError:
                    pass
                if time.monotonic() - t0 >= self.max_wait_s:
                    break
                time.sleep(POLL_S)
        finally:
            os.close(fd)
        self.waited_s += time.monotonic() - t0
        return quiet
