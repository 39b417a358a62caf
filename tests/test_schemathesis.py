"""Schemathesis against the running gateway: every operation of the document it serves, every
stateless check, a bounded number of generated cases per operation, on a fresh SQLite database.

The whole stack runs as one local server (``tests.stack.StackApp`` under uvicorn, in a thread):
schemathesis calls the gateway over HTTP, the gateway authenticates, rate-limits and forwards to
the real catalog and matching apps. Zero failures and no 500 on any input; a failure here is a
bug in a service or in the spec, never a reason to loosen a check.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events

from services.shared.openapi import HTTP_METHODS
from tests.stack import ADMIN_KEY, StackApp, serving

# Generated cases per operation in the fuzzing phase (the examples and coverage phases add their
# own, derived from the schema). Bounded so the whole run stays well under CI's budget.
MAX_EXAMPLES = 25

CONFIG = {
    "generation": {"max-examples": MAX_EXAMPLES},
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": False},
    },
    # The key schemathesis sends where the document's security scheme (ApiKeyAuth) asks for one;
    # `ignored_auth` then checks that a request without it, or with a wrong one, is refused.
    "auth": {"openapi": {"ApiKeyAuth": {"api_key": ADMIN_KEY}}},
    "checks": {
        # A schema-valid request may still break a documented domain rule that JSON Schema cannot
        # state: a parent (`supplier_id`, `platform_id`) that does not exist, `price_min_cny` above
        # `price_max_cny`, a `cursor` this service did not issue, a `chain` filter naming no
        # chain, text that is blank or holds control characters once trimmed. Each is answered
        # 422 with the fields at fault, as the document says. Only 422 is added: a 400 or a 5xx
        # for schema-valid input still fails.
        "positive_data_acceptance": {
            "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
        },
    },
}


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[str]:
    """The whole stack served on a local port, on a fresh database, ready."""
    path = tmp_path_factory.mktemp("schemathesis") / "catalog.db"
    shutil.copyfile(sqlite_template, path)
    with serving(StackApp(f"sqlite:///{path}")) as base_url:
        deadline = time.monotonic() + 30
        while httpx.get(base_url + "/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the stack did not become ready"
            time.sleep(0.05)
        yield base_url


def test_gateway_conforms_to_its_document(gateway_url: str) -> None:
    # Schemathesis's own engine (what `schemathesis run` drives), in one plain test: its pytest
    # parametrization turns operations into subtests whose failures pytest-xdist drops.
    served = httpx.get(gateway_url + "/openapi.json").json()
    config = SchemathesisConfig.from_dict({**CONFIG, "base-url": gateway_url})
    schema = schemathesis.openapi.from_dict(served, config=config)
    operations = {
        f"{method.upper()} {path}"
        for path, item in served["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    tested: set[str] = set()
    failures: list[str] = []
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.label:
            tested.add(event.label)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        failures.append(
                            f"{event.label} [{check.name}] {failure.title}: {failure.message}\n"
                            f"    {check.failure_info.code_sample}"
                        )
                    elif check.status == Status.ERROR:
                        failures.append(f"{event.label} [{check.name}] the check crashed")
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"{getattr(event, 'label', '')} error: {event.info.format()}")
    assert not failures, "\n".join(dict.fromkeys(failures))
    assert tested == operations, f"untested: {sorted(operations - tested)}"
