"""External sets whose corpus is a folder of original files (eval/external/<name>/source.json).

The regulations set is 249 Word files that live outside the repository (`../shared/corpora/regulations/raw/`,
beside the clone). They are ingested exactly as `policyqa corpus add` ingests an upload —
`service.docstore.prepare_from_file` — into `eval/cache/<name>/corpus/`: one stored `.md` per file,
its original bytes and provenance map under `.originals/`, with the default cleaning (not verbatim).

* **Ids.** The external id is the file name (what the question set's `gold_docs` hold). The policyqa doc id
  is `<id_prefix>-<first 12 hex of sha256(file name)>`: ASCII, deterministic, independent of file order.
  The mapping is stored in `eval/cache/<name>/ids.json` like the other external sets, so runs report file
  names.
* **Failures.** A file that cannot be extracted (a damaged or encrypted one; all 249 regulations are read today) is
  listed in `eval/cache/<name>/ingest.json` and reported, and the run goes on without it.
* **Writes.** A stored file is rewritten only when its content changes. The upload path stamps each file with
  the time it was prepared (`added`); that stamp alone does not count as a change, so an unchanged folder keeps
  its bytes and corpus fingerprint and the index is not rebuilt on the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from corpus.documents import DocumentError, validate_doc_id
from corpus.provenance import ORIGINALS_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_FILE = "source.json"
INGEST_FILE = "ingest.json"
# front matter the upload path writes from the clock, not from the file
_CLOCK_KEYS = ("added",)


@dataclass(frozen=True)
class Source:
    """source.json: where the files are (relative to ../shared/, see shared_dir) and how to cite them."""

    raw_dir: Path
    id_prefix: str
    label: str
    suffixes: tuple[str, ...]


@dataclass(frozen=True)
class Ingested:
    ids: dict[str, str]  # file name → doc id, for every file of the folder
    written: int
    unchanged: int
    removed: int
    failed: tuple[tuple[str, str], ...]  # (file name, reason) of the files that could not be ingested


def shared_dir() -> Path:
    """`../shared` beside the clone (as in CI); from a git worktree, the one beside its main checkout;
    POLICYQA_SHARED_DIR overrides both."""
    if os.environ.get("POLICYQA_SHARED_DIR"):
        return Path(os.environ["POLICYQA_SHARED_DIR"])
    beside = REPO_ROOT.parent / "shared"
    dot_git = REPO_ROOT / ".git"
    if beside.is_dir() or not dot_git.is_file():
        return beside
    # a worktree's .git file says "gitdir: <main>/.git/worktrees/<name>"
    line = dot_git.read_text(encoding="utf-8").strip()
    gitdir = Path(line.removeprefix("gitdir:").strip())
    main = gitdir.parent.parent.parent if gitdir.parent.name == "worktrees" else None
    return main.parent / "shared" if main is not None and (main.parent / "shared").is_dir() else beside


def read_source(folder: Path, raw_dir: Path | None = None) -> Source:
    data = json.loads((folder / SOURCE_FILE).read_text(encoding="utf-8"))
    where = raw_dir or (shared_dir() / str(data["raw_dir"]))
    label = ", ".join(str(data[k]) for k in ("dataset", "source_repo", "license") if data.get(k))
    return Source(where, str(data.get("id_prefix") or folder.name), label or folder.name,
                  tuple(str(s).lower() for s in data.get("suffixes") or (".doc", ".docx")))


def source_files(source: Source) -> list[Path]:
    if not source.raw_dir.is_dir():
        raise FileNotFoundError(
            f"the corpus folder {source.raw_dir} is missing: this set reads its original files from ../shared/ "
            f"beside the repository (or POLICYQA_SHARED_DIR) / 缺少语料目录 {source.raw_dir}：该评测集从仓库旁的 "
            f"../shared/ 目录（或 POLICYQA_SHARED_DIR）读取原始文件")
    return sorted(p for p in source.raw_dir.iterdir() if p.is_file() and p.suffix.lower() in source.suffixes)


def doc_id_for(file_name: str, prefix: str) -> str:
    return validate_doc_id(f"{prefix}-{hashlib.sha256(file_name.encode('utf-8')).hexdigest()[:12]}")


def build_ids(names: list[str], prefix: str) -> dict[str, str]:
    ids = {n: doc_id_for(n, prefix) for n in names}
    if len(set(ids.values())) != len(ids):  # 48-bit prefixes of sha256: never for a few thousand names
        raise ValueError("file names do not map one-to-one onto doc ids")
    return ids


def _split(data: bytes) -> tuple[dict[str, Any], bytes] | None:
    if not data.startswith(b"---\n"):
        return None
    end = data.find(b"\n---\n", 4)
    if end < 0:
        return None
    meta = yaml.safe_load(data[4:end + 1].decode("utf-8"))
    return (meta if isinstance(meta, dict) else {}), data[end + 5:]


def same_but_clock(old: bytes, new: bytes) -> bool:
    """Equal stored files, or files that differ only in the time the upload path prepared them (`added`)."""
    if old == new:
        return True
    a, b = _split(old), _split(new)
    if a is None or b is None or a[1] != b[1]:
        return False
    ma, mb = dict(a[0]), dict(b[0])
    for key in _CLOCK_KEYS:
        ma.pop(key, None)
        mb.pop(key, None)
    return ma == mb


def write_if_changed(path: Path, data: bytes, *, same: Any = None) -> bool:
    """Write `data` unless the file holds it already (or `same(old, new)` says they are equal); True when written.
    Unchanged files keep their bytes, so an unchanged set keeps its corpus fingerprint and is not rebuilt."""
    try:
        old = path.read_bytes()
        if old == data or (same is not None and same(old, data)):
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def _reason(exc: Exception) -> str:
    code = getattr(exc, "code", None)
    en = getattr(exc, "message_en", None)
    zh = getattr(exc, "message_zh", None)
    if en and zh:
        return f"[{code}] {en} / {zh}"
    return f"{type(exc).__name__}: {exc}"


def ingest(source: Source, corpus_dir: Path) -> Ingested:
    """Prepare every file through the upload path; write what changed; remove documents no longer there."""
    from service.api.errors import ApiError
    from service.docstore import prepare_from_file

    files = source_files(source)
    ids = build_ids([p.name for p in files], source.id_prefix)
    originals = corpus_dir / ORIGINALS_DIR
    originals.mkdir(parents=True, exist_ok=True)
    written = unchanged = 0
    failed: list[tuple[str, str]] = []
    wanted: set[str] = set()
    for path in files:
        doc_id = ids[path.name]
        try:
            prepared = prepare_from_file(path.read_bytes(), path.name, corpus_dir, doc_id, source=source.label)
        except (DocumentError, ApiError, OSError) as exc:
            failed.append((path.name, _reason(exc)))
            continue
        except Exception as exc:  # a reader's crash on one real file must not stop a run over 249
            failed.append((path.name, _reason(exc)))
            continue
        md = f"{doc_id}.md"
        wanted.add(md)
        changed = write_if_changed(corpus_dir / md, prepared.data, same=same_but_clock)
        if prepared.original is not None:
            orig = prepared.original
            for name, data in ((f"{doc_id}{orig.suffix}", orig.data), (f"{doc_id}.provenance.json", orig.provenance)):
                wanted.add(f"{ORIGINALS_DIR}/{name}")
                changed = write_if_changed(originals / name, data) or changed
        written += changed
        unchanged += not changed
    removed = 0
    for p in [*corpus_dir.glob("*.md"), *originals.iterdir()]:
        rel = p.name if p.parent == corpus_dir else f"{ORIGINALS_DIR}/{p.name}"
        if p.is_file() and rel not in wanted:
            p.unlink()
            removed += p.suffix == ".md"
    return Ingested(ids, written, unchanged, removed, tuple(failed))


def write_report(root: Path, result: Ingested, source: Source) -> None:
    report: Mapping[str, Any] = {
        "raw_dir": str(source.raw_dir), "files": len(result.ids), "ingested": len(result.ids) - len(result.failed),
        "failed": [{"file": f, "reason": r} for f, r in result.failed],
    }
    write_if_changed(root / INGEST_FILE, (json.dumps(report, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
