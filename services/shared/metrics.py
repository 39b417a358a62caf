"""Prometheus metrics: one registry per app (no process-wide globals), scraped at /metrics.

Every service counts requests and times them by route template and status; services add their
own series (index size and lag, upstream errors, rate-limit rejections, database pool use)
through ``gauge_callback`` and the registry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.responses import Response

# Request latency buckets (seconds): the gateway hop is sub-millisecond, imports take seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# Path segments that name things rather than identify them; anything else is an ID and becomes
# "{id}", so a route label has a bounded number of values.
_WORDS = frozenset(
    {
        "v1", "platforms", "manufacturers", "demands", "equipment", "solutions", "admin", "keys",
        "matches", "similar", "match", "index", "import", "changes", "industry-chains",
        "healthz", "readyz", "metrics", "openapi.json", "docs", "redoc", "internal", "verify",
    }
)  # fmt: skip
_SEGMENT = re.compile(r"[^/]+")


def route_template(path: str) -> str:
    """``/v1/demands/dmd_3f2a/matches`` -> ``/v1/demands/{id}/matches``."""
    return _SEGMENT.sub(lambda m: m.group(0) if m.group(0) in _WORDS else "{id}", path)


class _CallbackGauge(Collector):
    def __init__(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        read: Callable[[], Iterable[tuple[Sequence[str], float]]],
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labels = list(labels)
        self._read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(self._name, self._documentation, labels=self._labels)
        for values, value in self._read():
            family.add_metric(list(values), value)
        yield family


class ServiceMetrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "pilotmatch_http_requests",
            "HTTP requests answered, by route template and status.",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pilotmatch_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["service", "method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        route = route_template(path)
        self.requests.labels(self.service, method, route, str(status)).inc()
        self.latency.labels(self.service, method, route).observe(seconds)

    def gauge_callback(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        read: Callable[[], Iterable[tuple[Sequence[str], float]]],
    ) -> None:
        """A gauge whose value is read at scrape time (index size, lag, pool use)."""
        self.registry.register(_CallbackGauge(name, documentation, labels, read))

    def router(self) -> APIRouter:
        router = APIRouter(tags=["health"])

        @router.get(
            "/metrics",
            operation_id=f"{self.service}Metrics",
            summary="Prometheus metrics",
            response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Metrics"}},
        )
        def metrics() -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        return router
