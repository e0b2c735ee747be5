"""`policyqa chat`: a conversation at the terminal. Each question is answered as the service answers a
follow-up (service/conversation): made standalone from the turns before, the standalone question shown when it
differs. Line editing and the question history (↑/↓) come from readline where the terminal has it.

/new starts a new conversation, /quit (or Ctrl-D) ends it. Reading from a pipe, one question a line.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any, TextIO

from service.conversation import Resolution, Turn, resolve
from service.conversation.condense import condense

PROMPT = "问> "
NEW = ("/new", "/reset", "/清空")
QUIT = ("/quit", "/exit", "/退出")


def _line_editing() -> None:
    with contextlib.suppress(ImportError):  # not on every platform
        import readline  # noqa: F401  (imported for its side effect: input() gets line editing and history)


def run_chat(engine: Any, *, answer_mode: str, k: int, mode: str, max_turns: int,
             show: Callable[[str, Any, bool], None], stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    interactive = stdin.isatty()
    if interactive:
        _line_editing()
        print("输入问题，追问直接问（那东莞呢？）；/new 开始新对话，/quit 退出 / ask; follow up; /new, /quit", file=out)
    history: list[Turn] = []
    while True:
        try:
            line = input(PROMPT) if interactive else stdin.readline()
        except EOFError:
            print(file=out)
            return 0
        if not interactive and not line:
            return 0
        question = line.strip()
        if not question:
            continue
        if question in QUIT:
            return 0
        if question in NEW:
            history.clear()
            print("（新对话 / new conversation）", file=out)
            continue
        resolution = _resolve(engine, question, history[-max_turns:] if max_turns else [], answer_mode)
        if resolution.changed:
            print(f"（按此理解 / understood as：{resolution.resolved}）", file=out)
        answer = engine.answer(resolution.resolved, k, mode, answer_mode)
        show(question, answer, not interactive)
        print(file=out)
        history.append(Turn(question, "" if answer.refused else answer.answer, resolution.resolved))


def _resolve(engine: Any, question: str, history: list[Turn], answer_mode: str) -> Resolution:
    if history and answer_mode == "generative" and engine.llm is not None:
        return condense(engine.llm, question, history, timeout_s=min(engine.settings.llm_timeout_s, 20.0))
    return resolve(question, history)
