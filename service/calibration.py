"""Fit the answer-confidence model and refusal threshold on labelled questions (answerable or not).

`policyqa calibrate --set eval/sets/seeds-calib.jsonl` writes service/calibration.json. The calibration set
is separate from the dev set, so the dev set's refusal figures stay an honest test.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from service.answering import CALIBRATION_FILE, FEATURES, Answerer, Thresholds, threshold_share

L2 = 0.05
F1_TOLERANCE = 0.03


def _fit_logistic(x: np.ndarray, y: np.ndarray, steps: int = 4000, lr: float = 0.5) -> tuple[np.ndarray, float]:
    """Plain L2-regularised logistic regression by gradient descent on standardised features."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    w = np.zeros(z.shape[1])
    b = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        g = p - y
        w -= lr * (z.T @ g / len(y) + L2 * w)
        b -= lr * g.mean()
    # back to the raw feature scale so the stored model reads directly
    return w / sd, float(b - (w * mu / sd).sum())


def calibrate(answerer: Answerer, questions: list[dict[str, Any]], set_name: str) -> dict[str, Any]:
    neutral = replace(answerer.thresholds, min_confidence=0.0)
    probe = Answerer(answerer.retriever, neutral)
    rows = []
    for q in questions:
        a = probe.answer(q["question"])
        rows.append((q, a))
    # rule refusals (other year/place, out of scope) stand; the model learns from the rest
    free = [(q, a) for q, a in rows if not a.refused]
    x = np.array([[a.signals[f] for f in FEATURES] for _, a in free], dtype=float)
    y = np.array([1.0 if q["answerable"] else 0.0 for q, _ in free])
    w, b = _fit_logistic(x, y)
    model = Thresholds(weights=tuple(zip(FEATURES, (float(v) for v in w), strict=True)), bias=b,
                       min_confidence=0.5, out_of_scope_coverage=neutral.out_of_scope_coverage,
                       out_of_scope_dense=neutral.out_of_scope_dense)
    probs = np.array([model.confidence(a.signals) for _, a in free])
    # the same rule the answerer applies: explanatory questions need only part of the confidence
    scale = np.array([threshold_share(a.answer_type) for _, a in free])
    unans_total = sum(1 for q, _ in rows if not q["answerable"])
    rule_refused_unans = sum(1 for q, a in rows if a.refused and not q["answerable"])
    rule_refused_ans = sum(1 for q, a in rows if a.refused and q["answerable"])
    curve = []
    for t in np.linspace(0.05, 0.95, 91):
        refused = probs < t * scale
        tp = rule_refused_unans + int(((y == 0) & refused).sum())
        fp = rule_refused_ans + int(((y == 1) & refused).sum())
        prec = tp / max(1, tp + fp)
        rec = tp / max(1, unans_total)
        curve.append((2 * prec * rec / max(1e-9, prec + rec), float(t), prec, rec))
    # The balanced (best-F1) threshold, except that the lowest threshold within F1_TOLERANCE of it wins: on a
    # set this small such a gap is one or two questions, and a needless refusal withholds a correct answer.
    top = max(c[0] for c in curve)
    f1, t, prec, rec = min((c for c in curve if c[0] >= top - F1_TOLERANCE), key=lambda c: c[1])
    return {
        "command": f"policyqa calibrate --set {set_name}",
        "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "generation": answerer.index.generation,
        "questions": len(rows), "answerable": int(sum(1 for q, _ in rows if q["answerable"])),
        "unanswerable": unans_total,
        "model": {"features": list(FEATURES), "weights": dict(model.weights), "bias": model.bias},
        "thresholds": {"min_confidence": round(t, 3), "out_of_scope_coverage": model.out_of_scope_coverage,
                       "out_of_scope_dense": model.out_of_scope_dense},
        "on_calibration_set": {"refusal_precision": round(prec, 4), "refusal_recall": round(rec, 4),
                               "refusal_f1": round(f1, 4)},
    }


def write_calibration(data: dict[str, Any], path: Path = CALIBRATION_FILE) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def load_questions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
