"""How to feed the reader its windows: one padded batch per question, or one ONNX run per window; fp32 (ships)
against the int8 reader shipped before (FFN output projections fp32); one ONNX Runtime thread against two (ships,
POLICYQA_READER_THREADS); side by side in one process.

Each question of the set is retrieved once; the reader then reads the windows of its top --passages passages
in every way compared, the ways taking turns on each question so that they share the CPU alike. Printed: mean
read time per question, median over --repeat passes. Reading only (no retrieval, no answer composition).

    .venv/bin/python bench/bench_reader_runs.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # policyqa is installed editable; this also covers a plain checkout
    sys.path.insert(0, str(REPO))

from machine import cpu_info, describe  # noqa: E402  (bench/ is the script's folder)

INT8_FFN_OUT_FP32 = {"fp32_nodes": r"/layer\.\d+/output/dense/MatMul$"}


def padded_batch(reader: Any, ws: list[Any]) -> None:
    """The runtime before: every window of the question's passages in one batch, padded to the longest."""
    import numpy as np

    width = max(len(w.ids) for w in ws)
    ids = np.ones((len(ws), width), dtype=np.int64)  # 1 = <pad>
    mask = np.zeros((len(ws), width), dtype=np.int64)
    for i, w in enumerate(ws):
        ids[i, : len(w.ids)] = w.ids
        mask[i, : len(w.ids)] = 1
    reader._session.run(None, {"input_ids": ids, "attention_mask": mask})


def per_window(reader: Any, ws: list[Any]) -> None:
    reader._run(ws)


def int8_reader(work: Path, fp32_dir: Path) -> Path:
    from index.onnxexport import QUANTIZATION, quantise
    from index.reader.assemble import READER_MANIFEST, READER_ONNX

    folder = work / "int8"
    folder.mkdir()
    quantise(fp32_dir / READER_ONNX, folder / READER_ONNX, {**QUANTIZATION, **INT8_FFN_OUT_FP32})
    for name in ("tokenizer.json", READER_MANIFEST):
        shutil.copyfile(fp32_dir / name, folder / name)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", type=Path, default=Path("eval/sets/seeds-dev.jsonl"))
    parser.add_argument("--passages", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from index.reader.features import windows
    from index.reader.onnx_reader import OnnxReader
    from service.engine import Engine
    from service.settings import load_settings

    print(describe(cpu_info()), flush=True)
    engine = Engine(load_settings())
    engine.ensure_index()
    answerer = engine.answerer()
    fp32 = OnnxReader(answerer.reader.folder, threads=1)
    fp32_two = OnnxReader(answerer.reader.folder, threads=2)
    questions = [json.loads(line)["question"] for line in args.set.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    with tempfile.TemporaryDirectory(prefix="policyqa-runs-") as tmp:
        int8 = OnnxReader(int8_reader(Path(tmp), fp32.folder))
        per_question = []
        for q in questions:
            found = answerer.retriever.search(q, args.passages, "hybrid").results[: args.passages]
            per_question.append([w for p in found
                                 for w in windows(fp32._tokenizer, q, p.text, None, "", max_tokens=fp32.max_tokens)])
        ways: dict[str, Callable[[list[Any]], None]] = {
            "int8 (FFN out fp32), one padded batch (before)": lambda ws: padded_batch(int8, ws),
            "int8 (FFN out fp32), one run per window": lambda ws: per_window(int8, ws),
            "fp32, one padded batch": lambda ws: padded_batch(fp32, ws),
            "fp32, one run per window": lambda ws: per_window(fp32, ws),
            "fp32, one run per window, two threads (ships)": lambda ws: per_window(fp32_two, ws),
        }
        passes: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.repeat):
            spent = dict.fromkeys(ways, 0.0)
            for ws in per_question:
                for name, way in ways.items():
                    t0 = time.perf_counter()
                    way(ws)
                    spent[name] += time.perf_counter() - t0
            for name in ways:
                passes[name].append(1000 * spent[name] / len(per_question))
    tokens = sum(len(w.ids) for ws in per_question for w in ws)
    padded = sum(max(len(w.ids) for w in ws) * len(ws) for ws in per_question if ws)
    print(f"\n{args.set.name}: {len(questions)} questions, top {args.passages} passages, "
          f"{sum(map(len, per_question))} windows; a padded batch is {100 * (1 - tokens / padded):.0f}% padding")
    base = statistics.median(passes[next(iter(ways))])
    print("| reader, runs | read ms / question (median of passes) | vs before |")
    print("|---|---:|---:|")
    for name, times in passes.items():
        m = statistics.median(times)
        print(f"| {name} | {m:.1f} | {m / base:.2f}x |")
    print(f"load average after: {cpu_info()['load_avg_1m']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
