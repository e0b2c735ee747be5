"""The assembled int8 reader under ONNX Runtime: a question and a context in, the best span out.

No torch here: tokens from the folder's tokenizer.json through `tokenizers`, windows as in training
(index.reader.features), one ONNX run for all windows of a context.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from index.reader.assemble import READER_MANIFEST, READER_ONNX
from index.reader.features import read_span, windows

if TYPE_CHECKING:
    import onnxruntime


@dataclass(frozen=True)
class Span:
    text: str
    start: int  # character offsets into the context
    end: int
    margin: float  # best span score minus the no-answer score (higher: more sure the context answers)


class OnnxReader:
    def __init__(self, folder: Path, *, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / READER_MANIFEST).read_text(encoding="utf-8"))
        self.max_tokens = int(self.manifest.get("training", {}).get("max_tokens", 256))
        self._tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session: onnxruntime.InferenceSession = ort.InferenceSession(
            str(self.folder / READER_ONNX), options, providers=["CPUExecutionProvider"])

    def read(self, question: str, context: str) -> Span:
        ws = windows(self._tokenizer, question, context, None, "", max_tokens=self.max_tokens)
        width = max(len(w.ids) for w in ws)
        ids = np.ones((len(ws), width), dtype=np.int64)  # 1 = <pad>
        mask = np.zeros((len(ws), width), dtype=np.int64)
        for i, w in enumerate(ws):
            ids[i, : len(w.ids)] = w.ids
            mask[i, : len(w.ids)] = 1
        starts, ends = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
        return Span(*read_span(starts, ends, context, ws))
