"""Webhooks: endpoints consumers register, the outbox of events, and the retry schedule.

Plain Python, no HTTP. Events are written to the outbox (``webhook_events``) in the same
transaction as the change that caused them, and fanned out there and then to one delivery per
enabled webhook subscribed to the event's type, so an event reaches exactly the webhooks that
existed when it happened. The delivery worker (``delivery.py``) sends them, signed per the
Standard Webhooks scheme, and retries on the schedule below.

Ownership: a webhook belongs to the consumer that registered it. Consumers see and change only
their own; a caller with scope ``admin`` sees all. Demand events (``demand.matched``,
``supplier.matches_open_demand``) go only to the demand owner's webhooks and to webhooks
registered with scope admin; a demand without an owner reaches admin webhooks only.
"""

from __future__ import annotations

import base64
import ipaddress
import random
import secrets
import socket
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from standardwebhooks.webhooks import Webhook as StandardWebhook

from services.catalog import schemas as s
from services.catalog.idempotency import ANONYMOUS
from services.catalog.models import Webhook, WebhookDelivery
from services.catalog.pagination import decode_cursor, encode_cursor
from services.catalog.repository import PRIVATE_RESOURCES, CatalogRepository, could_be_id
from services.shared.caller import Caller
from services.shared.errors import ConflictError, FieldIssue, InvalidInputError, NotFoundError

Clock = Callable[[], datetime]
IdFactory = Callable[[str], str]

CATALOG_CHANGED = "catalog.changed"
# How many changed resources a catalog.changed event names; past this, receivers page
# /v1/changes over the event's version range.
CHANGES_LISTED = 100
# Standard Webhooks' recommended retry schedule, after the first (immediate) attempt: 5 s,
# 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. A receiver down for a day loses nothing.
RETRY_DELAYS_SECONDS: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)


def _owner_of(caller: Caller) -> str:
    """The consumer a caller's webhooks belong to. A call from inside the system (no consumer
    header) manages webhooks as the anonymous consumer, without admin rights: registering
    endpoints is a consumer's act, never an implicit privilege of the internal network."""
    return caller.consumer_id or ANONYMOUS


# ---------------------------------------------------------------- retry schedule


@dataclass(frozen=True)
class RetrySchedule:
    """When the attempt after a failed one is due: the delays above, times ``scale`` (tests
    shrink it), each with up to ±``jitter`` so retries of many deliveries do not arrive at a
    recovering receiver all at once."""

    delays: tuple[float, ...] = RETRY_DELAYS_SECONDS
    scale: float = 1.0
    jitter: float = 0.1

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    def delay_after(self, attempts: int, rand: Callable[[], float] = random.random) -> float | None:
        """Seconds until the next attempt after ``attempts`` failed ones; None: give up."""
        if attempts < 1 or attempts > len(self.delays):
            return None
        base = self.delays[attempts - 1] * self.scale
        return base * (1 + self.jitter * (2 * rand() - 1))


# ---------------------------------------------------------------- signing


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def message_body(event_type: str, created_at: datetime, data: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "type": event_type,
            "timestamp": created_at.isoformat().replace("+00:00", "Z"),
            "data": data,
        }
    )


def signed_headers(secret: str, message_id: str, sent_at: datetime, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt (signed with the library, not by hand)."""
    signature = StandardWebhook(secret).sign(message_id, sent_at, body.decode())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


# ---------------------------------------------------------------- target URLs


def _refused_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


Resolver = Callable[[str], Iterable[str]]


def resolve_host(host: str) -> list[str]:
    try:
        return [str(info[4][0]) for info in socket.getaddrinfo(host, None)]
    except (OSError, UnicodeError):
        return []


def refused_target(url: str, resolve: Resolver = resolve_host) -> str | None:
    """Why ``url`` must not be called from inside our network (SSRF, OWASP API7), or None.

    Refuses loopback, private, link-local (cloud metadata at 169.254.169.254), multicast and
    reserved addresses, whether written in the URL or what its host name resolves to.
    """
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    return checked_addresses(host, resolve)[1]


def checked_addresses(host: str, resolve: Resolver = resolve_host) -> tuple[list[str], str | None]:
    """(the addresses ``host`` stands for, why calling it is refused or None). A literal
    address stands for itself; a name is resolved once, and one refused address among its
    answers refuses the name (an attacker's DNS may list a public and a private one)."""
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return [], "loopback host"
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        addresses = list(resolve(host))
    else:
        addresses = [str(literal)]
    for text in addresses:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            continue
        if _refused_address(address):
            return addresses, (
                f"{host} is a loopback, private, link-local or reserved address ({address})"
            )
    return addresses, None


def check_url(url: str, *, allow_private: bool, resolve: Resolver = resolve_host) -> None:
    try:
        parts = urlsplit(url)  # ValueError: an unclosed IPv6 bracket
        if parts.port == 0:  # ValueError: a port that is not a number from 0 to 65535
            raise ValueError("port 0 cannot be connected to")
        # The parser that sends the deliveries: a host it cannot encode (not valid IDNA, a
        # bracket that is no IPv6 address) would fail every attempt, so it is refused here.
        # Reading `host` decodes it, as sending does.
        _ = httpx.URL(url).host
    except (ValueError, httpx.InvalidURL):
        raise InvalidInputError(
            "The webhook URL is not a valid URL.",
            [FieldIssue(("url",), "is not a valid URL (host or port)", "url_invalid")],
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(
            "The webhook URL must be an http:// or https:// URL with a host.",
            [FieldIssue(("url",), "must be an http:// or https:// URL with a host", "url_scheme")],
        )
    if "@" in parts.netloc:  # also an empty user:password, "http://@host/"; a "@" in the
        # path or query is no credential and is kept
        raise InvalidInputError(
            "The webhook URL must not carry credentials.",
            [FieldIssue(("url",), "must not contain user:password@", "url_credentials")],
        )
    if not allow_private and (reason := refused_target(url, resolve)) is not None:
        raise InvalidInputError(
            "The webhook URL points inside a private network, which is not allowed here.",
            [FieldIssue(("url",), reason, "url_not_public")],
        )


# ---------------------------------------------------------------- the outbox


class Outbox:
    """Writes events and their deliveries in the caller's transaction."""

    def __init__(self, repo: CatalogRepository, new_id: IdFactory) -> None:
        self.repo = repo
        self.new_id = new_id

    def emit(
        self,
        event_id: str,
        event_type: str,
        data: dict[str, Any],
        now: datetime,
        *,
        demand_owner: str | None = None,
        private: bool | None = None,
    ) -> bool:
        """Write one event with a delivery per subscribed webhook; False when no webhook
        takes it or its id was written before (a repeat is a no-op). A private event (by
        default: a demand event) goes only to ``demand_owner``'s and to admin webhooks."""
        webhooks = self.repo.subscribed_webhook_ids(
            event_type,
            demand_owner,
            demand_event=event_type in s.DEMAND_EVENT_TYPES if private is None else private,
        )
        if not webhooks:
            return False
        if not self.repo.insert_event(
            {"id": event_id, "type": event_type, "data": data, "created_at": now}
        ):
            return False
        self.repo.insert_deliveries(
            [
                {
                    "id": self.new_id("dlv"),
                    "webhook_id": webhook_id,
                    "event_id": event_id,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for webhook_id in webhooks
            ]
        )
        return True

    def catalog_changed(
        self, from_version: int, to_version: int, entries: Sequence[dict[str, Any]], now: datetime
    ) -> bool:
        """One event per write transaction (an import of 10,000 items is one event) for the
        shared catalog, and one per owner for the demands and outcomes it wrote: those are
        as private as the demands (their owner's and admin webhooks only, as in the change
        log), so another consumer never learns their ids."""
        shared = [e for e in entries if e["resource"] not in PRIVATE_RESOURCES]
        private: dict[str | None, list[dict[str, Any]]] = {}
        for e in entries:
            if e["resource"] in PRIVATE_RESOURCES:
                private.setdefault(e.get("owner_consumer_id"), []).append(e)
        emitted = False
        if shared:
            data = catalog_changed_data(from_version, to_version, shared)
            emitted |= self.emit(self.new_id("msg"), CATALOG_CHANGED, data, now, private=False)
        for owner, owned in private.items():
            data = catalog_changed_data(from_version, to_version, owned)
            emitted |= self.emit(
                self.new_id("msg"), CATALOG_CHANGED, data, now, demand_owner=owner, private=True
            )
        return emitted


def catalog_changed_data(
    from_version: int, to_version: int, entries: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """A summary of one write: version range, counts per resource and op, the first changes."""
    counts: Counter[tuple[str, str]] = Counter((e["resource"], e["op"]) for e in entries)
    by_resource: dict[str, dict[str, int]] = {}
    for (resource, op), n in sorted(counts.items()):
        by_resource.setdefault(resource, {})[op] = n
    return {
        "from_version": from_version,
        "to_version": to_version,
        "counts": by_resource,
        "changes": [
            {
                "version": e["version"],
                "resource": e["resource"],
                "id": e["resource_id"],
                "op": e["op"],
            }
            for e in entries[:CHANGES_LISTED]
        ],
        "truncated": len(entries) > CHANGES_LISTED,
    }


# ---------------------------------------------------------------- the service


class WebhookService:
    def __init__(
        self,
        repo: CatalogRepository,
        clock: Clock,
        new_id: IdFactory,
        *,
        allow_private_targets: bool = True,
        resolve: Resolver = resolve_host,
        max_per_owner: int = 25,
    ) -> None:
        self.repo = repo
        self.clock = clock
        self.new_id = new_id
        self.allow_private_targets = allow_private_targets
        self.resolve = resolve
        self.max_per_owner = max_per_owner

    # ------------------------------------------------------------ webhooks

    def create(self, caller: Caller, body: s.WebhookCreate) -> s.WebhookCreated:
        """Register a webhook; a 409 once its owner has ``max_per_owner`` of them (two
        registrations racing may both pass the count: the cap bounds abuse, it is no quota)."""
        check_url(body.url, allow_private=self.allow_private_targets, resolve=self.resolve)
        owned = self.repo.count_webhooks(_owner_of(caller))
        if owned >= self.max_per_owner:
            raise ConflictError(
                f"You already have {owned} webhooks, the most one consumer may register "
                f"({self.max_per_owner}). Delete one you no longer use, or subscribe an "
                "existing one to more event types."
            )
        now = self.clock()
        row = Webhook(
            id=self.new_id("whk"),
            owner_id=_owner_of(caller),
            owner_is_admin=caller.is_admin,
            url=body.url,
            event_types=list(body.event_types),
            description=body.description,
            enabled=True,
            secret=new_secret(),
            created_at=now,
            updated_at=now,
        )
        self.repo.add(row)
        return s.WebhookCreated(**_read(row).model_dump(), secret=row.secret)

    def list_page(self, caller: Caller, filters: s.WebhookFilters) -> s.WebhookPage:
        rows = self.repo.list_webhooks(
            None if caller.is_admin else _owner_of(caller),
            decode_cursor(filters.cursor),
            filters.limit + 1,
        )
        more = len(rows) > filters.limit
        rows = rows[: filters.limit]
        return s.WebhookPage(
            items=[_read(row) for row in rows],
            next_cursor=encode_cursor(rows[-1].pk) if more else None,
        )

    def get(self, caller: Caller, webhook_id: str) -> s.WebhookRead:
        return _read(self._webhook(caller, webhook_id))

    def update(self, caller: Caller, webhook_id: str, patch: s.WebhookUpdate) -> s.WebhookRead:
        row = self._webhook(caller, webhook_id)
        values = patch.model_dump(exclude_unset=True)
        if "url" in values:
            check_url(values["url"], allow_private=self.allow_private_targets, resolve=self.resolve)
        for key, value in values.items():
            setattr(row, key, list(value) if key == "event_types" else value)
        row.updated_at = self.clock()
        self.repo.flush()
        return _read(row)

    def delete(self, caller: Caller, webhook_id: str) -> None:
        # Its deliveries go with it (ON DELETE CASCADE): nothing more is sent to the URL.
        self.repo.delete(self._webhook(caller, webhook_id))

    def rotate_secret(self, caller: Caller, webhook_id: str) -> s.WebhookCreated:
        row = self._webhook(caller, webhook_id)
        row.secret = new_secret()
        row.updated_at = self.clock()
        self.repo.flush()
        return s.WebhookCreated(**_read(row).model_dump(), secret=row.secret)

    def _webhook(self, caller: Caller, webhook_id: str) -> Webhook:
        row = self.repo.get(Webhook, webhook_id) if could_be_id(webhook_id) else None
        # Another consumer's webhook answers exactly like a missing one: no probing for ids.
        if row is None or (not caller.is_admin and row.owner_id != _owner_of(caller)):
            raise NotFoundError(f"Webhook '{webhook_id}' does not exist.")
        return row

    # ------------------------------------------------------------ deliveries

    def deliveries(
        self, caller: Caller, webhook_id: str, filters: s.DeliveryFilters
    ) -> s.DeliveryPage:
        self._webhook(caller, webhook_id)
        rows = self.repo.list_deliveries(
            webhook_id, filters.status, decode_cursor(filters.cursor), filters.limit + 1
        )
        more = len(rows) > filters.limit
        rows = rows[: filters.limit]
        return s.DeliveryPage(
            items=[_delivery(row, event_type) for row, event_type in rows],
            next_cursor=encode_cursor(rows[-1][0].pk) if more else None,
        )

    def redeliver(self, caller: Caller, webhook_id: str, delivery_id: str) -> s.DeliveryRead:
        """Send a delivery again now, whatever its state; the receiver sees the same
        ``webhook-id`` and can tell it already has the event."""
        self._webhook(caller, webhook_id)
        row = self.repo.delivery(delivery_id) if could_be_id(delivery_id) else None
        if row is None or row.webhook_id != webhook_id:
            raise NotFoundError(
                f"Delivery '{delivery_id}' of webhook '{webhook_id}' does not exist."
            )
        row.status = "pending"
        row.next_attempt_at = self.clock()
        self.repo.flush()
        return _delivery(row, self.repo.event_type_of(row.event_id))

    # ------------------------------------------------------------ events from other services

    def accept_events(self, batch: s.InternalEventBatch) -> s.InternalEventsAccepted:
        """Store events once each (by id), and move the producer's cursor with them."""
        position = None
        if batch.cursor is not None:
            move = batch.cursor
            held = self.repo.move_event_cursor(move.name, move.expected, move.version)
            if held is not None:  # another replica got there first: write nothing
                return s.InternalEventsAccepted(
                    accepted=False,
                    inserted=0,
                    duplicates=0,
                    cursor=held,
                    subscribed_event_types=sorted(self.repo.subscribed_event_types()),
                )
            position = move.version
        outbox = Outbox(self.repo, self.new_id)
        now = self.clock()
        inserted = sum(
            outbox.emit(event.id, event.type, event.data, now, demand_owner=event.owner)
            for event in batch.events
        )
        return s.InternalEventsAccepted(
            accepted=True,
            inserted=inserted,
            duplicates=len(batch.events) - inserted,
            cursor=position,
            subscribed_event_types=sorted(self.repo.subscribed_event_types()),
        )

    def subscriptions(self, cursor_name: str | None = None) -> s.EventSubscriptions:
        return s.EventSubscriptions(
            subscribed_event_types=sorted(self.repo.subscribed_event_types()),
            cursor=None if cursor_name is None else self.repo.event_cursor(cursor_name),
        )


def _read(row: Webhook) -> s.WebhookRead:
    return s.WebhookRead(
        id=row.id,
        url=row.url,
        event_types=list(row.event_types),
        description=row.description,
        enabled=row.enabled,
        owner_id=row.owner_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _delivery(row: WebhookDelivery, event_type: str) -> s.DeliveryRead:
    return s.DeliveryRead(
        id=row.id,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        event_type=event_type,
        status=row.status,  # type: ignore[arg-type]
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        last_attempt_at=row.last_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        last_duration_ms=row.last_duration_ms,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
    )


# ---------------------------------------------------------------- attempts


@dataclass(frozen=True)
class AttemptOutcome:
    """What one POST to a receiver gave: a status code, or an error before any answer."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def record_attempt(
    repo: CatalogRepository,
    delivery_id: str,
    outcome: AttemptOutcome,
    now: datetime,
    schedule: RetrySchedule,
) -> WebhookDelivery | None:
    """Store an attempt's outcome and schedule the next one, or give up after the last."""
    row = repo.delivery(delivery_id)
    if row is None:  # the webhook was deleted while the attempt was in flight
        return None
    row.attempts += 1
    row.last_attempt_at = now
    row.last_status_code = outcome.status_code
    row.last_duration_ms = outcome.duration_ms
    if outcome.delivered:
        row.status = "delivered"
        row.delivered_at = now
        row.next_attempt_at = None
        row.last_error = None
    else:
        row.last_error = (outcome.error or f"receiver answered {outcome.status_code}")[:500]
        delay = schedule.delay_after(row.attempts)
        if delay is None:
            row.status = "failed"
            row.next_attempt_at = None
        else:
            row.status = "pending"
            row.next_attempt_at = now + timedelta(seconds=delay)
    repo.flush()
    return row
