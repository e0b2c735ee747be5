"""The index and its rebuild jobs: /v1/index, /v1/index/rebuild, /v1/jobs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse, Response

from index.store import LoadedIndex, store_summary
from service.api.auth import admin_dependency
from service.api.errors import ApiError, responses
from service.api.models import IndexSummary, JobAccepted, JobList, JobStatus
from service.api.state import AppContext, context, loaded_index
from service.jobs import JOB_ID_RE
from service.settings import Settings

JOB_ID_PATTERN = JOB_ID_RE.pattern


def router(settings: Settings) -> APIRouter:
    require_admin = admin_dependency(settings.admin_token)
    api = APIRouter(tags=["index"])

    @api.post("/v1/index/rebuild", response_model=JobAccepted, status_code=202, tags=["admin"],
              summary="Rebuild the index in the background (admin) / 后台重建索引（管理）",
              description="Starts a low-priority build process and returns its job at once. While one runs, "
                          "the running job is returned (same job_id, `started: false`).",
              responses=responses(401, 403, 507), dependencies=[Depends(require_admin)])
    def rebuild_index(ctx: Annotated[AppContext, Depends(context)]) -> Response:
        job, started = ctx.start_job()
        return JSONResponse({**job.public(), "started": started}, status_code=202,
                            headers={"Location": f"/v1/jobs/{job.job_id}"})

    @api.get("/v1/jobs", response_model=JobList, summary="Recent rebuild jobs, newest first / 重建任务列表",
             responses=responses())
    def list_jobs(ctx: Annotated[AppContext, Depends(context)]) -> dict[str, Any]:
        jobs = [j.public() for j in ctx.jobs.recent()]
        return {"jobs": jobs, "rebuild_pending": ctx.auto is not None and ctx.auto.pending}

    @api.get("/v1/jobs/{job_id}", response_model=JobStatus,
             summary="A rebuild job's state and progress / 重建任务状态", responses=responses(404, 422))
    def get_job(job_id: Annotated[str, Path(pattern=JOB_ID_PATTERN, description="from POST /v1/index/rebuild")],
                ctx: Annotated[AppContext, Depends(context)]) -> dict[str, Any]:
        job = ctx.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "job_not_found", f"没有任务“{job_id}”", f"no job {job_id!r}",
                           detail={"job_id": job_id})
        return job.public()

    @api.get("/v1/index", response_model=IndexSummary, summary="The current index generation / 当前索引版本",
             responses=responses(503))
    def index_info(idx: Annotated[LoadedIndex, Depends(loaded_index)]) -> dict[str, Any]:
        m = idx.manifest
        return {"generation": m["generation"], "created_at": m["created_at"],
                "model": {k: m["model"].get(k) for k in ("name", "fingerprint", "dim", "max_tokens")},
                "counts": m["counts"], "corpus_fingerprint": m["corpus"]["fingerprint"], "chunker": m["chunker"],
                "dense": m.get("dense", {}), "build": m.get("build", {}),
                "encoder": m.get("encoder") or {"backend": "torch"}, "store": store_summary(m)}

    return api
