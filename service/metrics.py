"""Prometheus metrics for the HTTP service.

Counters and histograms live in a registry per app. With several uvicorn workers `policyqa serve` sets
PROMETHEUS_MULTIPROC_DIR before the workers start; prometheus_client then keeps the values in files there
and `/metrics` aggregates every worker's. Without it (a single worker, or an app run by another server
with several workers) the figures are per worker.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MAX_CACHED_SERIES = 1000  # route templates × methods × statuses: bounded by the app, capped all the same
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("policyqa_http_requests", "HTTP requests by route template, method and status",
                                ("route", "method", "status"), registry=self.registry)
        self.latency = Histogram("policyqa_http_request_duration_seconds",
                                 "HTTP request latency by route template", ("route",),
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.rebuilds = Counter("policyqa_rebuild_jobs_started", "Index rebuild jobs started by this service",
                                registry=self.registry)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

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
