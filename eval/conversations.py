"""Conversation sets (eval/sets/followups-*.jsonl): each line a conversation of turns, each turn with the
follow-up as asked, its gold standalone question and gold answers.

    {"id": "fu-001", "tags": [...], "turns": [{"question": "那东莞呢？", "standalone": "东莞市…什么时候施行？",
     "answers": ["2023年5月1日"], "gold_docs": [...], "answerable": true, "tags": [...]}, ...]}

Two measurements:
- resolution (`policyqa eval followups`, no index): is each follow-up made into its gold standalone question?
  A resolved question counts when it is the gold one after `normalise` (exact), or the same characters in
  another order (equivalent: 江门市2024年… for 2024年江门市…).
- answers (`policyqa eval run` on a conversation set): each follow-up turn is answered as the service answers
  it (the rules resolve it from the turns before, with the answers the engine gave), and its gold standalone
  question is answered on its own; run.jsonl holds both, as modes `<mode>+followup` and `<mode>+standalone`,
  so the report shows the follow-ups' contains-gold accuracy beside the same questions asked standalone.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.sets import Question, resolve_set
from service.conversation.rewrite import Resolution, Turn, place_spans, resolve

_PUNCT = re.compile(r"[\s？?。.!！,，;；:：“”\"'‘’《》（）()、]+")
# words a standalone question may have or leave out without asking anything else
_FUNCTION = re.compile(r"一共|总共|那么|的|了|共|全|都|呢|吗|那|在")


@dataclass(frozen=True)
class ConvTurn:
    question: str
    standalone: str
    gold: Question  # the standalone question with its gold answers


@dataclass(frozen=True)
class Conversation:
    id: str
    tags: tuple[str, ...]
    turns: tuple[ConvTurn, ...]


def is_conversation_set(name_or_path: str) -> bool:
    try:
        _, path = resolve_set(name_or_path)
    except FileNotFoundError:
        return False
    with path.open(encoding="utf-8") as f:
        first = next((line for line in f if line.strip()), "")
    return bool(first) and "turns" in json.loads(first)


def load_conversations(name_or_path: str, limit: int | None = None) -> tuple[str, list[Conversation]]:
    name, path = resolve_set(name_or_path)
    out: list[Conversation] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            turns = []
            for i, t in enumerate(row["turns"], 1):
                gold = Question.from_dict({**t, "id": f"{row['id']}.{i}", "question": t["standalone"],
                                           "tags": [*row.get("tags", []), *t.get("tags", [])]})
                turns.append(ConvTurn(t["question"], t["standalone"], gold))
            out.append(Conversation(str(row["id"]), tuple(row.get("tags", [])), tuple(turns)))
            if limit is not None and len(out) >= limit:
                break
    return name, out


def normalise(question: str) -> str:
    """Punctuation and function words dropped, every place written as its full name (东莞 → 东莞市, 侨都 → 江门市)."""
    text = _PUNCT.sub("", question)
    out, at = [], 0
    for span in place_spans(text):
        out.append(text[at:span.start])
        out.append(span.canonical or span.text)
        at = span.end
    out.append(text[at:])
    return _FUNCTION.sub("", "".join(out))


def match(resolved: str, gold: str) -> str:
    """exact | equivalent | miss (see the module docstring)."""
    a, b = normalise(resolved), normalise(gold)
    if a == b:
        return "exact"
    if sorted(a) == sorted(b):
        return "equivalent"
    return "miss"


Resolver = Callable[[str, Sequence[Turn]], Resolution]


def resolution_rows(conversations: Sequence[Conversation], resolver: Resolver = resolve) -> list[dict[str, Any]]:
    """One row per follow-up turn (the second turn on): asked, gold, resolved, match. The history a turn sees
    is the turns before it as a client would send them, each with its own resolved question."""
    rows: list[dict[str, Any]] = []
    for c in conversations:
        history: list[Turn] = []
        for i, t in enumerate(c.turns):
            r = resolver(t.question, history)
            if i > 0:
                rows.append({"id": t.gold.id, "conversation": c.id, "turn": i + 1, "asked": t.question,
                             "gold": t.standalone, "resolved": r.resolved, "method": r.method,
                             "carried": list(r.carried), "match": match(r.resolved, t.standalone),
                             "tags": list(t.gold.tags)})
            history.append(Turn(t.question, "", r.resolved))
    return rows


def resolution_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    exact = sum(1 for r in rows if r["match"] == "exact")
    equivalent = sum(1 for r in rows if r["match"] == "equivalent")
    by_tag: dict[str, list[int]] = {}
    for r in rows:
        for tag in r["tags"]:
            if tag in ("regulation", "seeds"):
                continue
            by_tag.setdefault(tag, [0, 0])
            by_tag[tag][0] += 1
            by_tag[tag][1] += int(r["match"] != "miss")
    return {"followups": n, "exact": exact, "equivalent": equivalent,
            "accuracy_exact": round(exact / n, 4) if n else None,
            "accuracy": round((exact + equivalent) / n, 4) if n else None,
            "by_tag": {t: {"n": v[0], "accuracy": round(v[1] / v[0], 4)} for t, v in sorted(by_tag.items())}}


def run_conversations(engine: Any, conversations: Sequence[Conversation], mode: str, out_path: Path,
                      progress: bool = True) -> dict[str, Any]:
    """run.jsonl rows for every follow-up turn, answered as a follow-up and as its gold standalone question."""
    from tqdm import tqdm

    from eval.runner import run_question

    engine.search("预热", 1, mode)
    total = sum(len(c.turns) for c in conversations)
    rows_res: list[dict[str, Any]] = []
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", encoding="utf-8") as f, tqdm(total=total, desc="conversations", unit="turn",
                                                       file=sys.stderr, disable=not progress) as bar:
        for c in conversations:
            history: list[Turn] = []
            for i, t in enumerate(c.turns):
                r = resolve(t.question, history)
                asked = Question(t.gold.id, r.resolved, t.gold.answers, t.gold.gold_docs, t.gold.evidence,
                                 t.gold.answerable, t.gold.tags)
                row = run_question(engine, asked, mode)
                answer = row["answer"]
                history.append(Turn(t.question, "" if answer["refused"] else str(answer["answer"]), r.resolved))
                if i > 0:
                    # the same string is the same question to a deterministic engine: asked once
                    standalone = row if r.resolved == t.standalone else run_question(engine, t.gold, mode)
                    verdict = match(r.resolved, t.standalone)
                    rows_res.append({"match": verdict})
                    for label, out in ((f"{mode}+followup", row), (f"{mode}+standalone", standalone)):
                        f.write(json.dumps({**out, "mode": label, "asked": t.question, "standalone": t.standalone,
                                            "resolved": r.resolved, "resolution": verdict},
                                           ensure_ascii=False) + "\n")
                bar.update(1)
    n = len(rows_res)
    ok = sum(1 for r in rows_res if r["match"] != "miss")
    return {"followups": n, "resolution_accuracy": round(ok / n, 4) if n else None}
