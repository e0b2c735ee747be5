"""Loading stored articles: `<documents folder>/<doc_id>.md` = YAML front matter + the body as captured.

Loading never writes: the stored body is the ground truth that cleaned text and citations derive from.
A bad file is reported (file + problem, in Chinese and English) and skipped; the others still load.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from corpus.errors import BilingualError

SEEDS_DIR = Path(__file__).resolve().parent / "seeds"  # the embedded default corpus

DOC_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
_DATE_RE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
REQUIRED_FIELDS = ("title", "source")
# A document without a known date has none (`date` absent or empty → ""): no date is ever made up. Files
# stored before that rule carry the day they were uploaded, marked by this evidence; they read as undated.
UPLOAD_DATE_EVIDENCE = "上传日期"
# libyaml's parser with the safe constructor: the same values as yaml.safe_load, about 9x faster (it
# matters for corpora of thousands of short documents, e.g. the external evaluation sets).
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    date: str  # ISO (YYYY, YYYY-MM or YYYY-MM-DD), or "" when the document has no known date
    date_inferred: bool
    source: str
    region: str
    url: str | None
    raw: str  # the body exactly as stored (after the front matter)
    path: Path
    content_hash: str  # sha256 of the whole stored file
    extra: Mapping[str, str] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "title": self.title,
            "date": self.date,
            "date_inferred": self.date_inferred,
            "source": self.source,
            "region": self.region,
            "url": self.url,
            **dict(self.extra),
        }


@dataclass(frozen=True)
class LoadProblem:
    path: Path
    code: str
    message_zh: str
    message_en: str

    def __str__(self) -> str:
        return f"{self.path.name}: {self.message_en} / {self.message_zh}"


class DocumentError(BilingualError):
    """A single document is invalid."""


@dataclass(frozen=True)
class CorpusLoad:
    documents: tuple[Document, ...]
    problems: tuple[LoadProblem, ...]

    def by_id(self) -> dict[str, Document]:
        return {d.doc_id: d for d in self.documents}


def validate_date(value: str) -> str:
    """ISO date, possibly partial (`2022`, `2022-09`, `2022-09-26`); returns it normalised."""
    m = _DATE_RE.match(value.strip())
    if not m:
        raise DocumentError("bad_date", f"日期“{value}”不是 ISO 日期（YYYY、YYYY-MM 或 YYYY-MM-DD）",
                            f"date {value!r} is not an ISO date (YYYY, YYYY-MM or YYYY-MM-DD)")
    year, month, day = m.group(1), m.group(2), m.group(3)
    try:
        dt.date(int(year), int(month or 1), int(day or 1))
    except ValueError as exc:
        raise DocumentError("bad_date", f"日期“{value}”不存在", f"date {value!r} does not exist") from exc
    return value.strip()


def validate_doc_id(doc_id: str) -> str:
    if not DOC_ID_RE.match(doc_id) or ".." in doc_id:
        raise DocumentError(
            "bad_doc_id",
            f"文档编号“{doc_id}”无效：只能用小写字母、数字和 . _ -，以字母或数字开头，最长128个字符",
            f"doc_id {doc_id!r} is invalid: use lowercase letters, digits and . _ - only, "
            "starting with a letter or digit, at most 128 characters",
        )
    return doc_id


def split_document(data: bytes) -> tuple[dict[str, Any], str]:
    """A stored file's front matter (as YAML values) and its body, exactly as stored. Raises DocumentError."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError("bad_encoding", f"不是有效的 UTF-8 编码（第 {exc.start} 字节）",
                            f"not valid UTF-8 (byte {exc.start})") from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    m = _FRONT_MATTER_RE.match(text)
    if not m:
        raise DocumentError("no_front_matter", "缺少以 --- 包围的 YAML 文件头",
                            "missing YAML front matter between --- lines")
    try:
        meta = yaml.load(m.group(1), Loader=_YAML_LOADER) or {}  # a safe loader (CSafeLoader or SafeLoader)
    except yaml.YAMLError as exc:
        raise DocumentError("bad_front_matter", f"文件头不是有效的 YAML：{exc}",
                            f"front matter is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        raise DocumentError("bad_front_matter", "文件头必须是键值对", "front matter must be a mapping")
    return {str(k): v for k, v in meta.items()}, text[m.end():]


def parse_document(data: bytes, path: Path) -> Document:
    """Parse one stored file. Raises DocumentError naming the problem."""
    meta, body = split_document(data)
    missing = [k for k in REQUIRED_FIELDS if meta.get(k) in (None, "")]
    if missing:
        raise DocumentError("missing_field", f"文件头缺少字段：{', '.join(missing)}",
                            f"front matter lacks field(s): {', '.join(missing)}")
    if not body.strip():
        raise DocumentError("empty_body", "正文为空", "the article body is empty")
    raw_date = meta.get("date")
    date_str = raw_date.isoformat() if isinstance(raw_date, dt.date) else str(raw_date or "")
    date = validate_date(date_str) if date_str.strip() else ""
    date_inferred = bool(meta.get("date_inferred", False))
    if date_inferred and str(meta.get("date_evidence") or "").startswith(UPLOAD_DATE_EVIDENCE):
        date, date_inferred = "", False  # the day it was uploaded, not a date of the document
    doc_id = validate_doc_id(str(meta.get("doc_id") or path.stem))
    known = {"doc_id", "title", "date", "date_inferred", "source", "region", "url"}
    extra = {k: str(v) for k, v in meta.items() if k not in known and v is not None}
    return Document(
        doc_id=doc_id,
        title=str(meta["title"]).strip(),
        date=date,
        date_inferred=date_inferred,
        source=str(meta["source"]).strip(),
        region=str(meta.get("region") or "").strip(),
        url=str(meta["url"]).strip() if meta.get("url") else None,
        raw=body,
        path=path,
        content_hash=hashlib.sha256(data).hexdigest(),
        extra=extra,
    )


def load_document(path: Path) -> Document:
    return parse_document(path.read_bytes(), path)


def iter_document_files(raw_dir: Path) -> Iterable[Path]:
    return sorted(p for p in raw_dir.glob("*.md") if p.is_file() and not p.name.startswith("."))


def load_corpus(raw_dir: Path = SEEDS_DIR) -> CorpusLoad:
    """Load every `*.md` under raw_dir (sorted by file name, so duplicates resolve the same way each time)."""
    docs: list[Document] = []
    problems: list[LoadProblem] = []
    seen: dict[str, Path] = {}
    for path in iter_document_files(raw_dir):
        try:
            doc = load_document(path)
        except DocumentError as exc:
            problems.append(LoadProblem(path, exc.code, exc.message_zh, exc.message_en))
            continue
        except OSError as exc:
            problems.append(LoadProblem(path, "unreadable", f"无法读取：{exc}", f"cannot read: {exc}"))
            continue
        if doc.doc_id in seen:
            first = seen[doc.doc_id].name
            problems.append(LoadProblem(path, "duplicate_doc_id",
                                        f"文档编号“{doc.doc_id}”与 {first} 重复，已跳过",
                                        f"doc_id {doc.doc_id!r} duplicates {first}; skipped"))
            continue
        seen[doc.doc_id] = path
        docs.append(doc)
    return CorpusLoad(tuple(docs), tuple(problems))


def render_document(meta: Mapping[str, Any], body: str) -> str:
    """Front matter + body, the stored form of a document (used when documents are added)."""
    head = yaml.safe_dump(dict(meta), allow_unicode=True, sort_keys=False, default_flow_style=False)
    return f"---\n{head}---\n{body}"


def seed_documents(target: Path, seeds: Path = SEEDS_DIR) -> bool:
    """Create the documents folder with the embedded seed articles when it does not exist yet.

    Only a missing folder is seeded: one an operator emptied stays empty. The copy is made in a hidden
    sibling and renamed into place, so a crash never leaves a half-seeded folder. Returns True when it
    seeded.
    """
    if target.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.seeding-{uuid.uuid4().hex[:8]}"
    shutil.copytree(seeds, tmp, ignore=shutil.ignore_patterns(".*", "__pycache__"))
    try:
        os.rename(tmp, target)
    except OSError:  # another process seeded it first
        shutil.rmtree(tmp, ignore_errors=True)
        return False
    return True


class StoredIds:
    """The doc_ids stored in a folder, read again only when the folder changed (its mtime moves on every
    file added, renamed or removed), so asking on every request costs one stat."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cached: tuple[int, frozenset[str]] | None = None

    def __call__(self) -> frozenset[str]:
        try:
            stamp = self.folder.stat().st_mtime_ns
        except FileNotFoundError:
            return frozenset()
        cached = self._cached
        if cached is None or cached[0] != stamp:
            cached = (stamp, frozenset(d.doc_id for d in load_corpus(self.folder).documents))
            self._cached = cached
        return cached[1]
