"""Chinese sentence boundaries, as spans, so chunks and quotes never cut inside a sentence."""

from __future__ import annotations

import re

# A sentence ends at 。！？；… (or their ASCII forms) plus any closing quotes/brackets that follow,
# or at a line break. "……" counts as one terminator.
_SENT_RE = re.compile(r"[^\n。！？!?；;…]*(?:(?:[。！？!?；;]+|…+)[”’」』）)\"']*|\n|$)")
FINAL_PUNCT_RE = re.compile(r"(?:[。！？!?；;]|…+)[”’」』）)\"']*$")
# Marks that enclose a name or a quotation: an answer span holds both halves or neither.
PAIRED_MARKS = {"“": "”", "「": "」", "《": "》", "（": "）", "(": ")", "‘": "’"}


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans (absolute offsets) of the sentences in text[start:end], whitespace-trimmed, newlines excluded."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        m = _SENT_RE.match(text, pos, end)
        if m is None or m.end() == pos:
            pos += 1
            continue
        s, e = m.start(), m.end()
        pos = e
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            spans.append((s, e))
    return spans


def ends_sentence(text: str) -> bool:
    return bool(FINAL_PUNCT_RE.search(text.rstrip()))
