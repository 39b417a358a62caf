"""Idempotency keys: a POST repeated with the same ``Idempotency-Key`` is answered, not redone.

The answer to a POST sent with a key is stored in the same transaction as the write, so it
exists exactly when the write committed. A repeat with the same key and the same request (same
method, path and body bytes) gets the stored answer back, with ``Idempotent-Replayed: true``;
the same key with another request is a 422. Keys belong to the consumer the gateway verified
(``X-Pilotmatch-Consumer``, or ``anonymous``) and expire after ``IDEMPOTENCY_TTL_SECONDS``.

Two concurrent requests with one key cannot both write: the unique (consumer, key) pair makes
the second transaction fail, which is rolled back and answered from the first one's stored
answer, or with 409 while the first is still in progress.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.catalog.models import IdempotencyRecord
from services.catalog.repository import CatalogRepository
from services.shared import caller
from services.shared.errors import BadRequestError, ConflictError, FieldIssue, InvalidInputError

HEADER = "Idempotency-Key"
CONSUMER_HEADER = caller.CONSUMER_HEADER
REPLAYED_HEADER = "Idempotent-Replayed"
ANONYMOUS = "anonymous"

KEY_PATTERN = r"^[!-~]([ -~]*[!-~])?$"
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]{1,200}")


@dataclass(frozen=True)
class IdempotentRequest:
    """Who sent which key for which request (``fingerprint``: sha256 of method, path, body)."""

    consumer_id: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    body: str
    location: str | None


def parse_key(value: str) -> str:
    """The key as sent, or a 400 when it is not 1–200 printable ASCII characters."""
    if not _PRINTABLE_ASCII.fullmatch(value):
        raise BadRequestError(f"{HEADER} must be 1 to 200 printable ASCII characters.")
    return value


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(method.upper().encode())
    digest.update(b"\n")
    digest.update(path.encode())
    digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()


def request_for(
    key_header: str | None, consumer_header: str | None, method: str, path: str, body: bytes
) -> IdempotentRequest | None:
    """The idempotent request, or None when no key was sent (the request is handled as before)."""
    if key_header is None:
        return None
    consumer = consumer_header or ANONYMOUS
    if not _PRINTABLE_ASCII.fullmatch(consumer):
        raise BadRequestError(f"{CONSUMER_HEADER} must be 1 to 200 printable ASCII characters.")
    return IdempotentRequest(consumer, parse_key(key_header), fingerprint(method, path, body))


class IdempotencyService:
    def __init__(
        self, repo: CatalogRepository, ttl_seconds: float, clock: Callable[[], datetime]
    ) -> None:
        self.repo = repo
        self.ttl = timedelta(seconds=ttl_seconds)
        self.clock = clock

    def lookup(self, request: IdempotentRequest) -> StoredAnswer | None:
        """The stored answer to repeat, None for a new (or expired) key, 422 for a reused key."""
        record = self.repo.idempotency_record(request.consumer_id, request.key)
        if record is None:
            return None
        if record.created_at + self.ttl <= self.clock():
            # Expired: forget it now, so this request can store its own answer under the key.
            self.repo.delete_idempotency_record(record)
            return None
        if record.fingerprint != request.fingerprint:
            raise InvalidInputError(
                f"This {HEADER} was already used for a different request.",
                [
                    FieldIssue(
                        ("header", HEADER),
                        "already used with another method, path or body; use a new key",
                        "idempotency_key_reused",
                    )
                ],
            )
        return StoredAnswer(record.status_code, record.response_body, record.location)

    def store(
        self, request: IdempotentRequest, status_code: int, body: str, location: str | None
    ) -> StoredAnswer | None:
        """Store the answer in the write's transaction; on a concurrent duplicate, the write is
        rolled back and the other request's answer is returned (409 while it is in progress)."""
        now = self.clock()
        self.repo.sweep_idempotency_records(now - self.ttl)
        stored = self.repo.add_idempotency_record(
            IdempotencyRecord(
                consumer_id=request.consumer_id,
                key=request.key,
                fingerprint=request.fingerprint,
                status_code=status_code,
                response_body=body,
                location=location,
                created_at=now,
            )
        )
        if stored:
            return None
        answer = self.lookup(request)
        if answer is None:
            raise ConflictError(
                f"A request with this {HEADER} is in progress; retry it in a moment."
            )
        return answer
