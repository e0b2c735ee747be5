"""index/answergate.py: a build waits while answers hold the gate, never longer than its bound, and never for a
process that died holding it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from index.answergate import AnswerGate


def test_build_waits_for_answers_in_flight(tmp_path: Path) -> None:
    gate = AnswerGate(tmp_path, max_wait_s=5.0)
    assert gate.wait_for_quiet() and gate.waited_s < 0.05  # nobody answering: no pause
    released = threading.Event()

    def answer() -> None:
        with gate.answering(), gate.answering():  # two answers at once share it
            time.sleep(0.3)
        released.set()

    th = threading.Thread(target=answer)
    th.start()
    time.sleep(0.05)
    before = gate.waited_s
    assert gate.wait_for_quiet()  # quiet again, not given up
    assert released.is_set() and 0.2 <= gate.waited_s - before < 2.0
    th.join()


def test_the_wait_is_bounded(tmp_path: Path) -> None:
    gate = AnswerGate(tmp_path, max_wait_s=0.2)
    with gate.answering():
        t = time.monotonic()
        assert not gate.wait_for_quiet()  # gave up: a question is still being answered
        assert 0.15 <= time.monotonic() - t < 1.0
    assert gate.waited_s >= 0.15 and gate.wait_for_quiet()


def test_a_dead_answering_process_does_not_hold_the_build(tmp_path: Path) -> None:
    code = ("import sys, time; sys.path.insert(0, sys.argv[2]); from pathlib import Path; "
            "from index.answergate import AnswerGate; g = AnswerGate(Path(sys.argv[1]))\n"
            "with g.answering():\n    print('holding', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(Path(__file__).parent.parent)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        gate = AnswerGate(tmp_path, max_wait_s=30.0)
        t = time.monotonic()
        proc.kill()
        proc.wait()
        assert gate.wait_for_quiet()
        assert time.monotonic() - t < 5.0  # released by the kernel with the process, not after 30 s
    finally:
        proc.kill()


def test_answers_go_on_where_the_gate_cannot_be_made(tmp_path: Path) -> None:
    gate = AnswerGate(tmp_path / "missing" / "folder")
    with gate.answering():
        pass
    assert gate.wait_for_quiet() and gate.waited_s == 0.0


def test_questions_back_to_back_are_not_quiet(tmp_path: Path) -> None:
    """A gap of a few ms between two answers is no quiet moment: the build waits until the last answer ended
    `quiet_s` ago, or gives up after `max_wait_s` (and then embeds only one passage, index/builder.py)."""
    gate = AnswerGate(tmp_path, max_wait_s=0.6, quiet_s=0.2)
    stop = threading.Event()

    def answers() -> None:
        while not stop.is_set():
            with gate.answering():
                time.sleep(0.05)
            time.sleep(0.002)

    th = threading.Thread(target=answers)
    th.start()
    try:
        time.sleep(0.05)
        assert not gate.wait_for_quiet()
    finally:
        stop.set()
        th.join()
    t = time.monotonic()
    assert gate.wait_for_quiet() and 0.1 <= time.monotonic() - t < 0.6  # quiet once the last ended 0.2 s ago
