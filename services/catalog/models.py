"""SQLAlchemy 2 models of the catalog. Tables are created only by Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL (containment operators, indexable); JSON text on SQLite.
JsonList = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
BigIntPk = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampedMixin:
    version: Mapped[int] = mapped_column(BigInteger, comment="catalog version of the last change")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class Supplier(TimestampedMixin, Base):
    """A pilot-test platform (中试平台) or contract manufacturer (中试代工厂): same fields."""

    __tablename__ = "suppliers"
    __table_args__ = (
        UniqueConstraint("kind", "external_ref"),
        Index("ix_suppliers_kind_pk", "kind", "pk"),
    )

    pk: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    external_ref: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    organization: Mapped[str] = mapped_column(String(200))
    district: Mapped[str] = mapped_column(String(100), index=True)
    description: Mapped[str] = mapped_column(Text)
    industry_chains: Mapped[list[str]] = mapped_column(JsonList)
    tags: Mapped[list[str]] = mapped_column(JsonList)
    capabilities: Mapped[list[str]] = mapped_column(JsonList)
    equipment: Mapped[list[str]] = mapped_column(JsonList)
    certifications: Mapped[list[str]] = mapped_column(JsonList)
    stages: Mapped[list[str]] = mapped_column(JsonList)
    accepts_vouchers: Mapped[bool] = mapped_column(Boolean)
    level: Mapped[str | None] = mapped_column(String(8))


class Demand(TimestampedMixin, Base):
    """A pilot-test demand (中试需求): the input of matching.

    A demand belongs to the consumer whose key created it (``owner_consumer_id``; null for
    demands loaded from inside, e.g. the demo catalog or the CLI import, and for those created
    before owners were recorded). ``external_ref`` is the owner's own ID, so it is unique per
    owner: two consumers may both call a demand "D-1". Demands without an owner share one
    namespace, kept unique by a partial index (a plain unique constraint treats NULL owners as
    all different).
    """

    __tablename__ = "demands"
    __table_args__ = (
        UniqueConstraint("owner_consumer_id", "external_ref"),
        Index(
            "uq_demands_external_ref_unowned",
            "external_ref",
            unique=True,
            sqlite_where=text("owner_consumer_id IS NULL"),
            postgresql_where=text("owner_consumer_id IS NULL"),
        ),
    )

    pk: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    owner_consumer_id: Mapped[str | None] = mapped_column(
        String(200), comment="consumer whose key created it; null: created from inside"
    )
    external_ref: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    industry_chains: Mapped[list[str]] = mapped_column(JsonList)
    tags: Mapped[list[str]] = mapped_column(JsonList)
    stage: Mapped[str | None] = mapped_column(String(16))
    district: Mapped[str | None] = mapped_column(String(100), index=True)
    needs_voucher: Mapped[bool] = mapped_column(Boolean)
    required_certifications: Mapped[list[str]] = mapped_column(JsonList)
    # No database foreign key: the service checks it, and deleting a broker unassigns its
    # demands through the service, so each unassignment reaches the change log.
    broker_id: Mapped[str | None] = mapped_column(String(40), index=True)

    # Lifecycle (services/catalog/lifecycle.py): server-managed, never set by PATCH.
    status: Mapped[str] = mapped_column(String(16), index=True)
    status_changed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status_reason: Mapped[str | None] = mapped_column(String(500))
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)


class Broker(TimestampedMixin, Base):
    """A technology broker (技术经纪人) who helps demands find and close a pilot test."""

    __tablename__ = "brokers"

    pk: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    external_ref: Mapped[str | None] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    organization: Mapped[str] = mapped_column(String(200))
    district: Mapped[str] = mapped_column(String(100), index=True)
    industry_chains: Mapped[list[str]] = mapped_column(JsonList)
    tags: Mapped[list[str]] = mapped_column(JsonList)
    certification_level: Mapped[str | None] = mapped_column(String(8))
    work_email: Mapped[str | None] = mapped_column(String(200))
    work_phone: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean)


class Equipment(TimestampedMixin, Base):
    """A piece of pilot-test equipment (中试设备) owned by a platform or manufacturer."""

    __tablename__ = "equipment"

    pk: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    external_ref: Mapped[str | None] = mapped_column(String(200), unique=True)
    supplier_id: Mapped[str] = mapped_column(
        ForeignKey("suppliers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(200))
    specs: Mapped[list[str]] = mapped_column(JsonList)
    availability: Mapped[str] = mapped_column(String(500))
    sharing_url: Mapped[str | None] = mapped_column(String(500))


class Solution(TimestampedMixin, Base):
    """A pilot-test solution (中试解决方案) offered by a platform."""

    __tablename__ = "solutions"

    pk: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    external_ref: Mapped[str | None] = mapped_column(String(200), unique=True)
    platform_id: Mapped[str] = mapped_column(
        ForeignKey("suppliers.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    industry_chains: Mapped[list[str]] = mapped_column(JsonList)
    tags: Mapped[list[str]] = mapped_column(JsonList)
    stages: Mapped[list[str]] = mapped_column(JsonList)
    typical_duration_days: Mapped[int | None] = mapped_column(Integer)
    price_min_cny: Mapped[int | None] = mapped_column(BigInteger)
    price_max_cny: Mapped[int | None] = mapped_column(BigInteger)


class MatchOutcome(Base):
    """What happened to a match of a demand with a supplier (viewed, contacted, …, declined).

    A history: outcomes are never changed, and stay when their demand or supplier is deleted,
    so no foreign keys. ``pk`` orders them by when they were recorded.
    """

    __tablename__ = "match_outcomes"
    __table_args__ = (
        Index("ix_match_outcomes_demand_id_pk", "demand_id", "pk"),
        Index("ix_match_outcomes_supplier_id_pk", "supplier_id", "pk"),
    )

    pk: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    demand_id: Mapped[str] = mapped_column(String(40))
    supplier_id: Mapped[str] = mapped_column(String(40))
    supplier_kind: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(500))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime(), comment="when it happened")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), comment="when it was recorded")
    version: Mapped[int] = mapped_column(BigInteger, comment="catalog version of the write")


class ChangeLogEntry(Base):
    """One change to the catalog, written in the same transaction as the change itself.

    ``version`` is the catalog's change sequence number; writers take it under a lock on
    ``catalog_state`` so versions are gapless and follow commit order, which lets a reader page
    with ``after=V`` without ever missing a change.
    """

    __tablename__ = "change_log"

    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    resource: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(40), index=True)
    op: Mapped[str] = mapped_column(String(8))
    data: Mapped[dict[str, Any] | None] = mapped_column(JsonList)
    # A demand's owner, on its deletes too, so the log can be filtered for one consumer.
    owner_consumer_id: Mapped[str | None] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CatalogState(Base):
    """A single row holding the current catalog version; its row lock serialises writers."""

    __tablename__ = "catalog_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)


class Consumer(Base):
    """A caller of the API (the municipal platform, an integrator); owns API keys."""

    __tablename__ = "consumers"

    pk: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ApiKey(Base):
    """An API key, stored as a salted SHA-256 hash of its secret; the key is shown only once."""

    __tablename__ = "api_keys"

    pk: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    consumer_id: Mapped[str] = mapped_column(
        ForeignKey("consumers.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(200))
    salt: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[list[str]] = mapped_column(JsonList)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class IdempotencyRecord(Base):
    """The stored answer to a POST sent with ``Idempotency-Key``, per consumer and key.

    Written in the same transaction as the write it answers, so a stored answer exists exactly
    when the write committed; the unique (consumer, key) pair stops a concurrent duplicate.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("consumer_id", "key"),)

    pk: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    consumer_id: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64), comment="sha256 of method, path, body")
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text, comment="the JSON answer, byte for byte")
    location: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class Webhook(Base):
    """An endpoint a consumer registered for event types; owned by that consumer.

    ``secret`` is the Standard Webhooks signing key (``whsec_…``). It is kept as is, not hashed:
    the catalog must hold it to sign every delivery (HMAC needs the key on the signing side).
    """

    __tablename__ = "webhooks"

    pk: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    owner_id: Mapped[str] = mapped_column(String(200), index=True, comment="consumer id")
    owner_is_admin: Mapped[bool] = mapped_column(
        Boolean, comment="registered with scope admin: receives every consumer's demand events"
    )
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(JsonList)
    description: Mapped[str] = mapped_column(String(500))
    enabled: Mapped[bool] = mapped_column(Boolean)
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class WebhookEvent(Base):
    """The outbox: one event, written in the transaction of the change that caused it.

    ``id`` is deterministic (derived from what happened), so writing the same event twice is a
    no-op; it is the ``webhook-id`` receivers deduplicate by.
    """

    __tablename__ = "webhook_events"

    pk: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JsonList)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class WebhookDelivery(Base):
    """One event for one webhook: its state, attempts and when the next attempt is due."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook_id_pk", "webhook_id", "pk"),
    )

    pk: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), comment="pending, delivered or failed")
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_duration_ms: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class EventCursor(Base):
    """How far a producer of derived events (matching's notifier) has read the change log.

    Moved in the same transaction as the events it produced, by compare-and-set: of two
    matching replicas working on the same range, one wins and the other's events are refused.
    """

    __tablename__ = "event_cursors"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, comment="catalog version processed")
