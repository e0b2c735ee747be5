"""Production feedback → an eval question set (`policyqa feedback export --set NAME`), so that the questions
people rated become a regression set that `policyqa eval run --set NAME` runs and `eval compare` gates.

Each rated question (the standalone question that was answered; the newest rating wins):
- 👎 with a correction: the correction is the gold answer (answerable);
- 👍 on an answer: that answer (its short answer, else its first quote) is the gold, its cited documents the
  gold documents;
- 👍 on a refusal: the refusal was right (unanswerable);
- 👎 without a correction: "must not answer this" — unanswerable, the rejected answer kept in `rejected`;
- 👎 on a refusal without a correction says only that an answer was wanted: left out (counted).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.conversations import normalise
from eval.sets import SETS_DIR
from service.logbook import Feedback

_MARKER = re.compile(r"\[\d+\]")
TAG = "feedback"


@dataclass(frozen=True)
class Export:
    rows: list[dict[str, Any]]
    skipped: int  # 👎 on a refusal without a correction
    duplicates: int  # older ratings of a question rated again


def _gold_of(f: Feedback) -> str:
    if f.short_answer:
        return f.short_answer
    quote = next((str(c.get("quote") or "") for c in f.citations if c.get("quote")), "")
    return quote or _MARKER.sub("", f.answer).strip()


def export_rows(feedback: Sequence[Feedback]) -> Export:
    """`feedback` newest first (as Logbook.feedback returns it)."""
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    skipped = duplicates = 0
    for f in feedback:
        key = normalise(f.resolved_question)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        base = {"id": f"fb-{f.feedback_id:05d}", "question": f.resolved_question, "asked": f.question,
                "answer_id": f.answer_id, "rated_at": f.created_at, "generation": f.generation}
        if f.rating == "down" and f.correct_answer:
            rows.append({**base, "answers": [f.correct_answer], "gold_docs": [], "evidence": [], "answerable": True,
                         "tags": [TAG, "down", "corrected"]})
        elif f.rating == "up" and not f.refused:
            docs = list(dict.fromkeys(str(c["doc_id"]) for c in f.citations if c.get("doc_id")))
            rows.append({**base, "answers": [_gold_of(f)], "gold_docs": docs, "evidence": [], "answerable": True,
                         "tags": [TAG, "up"]})
        elif f.rating == "up":
            rows.append({**base, "answers": [], "gold_docs": [], "evidence": [], "answerable": False,
                         "tags": [TAG, "up", "refusal", "unanswerable"]})
        elif not f.refused:
            rows.append({**base, "answers": [], "gold_docs": [], "evidence": [], "answerable": False,
                         "rejected": [_gold_of(f)], "tags": [TAG, "down", "must_not_answer", "unanswerable"]})
        else:
            skipped += 1
    rows.sort(key=lambda r: r["id"])
    return Export(rows, skipped, duplicates)


class ExportError(ValueError):
    pass


def set_path(name: str, out: Path | None = None) -> Path:
    if out is not None:
        return out
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ExportError(f"set name {name!r}: letters, digits, '-', '_' and '.' only / 评测集名称只能含字母、数字和 -_.")
    return SETS_DIR / f"{name}.jsonl"


def write_set(export: Export, path: Path, *, force: bool = False) -> None:
    """Write the set; never over a hand-written set (one whose rows are not feedback) unless forced."""
    if path.exists() and not force:
        first = next((line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()), "")
        if first and TAG not in (json.loads(first).get("tags") or []):
            raise ExportError(f"{path} holds a set that was not exported from feedback; choose another name or "
                              f"--force / {path} 不是由反馈导出的评测集：请换一个名称，或加 --force")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in export.rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
