"""Adding and deleting stored articles durably, validated exactly like the corpus loader.

A document is acknowledged only after its file is on disk for good: written to a temporary file in the
corpus folder, fsynced, linked into place under its final name (never overwriting), and the folder
fsynced. Deleting moves the file into `<corpus_dir>/.trash/` (outside the loader's `*.md` glob) the same
way. Adds and deletes from every worker process are serialised by a file lock.

A web page, PDF or Word file becomes `<doc_id>.md` (front matter + the extracted text, see corpus.formats);
its original bytes are kept unmodified in `<corpus_dir>/.originals/<doc_id>.<ext>` with the provenance map
`<doc_id>.provenance.json` beside them (offsets into the stored body → PDF page / section path). Those two
are written before the `.md`, which is the commit point: a crash in between leaves only files the loader
never reads, replaced by the next add of that doc_id.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpus.documents import (
    REQUIRED_FIELDS,
    CorpusLoad,
    Document,
    DocumentError,
    LoadProblem,
    load_corpus,
    load_document,
    parse_document,
    render_document,
    split_document,
    validate_date,
    validate_doc_id,
)
from corpus.formats import PROVENANCE_VERSION, Extracted, document_date, extract
from corpus.formats.regulation import KEYS as REGULATION_KEYS
from corpus.formats.sniff import EXTENSIONS, KIND_SUFFIX, TEXT_KINDS, content_kind, detect
from corpus.provenance import ORIGINALS_DIR
from index.generations import fsync_dir, remove_old_files
from service.api.errors import ApiError

TRASH_DIR = ".trash"
STALE_TEMP_S = 60.0  # a temporary file this old belongs to no running add
PLACEHOLDER_ID = "policyqa-upload-without-doc-id"
DEFAULT_SOURCE = "管理员上传 / admin upload"


@dataclass(frozen=True)
class NewDocumentFields:
    """The JSON form of a new document (validated at the HTTP edge, passed here as plain data)."""

    title: str
    text: str
    date: str | None = None
    source: str | None = None
    url: str | None = None
    doc_id: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class OriginalFile:
    """An uploaded file as received (stored unmodified) and its provenance map (JSON)."""

    suffix: str  # ".pdf", ".html", ".docx", ".doc", ".txt"…: the kind the bytes are
    data: bytes
    provenance: bytes


@dataclass(frozen=True)
class PreparedDocument:
    """The exact bytes that will be stored and the Document the corpus loader reads from them."""

    data: bytes
    document: Document
    original: OriginalFile | None = None


@dataclass(frozen=True)
class Deleted:
    doc_id: str
    trashed_as: str


@dataclass(frozen=True)
class Corrected:
    document: Document  # as stored now
    changed: tuple[str, ...]  # the fields whose value changed (empty: nothing to write, nothing written)
    trashed_as: str | None  # the previous file, kept in the trash


# Fields a correction may not touch: they tie the document to its id and its original file, or record history.
PROTECTED_FIELDS = frozenset({"doc_id", "original", "original_sha256", "original_format", "original_name",
                              "provenance", "added", "corrected", "corrected_fields", "date_inferred",
                              "date_evidence"})
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_FIELD_CHARS = 2000


def check_corrections(changes: Mapping[str, Any]) -> dict[str, str | None]:
    """Validate a correction {field: new value or None (remove it)}; ApiError 422 naming the field."""
    def bad(code: str, field: str, zh: str, en: str) -> ApiError:
        return ApiError(422, code, zh, en, detail={"field": field[:100]})

    if not changes:
        raise ApiError(422, "no_changes", "没有要更正的字段", "no field to correct")
    out: dict[str, str | None] = {}
    for key, value in changes.items():
        if not _FIELD_NAME.match(key):
            raise bad("bad_field", key, f"字段名“{key[:100]}”无效：只能用小写字母、数字和下划线",
                      f"field name {key[:100]!r} is invalid: use lowercase letters, digits and _")
        if key in PROTECTED_FIELDS:
            raise bad("protected_field", key, f"字段“{key}”不能更正", f"field {key!r} cannot be corrected")
        if value is None or (isinstance(value, str) and not value.strip()):
            if key in REQUIRED_FIELDS:
                raise bad("missing_field", key, f"字段“{key}”不能为空", f"field {key!r} cannot be empty")
            out[key] = None
            continue
        if not isinstance(value, str):
            raise bad("bad_value", key, f"字段“{key}”的值必须是字符串", f"field {key!r} must be a string")
        value = value.strip()
        if len(value) > MAX_FIELD_CHARS:
            raise bad("bad_value", key, f"字段“{key}”超过 {MAX_FIELD_CHARS} 个字符",
                      f"field {key!r} is longer than {MAX_FIELD_CHARS} characters")
        if key == "date" or key.endswith("_date"):
            try:
                value = validate_date(value)
            except DocumentError as exc:
                raise bad(exc.code, key, exc.message_zh, exc.message_en) from exc
        out[key] = value
    return out


def generated_doc_id(body: str) -> str:
    return "doc-" + hashlib.sha256(body.strip().encode("utf-8")).hexdigest()[:12]


def check_doc_id(doc_id: str) -> str:
    """validate_doc_id, reported as a 422 in the API's error shape."""
    try:
        return validate_doc_id(doc_id)
    except DocumentError as exc:
        raise ApiError(422, exc.code, exc.message_zh, exc.message_en, detail={"doc_id": doc_id[:200]}) from exc


def _now() -> str:
    """The time a document was added or corrected (UTC, to the second): never used as its date."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def prepare_from_fields(fields: NewDocumentFields, corpus_dir: Path) -> PreparedDocument:
    doc_id = check_doc_id(fields.doc_id) if fields.doc_id else generated_doc_id(fields.text)
    meta: dict[str, Any] = {"doc_id": doc_id, "title": fields.title}
    if fields.date:  # no date given: the document has none (never the day it was added)
        meta["date"] = fields.date
        meta["date_inferred"] = False
    meta["source"] = fields.source or DEFAULT_SOURCE
    if fields.region:
        meta["region"] = fields.region
    if fields.url:
        meta["url"] = fields.url
    meta["added"] = _now()
    data = render_document(meta, fields.text).encode("utf-8")
    doc = parse_document(data, corpus_dir / f"{doc_id}.md")
    if doc.doc_id != doc_id:  # pragma: no cover - render/parse disagree: never store it
        raise ApiError(500, "internal_error", "文档编号不一致", "doc_id changed on parsing")
    return PreparedDocument(data, doc)


def prepare_from_markdown(data: bytes, corpus_dir: Path, doc_id: str | None = None) -> PreparedDocument:
    """An uploaded Markdown file, stored byte for byte. Without a `doc_id` in its front matter the file
    name carries one: the given `doc_id` or `doc-<sha256(body)[:12]>`."""
    if doc_id is not None:
        check_doc_id(doc_id)
    doc = parse_document(data, corpus_dir / f"{PLACEHOLDER_ID}.md")
    if doc.doc_id == PLACEHOLDER_ID:  # the front matter names no doc_id
        stem = doc_id or generated_doc_id(doc.raw)
        doc = parse_document(data, corpus_dir / f"{stem}.md")
    elif doc_id is not None and doc_id != doc.doc_id:
        raise ApiError(422, "doc_id_mismatch",
                       f"表单中的 doc_id “{doc_id}”与文件头中的“{doc.doc_id}”不一致",
                       f"form field doc_id {doc_id!r} differs from the front matter's {doc.doc_id!r}")
    return PreparedDocument(data, doc)


def _has_front_matter(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf").startswith(b"---")


def prepare_from_file(data: bytes, filename: str, corpus_dir: Path, doc_id: str | None = None, *,
                      title: str | None = None, date: str | None = None, source: str | None = None,
                      ) -> PreparedDocument:
    """Any supported file, read as what its bytes are (corpus.formats.sniff; a .doc holding a zip is a docx).

    Markdown (and text) with front matter is stored byte for byte as before. Anything else is extracted
    (corpus.formats) into front matter + text; `title`, `date` and `source` override what was found. Raises
    DocumentError / FormatError (422) naming the file and the cause.
    """
    name = Path(filename).name or "upload"
    suffix = Path(name).suffix.lower()
    if suffix in (".md", ".markdown") and content_kind(data) in TEXT_KINDS:  # the stored format: parse errors
        return prepare_from_markdown(data, corpus_dir, doc_id)  # keep their codes
    kind = detect(data, name)
    if kind == "text" and _has_front_matter(data):
        return prepare_from_markdown(data, corpus_dir, doc_id)
    ex = extract(data, name, kind)
    return prepare_extracted(ex, data, name, corpus_dir, doc_id, title=title, date=date, source=source)


def prepare_extracted(ex: Extracted, original: bytes, filename: str, corpus_dir: Path, doc_id: str | None = None,
                      *, title: str | None = None, date: str | None = None, source: str | None = None,
                      ) -> PreparedDocument:
    doc_id = check_doc_id(doc_id) if doc_id else generated_doc_id(ex.text)
    suffix = Path(filename).suffix.lower()
    if EXTENSIONS.get(suffix) != ex.kind and not (ex.kind == "text" and suffix in (".md", ".markdown")):
        suffix = KIND_SUFFIX.get(ex.kind, ".bin")  # stored under what it is: a .doc holding a zip as .docx
    found = ex.metadata
    meta: dict[str, Any] = {"doc_id": doc_id, "title": title or found.get("title") or Path(filename).stem}
    found_date, evidence = document_date(found)
    if date:
        meta["date"], meta["date_inferred"] = date, False
    elif found_date:
        meta["date"], meta["date_inferred"], meta["date_evidence"] = found_date, False, evidence
    # else no date: none is made up
    meta["source"] = source or found.get("source") or f"{DEFAULT_SOURCE}：{filename}"
    if found.get("url"):
        meta["url"] = found["url"]
    for key in dict.fromkeys(("doc_number", "issuer", "written_date", "published_date", "effective_date", "validity",
                              *REGULATION_KEYS, "author", "pages")):
        if found.get(key):
            meta[key] = found[key]
    meta["added"] = _now()
    meta["original_format"] = ex.kind
    meta["original_name"] = filename[:200]
    meta["original"] = f"{ORIGINALS_DIR}/{doc_id}{suffix}"
    meta["original_sha256"] = hashlib.sha256(original).hexdigest()
    meta["provenance"] = f"{ORIGINALS_DIR}/{doc_id}.provenance.json"
    data = render_document(meta, ex.text).encode("utf-8")
    doc = parse_document(data, corpus_dir / f"{doc_id}.md")
    if doc.doc_id != doc_id or doc.raw != ex.text:  # pragma: no cover - offsets would not match: never store
        raise ApiError(500, "internal_error", "文档编号或正文不一致", "doc_id or body changed on parsing")
    provenance = {"version": PROVENANCE_VERSION, "doc_id": doc_id, "format": ex.kind, "original": f"{doc_id}{suffix}",
                  "original_name": filename[:200], "original_sha256": meta["original_sha256"],
                  "offsets": "body of the stored .md (Document.raw), [start, end)", "spans": ex.provenance()}
    prov = json.dumps(provenance, ensure_ascii=False, indent=1).encode("utf-8")
    return PreparedDocument(data, doc, OriginalFile(suffix, original, prov))


def _body_key(doc: Document) -> str:
    return doc.raw.strip()


class DocumentStore:
    """The corpus folder as the HTTP service sees it."""

    def __init__(self, corpus_dir: Path, lock_path: Path) -> None:
        self.corpus_dir = corpus_dir
        self.lock_path = lock_path

    # --- reading -------------------------------------------------------------------------------------
    def load(self) -> CorpusLoad:
        if not self.corpus_dir.is_dir():
            return CorpusLoad((), ())
        return load_corpus(self.corpus_dir)

    def get(self, doc_id: str) -> Document | None:
        path = self.corpus_dir / f"{doc_id}.md"
        if path.is_file():
            with contextlib.suppress(DocumentError, OSError):
                doc = load_document(path)
                if doc.doc_id == doc_id:
                    return doc
        return self.load().by_id().get(doc_id)

    def problems(self) -> tuple[LoadProblem, ...]:
        return self.load().problems

    # --- writing -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock_path.open("a+") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def add(self, prepared: PreparedDocument) -> Document:
        """Store a new document durably. Raises ApiError 409 for a duplicate id or duplicate content."""
        doc = prepared.document
        self.corpus_dir.mkdir(parents=True, exist_ok=True)
        target = self.corpus_dir / f"{doc.doc_id}.md"
        with self._locked():
            existing = self.load().by_id()
            same_id = existing.get(doc.doc_id)
            key = _body_key(doc)
            if same_id is not None and _body_key(same_id) == key:
                raise _duplicate_content(same_id.doc_id)
            if same_id is not None or target.exists():
                raise ApiError(409, "doc_id_exists",
                               f"文档编号“{doc.doc_id}”已存在且内容不同：请换一个编号，或先删除原文档",
                               f"doc_id {doc.doc_id!r} already exists with different content: choose another "
                               "doc_id or delete the existing document first",
                               detail={"doc_id": doc.doc_id})
            for other in existing.values():
                if _body_key(other) == key:
                    raise _duplicate_content(other.doc_id)
            written = self._write_original(doc.doc_id, prepared.original) if prepared.original else []
            try:
                _durable_create(target, prepared.data)
            except BaseException:
                for path in written:  # nothing half-written: no original without its document
                    with contextlib.suppress(OSError):
                        path.unlink()
                raise
        return doc

    def remove_stale_temporaries(self, older_than_s: float = STALE_TEMP_S) -> list[str]:
        """Delete the hidden temporary files of adds cut short by a crash (never acknowledged, so nothing is
        lost). Only old ones: a younger one may belong to an add still running in another worker."""
        return [name for folder in (self.corpus_dir, self.corpus_dir / ORIGINALS_DIR)
                for name in remove_old_files(folder, ".*.tmp-*", older_than_s)]

    def _originals_of(self, doc_id: str) -> list[Path]:
        folder = self.corpus_dir / ORIGINALS_DIR
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.glob(f"{doc_id}.*")
                      if p.name == f"{doc_id}.provenance.json" or (p.suffix and p.stem == doc_id))

    def _write_original(self, doc_id: str, original: OriginalFile) -> list[Path]:
        folder = self.corpus_dir / ORIGINALS_DIR
        if not folder.is_dir():
            folder.mkdir(exist_ok=True)
            fsync_dir(self.corpus_dir)
        for stale in self._originals_of(doc_id):  # left by a crash before its .md was written
            stale.unlink()
        written: list[Path] = []
        try:
            for path, data in ((folder / f"{doc_id}{original.suffix}", original.data),
                               (folder / f"{doc_id}.provenance.json", original.provenance)):
                _durable_create(path, data)
                written.append(path)
        except BaseException:
            for path in written:
                with contextlib.suppress(OSError):
                    path.unlink()
            raise
        return written

    def delete(self, doc_id: str) -> Deleted:
        """Move the document's file to the trash folder durably. Raises ApiError 404 when unknown."""
        with self._locked():
            path = self._path_of(doc_id)
            if path is None:
                raise not_found(doc_id)
            trash = self.corpus_dir / TRASH_DIR
            if not trash.is_dir():
                trash.mkdir(exist_ok=True)
                fsync_dir(self.corpus_dir)
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
            dest = trash / f"{doc_id}.{stamp}-{uuid.uuid4().hex[:8]}.md"
            os.rename(path, dest)
            originals = self._originals_of(doc_id)
            for original in originals:  # the original file and its provenance go along
                os.rename(original, trash / f"{dest.stem}.original{original.name[len(doc_id):]}")
            if originals:
                fsync_dir(self.corpus_dir / ORIGINALS_DIR)
            fsync_dir(trash)
            fsync_dir(self.corpus_dir)
        return Deleted(doc_id, f"{TRASH_DIR}/{dest.name}")

    def correct(self, doc_id: str, changes: Mapping[str, str | None]) -> Corrected:
        """Rewrite a document's front matter with `changes` (checked by check_corrections; None removes a
        field), the body byte for byte. The new file is written and fsynced first, the old one linked into the
        trash, then the new one renamed over it: at every moment the document is stored whole, old or new.
        Raises ApiError 404 when unknown, DocumentError (422) when the result would not load."""
        with self._locked():
            path = self._path_of(doc_id)
            if path is None:
                raise not_found(doc_id)
            data = path.read_bytes()
            before = parse_document(data, path)
            meta, body = split_document(data)
            changed = []
            for key, value in changes.items():
                if value is None:
                    if key in meta:
                        del meta[key]
                        changed.append(key)
                elif key not in meta or str(meta[key]) != value:
                    meta[key] = value
                    changed.append(key)
            if not changed:
                return Corrected(before, (), None)
            if "date" in changed:  # a date a person gave: not inferred, and the old evidence no longer holds
                meta.pop("date_evidence", None)
                if "date" in meta:
                    meta["date_inferred"] = False
                else:
                    meta.pop("date_inferred", None)
            earlier = [f for f in str(meta.get("corrected_fields") or "").split(",") if f.strip()]
            meta["corrected"] = _now()
            meta["corrected_fields"] = ",".join(dict.fromkeys([*(f.strip() for f in earlier), *changed]))
            new_data = render_document(meta, body).encode("utf-8")
            after = parse_document(new_data, path)
            if after.doc_id != before.doc_id or after.raw != before.raw:  # pragma: no cover - never store it
                raise ApiError(500, "internal_error", "文档编号或正文不一致", "doc_id or body changed on rewriting")
            tmp = _durable_temp(path, new_data)
            try:
                trash = self.corpus_dir / TRASH_DIR
                if not trash.is_dir():
                    trash.mkdir(exist_ok=True)
                    fsync_dir(self.corpus_dir)
                stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
                dest = trash / f"{doc_id}.{stamp}-{uuid.uuid4().hex[:8]}.corrected.md"
                try:
                    os.link(path, dest)  # the old file stays in place until the new one replaces it
                except OSError:
                    shutil.copyfile(path, dest)
                    with dest.open("rb") as f:
                        os.fsync(f.fileno())
                fsync_dir(trash)
                os.replace(tmp, path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            fsync_dir(self.corpus_dir)
        return Corrected(load_document(path), tuple(changed), f"{TRASH_DIR}/{dest.name}")

    def _path_of(self, doc_id: str) -> Path | None:
        doc = self.load().by_id().get(doc_id)
        if doc is not None:
            return doc.path
        fallback = self.corpus_dir / f"{doc_id}.md"  # a stored file the loader rejects is still deletable
        return fallback if fallback.is_file() else None


def not_found(doc_id: str) -> ApiError:
    return ApiError(404, "document_not_found", f"没有文档“{doc_id}”", f"no document {doc_id!r}",
                    detail={"doc_id": doc_id})


def _duplicate_content(existing_id: str) -> ApiError:
    return ApiError(409, "duplicate_content", f"内容相同的文档已存在：{existing_id}",
                    f"a document with the same text already exists: {existing_id}",
                    detail={"doc_id": existing_id})


def _durable_temp(target: Path, data: bytes) -> Path:
    """`data` in a hidden temporary file beside `target` (the loader skips dot files), fsynced."""
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    return tmp


def _durable_create(target: Path, data: bytes) -> None:
    """Write `data` to `target` (which must not exist) so that it survives a crash once this returns."""
    folder = target.parent
    tmp = _durable_temp(target, data)
    try:
        try:
            os.link(tmp, target)  # fails instead of overwriting a file created meanwhile
        except FileExistsError as exc:
            raise ApiError(409, "doc_id_exists", f"文件 {target.name} 已存在", f"file {target.name} already exists",
                           detail={"doc_id": target.stem}) from exc
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            if target.exists():
                raise ApiError(409, "doc_id_exists", f"文件 {target.name} 已存在",
                               f"file {target.name} already exists", detail={"doc_id": target.stem}) from exc
            os.rename(tmp, target)  # file systems without hard links
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(folder)
