"""Scale benchmark for policyqa at 1,000,000 chunks (prints figures; it is not a timed test).

It compares the dense stores a 1M-chunk deployment could use, and the two BM25 implementations, on one
machine, each part in its own fresh process (so a part's memory is its own):

  - FAISS HNSW   IndexHNSWFlat, inner product, M=32, efConstruction=100; efSearch swept (64/128/256).
  - FAISS IVF-PQ IndexIVFPQ, inner product, nlist = 4*sqrt(N) (4000 at 1M), PQ m=48 and m=96 x 8 bits
                 (--pq-m; one index each), k-means on 40*nlist sampled vectors (15 iterations); nprobe swept;
                 then the same index behind an IndexRefineFlat (nprobe x k_factor swept: k_factor*50
                 candidates re-scored exactly), which keeps the raw vectors in RAM as well.
  - FAISS Flat   IndexFlatIP: the exact search every recall figure is measured against (and its latency).
  - Milvus       the real engine: milvus-lite 2.5.1's ``milvus`` binary (knowhere; pymilvus starts it for a
                 local ``.db`` file in the work dir) or, with --milvus-uri, any Milvus server. Its memory is the
                 server process's (measured on the binary's /proc entry; not available over a URI). Every dense
                 index type is first probed on 3,000 vectors (create, insert, flush, release, load, search);
                 the N collection gets what the store would build (index/stores/milvus.py: dense_indexes()):
                 HNSW (M=32, efConstruction=100; ef 64 and 256) where the engine builds it, else FLAT;
                 --milvus-index IVF_FLAT measures IVF_FLAT instead (nlist 4*sqrt(N); nprobe swept). (Until 2026-12 this part ran on milvus-lite 3.x, a pure-Python
                 emulator of the Milvus API; docs/scaling.md keeps those figures, labelled.)
  - bm25s        the project's index.sparse.SparseIndex over index.segmentation.Segmenter tokens.
  - Milvus BM25  the project's schema for text (index/stores/milvus.py: analyzer_params(), bm25_text(), a BM25
                 function into a SPARSE_FLOAT_VECTOR with a SPARSE_INVERTED_INDEX) at --milvus-bm25-n texts
                 (default N), inserted until then or --milvus-bm25-limit-s seconds of inserting, whichever
                 comes first (the size reached is printed). Any Milvus insert also stops when the server
                 process passes 8 GB RSS.

For each: build time, memory (RSS of the serving process after loading the built index from disk, minus the
RSS before; the build's peak RSS separately), disk size, query latency p50/p99 at k=50 (one query at a time,
one FAISS thread, medians over --reps repetitions of every query; for Milvus no repetition starts after
150 s of timing, for FAISS after 240 s), recall@10 against exact search. IVF-PQ with refine sweeps nprobe and
k_factor.

Data (deterministic):

  - Passages: the 94 seed chunks (corpus/seeds, as the builder embeds them: title｜section + text), plus DRCD
    dev+test paragraphs (/work/shared/trainsets/drcd, Traditional Chinese: no simplified copy of DRCD exists
    here; 2,000 paragraphs give only ~2,700 chunks) and CMRC 2018 dev contexts (eval/external/cmrc2018_dev,
    Simplified Chinese Wikipedia, 848), cut at sentence ends into chunks of 200-400 characters, title +
    newline + chunk, drawn at random (random.Random(20261130)) up to --passages (default 4,000) in all, and
    embedded with the project's ONNX int8 encoder (index/models/multilingual-e5-small, one
    thread; "passage: " prefix), which also gives the encoder throughput (chunks/s per thread).
  - N vectors: a real passage vector (uniformly drawn) + Gaussian noise of norm --noise-norm (0.40: per
    dimension sigma 0.40/sqrt(384) = 0.0204), L2-normalised: cosine to the base ~0.93 (the measured mean is
    printed). So ~N/passages perturbed copies of each real passage: a harsher neighbourhood than a real corpus
    (the top 10 are separated by noise only), which makes compressed indexes (PQ) look worse, not better.
  - Queries: --queries real questions embedded as queries ("query: " prefix): half from
    eval/sets/seeds-dev.jsonl, half DRCD / CMRC 2018 questions whose answer lies in an embedded chunk.
  - BM25 texts: the sentences of all the DRCD and CMRC paragraphs and the seed chunks, recombined: each text takes
    sentences drawn at random (random.Random(20261130)) until it reaches a length drawn from 200-400
    characters. The BM25 queries are the same questions as text.

    .venv/bin/python bench/bench_scale.py --quick                        # n=20,000, smoke check (~4 min)
    nice -n 10 .venv/bin/python bench/bench_scale.py --json scale.json   # the full 1M run (~50 min, 2 vCPUs)
    .venv/bin/python bench/bench_scale.py --n 200000 --parts prep,flat,hnsw,ivfpq
    .venv/bin/python bench/bench_scale.py --parts prep,bm25s,milvus-bm25 --milvus-bm25-limit-s 600
    .venv/bin/python bench/bench_scale.py --n 100000 --parts prep,flat,milvus,bm25s,milvus-bm25  # Milvus beside FAISS
    .venv/bin/python bench/bench_scale.py --report-from scale.json     # print a saved run's report again

Parts (--parts, in this order): prep, flat, hnsw, ivfpq, milvus, bm25s, milvus-bm25. Work files (vectors,
indexes, Milvus folders: GBs at 1M) go in --workdir (default a new folder in the system temp dir), removed at
the end unless --keep.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import logging
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench_retrieval import BlockTokens, folder_mb, median_pct, reset_peak_rss  # noqa: E402
from machine import cpu_info, describe  # noqa: E402  (bench/ is the script's folder)

# --- targets (issue #17) ------------------------------------------------------------------------------------
TARGET_RAM_GB = 8.0  # 1M chunks in <= 8 GB RAM
TARGET_P50_MS = 40.0  # retrieval p50

K = 50  # retrieved per query (what the hybrid fusion takes from each side)
RECALL_AT = 10
SEED = 20261130
DRCD_DIR = Path("/work/shared/trainsets/drcd/raw")
CMRC_DIR = REPO / "eval" / "external" / "cmrc2018_dev"
MODEL_DIR = REPO / "index" / "models" / "multilingual-e5-small"
PARTS = ("prep", "flat", "hnsw", "ivfpq", "milvus", "bm25s", "milvus-bm25")
EXTRA_LIBRARIES = ("pymilvus", "milvus-lite", "jieba")
HNSW_EF = (64, 128, 256)
MILVUS_EF = (64, 256)
MILVUS_NPROBE = (8, 16, 32, 64, 128)
MILVUS_RSS_CAP_MB = 8000  # a Milvus insert stops when the server's RSS passes it
IVF_NPROBE = (8, 16, 32, 64, 128)
REFINE_SWEEP = ((16, 4), (64, 4), (16, 16), (64, 16), (64, 64))  # (nprobe, k_factor)
MILVUS_PROBE_TYPES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("FLAT", {}), ("IVF_FLAT", {"nlist": 16}), ("IVF_SQ8", {"nlist": 16}),
    ("IVF_PQ", {"nlist": 16, "m": 48, "nbits": 8}), ("HNSW", {"M": 16, "efConstruction": 64}),
    ("HNSW_SQ", {"M": 16, "efConstruction": 64, "sq_type": "SQ8"}),
    ("HNSW_PQ", {"M": 16, "efConstruction": 64, "m": 48, "nbits": 8}), ("DISKANN", {}),
    ("SCANN", {"nlist": 16}), ("AUTOINDEX", {}))


# --- measuring --------------------------------------------------------------------------------------------
def proc_status() -> dict[str, float]:
    """VmRSS, RssAnon, VmHWM of this process in MB (anonymous memory excludes memory-mapped input files)."""
    out: dict[str, float] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


def path_mb(path: Path) -> float:
    return folder_mb(path) if path.is_dir() else path.stat().st_size / 2**20


def time_queries(search: Callable[[int], Any], count: int, reps: int, warm: int = 5,
                 budget_s: float = 240.0, keep: list[Any] | None = None) -> dict[str, Any]:
    """search(i) for every query i, reps times (warm-up first); median over reps of each rep's p50/p99.
    No further repetition starts once budget_s has passed (the figures say how many ran). keep, when given,
    receives the first repetition's results."""
    for i in range(min(warm, count)):
        search(i)
    runs: list[list[float]] = []
    start = time.perf_counter()
    for _ in range(reps):
        if runs and time.perf_counter() - start > budget_s:
            break
        ms = []
        for i in range(count):
            t = time.perf_counter()
            got = search(i)
            ms.append((time.perf_counter() - t) * 1000)
            if keep is not None and not runs:
                keep.append(got)
        runs.append(ms)
    p50, p99 = median_pct(runs)
    return {"p50_ms": p50, "p99_ms": p99, "queries": count, "reps": len(runs)}


def recall_at(found: np.ndarray, truth: np.ndarray, at: int = RECALL_AT) -> float:
    hits = [len(set(f[:at].tolist()) & set(t[:at].tolist())) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits) / at)


def progress(part: str, message: str) -> None:
    print(f"  [{part} {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- data ----------------------------------------------------------------------------------------------------
def split_chunks(text: str, lo: int = 200, hi: int = 400) -> list[str]:
    """A paragraph cut at sentence ends into pieces of lo-hi characters (a short tail joins the last piece)."""
    from corpus.sentences import sentence_spans

    out: list[str] = []
    cur = ""
    for s, e in sentence_spans(text):
        sent = text[s:e]
        if cur and len(cur) >= lo and len(cur) + len(sent) > hi:
            out.append(cur)
            cur = ""
        cur += sent
    if cur:
        if out and len(cur) < lo // 2 and len(out[-1]) + len(cur) <= hi + lo // 2:
            out[-1] += cur
        else:
            out.append(cur)
    return out


def chunk_with_questions(title: str, ctx: str, questions: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    """A paragraph's chunks [{text: title + newline + chunk, questions}]: a question goes with the chunk that
    holds its answer start."""
    out = []
    pos = 0
    for piece in split_chunks(ctx):
        start = ctx.find(piece[:20], pos)
        start = pos if start < 0 else start
        end = start + len(piece)
        out.append({"text": f"{title}\n{piece}", "questions": [q for q, a in questions if start <= a < end]})
        pos = end
    return out


def passage_material() -> tuple[list[dict[str, Any]], list[str]]:
    """DRCD dev+test (Traditional) and CMRC 2018 dev (Simplified) chunks with their questions, and every
    paragraph (for the BM25 sentence pool)."""
    chunks: list[dict[str, Any]] = []
    paragraphs: list[str] = []
    for name in ("DRCD_dev.json", "DRCD_test.json"):
        data = json.loads((DRCD_DIR / name).read_text(encoding="utf-8"))
        for article in data["data"]:
            for para in article["paragraphs"]:
                ctx = str(para["context"])
                paragraphs.append(ctx)
                qs = [(str(q["question"]), int(q["answers"][0]["answer_start"])) for q in para["qas"] if q.get("answers")]
                chunks.extend(chunk_with_questions(str(article["title"]), ctx, qs))
    by_doc: dict[str, list[tuple[str, int]]] = {}
    for line in (CMRC_DIR / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            q = json.loads(line)
            if q.get("answer_starts") and int(q["answer_starts"][0]) >= 0:
                by_doc.setdefault(str(q["doc_id"]), []).append((str(q["question"]), int(q["answer_starts"][0])))
    for line in (CMRC_DIR / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            doc = json.loads(line)
            paragraphs.append(str(doc["text"]))
            chunks.extend(chunk_with_questions(str(doc["title"]), str(doc["text"]), by_doc.get(str(doc["doc_id"]), [])))
    return chunks, paragraphs


def bm25_texts(n: int, paragraphs: Sequence[str]) -> list[str]:
    """n texts of real sentences recombined (deterministic), each 200-400 characters."""
    from corpus.sentences import sentence_spans

    pool = sorted({p[s:e] for p in paragraphs for s, e in sentence_spans(p) if len(p[s:e]) >= 6})
    rng = random.Random(SEED)
    out = []
    for _ in range(n):
        target = rng.randint(200, 400)
        parts: list[str] = []
        size = 0
        while size < target:
            sent = pool[rng.randrange(len(pool))]
            parts.append(sent)
            size += len(sent)
        out.append("".join(parts))
    return out


def load_work(work: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    config = json.loads((work / "config.json").read_text(encoding="utf-8"))
    prep = json.loads((work / "prep.json").read_text(encoding="utf-8"))
    return config, prep


def faiss_threads(n: int) -> None:
    import faiss

    faiss.omp_set_num_threads(n)


# --- part: prep ----------------------------------------------------------------------------------------------
def part_prep(work: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    from corpus.pipeline import load_chunked_corpus
    from eval.sets import load_set
    from index.builder import passage_text
    from index.encoders import load_encoder

    rng = random.Random(SEED)
    seed_texts = [passage_text(c) for c in load_chunked_corpus().chunks]
    drcd, paragraphs = passage_material()
    take = max(0, int(cfg["passages"]) - len(seed_texts))
    chosen = sorted(rng.sample(range(len(drcd)), k=min(take, len(drcd))))
    passages = seed_texts + [drcd[i]["text"] for i in chosen]
    progress("prep", f"{len(seed_texts)} seed chunks + {len(chosen)} of {len(drcd)} DRCD/CMRC chunks")

    seeds_q = [q.question for q in load_set("seeds-dev")[1]]
    drcd_q = [rng.choice(drcd[i]["questions"]) for i in chosen if drcd[i]["questions"]]
    half = int(cfg["queries"]) // 2
    questions = seeds_q[:half] + rng.sample(drcd_q, k=min(len(drcd_q), int(cfg["queries"]) - min(half, len(seeds_q))))

    encoder = load_encoder(MODEL_DIR, "onnx-int8", threads=1, build_threads=1, query_cache=0)
    encoder.encode_passages(passages[:16])  # warm-up
    t = time.perf_counter()
    pv = encoder.encode_passages(passages, batch_size=16)
    encode_s = time.perf_counter() - t
    progress("prep", f"embedded {len(passages)} passages in {encode_s:.0f} s")
    t = time.perf_counter()
    qv = encoder.encode_queries(questions)
    query_encode_ms = (time.perf_counter() - t) * 1000 / len(questions)

    n, dim = int(cfg["n"]), pv.shape[1]
    gen = np.random.default_rng(SEED)
    sigma = float(cfg["noise_norm"]) / math.sqrt(dim)
    out = np.lib.format.open_memmap(work / "vectors.npy", mode="w+", dtype=np.float32, shape=(n, dim))
    cos: list[float] = []
    t = time.perf_counter()
    for s in range(0, n, 100_000):
        e = min(n, s + 100_000)
        base = pv[gen.integers(len(pv), size=e - s)]
        block = base + gen.standard_normal(base.shape, dtype=np.float32) * sigma
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        cos.append(float(np.einsum("ij,ij->i", block[:2000], base[:2000]).mean()))
        out[s:e] = block
    out.flush()
    del out
    np.save(work / "queries.npy", np.ascontiguousarray(qv, dtype=np.float32))
    (work / "material.json").write_text(json.dumps({"questions": questions, "paragraphs": paragraphs + seed_texts},
                                                   ensure_ascii=False), encoding="utf-8")
    q_to_passage = (qv @ pv.T).max(axis=1)
    return {"passages": len(passages), "seed_chunks": len(seed_texts), "drcd_cmrc_chunks_total": len(drcd),
            "passage_chars_mean": statistics.mean(map(len, passages)), "questions": len(questions),
            "questions_seeds_dev": min(half, len(seeds_q)), "encode_s": encode_s,
            "encoder_chunks_per_s_per_thread": len(passages) / encode_s, "query_encode_ms_mean": query_encode_ms,
            "dim": dim, "n": n, "noise_norm": cfg["noise_norm"], "noise_sigma_per_dim": sigma,
            "cos_to_base_mean": statistics.mean(cos), "vectors_s": time.perf_counter() - t,
            "question_best_passage_cos_mean": float(q_to_passage.mean()), "bm25_paragraphs": len(paragraphs)}


# --- part: flat (exact search, the ground truth) ------------------------------------------------------------
def part_flat(work: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    import faiss

    vectors = np.load(work / "vectors.npy", mmap_mode="r")
    queries = np.load(work / "queries.npy")
    n, dim = vectors.shape
    before = proc_status()
    faiss_threads(int(cfg["threads"]))
    t = time.perf_counter()
    index = faiss.IndexFlatIP(dim)
    for s in range(0, n, 100_000):
        index.add(np.ascontiguousarray(vectors[s : s + 100_000]))
    build_s = time.perf_counter() - t
    _, truth = index.search(queries, K)
    np.save(work / "truth.npy", truth)
    after = proc_status()
    faiss_threads(1)
    lat = time_queries(lambda i: index.search(queries[i : i + 1], K), len(queries), int(cfg["reps"]))
    return {"build_s": build_s, "ram_mb": after["RssAnon"] - before["RssAnon"], "disk_mb": n * dim * 4 / 2**20,
            "disk_note": "raw fp32 vectors (not written)", "latency": lat, "recall_at_10": 1.0}


# --- part: FAISS HNSW ----------------------------------------------------------------------------------------
def part_hnsw(work: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    import faiss

    vectors = np.load(work / "vectors.npy", mmap_mode="r")
    n, dim = vectors.shape
    faiss_threads(int(cfg["threads"]))
    reset_peak_rss()
    before = proc_status()
    t = time.perf_counter()
    index = faiss.IndexHNSWFlat(dim, int(cfg["hnsw_m"]), faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = int(cfg["hnsw_efc"])
    step = max(10_000, n // 10)
    for s in range(0, n, step):
        index.add(np.ascontiguousarray(vectors[s : s + step]))
        progress("hnsw", f"added {min(n, s + step):,} / {n:,} ({time.perf_counter() - t:.0f} s)")
    build_s = time.perf_counter() - t
    peak = proc_status()["VmHWM"] - before["VmRSS"]
    path = work / "hnsw.faiss"
    faiss.write_index(index, str(path))
    del index
    return {"build_s": build_s, "build_peak_extra_mb": peak, "disk_mb": path_mb(path),
            "M": cfg["hnsw_m"], "efConstruction": cfg["hnsw_efc"], **run_child("hnsw-serve", work, cfg)}


def part_hnsw_serve(work: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    import faiss

    return serve_faiss(work, cfg, lambda: faiss.read_index(str(work / "hnsw.faiss")), "efSearch", HNSW_EF,
                       lambda idx, v: setattr(idx.hnsw, "efSearch", v))


def serve_faiss(work: Path, cfg: dict[str, Any], load: Callable[[], Any], knob: str, values: Sequence[Any],
                set_knob: Callable[[Any, Any], None],
                describe_knob: Callable[[Any], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Load the index (RSS delta), then recall@10 and one-query latency at k=50 for each knob value."""
    queries = np.load(work / "queries.npy")
    truth = np.load(work / "truth.npy")
    gc.collect()
    before = proc_status()
    t = time.perf_counter()
    index = load()
    load_s = time.perf_counter() - t
    ram = proc_status()["RssAnon"] - before["RssAnon"]
    faiss_threads(1)
    sweep = []
    for v in values:
        set_knob(index, v)
        _, ids = index.search(queries, K)
        lat = time_queries(lambda i: index.search(queries[i : i + 1], K), len(queries), int(cfg["reps"]))
        sweep.append({**(describe_knob(v) if describe_knob else {knob: v}), "recall_at_10": recall_at(ids, truth),
                      **lat})
        progress("serve", f"{knob}={v}: recall@10 {sweep[-1]['recall_at_10']:.3f}, p50 {lat['p50_ms']:.2f} ms")
    return {"load_s": load_s, "ram_mb": ram, "sweep": sweep, "chosen": choose(sweep)}


def choose(sweep: Sequence[dict[str, Any]], want: float = 0.95) -> dict[str, Any]:
    """The fastest setting reaching recall@10 >= want (0.95, else 0.9), else the best recall."""
    for goal in (want, 0.9):
        ok = [s for s in sweep if s["recall_at_10"] >= goal]
        if ok:
            return dict(min(ok, key=lambda s: s["p50_ms"]))
    return dict(max(sweep, key=lambda s: s["recall_at_10"]))


# --- part: FAISS IVF-PQ (+ refine) --------------------------------------------------------------------------
def part_ivfpq(work: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    import faiss

    vectors = np.load(work / "vectors.npy", mmap_mode="r")
    n, dim = vectors.shape
    nlist = max(16, round(4 * math.sqrt(n)))
    m = int(cfg["pq_m"])
    faiss_threads(int(cfg["threads"]))
    reset_peak_rss()
    before = proc_status()
    t = time.perf_counter()
    index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = 15
    train_n = min(n, 40 * nlist)
    sample = np.sort(np.random.default_rng(SEED).choice(n, size=train_n, replace=False))
    index.train(np.ascontiguousarray(vectors[sample]))
    train_s = time.perf_counter() - t
    progress("ivfpq", f"trained nlist={nlist} m={m} on {train_n:,} vectors in {train_s:.0f} s")
    for s in range(0, n, 100_000):
        index.add(np.ascontiguousarray(vectors[s : s + 100_000]))
    build_s = time.perf_counter() - t
    peak = proc_status()["VmHWM"] - before["VmRSS"]
    path = work / "ivfpq.faiss"
    faiss.write_index(index, str(path))
    del index
    out: dict[str, Any] = {"build_s": build_s, "train_s": train_s, "build_peak_extra_mb": peak, "nlist": nlist,
                           "pq_m": m, "pq_bits": 8, "train_vectors": train_n, "kmeans_iter": 15,
                           "disk_mb": path_mb(path), **run_child("ivfpq-serve", work, cfg)}
    out["refine"] = {**run_child("refine-serve", work, cfg), "k_factor": cfg["refine_k_factor"],
                     "disk_mb": out["disk_mb"] + n * dim * 4 / 2**20}
    return out


def part_ivfpq_serve(work: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    import faiss

    return serve_faiss(work, cfg, lambda: faiss.read_index(str(work / "ivfpq.faiss")), "nprobe", IVF_NPROBE,
                       lambda idx, v: setattr(idx, "nprobe", v))


def part_refine_serve(work: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """The IVF-PQ index with exact re-scoring of k_factor*k candidates (IndexRefineFlat holds the raw
    vectors: a copy of them is counted in its RAM); nprobe and k_factor swept."""
    import faiss

    vectors = np.load(work / "vectors.npy", mmap_mode="r")
    holder: dict[str, Any] = {}

    def load() -> Any:
        base = holder["base"] = faiss.read_index(str(work / "ivfpq.faiss"))
        return faiss.IndexRefineFlat(base, faiss.swig_ptr(np.ascontiguousarray(vectors)))

    def set_knobs(idx: Any, v: tuple[int, int]) -> None:
        holder["base"].nprobe = v[0]
        idx.k_factor = v[1]

    return serve_faiss(work, cfg, load, "nprobe,k_factor", REFINE_SWEEP, set_knobs,
                       lambda v: {"nprobe": v[0], "k_factor": v[1]})


# --- part: Milvus dense ------------------------------------------------------------------------------------
def quiet_milvus() -> None:
    for name in ("pymilvus", "grpc._server", "milvus_lite"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def milvus_client(work: Path, cfg: dict[str, Any], name: str) -> tuple[Any, int | None]:
    """A client on --milvus-uri, or on a Milvus Lite file in the work dir (pymilvus starts milvus-lite's binary
    as a child of this process); with the server's pid when it is that child (its memory is measured)."""
    from pymilvus import MilvusClient

    uri = str(cfg.get("milvus_uri") or "")
    if uri:
        return MilvusClient(uri, timeout=60), None
    before = set(child_pids())
    c = MilvusClient(str(work / name))
    fresh = [pid for pid in child_pids() if pid not in before and "milvus" in proc_cmd(pid)]
    return c, (fresh[0] if fresh else None)


def child_pids() -> list[int]:
    out = []
    me = os.getpid()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me:
            out.append(int(stat.parent.name))
    return out


def proc_cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def server_status(pid: int | None) -> dict[str, float]:
    """VmRSS, RssAnon, VmHWM of the Milvus server process in MB (NaN over a URI)."""
    keys = ("VmRSS", "RssAnon", "VmHWM")
    if pid is None:
        return {k: float("nan") for k in keys}
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in keys:
            out[key] = int(value.split()[0]) / 1024
    return out


def milvus_probe(work: Path, cfg: dict[str, Any], dim: int) -> list[dict[str, Any]]:
    """Which dense index types the engine builds: create, insert, flush, release, load, search."""
    from pymilvus import DataType

    c, _ = milvus_client(work, cfg, "probe.db")
    x = np.random.default_rng(1).standard_normal((3000, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    out = []
    for kind, params in MILVUS_PROBE_TYPES:
        name = "probe_" + kind.lower()
        try:
            if c.has_collection(name):
                c.drop_collection(name)
            schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("row", DataType.INT64, is_primary=True)
            schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
            ip = c.prepare_index_params()
            ip.add_index("dense", index_type=kind, metric_type="IP", params=params)
            c.create_collection(name, schema=schema, index_params=ip)
            c.insert(name, [{"row": i, "dense": x[i].tolist()} for i in range(len(x))])
            c.flush(name)
            c.release_collection(name)
            c.load_collection(name)
            hits = c.search(name, data=[x[7].tolist()], anns_field="dense", limit=5,
                            search_params={"metric_type": "IP"}, output_fields=["row"])
            out.append({"index_type": kind, "accepted": True, "top1_ok": int(hits[0][0]["row"]) == 7})
        except Exception as e:  # a refusal is the finding
            out.append({"index_type": kind, "accepted": False, "error": str(e)[:200]})
        progress("milvus", f"probe {kind}: {'built' if out[-1]['accepted'] else 'refused'}")
        if c.has_collection(name):
            c.drop_collection(name)
    c.close()
    return out


def milvus_insert(c: Any, name: str, total: int, make_batch: Callable[[int, int], list[dict[str, Any]]],
                  limit_s: float, part: str, batch: int, server: int | None) -> tuple[int, float, bool]:
    """Insert rows 0..total in batches until done or limit_s has passed: (rows, seconds, finished)."""
    t = time.perf_counter()
    done = 0
    last = t
    while done < total:
        end = min(total, done + batch)
        c.insert(name, make_batch(done, end))
        done = end
        now = time.perf_counter()
        if now - last > 60:
            progress(part, f"inserted {done:,} / {total:,} ({done / (now - t):.0f} rows/s)")
            last = now
        if now - t > limit_s and done < total:
            progress(part, f"stopping at {done:,} rows: insert limit of {limit_s:.0f} s reached")
            break
        if server_status(server).get("VmRSS", 0) > MILVUS_RSS_CAP_MB and done < total:
            progress(part, f"stopping at {done:,} rows: server RSS above {MILVUS_RSS_CAP_MB} MB")
            break
    return done, time.perf_counter() - t, done >= total


def wait_indexed(c: Any, name: str, field: str, rows: int, limit_s: float = 3600) -> None:
    """Until the engine reports every row of the field indexed (a server builds segment indexes after a flush).
    Milvus Lite reports no row counts (total_rows 0): it builds at flush, so there is nothing to wait for."""
    t = time.perf_counter()
    while time.perf_counter() - t < limit_s:
        info = c.describe_index(name, field)
        if int(info.get("total_rows", 0) or 0) == 0:
            return
        if int(info.get("indexed_rows", 0)) >= rows and int(info.get("pending_index_rows", 0)) == 0:
            return
        time.sleep(1)


def part_milvus(work: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    from pymilvus import DataType

    from index.stores.milvus import DENSE_INDEX, HNSW_INDEX, ivf_index

    quiet_milvus()
    vectors = np.load(work / "vectors.npy", mmap_mode="r")
    n, dim = vectors.shape
    probe = milvus_probe(work, cfg, dim)
    shutil.rmtree(work / "probe.db", ignore_errors=True)

    c, server = milvus_client(work, cfg, "milvus-dense.db")
    before = server_status(server)
    if c.has_collection("dense"):
        c.drop_collection("dense")
    hnsw: dict[str, Any] = {**HNSW_INDEX, "params": {"M": int(cfg["hnsw_m"]), "efConstruction": int(cfg["hnsw_efc"])}}
    refused = []
    forced = str(cfg.get("milvus_index") or "")
    wanted: list[dict[str, Any]] = [ivf_index(n)] if forced == "IVF_FLAT" else [hnsw, dict(DENSE_INDEX)]
    for index in wanted:
        schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("row", DataType.INT64, is_primary=True)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
        ip = c.prepare_index_params()
        ip.add_index("dense", **index)
        try:
            c.create_collection("dense", schema=schema, index_params=ip)
            break
        except Exception as e:
            refused.append(f"{index['index_type']}: {str(e)[:120]}")
    else:
        raise RuntimeError(f"no dense index accepted: {refused}")
    c.release_collection("dense")
    rows, insert_s, finished = milvus_insert(
        c, "dense", n, lambda s, e: [{"row": i, "dense": vectors[i].tolist()} for i in range(s, e)],
        float(cfg["milvus_limit_s"]), "milvus", 2000, server)
    t = time.perf_counter()
    c.flush("dense")
    flush_s = time.perf_counter() - t
    t = time.perf_counter()
    wait_indexed(c, "dense", "dense", rows)
    c.load_collection("dense")
    index_s = time.perf_counter() - t
    peak = server_status(server)["VmHWM"] - before["VmRSS"]
    c.release_collection("dense")
    c.close()
    progress("milvus", f"{rows:,} rows ({index['index_type']}): insert {insert_s:.0f} s, flush {flush_s:.0f} s, "
                       f"index+load {index_s:.0f} s")
    out = {"probe": probe, "index_type": index["index_type"], "build_params": index.get("params", {}),
           "refused": refused, "rows": rows, "finished": finished, "insert_s": insert_s, "flush_s": flush_s,
           "index_load_s": index_s, "build_s": insert_s + flush_s + index_s, "build_peak_extra_mb": peak,
           "disk_mb": path_mb(work / "milvus-dense.db") if not cfg.get("milvus_uri") else None,
           "uri": cfg.get("milvus_uri") or "milvus-lite file"}
    return out  # main() runs milvus-serve next, once this process (and the Lite server it started) has exited


def part_milvus_serve(work: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """A fresh process (and, for Milvus Lite, a fresh server) opening the built collection: what serving costs."""
    quiet_milvus()
    queries = np.load(work / "queries.npy")
    c, server = milvus_client(work, cfg, "milvus-dense.db")
    idle = server_status(server)
    t = time.perf_counter()
    c.load_collection("dense")
    load_s = time.perf_counter() - t
    info = c.describe_index("dense", "dense")
    kind = str(info.get("index_type"))
    rows = int(c.query("dense", filter="", output_fields=["count(*)"])[0]["count(*)"])
    truth = np.load(work / "truth.npy")
    if rows != len(np.load(work / "vectors.npy", mmap_mode="r")):
        truth = subset_truth(work, queries, rows)
    qlists = [q.tolist() for q in queries]
    knob, values = {"HNSW": ("ef", tuple(MILVUS_EF)), "IVF_FLAT": ("nprobe", tuple(MILVUS_NPROBE))}.get(
        kind, ("exact", (0,)))
    values = tuple(int(v) for v in values)
    nlist = int(info.get("nlist", 0) or 0)
    if knob == "nprobe" and nlist:
        values = tuple(v for v in values if v <= nlist) or (nlist,)

    def search(i: int, value: int) -> Any:
        params = {} if knob == "exact" else {knob: value}
        return c.search("dense", data=[qlists[i]], anns_field="dense", limit=K,
                        search_params={"metric_type": "IP", "params": params}, output_fields=["row"])

    search(0, values[0])
    ram = server_status(server)["RssAnon"] - idle["RssAnon"]
    sweep = []
    for value in values:
        got: list[Any] = []
        lat = time_queries(functools.partial(search, value=value), len(queries), int(cfg["reps"]), budget_s=150,
                           keep=got)
        found = np.full((len(queries), RECALL_AT), -1, dtype=np.int64)
        for i, res in enumerate(got):
            rows_i = [int(h["row"]) for h in res[0]][:RECALL_AT]
            found[i, : len(rows_i)] = rows_i
        rec = recall_at(found, truth)
        sweep.append({knob: value, "recall_at_10": rec, **lat})
        progress("milvus-serve", f"{knob}={value}: recall@10 {rec:.3f}, p50 {lat['p50_ms']:.2f} ms ({lat['reps']} reps)")
    c.close()
    return {"serve_rows": rows, "load_s": load_s, "ram_mb": ram, "sweep": sweep, "chosen": choose(sweep),
            "server_idle_mb": idle["RssAnon"], "serve_index": kind, "nlist": nlist or None}


def subset_truth(work: Path, queries: np.ndarray, rows: int) -> np.ndarray:
    """Exact top-k over the first rows vectors (when a Milvus insert stopped short of N)."""
    import faiss

    vectors = np.load(work / "vectors.npy", mmap_mode="r")
    index = faiss.IndexFlatIP(vectors.shape[1])
    for s in range(0, rows, 100_000):
        index.add(np.ascontiguousarray(vectors[s : min(rows, s + 100_000)]))
    _, truth = index.search(queries, K)
    return np.asarray(truth)


# --- part: bm25s -----------------------------------------------------------------------------------------------
def part_bm25s(work: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    from index.segmentation import Segmenter
    from index.sparse import SparseIndex

    material = json.loads((work / "material.json").read_text(encoding="utf-8"))
    n = int(cfg["n"])
    t = time.perf_counter()
    texts = bm25_texts(n, material["paragraphs"])
    out: dict[str, Any] = {"n": n, "texts_s": time.perf_counter() - t,
                           "text_chars_mean": statistics.mean(len(x) for x in texts[:10_000])}
    seg = Segmenter()
    seg.tokens("预热")
    sample = texts[:2000]
    t = time.perf_counter()
    real = [seg.tokens(x) for x in sample]
    out["tokenise_texts_per_s"] = len(sample) / (time.perf_counter() - t)
    blocks = BlockTokens(seg)  # the same tokens, memoised per jieba block (checked on the sample)
    t = time.perf_counter()
    token_lists = [blocks(x) for x in texts]
    out["tokenise_memo_s"] = time.perf_counter() - t
    out["token_mismatches_in_sample"] = sum(a != b for a, b in zip(real, token_lists, strict=False))
    out["tokens_per_text"] = statistics.mean(len(x) for x in token_lists[:10_000])
    out["tokenise_s_estimated_unmemoised"] = n / out["tokenise_texts_per_s"]
    del texts, real, blocks
    gc.collect()
    progress("bm25s", f"{n:,} texts tokenised ({out['tokenise_memo_s']:.0f} s, memoised)")
    reset_peak_rss()
    before = proc_status()
    t = time.perf_counter()
    index = SparseIndex.build(token_lists)
    out["build_s"] = time.perf_counter() - t
    out["build_peak_extra_mb"] = proc_status()["VmHWM"] - before["VmRSS"]
    del token_lists
    path = work / "bm25s"
    index.save(path)
    out["disk_mb"] = path_mb(path)
    out["vocab"] = len(index._bm25.vocab_dict)
    del index
    progress("bm25s", f"built in {out['build_s']:.0f} s; serving test in a fresh process")
    out.update(run_child("bm25s-serve", work, cfg))
    return out


def part_bm25s_serve(work: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    from index.segmentation import Segmenter
    from index.sparse import SparseIndex

    questions = json.loads((work / "material.json").read_text(encoding="utf-8"))["questions"]
    seg = Segmenter()
    seg.tokens("预热")
    t = time.perf_counter()
    tokens = [seg.tokens(q) for q in questions]
    tokenise_ms = (time.perf_counter() - t) * 1000 / len(questions)
    gc.collect()
    before = proc_status()
    t = time.perf_counter()
    index = SparseIndex.load(work / "bm25s")
    load_s = time.perf_counter() - t
    ram = proc_status()["RssAnon"] - before["RssAnon"]
    lat = time_queries(lambda i: index.search(tokens[i], K), len(tokens), int(cfg["reps"]))
    return {"load_s": load_s, "ram_mb": ram, "latency": lat, "query_tokenise_ms_mean": tokenise_ms}


# --- part: Milvus BM25 ------------------------------------------------------------------------------------------
def part_milvus_bm25(work: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    from pymilvus import DataType, Function, FunctionType

    from index.stores.milvus import BM25_PARAMS, analyzer_params, bm25_text

    quiet_milvus()
    material = json.loads((work / "material.json").read_text(encoding="utf-8"))
    n = min(int(cfg["n"]), int(cfg.get("milvus_bm25_n") or cfg["n"]))
    texts = [bm25_text(x) for x in bm25_texts(n, material["paragraphs"])]
    c, server = milvus_client(work, cfg, "milvus-bm25.db")
    before = server_status(server)
    if c.has_collection("bm25"):
        c.drop_collection("bm25")
    schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("row", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=65535, enable_analyzer=True,
                     analyzer_params=analyzer_params())
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="text_bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                 output_field_names=["sparse"]))
    ip = c.prepare_index_params()
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=dict(BM25_PARAMS))
    c.create_collection("bm25", schema=schema, index_params=ip)
    c.release_collection("bm25")
    rows, insert_s, finished = milvus_insert(
        c, "bm25", n, lambda s, e: [{"row": i, "text": texts[i]} for i in range(s, e)],
        float(cfg["milvus_bm25_limit_s"]), "milvus-bm25", 1000, server)
    t = time.perf_counter()
    c.flush("bm25")
    flush_s = time.perf_counter() - t
    t = time.perf_counter()
    wait_indexed(c, "bm25", "sparse", rows)
    index_s = time.perf_counter() - t
    peak = server_status(server)["VmHWM"] - before["VmRSS"]
    c.close()
    out = {"n_target": n, "rows": rows, "finished": finished, "insert_s": insert_s, "flush_s": flush_s,
           "index_s": index_s, "insert_rows_per_s": rows / insert_s, "build_s": insert_s + flush_s + index_s,
           "build_peak_extra_mb": peak,
           "disk_mb": path_mb(work / "milvus-bm25.db") if not cfg.get("milvus_uri") else None,
           "insert_limit_s": cfg["milvus_bm25_limit_s"]}
    progress("milvus-bm25", f"{rows:,} rows inserted in {insert_s:.0f} s, flush {flush_s:.0f} s, index {index_s:.0f} s")
    return out  # main() runs milvus-bm25-serve next (Milvus Lite locks its file while this process lives)


def part_milvus_bm25_serve(work: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    from index.stores.milvus import bm25_text

    quiet_milvus()
    questions = [bm25_text(q) for q in json.loads((work / "material.json").read_text(encoding="utf-8"))["questions"]]
    c, server = milvus_client(work, cfg, "milvus-bm25.db")
    idle = server_status(server)
    t = time.perf_counter()
    c.load_collection("bm25")
    load_s = time.perf_counter() - t

    def search(i: int) -> Any:
        return c.search("bm25", data=[questions[i]], anns_field="sparse", limit=K,
                        search_params={"metric_type": "BM25"}, output_fields=["row"])

    t = time.perf_counter()
    search(0)
    first_s = time.perf_counter() - t
    ram = server_status(server)["RssAnon"] - idle["RssAnon"]
    lat = time_queries(search, len(questions), int(cfg["reps"]), budget_s=150)
    ram_after = server_status(server)["RssAnon"] - idle["RssAnon"]
    c.close()
    return {"load_s": load_s, "first_query_s": first_s, "ram_mb": ram, "ram_after_queries_mb": ram_after,
            "latency": lat, "server_idle_mb": idle["RssAnon"]}


SERVE_AFTER = {"milvus": "milvus-serve", "milvus-bm25": "milvus-bm25-serve"}

CHILDREN: dict[str, Callable[[Path, dict[str, Any]], dict[str, Any]]] = {
    "prep": part_prep, "flat": part_flat, "hnsw": part_hnsw, "hnsw-serve": part_hnsw_serve, "ivfpq": part_ivfpq,
    "ivfpq-serve": part_ivfpq_serve, "refine-serve": part_refine_serve, "milvus": part_milvus,
    "milvus-serve": part_milvus_serve, "bm25s": part_bm25s, "bm25s-serve": part_bm25s_serve,
    "milvus-bm25": part_milvus_bm25, "milvus-bm25-serve": part_milvus_bm25_serve}


def run_child(part: str, work: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """Run one part in a fresh process; its figures come back through work/<part>.json."""
    result = work / f"{part}.json"
    result.unlink(missing_ok=True)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", part, "--workdir", str(work)],
                          timeout=float(cfg["part_timeout_s"]))
    wall = time.perf_counter() - t
    if proc.returncode != 0 or not result.exists():
        return {"error": f"{part} exited with {proc.returncode}", "wall_s": wall}
    return {**json.loads(result.read_text(encoding="utf-8")), "wall_s": wall}


def child_main(part: str, work: Path) -> int:
    cfg = json.loads((work / "config.json").read_text(encoding="utf-8"))
    out = CHILDREN[part](work, cfg)
    out["peak_rss_mb"] = proc_status()["VmHWM"]
    (work / f"{part}.json").write_text(json.dumps(out, ensure_ascii=False, default=float), encoding="utf-8")
    return 0


# --- report ---------------------------------------------------------------------------------------------------
def fmt(x: Any, spec: str = ".1f") -> str:
    return "-" if x is None or (isinstance(x, float) and x != x) else format(x, spec)


def report(res: dict[str, Any], cfg: dict[str, Any]) -> None:
    n = int(cfg["n"])
    prep = res.get("prep", {})
    print()
    print(f"=== policyqa scale benchmark: N = {n:,} chunks, dim {prep.get('dim', '?')}, k = {K}, "
          f"recall@{RECALL_AT} vs exact IndexFlatIP ===")
    if "encode_s" in prep:
        print(f"data: {prep['passages']:,} real passages ({prep['seed_chunks']} seed chunks + DRCD/CMRC 2018 chunks, mean "
              f"{prep['passage_chars_mean']:.0f} chars) embedded with the ONNX int8 encoder (1 thread): "
              f"{prep['encoder_chunks_per_s_per_thread']:.1f} chunks/s per thread; query encode "
              f"{prep['query_encode_ms_mean']:.1f} ms mean")
        print(f"      N vectors = passage vector + Gaussian noise of norm {prep['noise_norm']} (sigma "
              f"{prep['noise_sigma_per_dim']:.4f}/dim), L2-normalised: mean cosine to its base "
              f"{prep['cos_to_base_mean']:.3f}; {prep['questions']} real questions ({prep['questions_seeds_dev']} "
              f"seeds-dev, rest DRCD/CMRC 2018) as queries (mean best cosine to a real passage "
              f"{prep['question_best_passage_cos_mean']:.3f})")
    print(f"targets: 1M chunks in <= {TARGET_RAM_GB:.0f} GB RAM; retrieval p50 <= {TARGET_P50_MS:.0f} ms "
          f"(latencies: one query at a time, one FAISS thread, median over {cfg['reps']} reps of p50/p99)")
    print()
    head = (f"{'index':<40} {'rows':>9} {'build s':>8} {'RAM MB':>8} {'B/vec':>7} {'disk MB':>8} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'rec@10':>7}")
    print(head)
    print("-" * len(head))

    def row(label: str, rows: int, build: Any, ram: Any, disk: Any, lat: dict[str, Any], rec: Any) -> None:
        bpv = ram * 2**20 / rows if isinstance(ram, float) and rows else None
        print(f"{label:<40} {rows:>9,} {fmt(build, '.0f'):>8} {fmt(ram, '.0f'):>8} {fmt(bpv, '.0f'):>7} "
              f"{fmt(disk, '.0f'):>8} {fmt(lat.get('p50_ms'), '.2f'):>7} {fmt(lat.get('p99_ms'), '.2f'):>7} "
              f"{fmt(rec, '.3f'):>7}" + (f"  ({lat['reps']} rep)" if lat.get("reps", 0) < int(cfg["reps"]) else ""))

    flat = res.get("flat", {})
    if "latency" in flat:
        row("FAISS IndexFlatIP (exact)", n, flat["build_s"], flat["ram_mb"], flat["disk_mb"], flat["latency"], 1.0)
    h = res.get("hnsw", {})
    for s in h.get("sweep", []):
        row(f"FAISS HNSW M{h['M']} efC{h['efConstruction']} efS{s['efSearch']}", n, h["build_s"], h["ram_mb"],
            h["disk_mb"], s, s["recall_at_10"])
    ivf = [res[key] for key in sorted(res) if key.startswith("ivfpq-")]
    for v in ivf:
        for s in v.get("sweep", []):
            row(f"FAISS IVF{v['nlist']},PQ{v['pq_m']}x8 nprobe{s['nprobe']}", n, v["build_s"], v["ram_mb"],
                v["disk_mb"], s, s["recall_at_10"])
        r = v.get("refine", {})
        for s in r.get("sweep", []):
            row(f"  + RefineFlat k_factor{s.get('k_factor', r.get('k_factor'))} nprobe{s['nprobe']}", n, v["build_s"], r["ram_mb"],
                r["disk_mb"], s, s["recall_at_10"])
    mv = res.get("milvus", {})
    for s in mv.get("sweep", []):
        knob = next(k for k in ("ef", "nprobe", "exact") if k in s)
        params = ",".join(f"{k}{v}" for k, v in (mv.get("build_params") or {}).items())
        label = "(exact)" if knob == "exact" else f"{params} {knob}{s[knob]}"
        row(f"Milvus {mv.get('index_type')} {label}", mv["rows"], mv["build_s"], mv["ram_mb"],
            mv["disk_mb"], s, s["recall_at_10"])
    print()
    b = res.get("bm25s", {})
    if "latency" in b:
        row("bm25s (SparseIndex, jieba tokens)", n, b["build_s"], b["ram_mb"], b["disk_mb"], b["latency"], None)
    mb = res.get("milvus-bm25", {})
    if "latency" in mb:
        row("Milvus BM25 (jieba analyzer)", mb["rows"], mb["build_s"], mb["ram_mb"], mb["disk_mb"],
            mb["latency"], None)
    print()
    print("build s: FAISS = add (+ train) in this process with all vCPUs; Milvus = insert + flush + index build + "
          "load. RAM MB: RSS (anonymous) of a fresh serving process after loading the built index, minus before "
          "(Milvus: of the server process, minus the idle server). B/vec = RAM per row.")
    named = [("hnsw", h), *((f"ivfpq m={v.get('pq_m')}", v) for v in ivf),
             *((f"ivfpq m={v.get('pq_m')} + refine", v.get("refine", {})) for v in ivf),
             ("milvus", mv), ("bm25s", b), ("milvus-bm25", mb)]
    for label, part in named:
        if part.get("chosen"):
            c = part["chosen"]
            print(f"chosen {label}: {json.dumps({k: round(x, 3) if isinstance(x, float) else x for k, x in c.items()})}")
        if "build_peak_extra_mb" in part:
            print(f"build peak RSS above start, {label}: {part['build_peak_extra_mb']:.0f} MB")
        if part.get("error"):
            print(f"{label}: FAILED: {part['error']}")
    for v in ivf:
        if v.get("train_s") is not None:
            print(f"ivfpq m={v['pq_m']}: k-means on {v['train_vectors']:,} vectors, {v['kmeans_iter']} iterations: {v['train_s']:.0f} s")
    if mv.get("probe"):
        built = [p["index_type"] for p in mv["probe"] if p["accepted"]]
        refused = [f"{p['index_type']} ({p['error'][:90]})" for p in mv["probe"] if not p["accepted"]]
        print(f"Milvus ({mv.get('uri')}) dense index types built: {', '.join(built)}")
        print(f"Milvus refused: {'; '.join(refused) or 'none'}")
        print(f"Milvus dense: {mv['rows']:,} rows, {mv['index_type']} {mv.get('build_params')}, insert "
              f"{mv['insert_s']:.0f} s, flush {mv['flush_s']:.0f} s, index build + load {mv['index_load_s']:.0f} s; "
              f"serving load {mv.get('load_s', float('nan')):.1f} s; idle server "
              f"{fmt(mv.get('server_idle_mb'), '.0f')} MB (not in RAM MB)")
    if b.get("build_s") is not None:
        print(f"bm25s: {b['vocab']:,} terms, {b['tokens_per_text']:.0f} tokens/text (mean {b['text_chars_mean']:.0f} "
              f"chars); jieba {b['tokenise_texts_per_s']:.0f} texts/s (unmemoised: {b['tokenise_s_estimated_unmemoised']:.0f} s "
              f"for N; memoised here {b['tokenise_memo_s']:.0f} s, {b['token_mismatches_in_sample']} mismatches); "
              f"query jieba {fmt(b.get('query_tokenise_ms_mean'), '.2f')} ms (not in p50)")
    if mb.get("rows") is not None:
        done = "all" if mb["finished"] else f"stopped at the {mb['insert_limit_s']} s insert limit:"
        print(f"Milvus BM25: {done} {mb['rows']:,} of {mb['n_target']:,} texts, {mb['insert_rows_per_s']:.0f} "
              f"rows/s insert (analysis included); first query {fmt(mb.get('first_query_s'), '.2f')} s; RAM after "
              f"the timed queries {fmt(mb.get('ram_after_queries_mb'), '.0f')} MB; idle server "
              f"{fmt(mb.get('server_idle_mb'), '.0f')} MB (not in RAM MB); latency includes Milvus's own query analysis")
        if not mb["finished"]:
            print(f"    extrapolated insert time for {mb['n_target']:,}: "
                  f"{mb['n_target'] / mb['insert_rows_per_s'] / 60:.0f} min (linear)")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="chunks (vectors and BM25 texts)")
    ap.add_argument("--quick", action="store_true", help="n=20,000, 800 passages, 200 queries, 1 rep")
    ap.add_argument("--passages", type=int, default=4000, help="real passages embedded")
    ap.add_argument("--queries", type=int, default=300, help="real questions (>= 200)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of every timed query")
    ap.add_argument("--noise-norm", type=float, default=0.40, help="norm of the noise added to a unit vector")
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--hnsw-efc", type=int, default=100)
    ap.add_argument("--pq-m", type=lambda x: [int(v) for v in x.split(",")], default=[48, 96],
                    help="PQ sub-quantizers (8 bits each), comma list: one IVF-PQ index each")
    ap.add_argument("--refine-k-factor", type=int, default=4)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="FAISS threads for builds")
    ap.add_argument("--milvus-limit-s", type=float, default=1500, help="stop the Milvus dense insert after this")
    ap.add_argument("--milvus-uri", default="", help="a Milvus server (default: a Milvus Lite file in the work dir)")
    ap.add_argument("--milvus-index", default="", choices=["", "IVF_FLAT"],
                    help="the dense index (default: the store's choice, HNSW else FLAT); IVF_FLAT: nlist 4*sqrt(N)")
    ap.add_argument("--milvus-bm25-n", type=int, default=0,
                    help="texts for Milvus BM25 (default and at most --n)")
    ap.add_argument("--milvus-bm25-limit-s", type=float, default=1500, help="stop the Milvus BM25 insert after this")
    ap.add_argument("--part-timeout-s", type=float, default=3 * 3600)
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)}")
    ap.add_argument("--workdir", type=Path, default=None, help="work folder (default: a new temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    ap.add_argument("--report-from", type=Path, default=None, help="print the report of a --json file again")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child_main(args.child, args.workdir)
    if args.report_from:
        saved = json.loads(args.report_from.read_text(encoding="utf-8"))
        print(describe(saved["cpu"]))
        print(f"command: {saved['command']}")
        report(saved["results"], saved["config"])
        print(f"\ntotal wall time {saved['total_s'] / 60:.1f} min")
        return 0
    if args.quick:
        args.n, args.passages, args.queries, args.reps = 20_000, 800, 200, 1
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown parts: {', '.join(sorted(unknown))}")

    cpu = cpu_info()
    from importlib import metadata

    for dist in EXTRA_LIBRARIES:
        try:
            cpu["versions"][dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            cpu["versions"][dist] = None
    print(describe(cpu))
    print(f"load average before: {cpu['load_avg_1m']}; command: {' '.join(sys.argv)}")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    cfg = {"n": args.n, "passages": args.passages, "queries": args.queries, "reps": args.reps,
           "noise_norm": args.noise_norm, "hnsw_m": args.hnsw_m, "hnsw_efc": args.hnsw_efc, "pq_m": args.pq_m[0],
           "refine_k_factor": args.refine_k_factor, "threads": args.threads, "milvus_limit_s": args.milvus_limit_s,
           "milvus_bm25_limit_s": args.milvus_bm25_limit_s,
           "milvus_bm25_n": args.milvus_bm25_n or args.n, "milvus_uri": args.milvus_uri,
           "milvus_index": args.milvus_index,
           "part_timeout_s": args.part_timeout_s}
    (work / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    print(f"work folder: {work}; parts: {', '.join(parts)}; config: {json.dumps(cfg)}", flush=True)
    results: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        for part in PARTS:
            if part not in parts:
                continue
            if part != "prep" and not (work / "prep.json").exists():
                results[part] = {"error": "no prep"}
                continue
            if part in ("hnsw", "ivfpq", "milvus") and not (work / "truth.npy").exists():
                results[part] = {"error": "no exact ground truth (run the flat part)"}
                continue
            runs = [(f"ivfpq-m{m}", {"pq_m": m}) for m in args.pq_m] if part == "ivfpq" else [(part, {})]
            for key, extra in runs:
                (work / "config.json").write_text(json.dumps({**cfg, **extra}), encoding="utf-8")
                print(f"--- {key} ({time.strftime('%H:%M:%S')})", flush=True)
                results[key] = run_child(part, work, {**cfg, **extra})
                if part in SERVE_AFTER and "error" not in results[key]:
                    results[key].update(run_child(SERVE_AFTER[part], work, cfg))
                print(f"--- {key} done in {results[key]['wall_s']:.0f} s", flush=True)
                if not args.keep:  # keep the disk use down between parts
                    shutil.rmtree(work / "bm25s", ignore_errors=True)
                    for big in ("hnsw.faiss", "ivfpq.faiss"):
                        (work / big).unlink(missing_ok=True)
    finally:
        report(results, cfg)
        total = time.perf_counter() - started
        print(f"\ntotal wall time {total / 60:.1f} min; load average after: {os.getloadavg()[0]:.2f}")
        if args.json:
            args.json.write_text(json.dumps({"cpu": cpu, "config": cfg, "command": " ".join(sys.argv),
                                             "results": results, "total_s": total}, indent=1, ensure_ascii=False,
                                            default=float), encoding="utf-8")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
