"""The refusal model: fitting, the out-of-fold threshold, and a real fit on labelled seed questions."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from service.answering.calibration import (
    CALIBRATION_FILE,
    FEATURES,
    SURE_SLACK,
    Thresholds,
    _curve,
    _out_of_fold,
    calibrate,
    load_questions,
    sure_margin,
)


def test_curve_counts_filter_refusals_as_they_stand() -> None:
    probs = np.array([0.1, 0.2, 0.8, 0.9])
    y = np.array([0.0, 1.0, 1.0, 1.0])  # one unanswerable among the free rows
    curve = {round(t, 2): (f1, p, r) for f1, t, p, r in _curve(probs, y, 1, 0, 2)}
    _f1, prec, rec = curve[0.15]  # refuses the 0.1 row: both unanswerables refused, nothing answerable
    assert (prec, rec) == (1.0, 1.0)
    _f1, prec, rec = curve[0.5]  # refuses one answerable row too
    assert (round(prec, 3), rec) == (0.667, 1.0)


def test_out_of_fold_confidences_come_from_models_that_did_not_see_the_row(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from service.answering import calibration

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(2.0, 1.0, (40, 2)), rng.normal(-2.0, 1.0, (40, 2))])
    y = np.array([1.0] * 40 + [0.0] * 40)
    runs = _out_of_fold(x, y)
    assert len(runs) == calibration.CV_REPEATS and all(p.shape == (80,) for p in runs)
    mean = np.mean(runs, axis=0)
    assert (mean[:40] > 0.5).mean() > 0.9 and (mean[40:] < 0.5).mean() > 0.9
    assert all(np.array_equal(a, b) for a, b in zip(runs, _out_of_fold(x, y), strict=True))  # seeded

    seen: list[set[int]] = []
    fit = calibration._fit_logistic

    def recording(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, float]:
        seen.append({int(v) for v in xs[:, 2]})
        return fit(xs, ys)

    monkeypatch.setattr(calibration, "_fit_logistic", recording)
    ids = np.concatenate([x, np.arange(80.0)[:, None]], axis=1)  # a third column names each row
    _out_of_fold(ids, y)
    folds = calibration.CV_FOLDS
    for r in range(calibration.CV_REPEATS):  # within a repeat each row is left out of exactly one fit
        fits = seen[r * folds:(r + 1) * folds]
        assert all(sum(i not in f for f in fits) == 1 for i in range(80))


def test_the_sure_margin_clears_every_lower_passage_seen() -> None:
    def row(rank1: float, lower: float) -> tuple[dict, SimpleNamespace]:  # type: ignore[type-arg]
        return {}, SimpleNamespace(signals={"rank1_margin": rank1, "lower_margin": lower})

    # the 6.7 first passage that a lower 11.8 beat does not set the bound; the best lower span does
    rows = [row(6.7, 11.8), row(14.0, 9.0), row(13.0, -20.0), row(-20.0, 2.0)]
    got = sure_margin(rows)  # type: ignore[arg-type]
    assert got["sure_margin"] == round(11.8 + SURE_SLACK, 2)
    assert got["highest_lower_passage"] == 11.8 and got["first_passages_above"] == 2
    # no lower passage ever gave a span: no bound, and a calibration without one reads every passage
    none = sure_margin([row(14.0, -20.0)])  # type: ignore[list-item]
    assert none["sure_margin"] is None
    data = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
    data["thresholds"]["sure_margin"] = None
    assert Thresholds.from_dict(data).sure_margin == math.inf


def test_the_shipped_calibration_loads() -> None:
    t = Thresholds.load(CALIBRATION_FILE)
    assert [name for name, _w in t.weights] == list(FEATURES)
    assert 0.05 <= t.min_confidence <= 0.95
    assert 0.0 < t.confidence({"margin": 5.0}) < 1.0


def test_calibrate_on_real_answers(real_engine) -> None:  # type: ignore[no-untyped-def]
    questions = load_questions(Path("eval/sets/seeds-calib.jsonl"))
    sample = [q for q in questions if q["answerable"]][:25] + [q for q in questions if not q["answerable"]][:15]
    data = calibrate(real_engine.answerer(), sample, "sample")
    assert data["questions"] == 40 and data["unanswerable"] == 15
    assert set(data["model"]["weights"]) == set(FEATURES)
    assert 0.05 <= data["thresholds"]["min_confidence"] <= 0.95
    fitted = Thresholds.from_dict(data)
    # the fitted model ranks: answerable questions are on average more confident than unanswerable ones
    probe = real_engine.answerer().with_thresholds(fitted)
    conf = {True: [], False: []}  # type: dict[bool, list[float]]
    for q in sample:
        a = probe.answer(q["question"])
        if a.signals:
            conf[q["answerable"]].append(fitted.confidence(a.signals))
    assert np.mean(conf[True]) > np.mean(conf[False])


def test_the_shipped_calibration_was_fitted_with_the_shipped_reader(real_engine, caplog) -> None:  # type: ignore[no-untyped-def]
    # new layers shipped without `policyqa calibrate` fail here: the weights and threshold are read off the
    # margins of the reader they were fitted with
    from service.engine import _check_calibration

    shipped = Thresholds.load(CALIBRATION_FILE)
    assert shipped.reader == real_engine.reader.fingerprint
    assert _check_calibration(real_engine.reader, shipped)
    other = Thresholds(reader="0" * 64)
    with caplog.at_level("WARNING", logger="policyqa"):
        assert not _check_calibration(real_engine.reader, other)
    assert "policyqa calibrate" in caplog.text and real_engine.reader.fingerprint[:12] in caplog.text
