"""What the question log says (`policyqa report questions`, GET /v1/report/questions): the questions asked
most, the refusals grouped by reason and by the place or topic asked about — the documents the operator
should add (12 questions about 阳江 refused no_evidence) — and the answers rated 👎."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.conversation.rewrite import place_spans, slots, subject
from service.logbook import Asked, Feedback

_PUNCT = re.compile(r"[\s？?。.!！,，;；:：“”\"'《》（）()]+")
TOP = 20


def normalise(question: str) -> str:
    """Questions counted as the same: punctuation and spaces dropped."""
    return _PUNCT.sub("", question)


def topic_of(question: str) -> str:
    """What a question asks about, for grouping refusals: a known topic (遛狗不牵绳), else the regulation or
    document it names without its place (文明行为促进条例), else its subject without places and years."""
    s = slots(question)
    doc = s.document
    outside = [t for t in s.topics if doc is None or not doc.start <= t.start < doc.end]
    if outside:
        return outside[0].text
    if s.document is not None:
        name = s.document.text.strip("《》")
        for p in place_spans(name):
            name = name.replace(p.text, "")
        return name or s.document.text
    subj = subject(question)
    for p in place_spans(subj):
        subj = subj.replace(p.text, "")
    subj = re.sub(r"(?:19|20)\d{2}\s*年", "", subj).strip("的 ")
    return subj or "（未识别）"


@dataclass(frozen=True)
class Report:
    questions: int
    answered: int
    refused: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    top_questions: list[dict[str, Any]]
    refusals_by_reason: list[dict[str, Any]]
    gaps_by_place: list[dict[str, Any]]
    gaps_by_topic: list[dict[str, Any]]
    down_votes: list[dict[str, Any]]
    feedback: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, round(q / 100 * (len(v) - 1)))], 1)


def build_report(asked: Sequence[Asked], feedback: Sequence[Feedback], top: int = TOP) -> Report:
    refused = [a for a in asked if a.refused]
    counts: Counter[str] = Counter()
    shown: dict[str, str] = {}
    refused_n: Counter[str] = Counter()
    for a in asked:
        key = normalise(a.resolved_question)
        counts[key] += 1
        shown.setdefault(key, a.resolved_question)
        refused_n[key] += int(a.refused)
    top_questions = [{"question": shown[k], "count": n, "refused": refused_n[k]} for k, n in counts.most_common(top)]
    by_reason = Counter(a.reason or "unknown" for a in refused)
    places: dict[str, Counter[str]] = defaultdict(Counter)
    topics: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[tuple[str, str], str] = {}
    for a in refused:
        reason = a.reason or "unknown"
        named = list(dict.fromkeys(p.canonical or p.text for p in place_spans(a.resolved_question))) or ["（未指明地方）"]
        for p in named:
            places[p][reason] += 1
            examples.setdefault(("place", p), a.resolved_question)
        t = topic_of(a.resolved_question)
        topics[t][reason] += 1
        examples.setdefault(("topic", t), a.resolved_question)

    def groups(kind: str, table: dict[str, Counter[str]]) -> list[dict[str, Any]]:
        rows = [{kind: name, "refused": sum(c.values()), "reasons": dict(c.most_common()),
                 "example": examples[(kind, name)]} for name, c in table.items()]
        return sorted(rows, key=lambda r: (-sum(table[str(r[kind])].values()), str(r[kind])))[:top]

    down = [{"answer_id": f.answer_id, "created_at": f.created_at, "question": f.question,
             "resolved_question": f.resolved_question, "answer": f.short_answer or f.answer,
             "correct_answer": f.correct_answer, "comment": f.comment} for f in feedback if f.rating == "down"]
    latencies = [a.latency_ms for a in asked if a.latency_ms is not None]
    return Report(questions=len(asked), answered=len(asked) - len(refused), refused=len(refused),
                  latency_p50_ms=_pct(latencies, 50), latency_p95_ms=_pct(latencies, 95),
                  top_questions=top_questions,
                  refusals_by_reason=[{"reason": r, "count": n} for r, n in by_reason.most_common()],
                  gaps_by_place=groups("place", places), gaps_by_topic=groups("topic", topics),
                  down_votes=down[:top * 5],
                  feedback={"up": sum(1 for f in feedback if f.rating == "up"), "down": len(down)})


def render_text(r: Report) -> str:
    """The report as the terminal shows it."""
    lines = [f"问题 / questions: {r.questions}  回答 / answered: {r.answered}  拒答 / refused: {r.refused}  "
             f"延迟 p50/p95 ms: {r.latency_p50_ms}/{r.latency_p95_ms}  👍 {r.feedback['up']} 👎 {r.feedback['down']}",
             "", "## 最常问的问题 / most frequent questions"]
    lines += [f"{q['count']:>5}  {q['question']}" + (f"  (拒答 {q['refused']})" if q["refused"] else "")
              for q in r.top_questions]
    lines += ["", "## 拒答原因 / refusals by reason"]
    lines += [f"{x['count']:>5}  {x['reason']}" for x in r.refusals_by_reason]
    lines += ["", "## 资料缺口：按地方 / content gaps by place (documents to add)"]
    lines += [f"{g['refused']:>5}  {g['place']}  {_reasons(g['reasons'])}  e.g. {g['example']}" for g in r.gaps_by_place]
    lines += ["", "## 资料缺口：按话题 / content gaps by topic"]
    lines += [f"{g['refused']:>5}  {g['topic']}  {_reasons(g['reasons'])}  e.g. {g['example']}" for g in r.gaps_by_topic]
    lines += ["", "## 👎 的回答 / answers rated down"]
    for d in r.down_votes:
        fix = f"  正确答案：{d['correct_answer']}" if d["correct_answer"] else ""
        lines.append(f"  {d['created_at'][:19]}  {d['resolved_question']}  →  {d['answer'][:60]}{fix}")
    return "\n".join(lines)


def _reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in reasons.items())
