"""How many passages the reader should read: quality and latency per count, side by side in one run.

For each count N, every question of a labelled set (default the calibration set, which may tune settings;
never the dev set) is answered with the reader reading the top N passages; printed per N: contains-gold on
answerable questions, short-answer EM / F1, refusal precision / recall, and the answer latency p50 / p95
(encoder, retrieval and reader, no query cache), as medians over --repeat passes.

    .venv/bin/python bench/bench_reader.py                      # N = 1 2 3 5 on seeds-calib
    .venv/bin/python bench/bench_reader.py --counts 2 3 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # policyqa is installed editable; this also covers a plain checkout
    sys.path.insert(0, str(REPO))

from machine import cpu_info, describe  # noqa: E402  (bench/ is the script's folder)

from eval.metrics import contains_gold, exact_match, f1_score, percentile  # noqa: E402


def run(engine: Any, questions: list[dict[str, Any]], n: int) -> dict[str, float]:
    from service.answering import Answerer

    base = engine.answerer()
    answerer = Answerer(base.retriever, base.reader, base.thresholds, n)
    clear = getattr(engine.encoder, "clear_query_cache", None)
    lat, gold, em, f1, refused_unans, refused, unans = [], [], [], [], 0, 0, 0
    for q in questions:
        if clear is not None:
            clear()
        t0 = time.perf_counter()
        a = answerer.answer(q["question"])
        lat.append((time.perf_counter() - t0) * 1000)
        refused += a.refused
        if not q["answerable"]:
            unans += 1
            refused_unans += a.refused
            continue
        text = "" if a.refused else f"{a.answer}\n{a.short_answer or ''}"
        pred = "" if a.refused else (a.short_answer or a.answer)
        gold.append(1.0 if contains_gold(text, q["answers"], bool(q.get("require_all"))) else 0.0)
        em.append(exact_match(pred, q["answers"]))
        f1.append(f1_score(pred, q["answers"]))
    return {"contains_gold": statistics.mean(gold), "em": statistics.mean(em), "f1": statistics.mean(f1),
            "refusal_precision": refused_unans / max(1, refused), "refusal_recall": refused_unans / max(1, unans),
            "p50_ms": percentile(lat, 50) or 0.0, "p95_ms": percentile(lat, 95) or 0.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", type=Path, default=Path("eval/sets/seeds-calib.jsonl"))
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2, 3, 5])
    parser.add_argument("--repeat", type=int, default=1, help="passes per count; medians are printed")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from service.engine import Engine
    from service.settings import load_settings

    cpu = cpu_info()
    print(describe(cpu), flush=True)
    engine = Engine(load_settings())
    engine.ensure_index()
    engine.answer("预热")  # load the encoder, the index and the reader before timing
    questions = [json.loads(line) for line in args.set.read_text(encoding="utf-8").splitlines() if line.strip()]
    results: dict[int, dict[str, float]] = {}
    for n in args.counts:
        passes = [run(engine, questions, n) for _ in range(args.repeat)]
        results[n] = {k: round(statistics.median(p[k] for p in passes), 4) for k in passes[0]}
    print(f"\n{args.set.name}: {len(questions)} questions, {args.repeat} pass(es) per count, medians")
    print("| passages read | contains gold | EM | F1 | refusal P | refusal R | p50 ms | p95 ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, r in results.items():
        print(f"| {n} | {r['contains_gold']:.3f} | {r['em']:.3f} | {r['f1']:.3f} | {r['refusal_precision']:.3f} | "
              f"{r['refusal_recall']:.3f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} |")
    print(f"load average after: {cpu_info()['load_avg_1m']}")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu, "set": str(args.set), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
