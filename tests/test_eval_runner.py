"""End-to-end eval on the REAL model and a freshly built seed index: run, score, report, compare."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from eval.baselines import baseline_path
from eval.cli import main as eval_main
from eval.report import PLOTS
from eval.scoring import QUALITY_METRICS
from eval.sets import load_set

MODES = ("hybrid", "dense", "sparse")


# An upload in the live data directory, about what a smoke question asks (江门市有多少名党员): were the set run
# on that directory, the figures and the corpus fingerprint would change.
UPLOADED = """---
title: "江门党员人数更正"
date: "2026-06-01"
source: "测试上传"
---
江门市目前有99万名党员，全市党员总数以本文为准。
"""


@pytest.fixture(scope="module")
def eval_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A live data directory holding an uploaded document beside the seeds, and an eval cache of its own
    (eval/cache/ in a checkout); the shared embedding cache keeps the seed copy's index build to seconds."""
    from conftest import SEED_CORPUS, share_embedding_cache

    from eval import external

    tmp = tmp_path_factory.mktemp("eval")
    live = tmp / "data" / "documents"
    shutil.copytree(SEED_CORPUS, live)
    (live / "uploaded-extra.md").write_text(UPLOADED, encoding="utf-8")
    share_embedding_cache(tmp / "cache" / "seeds" / "index")
    mp = pytest.MonkeyPatch()
    mp.setenv("POLICYQA_CORPUS_DIR", str(live))
    mp.setenv("POLICYQA_INDEX_DIR", str(tmp / "data" / "index"))
    mp.delenv("POLICYQA_LLM_BASE_URL", raising=False)
    mp.setattr(external, "CACHE_DIR", tmp / "cache")
    try:
        yield tmp
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def smoke_run(eval_env: Path) -> Path:
    run_dir = eval_env / "run"
    assert eval_main(["eval", "run", "--set", "seeds-smoke", "--mode", "all", "--out", str(run_dir), "-q"]) == 0
    return run_dir


def test_a_seed_set_runs_on_a_pristine_copy_of_the_seeds(smoke_run: Path, eval_env: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The live data directory holds an upload; the seed set runs on eval/cache/seeds/ all the same: the
    baseline's corpus fingerprint and figures, no warning, and the live directory is left alone."""
    from corpus.pipeline import load_chunked_corpus

    base = json.loads(baseline_path("seeds-smoke").read_text(encoding="utf-8"))
    meta = json.loads((smoke_run / "meta.json").read_text(encoding="utf-8"))
    assert meta["seed_copy"]["corpus_dir"] == str(eval_env / "cache" / "seeds" / "corpus")
    assert meta["index"]["store"] == {"kind": "faiss", "bm25": "bm25s", "dense_index": "flat"}  # where it searched
    assert meta["index"]["corpus"] == base["index"]["corpus"] == load_chunked_corpus().fingerprint()
    assert load_chunked_corpus(eval_env / "data" / "documents").fingerprint() != base["index"]["corpus"]
    assert not (eval_env / "data" / "index").exists()  # the live index was neither built nor read
    rows = [json.loads(line) for line in (smoke_run / "run.jsonl").read_text(encoding="utf-8").splitlines()]
    assert not any("uploaded-extra" in r["ranked_doc_ids"] for r in rows)
    metrics = json.loads((smoke_run / "metrics.json").read_text(encoding="utf-8"))["modes"]
    for mode, expected in base["expected"].items():
        got = {k: metrics[mode]["overall"].get(k) for k in expected}
        assert got == pytest.approx(expected, abs=1e-4), mode
    assert eval_main(["eval", "compare", str(smoke_run)]) == 0
    out = capsys.readouterr()
    assert "OK" in out.out and "fingerprint" not in out.out + out.err


def test_calibrate_fits_a_shipped_set_on_the_pristine_copy(smoke_run: Path, eval_env: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`policyqa calibrate` on a shipped set answers over eval/cache/seeds/ like `eval run`: the upload in the
    live data directory cannot move the shipped calibration. --dry-run writes nothing."""
    from index.generations import current_generation
    from service.answering.calibration import CALIBRATION_FILE

    shipped = CALIBRATION_FILE.read_bytes()
    capsys.readouterr()
    assert eval_main(["calibrate", "--set", "eval/sets/seeds-smoke.jsonl", "--dry-run"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["questions"] == 12 and data["unanswerable"] == 3
    current = current_generation(eval_env / "cache" / "seeds" / "index")
    assert current is not None and data["generation"] == current.name  # the seed copy's index, the run's one
    assert not (eval_env / "data" / "index").exists()  # the live index was neither built nor read
    assert CALIBRATION_FILE.read_bytes() == shipped


def test_calibrate_refuses_a_set_it_cannot_read_before_building_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("POLICYQA_DATA_DIR", str(tmp_path / "data"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": \n', encoding="utf-8")
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    for path, says in ((tmp_path / "missing.jsonl", "无法读取评测集"), (bad, "无法读取评测集"),
                       (tmp_path / "empty.jsonl", "没有问题")):
        assert eval_main(["calibrate", "--set", str(path), "--dry-run"]) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err
    assert not (tmp_path / "data").exists()  # no model prepared, no index built


def test_run_rows(smoke_run: Path) -> None:
    _, questions = load_set("seeds-smoke")
    rows = [json.loads(line) for line in (smoke_run / "run.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(questions) * len(MODES)
    assert sorted((r["id"], r["mode"]) for r in rows) == sorted((q.id, m) for q in questions for m in MODES)
    for r in rows:
        assert len(r["ranked_doc_ids"]) <= 10
        assert {"answer", "short_answer", "refused", "reason", "citations"} <= set(r["answer"])
        assert isinstance(r["citation_verified"], bool)
        assert r["timings"]["answer_ms"] > 0


def test_metrics_report_plots(smoke_run: Path) -> None:
    metrics = json.loads((smoke_run / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["modes"]) == set(MODES)
    for mode in MODES:
        overall = metrics["modes"][mode]["overall"]
        for key in (*QUALITY_METRICS, "latency_p50_ms", "latency_p95_ms"):
            assert key in overall
        assert "factoid" in metrics["modes"][mode]["by_tag"]
        assert "unanswerable" in metrics["modes"][mode]["by_tag"]
    assert metrics["modes"]["hybrid"]["overall"]["citation_verification_rate"] == 1.0
    for mode in MODES:
        rate = metrics["modes"][mode]["overall"]["citation_verification_rate"]
        assert rate in (None, 1.0)  # None: the mode cited nothing
    report = (smoke_run / "report.md").read_text(encoding="utf-8")
    assert "| hit@5 |" in report and "By tag: hybrid" in report
    for name in PLOTS:
        png = smoke_run / name
        assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_fails_on_raised_baseline(smoke_run: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    base = json.loads(baseline_path("seeds-smoke").read_text(encoding="utf-8"))
    measured = json.loads((smoke_run / "metrics.json").read_text(encoding="utf-8"))
    got = measured["modes"]["hybrid"]["overall"]["mrr"]
    base["expected"]["hybrid"]["mrr"] = got + base["tolerance"]["mrr"] + 0.05
    raised = tmp_path / "raised.json"
    raised.write_text(json.dumps(base), encoding="utf-8")
    assert eval_main(["eval", "compare", str(smoke_run), "--baseline", str(raised)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "hybrid.mrr" in out


def test_score_and_baseline_roundtrip(smoke_run: Path, tmp_path: Path) -> None:
    assert eval_main(["eval", "score", str(smoke_run)]) == 0
    out = tmp_path / "b.json"
    assert eval_main(["eval", "baseline", str(smoke_run), "--baseline", str(out)]) == 0
    assert eval_main(["eval", "compare", str(smoke_run), "--baseline", str(out)]) == 0


def _copy_run(smoke_run: Path, dest: Path, **meta: object) -> Path:
    """The smoke run's metrics in a new folder, with `meta` changed (another set, a --limit run)."""
    metrics = json.loads((smoke_run / "metrics.json").read_text(encoding="utf-8"))
    metrics["meta"].update(meta)
    dest.mkdir()
    (dest / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return dest


def test_a_set_without_a_baseline_is_a_clear_error(smoke_run: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    run = _copy_run(smoke_run, tmp_path / "run", set="no-such-set")
    assert eval_main(["eval", "compare", str(run)]) == 2
    err = capsys.readouterr().err
    assert "no baseline for set 'no-such-set'" in err and "还没有基线" in err and "Traceback" not in err
    assert f"policyqa eval baseline {run}" in err  # says how to make one


def test_a_run_of_other_size_is_not_compared(smoke_run: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    base = json.loads(baseline_path("seeds-smoke").read_text(encoding="utf-8"))
    base["questions"] += 1  # as if the baseline came from a bigger set
    other = tmp_path / "other.json"
    other.write_text(json.dumps(base), encoding="utf-8")
    assert eval_main(["eval", "compare", str(smoke_run), "--baseline", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"baseline {base['questions']}" in err and "--limit" in err and "Traceback" not in err


def test_the_sets_baseline_is_not_written_from_a_limited_run(smoke_run: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    before = baseline_path("seeds-smoke").read_bytes()
    run = _copy_run(smoke_run, tmp_path / "run", limit=3)
    assert eval_main(["eval", "baseline", str(run)]) == 2
    assert "first 3 questions" in capsys.readouterr().err
    assert baseline_path("seeds-smoke").read_bytes() == before
    kept = tmp_path / "short.json"
    assert eval_main(["eval", "baseline", str(run), "--baseline", str(kept)]) == 0  # a file of its own is fine
    assert json.loads(kept.read_text(encoding="utf-8"))["expected"]


@pytest.mark.parametrize("command", ["score", "compare", "baseline"])
def test_a_folder_that_is_no_run_is_a_clear_error(command: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert eval_main(["eval", command, str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a folder written by `policyqa eval run`" in err and "运行目录" in err and "Traceback" not in err


def test_a_failing_question_becomes_an_error_row_and_the_run_goes_on(real_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from eval.runner import run_set
    from eval.scoring import score_dir
    from eval.sets import Question

    questions = [
        Question("q1", "江门市目前有多少名党员？", ("21万多名",), ("jiangmen-party-building-governance-2022",), (), True,
                 ("number", "factoid")),
        Question("q2", "   ", ("x",), ("d",), (), True, ("number",)),  # a public split really has empty questions
        Question("q3", "江门累计落实基层党建经费多少？", ("22.6亿元",), ("jiangmen-party-building-review-2025",), (),
                 True, ("number",)),
    ]
    assert run_set(real_engine, questions, ["hybrid"], tmp_path / "run.jsonl", progress=False) == 3
    rows = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2", "q3"]
    assert rows[1]["error"]["type"] == "QueryError" and "empty" in rows[1]["error"]["message"]
    assert "error" not in rows[0] and "error" not in rows[2]
    overall = score_dir(tmp_path)["modes"]["hybrid"]["overall"]
    assert overall["errors"] == 1 and overall["n"] == 3
    assert overall["latency_p50_ms"] is not None  # the error row has no timings and is left out of them


def test_answer_modes_side_by_side(smoke_run: Path, tmp_path: Path) -> None:
    """--answer-mode all with no LLM set: the generative and auto columns fall back and say why; the report
    shows them beside the extractive one."""
    run_dir = tmp_path / "run"
    # five questions: each mode's path is the same for every question (the whole set is smoke_run's)
    rc = eval_main(["eval", "run", "--set", "seeds-smoke", "--answer-mode", "all", "--limit", "5",
                    "--out", str(run_dir), "-q"])
    assert rc == 0
    assert json.loads((run_dir / "meta.json").read_text(encoding="utf-8"))["seed_copy"]["built"] is None  # reused
    rows = [json.loads(line) for line in (run_dir / "run.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["mode"] for r in rows} == {"hybrid", "hybrid+generative", "hybrid+auto"}
    for r in rows:
        a = r["answer"]
        assert a["answer_mode_used"] == "extractive" and not a["llm_called"]
        if r["mode"] == "hybrid+generative":
            assert a["fallback_reason"] in ("llm_not_configured", "hard_refusal")
        elif r["mode"] == "hybrid":
            assert a["fallback_reason"] is None
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))["modes"]
    assert "fallbacks" not in metrics["hybrid"]["overall"]
    gen = metrics["hybrid+generative"]["overall"]
    assert gen["llm_called_rate"] == 0.0 and gen["generated_rate"] == 0.0
    assert sum(gen["fallbacks"].values()) == gen["n"]
    # the same extractive answers under every label: the same quality figures
    assert gen["accuracy"] == metrics["hybrid"]["overall"]["accuracy"]
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "| fallbacks |" in report and "hybrid+generative" in report


def test_generation_figures_from_rows() -> None:
    from eval.scoring import score_rows

    def row(used: str, statements: list[dict[str, object]], llm_ms: float | None, fallback: str | None) -> dict:
        return {"answerable": True, "gold_docs": [], "answers": ["甲"], "tags": [], "ranked_doc_ids": [],
                "require_all": False, "citation_checks": [True],
                "answer": {"answer": "甲[1]。", "short_answer": None, "refused": False, "citations": [],
                           "answer_mode_used": used, "fallback_reason": fallback, "statements": statements,
                           "llm_called": llm_ms is not None},
                "timings": {"answer_ms": 1.0, "search_ms": 1.0,
                            "engine_ms": {} if llm_ms is None else {"llm": llm_ms}}}

    kept, dropped = {"verified": True, "dropped": None}, {"verified": False, "dropped": "quote_not_in_passage"}
    out = score_rows([row("generative", [kept, kept, dropped], 1000.0, None),
                      row("extractive", [dropped], 3000.0, "llm_unverified"),
                      row("extractive", [], None, "hard_refusal")])
    assert out["statements_kept"] == 2 and out["statements_dropped"] == 2
    assert out["statement_verification_rate"] == 0.5
    assert out["generated_rate"] == round(1 / 3, 4) and out["llm_called_rate"] == round(2 / 3, 4)
    assert out["fallbacks"] == {"hard_refusal": 1, "llm_unverified": 1}
    assert out["dropped_by_reason"] == {"quote_not_in_passage": 2}
    assert out["llm_latency_p50_ms"] == 2000.0
