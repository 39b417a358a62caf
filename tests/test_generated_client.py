"""A client generated from the committed spec (openapi-python-client) drives a full flow.

Nothing in the generated code is touched: if it needs a hand fix, the spec is wrong. The client's
own ``AuthenticatedClient`` carries the API key (``X-API-Key``, no prefix); its HTTP client sends
through the in-process stack, so every call takes the real path: gateway auth, rate limit and
forwarding, then the services and a fresh database.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from scripts.export_openapi import OPENAPI_DIR
from tests.stack import ADMIN_KEY, in_process_stack

PACKAGE = "pilotmatch_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package generated from openapi/pilotmatch.json, importable as PACKAGE."""
    root = tmp_path_factory.mktemp("generated-client")
    config = root / "config.json"
    # No post hooks: formatting the generated code (ruff) is not what this test is about.
    config.write_text(json.dumps({"post_hooks": []}), encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(OPENAPI_DIR / "pilotmatch.json"),
            "--output-path",
            str(root / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
            # A warning means part of the spec could not be turned into code.
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


class ThroughStack(httpx.BaseTransport):
    """Sends the generated client's requests through the in-process stack's TestClient."""

    def __init__(self, stack: TestClient) -> None:
        self.stack = stack

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.stack.request(
            request.method, str(request.url), headers=request.headers, content=request.read()
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


def _mod(package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{name}")


def test_generated_client_drives_a_full_flow(generated: ModuleType, sqlite_url: str) -> None:
    models = _mod(generated, "models")
    create_api_key = _mod(generated, "api.admin.create_api_key")
    list_api_keys = _mod(generated, "api.admin.list_api_keys")
    create_platform = _mod(generated, "api.platforms.create_platform")
    list_platforms = _mod(generated, "api.platforms.list_platforms")
    get_platform = _mod(generated, "api.platforms.get_platform")
    create_demand = _mod(generated, "api.demands.create_demand")
    match_demand = _mod(generated, "api.matching.match_demand")

    with in_process_stack(sqlite_url) as stack:
        # Only the generated client's own auth header carries a key.
        del stack.headers["X-API-Key"]

        def client(key: str) -> Any:
            return generated.AuthenticatedClient(
                base_url="http://testserver",
                token=key,
                prefix="",
                auth_header_name="X-API-Key",
                raise_on_unexpected_status=True,
                httpx_args={"transport": ThroughStack(stack)},
            )

        admin = client(ADMIN_KEY)
        created_key = create_api_key.sync(
            client=admin,
            body=models.ApiKeyCreate(
                label="市级企业综合服务平台 integration test",
                scopes=[
                    models.Scope.CATALOGREAD,
                    models.Scope.CATALOGWRITE,
                    models.Scope.MATCHREAD,
                ],
            ),
        )
        assert isinstance(created_key, models.ApiKeyCreated), created_key
        integrator = client(created_key.key)

        written = create_platform.sync_detailed(
            client=integrator,
            body=models.SupplierCreate(
                name="松山湖固态电池研发中试平台",
                organization="松山湖材料实验室",
                district="松山湖",
                description="固态电池材料与电芯的中试验证：干法电极、叠片、化成分容、10Ah电芯试制。",
                industry_chains=["New Energy", "低空飞行器"],
                tags=["固态电池", "电芯试制"],
                stages=[models.Stage.中试, models.Stage.小试],
                accepts_vouchers=True,
                level=models.Level.省级,
            ),
        )
        assert written.status_code == 201
        assert written.headers["X-Request-ID"]
        platform = written.parsed
        assert isinstance(platform, models.SupplierWriteResult), platform
        assert platform.kind == models.SupplierKind.PLATFORM
        assert platform.industry_chains == ["新能源"]
        assert platform.level == models.Level.省级
        assert [w.value for w in platform.warnings] == ["低空飞行器"]

        demand = create_demand.sync(
            client=integrator,
            body=models.DemandCreate(
                title="固态电池电芯中试放大",
                description="硫化物固态电解质已完成小试，需要中试线做10Ah电芯试制。",
                industry_chains=["新能源"],
                tags=["固态电池"],
                stage=models.Stage.中试,
                district="松山湖",
                needs_voucher=True,
            ),
        )
        assert isinstance(demand, models.DemandWriteResult), demand
        assert demand.version > platform.version

        matches = match_demand.sync(
            demand_id=demand.id,
            client=integrator,
            kind=models.MatchKind.PLATFORM,
            limit=5,
            min_version=demand.version,
        )
        assert isinstance(matches, models.MatchResponse), matches
        assert matches.demand_id == demand.id
        assert matches.index_version >= demand.version
        assert [r.supplier_id for r in matches.results] == [platform.id]
        best = matches.results[0]
        assert (best.rank, best.kind) == (1, models.SupplierKind.PLATFORM)
        assert best.score > 0
        assert best.explanation.additional_properties, "the explanation says why, in data"

        page = list_platforms.sync(
            client=integrator, chain="New Energy", stage=models.Stage.中试, limit=10
        )
        assert isinstance(page, models.SupplierPage), page
        assert [p.id for p in page.items] == [platform.id]
        assert page.next_cursor is None
        empty = list_platforms.sync(client=integrator, stage=models.Stage.概念验证)
        assert isinstance(empty, models.SupplierPage) and empty.items == []

        # Errors come back as the documented Problem model.
        missing = get_platform.sync_detailed(item_id="plt_does_not_exist", client=integrator)
        assert missing.status_code == 404
        assert isinstance(missing.parsed, models.Problem)
        assert missing.parsed.status == 404
        forbidden = list_api_keys.sync(client=integrator)
        assert isinstance(forbidden, models.Problem), forbidden
        assert forbidden.status == 403
        assert forbidden.additional_properties["required_scope"] == "admin"
        unknown = list_platforms.sync(client=client("not-a-key-0123456789"))
        assert isinstance(unknown, models.Problem) and unknown.status == 401
