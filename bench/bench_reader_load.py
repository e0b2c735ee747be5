"""Opening the reader: its weights inside the one ONNX file (shipped before) against beside it as external data
(index/reader/assemble.py, ships), side by side in one process, taking turns.

Printed per layout: seconds to open an ONNX Runtime session (median of --rounds), the first run and the median
of later runs over one 256-token window, and whether the two give the same logits.

    .venv/bin/python bench/bench_reader_load.py --rounds 7
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort

    from index.reader.assemble import READER_ONNX
    from service.settings import Settings

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=2, help="intra-op threads, as POLICYQA_READER_THREADS")
    args = p.parse_args()
    print(describe(cpu_info()))

    external = Settings().reader_dir / READER_ONNX
    if not external.with_name(READER_ONNX + ".data").is_file():
        sys.exit(f"no assembled reader with external data at {external}: run `policyqa model prepare`")
    with tempfile.TemporaryDirectory() as tmp:
        inline = Path(tmp) / READER_ONNX
        onnx.save_model(onnx.load(str(external)), str(inline))  # the weights back inside one file
        layouts = {"one file": inline, "external data": external}
        ids = np.random.default_rng(0).integers(1000, 200_000, size=(1, 256)).astype(np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        opened: dict[str, list[float]] = {k: [] for k in layouts}
        first: dict[str, list[float]] = {k: [] for k in layouts}
        later: dict[str, list[float]] = {k: [] for k in layouts}
        logits: dict[str, Any] = {}
        for _ in range(args.rounds):
            for name, path in layouts.items():
                options = ort.SessionOptions()
                options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
                options.log_severity_level = 3
                t = time.perf_counter()
                session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                opened[name].append(time.perf_counter() - t)
                for i in range(4):
                    t = time.perf_counter()
                    out = session.run(None, feed)
                    (first if i == 0 else later)[name].append(time.perf_counter() - t)
                logits[name] = out[0]
                del session
    print(f"{'layout':<15}{'open s':>9}{'first run ms':>14}{'later runs ms':>15}")
    for name in layouts:
        print(f"{name:<15}{statistics.median(opened[name]):>9.2f}{statistics.median(first[name]) * 1e3:>14.0f}"
              f"{statistics.median(later[name]) * 1e3:>15.0f}")
    a, b = logits.values()
    print(f"largest logit difference between the layouts: {float(np.abs(a - b).max())}")


if __name__ == "__main__":
    main()
