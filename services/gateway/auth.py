"""Who is calling and what they may do: API keys, scopes, and a small verification cache.

Keys live (hashed) in the catalog; the gateway asks the catalog to verify a presented key and
caches the answer briefly, so a request costs no extra hop on a warm key and a revocation takes
effect within ``ttl`` seconds. When the catalog is unreachable, keys verified before stay usable
for ``max_stale`` seconds, so matching keeps answering while the catalog is down. The bootstrap
admin key (``PILOTMATCH_ADMIN_KEY``) never needs the catalog.

Plain Python: no HTTP framework; the verifier and the clock are injected.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.gateway.upstream import upstream_for

ALL_SCOPES = frozenset({"catalog:read", "catalog:write", "match:read", "admin"})
ADMIN_KEY_ID = "admin"


@dataclass(frozen=True)
class Principal:
    key_id: str
    consumer_id: str
    scopes: frozenset[str]
    rate_limit_per_minute: int | None = None
    is_bootstrap_admin: bool = False


@dataclass(frozen=True)
class Verification:
    """The catalog's answer for a key (see the catalog's KeyVerification)."""

    valid: bool
    reason: str | None = None
    principal: Principal | None = None


class VerifierUnavailable(Exception):
    """The catalog could not be asked."""


Verifier = Callable[[str], Awaitable[Verification]]


def required_scope(method: str, path: str) -> str:
    """The scope a request needs: admin routes, webhooks, matching reads, catalog reads and
    writes."""
    if path.startswith("/v1/admin/") or path == "/v1/admin":
        return "admin"
    if path == "/v1/webhooks" or path.startswith("/v1/webhooks/"):
        # Any consumer that may read the catalog may be told of its changes: it manages its own
        # webhooks (the catalog scopes them to the consumer), and a key with admin manages all.
        return "catalog:read"
    if upstream_for(path) == "matching":
        return "match:read"
    if method in ("GET", "HEAD"):
        return "catalog:read"
    return "catalog:write"


@dataclass
class _Entry:
    verification: Verification
    fresh_until: float
    usable_until: float


class Authenticator:
    def __init__(
        self,
        admin_key: str | None,
        verify: Verifier,
        *,
        clock: Callable[[], float] = time.monotonic,
        ttl: float = 10.0,
        negative_ttl: float = 2.0,
        max_stale: float = 600.0,
        max_entries: int = 10_000,
    ) -> None:
        self._admin_key = admin_key.encode() if admin_key else None
        self._verify = verify
        self._clock = clock
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_stale = max_stale
        self._max_entries = max_entries
        self._cache: OrderedDict[str, _Entry] = OrderedDict()

    async def authenticate(self, presented: str) -> Verification:
        """Raises VerifierUnavailable only when the key is unknown here and the catalog is down."""
        if self._admin_key is not None and hmac.compare_digest(presented.encode(), self._admin_key):
            return Verification(
                True,
                principal=Principal(ADMIN_KEY_ID, ADMIN_KEY_ID, ALL_SCOPES, None, True),
            )
        # The cache is keyed by a digest, so the process never holds keys it was shown.
        digest = hashlib.sha256(presented.encode()).hexdigest()
        now = self._clock()
        entry = self._cache.get(digest)
        if entry is not None and now < entry.fresh_until:
            self._cache.move_to_end(digest)
            return entry.verification
        try:
            verification = await self._verify(presented)
        except VerifierUnavailable:
            if entry is not None and entry.verification.valid and now < entry.usable_until:
                return entry.verification
            raise
        ttl = self._ttl if verification.valid else self._negative_ttl
        self._cache[digest] = _Entry(verification, now + ttl, now + self._max_stale)
        self._cache.move_to_end(digest)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return verification
