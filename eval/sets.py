"""Question sets: a name (eval/sets/<name>.jsonl, or an external set) or a path to a JSONL file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SETS_DIR = Path(__file__).resolve().parent / "sets"
EXTERNAL_DIR = Path(__file__).resolve().parent / "external"
ALL_ANSWERS_TAGS = frozenset({"list", "multi_doc", "conflict"})
# External sets carry their own labels instead of tags; these become "<prefix>:<value>" tags so metrics are
# broken down by them (ChronoQA: answer type, temporal type, explicit/implicit, one or several gold passages).
LABEL_TAGS: tuple[tuple[str, str], ...] = (
    ("answer_type", "answer"), ("temporal_type", "temporal"), ("temporal_expression_type", "expression"),
    ("reference_document_count", "docs"),
)


def label_tags(row: dict[str, Any]) -> tuple[str, ...]:
    """Tags from an external set's label fields (and `answer_in_gold`), for rows without `tags`."""
    tags = [f"{prefix}:{row[field]}" for field, prefix in LABEL_TAGS if row.get(field)]
    if isinstance(row.get("answer_in_gold"), bool):
        tags.append("answer_in_gold" if row["answer_in_gold"] else "answer_not_in_gold")
    return tuple(tags)


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]
    gold_docs: tuple[str, ...]
    evidence: tuple[str, ...]
    answerable: bool
    tags: tuple[str, ...]

    @property
    def require_all(self) -> bool:
        """Every answer string must appear (list / multi_doc / conflict); otherwise any one."""
        return bool(ALL_ANSWERS_TAGS & set(self.tags))

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Question:
        answers = tuple(str(a) for a in row.get("answers") or ())
        gold = row.get("gold_docs")
        if gold is None:
            gold = row.get("gold_doc_ids") or ([row["doc_id"]] if row.get("doc_id") else [])
        answerable = bool(row["answerable"]) if "answerable" in row else bool(answers)
        return cls(id=str(row["id"]), question=str(row["question"]), answers=answers,
                   gold_docs=tuple(str(g) for g in gold), evidence=tuple(row.get("evidence") or ()),
                   answerable=answerable,
                   tags=tuple(row["tags"]) if "tags" in row else label_tags(row))


def external_sets() -> list[str]:
    return sorted(p.name for p in EXTERNAL_DIR.glob("*") if (p / "questions.jsonl").exists())


def resolve_set(name_or_path: str) -> tuple[str, Path]:
    """(set name, questions file) for a set name or a path."""
    p = Path(name_or_path)
    if p.suffix == ".jsonl" and p.exists():
        return p.stem, p
    if (SETS_DIR / f"{name_or_path}.jsonl").exists():
        return name_or_path, SETS_DIR / f"{name_or_path}.jsonl"
    ext = EXTERNAL_DIR / name_or_path / "questions.jsonl"
    if ext.exists():
        return name_or_path, ext
    known = sorted(q.stem for q in SETS_DIR.glob("*.jsonl")) + external_sets()
    raise FileNotFoundError(f"no question set {name_or_path!r} (known: {', '.join(known)})")


def load_set(name_or_path: str, limit: int | None = None) -> tuple[str, list[Question]]:
    name, path = resolve_set(name_or_path)
    out: list[Question] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(Question.from_dict(json.loads(line)))
                if limit is not None and len(out) >= limit:
                    break
    return name, out
