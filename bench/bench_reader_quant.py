"""How to quantise the reader: CMRC 2018 dev gold-passage EM / F1 and read time per variant, side by side.

The shipped layers are assembled and exported once to fp32 ONNX, quantised every way compared (signed int8
per channel at 7-bit with the FFN output or the attention projections left fp32, all-int8 at 7-bit and at
full range, per tensor, unsigned weights), and each variant reads the same questions against their gold
passages (evaluation only: nothing here trains). Read times are medians over the
first --timed questions, the variants taking turns on each question so that they share the CPU alike.

    .venv/bin/python bench/bench_reader_quant.py --limit 1000
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # policyqa is installed editable; this also covers a plain checkout
    sys.path.insert(0, str(REPO))

from machine import cpu_info, describe  # noqa: E402  (bench/ is the script's folder)

VARIANTS: dict[str, dict[str, Any] | None] = {
    "fp32 (ships)": None,
    "int8 7-bit, FFN out fp32": {"fp32_nodes": r"/layer\.\d+/output/dense/MatMul$"},
    "int8 7-bit, attention fp32": {"fp32_nodes": r"attention/(self/(query|key|value)|output/dense)/MatMul$"},
    "int8 per-channel 7-bit": {"weight_type": "QInt8", "per_channel": True, "reduce_range": True},
    "int8 per-channel full range": {"weight_type": "QInt8", "per_channel": True, "reduce_range": False},
    "int8 per-tensor full range": {"weight_type": "QInt8", "per_channel": False, "reduce_range": False},
    "uint8 per-channel full range": {"weight_type": "QUInt8", "per_channel": True, "reduce_range": False},
}


def build(work: Path, e5_dir: Path) -> dict[str, Path]:
    from index.onnxexport import QUANTIZATION, quantise
    from index.reader.assemble import READER_MANIFEST, READER_ONNX, WEIGHTS_DIR, export_fp32, shipped

    training = shipped()
    if training is None:
        raise SystemExit("no reader ships in index/reader/weights")
    fp32 = export_fp32(e5_dir, work / "reader_fp32.onnx", WEIGHTS_DIR, training)
    folders = {}
    for i, (name, q) in enumerate(VARIANTS.items()):
        folder = work / f"v{i}"
        folder.mkdir()
        if q is None:
            shutil.copyfile(fp32, folder / READER_ONNX)
        else:
            quantise(fp32, folder / READER_ONNX, {**QUANTIZATION, **q})
        shutil.copyfile(e5_dir / "tokenizer.json", folder / "tokenizer.json")
        (folder / READER_MANIFEST).write_text(json.dumps({**training, "quantization": q}), encoding="utf-8")
        folders[name] = folder
    return folders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", default="cmrc2018_dev")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--timed", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from eval.reader import gold_passages, read_gold
    from eval.sets import EXTERNAL_DIR
    from index.modelprep import ensure_model
    from index.reader.onnx_reader import OnnxReader

    print(describe(cpu_info()), flush=True)
    e5_dir = ensure_model()
    with tempfile.TemporaryDirectory(prefix="policyqa-quant-") as tmp:
        folders = build(Path(tmp), e5_dir)
        readers = {name: OnnxReader(folder, threads=args.threads) for name, folder in folders.items()}
        passages = gold_passages(args.set)
        with (EXTERNAL_DIR / args.set / "questions.jsonl").open(encoding="utf-8") as fh:
            timed = [q for q in map(json.loads, fh) if q.get("doc_id") in passages][: args.timed]
        ms: dict[str, list[float]] = {name: [] for name in readers}
        for q in timed:
            for name, reader in readers.items():
                t = time.perf_counter()
                reader.read(q["question"], passages[q["doc_id"]])
                ms[name].append((time.perf_counter() - t) * 1000)
        fp32_ms = statistics.median(ms["fp32"])
        print(f"{'variant':30} {'EM':>6} {'F1':>6} {'no-answer':>9} {'read p50 ms':>11} {'vs fp32':>7}")
        for name, reader in readers.items():
            r = read_gold(reader, args.set, args.limit)
            p50 = statistics.median(ms[name])
            print(f"{name:30} {r['em']:6.1f} {r['f1']:6.1f} {r['no_answer_share']:9.3f} {p50:11.1f} "
                  f"{p50 / fp32_ms:7.2f}", flush=True)
    print(f"{args.set}: first {args.limit} questions on their gold passages; times over {args.timed}, "
          f"{args.threads} thread(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
