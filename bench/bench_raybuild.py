"""A build on a Ray cluster against local builds of the same corpus (prints figures; not a test).

The corpus: the seed articles plus the 249 regulations of `../shared/corpora/regulations/raw/` (or the first
--regulations of them), ingested as `policyqa corpus add` ingests them. Then, each into an empty index folder
(no embedding cache, so every chunk is embedded), in one run:

  - `policyqa index build --ray ADDRESS` on a local cluster started here: `ray start --head` (no CPUs) and
    --workers worker nodes of --cpus-per-worker CPUs, all on this machine (bench/raycluster.py);
  - `policyqa index build` locally, once per --local-threads value (POLICYQA_BUILD_THREADS);
  - `policyqa index build` locally with the cluster build's embedding cache copied in ("cached": nothing to
    embed): the part of a build that stays on the building machine however many actors embed.

For each: build seconds as the builder reports them (corpus loaded to generation published: with --ray this
includes connecting, shipping the model and starting the actors), chunks/s over them, and the load average.
Then the generations are compared as tests/test_raybuild.py compares them: chunks.jsonl and documents.jsonl
byte-equal, manifests equal but for generation, time and build record, vectors (min cosine, max |diff|).

    .venv/bin/python bench/bench_raybuild.py                      # all 249 regulations (~15 min on 2 vCPUs)
    .venv/bin/python bench/bench_raybuild.py --regulations 40 --local-threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from machine import cpu_info, describe  # noqa: E402  (bench/ is the script's folder)
from raycluster import LocalRayCluster, corpus_dir  # noqa: E402


def build(env: dict[str, str], index_dir: Path, *extra: str) -> dict[str, Any]:
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "service.cli", "index", "build", "--json", "-q", *extra],
                          capture_output=True, text=True, cwd=REPO, env={**env, "POLICYQA_INDEX_DIR": str(index_dir)})
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"build failed ({' '.join(extra) or 'local'}):\n{done.stderr[-4000:]}")
    out = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    out.update(process_s=round(wall, 2), load_before=round(load0, 2), load_after=round(os.getloadavg()[0], 2),
               chunks_per_s=round(out["chunks"] / out["seconds"], 2))
    return out


def vectors(generation: Path) -> np.ndarray:
    import faiss

    index = faiss.read_index(str(generation / "dense.faiss"))
    return np.asarray(index.reconstruct_n(0, index.ntotal))


def compare(a: Path, b: Path) -> dict[str, Any]:
    ma, mb = (json.loads((p / "manifest.json").read_text()) for p in (a, b))
    for m in (ma, mb):
        for key in ("build", "generation", "created_at"):
            m.pop(key)
    va, vb = vectors(a), vectors(b)
    cos = (va * vb).sum(axis=1)
    return {"chunks_equal": (a / "chunks.jsonl").read_bytes() == (b / "chunks.jsonl").read_bytes(),
            "documents_equal": (a / "documents.jsonl").read_bytes() == (b / "documents.jsonl").read_bytes(),
            "manifest_equal": ma == mb, "vectors": int(va.shape[0]), "min_cosine": float(cos.min()),
            "max_abs_diff": float(np.abs(va - vb).max()) if va.size else 0.0,
            "identical_rows": int((va == vb).all(axis=1).sum())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--regulations", type=int, default=None, help="the first N regulations (default: all)")
    ap.add_argument("--workers", type=int, default=2, help="worker nodes (default: %(default)s)")
    ap.add_argument("--cpus-per-worker", type=int, default=1, help="CPUs per worker node (default: %(default)s)")
    ap.add_argument("--local-threads", default="1,2", help="local builds, POLICYQA_BUILD_THREADS each (default: %(default)s)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()

    cpu = cpu_info()
    print(describe(cpu), flush=True)
    from index.modelprep import DEFAULT_MODEL_DIR, ensure_model

    model = ensure_model(DEFAULT_MODEL_DIR)
    with tempfile.TemporaryDirectory(prefix="pq-raybench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        docs, n = corpus_dir(root / "documents", args.regulations)
        print(f"corpus: seeds + {n} regulations, ingested in {time.perf_counter() - t0:.1f} s", flush=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYQA_")}
        env.update({"POLICYQA_DATA_DIR": str(root / "data"), "POLICYQA_CORPUS_DIR": str(docs),
                    "POLICYQA_MODEL_DIR": str(model), "HF_HUB_OFFLINE": "1"})
        runs: dict[str, dict[str, Any]] = {}
        cluster = LocalRayCluster(root / "ray", workers=args.workers, cpus_per_worker=args.cpus_per_worker)
        t0 = time.perf_counter()
        with cluster:
            started = time.perf_counter() - t0
            print(f"ray cluster: head + {args.workers} worker nodes x {args.cpus_per_worker} CPU, up in "
                  f"{started:.1f} s", flush=True)
            runs["ray"] = build(env, root / "index-ray", "--ray", cluster.address)
            runs["ray"]["cluster_start_s"] = round(started, 1)
            print("ray:", json.dumps(runs["ray"]), flush=True)
        for threads in [int(t) for t in args.local_threads.split(",") if t]:
            label = f"local-{threads}t"
            runs[label] = build({**env, "POLICYQA_BUILD_THREADS": str(threads)}, root / f"index-{label}")
            print(f"{label}:", json.dumps(runs[label]), flush=True)
        checks = {label: compare(Path(runs["ray"]["path"]), Path(r["path"]))
                  for label, r in runs.items() if label != "ray"}
        # what stays on the building machine however many actors embed: a build whose every vector is in
        # the cache (a copy of the one the cluster build filled) still loads, tokenises and indexes
        shutil.copytree(root / "index-ray" / "cache", root / "index-cached" / "cache")
        runs["cached"] = build(env, root / "index-cached")
        print("cached:", json.dumps(runs["cached"]), flush=True)
        if runs["cached"]["embedded"]:
            raise SystemExit("the cluster build's cache lacks vectors: a local build embedded "
                             f"{runs['cached']['embedded']} passages again")

    print()
    print(f"{'build':<10} {'chunks':>7} {'seconds':>8} {'chunks/s':>9} {'load 1m before/after':>21}")
    for label, r in runs.items():
        print(f"{label:<10} {r['chunks']:>7} {r['seconds']:>8.1f} {r['chunks_per_s']:>9.2f} "
              f"{r['load_before']:>10.2f} / {r['load_after']:<8.2f}")
    for label, c in checks.items():
        print(f"ray vs {label}: chunks {'equal' if c['chunks_equal'] else 'DIFFER'}, documents "
              f"{'equal' if c['documents_equal'] else 'DIFFER'}, manifest {'equal' if c['manifest_equal'] else 'DIFFER'}, "
              f"{c['identical_rows']}/{c['vectors']} vectors identical, min cosine {c['min_cosine']:.6f}, "
              f"max |diff| {c['max_abs_diff']:.2e}")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu, "date": time.strftime("%Y-%m-%d"), "regulations": n,
                                         "runs": runs, "checks": checks}, ensure_ascii=False, indent=2))
    ok = all(c["chunks_equal"] and c["documents_equal"] and c["manifest_equal"] and c["min_cosine"] >= 0.9999
             for c in checks.values())
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
