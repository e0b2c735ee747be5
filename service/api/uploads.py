"""A new document from an upload: JSON fields, a multipart file (Markdown with front matter, or a web page,
PDF, Word (.doc/.docx) or text file that corpus.formats extracts) or a text/markdown body, size-checked on the document
itself (not its encoding) and validated exactly like the corpus loader."""

from __future__ import annotations

import json
from pathlib import Path as FsPath
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from corpus.documents import DOC_ID_RE
from service.api.errors import ApiError, BodyTooLarge, validation_detail
from service.api.middleware import Message, Receive
from service.api.models import NewDocument
from service.docstore import (
    NewDocumentFields,
    PreparedDocument,
    prepare_from_fields,
    prepare_from_file,
    prepare_from_markdown,
)

DOC_ID_PATTERN = DOC_ID_RE.pattern
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})  # stored as they come: held to max_document_bytes


async def read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise BodyTooLarge(limit)
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise BodyTooLarge(limit)
    return bytes(buf)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def check_document_size(data: bytes | str, limit: int, what: str = "document") -> None:
    size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
    if size > limit:
        raise BodyTooLarge(limit, what)


async def prepare_upload(request: Request, body: bytes, corpus_dir: FsPath, max_doc: int,
                         max_file: int | None = None) -> PreparedDocument:
    """The uploaded document, validated; a document over max_doc bytes (a PDF, Word file or web page over
    max_file bytes) is refused before it is parsed."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json" or ctype.endswith("+json"):
        try:
            obj = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(422, "invalid_json", "请求体不是有效的 JSON（UTF-8）",
                           f"the request body is not valid JSON (UTF-8): {exc}") from exc
        try:
            new = NewDocument.model_validate(obj)
        except ValidationError as exc:
            detail = validation_detail(list(exc.errors()))
            raise ApiError(422, "validation_error", "文档字段无效", "invalid document fields", detail=detail) from exc
        check_document_size(new.text, max_doc)
        fields = NewDocumentFields(title=new.title, text=new.text, date=new.date, source=new.source, url=new.url,
                                   doc_id=new.doc_id, region=new.region)
        return prepare_from_fields(fields, corpus_dir)
    if ctype == "multipart/form-data":
        replay = Request(request.scope, _replay(body))
        try:
            form = await replay.form(max_files=1, max_fields=10, max_part_size=len(body) + 1)
        except StarletteHTTPException as exc:
            raise ApiError(400, "bad_multipart", "multipart 表单无法解析", f"cannot parse the multipart form: "
                           f"{exc.detail}") from exc
        filename: str | None = None
        try:
            upload = form.get("file")
            doc_id = form.get("doc_id")
            if isinstance(upload, UploadFile):
                data = await upload.read()
                filename = upload.filename
            elif isinstance(upload, str):
                data = upload.encode("utf-8")
            else:
                raise ApiError(422, "missing_file", "缺少 file 字段（Markdown、HTML、PDF、DOC、DOCX 或 TXT 文件）",
                               "the form lacks the `file` field (a Markdown, HTML, PDF, DOC, DOCX or TXT file)")
            if doc_id is not None and not isinstance(doc_id, str):
                raise ApiError(422, "bad_doc_id", "doc_id 字段必须是文本", "the doc_id field must be text")
            overrides: dict[str, str | None] = {}
            for key in ("title", "date", "source"):
                value = form.get(key)
                if value is not None and not isinstance(value, str):
                    raise ApiError(422, f"bad_{key}", f"{key} 字段必须是文本", f"the {key} field must be text")
                overrides[key] = (value.strip() or None) if isinstance(value, str) else None
        finally:
            await form.close()
        extracted = bool(filename) and FsPath(filename or "").suffix.lower() not in MARKDOWN_SUFFIXES
        if extracted and max_file is not None:
            check_document_size(data, max_file, "file")  # the extracted text is held to max_doc afterwards
        else:
            check_document_size(data, max_doc)
        if not filename:  # a plain form field: Markdown with front matter, as before
            return prepare_from_markdown(data, corpus_dir, doc_id or None)
        return prepare_from_file(data, filename, corpus_dir, doc_id or None, title=overrides["title"],
                                 date=overrides["date"], source=overrides["source"])
    if ctype in ("text/markdown", "text/x-markdown", "text/plain"):
        check_document_size(body, max_doc)
        return prepare_from_markdown(body, corpus_dir, request.query_params.get("doc_id") or None)
    raise ApiError(415, "unsupported_media_type", "请用 application/json、multipart/form-data 或 text/markdown 提交",
                   "send application/json, multipart/form-data (field `file`) or text/markdown",
                   detail={"content_type": ctype[:100]})


NEW_DOCUMENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": NewDocument.model_json_schema()},
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary",
                             "description": "Markdown with YAML front matter (title, date, source…), the "
                                            "stored format of corpus/seeds/*.md; or a .html/.htm page, .pdf "
                                            "(with a text layer), .doc/.docx (Word 97-2003 or 2007+, or Word's "
                                            "one-file XML) or .txt file: read as what its bytes are (a .doc "
                                            "holding a .docx is read as .docx), the text extracted, the "
                                            "original kept unmodified"},
                    "doc_id": {"type": "string", "pattern": DOC_ID_PATTERN,
                               "description": "used when the front matter names none"},
                    "title": {"type": "string", "description": "overrides the title found in the file"},
                    "date": {"type": "string", "description": "YYYY[-MM[-DD]]: overrides the date found"},
                    "source": {"type": "string", "description": "overrides the source found"}}}},
            "text/markdown": {"schema": {"type": "string"}},
        },
    }
}
