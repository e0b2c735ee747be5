"""`policyqa eval run|score|compare|baseline` — registered through the `policyqa.commands` entry point.

Also runnable without an installed package: `python -m eval.cli eval run --set seeds-smoke`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.settings import Settings

EVAL_DIR = Path(__file__).resolve().parent
RUNS_DIR = EVAL_DIR / "runs"
MODES = ("hybrid", "dense", "sparse")


def _engine_for(set_name: str, settings: Settings) -> Any:
    from eval.sets import EXTERNAL_DIR
    from service.engine import Engine

    if (EXTERNAL_DIR / set_name / "corpus.jsonl").exists():
        settings = prepare_external(set_name, settings)
    engine = Engine(settings)
    engine.ensure_index()
    return engine


def prepare_external(set_name: str, settings: Settings) -> Settings:
    """External sets (eval/external/<name>/) need their own cached corpus and index: not built yet."""
    from service.cli import CliError

    raise CliError(f"external set {set_name!r}: building its cached index (eval/cache/{set_name}/) "
                   "is not implemented yet")


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from eval.report import summary_table, write_report
    from eval.runner import index_fingerprint, run_set
    from eval.scoring import load_rows, score_dir
    from eval.sets import load_set
    from service.cli import CliError

    try:
        name, questions = load_set(args.set, args.limit)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from exc
    modes = list(MODES) if args.mode == "all" else [args.mode]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = Path(args.out) if args.out else RUNS_DIR / name / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    engine = _engine_for(name, settings)
    meta = {"set": name, "modes": modes, "questions": len(questions), "limit": args.limit,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "policyqa eval run " + " ".join(shlex.quote(a) for a in args.argv_tail),
            "index": index_fingerprint(engine.index.manifest)}
    (run_dir / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    run_set(engine, questions, modes, run_dir / "run.jsonl", progress=not args.quiet)
    metrics = score_dir(run_dir)
    write_report(run_dir, metrics, load_rows(run_dir / "run.jsonl"))
    print(summary_table(metrics))
    print(f"\nrun: {run_dir}")
    return 0


def cmd_score(args: argparse.Namespace, settings: Settings) -> int:
    from eval.report import summary_table, write_report
    from eval.scoring import load_rows, score_dir

    run_dir = Path(args.run_dir)
    metrics = score_dir(run_dir)
    write_report(run_dir, metrics, load_rows(run_dir / "run.jsonl"))
    print(summary_table(metrics))
    return 0


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from eval.baselines import compare

    result = compare(Path(args.run_dir), Path(args.baseline) if args.baseline else None)
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
    from eval.baselines import write_baseline

    path = write_baseline(Path(args.run_dir), Path(args.baseline) if args.baseline else None)
    print(f"wrote {path}")
    return 0


def register(subparsers: Any) -> None:
    ev = subparsers.add_parser("eval", help="evaluate on question sets").add_subparsers(
        dest="eval_command", required=True)
    s = ev.add_parser("run", help="run a question set, score it, write a report")
    s.add_argument("--set", required=True, help="set name (eval/sets/<name>.jsonl, cmrc2018_dev, chronoqa) or path")
    s.add_argument("--mode", choices=(*MODES, "all"), default="hybrid")
    s.add_argument("--limit", type=int, default=None, help="first N questions only")
    s.add_argument("--out", default=None, help="run folder (default eval/runs/<set>/<timestamp>)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(handler=_with_tail(cmd_run))
    s = ev.add_parser("score", help="(re)score a run folder: metrics.json, report.md, plots")
    s.add_argument("run_dir")
    s.set_defaults(handler=cmd_score)
    s = ev.add_parser("compare", help="compare a run with its baseline (exit 1 on a drop)")
    s.add_argument("run_dir")
    s.add_argument("--baseline", default=None, help="baseline file (default eval/baselines/<set>.json)")
    s.set_defaults(handler=cmd_compare)
    s = ev.add_parser("baseline", help="write or update the baseline file from a run")
    s.add_argument("run_dir")
    s.add_argument("--baseline", default=None, help="baseline file (default eval/baselines/<set>.json)")
    s.set_defaults(handler=cmd_baseline)


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
    scli._extra_commands = lambda: [*original(), register]  # type: ignore[assignment]
    try:
        return service_main(argv)
    finally:
        scli._extra_commands = original  # type: ignore[assignment]


def _registered() -> list[str]:
    from importlib.metadata import entry_points

    return [ep.name for ep in entry_points(group="policyqa.commands")]


if __name__ == "__main__":
    raise SystemExit(main())
