"""All SQL of the catalog. Repositories flush, never commit: the request owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
import psycopg
from sqlalchemy import (
    JSON,
    ColumnElement,
    String,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    column,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row as ResultRow
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from services.catalog.models import (
    ApiKey,
    Base,
    CatalogState,
    ChangeLogEntry,
    Consumer,
    Demand,
    Equipment,
    EventCursor,
    IdempotencyRecord,
    MatchOutcome,
    Solution,
    Supplier,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)
from services.shared.errors import ConflictError

Row = TypeVar("Row", bound=Base)


def could_be_id(text: str) -> bool:
    """Whether ``text`` could name a stored row: printable, and short like every issued ID.

    Ask it before looking up an ID from a URL path: PostgreSQL text cannot even hold a NUL, so
    such a query fails instead of finding nothing."""
    return 0 < len(text) <= 40 and text.isprintable()


# From this many rows on, PostgreSQL gets COPY instead of INSERTs.
_COPY_MIN_ROWS = 200
# How many values go into one IN (...) list: well under SQLite's and PostgreSQL's limits.
_IN_CHUNK = 900


PRIVATE_RESOURCES = ("demand", "match_outcome")
"""Change-log resources that belong to the consumer owning the demand (outcomes say who a
consumer deals with); every other resource is shared catalog data."""


@dataclass(frozen=True)
class OwnedBy:
    """Narrows a demand query to one owner's rows; ``consumer_id`` None: the unowned rows."""

    consumer_id: str | None

    def condition(self, column: Any) -> ColumnElement[bool]:
        if self.consumer_id is None:
            return column.is_(None)  # type: ignore[no-any-return]
        return column == self.consumer_id  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ListQuery:
    """Filters of a list request, already resolved to stored values by the service."""

    kind: str | None = None
    equal: tuple[tuple[str, Any], ...] = ()  # column name -> value
    contains: tuple[tuple[str, str], ...] = ()  # JSON list column -> element
    text: str | None = None
    text_columns: tuple[str, ...] = ()
    updated_since: datetime | None = None
    owned_by: OwnedBy | None = None  # demands only; None: every owner's
    after_pk: int = 0
    limit: int = 20


class CatalogRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    # ------------------------------------------------------------ versions and change log

    def lock_version(self) -> int:
        """Current catalog version, locking the state row until the transaction ends.

        On PostgreSQL ``FOR UPDATE`` serialises writers; on SQLite the write session already
        began with ``BEGIN IMMEDIATE``, which does the same.
        """
        stmt = select(CatalogState.version).where(CatalogState.id == 1).with_for_update()
        return int(self.session.execute(stmt).scalar_one())

    def current_version(self) -> int:
        return int(
            self.session.execute(
                select(CatalogState.version).where(CatalogState.id == 1)
            ).scalar_one()
        )

    def set_version(self, version: int) -> None:
        self.session.execute(
            update(CatalogState).where(CatalogState.id == 1).values(version=version)
        )

    def append_changes(self, entries: Sequence[dict[str, Any]]) -> None:
        if self.dialect == "postgresql" and len(entries) >= _COPY_MIN_ROWS:
            self._copy_rows(ChangeLogEntry, entries)
            return
        stmt = insert(ChangeLogEntry)
        for start in range(0, len(entries), 5000):
            self.session.execute(stmt, list(entries[start : start + 5000]))

    def list_changes(
        self, after: int, limit: int, demands_of: str | None = None
    ) -> Sequence[ResultRow[tuple[int, str, str, str, dict[str, Any] | None, datetime]]]:
        """Entries after ``after`` as rows of (version, resource, resource_id, op, data,
        changed_at); with ``demands_of``, the entries of demands and of their match outcomes
        (which say who a consumer deals with) of that owner only.

        Plain rows, not ORM objects: a page is read once and never changed, and building a
        tracked instance per entry was most of the time a 1,000-entry page took."""
        log = ChangeLogEntry
        stmt = (
            select(log.version, log.resource, log.resource_id, log.op, log.data, log.changed_at)
            .where(ChangeLogEntry.version > after)
            .order_by(ChangeLogEntry.version)
            .limit(limit)
        )
        if demands_of is not None:
            stmt = stmt.where(
                or_(
                    ChangeLogEntry.resource.not_in(PRIVATE_RESOURCES),
                    ChangeLogEntry.owner_consumer_id == demands_of,
                )
            )
        return self.session.execute(stmt).all()

    # ------------------------------------------------------------ single rows

    def get(
        self,
        model: type[Row],
        public_id: str,
        kind: str | None = None,
        owned_by: OwnedBy | None = None,
    ) -> Row | None:
        stmt = select(model).where(model.id == public_id)  # type: ignore[attr-defined]
        if kind is not None:
            stmt = stmt.where(Supplier.kind == kind)
        if owned_by is not None:
            stmt = stmt.where(owned_by.condition(model.owner_consumer_id))  # type: ignore[attr-defined]
        return self.session.execute(stmt).scalar_one_or_none()

    def get_by_external_ref(
        self,
        model: type[Row],
        external_ref: str,
        kind: str | None = None,
        owned_by: OwnedBy | None = None,
    ) -> Row | None:
        stmt = select(model).where(model.external_ref == external_ref)  # type: ignore[attr-defined]
        if kind is not None:
            stmt = stmt.where(Supplier.kind == kind)
        if owned_by is not None:
            stmt = stmt.where(owned_by.condition(model.owner_consumer_id))  # type: ignore[attr-defined]
        return self.session.execute(stmt).scalar_one_or_none()

    def add(self, row: Base) -> None:
        self.session.add(row)
        self.flush()

    def delete(self, row: Base) -> None:
        self.session.delete(row)
        self.flush()

    def flush(self) -> None:
        try:
            self.session.flush()
        except IntegrityError as exc:
            raise ConflictError("The write conflicts with an existing resource.") from exc

    # ------------------------------------------------------------ bulk (import)

    def rows_by_external_refs(
        self,
        model: type[Base],
        refs: Iterable[str],
        kind: str | None = None,
        owned_by: OwnedBy | None = None,
    ) -> dict[str, Any]:
        """Stored rows (plain, read-only rows: no ORM identity map) keyed by external_ref."""
        found: dict[str, Any] = {}
        refs = list(refs)
        table = model.__table__
        ext = table.c.external_ref
        if self.dialect == "postgresql":
            # One array parameter rather than IN (...): psycopg prepares repeated statements,
            # and PostgreSQL's generic plan for a long IN list scans the whole table.
            chunks = [refs] if refs else []
        else:
            chunks = [refs[i : i + _IN_CHUNK] for i in range(0, len(refs), _IN_CHUNK)]
        for chunk in chunks:
            condition = (
                ext == any_(bindparam("refs", chunk, type_=ARRAY(String)))
                if self.dialect == "postgresql"
                else ext.in_(chunk)
            )
            stmt = select(table).where(condition)
            if kind is not None:
                stmt = stmt.where(table.c.kind == kind)
            if owned_by is not None:
                stmt = stmt.where(owned_by.condition(table.c.owner_consumer_id))
            for row in self.session.execute(stmt):
                found[row.external_ref] = row
        return found

    def _copy_rows(self, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
        """PostgreSQL's COPY, in the session's transaction: several times faster than
        INSERTs for the thousands of rows of an import. Values go as text; JSON columns are
        serialised here and parsed by the server."""
        table: Table = model.metadata.tables[model.__tablename__]
        columns = [c.name for c in table.columns if c.name in rows[0]]
        json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
        raw = self.session.connection().connection.driver_connection
        assert raw is not None
        sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"  # names from our own table
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(
                    [
                        None
                        if row.get(name) is None
                        else orjson.dumps(row[name]).decode()
                        if name in json_columns
                        else row[name]
                        for name in columns
                    ]
                )

    def bulk_insert(self, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
        if self.dialect == "postgresql" and len(rows) >= _COPY_MIN_ROWS:
            try:
                self._copy_rows(model, rows)
            except psycopg.errors.UniqueViolation as exc:
                raise ConflictError("The import conflicts with an existing resource.") from exc
            return
        # render_nulls keeps every row's column set identical, so the rows go out as one
        # executemany instead of one batch per distinct set of non-null columns.
        stmt = insert(model).execution_options(render_nulls=True)
        try:
            for start in range(0, len(rows), 5000):
                self.session.execute(stmt, list(rows[start : start + 5000]))
        except IntegrityError as exc:
            raise ConflictError("The import conflicts with an existing resource.") from exc

    def bulk_update(self, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
        """Update by primary key (each dict has ``pk`` and the columns to set)."""
        if rows:
            self.session.execute(update(model), list(rows))

    # ------------------------------------------------------------ lists

    def list_page(self, model: type[Row], query: ListQuery) -> list[Row]:
        pk = model.pk  # type: ignore[attr-defined]
        stmt = select(model).where(pk > query.after_pk)
        for condition in self._conditions(model, query):
            stmt = stmt.where(condition)
        stmt = stmt.order_by(pk).limit(query.limit)
        return list(self.session.execute(stmt).scalars())

    def _conditions(self, model: type[Base], query: ListQuery) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if query.kind is not None:
            conditions.append(Supplier.kind == query.kind)
        if query.owned_by is not None:
            conditions.append(query.owned_by.condition(model.owner_consumer_id))  # type: ignore[attr-defined]
        for name, value in query.equal:
            conditions.append(getattr(model, name) == value)
        for name, element in query.contains:
            conditions.append(self._json_list_contains(getattr(model, name), element))
        if query.updated_since is not None:
            conditions.append(model.updated_at >= query.updated_since)  # type: ignore[attr-defined]
        if query.text:
            pattern = "%" + _escape_like(query.text) + "%"
            conditions.append(
                or_(
                    *(
                        cast(getattr(model, name), Text).ilike(pattern, escape="\\")
                        if name in _JSON_COLUMNS
                        else getattr(model, name).ilike(pattern, escape="\\")
                        for name in query.text_columns
                    )
                )
                if query.text_columns
                else false()
            )
        return conditions

    def _json_list_contains(
        self, col: InstrumentedAttribute[Any], element: str
    ) -> ColumnElement[bool]:
        if self.dialect == "postgresql":
            return type_coerce(col, JSONB).contains([element])
        each = func.json_each(col).table_valued("value")
        return exists(select(literal(1)).select_from(each).where(column("value") == element))

    # ------------------------------------------------------------ children of suppliers

    def equipment_of(self, supplier_ids: Sequence[str]) -> list[Equipment]:
        out: list[Equipment] = []
        for start in range(0, len(supplier_ids), _IN_CHUNK):
            stmt = (
                select(Equipment)
                .where(Equipment.supplier_id.in_(supplier_ids[start : start + _IN_CHUNK]))
                .order_by(Equipment.pk)
            )
            out.extend(self.session.execute(stmt).scalars())
        return out

    def solutions_of(self, platform_id: str) -> list[Solution]:
        stmt = select(Solution).where(Solution.platform_id == platform_id).order_by(Solution.pk)
        return list(self.session.execute(stmt).scalars())

    def delete_children(self, supplier_id: str) -> None:
        self.session.execute(delete(Equipment).where(Equipment.supplier_id == supplier_id))
        self.session.execute(delete(Solution).where(Solution.platform_id == supplier_id))

    # ------------------------------------------------------------ brokers

    def demands_of_broker(self, broker_id: str) -> list[Demand]:
        stmt = select(Demand).where(Demand.broker_id == broker_id).order_by(Demand.pk)
        return list(self.session.execute(stmt).scalars())

    def count(self, model: type[Base], kind: str | None = None) -> int:
        stmt = select(func.count()).select_from(model)
        if kind is not None:
            stmt = stmt.where(and_(Supplier.kind == kind))
        return int(self.session.execute(stmt).scalar_one())

    # ------------------------------------------------------------ demand lifecycle, outcomes

    def overdue_demands(self, statuses: Sequence[str], now: datetime, limit: int) -> list[Demand]:
        """Demands in ``statuses`` whose ``expires_at`` has passed, oldest row first."""
        stmt = (
            select(Demand)
            .where(Demand.status.in_(statuses), Demand.expires_at <= now)
            .order_by(Demand.pk)
            .limit(limit)
        )
        return list(self.session.execute(stmt).scalars())

    def list_outcomes(
        self,
        column: str,
        value: str,
        outcome: str | None,
        *,
        before_pk: int | None,
        limit: int,
        owned_by: OwnedBy | None = None,
    ) -> list[MatchOutcome]:
        """Outcomes whose ``column`` (demand_id or supplier_id) is ``value``, newest first;
        with ``owned_by``, only those of that owner's demands."""
        stmt = select(MatchOutcome).where(getattr(MatchOutcome, column) == value)
        if owned_by is not None:
            stmt = stmt.join(Demand, Demand.id == MatchOutcome.demand_id).where(
                owned_by.condition(Demand.owner_consumer_id)
            )
        if outcome is not None:
            stmt = stmt.where(MatchOutcome.outcome == outcome)
        if before_pk is not None:
            stmt = stmt.where(MatchOutcome.pk < before_pk)
        stmt = stmt.order_by(MatchOutcome.pk.desc()).limit(limit)
        return list(self.session.execute(stmt).scalars())

    # ------------------------------------------------------------ API keys

    def consumer_by_name(self, name: str) -> Consumer | None:
        stmt = select(Consumer).where(Consumer.name == name)
        return self.session.execute(stmt).scalar_one_or_none()

    def key_with_consumer(self, key_id: str) -> tuple[ApiKey, Consumer] | None:
        stmt = (
            select(ApiKey, Consumer)
            .join(Consumer, Consumer.id == ApiKey.consumer_id)
            .where(ApiKey.id == key_id)
        )
        row = self.session.execute(stmt).first()
        return (row[0], row[1]) if row else None

    def list_keys(
        self, after_pk: int, limit: int, include_revoked: bool
    ) -> list[tuple[ApiKey, Consumer]]:
        stmt = (
            select(ApiKey, Consumer)
            .join(Consumer, Consumer.id == ApiKey.consumer_id)
            .where(ApiKey.pk > after_pk)
            .order_by(ApiKey.pk)
            .limit(limit)
        )
        if not include_revoked:
            stmt = stmt.where(ApiKey.revoked_at.is_(None))
        return [(row[0], row[1]) for row in self.session.execute(stmt)]

    # ------------------------------------------------------------ idempotency keys

    def idempotency_record(self, consumer_id: str, key: str) -> IdempotencyRecord | None:
        stmt = select(IdempotencyRecord).where(
            IdempotencyRecord.consumer_id == consumer_id, IdempotencyRecord.key == key
        )
        return self.session.execute(stmt).scalar_one_or_none()

    def delete_idempotency_record(self, record: IdempotencyRecord) -> None:
        self.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.pk == record.pk))
        self.session.expunge(record)

    def add_idempotency_record(self, record: IdempotencyRecord) -> bool:
        """Store an answer; False when another transaction already holds (consumer, key).

        On a conflict the session is rolled back: the write the answer belongs to is undone.
        """
        self.session.add(record)
        try:
            self.session.flush()
        except IntegrityError:
            self.session.rollback()
            return False
        return True

    def sweep_idempotency_records(self, before: datetime, limit: int = 100) -> None:
        """Delete up to ``limit`` answers stored before ``before``; rows another writer holds
        are skipped (PostgreSQL ``SKIP LOCKED``), so two sweeps never wait on each other."""
        expired = (
            select(IdempotencyRecord.pk)
            .where(IdempotencyRecord.created_at < before)
            .order_by(IdempotencyRecord.pk)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        pks = list(self.session.execute(expired).scalars())
        if pks:
            self.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.pk.in_(pks)))

    # ------------------------------------------------------------ webhooks and their outbox

    def list_webhooks(self, owner_id: str | None, after_pk: int, limit: int) -> list[Webhook]:
        """Webhooks in creation order; ``owner_id`` None lists every owner's."""
        stmt = select(Webhook).where(Webhook.pk > after_pk).order_by(Webhook.pk).limit(limit)
        if owner_id is not None:
            stmt = stmt.where(Webhook.owner_id == owner_id)
        return list(self.session.execute(stmt).scalars())

    def count_webhooks(self, owner_id: str) -> int:
        stmt = select(func.count()).select_from(Webhook).where(Webhook.owner_id == owner_id)
        return int(self.session.execute(stmt).scalar_one())

    def subscribed_webhook_ids(
        self, event_type: str, demand_owner: str | None = None, *, demand_event: bool = False
    ) -> list[str]:
        """Enabled webhooks subscribed to ``event_type``. A demand event goes only to the
        demand owner's webhooks and to webhooks registered with scope admin."""
        stmt = select(
            Webhook.id, Webhook.event_types, Webhook.owner_id, Webhook.owner_is_admin
        ).where(Webhook.enabled.is_(True))
        ids = []
        # The table is small (endpoints, not events): filtering the JSON list here is simpler
        # than a containment query per dialect, and just as fast.
        for webhook_id, types, owner_id, is_admin in self.session.execute(stmt):
            if event_type not in types:
                continue
            if demand_event and not is_admin and (demand_owner is None or owner_id != demand_owner):
                continue
            ids.append(webhook_id)
        return ids

    def subscribed_event_types(self) -> set[str]:
        stmt = select(Webhook.event_types).where(Webhook.enabled.is_(True))
        return {t for types in self.session.execute(stmt).scalars() for t in types}

    def insert_event(self, event: dict[str, Any]) -> bool:
        """Insert an outbox event; False (and nothing written) when its id is already there."""
        insert_ = postgresql_insert if self.dialect == "postgresql" else sqlite_insert
        stmt = (
            insert_(WebhookEvent)
            .values(**event)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(WebhookEvent.pk)
        )
        return self.session.execute(stmt).scalar_one_or_none() is not None

    def insert_deliveries(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.session.execute(insert(WebhookDelivery), list(rows))

    def has_due_deliveries(self, now: datetime) -> bool:
        """A read-only look first, so an idle worker never takes the write lock."""
        stmt = select(
            exists().where(
                WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now
            )
        )
        return bool(self.session.execute(stmt).scalar())

    def claim_due_deliveries(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[tuple[WebhookDelivery, WebhookEvent, Webhook]]:
        """Take up to ``limit`` due deliveries, leasing them until ``lease_until``.

        On PostgreSQL ``SKIP LOCKED`` lets several catalog replicas claim side by side without
        taking the same row; SQLite's single writer (``BEGIN IMMEDIATE``) does the same. The
        lease (``next_attempt_at`` moved forward) keeps a claimed delivery from being claimed
        again while its attempt is in flight; if the process dies, it is due again after it.
        """
        due = (
            select(WebhookDelivery.pk)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.pk)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        pks = list(self.session.execute(due).scalars())
        if not pks:
            return []
        self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.pk.in_(pks))
            .values(next_attempt_at=lease_until)
        )
        stmt = (
            select(WebhookDelivery, WebhookEvent, Webhook)
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(WebhookDelivery.pk.in_(pks))
            .order_by(WebhookDelivery.pk)
        )
        return [(row[0], row[1], row[2]) for row in self.session.execute(stmt)]

    def sweep_webhook_events(self, before: datetime, limit: int = 500) -> int:
        """Delete up to ``limit`` events created before ``before`` with no delivery still
        pending; their deliveries go with them (ON DELETE CASCADE)."""
        pending = exists().where(
            WebhookDelivery.event_id == WebhookEvent.id, WebhookDelivery.status == "pending"
        )
        stmt = (
            select(WebhookEvent.pk)
            .where(WebhookEvent.created_at < before, ~pending)
            .order_by(WebhookEvent.pk)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        pks = list(self.session.execute(stmt).scalars())
        if pks:
            self.session.execute(delete(WebhookEvent).where(WebhookEvent.pk.in_(pks)))
        return len(pks)

    def delivery(self, delivery_id: str) -> WebhookDelivery | None:
        stmt = select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
        return self.session.execute(stmt).scalar_one_or_none()

    def list_deliveries(
        self, webhook_id: str, status: str | None, after_pk: int, limit: int
    ) -> list[tuple[WebhookDelivery, str]]:
        """A webhook's deliveries, oldest first like every list here, each with its event's
        type."""
        stmt = (
            select(WebhookDelivery, WebhookEvent.type)
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.pk > after_pk)
            .order_by(WebhookDelivery.pk)
            .limit(limit)
        )
        if status is not None:
            stmt = stmt.where(WebhookDelivery.status == status)
        return [(row[0], row[1]) for row in self.session.execute(stmt)]

    def event_cursor(self, name: str) -> int:
        stmt = select(EventCursor.version).where(EventCursor.name == name)
        return int(self.session.execute(stmt).scalar_one_or_none() or 0)

    def move_event_cursor(self, name: str, expected: int, version: int) -> int | None:
        """Set the cursor to ``version`` if it is at ``expected`` (under its row lock); else
        leave it and return where it is."""
        insert_ = postgresql_insert if self.dialect == "postgresql" else sqlite_insert
        self.session.execute(
            insert_(EventCursor).values(name=name, version=0).on_conflict_do_nothing()
        )
        stmt = select(EventCursor).where(EventCursor.name == name).with_for_update()
        cursor = self.session.execute(stmt).scalar_one()
        if cursor.version != expected:
            return cursor.version
        cursor.version = version
        self.session.flush()
        return None

    def event_type_of(self, event_id: str) -> str:
        stmt = select(WebhookEvent.type).where(WebhookEvent.id == event_id)
        return str(self.session.execute(stmt).scalar_one())


_JSON_COLUMNS = {"tags", "capabilities", "equipment", "certifications", "industry_chains", "specs"}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


__all__ = ["CatalogRepository", "ListQuery", "OwnedBy"]
