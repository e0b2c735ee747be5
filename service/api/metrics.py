"""Prometheus metrics for the HTTP service: requests, answers and refusals, stage latencies, the index.

Counters and histograms live in a registry per app. With several uvicorn workers `policyqa serve` sets
PROMETHEUS_MULTIPROC_DIR before the workers start; prometheus_client then keeps the values in files there
and `/metrics` aggregates every worker's. Without it (a single worker, or an app run by another server
with several workers) the figures are per worker.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

if TYPE_CHECKING:
    from service.answering import Answer

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MAX_CACHED_SERIES = 1000  # route templates × methods × statuses: bounded by the app, capped all the same
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 5.0)
LLM_BUCKETS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


class AppMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("policyqa_http_requests", "HTTP requests by route template, method and status",
                                ("route", "method", "status"), registry=self.registry)
        self.latency = Histogram("policyqa_http_request_duration_seconds",
                                 "HTTP request latency by route template", ("route",),
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.rebuilds = Counter("policyqa_rebuild_jobs_started", "Index rebuild jobs started by this service",
                                registry=self.registry)
        self.answers = Counter("policyqa_answers", "Questions answered or refused (reason: why it was refused)",
                               ("result", "reason"), registry=self.registry)
        self.confidence = Histogram("policyqa_answer_confidence", "Confidence of the answers given and refused",
                                    ("result",), buckets=CONFIDENCE_BUCKETS, registry=self.registry)
        self.stages = Histogram("policyqa_stage_duration_seconds",
                                "Time per answering stage: encode (question vector), retrieve (search + fusion), "
                                "read (the reader over the top passages)", ("stage",), buckets=STAGE_BUCKETS,
                                registry=self.registry)
        self.llm_calls = Counter("policyqa_llm_calls", "LLM calls by outcome (ok or the fallback reason)",
                                 ("outcome",), registry=self.registry)
        self.llm_latency = Histogram("policyqa_llm_duration_seconds", "Time of one LLM call (the whole stream)",
                                     buckets=LLM_BUCKETS, registry=self.registry)
        self.fallbacks = Counter("policyqa_answer_fallbacks", "Generative/auto answers that fell back to the "
                                 "extractive one, by reason", ("reason",), registry=self.registry)
        self.statements = Counter("policyqa_llm_statements", "LLM statements kept or dropped (reason: why dropped)",
                                  ("result", "reason"), registry=self.registry)
        self.feedback = Counter("policyqa_feedback", "Ratings given to answers (POST /v1/feedback)", ("rating",),
                                registry=self.registry)
        self.followups = Counter("policyqa_followups", "Questions asked with a history, by how they were made "
                                 "standalone: standalone (left as asked), rules, llm", ("method",),
                                 registry=self.registry)
        # gauges: with several workers each live worker reports the index it has loaded
        self.generation = Gauge("policyqa_index_generation_info", "The loaded index generation (value 1)",
                                ("generation",), registry=self.registry, multiprocess_mode="liveall")
        self.chunks = Gauge("policyqa_index_chunks", "Chunks in the loaded index generation",
                            registry=self.registry, multiprocess_mode="liveall")
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._generation: str | None = None

    def observe_answer(self, answer: Answer) -> None:
        refused, timings_ms = answer.refused, answer.timings_ms
        result = "refused" if refused else "answered"
        self.answers.labels(result, (answer.reason or "unknown") if refused else "").inc()
        self.confidence.labels(result).observe(answer.confidence)
        if answer.fallback_reason is not None:
            self.fallbacks.labels(answer.fallback_reason).inc()
        if answer.llm is not None:  # the LLM was called
            self.llm_calls.labels("ok" if answer.answer_mode_used == "generative"
                                  else answer.fallback_reason or "unknown").inc()
            if timings_ms.get("llm"):
                self.llm_latency.observe(timings_ms["llm"] / 1000)
        for st in answer.statements:
            self.statements.labels("kept" if st.verified else "dropped", st.dropped or "").inc()
        stages = {"encode": timings_ms.get("encode"),
                  "retrieve": sum(timings_ms.get(k, 0.0) for k in ("dense", "sparse", "fuse")),
                  "read": timings_ms.get("read")}
        for stage, ms in stages.items():
            if ms:
                self.stages.labels(stage).observe(ms / 1000)

    def index_loaded(self, generation: str, chunks: int) -> None:
        if generation == self._generation:
            return
        if self._generation is not None:  # 0, not removed: a multiprocess file keeps the last value written
            self.generation.labels(self._generation).set(0)
        self.generation.labels(generation).set(1)
        self.chunks.set(chunks)
        self._generation = generation

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:  # first request of its kind: look the labelled series up once
            children = (self.requests.labels(route, method, str(status)), self.latency.labels(route))
            if len(self._children) < MAX_CACHED_SERIES:
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    @property
    def multiprocess(self) -> bool:
        return bool(os.environ.get(MULTIPROC_ENV))

    def render(self) -> tuple[bytes, str]:
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
