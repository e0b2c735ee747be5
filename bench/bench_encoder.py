"""Encoder benchmark: every backend side by side in one process, interleaved (prints figures; not a test).

For each encoder configuration (``backend:threads``; default torch:1, torch:2, onnx:1, onnx-int8:1,
onnx-int8:2) it measures, alternating configurations in blocks so background load hits all alike:

  - query encode latency, one question at a time, over real questions (seeds-dev + ChronoQA), p50/p99;
  - passage throughput on the seed chunks as they are embedded (title｜section + text, up to ~450
    characters) and on 250-character passages, batch 16, chunks/s (median of the rounds);
  - a cold build of the seed corpus (`index.builder.build_index` into an empty folder with an empty
    embedding cache), chunks/s, the encoder load time reported separately;
  - `policyqa ask "…"` cold start: a fresh process answering one question against a built index
    (median of --cold-runs per backend);
  - agreement with torch fp32 (the first torch configuration): min / median cosine over the chunks and
    questions.

Every figure is also printed as a ratio to the first torch configuration measured in the same run.

    .venv/bin/python bench/bench_encoder.py
    .venv/bin/python bench/bench_encoder.py --configs torch:1,onnx-int8:1 --rounds 3 --json enc.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from machine import cpu_info, describe  # noqa: E402  (bench/ is the script's folder)

from corpus.pipeline import load_chunked_corpus  # noqa: E402
from index.builder import build_index, passage_text  # noqa: E402
from index.encoders import BACKENDS, BaseEncoder, load_encoder  # noqa: E402
from index.modelinfo import describe_model  # noqa: E402
from index.modelprep import ensure_model  # noqa: E402
from index.segmentation import Segmenter  # noqa: E402


def parse_config(label: str) -> tuple[str, int]:
    backend, _, threads = label.partition(":")
    if backend not in BACKENDS or not threads.isdigit() or int(threads) < 1:
        raise SystemExit(f"bad configuration {label!r}: expected BACKEND:THREADS with BACKEND in {BACKENDS}")
    return backend, int(threads)


def questions(limit: int) -> list[str]:
    out: list[str] = []
    for path in (REPO / "eval/sets/seeds-dev.jsonl", REPO / "eval/external/chronoqa/questions.jsonl"):
        with path.open(encoding="utf-8") as fh:
            out.extend(str(json.loads(line)["question"]) for line in fh if line.strip())
    return [q for q in out if q.strip()][:limit]


def short_passages(count: int, chars: int = 250) -> list[str]:
    out = []
    with (REPO / "eval/external/chronoqa/corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            text = str(json.loads(line).get("text", ""))
            if len(text) >= chars:
                out.append(text[:chars])
            if len(out) >= count:
                break
    return out


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="torch:1,torch:2,onnx:1,onnx-int8:1,onnx-int8:2",
                        help="comma list of BACKEND:THREADS (the first torch one is the reference)")
    parser.add_argument("--questions", type=int, default=200, help="real questions timed one at a time")
    parser.add_argument("--rounds", type=int, default=3, help="passage-throughput rounds per configuration")
    parser.add_argument("--chunks", type=int, default=64, help="seed chunks per throughput round")
    parser.add_argument("--no-build", action="store_true", help="skip the cold builds and cold starts")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh `policyqa ask` processes per backend")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    args = parser.parse_args(argv)

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    parsed = {c: parse_config(c) for c in configs}
    ref = next((c for c in configs if parsed[c][0] == "torch"), None)
    cpu = cpu_info()
    print(describe(cpu))
    print(f"load average before: {cpu['load_avg_1m']}")

    model_dir = ensure_model(progress=lambda m: print(f"model: {m}"))
    encoders: dict[str, BaseEncoder] = {}
    load_s: dict[str, float] = {}
    for c in configs:
        backend, threads = parsed[c]
        t = time.perf_counter()
        encoders[c] = load_encoder(model_dir, backend, threads=threads, build_threads=threads, query_cache=0)
        load_s[c] = time.perf_counter() - t

    corpus = load_chunked_corpus()
    chunk_texts = sorted((passage_text(ch) for ch in corpus.chunks), key=len, reverse=True)[: args.chunks]
    passages250 = short_passages(args.chunks)
    qs = questions(args.questions)
    print(f"{len(qs)} questions; {len(chunk_texts)} seed chunks (mean {statistics.mean(map(len, chunk_texts)):.0f} "
          f"chars); {len(passages250)} ChronoQA passages of 250 chars; batch 16")

    for enc in encoders.values():  # warm-up: thread pools, buffers
        enc.encode_queries(qs[:5])
        enc.encode_passages(chunk_texts[:16], batch_size=16)

    query_ms: dict[str, list[float]] = {c: [] for c in configs}
    block = 10
    for start in range(0, len(qs), block):
        for c in configs:
            for q in qs[start : start + block]:
                t = time.perf_counter()
                encoders[c].encode_queries([q])
                query_ms[c].append((time.perf_counter() - t) * 1000)

    rate450: dict[str, list[float]] = {c: [] for c in configs}
    rate250: dict[str, list[float]] = {c: [] for c in configs}
    for _ in range(args.rounds):
        for c in configs:
            t = time.perf_counter()
            encoders[c].encode_passages(chunk_texts, batch_size=16)
            rate450[c].append(len(chunk_texts) / (time.perf_counter() - t))
            t = time.perf_counter()
            encoders[c].encode_passages(passages250, batch_size=16)
            rate250[c].append(len(passages250) / (time.perf_counter() - t))

    builds: dict[str, dict[str, float]] = {}
    cold_start: dict[str, list[float]] = {}
    if not args.no_build:
        segmenter = Segmenter()
        with tempfile.TemporaryDirectory(prefix="bench-enc-") as work:
            roots: dict[str, Path] = {}
            for c in configs:
                backend, _ = parsed[c]
                root = Path(work) / c.replace(":", "-")
                info = describe_model(model_dir, backend)
                res = build_index(corpus, root, info, lambda c=c: encoders[c], segmenter=segmenter)  # type: ignore[misc]
                builds[c] = {"chunks": res.chunks, "seconds": res.seconds,
                             "chunks_per_s": res.chunks / res.seconds, "with_load_s": res.seconds + load_s[c]}
                roots.setdefault(backend, root)
            # `policyqa ask` in a fresh process against a built index: imports, model and index load, one answer
            cli = Path(sys.executable).with_name("policyqa")
            for _ in range(args.cold_runs):
                for backend, root in roots.items():
                    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYQA_")}
                    env.update({"POLICYQA_INDEX_DIR": str(root), "POLICYQA_ENCODER_BACKEND": backend})
                    t = time.perf_counter()
                    subprocess.run([str(cli), "ask", "江门市有多少名党员？"], env=env, check=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    cold_start.setdefault(backend, []).append(time.perf_counter() - t)

    agreement: dict[str, dict[str, float]] = {}
    if ref is not None:
        ref_p = encoders[ref].encode_passages(chunk_texts)
        ref_q = encoders[ref].encode_queries(qs)
        for c in configs:
            cp = (encoders[c].encode_passages(chunk_texts) * ref_p).sum(1)
            cq = (encoders[c].encode_queries(qs) * ref_q).sum(1)
            both = np.concatenate([cp, cq])
            agreement[c] = {"cos_min": float(both.min()), "cos_median": float(np.median(both)), "texts": len(both)}

    def ratio(c: str, value: float, base: float | None) -> str:
        return f"{value / base:.2f}x" if base else "–"

    print()
    head = (f"{'encoder':14}{'load s':>7}{'query p50':>10}{'p99':>8}{'ratio':>7}{'450-char/s':>11}{'ratio':>7}"
            f"{'250-char/s':>11}{'ratio':>7}{'cold build/s':>13}{'ratio':>7}{'cos min':>9}{'median':>8}")
    print(head)
    rq = statistics.median(query_ms[ref]) if ref else None
    r450 = statistics.median(rate450[ref]) if ref else None
    r250 = statistics.median(rate250[ref]) if ref else None
    rb = builds[ref]["chunks_per_s"] if ref and builds else None
    rows = {}
    for c in configs:
        p50, p99 = statistics.median(query_ms[c]), pct(query_ms[c], 99)
        m450, m250 = statistics.median(rate450[c]), statistics.median(rate250[c])
        b = builds.get(c, {}).get("chunks_per_s")
        ag = agreement.get(c, {})
        rows[c] = {"load_s": load_s[c], "query_p50_ms": p50, "query_p99_ms": p99, "chunks450_per_s": m450,
                   "passages250_per_s": m250, "cold_build": builds.get(c), "agreement": ag,
                   "ratio_query_p50": p50 / rq if rq else None, "ratio_450": m450 / r450 if r450 else None,
                   "ratio_build": b / rb if (b and rb) else None}
        print(f"{c:14}{load_s[c]:>7.2f}{p50:>10.2f}{p99:>8.2f}{ratio(c, p50, rq):>7}{m450:>11.1f}{ratio(c, m450, r450):>7}"
              f"{m250:>11.1f}{ratio(c, m250, r250):>7}{(f'{b:.1f}' if b else '–'):>13}"
              f"{(ratio(c, b, rb) if b else '–'):>7}{ag.get('cos_min', float('nan')):>9.4f}"
              f"{ag.get('cos_median', float('nan')):>8.4f}")
    print(f"\nquery figures over {len(qs)} questions each (ms, one at a time); throughput medians of {args.rounds} "
          f"rounds; cold build = build_index of {len(corpus.chunks)} seed chunks into an empty folder "
          f"(encoder already loaded; its load time is the 'load s' column)")
    ref_cold = statistics.median(cold_start["torch"]) if "torch" in cold_start else None
    for backend, runs in cold_start.items():
        med = statistics.median(runs)
        print(f"`policyqa ask` cold start, {backend}: median {med:.2f} s of {len(runs)} fresh processes "
              f"(min {min(runs):.2f}, max {max(runs):.2f}){f', {med / ref_cold:.2f}x torch' if ref_cold else ''}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu, "configs": rows, "cold_start_s": cold_start}, indent=2),
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
