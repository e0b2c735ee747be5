"""Retrieval and index-build benchmark for policyqa (prints figures; it is not a timed test).

What it measures, on this machine, through the project's own code paths:

  1. Seed index (corpus/seeds, built here from scratch): query-encode p50/p99, search-only p50/p99
     (``Retriever.search`` given the pre-encoded query vector: dense, sparse, hybrid) and end-to-end
     ``Retriever.search`` p50/p99 per mode, over the questions of eval/sets/seeds-dev.jsonl.
  2. A synthetic N-chunk index (default 100,000): documents recombined from the seed sentences
     (deterministic seed) and run through the real cleaning and chunking; their vectors are NOT made by the
     model (impossible here) but from the seed chunks' real embeddings (mean of the seed chunks each
     sentence came from, plus noise, L2-normalised, dim 384) and put in the embedding cache, so that
     ``index.builder.build_index`` writes a real generation without loading the encoder (HNSW, as the
     builder makes it at/above the threshold) and ``index.store.load_index`` + ``Retriever`` query it
     with real encoded queries. The same vectors in an exact ``IndexFlatIP`` are swapped into the loaded
     index for the flat figures. Also: jieba tokenisation rate, bm25s build time and memory at N, the
     build_index time of that generation (every vector cached) and of an unchanged rebuild at N, and exact
     search time against the number of vectors (10k..N; DenseIndex.search, FAISS's default OpenMP team,
     fp16 storage), which is what the HNSW threshold trades against.
  3. Builds in temporary index folders with a fresh, empty embedding cache: cold build of the seed corpus
     (chunks/s; model load, encoding, dense, sparse and write stages); a rebuild after adding one article
     (chunks embedded, seconds); unchanged rebuilds (chunks/s; the encoder must not load, which is
     asserted), in-process with and without reuse of the current generation's indexes, and as a whole
     ``policyqa index build`` process.

The encoder configurations (``--encoders``: ``backend:threads`` labels; backends onnx-int8, onnx, torch, the
thread count serving both questions and build passages) are compared side by side: each label runs in fresh
subprocesses (thread counts are process-wide), alternating labels, several repetitions; the figures quoted
are medians over repetitions of each run's p50/p99, with each label's time ratio to the first ``torch:*``
label of the run where there is one. Each backend queries the seed index its own cold build made (an index
is tied to its encoder variant); the synthetic index takes its vectors from the seed embeddings of the
fastest label's backend (with --synthetic-all-encoders, labels of another backend query it too, checked
against its backend). The CPU model, its speed-relevant flags and the onnxruntime / torch / faiss versions
are printed first. Targets (2-core machine) are printed beside the figures.

    .venv/bin/python bench/bench_retrieval.py                      # the full run (torch:1 vs onnx-int8:1)
    nice -n 10 .venv/bin/python bench/bench_retrieval.py --json bench-retrieval.json
    .venv/bin/python bench/bench_retrieval.py --quick              # small sizes, one repetition
    .venv/bin/python bench/bench_retrieval.py --quick --synthetic 20000 --encoders onnx-int8:1
    .venv/bin/python bench/bench_retrieval.py --encoders torch:1,onnx:1,onnx-int8:1,onnx-int8:2
    .venv/bin/python bench/bench_retrieval.py --skip builds        # only the retrieval parts

Temporary index folders go under --workdir (default: a new folder in the system temp dir, removed at the
end unless --keep).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # policyqa is installed editable; this also covers a plain checkout
    sys.path.insert(0, str(REPO))

from machine import cpu_info, describe  # noqa: E402  (bench/ is the script's folder)

from corpus.chunking import Chunk, chunk_document  # noqa: E402
from corpus.cleaning import CleanDocument, clean_document  # noqa: E402
from corpus.documents import SEEDS_DIR, Document, parse_document, render_document  # noqa: E402
from corpus.pipeline import ChunkedCorpus, load_chunked_corpus  # noqa: E402
from corpus.sentences import sentence_spans  # noqa: E402
from index.segmentation import Segmenter  # noqa: E402

# --- targets (from the retrieval issue) ------------------------------------------------------------------
TARGET_P50_MS = 30.0  # retrieval p50 at 100k (encode + search)
TARGET_P99_MS = 80.0  # retrieval p99 at 100k
TARGET_COLD_CHUNKS_S = 14.0
TARGET_UNCHANGED_CHUNKS_S = 1000.0

QUESTIONS_FILE = REPO / "eval" / "sets" / "seeds-dev.jsonl"
MODES = ("dense", "sparse", "hybrid")
K = 5  # the service's default_k
SYNTH_SEED = 20240917
NOISE_NORM = 0.35  # norm of the noise added to a unit seed centroid (cosine to it ~0.94)

# A new, realistic-looking article for the "rebuild after one added document" figure.
NEW_ARTICLE_META = {
    "doc_id": "bench-jiangmen-rural-revitalisation-2025-03",
    "title": "江门以“百千万工程”牵引镇村高质量发展",
    "date": "2025-03-18",
    "date_inferred": False,
    "source": "江门日报 A02版（基准测试示例稿）",
    "region": "广东省江门市",
}
NEW_ARTICLE_BODY = """江门以“百千万工程”牵引镇村高质量发展

今年以来，江门市深入实施“百县千镇万村高质量发展工程”，坚持党建引领，推动城乡区域协调发展。市委农办负责人介绍，全市已有61个镇（街）完成典型镇建设方案编制，农村人居环境整治覆盖率达到98.6%。

强化组织保障 压实工作责任

江门建立市级领导挂点联系镇街制度，每名市领导联系1至2个镇街，每季度到挂点镇街调研不少于1次。各市（区）成立由党委书记任组长的工作专班，将“百千万工程”纳入基层党建述职评议考核。

在台山市，镇村两级组建了126支党员先锋队，围绕人居环境、产业发展、矛盾化解等重点任务开展攻坚。开平市则推行“村企结对”，引导34家企业与村集体签订合作协议，带动村集体年均增收12万元以上。

壮大特色产业 促进农民增收

新会区依托陈皮产业，建设省级现代农业产业园，2024年全产业链产值突破230亿元，带动5万多名农民就业增收。恩平市发展“温泉+乡村旅游”，打造精品旅游线路8条，接待游客同比增长18.4%。

下一步，江门将持续完善联农带农机制，力争到2025年底，全市村集体经济收入全部超过10万元，培育一批产业强镇和和美乡村示范带。
"""


# --- small helpers ---------------------------------------------------------------------------------------
def pct(values: Sequence[float]) -> tuple[float, float]:
    """(p50, p99) with linear interpolation; NaNs for no values."""
    if not values:
        return (float("nan"), float("nan"))
    p50, p99 = np.percentile(np.asarray(values, dtype=np.float64), [50, 99])
    return (float(p50), float(p99))


def median_pct(runs: Sequence[Sequence[float]]) -> tuple[float, float]:
    """Median over repetitions of each repetition's p50 and p99."""
    pairs = [pct(r) for r in runs if r]
    if not pairs:
        return (float("nan"), float("nan"))
    return (statistics.median(p for p, _ in pairs), statistics.median(q for _, q in pairs))


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM (Linux 4.0+: write 5 to clear_refs). False when not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def load_questions(limit: int | None = None) -> list[str]:
    out = []
    with QUESTIONS_FILE.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(str(json.loads(line)["question"]))
    return out[:limit] if limit else out


def model_dir() -> Path:
    from index.modelprep import ensure_model

    return ensure_model()


def parse_encoder(label: str) -> tuple[str, int]:
    """"onnx-int8:2" -> ("onnx-int8", 2); ValueError for an unknown backend or a thread count below 1."""
    from index.encoders import BACKENDS

    backend, sep, count = label.strip().rpartition(":")
    if not sep or backend not in BACKENDS:
        raise ValueError(f"encoder {label!r} is not backend:threads with a backend in {', '.join(BACKENDS)}")
    try:
        threads = int(count)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(f"encoder {label!r}: the thread count must be an integer >= 1")
    return backend, threads


def torch_reference(labels: Sequence[str]) -> str | None:
    """The first torch:* label, which the other labels' times are compared with."""
    return next((x for x in labels if parse_encoder(x)[0] == "torch"), None)


def ratio_note(value: float, ref_value: float, ref: str) -> str:
    if not (value == value and ref_value == ref_value) or ref_value <= 0:
        return "-"
    return f"{value / ref_value:.2f}x {ref}"


class StageClock:
    """A build_index progress callback that timestamps each stage's first and last report."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        self.first.setdefault(stage, now)
        self.last[stage] = now

    def stages(self, start: float, end: float, encoder_load_s: float = 0.0) -> dict[str, float]:
        f, last = self.first, self.last
        out = {"prepare": f.get("embed", end) - start}
        embed = f.get("dense", end) - f.get("embed", end)
        out["model_load"] = encoder_load_s
        out["encode"] = max(0.0, embed - encoder_load_s)  # encoding plus cache lookups and writes
        out["dense"] = f.get("sparse", end) - f.get("dense", end)
        out["sparse"] = last.get("sparse", end) - f.get("sparse", end)
        out["write"] = end - last.get("sparse", end)
        return out


def timed_encoder_factory(label: str, sink: dict[str, float]) -> Callable[[], Any]:
    """Builds the label's encoder (threads for questions and build passages alike), timing the load."""

    def factory() -> Any:
        from index.encoders import Backend, load_encoder

        backend, threads = parse_encoder(label)
        t = time.perf_counter()
        enc = load_encoder(model_dir(), cast(Backend, backend), threads=threads, build_threads=threads,
                           query_cache=0)
        sink["encoder_load_s"] = time.perf_counter() - t
        return enc

    return factory


def refusing_factory() -> Any:
    raise RuntimeError("this build must take every vector from the embedding cache")


# --- child: cold build of the seed corpus -------------------------------------------------------------------
def child_cold_build(p: dict[str, Any]) -> dict[str, Any]:
    from index.builder import build_index
    from index.modelinfo import describe_model

    root = Path(p["root"])
    t = time.perf_counter()
    corpus = load_chunked_corpus(Path(p["raw"]))
    corpus_s = time.perf_counter() - t
    info = describe_model(model_dir(), parse_encoder(p["encoder"])[0])
    sink: dict[str, float] = {}
    clock = StageClock()
    cpu, start = time.process_time(), time.perf_counter()
    res = build_index(corpus, root, info, timed_encoder_factory(p["encoder"], sink), segmenter=Segmenter(),
                      progress=clock)
    end, cpu = time.perf_counter(), time.process_time() - cpu
    load_s = sink.get("encoder_load_s", 0.0)
    stages = clock.stages(start, end, load_s)
    return {"encoder": p["encoder"], "chunks": res.chunks, "embedded": res.embedded, "seconds": end - start,
            "cpu_s": cpu, "corpus_load_s": corpus_s, "stages": stages, "encoder_loaded": res.encoder_loaded,
            "passages_per_s": res.embedded / stages["encode"] if stages["encode"] > 0 else None}


# --- child: rebuild after one added article, unchanged rebuilds -------------------------------------------
def child_rebuild(p: dict[str, Any]) -> dict[str, Any]:
    from index.builder import build_index
    from index.generations import current_generation
    from index.modelinfo import describe_model

    root, raw = Path(p["root"]), Path(p["raw"])
    if current_generation(root) is None:
        raise RuntimeError(f"the seed index in {root} is gone (was the work folder removed?)")
    backend, threads = parse_encoder(p["encoder"])
    info = describe_model(model_dir(), backend)
    segmenter = Segmenter()  # fresh: this is a new process, as `policyqa index build` would be

    # 1. one article added: only its chunks are embedded; the encoder has to load for them.
    (raw / f"{NEW_ARTICLE_META['doc_id']}.md").write_text(
        render_document(NEW_ARTICLE_META, NEW_ARTICLE_BODY), encoding="utf-8")
    t = time.perf_counter()
    corpus = load_chunked_corpus(raw)
    corpus_s = time.perf_counter() - t
    new_chunks = sum(1 for c in corpus.chunks if c.doc_id == NEW_ARTICLE_META["doc_id"])
    sink: dict[str, float] = {}
    clock = StageClock()
    start = time.perf_counter()
    res = build_index(corpus, root, info, timed_encoder_factory(p["encoder"], sink), segmenter=segmenter,
                      progress=clock)
    end = time.perf_counter()
    added = {"chunks": res.chunks, "new_doc_chunks": new_chunks, "embedded": res.embedded, "cached": res.cached,
             "seconds": end - start, "corpus_load_s": corpus_s, "encoder_loaded": res.encoder_loaded,
             "stages": clock.stages(start, end, sink.get("encoder_load_s", 0.0))}

    # 2. unchanged rebuilds in this process (the segmenter is warm now; the encoder must not load), with the
    #    indexes rebuilt (reuse_indexes=False, the behaviour before index reuse) and as shipped.
    series: dict[str, list[dict[str, Any]]] = {"unchanged_full": [], "unchanged": []}
    for _ in range(p["repeats"]):
        for key, reuse in (("unchanged_full", False), ("unchanged", True)):
            t = time.perf_counter()
            corpus = load_chunked_corpus(raw)
            corpus_s = time.perf_counter() - t
            clock = StageClock()
            start = time.perf_counter()
            res = build_index(corpus, root, info, refusing_factory, segmenter=segmenter, progress=clock,
                              reuse_indexes=reuse)
            end = time.perf_counter()
            assert not res.encoder_loaded and res.embedded == 0, "unchanged rebuild loaded the encoder"
            reused = manifest_of(res.path)["build"].get("reused_indexes_from") is not None
            series[key].append({"chunks": res.chunks, "seconds": end - start, "corpus_load_s": corpus_s,
                                "encoder_loaded": res.encoder_loaded, "reused": reused,
                                "stages": clock.stages(start, end)})

    # 3. the same as a whole `policyqa index build` process (imports, jieba start-up, corpus load, build).
    cli = Path(sys.executable).with_name("policyqa")
    env = {**os.environ, "POLICYQA_INDEX_DIR": str(root), "POLICYQA_CORPUS_DIR": str(raw),
           "POLICYQA_ENCODER_BACKEND": backend, "POLICYQA_ENCODER_THREADS": str(threads),
           "POLICYQA_BUILD_THREADS": str(threads)}
    processes = []
    for _ in range(p["cli_repeats"]):
        t = time.perf_counter()
        out = subprocess.run([str(cli), "index", "build", "--json", "-q"], env=env, capture_output=True,
                             text=True, check=True)
        wall = time.perf_counter() - t
        summary = json.loads(out.stdout[out.stdout.index("{"):])
        assert not summary["encoder_loaded"], "unchanged `policyqa index build` loaded the encoder"
        processes.append({"wall_s": wall, "build_s": summary["seconds"], "chunks": summary["chunks"],
                          "encoder_loaded": summary["encoder_loaded"]})
    return {"encoder": p["encoder"], "added": added, **series, "process": processes}


# --- synthetic corpus ------------------------------------------------------------------------------------
@dataclasses.dataclass
class SeedMaterial:
    sentences: list[str]
    sentence_rows: dict[str, list[int]]  # sentence -> seed chunk rows containing it
    headings: list[str]
    titles: list[str]
    sources: list[str]
    regions: list[str]


def seed_material(corpus: ChunkedCorpus) -> SeedMaterial:
    rows: dict[str, list[int]] = {}
    for i, c in enumerate(corpus.chunks):
        for s, e in sentence_spans(c.text):
            sent = c.text[s:e]
            if len(sent) >= 8:
                rows.setdefault(sent, []).append(i)
    headings = sorted({label for c in corpus.chunks for label in c.section if 4 <= len(label) <= 30})
    return SeedMaterial(sentences=sorted(rows), sentence_rows=rows, headings=headings,
                        titles=[d.title for d in corpus.documents], sources=[d.source for d in corpus.documents],
                        regions=[d.region for d in corpus.documents])


def synthetic_document(j: int, rng: random.Random, m: SeedMaterial) -> Document:
    """One article: a title, 2-5 headed sections of 1-3 paragraphs of 2-6 seed sentences (no repeats)."""
    pool = rng.sample(m.sentences, k=min(len(m.sentences), 90))
    lines = [rng.choice(m.titles), ""]
    for _ in range(rng.randint(2, 5)):
        if not pool:
            break
        lines += [rng.choice(m.headings), ""]
        for _ in range(rng.randint(1, 3)):
            take, pool = pool[: rng.randint(2, 6)], pool[6:]
            if take:
                lines += ["　　" + "".join(take), ""]
    year = 2018 + j % 8
    meta = {"doc_id": f"synthetic-{j:06d}", "title": lines[0], "date": f"{year}-{1 + j % 12:02d}-{1 + j % 28:02d}",
            "date_inferred": False, "source": rng.choice(m.sources), "region": rng.choice(m.regions)}
    text = render_document(meta, "\n".join(lines))
    return parse_document(text.encode("utf-8"), Path(f"{meta['doc_id']}.md"))


def synthetic_corpus(n_chunks: int, seed_corpus: ChunkedCorpus, seed: int = SYNTH_SEED) -> ChunkedCorpus:
    """Exactly n_chunks chunks, documents made by the real cleaner and chunker (the last one cut short)."""
    m = seed_material(seed_corpus)
    rng = random.Random(seed)
    config = seed_corpus.config
    docs: list[Document] = []
    cleaned: dict[str, CleanDocument] = {}
    chunks: list[Chunk] = []
    j = 0
    while len(chunks) < n_chunks:
        doc = synthetic_document(j, rng, m)
        j += 1
        clean = clean_document(doc)
        part = chunk_document(clean, config)
        if not part:
            continue
        docs.append(doc)
        cleaned[doc.doc_id] = clean
        chunks.extend(part[: n_chunks - len(chunks)])
    return ChunkedCorpus(tuple(docs), cleaned, tuple(chunks), (), config)


def synthetic_vectors(corpus: ChunkedCorpus, seed_corpus: ChunkedCorpus, seed_vectors: np.ndarray,
                      seed: int = SYNTH_SEED) -> np.ndarray:
    """Per chunk: the mean embedding of the seed chunks its sentences came from, plus noise, normalised."""
    m = seed_material(seed_corpus)
    rng = np.random.default_rng(seed)
    n, dim = len(corpus.chunks), seed_vectors.shape[1]
    base = np.zeros((n, dim), dtype=np.float32)
    for i, c in enumerate(corpus.chunks):
        rows = [r for s, e in sentence_spans(c.text) for r in m.sentence_rows.get(c.text[s:e], ())]
        if not rows:  # a chunk of headings or merged text: any seed chunk
            rows = [int(rng.integers(len(seed_vectors)))]
        base[i] = seed_vectors[rows].mean(axis=0)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    noise = rng.standard_normal((n, dim), dtype=np.float32) * (NOISE_NORM / np.sqrt(dim))
    out = base + noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return np.ascontiguousarray(out, dtype=np.float32)


class MemoSegmenter(Segmenter):
    """A Segmenter whose tokens() answers from tokens computed (and timed) before the build."""

    def __init__(self, memo: dict[str, list[str]]) -> None:
        super().__init__()
        self._memo = memo

    def tokens(self, text: str) -> list[str]:
        hit = self._memo.get(text)
        return hit if hit is not None else super().tokens(text)


class BlockTokens:
    """Segmenter.tokens(text), computed per jieba block and memoised.

    jieba splits a text into blocks (runs matching jieba.re_han_default) and segments each block on its own,
    and Segmenter.tokens filters word by word, so a text's tokens are its blocks' tokens concatenated: the
    same result, fast on recombined text whose blocks repeat. child_synth_build checks it against
    Segmenter.tokens on a sample and falls back to Segmenter.tokens on any difference.
    """

    def __init__(self, segmenter: Segmenter) -> None:
        import jieba

        self._split = jieba.re_han_default.split
        self._segmenter = segmenter
        self._memo: dict[str, list[str]] = {}

    def __call__(self, text: str) -> list[str]:
        out: list[str] = []
        for piece in self._split(text.lower()):
            if piece:
                hit = self._memo.get(piece)
                if hit is None:
                    hit = self._memo[piece] = self._segmenter.tokens(piece)
                out.extend(hit)
        return out


def manifest_of(generation: Path) -> dict[str, Any]:
    return dict(json.loads((generation / "manifest.json").read_text(encoding="utf-8")))


def seed_vectors_from_cache(seed_corpus: ChunkedCorpus, seed_root: Path,
                            backend: str) -> tuple[ChunkedCorpus, np.ndarray]:
    """The seed chunks with their real embeddings (from the cache a seed build with ``backend`` filled)."""
    from index.builder import passage_text
    from index.embedcache import EmbeddingCache, text_key
    from index.modelinfo import describe_model

    info = describe_model(model_dir(), backend)
    keys = [text_key(passage_text(c)) for c in seed_corpus.chunks]
    found = EmbeddingCache(seed_root / "cache" / "embeddings.sqlite", info.fingerprint, info.dim).get_many(keys)
    keep = [i for i, k in enumerate(keys) if k in found]
    if not keep:
        raise RuntimeError(f"no seed embeddings in {seed_root}")
    kept = dataclasses.replace(seed_corpus, chunks=tuple(seed_corpus.chunks[i] for i in keep))
    return kept, np.stack([found[keys[i]] for i in keep])


# --- child: synthetic index build -------------------------------------------------------------------------
def child_synth_build(p: dict[str, Any]) -> dict[str, Any]:
    from index.builder import build_index, passage_text
    from index.dense import DenseIndex
    from index.embedcache import EmbeddingCache, text_key
    from index.modelinfo import describe_model
    from index.sparse import SparseIndex

    n, root = int(p["n"]), Path(p["root"])
    out: dict[str, Any] = {"n": n, "backend": p["backend"]}
    info = describe_model(model_dir(), p["backend"])
    seed_corpus, seed_vectors = seed_vectors_from_cache(load_chunked_corpus(Path(p["raw"])), Path(p["seed_root"]),
                                                        p["backend"])
    out["seed_chunks"] = len(seed_corpus.chunks)

    t = time.perf_counter()
    corpus = synthetic_corpus(n, seed_corpus)
    out["generate_chunk_s"] = time.perf_counter() - t
    out["documents"] = len(corpus.documents)
    out["chunk_chars_mean"] = statistics.mean(len(c.text) for c in corpus.chunks)
    t = time.perf_counter()
    vectors = synthetic_vectors(corpus, seed_corpus, seed_vectors)
    out["vectors_s"] = time.perf_counter() - t
    out["vector_max_cos_to_seed_mean"] = float((vectors[:2000] @ seed_vectors.T).max(axis=1).mean())

    # jieba: the rate is timed on a sample with Segmenter.tokens; all N token lists come from BlockTokens,
    # which gives the same tokens (checked on the sample) without re-segmenting repeated sentences.
    texts = [passage_text(c) for c in corpus.chunks]
    seg = Segmenter()
    t = time.perf_counter()
    seg.tokens("预热")
    out["jieba_init_s"] = time.perf_counter() - t
    sample = texts[: min(n, int(p["token_sample"]))]
    t = time.perf_counter()
    real = [seg.tokens(x) for x in sample]
    out["tokenise_sample"], out["tokenise_sample_s"] = len(sample), time.perf_counter() - t
    out["tokenise_chunks_per_s"] = len(sample) / out["tokenise_sample_s"]
    out["tokenise_chars_per_s"] = sum(len(x) for x in sample) / out["tokenise_sample_s"]
    blocks = BlockTokens(seg)
    t = time.perf_counter()
    token_lists = [blocks(x) for x in texts]
    out["tokenise_memo_s"] = time.perf_counter() - t
    out["token_mismatches"] = sum(a != b for a, b in zip(real, token_lists, strict=False))
    if out["token_mismatches"]:
        t = time.perf_counter()
        token_lists = [seg.tokens(x) for x in texts]
        out["tokenise_full_s"] = time.perf_counter() - t
    out["tokenise_s"] = out.get("tokenise_full_s", n / out["tokenise_chunks_per_s"])
    out["tokenise_measured_in_full"] = "tokenise_full_s" in out
    out["tokens_per_chunk"] = statistics.mean(len(x) for x in token_lists)
    del real

    # bm25s alone at N: time and memory.
    before = rss_mb()
    peak_ok = reset_peak_rss()
    t = time.perf_counter()
    sparse = SparseIndex.build(token_lists)
    out["bm25s_build_s"] = time.perf_counter() - t
    out["bm25s_rss_retained_mb"] = rss_mb() - before
    out["bm25s_peak_extra_mb"] = peak_rss_mb() - before if peak_ok else None
    bm = sparse._bm25  # the arrays' sizes: private to SparseIndex, read here for the figure only
    out["bm25s_arrays_mb"] = sum(v.nbytes for v in bm.scores.values() if isinstance(v, np.ndarray)) / 2**20
    out["bm25s_vocab"] = len(bm.vocab_dict)
    del sparse, bm

    # The vectors go in the embedding cache, so build_index writes a real generation without the encoder.
    t = time.perf_counter()
    cache = EmbeddingCache(root / "cache" / "embeddings.sqlite", info.fingerprint, info.dim)
    cache.put_many({text_key(x): vectors[i] for i, x in enumerate(texts)})
    out["cache_fill_s"] = time.perf_counter() - t

    threshold = min(int(p["hnsw_threshold"]), n)
    out["hnsw_threshold"] = threshold
    clock = StageClock()
    start = time.perf_counter()
    res = build_index(corpus, root, info, refusing_factory, segmenter=MemoSegmenter(dict(zip(texts, token_lists, strict=True))),
                      hnsw_threshold=threshold, progress=clock, reuse_indexes=False)
    end = time.perf_counter()
    assert not res.encoder_loaded and res.cached == n
    out["build_index_s"] = end - start
    out["build_stages"] = clock.stages(start, end)
    out["dense_kind"] = manifest_of(res.path)["dense"]["kind"]
    out["generation_mb"] = folder_mb(res.path)
    out["sparse_disk_mb"] = folder_mb(res.path / "sparse")
    out["dense_disk_mb"] = (res.path / "dense.faiss").stat().st_size / 2**20
    del token_lists

    # An unchanged rebuild at N, as `policyqa index build` runs it (a fresh Segmenter; nothing precomputed).
    clock = StageClock()
    start = time.perf_counter()
    again = build_index(corpus, root, info, refusing_factory, segmenter=Segmenter(), hnsw_threshold=threshold,
                        progress=clock)
    end = time.perf_counter()
    assert not again.encoder_loaded
    out["unchanged_rebuild_s"] = end - start
    out["unchanged_stages"] = clock.stages(start, end)
    out["unchanged_reused"] = manifest_of(again.path)["build"].get("reused_indexes_from") is not None

    t = time.perf_counter()
    flat = DenseIndex.build(vectors, hnsw_threshold=n + 1)
    out["flat_build_s"] = time.perf_counter() - t
    flat.save(root / "flat.faiss")
    out["flat_path"] = str(root / "flat.faiss")
    del flat
    out["flat_curve"] = flat_curve(vectors)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def flat_curve(vectors: np.ndarray, queries: int = 60) -> list[dict[str, Any]]:
    """Exact search time against the number of vectors (where the HNSW threshold should sit): through
    DenseIndex.search, with FAISS's default OpenMP team on a raw IndexFlatIP, and fp16-stored."""
    import faiss

    from index.dense import DenseIndex

    n, dim = vectors.shape
    rng = np.random.default_rng(1)
    qv = vectors[rng.choice(n, size=queries, replace=n < queries)]
    qv = qv + rng.standard_normal(qv.shape, dtype=np.float32) * (0.2 / np.sqrt(dim))
    qv = np.ascontiguousarray(qv / np.linalg.norm(qv, axis=1, keepdims=True), dtype=np.float32)

    def times(search: Callable[[np.ndarray], Any]) -> tuple[float, float]:
        for i in range(3):
            search(qv[i : i + 1])
        ms = []
        for i in range(queries):
            t = time.perf_counter()
            search(qv[i : i + 1])
            ms.append((time.perf_counter() - t) * 1000)
        return pct(ms)

    out = []
    for size in sorted({s for s in (10_000, 25_000, 50_000, 100_000, n) if s <= n}):
        part = np.ascontiguousarray(vectors[:size])
        dense = DenseIndex.build(part, hnsw_threshold=size + 1)
        raw = faiss.IndexFlatIP(dim)
        raw.add(part)
        fp16 = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        fp16.train(part[:10_000])
        fp16.add(part)
        before = faiss.omp_get_max_threads()
        row: dict[str, Any] = {"n": size, "faiss_default_threads": before,
                               "dense_search": times(functools.partial(dense.search, k=50)),
                               "default_team": times(functools.partial(raw.search, k=50))}
        faiss.omp_set_num_threads(1)
        try:
            row["fp16_one_thread"] = times(functools.partial(fp16.search, k=50))
        finally:
            faiss.omp_set_num_threads(before)
        out.append(row)
        del dense, raw, fp16
    return out


# --- child: query latencies on an index --------------------------------------------------------------------
class PrecomputedEncoder:
    """The real encoder's properties, answering with one pre-encoded query vector: Retriever.search minus the
    encoding (whatever text Retriever asks for: it encodes the question with its aliases expanded)."""

    def __init__(self, real: Any, vector: np.ndarray) -> None:
        self.dim = real.dim
        self.max_tokens = real.max_tokens
        self.fingerprint = real.fingerprint
        self.model_name = real.model_name
        self.backend = real.backend
        self._vector = vector

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vector for _ in texts])

    def encode_passages(self, texts: Sequence[str], *, batch_size: int = 16,
                        on_progress: Callable[[int], None] | None = None) -> np.ndarray:
        raise NotImplementedError

    def count_tokens(self, text: str, *, query: bool) -> int:
        return 0

    def truncates(self, text: str, *, query: bool) -> bool:
        return False


def child_search(p: dict[str, Any]) -> dict[str, Any]:
    import faiss  # no torch here: the ONNX backends must not need it

    from index.dense import DenseIndex
    from index.modelinfo import describe_model
    from index.store import load_index
    from service.retrieval import Retriever

    label = str(p["encoder"])
    sink: dict[str, float] = {}
    encoder = timed_encoder_factory(label, sink)()
    encoder_load_s = sink["encoder_load_s"]
    # The index's encoder variant: the encoder's own, except for the synthetic index queried by a label of
    # another backend (its vectors are synthetic anyway), where the check is made against the index's.
    index_backend = str(p.get("index_backend") or encoder.backend)
    fingerprint = encoder.fingerprint if index_backend == encoder.backend else \
        describe_model(model_dir(), index_backend).fingerprint
    segmenter = Segmenter()
    segmenter.tokens("预热")
    t = time.perf_counter()
    idx = load_index(Path(p["root"]), model_fingerprint=fingerprint, lexicon_hash=segmenter.hash,
                     backend=index_backend)
    index_load_s = time.perf_counter() - t
    variants = {label: idx if path is None else dataclasses.replace(idx, dense=DenseIndex.load(Path(path)))
                for label, path in p["variants"]}
    rec: dict[str, dict[str, Any]] = {
        label: {"search": {m: [] for m in MODES}, "e2e": {m: [] for m in MODES}, "cpu_hybrid": [], "parts": {},
                "kind": v.dense.kind, "size": v.dense.size} for label, v in variants.items()}
    encode_ms: list[float] = []
    truncates_ms: list[float] = []
    postings: list[int] = []

    def one(q: str, keep: bool) -> None:
        t = time.perf_counter()
        encoder.truncates(q, query=True)
        trunc = (time.perf_counter() - t) * 1000
        vec: np.ndarray | None = None
        for label, v in variants.items():
            r = rec[label]
            real = Retriever(v, encoder, segmenter)
            c, t = time.process_time(), time.perf_counter()
            resp = real.search(q, K, "hybrid")
            wall, cpu = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000
            qv = getattr(resp, "query_vector", None)
            vec = vec if vec is not None else (qv if qv is not None else encoder.encode_queries([q])[0])
            others = {m: 0.0 for m in ("dense", "sparse")}
            for m in others:
                t = time.perf_counter()
                real.search(q, K, m)
                others[m] = (time.perf_counter() - t) * 1000
            fast = Retriever(v, PrecomputedEncoder(encoder, vec), segmenter)
            only = {m: 0.0 for m in MODES}
            for m in MODES:
                t = time.perf_counter()
                fast.search(q, K, m)
                only[m] = (time.perf_counter() - t) * 1000
            if keep:
                r["e2e"]["hybrid"].append(wall)
                r["cpu_hybrid"].append(cpu)
                for m, ms in others.items():
                    r["e2e"][m].append(ms)
                for m, ms in only.items():
                    r["search"][m].append(ms)
                for name, ms in resp.timings_ms.items():
                    r["parts"].setdefault(name, []).append(ms)
                if "encode" in resp.timings_ms:
                    encode_ms.append(resp.timings_ms["encode"])
        if keep:
            truncates_ms.append(trunc)
            postings.append(sum(idx.sparse.doc_freq(tok) for tok in segmenter.tokens(q)))

    for q in p["queries"][: p["warmup"]]:  # thread pools, buffers, caches
        one(q, keep=False)
    started = time.perf_counter()
    for i, q in enumerate(p["queries"]):  # all of them, or as many as the time budget allows (>= 20)
        if i >= 20 and time.perf_counter() - started > p["budget_s"]:
            break
        one(q, keep=True)
    return {"encoder": label, "backend": encoder.backend, "index_backend": index_backend,
            "faiss_threads": faiss.omp_get_max_threads(),
            "encoder_load_s": encoder_load_s, "index_load_s": index_load_s, "chunks": len(idx.chunks),
            "encode": encode_ms, "truncates": truncates_ms, "postings": postings, "variants": rec, "rss_mb": rss_mb()}


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "cold-build": child_cold_build, "rebuild": child_rebuild, "synth-build": child_synth_build,
    "search": child_search,
}


# --- parent ------------------------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_child(role: str, params: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter (encoder thread counts are process-wide)."""
    tag = f"{role}-{time.monotonic_ns()}"
    pfile, rfile = workdir / f"{tag}.params.json", workdir / f"{tag}.result.json"
    pfile.write_text(json.dumps(params, ensure_ascii=False), encoding="utf-8")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", role, "--params", str(pfile),
           "--result", str(rfile)]
    load = os.getloadavg()[0]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0 or not rfile.exists():
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        raise RuntimeError(f"benchmark child {role} failed (exit {proc.returncode})")
    result = dict(json.loads(rfile.read_text(encoding="utf-8")))
    result["_wall_s"], result["_load"] = time.perf_counter() - t, (load, os.getloadavg()[0])
    return result


def fmt(v: float | None, digits: int = 1) -> str:
    if v is None or v != v:
        return "-"
    return f"{v:.{digits}f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def mean_load(results: Sequence[dict[str, Any]]) -> float:
    return statistics.mean(x for r in results for x in r["_load"])


Row = tuple[str, dict[str, tuple[float, float]]]


def print_latency_table(title: str, rows: list[Row], labels: list[str],
                        target: Callable[[str], str] | None = None) -> None:
    """One p50/p99 pair per encoder label; with a torch label among several, each other label's p50 ratio to it."""
    ref = torch_reference(labels) if len(labels) > 1 else None
    head = ""
    for e in labels:
        head += f"{e + '  p50':>19} {'p99':>7}" + (f"{'p50 vs torch':>16}" if ref and e != ref else "")
    print(f"\n{title}")
    print(f"  {'':52}{head}" + ("   target (p50 <= 30, p99 <= 80)" if target else ""))
    for name, by_e in rows:
        cells = ""
        for e in labels:
            cells += f"{fmt(by_e[e][0]):>19} {fmt(by_e[e][1]):>7}"
            if ref and e != ref:
                cells += f"{ratio_note(by_e[e][0], by_e[ref][0], ref):>16}"
        note = target(name) if target else ""
        print(f"  {name:52}{cells}" + (f"   {note}" if note else ""))


def summarise_search(runs: dict[str, list[dict[str, Any]]], label: str) -> dict[str, Any]:
    """Per encoder label: the median over repetitions of every series' p50 and p99."""
    out: dict[str, Any] = {}
    for enc, reps in runs.items():
        if not reps:
            continue
        v = [r["variants"][label] for r in reps]
        s: dict[str, Any] = {"encode": median_pct([r["encode"] for r in reps]),
                             "truncates": median_pct([r["truncates"] for r in reps]),
                             "cpu_hybrid": median_pct([x["cpu_hybrid"] for x in v])}
        for mode in MODES:
            s[f"search_{mode}"] = median_pct([x["search"][mode] for x in v])
            s[f"e2e_{mode}"] = median_pct([x["e2e"][mode] for x in v])
        s["parts"] = {name: statistics.median(statistics.median(x["parts"][name]) for x in v)
                      for name in v[0]["parts"]}
        s["postings_median"] = statistics.median(statistics.median(r["postings"]) for r in reps)
        for key in ("encoder_load_s", "index_load_s", "rss_mb"):
            s[key] = statistics.median(r[key] for r in reps)
        s["kind"], s["size"], s["faiss_threads"] = v[0]["kind"], v[0]["size"], reps[0]["faiss_threads"]
        s["reps"], s["queries"], s["load"] = len(reps), len(reps[0]["truncates"]), mean_load(reps)
        s["index_backend"] = reps[0]["index_backend"]
        out[enc] = s
    return out


ROWS = [("query encode (Retriever's encode stage)", "encode"),
        ("  of which the truncation check (count_tokens)", "truncates"),
        ("search only, dense (pre-encoded query vector)", "search_dense"),
        ("search only, sparse (jieba + bm25s)", "search_sparse"),
        ("search only, hybrid (pre-encoded query vector)", "search_hybrid"),
        ("end-to-end Retriever.search, dense", "e2e_dense"),
        ("end-to-end Retriever.search, sparse", "e2e_sparse"),
        ("end-to-end Retriever.search, hybrid", "e2e_hybrid"),
        ("  CPU time of that hybrid call (process)", "cpu_hybrid")]


def search_rows(summary: dict[str, Any], labels: list[str]) -> list[Row]:
    rows: list[Row] = [(name, {e: summary[e][key] for e in labels}) for name, key in ROWS]
    rows.append(("encode + hybrid search-only (sum of the p50s / p99s)",
                 {e: (summary[e]["encode"][0] + summary[e]["search_hybrid"][0],
                      summary[e]["encode"][1] + summary[e]["search_hybrid"][1]) for e in labels}))
    return rows


def print_parts(summary: dict[str, Any], labels: list[str]) -> None:
    for e in labels:
        s = summary[e]
        print(f"  {e}: hybrid timings_ms medians: " + ", ".join(f"{k} {fmt(v, 2)}" for k, v in s["parts"].items())
              + f"; BM25 postings per query (median) {s['postings_median']:,.0f}; encoder load {fmt(s['encoder_load_s'], 1)} s, "
              f"index load {fmt(s['index_load_s'], 2)} s, RSS {fmt(s['rss_mb'], 0)} MB; {s['reps']} process(es) x "
              f"{s['queries']} queries, mean load average {fmt(s['load'], 1)}"
              + (f"; queried the {s['index_backend']} index" if s["index_backend"] != parse_encoder(e)[0] else ""))


def fastest_encoder(summary: dict[str, Any], labels: list[str], key: str = "e2e_hybrid") -> str:
    return min(labels, key=lambda e: summary[e][key][0])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition (for development)")
    parser.add_argument("--synthetic", type=int, default=None,
                        help="synthetic chunks (default 100000; 5000 with --quick; 0 skips part 2)")
    parser.add_argument("--encoders", default="torch:1,onnx-int8:1",
                        help="comma list of backend:threads encoder configurations to compare (backends onnx-int8, "
                        "onnx, torch; default torch:1,onnx-int8:1)")
    parser.add_argument("--reps", type=int, default=None,
                        help="fresh processes per encoder for the seed queries (default 3; the synthetic index uses "
                        "at most 2)")
    parser.add_argument("--queries", type=int, default=None, help="questions used (default: all of seeds-dev)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds of queries per process after warm-up, at least 20 queries (default 60 for the "
                        "seed index, twice that for the synthetic one; 20 with --quick)")
    parser.add_argument("--build-reps", type=int, default=None, help="cold builds per encoder (default 1)")
    parser.add_argument("--synthetic-all-encoders", action="store_true",
                        help="query the synthetic index with every encoder, not only the fastest one")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: seed, synthetic, builds")
    parser.add_argument("--workdir", type=Path, default=None, help="where the temporary index folders go")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--params", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        params = json.loads(args.params.read_text(encoding="utf-8"))
        result = CHILDREN[args.child](params)
        args.result.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
        return 0

    labels: list[str] = []
    for item in args.encoders.split(","):
        if item.strip():
            try:
                backend, n = parse_encoder(item)
            except ValueError as exc:
                parser.error(str(exc))
            if f"{backend}:{n}" not in labels:
                labels.append(f"{backend}:{n}")
    if not labels:
        parser.error("--encoders names no encoder")
    unknown = {x.strip() for x in args.skip.split(",") if x.strip()} - {"seed", "synthetic", "builds"}
    if unknown:
        parser.error(f"--skip: unknown part(s) {', '.join(sorted(unknown))} (seed, synthetic, builds)")
    work = Path(tempfile.mkdtemp(prefix="retrieval-bench-", dir=args.workdir))
    report: dict[str, Any] = {"argv": sys.argv[1:], "encoders": labels}
    load_before = os.getloadavg()
    started = time.perf_counter()
    try:
        report.update(run_all(args, labels, work))
    finally:
        if args.keep:
            log(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report["load_avg_before"], report["load_avg_after"] = load_before, os.getloadavg()
    report["total_s"] = time.perf_counter() - started
    print(f"\nload average (1/5/15 min): before {' '.join(fmt(x, 2) for x in load_before)}, "
          f"after {' '.join(fmt(x, 2) for x in report['load_avg_after'])}; total {report['total_s'] / 60:.1f} min")
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"figures written to {args.json}")
    return 0


def run_all(args: argparse.Namespace, labels: list[str], work: Path) -> dict[str, Any]:

    reps = args.reps or (1 if args.quick else 3)
    build_reps = args.build_reps or 1
    budget = args.budget or (20.0 if args.quick else 60.0)
    n_synth = args.synthetic if args.synthetic is not None else (5000 if args.quick else 100_000)
    queries = load_questions(args.queries or (30 if args.quick else None))
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    raw_src = SEEDS_DIR
    cpu = cpu_info()
    out: dict[str, Any] = {"reps": reps, "queries": len(queries), "synthetic_n": n_synth, "cpu": cpu}
    targets: list[tuple[str, str, str, bool]] = []  # (figure, value, target, met)

    def backend_of(label: str) -> str:
        return parse_encoder(label)[0]

    def slug(label: str) -> str:
        backend, n = parse_encoder(label)
        return f"{backend}-t{n}"

    print("policyqa retrieval benchmark")
    print("  " + describe(cpu).replace("\n", "\n  "))
    print(f"  load average {' '.join(fmt(x, 2) for x in os.getloadavg())} at the start; niceness {os.nice(0)}; "
          f"model {model_dir().relative_to(REPO) if model_dir().is_relative_to(REPO) else model_dir()}")
    print(f"  queries: {len(queries)} from {QUESTIONS_FILE.relative_to(REPO)}; k={K}, 50 candidates a side; every "
          f"figure is the median over fresh processes of each process's p50/p99 (encoders {', '.join(labels)})")

    # --- cold builds (they also make each backend's seed index and embedding cache for the other parts) ---
    cold: dict[str, list[dict[str, Any]]] = {e: [] for e in labels}
    if "builds" not in skip:
        cold_labels = labels
    else:  # one build per backend: an index is tied to the encoder variant that made it
        cold_labels = [e for i, e in enumerate(labels) if backend_of(e) not in map(backend_of, labels[:i])]
    cold_reps = build_reps if "builds" not in skip else 1
    for r in range(cold_reps):
        for e in cold_labels:
            log(f"cold build of the seed corpus, encoder {e}, repetition {r + 1}/{cold_reps}")
            cold[e].append(run_child("cold-build", {"encoder": e, "raw": str(raw_src),
                                                    "root": str(work / f"cold-{slug(e)}-r{r}")}, work))
    seed_roots: dict[str, Path] = {}  # backend -> the first cold build made with it
    for e in cold_labels:
        seed_roots.setdefault(backend_of(e), work / f"cold-{slug(e)}-r0")
    out["cold_build"] = {e: rs for e, rs in cold.items() if rs}

    # --- 1. seed index ------------------------------------------------------------------------------------
    best_query = labels[0]
    if "seed" not in skip:
        runs: dict[str, list[dict[str, Any]]] = {e: [] for e in labels}
        for r in range(reps):
            for e in labels:
                log(f"seed index queries, encoder {e}, repetition {r + 1}/{reps}")
                runs[e].append(run_child("search", {"encoder": e, "root": str(seed_roots[backend_of(e)]),
                                                    "queries": queries, "warmup": 10, "budget_s": budget,
                                                    "variants": [["flat", None]]}, work))
        seed = summarise_search(runs, "flat")
        out["seed"] = seed
        best_query = fastest_encoder(seed, labels)
        out["seed_fastest_encoder"] = best_query
        s0 = seed[labels[0]]
        print_latency_table(f"[1] Seed index: {runs[labels[0]][0]['chunks']} chunks (FAISS {s0['kind']}, bm25s), "
                            "latency in ms", search_rows(seed, labels), labels)
        print_parts(seed, labels)
        print(f"  fastest encoder for queries: {best_query} (end-to-end hybrid p50 "
              + " vs ".join(f"{fmt(seed[e]['e2e_hybrid'][0])} ms @ {e}" for e in labels) + ")")
        p50, p99 = seed[best_query]["e2e_hybrid"]
        targets.append((f"seed index, hybrid end-to-end, {best_query}",
                        f"p50 {fmt(p50)} / p99 {fmt(p99)} ms", "p50 <= 30 / p99 <= 80 ms (100k target)",
                        p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS))

    # --- 2. synthetic index -----------------------------------------------------------------------------------
    if n_synth > 0 and "synthetic" not in skip:
        sroot = work / "synthetic"
        s_backend = backend_of(best_query)
        log(f"synthetic index: generating and building {n_synth:,} chunks (no encoder; {s_backend} seed vectors)")
        sb = run_child("synth-build", {"n": n_synth, "root": str(sroot), "seed_root": str(seed_roots[s_backend]),
                                       "backend": s_backend, "raw": str(raw_src), "hnsw_threshold": 100_000,
                                       "token_sample": 1000 if args.quick else 3000}, work)
        out["synthetic_build"] = sb
        s_labels = labels if args.synthetic_all_encoders else [best_query]
        s_reps = max(1, min(reps, 2))
        sruns: dict[str, list[dict[str, Any]]] = {e: [] for e in s_labels}
        for r in range(s_reps):
            for e in s_labels:
                log(f"synthetic index queries, encoder {e}, repetition {r + 1}/{s_reps}")
                sruns[e].append(run_child("search", {
                    "encoder": e, "index_backend": s_backend, "root": str(sroot), "queries": queries, "warmup": 10,
                    "budget_s": 2 * budget, "variants": [["hnsw", None], ["flat", sb["flat_path"]]]}, work))
        syn = {label: summarise_search(sruns, label) for label in ("flat", "hnsw")}
        out["synthetic"] = syn
        report_synthetic(sb, syn, s_labels, n_synth, targets)

    # --- 3. builds ----------------------------------------------------------------------------------------------
    if "builds" not in skip:
        report_builds(args, cold, labels, work, raw_src, out, targets)

    print("\nTargets (2-core machine)")
    for fig, val, target, ok in targets:
        print(f"  {fig:62} {val:26} target {target:40} {verdict(ok)}")
    out["targets"] = [{"figure": f, "value": v, "target": t, "met": ok} for f, v, t, ok in targets]
    return out


def report_synthetic(sb: dict[str, Any], syn: dict[str, Any], s_labels: list[str], n: int,
                     targets: list[tuple[str, str, str, bool]]) -> None:
    print(f"\n[2] Synthetic index: {n:,} chunks in {sb['documents']:,} documents, recombined from {sb['seed_chunks']} "
          f"seed chunks' sentences (seed {SYNTH_SEED}) through the real cleaner and chunker, mean "
          f"{sb['chunk_chars_mean']:.0f} chars a chunk")
    print(f"    vectors: not from the model; each chunk's = the mean {sb['backend']} embedding of the seed chunks its "
          "sentences came from + noise, normalised (dim 384),")
    print(f"    mean max-cosine to a seed chunk {sb['vector_max_cos_to_seed_mean']:.3f}; written through the embedding "
          "cache by build_index, queried with load_index + Retriever and real encoded queries.")
    print("    BM25 caveat: only a few hundred distinct sentences recombined, so query terms hit far more postings "
          "than in a real corpus of this size (pessimistic for sparse search).")
    print(f"  generate + clean + chunk {fmt(sb['generate_chunk_s'])} s; vectors {fmt(sb['vectors_s'])} s; "
          f"embedding cache fill {fmt(sb['cache_fill_s'])} s")
    how = "measured on all" if sb["tokenise_measured_in_full"] else f"rate timed on {sb['tokenise_sample']:,}, extrapolated"
    print(f"  jieba: start-up {fmt(sb['jieba_init_s'], 2)} s; {sb['tokenise_chunks_per_s']:.0f} chunks/s "
          f"({sb['tokenise_chars_per_s'] / 1000:.0f}k chars/s), {sb['tokens_per_chunk']:.0f} tokens a chunk; "
          f"{fmt(sb['tokenise_s'])} s for {n:,} ({how}; token mismatches of the block memo: {sb['token_mismatches']})")
    print(f"  bm25s index of {n:,} token lists: build {fmt(sb['bm25s_build_s'], 2)} s; arrays "
          f"{fmt(sb['bm25s_arrays_mb'])} MB, RSS retained {fmt(sb['bm25s_rss_retained_mb'])} MB, peak extra "
          f"{fmt(sb['bm25s_peak_extra_mb'])} MB, on disk {fmt(sb['sparse_disk_mb'])} MB; vocabulary {sb['bm25s_vocab']:,}")
    st = sb["build_stages"]
    print(f"  build_index, all vectors cached, tokens precomputed, no reuse: {fmt(sb['build_index_s'])} s (prepare "
          f"{fmt(st['prepare'])}, cache {fmt(st['encode'])}, dense {fmt(st['dense'])}, sparse {fmt(st['sparse'])}, "
          f"write {fmt(st['write'])} s); dense {sb['dense_kind']} at threshold {sb['hnsw_threshold']:,} (HNSW M=32, "
          f"efConstruction 200, efSearch 128), {fmt(sb['dense_disk_mb'])} MB; exact IndexFlatIP build "
          f"{fmt(sb['flat_build_s'], 2)} s; child peak RSS {fmt(sb['peak_rss_mb'], 0)} MB")
    print(f"  exact search of one query (k=50) against the number of vectors, ms p50/p99 ({len(sb['flat_curve'])} sizes, "
          "60 queries each):")
    print(f"  {'vectors':>10}{'DenseIndex.search':>22}{'FAISS default team':>22}{'fp16 storage, 1 thread':>26}")
    for row in sb["flat_curve"]:
        cells = [f"{fmt(row[k][0])} / {fmt(row[k][1])}" for k in ("dense_search", "default_team", "fp16_one_thread")]
        print(f"  {row['n']:>10,}{cells[0]:>22}{cells[1] + ' (' + str(row['faiss_default_threads']) + ' thr)':>22}"
              f"{cells[2]:>26}")
    for label in ("flat", "hnsw"):
        s = syn[label]

        def note(name: str, s: dict[str, Any] = s) -> str:
            if not name.startswith("end-to-end"):
                return ""
            p50, p99 = min((s[e][f"e2e_{name.rsplit(' ', 1)[-1]}"] for e in s_labels), key=lambda x: x[0])
            return f"p50 {verdict(p50 <= TARGET_P50_MS)}, p99 {verdict(p99 <= TARGET_P99_MS)}"

        kind = "exact IndexFlatIP (swapped in)" if label == "flat" else "HNSW (as build_index made it)"
        print_latency_table(f"  {n:,} chunks, dense = {kind}, latency in ms", search_rows(s, s_labels), s_labels, note)
        print_parts(s, s_labels)
        best = fastest_encoder(s, s_labels)
        for mode in ("hybrid", "dense", "sparse"):
            p50, p99 = s[best][f"e2e_{mode}"]
            targets.append((f"{n:,} chunks, {mode} end-to-end, {label}, {best}", f"p50 {fmt(p50)} / p99 {fmt(p99)} ms",
                            "p50 <= 30 / p99 <= 80 ms", p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS))
    old = sb["build_index_s"] + sb["tokenise_s"] + sb["jieba_init_s"]
    new = sb["unchanged_rebuild_s"]
    st = sb["unchanged_stages"]
    print(f"  unchanged rebuild at {n:,}: without index reuse {fmt(old)} s = {n / old:,.0f} chunks/s (build_index above "
          f"+ jieba); build_index now {fmt(new, 2)} s = {n / new:,.0f} chunks/s (reused the indexes: "
          f"{sb['unchanged_reused']}; prepare {fmt(st['prepare'], 2)}, dense {fmt(st['dense'], 2)}, sparse "
          f"{fmt(st['sparse'], 2)}, write {fmt(st['write'], 2)} s)")
    targets.append((f"unchanged rebuild at {n:,} chunks (build_index)", f"{n / new:,.0f} chunks/s",
                    f">= {TARGET_UNCHANGED_CHUNKS_S:,.0f} chunks/s", n / new >= TARGET_UNCHANGED_CHUNKS_S))


def report_builds(args: argparse.Namespace, cold: dict[str, list[dict[str, Any]]], labels: list[str], work: Path,
                  raw_src: Path, out: dict[str, Any], targets: list[tuple[str, str, str, bool]]) -> None:
    ref = torch_reference(labels) if len(labels) > 1 else None
    print("\n[3] Builds (temporary index folders; cold = fresh, empty embedding cache)")
    print(f"  {'':44}{'chunks':>7}{'seconds':>9}{'chunks/s':>10}{'CPU s':>8}{'model load s':>14}{'encode s':>10}"
          f"{'passages/s':>12}{'dense s':>9}{'sparse s':>10}{'write s':>9}{'load avg':>10}"
          + (f"{'seconds vs torch':>18}{'encode s vs torch':>19}" if ref else ""))
    seconds = {e: statistics.median(r["seconds"] for r in cold[e]) for e in labels}
    stages = {e: {k: statistics.median(r["stages"][k] for r in cold[e]) for k in cold[e][0]["stages"]} for e in labels}
    rate: dict[str, float] = {}
    for e in labels:
        rs, sec, st = cold[e], seconds[e], stages[e]
        pps = statistics.median(r["passages_per_s"] for r in rs)
        rate[e] = rs[0]["chunks"] / sec
        cpu = statistics.median(r["cpu_s"] for r in rs)
        vs = ""
        if ref and e != ref:
            vs = f"{ratio_note(sec, seconds[ref], ref):>18}{ratio_note(st['encode'], stages[ref]['encode'], ref):>19}"
        elif ref:
            vs = f"{'(reference)':>18}{'':>19}"
        print(f"  {f'cold build, {e} (median of {len(rs)})':44}{rs[0]['chunks']:>7}{sec:>9.1f}{rate[e]:>10.2f}"
              f"{cpu:>8.1f}{st['model_load']:>14.1f}{st['encode']:>10.1f}{pps:>12.2f}{st['dense']:>9.3f}{st['sparse']:>10.2f}"
              f"{st['write']:>9.3f}{mean_load(rs):>10.1f}{vs}")
    best = max(labels, key=lambda e: rate[e])
    out["cold_fastest_encoder"] = best
    print(f"  fastest encoder for builds: {best}; 'encode s' and passages/s are the embed stage without the model "
          "load; CPU s is the build process's CPU time (all threads counted)")
    targets.append((f"cold build of the seed corpus, {best}", f"{rate[best]:.2f} chunks/s",
                    f">= {TARGET_COLD_CHUNKS_S:.0f} chunks/s", rate[best] >= TARGET_COLD_CHUNKS_S))

    raw_copy = work / "raw-plus-one"
    shutil.copytree(raw_src, raw_copy)
    log(f"rebuilds: one article added, then unchanged (encoder {best})")
    backend, n = parse_encoder(best)
    rb = run_child("rebuild", {"encoder": best, "root": str(work / f"cold-{backend}-t{n}-r0"), "raw": str(raw_copy),
                               "repeats": 2 if args.quick else 5, "cli_repeats": 1 if args.quick else 3}, work)
    out["rebuild"] = rb
    a, st = rb["added"], rb["added"]["stages"]
    print(f"  rebuild after adding one article ({a['new_doc_chunks']} new chunks): {a['embedded']} of {a['chunks']} "
          f"chunks embedded, {a['cached']} from the cache, {a['seconds']:.1f} s (model load {st['model_load']:.1f}, "
          f"encode {st['encode']:.1f}, dense {st['dense']:.3f}, sparse {st['sparse']:.2f}, write {st['write']:.3f} s); "
          f"encoder loaded: {a['encoder_loaded']}")
    for key, label in (("unchanged_full", "unchanged rebuild, indexes rebuilt (reuse_indexes=False)"),
                       ("unchanged", "unchanged rebuild, build_index as shipped")):
        un = rb[key]
        sec = statistics.median(u["seconds"] for u in un)
        st = {k: statistics.median(u["stages"][k] for u in un) for k in un[0]["stages"]}
        r = un[0]["chunks"] / sec
        print(f"  {label}: {un[0]['chunks']} chunks in {sec * 1000:.0f} ms = {r:,.0f} chunks/s (median of {len(un)}; "
              f"prepare {st['prepare'] * 1000:.0f}, cache {st['encode'] * 1000:.0f}, dense {st['dense'] * 1000:.0f}, "
              f"sparse {st['sparse'] * 1000:.0f}, write {st['write'] * 1000:.0f} ms; corpus load "
              f"{statistics.median(u['corpus_load_s'] for u in un) * 1000:.0f} ms before it); encoder loaded: "
              f"{any(u['encoder_loaded'] for u in un)}; indexes reused: {all(u['reused'] for u in un)}")
        if key == "unchanged":
            targets.append(("unchanged rebuild of the seed corpus (build_index)", f"{r:,.0f} chunks/s",
                            f">= {TARGET_UNCHANGED_CHUNKS_S:,.0f} chunks/s", r >= TARGET_UNCHANGED_CHUNKS_S))
    if rb["process"]:
        wall = statistics.median(x["wall_s"] for x in rb["process"])
        inner = statistics.median(x["build_s"] for x in rb["process"])
        chunks = rb["process"][0]["chunks"]
        print(f"  unchanged rebuild as a whole `policyqa index build` process: {wall:.2f} s wall = {chunks / wall:.0f} "
              f"chunks/s (its build_index {inner:.2f} s; the rest is interpreter start, imports, model folder check, "
              f"corpus load); encoder loaded: {any(x['encoder_loaded'] for x in rb['process'])}")
        targets.append(("unchanged rebuild of the seed corpus (whole process)", f"{chunks / wall:,.0f} chunks/s",
                        f">= {TARGET_UNCHANGED_CHUNKS_S:,.0f} chunks/s", chunks / wall >= TARGET_UNCHANGED_CHUNKS_S))


if __name__ == "__main__":
    raise SystemExit(main())
