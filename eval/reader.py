"""The reader alone on an external set's gold passages: `policyqa eval reader --set cmrc2018_dev`.

Each question is read against the passage that holds its answer (no retrieval), so the figure isolates the
reader: CMRC EM / F1 (eval.metrics, the official tokenisation) and the share of questions whose best span
scores below the no-answer position (would be refused at margin 0). Evaluation only: nothing here trains.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from eval.metrics import exact_match, f1_score
from eval.sets import EXTERNAL_DIR


def gold_passages(set_name: str) -> dict[str, str]:
    with (EXTERNAL_DIR / set_name / "corpus.jsonl").open(encoding="utf-8") as fh:
        return {row["doc_id"]: row["text"] for row in map(json.loads, fh) if row}


def read_gold(reader: Any, set_name: str, limit: int | None = None) -> dict[str, Any]:
    passages = gold_passages(set_name)
    rows = []
    with (EXTERNAL_DIR / set_name / "questions.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            if q.get("question", "").strip() and q.get("answers") and q.get("doc_id") in passages:
                rows.append(q)
            if limit and len(rows) >= limit:
                break
    em, f1, below, ms = [], [], 0, []
    for q in rows:
        t = time.perf_counter()
        span = reader.read(q["question"], passages[q["doc_id"]])
        ms.append((time.perf_counter() - t) * 1000)
        em.append(exact_match(span.text, q["answers"]))
        f1.append(f1_score(span.text, q["answers"]))
        below += span.margin < 0
    n = max(1, len(rows))
    return {"set": set_name, "questions": len(rows), "em": round(100 * sum(em) / n, 2),
            "f1": round(100 * sum(f1) / n, 2), "no_answer_share": round(below / n, 4),
            "read_ms_p50": round(statistics.median(ms), 1) if ms else None}


def cmd_reader(args: Any, settings: Any) -> int:
    from index.reader.assemble import WEIGHTS_DIR, reader_complete
    from index.reader.onnx_reader import OnnxReader
    from service.cli import CliError

    folder = Path(args.reader_dir) if args.reader_dir else settings.reader_dir
    if not (EXTERNAL_DIR / args.set / "corpus.jsonl").is_file():
        raise CliError(f"没有这个外部评测集 / no external set {args.set!r} with gold passages in {EXTERNAL_DIR}")
    # a folder named on the command line may hold a reader assembled from other layers (to compare them)
    if not reader_complete(folder, weights_dir=None if args.reader_dir else WEIGHTS_DIR):
        raise CliError(f"没有组装好的阅读模型 / no assembled reader in {folder}: run `policyqa model prepare`")
    result = read_gold(OnnxReader(folder), args.set, args.limit)
    print(json.dumps(result, ensure_ascii=False))
    return 0
