"""metrics.json (+ run.jsonl) → report.md and PNG plots (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

SUMMARY_ROWS: tuple[str, ...] = (
    "n", "n_answerable", "errors", "hit@1", "hit@3", "hit@5", "hit@10", "mrr", "ndcg@10", "accuracy", "accuracy_factoid",
    "em", "f1", "short_contains", "citation_verification_rate", "citation_support_rate", "citation_doc_accuracy",
    "refusal_precision", "refusal_recall",
    "refusal_rate", "latency_p50_ms", "latency_p95_ms", "search_latency_p50_ms", "search_latency_p95_ms",
    # generated answers: shown only when a column has them
    "llm_called_rate", "generated_rate", "statements_kept", "statements_dropped", "statement_verification_rate",
    "llm_latency_p50_ms", "fallbacks",
)
TAG_COLUMNS: tuple[str, ...] = ("n", "hit@5", "mrr", "accuracy", "em", "f1", "short_contains",
                                "citation_support_rate", "citation_doc_accuracy", "refusal_rate")
PLOTS = ("recall_at_k.png", "latency_hist.png", "accuracy_by_tag.png")


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, dict):
        return ", ".join(f"{k} {n}" for k, n in v.items()) or "none"
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.3f}"
    return str(v)


def summary_table(metrics: dict[str, Any]) -> str:
    modes = list(metrics["modes"])
    lines = ["| metric | " + " | ".join(modes) + " |", "|---|" + "---:|" * len(modes)]
    for key in SUMMARY_ROWS:
        if all(metrics["modes"][md]["overall"].get(key) is None for md in modes):
            continue
        lines.append(f"| {key} | " + " | ".join(_fmt(metrics["modes"][md]["overall"].get(key)) for md in modes)
                     + " |")
    return "\n".join(lines)


def tag_table(mode_metrics: dict[str, Any]) -> str:
    lines = ["| tag | " + " | ".join(TAG_COLUMNS) + " |", "|---|" + "---:|" * len(TAG_COLUMNS)]
    for tag, vals in mode_metrics["by_tag"].items():
        lines.append(f"| {tag} | " + " | ".join(_fmt(vals.get(c)) for c in TAG_COLUMNS) + " |")
    return "\n".join(lines)


def render_markdown(metrics: dict[str, Any]) -> str:
    meta = metrics.get("meta", {})
    out = [f"# Evaluation: {meta.get('set', '?')}", ""]
    for key in ("created_at", "command", "questions", "modes", "index"):
        if key in meta:
            out.append(f"- {key}: `{meta[key]}`")
    out += ["", "Hit@k / MRR at passage level over the top 10 passages; nDCG@10 over distinct documents. "
            "Accuracy: the answer (text + short answer) contains the gold answer(s), not refused. EM/F1: CMRC 2018 "
            "style on the short answer; short_contains: the short answer alone contains the gold answer(s). "
            "citation_doc_accuracy: answered answerable questions whose first citation is of a gold document. "
            "Refusal: positive class = refused; refusal_recall = share of unanswerable questions refused.", "", "## Summary", "",
            summary_table(metrics), ""]
    for mode, mm in metrics["modes"].items():
        out += [f"## By tag: {mode}", "", tag_table(mm), ""]
    out += ["## Plots", ""] + [f"![{p}]({p})" for p in PLOTS] + [""]
    return "\n".join(out)


def make_plots(metrics: dict[str, Any], rows: Sequence[dict[str, Any]], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: list[Path] = []
    modes = list(metrics["modes"])
    ks = (1, 3, 5, 10)

    fig, ax = plt.subplots(figsize=(6, 4))
    for md in modes:
        o = metrics["modes"][md]["overall"]
        ax.plot(ks, [o.get(f"hit@{k}") or 0 for k in ks], marker="o", label=md)
    ax.set_xlabel("k (passages)")
    ax.set_ylabel("recall (hit@k)")
    ax.set_ylim(0, 1.05)
    ax.set_xticks(ks)
    ax.legend()
    ax.set_title("Retrieval recall@k")
    paths.append(out_dir / PLOTS[0])
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for md in modes:
        lat = [float(r["timings"]["answer_ms"]) for r in rows if r["mode"] == md and r.get("timings")]
        ax.hist(lat, bins=30, alpha=0.5, label=md)
    ax.set_xlabel("answer latency (ms)")
    ax.set_ylabel("questions")
    ax.legend()
    ax.set_title("Answer latency")
    paths.append(out_dir / PLOTS[1])
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)

    tags = sorted({t for md in modes for t in metrics["modes"][md]["by_tag"]})
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(tags) + 2), 4))
    width = 0.8 / max(1, len(modes))
    for i, md in enumerate(modes):
        bt = metrics["modes"][md]["by_tag"]
        vals = [(bt.get(t, {}).get("accuracy") or 0) for t in tags]
        ax.bar([x + i * width for x in range(len(tags))], vals, width=width, label=md)
    ax.set_xticks([x + width * (len(modes) - 1) / 2 for x in range(len(tags))])
    ax.set_xticklabels(tags, rotation=60, ha="right")
    ax.set_ylabel("contains-gold accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend()
    ax.set_title("Accuracy by tag (answerable questions)")
    paths.append(out_dir / PLOTS[2])
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    return paths


def write_report(run_dir: Path, metrics: dict[str, Any], rows: Sequence[dict[str, Any]]) -> Path:
    make_plots(metrics, rows, run_dir)
    path = run_dir / "report.md"
    path.write_text(render_markdown(metrics), encoding="utf-8")
    return path
