"""The assembled reader under ONNX Runtime: a question and a context in, the best span out.

No torch here: tokens from the folder's tokenizer.json through `tokenizers`, windows as in training
(index.reader.features), one ONNX run per window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from corpus.sentences import PAIRED_MARKS
from index.reader.assemble import READER_MANIFEST, READER_ONNX
from index.reader.features import Window, read_span, top_spans, windows

if TYPE_CHECKING:
    import onnxruntime


_EDGE_PUNCT = frozenset("，。；：、,.;:！？!?")
_CLOSERS = {close: open_ for open_, close in PAIRED_MARKS.items()}


def _trim(context: str, a: int, b: int) -> tuple[int, int]:
    """Drop what a token may carry next to the answer: spaces and punctuation ("%，"), and a quotation mark or
    bracket whose partner is outside the span (五邑之窗” → 五邑之窗)."""
    while a < b and (context[a].isspace() or context[a] in _EDGE_PUNCT):
        a += 1
    while b > a and (context[b - 1].isspace() or context[b - 1] in _EDGE_PUNCT):
        b -= 1
    if b > a and context[b - 1] in _CLOSERS and _CLOSERS[context[b - 1]] not in context[a:b - 1]:
        b -= 1
    if b > a and context[a] in PAIRED_MARKS and PAIRED_MARKS[context[a]] not in context[a + 1:b]:
        a += 1
    return a, b


@dataclass(frozen=True)
class Span:
    text: str
    start: int  # character offsets into the context
    end: int
    margin: float  # best span score minus the no-answer score (higher: more sure the context answers)


class OnnxReader:
    def __init__(self, folder: Path, *, threads: int = 1) -> None:
        import onnxruntime as ort

        from index.tokenizer_files import load_tokenizer

        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / READER_MANIFEST).read_text(encoding="utf-8"))
        self.max_tokens = int(self.manifest.get("training", {}).get("max_tokens", 256))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # the session first: ONNX Runtime builds it without the GIL, so a thread loading it overlaps the
        # tokenizer parse (GIL held) and jieba elsewhere (Engine.preload)
        self._session: onnxruntime.InferenceSession = ort.InferenceSession(
            str(self.folder / READER_ONNX), options, providers=["CPUExecutionProvider"])
        self._tokenizer = load_tokenizer(self.folder / "tokenizer.json")  # no padding, no truncation; shared

    def _run(self, ws: list[Window]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Start and end logits of each window, one run per window: unpadded, three passages' windows read in
        two thirds of the time one padded batch takes on two vCPUs (attention grows with the longest window)."""
        starts: list[np.ndarray] = []
        ends: list[np.ndarray] = []
        for w in ws:
            ids = np.asarray([w.ids], dtype=np.int64)
            s, e = self._session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
            starts.append(s[0])
            ends.append(e[0])
        return starts, ends

    def read(self, question: str, context: str) -> Span:
        ws = windows(self._tokenizer, question, context, None, "", max_tokens=self.max_tokens)
        starts, ends = self._run(ws)
        return Span(*read_span(starts, ends, context, ws))

    def read_many(self, question: str, contexts: list[str], per_context: int = 3) -> list[list[Span]]:
        """The best non-overlapping spans of each context, best first."""
        per = [windows(self._tokenizer, question, c, None, "", max_tokens=self.max_tokens) for c in contexts]
        flat = [w for ws in per for w in ws]
        if not flat:
            return [[] for _ in contexts]
        starts, ends = self._run(flat)
        out: list[list[Span]] = []
        row = 0
        for context, ws in zip(contexts, per, strict=True):
            found: list[Span] = []
            for k, w in enumerate(ws):
                for margin, a0, b0 in top_spans(starts[row + k], ends[row + k], w, per_context):
                    a, b = _trim(context, a0, b0)
                    if b > a:
                        found.append(Span(context[a:b], a, b, margin))
            row += len(ws)
            found.sort(key=lambda sp: -sp.margin)
            kept: list[Span] = []
            for sp in found:  # windows overlap: the same span may come from two of them
                if all(sp.end <= k.start or sp.start >= k.end for k in kept):
                    kept.append(sp)
            out.append(kept[:per_context])
        return out
