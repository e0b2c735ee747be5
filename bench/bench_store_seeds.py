"""The FAISS + bm25s store against the Milvus store on the seed corpus: the store's own search time per question.

Builds the seed corpus twice into --workdir (FAISS, then Milvus at --milvus-uri, default a Milvus Lite file in
the work dir; both share one embedding cache, so the second build embeds nothing), then, for every answerable
seeds-dev question, times the dense search (depth 50, the retriever's candidate depth) and the BM25 search
alone (the question encoded and tokenised once, outside the timing), --reps repetitions, and reports p50/p99
per store and how often the top passage of each agrees. The store description (dense index, where BM25 runs)
and the pymilvus / milvus-lite versions are printed with the figures.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_store_seeds.py --workdir /tmp/store-seeds [--milvus-uri URI]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from index.gazetteer import load_gazetteer  # noqa: E402
from index.synonyms import expand_terms  # noqa: E402
from service.engine import Engine  # noqa: E402
from service.retrieval import CANDIDATES  # noqa: E402
from service.settings import Settings  # noqa: E402

DEV = REPO / "eval" / "sets" / "seeds-dev.jsonl"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--milvus-uri", default="", help="default <workdir>/milvus.db (Milvus Lite)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work: Path = args.workdir
    if work.exists():
        shutil.rmtree(work)
    (work / "faiss").mkdir(parents=True)
    questions = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [q for q in questions if q.get("answerable")]
    engines: dict[str, Engine] = {}
    builds: dict[str, float] = {}
    for store in ("faiss", "milvus"):
        index_dir = work / store
        if store == "milvus":
            shutil.copytree(work / "faiss" / "cache", index_dir / "cache")
        settings = Settings(store=store, index_dir=index_dir, milvus_uri=args.milvus_uri or str(work / "milvus.db"))
        engine = Engine(settings, encoder=engines["faiss"].encoder if engines else None)
        t = time.perf_counter()
        engine.build()
        builds[store] = time.perf_counter() - t
        engine.load()
        engines[store] = engine
    faiss = engines["faiss"]
    retr = faiss.retriever()
    prepared = []
    for q in questions:
        lookup = load_gazetteer().expand(str(q["question"]))
        sparse_q = expand_terms(lookup)
        prepared.append((retr.query_vector(str(q["question"]))[None, :], faiss.segmenter.tokens(sparse_q), sparse_q))
    out: dict[str, object] = {"questions": len(prepared), "reps": args.reps, "depth": CANDIDATES,
                              "versions": {p: _version(p) for p in ("pymilvus", "milvus-lite", "milvus", "faiss-cpu",
                                                                    "bm25s")}}
    tops: dict[str, dict[str, list[int]]] = {}
    for store, engine in engines.items():
        idx = engine.index
        times: dict[str, list[float]] = {"dense": [], "sparse": []}
        tops[store] = {"dense": [], "sparse": []}
        for rep in range(args.reps):
            for qvec, tokens, text in prepared:
                t = time.perf_counter()
                d = idx.dense.search(qvec, CANDIDATES)
                times["dense"].append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                s = idx.sparse.search(tokens, CANDIDATES, text=text)
                times["sparse"].append((time.perf_counter() - t) * 1000)
                if rep == 0:
                    tops[store]["dense"].append(int(d.ids[0][0]))
                    tops[store]["sparse"].append(int(s.ids[0]) if len(s.ids) else -1)
        out[store] = {"build_s": round(builds[store], 2), "dense_kind": idx.dense.kind,
                      "store": idx.manifest.get("store", {"kind": "faiss"}),
                      **{f"{k}_p50_ms": round(statistics.median(v), 3) for k, v in times.items()},
                      **{f"{k}_p99_ms": round(pct(v, 99), 3) for k, v in times.items()}}
    for kind in ("dense", "sparse"):
        same = sum(a == b for a, b in zip(tops["faiss"][kind], tops["milvus"][kind], strict=True))
        out[f"top1_agree_{kind}"] = f"{same}/{len(prepared)}"
    for store in ("faiss", "milvus"):
        r = out[store]
        assert isinstance(r, dict)
        print(f"{store:7s} build {r['build_s']:6.2f} s  dense p50 {r['dense_p50_ms']:7.3f} p99 {r['dense_p99_ms']:7.3f} ms"
              f"  BM25 p50 {r['sparse_p50_ms']:7.3f} p99 {r['sparse_p99_ms']:7.3f} ms  ({r['dense_kind']})")
    print("top-1 agreement dense", out["top1_agree_dense"], "BM25", out["top1_agree_sparse"])
    print("versions", out["versions"])
    if args.json:
        args.json.write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")
    from index.stores import milvus as mv

    mv.close_clients()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
