"""Measure the Encoder on this machine: single-query latency and passage throughput per torch thread count.

Run with ``python -m index.bench_encoder`` (prepares the default model folder first if needed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from index.encoder import Encoder
from index.modelprep import ensure_model

_SENTENCES = (
    "江门市有21万多名党员，分布在全市各级基层党组织中。",
    "镇街党群服务中心为群众提供政策咨询、证明开具、社保医保等一站式服务。",
    "深入实施“百县千镇万村高质量发展工程”，推动城乡区域协调发展向着更高水平迈进。",
    "网格员每月入户走访不少于2次，及时掌握辖区居民诉求并按流程上报处置。",
    "2024年暑运期间，江门站累计发送旅客约186.5万人次，同比增长12.3%。",
    "气象部门启动防汛Ⅳ级应急响应，请市民减少外出并做好防范。",
    "各区（市）要在3～5年内完成城镇老旧小区改造任务，同步完善配套设施。",
    "申请人须提交身份证、户口簿及近6个月的社保缴费记录，材料齐全的当场受理。",
    "新会陈皮产业从业人员超过7万人，全产业链产值突破190亿元。",
    "开平碉楼与村落于2007年列入《世界遗产名录》，是广东首个世界文化遗产。",
)
_QUERIES = ("百千万工程是什么", "江门有多少党员", "暑运旅客发送量", "老旧小区改造期限", "Ⅳ级应急响应")


@dataclass(frozen=True)
class BenchResult:
    threads: int
    query_ms: tuple[float, ...]
    passages_per_s: tuple[float, ...]

    @property
    def query_ms_median(self) -> float:
        return statistics.median(self.query_ms)

    @property
    def query_ms_p90(self) -> float:
        ordered = sorted(self.query_ms)
        return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]

    @property
    def passages_per_s_median(self) -> float:
        return statistics.median(self.passages_per_s)


def make_passages(count: int, chars: int = 450) -> list[str]:
    """Deterministic ~``chars``-character Chinese passages (each starts at a different sentence)."""
    passages = []
    for i in range(count):
        text = ""
        j = i
        while len(text) < chars:
            text += _SENTENCES[j % len(_SENTENCES)]
            j += 1
        passages.append(text[:chars])
    return passages


def bench(
    encoder: Encoder,
    threads: Sequence[int],
    *,
    query_runs: int,
    passages: Sequence[str],
    batch_size: int,
    passage_runs: int,
    block: int = 5,
) -> list[BenchResult]:
    """Time every thread count in alternating blocks, so background load hits all of them alike."""
    import torch

    query_ms: dict[int, list[float]] = {t: [] for t in threads}
    rates: dict[int, list[float]] = {t: [] for t in threads}
    for t in threads:  # warm-up: the first calls allocate buffers and spin up the thread pool
        torch.set_num_threads(t)
        for q in _QUERIES:
            encoder.encode_queries([q])
        encoder.encode_passages(passages[:batch_size], batch_size=batch_size)

    while any(len(v) < query_runs for v in query_ms.values()):
        for t in threads:
            torch.set_num_threads(t)
            for _ in range(block):
                query = _QUERIES[len(query_ms[t]) % len(_QUERIES)]
                started = time.perf_counter()
                encoder.encode_queries([query])
                query_ms[t].append((time.perf_counter() - started) * 1000)

    for _ in range(passage_runs):
        for t in threads:
            torch.set_num_threads(t)
            started = time.perf_counter()
            encoder.encode_passages(passages, batch_size=batch_size)
            rates[t].append(len(passages) / (time.perf_counter() - started))
    return [BenchResult(t, tuple(query_ms[t]), tuple(rates[t])) for t in threads]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=None, help="sentence-transformers folder")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--query-runs", type=int, default=30)
    parser.add_argument("--passages", type=int, default=32)
    parser.add_argument("--passage-runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)

    import torch

    model_dir = args.model_dir or ensure_model()
    encoder = Encoder(model_dir)
    passages = make_passages(args.passages)
    tokens = statistics.mean(encoder.count_tokens(p, query=False) for p in passages)
    print(
        f"model {encoder.model_name} ({model_dir}); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads by default"
    )
    print(
        f"passages: {len(passages)} x {len(passages[0])} chars (~{tokens:.0f} tokens), batch {args.batch_size}"
    )
    load_before = os.getloadavg()[0]
    results = bench(
        encoder,
        args.threads,
        query_runs=args.query_runs,
        passages=passages,
        batch_size=args.batch_size,
        passage_runs=args.passage_runs,
    )
    print(f"{'threads':>7}  {'query ms median':>15}  {'query ms p90':>12}  {'passages/s median':>17}  (runs)")
    for r in results:
        print(
            f"{r.threads:>7}  {r.query_ms_median:>15.1f}  {r.query_ms_p90:>12.1f}  "
            f"{r.passages_per_s_median:>17.2f}  ({len(r.query_ms)} queries, {len(r.passages_per_s)} passage runs)"
        )
    # Other processes on a 2-vCPU box skew multi-thread numbers most: say how busy it was.
    print(f"load average (1 min): {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
