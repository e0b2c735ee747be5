"""run.jsonl → metrics.json: retrieval, answer, citation, refusal and latency metrics per mode and tag."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval import metrics as m

HIT_KS = (1, 3, 5, 10)
# metrics where higher is better (compared against baselines); latency is reported, never compared
QUALITY_METRICS: tuple[str, ...] = (
    *(f"hit@{k}" for k in HIT_KS), "mrr", "ndcg@10", "accuracy", "accuracy_factoid", "em", "f1", "short_contains",
    "citation_verification_rate", "citation_support_rate", "citation_doc_accuracy", "refusal_precision",
    "refusal_recall",
)


def load_rows(run_path: Path) -> list[dict[str, Any]]:
    with run_path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _prediction(row: dict[str, Any]) -> str:
    a = row["answer"]
    if a["refused"]:
        return ""
    return a["short_answer"] if a.get("short_answer") else (a["answer"] or "")


def _answer_text(row: dict[str, Any]) -> str:
    a = row["answer"]
    if a["refused"]:
        return ""
    return f"{a['answer'] or ''}\n{a.get('short_answer') or ''}"


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def score_rows(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """All metrics for one group of rows (one mode, possibly one tag)."""
    answerable = [r for r in rows if r["answerable"]]
    retr = [r for r in answerable if r["gold_docs"]]
    out: dict[str, Any] = {"n": len(rows), "n_answerable": len(answerable),
                           "errors": sum(1 for r in rows if r.get("error"))}
    for k in HIT_KS:
        out[f"hit@{k}"] = _r(m.mean([m.hit_at_k(r["ranked_doc_ids"], r["gold_docs"], k) for r in retr]))
    out["mrr"] = _r(m.mean([m.reciprocal_rank(r["ranked_doc_ids"], r["gold_docs"]) for r in retr]))
    out["ndcg@10"] = _r(m.mean([m.ndcg_at_k(r["ranked_doc_ids"], r["gold_docs"], 10) for r in retr]))

    def acc(r: dict[str, Any]) -> float:
        return 1.0 if m.contains_gold(_answer_text(r), r["answers"], bool(r.get("require_all"))) else 0.0

    out["accuracy"] = _r(m.mean([acc(r) for r in answerable]))
    out["accuracy_factoid"] = _r(m.mean([acc(r) for r in answerable if "factoid" in r["tags"]]))
    out["em"] = _r(m.mean([m.exact_match(_prediction(r), r["answers"]) for r in answerable]))
    out["f1"] = _r(m.mean([m.f1_score(_prediction(r), r["answers"]) for r in answerable]))
    # the short answer alone holds the gold answer(s): "2021年5月1日起施行" holds "2021年5月1日", where EM fails
    out["short_contains"] = _r(m.mean([
        1.0 if not r["answer"]["refused"] and m.contains_gold(r["answer"].get("short_answer") or "", r["answers"],
                                                             bool(r.get("require_all"))) else 0.0
        for r in answerable]))
    checks = [c for r in rows for c in r.get("citation_checks", [])]
    out["citation_verification_rate"] = _r(m.mean([1.0 if c else 0.0 for c in checks]))
    answered = [r for r in answerable if not r["answer"]["refused"]]
    out["citation_support_rate"] = _r(m.mean([
        1.0 if any(m.contains_gold(c["quote"] or "", r["answers"], False) for c in r["answer"]["citations"])
        else 0.0 for r in answered]))
    # the document the answer cites first is a gold one (answered answerable questions that name gold documents)
    out["citation_doc_accuracy"] = _r(m.mean([
        1.0 if m.first_citation_in_gold([str(c["doc_id"]) for c in r["answer"]["citations"]], r["gold_docs"])
        else 0.0 for r in answered if r["gold_docs"]]))
    refused = [bool(r["answer"]["refused"]) for r in rows]
    unans = [not r["answerable"] for r in rows]
    out["refusal_precision"] = _r(m.refusal_precision(refused, unans))
    out["refusal_recall"] = _r(m.refusal_recall(refused, unans))
    out["refusal_rate"] = _r(m.mean([1.0 if x else 0.0 for x in refused]))
    timed = [r for r in rows if r.get("timings")]  # error rows have none
    lat = [float(r["timings"]["answer_ms"]) for r in timed]
    slat = [float(r["timings"]["search_ms"]) for r in timed]
    out["latency_p50_ms"] = _r(m.percentile(lat, 50))
    out["latency_p95_ms"] = _r(m.percentile(lat, 95))
    out["search_latency_p50_ms"] = _r(m.percentile(slat, 50))
    out["search_latency_p95_ms"] = _r(m.percentile(slat, 95))
    out.update(_generation(rows))
    return out


def _generation(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Generated answers (answer mode generative/auto): how often the LLM was called and its answer given,
    statements kept and dropped, why answers fell back, the LLM's latency. Empty for an extractive run."""
    called = [r for r in rows if r["answer"].get("llm_called")]
    if not any(r["answer"].get("fallback_reason") or r["answer"].get("llm_called") for r in rows):
        return {}
    statements = [st for r in rows for st in r["answer"].get("statements", [])]
    kept = sum(1 for st in statements if st["verified"])
    fallbacks: dict[str, int] = defaultdict(int)
    dropped: dict[str, int] = defaultdict(int)
    for r in rows:
        if r["answer"].get("fallback_reason"):
            fallbacks[r["answer"]["fallback_reason"]] += 1
    for st in statements:
        if not st["verified"]:
            dropped[st.get("dropped") or "unknown"] += 1
    llm_ms = [float(r["timings"]["engine_ms"]["llm"]) for r in called
              if r.get("timings") and "llm" in r["timings"].get("engine_ms", {})]
    return {"llm_called_rate": _r(m.mean([1.0 if r in called else 0.0 for r in rows])),
            "generated_rate": _r(m.mean([1.0 if r["answer"].get("answer_mode_used") == "generative" else 0.0
                                         for r in rows])),
            "statements_kept": kept, "statements_dropped": len(statements) - kept,
            "statement_verification_rate": _r(kept / len(statements)) if statements else None,
            "llm_latency_p50_ms": _r(m.percentile(llm_ms, 50)),
            "fallbacks": dict(sorted(fallbacks.items())), "dropped_by_reason": dict(sorted(dropped.items()))}


def score_run(rows: Sequence[dict[str, Any]], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    by_mode: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_mode[r["mode"]].append(r)
    modes: dict[str, Any] = {}
    for mode, mrows in by_mode.items():
        by_tag: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in mrows:
            for t in r["tags"]:
                by_tag[t].append(r)
        modes[mode] = {"overall": score_rows(mrows),
                       "by_tag": {t: score_rows(trows) for t, trows in sorted(by_tag.items())}}
    return {"meta": meta or {}, "modes": modes}


def score_dir(run_dir: Path) -> dict[str, Any]:
    """Score run_dir/run.jsonl, write run_dir/metrics.json, return the metrics."""
    meta_path = run_dir / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    result = score_run(load_rows(run_dir / "run.jsonl"), meta)
    (run_dir / "metrics.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n",
                                          encoding="utf-8")
    return result
