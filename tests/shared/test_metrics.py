"""Shared metrics: bounded route labels, per-app registries, scrape format."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.shared.metrics import ServiceMetrics, route_template


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/v1/platforms", "/v1/platforms"),
        ("/v1/platforms/plt_3f2a9c", "/v1/platforms/{id}"),
        ("/v1/demands/dmd_1/matches", "/v1/demands/{id}/matches"),
        ("/v1/manufacturers/mfr_1/similar", "/v1/manufacturers/{id}/similar"),
        ("/v1/admin/keys/0123456789ab", "/v1/admin/keys/{id}"),
        ("/v1/anything/at/all", "/v1/{id}/{id}/{id}"),
        ("/healthz", "/healthz"),
    ],
)
def test_route_template_replaces_ids(path: str, template: str) -> None:
    assert route_template(path) == template


def _samples(metrics: ServiceMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.exposition import generate_latest

    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_requests_are_counted_and_timed_per_route() -> None:
    metrics = ServiceMetrics("catalog")
    metrics.observe("GET", "/v1/platforms/plt_1", 200, 0.003)
    metrics.observe("GET", "/v1/platforms/plt_2", 200, 0.004)
    metrics.observe("GET", "/v1/platforms/plt_3", 404, 0.001)
    samples = _samples(metrics)
    labels = (("method", "GET"), ("route", "/v1/platforms/{id}"), ("service", "catalog"))
    assert (
        samples[
            (
                "pilotmatch_http_requests_total",
                (*labels[:2], ("service", "catalog"), ("status", "200")),
            )
        ]
        == 2
    )
    assert samples[("pilotmatch_http_request_duration_seconds_count", labels)] == 3


def test_callback_gauges_are_read_at_scrape_time() -> None:
    metrics = ServiceMetrics("matching")
    size = {"platform": 3.0}
    metrics.gauge_callback(
        "pilotmatch_index_suppliers",
        "Suppliers in the index.",
        ["kind"],
        lambda: [(("platform",), size["platform"])],
    )
    assert _samples(metrics)[("pilotmatch_index_suppliers", (("kind", "platform"),))] == 3
    size["platform"] = 5.0
    assert _samples(metrics)[("pilotmatch_index_suppliers", (("kind", "platform"),))] == 5


def test_each_app_has_its_own_registry() -> None:
    first, second = ServiceMetrics("a"), ServiceMetrics("a")
    first.observe("GET", "/healthz", 200, 0.001)
    assert not any(name == "pilotmatch_http_requests_total" for name, _ in _samples(second))
