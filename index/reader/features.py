"""Question + context → model windows with span labels (SQuAD 2.0 style: no answer = position 0, <s>).

The context is tokenised once with character offsets; windows of it follow the question as
``<s> question </s></s> context-window </s>``, overlapping by ``stride`` tokens, so a long context is read
in pieces. A window that does not hold the whole answer is labelled "no answer here".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Window", "read_span", "top_spans", "windows"]


@dataclass(frozen=True)
class Window:
    ids: tuple[int, ...]
    context_from: int  # index in ids of the first context token
    offsets: tuple[tuple[int, int], ...]  # character span in the context of each context token
    start: int  # label: token index of the answer's first token, 0 when the window has no answer
    end: int


def windows(tokenizer: Any, question: str, context: str, answer_start: int | None, answer: str, *,
            max_tokens: int = 256, max_question_tokens: int = 64, stride: int = 64,
            bos: int = 0, eos: int = 2) -> list[Window]:
    q_ids = tokenizer.encode(question, add_special_tokens=False).ids[:max_question_tokens]
    enc = tokenizer.encode(context, add_special_tokens=False)
    c_ids, c_offsets = enc.ids, enc.offsets
    room = max_tokens - len(q_ids) - 4
    if room < 16:
        raise ValueError("max_tokens leaves no room for the context")
    out: list[Window] = []
    step = max(1, room - stride)
    begin = 0
    a_end = (answer_start + len(answer)) if answer_start is not None else None
    while True:
        part = slice(begin, min(begin + room, len(c_ids)))
        ids = (bos, *q_ids, eos, eos, *c_ids[part], eos)
        first = len(q_ids) + 3
        offsets = tuple(tuple(o) for o in c_offsets[part])
        start = end = 0
        if answer_start is not None and a_end is not None and offsets:
            s_tok = next((i for i, (a, b) in enumerate(offsets) if b > answer_start), None)
            e_tok = next((i for i in range(len(offsets) - 1, -1, -1) if offsets[i][0] < a_end), None)
            inside = offsets[0][0] <= answer_start and offsets[-1][1] >= a_end
            if inside and s_tok is not None and e_tok is not None and s_tok <= e_tok:
                start, end = first + s_tok, first + e_tok
        out.append(Window(ids, first, offsets, start, end))
        if part.stop >= len(c_ids):
            return out
        begin += step


def top_spans(start_logits: Any, end_logits: Any, w: Window, n: int = 3,
              max_answer_tokens: int = 24) -> list[tuple[float, int, int]]:
    """Up to ``n`` best non-overlapping spans of a window as (margin over no-answer, start char, end char),
    character offsets into the window's context, best first."""
    s = np.asarray(start_logits, dtype=np.float32)
    e = np.asarray(end_logits, dtype=np.float32)
    lo, hi = w.context_from, w.context_from + len(w.offsets)
    null = float(s[0] + e[0])
    scored: list[tuple[float, int, int]] = []
    for i in np.argsort(s[lo:hi])[::-1][:20] + lo:
        for j in range(int(i), min(hi, int(i) + max_answer_tokens)):
            scored.append((float(s[i] + e[j]) - null, int(i), j))
    scored.sort(key=lambda t: -t[0])
    out: list[tuple[float, int, int]] = []
    taken: list[tuple[int, int]] = []
    for margin, i, j in scored:
        if any(i <= b and a <= j for a, b in taken):
            continue
        taken.append((i, j))
        out.append((margin, w.offsets[i - lo][0], w.offsets[j - lo][1]))
        if len(out) == n:
            break
    return out


def read_span(starts: Any, ends: Any, context: str, ws: Sequence[Window]) -> tuple[str, int, int, float]:
    """The best span over a context's windows (row k of ``starts``/``ends`` = window k's logits):
    (text, start, end, margin over no-answer), offsets into ``context``, surrounding spaces trimmed."""
    best = ("", 0, 0, -1e9)
    for k, w in enumerate(ws):
        for margin, a, b in top_spans(starts[k], ends[k], w, 1):
            if margin <= best[3]:
                continue
            while a < b and context[a].isspace():
                a += 1
            while b > a and context[b - 1].isspace():
                b -= 1
            best = (context[a:b], a, b, margin)
    return best
