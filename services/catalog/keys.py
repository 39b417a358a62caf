"""API keys: creation, listing, revocation and verification. Plain Python, no HTTP.

A key reads ``pm_<id>_<secret>``: the id (12 hex digits) finds the row, the secret (40 hex
digits, 160 random bits) is checked against ``sha256(salt + secret)`` with a constant-time
comparison. Only the salt and the hash are stored; the key is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import datetime

from services.catalog import schemas as s
from services.catalog.models import ApiKey, Consumer
from services.catalog.pagination import decode_cursor, encode_cursor
from services.catalog.repository import CatalogRepository, could_be_id
from services.shared.errors import NotFoundError

KEY_PATTERN = re.compile(r"^pm_([0-9a-f]{12})_([0-9a-f]{40})$")


def hash_secret(salt: str, secret: str) -> str:
    return hashlib.sha256((salt + secret).encode()).hexdigest()


def new_key() -> tuple[str, str, str]:
    """(key id, secret, the full key)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_hex(20)
    return key_id, secret, f"pm_{key_id}_{secret}"


class KeyService:
    def __init__(
        self, repo: CatalogRepository, clock: Callable[[], datetime], new_id: Callable[[str], str]
    ) -> None:
        self.repo = repo
        self.clock = clock
        self.new_id = new_id

    def create(self, request: s.ApiKeyCreate) -> s.ApiKeyCreated:
        now = self.clock()
        consumer_name = request.consumer or request.label
        consumer = self.repo.consumer_by_name(consumer_name)
        if consumer is None:
            consumer = Consumer(
                id=self.new_id("csm"),
                name=consumer_name,
                rate_limit_per_minute=request.rate_limit_per_minute,
                created_at=now,
            )
            self.repo.add(consumer)
        elif request.rate_limit_per_minute is not None:
            consumer.rate_limit_per_minute = request.rate_limit_per_minute
        key_id, secret, key = new_key()
        salt = secrets.token_hex(16)
        row = ApiKey(
            id=key_id,
            consumer_id=consumer.id,
            label=request.label,
            salt=salt,
            secret_hash=hash_secret(salt, secret),
            scopes=list(dict.fromkeys(request.scopes)),
            created_at=now,
            expires_at=request.expires_at,
            revoked_at=None,
        )
        self.repo.add(row)
        return s.ApiKeyCreated(key=key, **_read(row, consumer).model_dump())

    def list_keys(self, filters: s.ApiKeyFilters) -> tuple[list[s.ApiKeyRead], str | None]:
        rows = self.repo.list_keys(
            decode_cursor(filters.cursor), filters.limit + 1, filters.include_revoked
        )
        more = len(rows) > filters.limit
        rows = rows[: filters.limit]
        items = [_read(key, consumer) for key, consumer in rows]
        return items, (encode_cursor(rows[-1][0].pk) if more else None)

    def revoke(self, key_id: str) -> s.ApiKeyRead:
        found = self.repo.key_with_consumer(key_id) if could_be_id(key_id) else None
        if found is None:
            raise NotFoundError(f"API key '{key_id}' does not exist.")
        key, consumer = found
        if key.revoked_at is None:
            key.revoked_at = self.clock()
            self.repo.flush()
        return _read(key, consumer)

    def verify(self, presented: str) -> s.KeyVerification:
        match = KEY_PATTERN.match(presented)
        if match is None:
            return s.KeyVerification(valid=False, reason="malformed")
        key_id, secret = match.groups()
        found = self.repo.key_with_consumer(key_id) if could_be_id(key_id) else None
        if found is None:
            # Compare anyway so an unknown id costs the same time as a wrong secret.
            hmac.compare_digest(hash_secret("", secret), "0" * 64)
            return s.KeyVerification(valid=False, reason="unknown")
        key, consumer = found
        if not hmac.compare_digest(hash_secret(key.salt, secret), key.secret_hash):
            return s.KeyVerification(valid=False, reason="unknown")
        if key.revoked_at is not None:
            return s.KeyVerification(valid=False, reason="revoked", key_id=key.id)
        if key.expires_at is not None and key.expires_at <= self.clock():
            return s.KeyVerification(valid=False, reason="expired", key_id=key.id)
        return s.KeyVerification(
            valid=True,
            key_id=key.id,
            consumer_id=consumer.id,
            scopes=list(key.scopes),
            rate_limit_per_minute=consumer.rate_limit_per_minute,
            expires_at=key.expires_at,
        )


def _read(key: ApiKey, consumer: Consumer) -> s.ApiKeyRead:
    return s.ApiKeyRead(
        id=key.id,
        label=key.label,
        consumer_id=consumer.id,
        consumer=consumer.name,
        scopes=list(key.scopes),
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        rate_limit_per_minute=consumer.rate_limit_per_minute,
    )
