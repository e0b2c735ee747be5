"""The confidence model behind refusals, and fitting it: `policyqa calibrate --set eval/sets/seeds-calib.jsonl`.

confidence = sigmoid(bias + Σ weight·signal) over: the reader's margin for the chosen span, how far a better
span that failed a filter was ahead of it, whether the span is the kind of answer asked for (a numeral for
多少), whether the question asks why/how/which ones/yes-or-no (the reader is less sure of such spans even when
right), and question words the articles never use. It is fitted by
logistic regression on labelled answerable and unanswerable questions (the calibration set, never the dev
set); the threshold is the balanced one on the same set, read off out-of-fold confidences.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from index.store import LoadedIndex
    from service.answering.candidates import PassageReader
    from service.retrieval import Retriever

NO_MARGIN = -20.0  # the margin signal when there is no span

CALIBRATION_FILE = Path(__file__).resolve().parent / "calibration.json"
# The passages' cosine similarity is left out on purpose: its scale depends on the corpus and the question style
# (fitted on the seed articles it refused a fifth of Wikipedia questions), while the reader's margin does not.
FEATURES = ("margin", "gap", "type_fit", "explanatory", "missing_rare")
L2 = 0.05
F1_TOLERANCE = 0.03
SURE_SLACK = 0.5  # the sure margin's room above the best lower-passage span of the calibration set
CV_FOLDS, CV_REPEATS = 5, 10


class AnswerSignals(Protocol):
    """What fitting reads of an answer (service.answering.answerer.Answer). A protocol, not an import: the
    answerer imports this module for its thresholds, so importing the answerer back would close a circle."""

    @property
    def refused(self) -> bool: ...

    @property
    def signals(self) -> dict[str, float]: ...


class Calibratable(Protocol):
    """What fitting uses of the answerer (service.answering.answerer.Answerer)."""

    @property
    def retriever(self) -> Retriever: ...

    @property
    def reader(self) -> PassageReader: ...

    @property
    def index(self) -> LoadedIndex: ...

    @property
    def thresholds(self) -> Thresholds: ...

    @property
    def read_passages(self) -> int: ...

    def with_thresholds(self, thresholds: Thresholds) -> Calibratable: ...

    def answer(self, question: str) -> AnswerSignals: ...


@dataclass(frozen=True)
class Thresholds:
    weights: tuple[tuple[str, float], ...] = (("margin", 0.5), ("gap", -0.3), ("type_fit", 1.0),
                                              ("explanatory", 2.0), ("missing_rare", -1.0))
    bias: float = -2.0
    min_confidence: float = 0.5
    out_of_scope_dense: float = 0.80  # a refusal whose best passage is this far off is "out of scope"
    reader: str = ""  # the reader (ONNX sha256) the model was fitted with
    # what a span from the passage at rank r gives up against rank 1's: the log prior odds that the answer is
    # first found there rather than at rank 1 (rank_prior[r - 1]; the last value for lower ranks)
    rank_prior: tuple[float, ...] = (0.0, 1.0, 2.0)
    # a consistent span of the first passage this sure settles the answer: the other passages are not read
    # (infinite: always read them all)
    sure_margin: float = math.inf

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> Thresholds:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Thresholds:
        model = data["model"]
        prior = tuple(float(v) for v in data.get("rank_prior", {}).get("penalty", ())) or cls.rank_prior
        return cls(weights=tuple((k, float(model["weights"][k])) for k in FEATURES if k in model["weights"]),
                   bias=float(model["bias"]), reader=str(data.get("reader", "")), rank_prior=prior,
                   **{k: float(v) for k, v in data["thresholds"].items()
                      if k in ("min_confidence", "out_of_scope_dense", "sure_margin") and v is not None})

    def confidence(self, signals: dict[str, float]) -> float:
        z = self.bias + sum(w * signals.get(name, 0.0) for name, w in self.weights)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


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


def _curve(probs: np.ndarray, y: np.ndarray, filter_refused_unans: int, filter_refused_ans: int,
           unans_total: int) -> list[tuple[float, float, float, float]]:
    """(refusal F1, threshold, precision, recall) per threshold, filter refusals counted as they stand."""
    curve = []
    for t in np.linspace(0.05, 0.95, 91):
        refused = probs < t
        tp = filter_refused_unans + int(((y == 0) & refused).sum())
        fp = filter_refused_ans + int(((y == 1) & refused).sum())
        prec = tp / max(1, tp + fp)
        rec = tp / max(1, unans_total)
        curve.append((2 * prec * rec / max(1e-9, prec + rec), float(t), prec, rec))
    return curve


def _out_of_fold(x: np.ndarray, y: np.ndarray, seed: int = 13) -> list[np.ndarray]:
    """Each question's confidence from a model fitted without it: K-fold, repeated with other splits."""
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(CV_REPEATS):
        order = rng.permutation(len(y))
        probs = np.zeros(len(y))
        for k in range(CV_FOLDS):
            held = order[k::CV_FOLDS]
            train = np.setdiff1d(order, held)
            w, b = _fit_logistic(x[train], y[train])
            probs[held] = 1 / (1 + np.exp(-np.clip(x[held] @ w + b, -30, 30)))
        runs.append(probs)
    return runs


def rank_prior(answerer: Calibratable, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """Where retrieval first puts a passage holding the answer, over the answerable questions, as log prior odds
    against rank 1 (add-one smoothed), one value per passage the reader reads. The reader's margin is a log odds
    (span against no answer, within its window), so a span from a lower-ranked passage has to make up this much
    to beat rank 1's."""
    n = answerer.read_passages
    first = [0] * (n + 1)  # rank 1..n, then none
    for q in questions:
        if not q["answerable"]:
            continue
        found = answerer.retriever.search(q["question"], n, "hybrid").results[:n]
        want = all if q.get("require_all") else any
        holds = [bool(q["answers"]) and want(a in p.text for a in q["answers"]) for p in found]
        first[next((i for i, h in enumerate(holds) if h), n)] += 1
    penalty = [0.0] + [round(math.log((first[0] + 1) / (first[r] + 1)), 2) for r in range(1, n)]
    return {"first_holding_rank": first[:n], "none": first[n], "penalty": penalty}


def sure_margin(rows: list[tuple[dict[str, Any], AnswerSignals]]) -> dict[str, Any]:
    """How sure the first passage's best consistent span must be for the other passages not to be read: above
    the best consistent span (less its rank prior) that any lower passage gave on the calibration set, with
    SURE_SLACK to spare. Not "above the surest first passage a lower one beat": such a bound (4.9 here) let an
    11.8 span of passage 2 go unread behind a 6.7 one. `rows`: answers that read every passage."""
    lower = [a.signals["lower_margin"] for _, a in rows if a.signals.get("lower_margin", NO_MARGIN) > NO_MARGIN]
    value = round(max(lower) + SURE_SLACK, 2) if lower else None  # no lower span seen: always read them all
    return {"sure_margin": value, "highest_lower_passage": round(max(lower), 3) if lower else None,
            "slack": SURE_SLACK,
            "first_passages_above": sum(1 for _, a in rows
                                        if value is not None and a.signals.get("rank1_margin", NO_MARGIN) >= value)}


def calibrate(answerer: Calibratable, questions: list[dict[str, Any]], set_name: str) -> dict[str, Any]:
    prior = rank_prior(answerer, questions)
    probe = answerer.with_thresholds(replace(answerer.thresholds, min_confidence=0.0,
                                             rank_prior=tuple(prior["penalty"]), sure_margin=math.inf))
    rows = [(q, probe.answer(q["question"])) for q in questions]
    sure = sure_margin(rows)
    # filter refusals (other year/place, not announced, future) stand; the model learns from the rest
    free = [(q, a) for q, a in rows if not a.refused]
    x = np.array([[a.signals[f] for f in FEATURES] for _, a in free], dtype=float)
    y = np.array([1.0 if q["answerable"] else 0.0 for q, _ in free])
    w, b = _fit_logistic(x, y)
    model = replace(probe.thresholds, weights=tuple(zip(FEATURES, (float(v) for v in w), strict=True)), bias=b)
    counts = (sum(1 for q, a in rows if a.refused and not q["answerable"]),
              sum(1 for q, a in rows if a.refused and q["answerable"]),
              sum(1 for q, _ in rows if not q["answerable"]))
    # The threshold is read off out-of-fold confidences: fitted and scored on the same 133 questions the curve
    # has spikes that one or two questions make (measured: in-sample best 0.67 refused 26 answerable seeds-dev
    # questions, the out-of-fold 0.42 refused 9; out of fold the curve is flat from 0.40 to 0.75).
    curves = [_curve(p, y, *counts) for p in _out_of_fold(x, y)]
    curve = [(float(np.mean([c[i][0] for c in curves])), curves[0][i][1],
              float(np.mean([c[i][2] for c in curves])), float(np.mean([c[i][3] for c in curves])))
             for i in range(len(curves[0]))]
    # The balanced (best-F1) threshold, except that the lowest threshold within F1_TOLERANCE of it wins: on a
    # set this small such a gap is one or two questions, and a needless refusal withholds a correct answer.
    top = max(c[0] for c in curve)
    f1, t, prec, rec = min((c for c in curve if c[0] >= top - F1_TOLERANCE), key=lambda c: c[1])
    return {
        "command": f"policyqa calibrate --set {set_name}",
        "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "generation": answerer.index.generation,
        "reader": answerer.reader.fingerprint,
        "questions": len(rows), "answerable": int(sum(1 for q, _ in rows if q["answerable"])),
        "unanswerable": counts[2],
        "model": {"features": list(FEATURES), "weights": dict(model.weights), "bias": model.bias},
        "thresholds": {"min_confidence": round(t, 3), "out_of_scope_dense": model.out_of_scope_dense,
                       "sure_margin": sure["sure_margin"]},
        "rank_prior": prior,
        "sure_margin_fit": {k: v for k, v in sure.items() if k != "sure_margin"},  # the value is a threshold
        "out_of_fold": {"folds": CV_FOLDS, "repeats": CV_REPEATS, "refusal_precision": round(prec, 4),
                        "refusal_recall": round(rec, 4), "refusal_f1": round(f1, 4)},
    }


def write_calibration(data: dict[str, Any], path: Path = CALIBRATION_FILE) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def load_questions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
