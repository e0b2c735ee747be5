"""Baselines: expected metrics of a set on a known index, with a tolerance per metric.

A baseline file (eval/baselines/<set>.json) holds the command that produced it, the index fingerprint
(corpus + model + encoder variant), the expected overall metrics per mode and an absolute tolerance per metric.
`compare` fails when a metric is lower than expected by more than its tolerance. A run of another size than the
baseline's (`eval run --limit`) is not compared: its figures are of other questions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.scoring import QUALITY_METRICS

BASELINES_DIR = Path(__file__).resolve().parent / "baselines"
DEFAULT_TOLERANCE = 0.02


class BaselineError(ValueError):
    """A run folder or baseline file that cannot be read or compared (the message in English / Chinese)."""


@dataclass
class Comparison:
    drops: list[str] = field(default_factory=list)
    checked: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.drops


def baseline_path(set_name: str) -> Path:
    return BASELINES_DIR / f"{set_name}.json"


def _read_json(path: Path, missing: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(missing) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"cannot read {path}: {exc} / 无法读取 {path}") from exc
    if not isinstance(data, dict):
        raise BaselineError(f"{path} is not a JSON object / {path} 不是 JSON 对象")
    return data


def load_metrics(run_dir: Path) -> dict[str, Any]:
    data = _read_json(run_dir / "metrics.json",
                      f"{run_dir} has no metrics.json: not a folder written by `policyqa eval run` "
                      f"(or score it first: `policyqa eval score {run_dir}`) / "
                      f"{run_dir} 中没有 metrics.json：不是 `policyqa eval run` 写出的运行目录")
    if not isinstance(data.get("modes"), dict) or not data["modes"]:
        raise BaselineError(f"{run_dir}/metrics.json has no modes / {run_dir}/metrics.json 中没有任何检索方式的结果")
    return data


def _counts(metrics: dict[str, Any]) -> tuple[int, int]:
    """(questions, unanswerable questions) of a run: every mode answers the same questions."""
    overall = next(iter(metrics["modes"].values())).get("overall", {})
    n = int(overall.get("n", 0))
    return n, n - int(overall.get("n_answerable", 0))


def _tolerances(n_questions: int, n_unanswerable: int, default: float) -> dict[str, float]:
    """Absolute tolerance per metric: `default`, widened to just over one question's weight for small sets."""
    tol: dict[str, float] = {}
    for key in QUALITY_METRICS:
        t = default
        if key == "citation_verification_rate":
            t = 0.0  # every citation must verify: no slack
        elif key.startswith("refusal") and n_unanswerable:
            t = max(t, round(1.0 / n_unanswerable + 0.005, 3))
        elif n_questions and n_questions < 50:
            t = max(t, round(1.0 / n_questions + 0.005, 3))
        tol[key] = t
    return tol


def make_baseline(run_dir: Path, default_tolerance: float = DEFAULT_TOLERANCE,
                  metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    metrics = metrics if metrics is not None else load_metrics(run_dir)
    meta = metrics.get("meta", {})
    expected = {mode: {k: mm.get("overall", {}).get(k) for k in QUALITY_METRICS}
                for mode, mm in metrics["modes"].items()}
    n, n_unans = _counts(metrics)
    return {
        "set": meta.get("set"),
        "command": meta.get("command"),
        "index": {k: v for k, v in (meta.get("index") or {}).items() if k in ("corpus", "model", "encoder")},
        "generation": (meta.get("index") or {}).get("generation"),
        "created_from": str(run_dir),
        "created_at": meta.get("created_at"),
        "questions": n,
        "note": "Regenerate with `policyqa eval baseline RUN_DIR` after changing retrieval or answering.",
        "tolerance": _tolerances(n, n_unans, default_tolerance),
        "expected": expected,
    }


def write_baseline(run_dir: Path, path: Path | None = None) -> Path:
    metrics = load_metrics(run_dir)
    limit = (metrics.get("meta") or {}).get("limit")
    if path is None and limit:
        # the set's own baseline is what every full run is compared with
        raise BaselineError(f"{run_dir} ran the first {limit} questions only: the set's baseline comes from a run of "
                            f"the whole set (or give --baseline FILE for this shorter run) / {run_dir} 只运行了前 "
                            f"{limit} 个问题：评测集的基线须来自完整运行（或用 --baseline FILE 另存）")
    base = make_baseline(run_dir, metrics=metrics)
    path = path or baseline_path(str(base["set"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(base, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def compare(run_dir: Path, baseline: Path | None = None) -> Comparison:
    metrics = load_metrics(run_dir)
    meta = metrics.get("meta", {})
    set_name = str(meta.get("set"))
    path = baseline or baseline_path(set_name)
    base = _read_json(path, f"no baseline for set {set_name!r} ({path}): write one from a run of the whole set with "
                            f"`policyqa eval baseline {run_dir}` / 评测集“{set_name}”还没有基线（{path}）：请用完整评测集的"
                            f"运行写出：`policyqa eval baseline {run_dir}`")
    if not isinstance(base.get("expected"), dict):
        raise BaselineError(f"{path} has no expected figures / {path} 中没有预期指标")
    ran, expected_n = _counts(metrics)[0], base.get("questions")
    if isinstance(expected_n, int) and ran != expected_n:
        raise BaselineError(f"the run answered {ran} questions and the baseline {expected_n}: compare a run of the "
                            f"whole set (without --limit) / 本次运行回答了 {ran} 个问题，基线是 {expected_n} 个："
                            f"请比较完整评测集的运行（不加 --limit）")
    result = Comparison()
    run_index = meta.get("index") or {}
    for key, value in (base.get("index") or {}).items():
        if run_index.get(key) != value:
            result.warnings.append(f"index {key} fingerprint differs from the baseline's "
                                   f"({str(run_index.get(key))[:12]} vs {str(value)[:12]})")
    tol = base.get("tolerance", {})
    for mode, expected in base["expected"].items():
        if mode not in metrics["modes"]:
            result.warnings.append(f"mode {mode} not in this run: skipped")
            continue
        actual = metrics["modes"][mode].get("overall", {})
        for key, exp in expected.items():
            if exp is None:
                continue
            result.checked += 1
            got = actual.get(key)
            t = float(tol.get(key, DEFAULT_TOLERANCE))
            if got is None or got < exp - t - 1e-9:
                result.drops.append(f"{mode}.{key}: {got} < {exp} - {t}")
    return result
