"""Reading the model's output: the whole JSON answer (tolerant of code fences, chatter around the object and
a truncated tail) and, while it streams, the statement texts written so far."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from typing import Any

_TEXT_KEY = re.compile(r'"text"\s*:\s*"')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class MalformedOutput(ValueError):
    """The model's output is not an answer object."""


@dataclass(frozen=True)
class RawStatement:
    text: str
    passages: tuple[int, ...]
    quote: str


@dataclass(frozen=True)
class RawAnswer:
    answerable: bool
    statements: tuple[RawStatement, ...]


def _first_object(text: str) -> Any:
    """The first JSON object in `text` (fences and prose around it ignored)."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise MalformedOutput("no JSON object in the model's output")


def _ints(value: Any) -> tuple[int, ...]:
    items = value if isinstance(value, list) else [value]
    out = []
    for v in items:
        if isinstance(v, bool):
            continue
        if isinstance(v, int):
            out.append(v)
        elif isinstance(v, str) and v.strip().strip("[]").isdigit():
            out.append(int(v.strip().strip("[]")))
    return tuple(out)


def parse_answer(text: str) -> RawAnswer:
    obj = _first_object(text)
    raw = obj.get("statements")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise MalformedOutput("statements is not a list")
    statements = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        passages = _ints(item.get("passages", item.get("passage", [])))
        statements.append(RawStatement(str(item.get("text") or "").strip(), passages,
                                       str(item.get("quote") or "").strip()))
    answerable = obj.get("answerable")
    return RawAnswer(bool(statements) if answerable is None else bool(answerable), tuple(statements))


def _decode_partial(s: str, i: int) -> tuple[str, bool]:
    """The JSON string that starts at s[i] (after its opening quote), as far as it is written; and whether it
    is closed."""
    out: list[str] = []
    while i < len(s):
        ch = s[i]
        if ch == '"':
            return "".join(out), True
        if ch == "\\":
            if i + 1 >= len(s):
                break
            nxt = s[i + 1]
            if nxt == "u":
                if i + 6 > len(s):
                    break
                with contextlib.suppress(ValueError):
                    out.append(chr(int(s[i + 2:i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out), False


class StatementStream:
    """Fed the raw output as it streams; returns the new characters of the statement texts (statements
    separated by nothing: each ends with its own punctuation), for showing while the model writes."""

    def __init__(self) -> None:
        self.buffer = ""
        self._shown: list[str] = []

    def feed(self, chunk: str) -> str:
        self.buffer += chunk
        texts = [_decode_partial(self.buffer, m.end())[0] for m in _TEXT_KEY.finditer(self.buffer)]
        new = []
        for n, t in enumerate(texts):
            if n < len(self._shown):
                if t.startswith(self._shown[n]) and len(t) > len(self._shown[n]):
                    new.append(t[len(self._shown[n]):])
                    self._shown[n] = t
            else:
                new.append(t)
                self._shown.append(t)
        return "".join(new)
