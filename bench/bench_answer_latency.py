"""Cited-answer latency (encoder, retrieval, reader, composition; no query cache) by how the reader runs: one
ONNX Runtime thread or two (POLICYQA_READER_THREADS), every top passage read or the first alone when it is sure
(the calibrated sure margin). The ways take turns on each question, so they share the CPU alike; printed:
p50 / p95 per way as medians over --repeat passes, the ratio to the first way, how many questions settled on
the first passage, and how many answers differ from reading every passage.

    .venv/bin/python bench/bench_answer_latency.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # policyqa is installed editable; this also covers a plain checkout
    sys.path.insert(0, str(REPO))

from machine import cpu_info, describe  # noqa: E402  (bench/ is the script's folder)

from eval.metrics import percentile  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", type=Path, default=Path("eval/sets/seeds-dev.jsonl"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from service.answering import Answerer
    from service.answering.candidates import PassageReader
    from service.engine import Engine
    from service.settings import load_settings

    print(describe(cpu_info()), flush=True)
    engine = Engine(load_settings())
    engine.ensure_index()
    engine.answer("预热")  # load the encoder, the index and the reader before timing
    base = engine.answerer()
    one, two = PassageReader(base.reader.folder, threads=1), PassageReader(base.reader.folder, threads=2)
    every = replace(base.thresholds, sure_margin=math.inf)
    ways: dict[str, Answerer] = {
        "1 thread, every passage": Answerer(base.retriever, one, every),
        "2 threads, every passage": Answerer(base.retriever, two, every),
        f"2 threads, first passage when sure (>= {base.thresholds.sure_margin}; ships)":
            Answerer(base.retriever, two, base.thresholds),
    }
    clear = getattr(engine.encoder, "clear_query_cache", None)
    questions = [json.loads(line)["question"] for line in args.set.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    lat: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    settled: dict[str, int] = dict.fromkeys(ways, 0)
    differ: dict[str, int] = dict.fromkeys(ways, 0)
    for _ in range(args.repeat):
        times: dict[str, list[float]] = {name: [] for name in ways}
        for q in questions:
            answers: dict[str, Any] = {}
            for name, answerer in ways.items():
                if clear is not None:
                    clear()
                t0 = time.perf_counter()
                answers[name] = a = answerer.answer(q)
                times[name].append((time.perf_counter() - t0) * 1000)
                settled[name] += a.signals.get("passages_read") == 1
            first = answers[next(iter(ways))]
            for name, a in answers.items():
                differ[name] += (a.short_answer, a.refused, a.citations) != (
                    first.short_answer, first.refused, first.citations)
        for name in ways:
            lat[name].append((percentile(times[name], 50) or 0.0, percentile(times[name], 95) or 0.0))
    print(f"\n{args.set.name}: {len(questions)} questions, {args.repeat} passes, medians of the passes' p50 / p95")
    print("| reader | p50 ms | p95 ms | p50 vs first | settled on passage 1 | answers differing from the first |")
    print("|---|---:|---:|---:|---:|---:|")
    base50 = statistics.median(p50 for p50, _ in lat[next(iter(ways))])
    for name, rows in lat.items():
        p50, p95 = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
        print(f"| {name} | {p50:.0f} | {p95:.0f} | {p50 / base50:.2f}x | {settled[name] // args.repeat} | "
              f"{differ[name] // args.repeat} |")
    print(f"load average after: {cpu_info()['load_avg_1m']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
