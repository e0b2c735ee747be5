"""Documents: list, read, add, correct and delete stored articles.

An add, correction or delete schedules an automatic rebuild (POLICYQA_AUTO_REBUILD); until it lands the list shows
the document as `indexing` (added) or `removing` (deleted). A deleted document is never cited again from
the moment its DELETE returns: the retriever leaves out documents whose files are gone.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from corpus.cleaning import clean_document
from corpus.formats.regulation import KEYS as REGULATION_KEYS
from corpus.provenance import original_path
from corpus.versions import VersionInfo, version_status
from index.store import LoadedIndex
from service.api.auth import admin_dependency
from service.api.errors import ApiError, bilingual, responses
from service.api.middleware import request_body_limit
from service.api.models import (
    DocumentCorrected,
    DocumentCorrection,
    DocumentCreated,
    DocumentDeleted,
    DocumentDetail,
    DocumentList,
)
from service.api.state import AppContext, context
from service.api.uploads import (
    DOC_ID_PATTERN,
    NEW_DOCUMENT_BODY,
    check_document_size,
    prepare_upload,
    read_body,
)
from service.docstore import check_corrections, check_doc_id, not_found
from service.settings import Settings

log = logging.getLogger("policyqa")

DocId = Annotated[str, Path(min_length=1, max_length=128, pattern=DOC_ID_PATTERN,
                            description="document id (lowercase ASCII slug)")]


POLICY_FIELDS = tuple(dict.fromkeys(("doc_number", "issuer", "written_date", "published_date", "effective_date",
                                     "validity", *REGULATION_KEYS, "corrected", "corrected_fields")))
ORIGINAL_TYPES = {  # content type, shown inline (else a download)
    "pdf": ("application/pdf", True),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", False),
    "doc": ("application/msword", False),
    "wordxml": ("application/xml", False),  # Word opens its one-file XML; a browser would only show markup
    "html": ("text/html", False),  # never rendered on this origin: its scripts would run as the page's
    "text": ("text/plain", True),
}


def summary(doc_meta: dict[str, Any], idx: LoadedIndex | None, content_hash: str | None,
            stored: bool = True, version: VersionInfo | None = None) -> dict[str, Any]:
    indexed_doc = idx.documents.get(doc_meta["doc_id"]) if idx is not None else None
    indexed = indexed_doc is not None and (content_hash is None or indexed_doc.content_hash == content_hash)
    out = {"doc_id": doc_meta["doc_id"], "title": doc_meta["title"], "date": doc_meta["date"],
           "date_inferred": bool(doc_meta.get("date_inferred", False)), "source": doc_meta["source"],
           "region": doc_meta.get("region") or "", "url": doc_meta.get("url"), "content_hash": content_hash,
           "chunks": indexed_doc.chunks if indexed_doc is not None else 0, "indexed": indexed,
           "stored": stored, "state": "removing" if not stored else "indexed" if indexed else "indexing"}
    out.update({k: str(doc_meta[k]) if doc_meta.get(k) else None for k in POLICY_FIELDS})
    out["version_current"] = out["superseded_by"] = out["version_group"] = None
    if version is not None and version.group:  # a regulation: is a newer version of it stored?
        out.update(version_current=version.current, superseded_by=version.superseded_by, version_group=version.group)
    fmt = doc_meta.get("original_format")
    out["original"] = ({"format": str(fmt), "name": str(doc_meta.get("original_name") or ""),
                        "url": f"/v1/documents/{doc_meta['doc_id']}/original"}
                       if fmt and stored and doc_meta.get("original") else None)
    return out


def router(settings: Settings) -> APIRouter:
    max_doc = settings.max_document_bytes
    max_file = settings.max_file_bytes
    max_body = request_body_limit(max_doc, max_file)
    require_admin = admin_dependency(settings.admin_token)
    auto = ("An automatic rebuild follows within POLICYQA_REBUILD_DELAY_S seconds" if settings.auto_rebuild
            else "Automatic rebuilds are off (POLICYQA_AUTO_REBUILD=false): `?rebuild=true` starts one")
    api = APIRouter(tags=["documents"])

    @api.get("/v1/documents", response_model=DocumentList,
             summary="List stored documents and their index state / 文档列表", responses=responses())
    def list_documents(ctx: Annotated[AppContext, Depends(context)]) -> dict[str, Any]:
        ctx.watcher.check(first=False)
        idx = ctx.watcher.loaded()
        loaded = ctx.store.load()
        versions = version_status(loaded.documents)
        docs = [summary(d.metadata(), idx, d.content_hash, version=versions.get(d.doc_id)) for d in loaded.documents]
        stored_ids = {d.doc_id for d in loaded.documents}
        pending = sorted(set(idx.documents) - stored_ids) if idx is not None else []
        problems = [{"file": p.path.name, "code": p.code, "message": bilingual(p.message_zh, p.message_en)}
                    for p in loaded.problems]
        return {"generation": idx.generation if idx is not None else None, "documents": docs,
                "pending_removal": pending, "problems": problems}

    @api.get("/v1/documents/{doc_id}", response_model=DocumentDetail,
             summary="One document: metadata, cleaned text, stored body / 单个文档",
             responses=responses(404, 422))
    def get_document(doc_id: DocId, ctx: Annotated[AppContext, Depends(context)]) -> dict[str, Any]:
        check_doc_id(doc_id)
        ctx.watcher.check(first=False)
        idx = ctx.watcher.loaded()
        doc = ctx.store.get(doc_id)
        indexed = idx.documents.get(doc_id) if idx is not None else None
        generation = idx.generation if idx is not None else None
        if doc is not None:
            version = (version_status(ctx.store.load().documents).get(doc_id)
                       if doc.extra.get("doc_type") == "regulation" else None)
            out = summary(doc.metadata(), idx, doc.content_hash, version=version)
            text = indexed.text if indexed is not None and out["indexed"] else clean_document(doc).text
            return {**out, "generation": generation, "text": text, "raw": doc.raw}
        if indexed is not None:  # deleted, still in the current generation: older citations need its text
            meta = {**indexed.extra, "doc_id": indexed.doc_id, "title": indexed.title, "date": indexed.date,
                    "date_inferred": indexed.date_inferred, "source": indexed.source, "region": indexed.region,
                    "url": indexed.url}
            out = summary(meta, idx, indexed.content_hash, stored=False, version=idx.versions.get(doc_id)
                          if idx is not None else None)
            return {**out, "generation": generation, "text": indexed.text, "raw": None}
        raise not_found(doc_id)

    @api.get("/v1/documents/{doc_id}/original", response_class=FileResponse,
             summary="The uploaded original file, unmodified / 原始文件",
             description="The bytes of the PDF, Word or HTML file (or text file) the document was extracted "
                         "from, with its content type; PDF and text are shown inline, the others download. "
                         "404 for a document stored as Markdown, or one deleted.",
             responses={200: {"content": {t: {} for t, _ in ORIGINAL_TYPES.values()},
                              "description": "the original bytes"}, **responses(404, 422)})
    def get_original(doc_id: DocId, ctx: Annotated[AppContext, Depends(context)]) -> Response:
        check_doc_id(doc_id)
        doc = ctx.store.get(doc_id)
        if doc is None:
            raise not_found(doc_id)
        path = original_path(doc)
        if path is None:
            raise ApiError(404, "original_not_found", f"文档“{doc_id}”没有上传的原始文件",
                           f"document {doc_id!r} has no uploaded original file", detail={"doc_id": doc_id})
        fmt = doc.extra.get("original_format", "")
        media_type, inline = ORIGINAL_TYPES.get(fmt, ("application/octet-stream", False))
        name = doc.extra.get("original_name") or path.name
        headers = {"X-Content-Type-Options": "nosniff"}
        if fmt != "pdf":  # the browser's PDF viewer does not open in a sandbox; nothing else needs scripts
            headers["Content-Security-Policy"] = "sandbox"
        return FileResponse(path, media_type=media_type, filename=name, headers=headers,
                            content_disposition_type="inline" if inline else "attachment")

    @api.post("/v1/documents", response_model=DocumentCreated, status_code=201, tags=["admin"],
              summary="Add a document (admin) / 新增文档（管理）",
              description="JSON `{title, text, date?, source?, url?, doc_id?, region?}`, a multipart upload "
                          "(field `file`: Markdown with front matter, a web page, PDF, Word .doc/.docx or text file, "
                          "read as what its bytes are; "
                          "optional fields doc_id, title, date, source) or a text/markdown body. Validated like "
                          f"the corpus loader and written durably before the 201. {auto}; `?rebuild=true` "
                          f"starts one now. A file over {max_file} bytes, or a document over {max_doc} bytes as "
                          "stored (UTF-8), is refused with 413; a full disk answers 507.",
              responses=responses(400, 401, 403, 409, 413, 415, 422, 507),
              openapi_extra=NEW_DOCUMENT_BODY, dependencies=[Depends(require_admin)])
    async def add_document(request: Request, ctx: Annotated[AppContext, Depends(context)],
                           rebuild: Annotated[bool, Query(description="start an index rebuild now")] = False,
                           ) -> Response:
        body = await read_body(request, max_body)
        prepared = await prepare_upload(request, body, settings.corpus_dir, max_doc, max_file)
        check_document_size(prepared.data, max_doc)  # the stored file: body and front matter
        doc = await anyio.to_thread.run_sync(ctx.store.add, prepared)
        log.info("document %s added (%d bytes)", doc.doc_id, len(prepared.data))
        ctx.documents_changed()
        out: dict[str, Any] = {"doc_id": doc.doc_id, "title": doc.title, "content_hash": doc.content_hash,
                               "job_id": None}
        if rebuild:
            job, _ = await anyio.to_thread.run_sync(ctx.start_job)
            out["job_id"] = job.job_id
        return JSONResponse(out, status_code=201, headers={"Location": f"/v1/documents/{doc.doc_id}"})

    @api.patch("/v1/documents/{doc_id}", response_model=DocumentCorrected, tags=["admin"],
               summary="Correct a document's metadata (admin) / 更正文档信息（管理）",
               description="JSON `{title?, date?, place?, version?, effective_date?, published_date?, issuer?, …}`: "
                           "the front-matter fields to set (a string; dates ISO) or remove (null). The body stays "
                           "byte for byte, so citation offsets and provenance stay true; the previous file goes "
                           "to the documents folder's `.trash/`. The document records `corrected` (when) and "
                           f"`corrected_fields`. {auto}; `?rebuild=true` starts one now.",
               responses=responses(401, 403, 404, 413, 422, 507), dependencies=[Depends(require_admin)])
    def correct_document(doc_id: DocId, correction: DocumentCorrection, ctx: Annotated[AppContext, Depends(context)],
                         rebuild: Annotated[bool, Query(description="start an index rebuild now")] = False,
                         ) -> dict[str, Any]:
        check_doc_id(doc_id)
        changes = check_corrections(correction.model_dump(exclude_unset=True))
        done = ctx.store.correct(doc_id, changes)
        job_id = None
        if done.changed:
            log.info("document %s corrected (%s)", doc_id, ", ".join(done.changed))
            ctx.documents_changed()
            job_id = ctx.start_job()[0].job_id if rebuild else None
        doc = done.document
        return {"doc_id": doc.doc_id, "title": doc.title, "content_hash": doc.content_hash,
                "changed": list(done.changed), "corrected": doc.extra.get("corrected"), "job_id": job_id}

    @api.delete("/v1/documents/{doc_id}", response_model=DocumentDeleted, tags=["admin"],
                summary="Delete a document (admin) / 删除文档（管理）",
                description="Moves the stored file to the documents folder's `.trash/` (durably). From the "
                            f"moment this returns the document is never cited. {auto}; `?rebuild=true` starts "
                            "one now.",
                responses=responses(401, 403, 404, 422), dependencies=[Depends(require_admin)])
    def delete_document(doc_id: DocId, ctx: Annotated[AppContext, Depends(context)],
                        rebuild: Annotated[bool, Query(description="start an index rebuild now")] = False,
                        ) -> dict[str, Any]:
        check_doc_id(doc_id)
        deleted = ctx.store.delete(doc_id)
        log.info("document %s deleted (moved to %s)", doc_id, deleted.trashed_as)
        ctx.documents_changed()
        job_id = ctx.start_job()[0].job_id if rebuild else None
        return {"doc_id": doc_id, "deleted": True, "job_id": job_id}

    return api
