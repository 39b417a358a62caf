"""The authenticator: admin key, cached verification, revocation delay, a catalog outage."""

from __future__ import annotations

import pytest

from services.gateway.auth import (
    ALL_SCOPES,
    Authenticator,
    Principal,
    Verification,
    VerifierUnavailable,
    required_scope,
)

pytestmark = pytest.mark.anyio

ADMIN = "admin-key-0123456789abcdef0123"
KEY = "pm_0123456789ab_" + "f" * 40


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Catalog:
    """A fake verifier: answers from a table, counts calls, can go down."""

    def __init__(self) -> None:
        self.valid: dict[str, Principal] = {}
        self.calls = 0
        self.down = False

    async def verify(self, key: str) -> Verification:
        self.calls += 1
        if self.down:
            raise VerifierUnavailable("down")
        principal = self.valid.get(key)
        return (
            Verification(True, principal=principal) if principal else Verification(False, "unknown")
        )


def principal(*scopes: str) -> Principal:
    return Principal("0123456789ab", "csm_1", frozenset(scopes), 120)


async def test_admin_key_has_every_scope_without_asking_the_catalog() -> None:
    catalog = Catalog()
    auth = Authenticator(ADMIN, catalog.verify, clock=Clock())
    result = await auth.authenticate(ADMIN)
    assert result.valid and result.principal is not None
    assert result.principal.scopes == ALL_SCOPES
    assert result.principal.is_bootstrap_admin
    assert catalog.calls == 0


async def test_verified_key_is_cached_for_the_ttl() -> None:
    catalog, clock = Catalog(), Clock()
    catalog.valid[KEY] = principal("catalog:read")
    auth = Authenticator(ADMIN, catalog.verify, clock=clock, ttl=10)
    assert (await auth.authenticate(KEY)).valid
    clock.now += 9
    assert (await auth.authenticate(KEY)).valid
    assert catalog.calls == 1
    clock.now += 2
    await auth.authenticate(KEY)
    assert catalog.calls == 2


async def test_revocation_takes_effect_after_the_ttl() -> None:
    catalog, clock = Catalog(), Clock()
    catalog.valid[KEY] = principal("catalog:read")
    auth = Authenticator(ADMIN, catalog.verify, clock=clock, ttl=10)
    await auth.authenticate(KEY)
    del catalog.valid[KEY]
    assert (await auth.authenticate(KEY)).valid, "still cached"
    clock.now += 10
    assert not (await auth.authenticate(KEY)).valid


async def test_unknown_keys_are_cached_briefly() -> None:
    catalog, clock = Catalog(), Clock()
    auth = Authenticator(ADMIN, catalog.verify, clock=clock, negative_ttl=2)
    for _ in range(3):
        assert not (await auth.authenticate(KEY)).valid
    assert catalog.calls == 1
    clock.now += 2
    await auth.authenticate(KEY)
    assert catalog.calls == 2


async def test_known_key_keeps_working_while_the_catalog_is_down() -> None:
    catalog, clock = Catalog(), Clock()
    catalog.valid[KEY] = principal("match:read")
    auth = Authenticator(ADMIN, catalog.verify, clock=clock, ttl=10, max_stale=600)
    await auth.authenticate(KEY)
    catalog.down = True
    clock.now += 300
    assert (await auth.authenticate(KEY)).valid
    clock.now += 301
    with pytest.raises(VerifierUnavailable):
        await auth.authenticate(KEY)


async def test_unseen_key_while_the_catalog_is_down_is_unavailable_not_invalid() -> None:
    catalog = Catalog()
    catalog.down = True
    auth = Authenticator(ADMIN, catalog.verify, clock=Clock())
    with pytest.raises(VerifierUnavailable):
        await auth.authenticate(KEY)


async def test_cache_is_bounded() -> None:
    catalog = Catalog()
    auth = Authenticator(ADMIN, catalog.verify, clock=Clock(), max_entries=3)
    for i in range(10):
        await auth.authenticate(f"pm_{i:012x}_" + "0" * 40)
    assert len(auth._cache) == 3


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/v1/platforms", "catalog:read"),
        ("GET", "/v1/changes", "catalog:read"),
        ("POST", "/v1/platforms", "catalog:write"),
        ("PATCH", "/v1/demands/d1", "catalog:write"),
        ("DELETE", "/v1/equipment/e1", "catalog:write"),
        ("POST", "/v1/import", "catalog:write"),
        ("GET", "/v1/demands/d1/matches", "match:read"),
        ("POST", "/v1/match", "match:read"),
        ("GET", "/v1/index", "match:read"),
        ("GET", "/v1/platforms/p1/similar", "match:read"),
        ("GET", "/v1/reports/coverage", "match:read"),
        ("GET", "/v1/brokers", "catalog:read"),
        ("POST", "/v1/brokers", "catalog:write"),
        ("GET", "/v1/admin/keys", "admin"),
        ("POST", "/v1/admin/keys", "admin"),
        ("POST", "/v1/demands/d1/outcomes", "catalog:write"),
        ("GET", "/v1/demands/d1/outcomes", "catalog:read"),
        ("GET", "/v1/platforms/p1/outcomes", "catalog:read"),
        ("GET", "/v1/manufacturers/m1/outcomes", "catalog:read"),
        ("POST", "/v1/demands/d1/close", "catalog:write"),
        ("POST", "/v1/demands/d1/renew", "catalog:write"),
        # Webhooks: any reader manages its own (the catalog scopes them by consumer).
        ("POST", "/v1/webhooks", "catalog:read"),
        ("GET", "/v1/webhooks", "catalog:read"),
        ("DELETE", "/v1/webhooks/w1", "catalog:read"),
        ("POST", "/v1/webhooks/w1/deliveries/d1/redeliver", "catalog:read"),
        ("POST", "/v1/webhooksx", "catalog:write"),
    ],
)
def test_each_route_needs_its_scope(method: str, path: str, scope: str) -> None:
    assert required_scope(method, path) == scope
