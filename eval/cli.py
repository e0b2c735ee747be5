"""`policyqa eval run|score|compare|baseline` — registered through the `policyqa.commands` entry point.

Also runnable without an installed package: `python -m eval.cli eval run --set seeds-smoke`.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from service.settings import Settings

EVAL_DIR = Path(__file__).resolve().parent
RUNS_DIR = EVAL_DIR / "runs"
log = logging.getLogger("policyqa")
MODES = ("hybrid", "dense", "sparse")
ANSWER_MODES = ("extractive", "generative", "auto")

if TYPE_CHECKING:
    from service.llm.generate import AnswerMode


def _engine_for(set_name: str, settings: Settings, *, quiet: bool = True,
                seeds: bool = False) -> tuple[Any, dict[str, Any]]:
    """The engine for a set, and what preparing it did: external sets and (``seeds``) the shipped sets over the
    seed articles run on their own cached corpus and index, never the live data directory."""
    from eval.external import ensure_index, is_external
    from eval.seedcorpus import seed_settings
    from service.engine import Engine

    external = is_external(set_name)
    if not external and not seeds:
        engine = Engine(settings)  # a question file of one's own: the configured data directory
        engine.ensure_index()
        return engine, {}
    from service.cli import TqdmProgress

    t0 = time.perf_counter()
    failed: tuple[tuple[str, str], ...] | None = None
    if external:
        settings, failed = prepare_external(set_name, settings)
    else:
        settings = seed_settings(settings)[0]
    engine = Engine(settings)
    t1 = time.perf_counter()
    bar = TqdmProgress(enabled=not quiet)
    try:
        result = ensure_index(engine, bar)
    finally:
        bar.close()
    t2 = time.perf_counter()
    info: dict[str, Any] = {"corpus_dir": str(settings.corpus_dir), "index_dir": str(settings.index_dir),
                            "materialise_s": round(t1 - t0, 2), "index_s": round(t2 - t1, 2), "built": None}
    if failed is not None:  # a set of original files: which of them could not be ingested
        info["failed"] = [{"file": f, "reason": r} for f, r in failed]
    if external:
        info["ids"] = str(settings.corpus_dir.parent / "ids.json")
    if result is not None:
        info["built"] = {"generation": result.generation, "chunks": result.chunks, "embedded": result.embedded,
                         "cached": result.cached, "seconds": round(result.seconds, 2)}
        print(f"built the {set_name} index: {result.chunks} chunks ({result.embedded} embedded, "
              f"{result.cached} from cache) in {result.seconds:.1f}s", file=sys.stderr)
    return engine, info


def prepare_external(set_name: str, settings: Settings) -> tuple[Settings, tuple[tuple[str, str], ...] | None]:
    """External sets (eval/external/<name>/): materialise their corpus under eval/cache/<name>/corpus/ and
    return settings whose corpus_dir / index_dir point there (see eval/external.py), with the files that could
    not be ingested (None for a set of passages)."""
    from eval.external import external_settings
    from service.cli import CliError

    try:
        out, mat = external_settings(set_name, settings)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(f"external set {set_name!r}: {exc}") from exc
    log.info("external set %s: %d passage files written, %d unchanged, %d removed (%s)", set_name,
             mat.written, mat.unchanged, mat.removed, mat.corpus_dir)
    from eval.external import is_raw_files

    if not is_raw_files(set_name):
        return out, None
    total = len(mat.ids.to_safe)
    if mat.failed:
        names = ", ".join(f for f, _ in mat.failed[:10]) + (" …" if len(mat.failed) > 10 else "")
        print(f"{set_name}: {len(mat.failed)} of {total} files could not be ingested and are left out of this run "
              f"(list: {mat.root / 'ingest.json'}): {names} / {len(mat.failed)} 个文件无法导入，本次运行不含这些文件",
              file=sys.stderr)
    return out, mat.failed


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from eval.conversations import is_conversation_set
    from eval.report import summary_table, write_report
    from eval.runner import index_fingerprint, run_set
    from eval.scoring import load_rows, score_dir
    from eval.sets import load_set
    from service.cli import CliError

    if is_conversation_set(args.set):
        return cmd_run_conversations(args, settings)
    try:
        name, questions = load_set(args.set, args.limit)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from exc
    if not questions:
        raise CliError(f"set {name!r} has no questions / 评测集“{name}”中没有问题")
    modes = list(MODES) if args.mode == "all" else [args.mode]
    answer_modes = list(ANSWER_MODES) if args.answer_mode == "all" else [args.answer_mode]
    t_start = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = Path(args.out) if args.out else RUNS_DIR / name / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    from eval.seedcorpus import is_seed_set

    engine, prepared = _engine_for(name, settings, quiet=args.quiet, seeds=is_seed_set(args.set))
    t_ready = time.perf_counter()
    meta: dict[str, Any] = {"set": name, "modes": modes, "answer_modes": answer_modes, "questions": len(questions), "limit": args.limit,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "policyqa eval run " + " ".join(shlex.quote(a) for a in args.argv_tail),
            "index": index_fingerprint(engine.index.manifest)}
    doc_ids = None
    if "ids" in prepared:
        from eval.external import load_id_map

        meta["external"] = prepared
        doc_ids = load_id_map(Path(prepared["ids"])).to_external  # run.jsonl reports the set's own doc ids
    elif prepared:
        meta["seed_copy"] = prepared  # the pristine copy of the seed articles the set ran on
    meta_path = run_dir / "meta.json"
    meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if engine.llm is not None and answer_modes != ["extractive"]:
        meta["llm"] = {"base_url": settings.llm_base_url, "model": settings.llm_model or "(first listed)",
                       "passages": settings.llm_passages, "timeout_s": settings.llm_timeout_s}
    run_set(engine, questions, modes, run_dir / "run.jsonl", progress=not args.quiet, doc_ids=doc_ids,
            answer_modes=cast("list[AnswerMode]", answer_modes))
    meta["timings_s"] = {"prepare": round(t_ready - t_start, 2),
                         "questions": round(time.perf_counter() - t_ready, 2)}
    meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    metrics = score_dir(run_dir)
    write_report(run_dir, metrics, load_rows(run_dir / "run.jsonl"))
    print(summary_table(metrics))
    print(f"\nrun: {run_dir}")
    return 0


def cmd_run_conversations(args: argparse.Namespace, settings: Settings) -> int:
    """A conversation set: every follow-up turn answered as resolved from the turns before, and its gold
    standalone question answered alone (modes <mode>+followup and <mode>+standalone)."""
    from eval.conversations import load_conversations, run_conversations
    from eval.report import summary_table, write_report
    from eval.runner import index_fingerprint
    from eval.scoring import load_rows, score_dir

    name, conversations = load_conversations(args.set, args.limit)
    mode = "hybrid" if args.mode == "all" else args.mode
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = Path(args.out) if args.out else RUNS_DIR / name / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    engine, _ = _engine_for(name, settings, quiet=args.quiet)
    meta: dict[str, Any] = {"set": name, "kind": "conversations", "modes": [f"{mode}+followup", f"{mode}+standalone"],
                            "answer_modes": ["extractive"], "conversations": len(conversations),
                            "questions": sum(len(c.turns) - 1 for c in conversations), "limit": args.limit,
                            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                            "command": "policyqa eval run " + " ".join(shlex.quote(a) for a in args.argv_tail),
                            "index": index_fingerprint(engine.index.manifest)}
    meta["resolution"] = run_conversations(engine, conversations, mode, run_dir / "run.jsonl",
                                           progress=not args.quiet)
    meta["timings_s"] = {"total": round(time.perf_counter() - t0, 2)}
    (run_dir / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    metrics = score_dir(run_dir)
    write_report(run_dir, metrics, load_rows(run_dir / "run.jsonl"))
    print(summary_table(metrics))
    res = meta["resolution"]
    print(f"\nresolved questions: {res['resolution_accuracy']} of {res['followups']} follow-up turns "
          "(exact or equivalent)")
    print(f"run: {run_dir}")
    return 0


def cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    """Fit the answer-confidence model and refusal threshold. A shipped set (seeds-calib) is answered over the
    pristine copy of the seed articles, like `eval run`, so uploads in the live data directory never move the
    shipped calibration; a question file of one's own runs on the configured data directory."""
    from eval.seedcorpus import is_seed_set
    from service.answering.calibration import calibrate, load_questions, write_calibration
    from service.cli import CliError

    try:  # before the index: a wrong path must not cost a model preparation and a build
        questions = load_questions(args.set)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the question set {str(args.set)!r}: {exc} / 无法读取评测集") from exc
    if not questions:
        raise CliError(f"{str(args.set)!r} has no questions / 评测集中没有问题")
    engine, _ = _engine_for(str(args.set), settings, quiet=False, seeds=is_seed_set(str(args.set)))
    data = calibrate(engine.answerer(), questions, str(args.set))
    if not args.dry_run:
        write_calibration(data)
    print(json.dumps(data, ensure_ascii=False, indent=2))
    return 0


def cmd_followups(args: argparse.Namespace, settings: Settings) -> int:
    """Resolution accuracy of a conversation set, by rule; no index, no model."""
    from eval.conversations import (
        is_conversation_set,
        load_conversations,
        resolution_rows,
        resolution_summary,
    )
    from service.cli import CliError

    if not is_conversation_set(args.set):
        raise CliError(f"{args.set!r} is not a conversation set (rows with `turns`) / 不是多轮对话评测集")
    name, conversations = load_conversations(args.set, args.limit)
    rows = resolution_rows(conversations)
    summary = resolution_summary(rows)
    if args.json:
        print(json.dumps({"set": name, **summary, "rows": rows}, ensure_ascii=False, indent=2))
        return 0
    print(f"set {name}: {len(conversations)} conversations, {summary['followups']} follow-up turns")
    print(f"resolved-question accuracy: {summary['accuracy']} (exact {summary['accuracy_exact']}, "
          f"+{summary['equivalent']} equivalent)")
    for tag, v in summary["by_tag"].items():
        print(f"  {tag:<18} n={v['n']:<3} {v['accuracy']}")
    misses = [r for r in rows if r["match"] == "miss"]
    if misses:
        print("\nmisses (asked | resolved | gold):")
        for r in misses:
            print(f"  {r['id']}  {r['asked']} | {r['resolved']} | {r['gold']}")
    return 0


def cmd_feedback_export(args: argparse.Namespace, settings: Settings) -> int:
    from eval.feedbackset import ExportError, export_rows, set_path, write_set
    from service.cli import CliError
    from service.logbook import Logbook

    book = Logbook(settings.logbook_path, enabled=settings.question_log, retention_days=settings.question_log_days)
    if not settings.logbook_path.exists():
        raise CliError(f"no feedback yet: {settings.logbook_path} does not exist / 还没有任何反馈")
    export = export_rows(book.feedback(args.rating, args.since, args.until))
    if not export.rows:
        raise CliError("no feedback to export / 没有可导出的反馈")
    try:
        path = set_path(args.set, Path(args.out) if args.out else None)
        write_set(export, path, force=args.force)
    except ExportError as exc:
        raise CliError(str(exc)) from exc
    kinds: dict[str, int] = {}
    for r in export.rows:
        key = "corrected" if "corrected" in r["tags"] else "must_not_answer" if "must_not_answer" in r["tags"] else (
            "up_refusal" if "refusal" in r["tags"] else "up")
        kinds[key] = kinds.get(key, 0) + 1
    print(f"wrote {len(export.rows)} questions to {path} ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}; "
          f"{export.duplicates} older ratings of the same questions, {export.skipped} 👎 on refusals without a "
          "correction left out)")
    print(f"run it: policyqa eval run --set {args.set if not args.out else path}")
    return 0


def cmd_score(args: argparse.Namespace, settings: Settings) -> int:
    from eval.report import summary_table, write_report
    from eval.scoring import load_rows, score_dir
    from service.cli import CliError

    run_dir = Path(args.run_dir)
    if not (run_dir / "run.jsonl").is_file():
        raise CliError(f"{run_dir} has no run.jsonl: not a folder written by `policyqa eval run` / "
                       f"{run_dir} 中没有 run.jsonl：不是 `policyqa eval run` 写出的运行目录")
    metrics = score_dir(run_dir)
    write_report(run_dir, metrics, load_rows(run_dir / "run.jsonl"))
    print(summary_table(metrics))
    return 0


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from eval.baselines import BaselineError, compare
    from service.cli import CliError

    try:
        result = compare(Path(args.run_dir), Path(args.baseline) if args.baseline else None)
    except BaselineError as exc:
        raise CliError(str(exc)) from exc
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if result.drops:
        print(f"FAIL: {len(result.drops)} of {result.checked} metrics dropped beyond tolerance:")
        for d in result.drops:
            print(f"  {d}")
        return 1
    print(f"OK: {result.checked} metrics within tolerance of the baseline")
    return 0


def cmd_baseline(args: argparse.Namespace, settings: Settings) -> int:
    from eval.baselines import BaselineError, write_baseline
    from service.cli import CliError

    try:
        path = write_baseline(Path(args.run_dir), Path(args.baseline) if args.baseline else None)
    except BaselineError as exc:
        raise CliError(str(exc)) from exc
    print(f"wrote {path}")
    return 0


def _cmd_reader(args: argparse.Namespace, settings: Settings) -> int:
    from eval.reader import cmd_reader

    return cmd_reader(args, settings)


def register(subparsers: Any) -> None:
    ev = subparsers.add_parser("eval", help="evaluate on question sets").add_subparsers(
        dest="eval_command", required=True)
    s = ev.add_parser("run", help="run a question set, score it, write a report")
    s.add_argument("--set", required=True, help="set name (eval/sets/<name>.jsonl, cmrc2018_dev, chronoqa, regulations) or path")
    s.add_argument("--mode", choices=(*MODES, "all"), default="hybrid",
                   help="retrieval mode to evaluate, or all three side by side (default hybrid)")
    s.add_argument("--answer-mode", choices=(*ANSWER_MODES, "all"), default="extractive",
                   help="answer mode (generative and auto call the LLM at POLICYQA_LLM_BASE_URL), or all three "
                        "side by side; a non-extractive run is reported as <mode>+<answer mode> "
                        "(default extractive)")
    s.add_argument("--limit", type=int, default=None, help="first N questions only")
    s.add_argument("--out", default=None, help="run folder (default eval/runs/<set>/<timestamp>)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(handler=_with_tail(cmd_run))
    s = ev.add_parser("followups", help="a conversation set's resolved-question accuracy (rules only: no index, "
                                        "no model)")
    s.add_argument("--set", default="followups-dev", help="conversation set (default followups-dev)")
    s.add_argument("--limit", type=int, default=None, help="first N conversations only")
    s.add_argument("--json", action="store_true", help="every turn as JSON")
    s.set_defaults(handler=cmd_followups)
    s = ev.add_parser("reader", help="the reader alone on an external set's gold passages (EM / F1)")
    s.add_argument("--set", default="cmrc2018_dev", help="external set with gold passages (default cmrc2018_dev)")
    s.add_argument("--limit", type=int, default=None, help="first N questions only")
    s.add_argument("--reader-dir", default=None, help="assembled reader (default: POLICYQA_READER_DIR)")
    s.set_defaults(handler=_cmd_reader)
    s = ev.add_parser("score", help="(re)score a run folder: metrics.json, report.md, plots")
    s.add_argument("run_dir", help="a run folder written by `policyqa eval run` (eval/runs/<…>)")
    s.set_defaults(handler=cmd_score)
    s = ev.add_parser("compare", help="compare a run with its baseline (exit 1 on a drop)")
    s.add_argument("run_dir", help="the run folder to compare")
    s.add_argument("--baseline", default=None, help="baseline file (default eval/baselines/<set>.json)")
    s.set_defaults(handler=cmd_compare)
    s = ev.add_parser("baseline", help="write or update the baseline file from a run")
    s.add_argument("run_dir", help="the run folder whose figures become the baseline")
    s.add_argument("--baseline", default=None, help="baseline file (default eval/baselines/<set>.json)")
    s.set_defaults(handler=cmd_baseline)
    s = subparsers.add_parser("calibrate", help="fit the answer-confidence model on labelled (un)answerable "
                                                "questions")
    s.add_argument("--set", type=Path, default=EVAL_DIR / "sets" / "seeds-calib.jsonl",
                   help="labelled question set, JSON lines; a shipped set runs on the pristine seed copy "
                        "(default: eval/sets/seeds-calib.jsonl)")
    s.add_argument("--dry-run", action="store_true", help="print, do not write service/answering/calibration.json")
    s.set_defaults(handler=cmd_calibrate)
    fb = subparsers.add_parser("feedback", help="answers rated in production").add_subparsers(
        dest="feedback_command", required=True)
    s = fb.add_parser("export", help="write the rated questions as an eval set (👍 answer or the correction as "
                                     "gold, 👎 without one as must-not-answer)")
    s.add_argument("--set", required=True, help="set name: written to eval/sets/<name>.jsonl")
    s.add_argument("--out", default=None, help="write here instead")
    s.add_argument("--rating", choices=("up", "down"), default=None, help="only this rating")
    s.add_argument("--since", default=None, help="rated on or after this ISO date")
    s.add_argument("--until", default=None, help="rated on or before this ISO date")
    s.add_argument("--force", action="store_true", help="overwrite a set that was not exported from feedback")
    s.set_defaults(handler=cmd_feedback_export)


def _with_tail(fn: Any) -> Any:
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        if not hasattr(args, "argv_tail"):
            argv = sys.argv[1:]
            args.argv_tail = argv[argv.index("run") + 1:] if "run" in argv else []
        return int(fn(args, settings))
    return handler


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (no installed entry points needed): `python -m eval.cli eval run ...`."""
    from service.cli import main as service_main

    if "eval" in _registered():
        return service_main(argv)
    import service.cli as scli

    original = scli._extra_commands
    scli._extra_commands = lambda: [*original(), register]
    try:
        return service_main(argv)
    finally:
        scli._extra_commands = original


def _registered() -> list[str]:
    from importlib.metadata import entry_points

    return [ep.name for ep in entry_points(group="policyqa.commands")]


if __name__ == "__main__":
    raise SystemExit(main())
