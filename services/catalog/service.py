"""Catalog domain logic: plain Python, no HTTP. Collaborators (repository, taxonomy, clock, ID
factory) come in as arguments so it is tested without a server.

Every write runs under the catalog version lock, appends to the change log in the same
transaction, and reports the catalog version after the write. A write that changes nothing
appends nothing and does not move the version, which makes imports idempotent.

Demands belong to the consumer that created them. A caller that is neither admin nor internal
(see ``services.shared.caller``) sees and changes only its own: another consumer's demand is
"not found", exactly like one that does not exist, so its existence does not leak. Suppliers,
equipment and solutions are shared catalog data.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from pydantic import BaseModel, ValidationError

from services.catalog import schemas as s
from services.catalog.models import Base, Broker, Demand, Equipment, Solution, Supplier
from services.catalog.pagination import decode_cursor, encode_cursor
from services.catalog.repository import CatalogRepository, ListQuery, OwnedBy, could_be_id
from services.catalog.webhooks import Outbox
from services.shared.caller import INTERNAL, Caller
from services.shared.errors import (
    ConflictError,
    FieldIssue,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
)
from services.shared.taxonomy import Taxonomy

Clock = Callable[[], datetime]
IdFactory = Callable[[str], str]
Resource = Literal["platform", "manufacturer", "demand", "equipment", "solution", "broker"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def random_id(prefix: str) -> str:
    # Random, not sequential: IDs must not let a caller enumerate other callers' resources.
    return f"{prefix}_{secrets.token_hex(8)}"


@dataclass(frozen=True)
class ResourceSpec:
    resource: Resource
    model: type[Base]
    id_prefix: str
    read: type[s._Stored]
    label: str
    kind: str | None = None  # suppliers table discriminator
    has_chains: bool = False


SPECS: dict[Resource, ResourceSpec] = {
    "platform": ResourceSpec(
        "platform", Supplier, "plt", s.SupplierRead, "Platform", "platform", True
    ),
    "manufacturer": ResourceSpec(
        "manufacturer", Supplier, "mfr", s.SupplierRead, "Manufacturer", "manufacturer", True
    ),
    "demand": ResourceSpec("demand", Demand, "dmd", s.DemandRead, "Demand", None, True),
    "equipment": ResourceSpec("equipment", Equipment, "eqp", s.EquipmentRead, "Equipment"),
    "solution": ResourceSpec("solution", Solution, "sol", s.SolutionRead, "Solution", None, True),
    "broker": ResourceSpec("broker", Broker, "brk", s.BrokerRead, "Broker", None, True),
}

_TEXT_COLUMNS: dict[type[Base], tuple[str, ...]] = {
    Supplier: ("name", "organization", "description", "tags", "capabilities", "equipment"),
    Demand: ("title", "description", "tags"),
    Equipment: ("name", "model", "specs"),
    Solution: ("title", "description", "tags"),
    Broker: ("name", "organization", "tags"),
}


# Columns no Create or Update schema holds: the server sets them (see lifecycle.py).
_SERVER_COLUMNS: dict[type[Base], tuple[str, ...]] = {
    Demand: ("status", "status_changed_at", "status_reason", "expires_at"),
}


# ---------------------------------------------------------------- versions


class _VersionedWrite:
    """Hands out consecutive versions inside one write transaction.

    ``finish`` appends the change log and, in the same transaction, one ``catalog.changed``
    event to the webhook outbox (when a webhook subscribes to it): a write that rolls back
    leaves no event, and a committed one always has its event.
    """

    def __init__(self, repo: CatalogRepository, now: datetime, new_id: IdFactory) -> None:
        self.repo = repo
        self.now = now
        self.new_id = new_id
        self.start = repo.lock_version()
        self.current = self.start
        self.entries: list[dict[str, Any]] = []

    def record(
        self,
        resource: str,
        resource_id: str,
        data: dict[str, Any] | None,
        owner: str | None = None,
    ) -> int:
        self.current += 1
        self.entries.append(
            {
                "version": self.current,
                "resource": resource,
                "resource_id": resource_id,
                "op": "delete" if data is None else "upsert",
                "data": data,
                "changed_at": self.now,
                "owner_consumer_id": owner,
            }
        )
        return self.current

    def finish(self) -> int:
        if self.entries:
            self.repo.append_changes(self.entries)
            self.repo.set_version(self.current)
            Outbox(self.repo, self.new_id).catalog_changed(
                self.start + 1, self.current, self.entries, self.now
            )
        return self.current


def _issues_from_validation(exc: ValidationError) -> list[FieldIssue]:
    return [
        FieldIssue(loc=tuple(err["loc"]), message=err["msg"], type=err["type"])
        for err in exc.errors()
    ]


# ---------------------------------------------------------------- the service


class CatalogService:
    def __init__(
        self,
        repo: CatalogRepository,
        taxonomy: Taxonomy,
        *,
        clock: Clock = utcnow,
        new_id: IdFactory = random_id,
        max_import_items: int = 10_000,
        caller: Caller = INTERNAL,
        demand_lifetime: timedelta = timedelta(days=90),
    ) -> None:
        self.repo = repo
        self.taxonomy = taxonomy
        self.clock = clock
        self.new_id = new_id
        self.max_import_items = max_import_items
        self.caller = caller
        self.demand_lifetime = demand_lifetime

    def _visible(self, spec: ResourceSpec) -> OwnedBy | None:
        """The owner a caller's reads of ``spec`` are narrowed to (None: not narrowed)."""
        owner = self.caller.restricted_to
        return OwnedBy(owner) if spec.model is Demand and owner is not None else None

    # ------------------------------------------------------------ reads

    def get(self, resource: Resource, public_id: str) -> s._Stored:
        spec = SPECS[resource]
        return spec.read.model_validate(self._row(spec, public_id))

    def list_page(self, resource: Resource, filters: s._Filters) -> tuple[list[Any], str | None]:
        spec = SPECS[resource]
        query = self._list_query(spec, filters)
        rows = self.repo.list_page(
            spec.model,
            ListQuery(
                kind=spec.kind,
                equal=query.equal,
                contains=query.contains,
                text=query.text,
                text_columns=_TEXT_COLUMNS[spec.model],
                updated_since=query.updated_since,
                owned_by=self._visible(spec),
                after_pk=decode_cursor(filters.cursor),
                limit=filters.limit + 1,
            ),
        )
        more = len(rows) > filters.limit
        rows = rows[: filters.limit]
        next_cursor = encode_cursor(rows[-1].pk) if more else None  # type: ignore[attr-defined]
        return [spec.read.model_validate(row) for row in rows], next_cursor

    def _list_query(self, spec: ResourceSpec, filters: s._Filters) -> ListQuery:
        values = filters.model_dump(exclude_none=True, exclude={"limit", "cursor"})
        equal: list[tuple[str, Any]] = []
        contains: list[tuple[str, str]] = []
        chain = values.pop("chain", None)
        if chain is not None:
            contains.append(("industry_chains", self._filter_chain(chain)))
        for name, column in (("tag", "tags"), ("certification", "certifications")):
            if name in values:
                contains.append((column, values.pop(name)))
        if spec.model is Supplier and "stage" in values:
            contains.append(("stages", values.pop("stage")))
        if spec.model is Solution and "stage" in values:
            contains.append(("stages", values.pop("stage")))
        text = values.pop("q", None)
        updated_since = values.pop("updated_since", None)
        equal.extend(sorted(values.items()))
        return ListQuery(
            equal=tuple(equal),
            contains=tuple(contains),
            text=text.strip() if text else None,
            updated_since=updated_since,
        )

    def _filter_chain(self, label: str) -> str:
        resolution = self.taxonomy.resolve(label)
        if resolution.chain is None:
            raise InvalidInputError(
                f"'{label}' is not a known industry chain.",
                [
                    FieldIssue(
                        loc=("query", "chain"),
                        message="unknown industry chain; nearest: "
                        + ", ".join(resolution.suggestions[:3]),
                        type="unknown_industry_chain",
                    )
                ],
            )
        return resolution.chain.name

    def current_version(self) -> int:
        return self.repo.current_version()

    def changes(self, after: int, limit: int) -> s.ChangePage:
        """The change log; a consumer that may not see every demand sees only its own."""
        rows = self.repo.list_changes(after, limit, demands_of=self.caller.restricted_to)
        items = [
            s.Change(
                version=row.version,
                resource=row.resource,  # type: ignore[arg-type]
                id=row.resource_id,
                op=row.op,  # type: ignore[arg-type]
                changed_at=row.changed_at,
                data=row.data,
            )
            for row in rows
        ]
        return s.ChangePage(
            items=items,
            next_after=items[-1].version if items else after,
            current_version=self.repo.current_version(),
        )

    # ------------------------------------------------------------ writes

    def create(self, resource: Resource, data: BaseModel) -> tuple[s._Stored, int, list]:
        """Create one resource; returns (read model, catalog version, warnings)."""
        spec = SPECS[resource]
        tx = _VersionedWrite(self.repo, self.clock(), self.new_id)
        values = data.model_dump()
        warnings = self._prepare(spec, values, existing=None)
        if spec.model is Demand:
            values["owner_consumer_id"] = self.caller.consumer_id
        if values.get("external_ref") is not None:
            self._ensure_ref_free(spec, values["external_ref"], values.get("owner_consumer_id"))
        row = spec.model(
            id=self.new_id(spec.id_prefix),
            created_at=tx.now,
            updated_at=tx.now,
            version=tx.current + 1,
            **({"kind": spec.kind} if spec.kind else {}),
            **self._server_fields(spec, tx.now),
            **values,
        )
        self.repo.add(row)
        read = self._record(tx, spec, row)
        self._after_equipment_change(tx, spec, row, old_name=None)
        return read, tx.finish(), warnings

    def update(
        self, resource: Resource, public_id: str, patch: BaseModel
    ) -> tuple[s._Stored, int, list]:
        spec = SPECS[resource]
        tx = _VersionedWrite(self.repo, self.clock(), self.new_id)
        row = self._row(spec, public_id)
        values = patch.model_dump(exclude_unset=True)
        warnings = self._prepare(spec, values, existing=row)
        if (
            values.get("external_ref") is not None and values["external_ref"] != row.external_ref  # type: ignore[attr-defined]
        ):
            self._ensure_ref_free(spec, values["external_ref"], _owner(row))
        old_name = getattr(row, "name", None)
        changed = {k: v for k, v in values.items() if getattr(row, k) != v}
        if not changed:
            return spec.read.model_validate(row), tx.finish(), warnings
        for key, value in changed.items():
            setattr(row, key, value)
        row.updated_at = tx.now  # type: ignore[attr-defined]
        row.version = tx.current + 1  # type: ignore[attr-defined]
        self.repo.flush()
        read = self._record(tx, spec, row)
        if spec.resource == "equipment" and "name" in changed:
            self._after_equipment_change(tx, spec, row, old_name=old_name)
        return read, tx.finish(), warnings

    def delete(self, resource: Resource, public_id: str) -> int:
        spec = SPECS[resource]
        tx = _VersionedWrite(self.repo, self.clock(), self.new_id)
        row = self._row(spec, public_id)
        if spec.model is Supplier:
            # Children go with their owner; each leaves its own entry in the change log so a
            # reader of the log never keeps an orphan.
            for child in self.repo.equipment_of([public_id]):
                tx.record("equipment", child.id, None)
            for solution in self.repo.solutions_of(public_id):
                tx.record("solution", solution.id, None)
            self.repo.delete_children(public_id)
        if spec.model is Broker:
            # A demand never names a broker that is gone: deleting one unassigns its demands,
            # each with its own change-log entry.
            for demand in self.repo.demands_of_broker(public_id):
                demand.broker_id = None
                demand.updated_at = tx.now
                demand.version = tx.current + 1
                self.repo.flush()
                self._record(tx, SPECS["demand"], demand)
        self.repo.delete(row)
        tx.record(spec.resource, public_id, None, _owner(row))
        if isinstance(row, Equipment):
            self._drop_equipment_name(tx, row.supplier_id, row.name)
        return tx.finish()

    # ------------------------------------------------------------ write helpers

    def _row(self, spec: ResourceSpec, public_id: str) -> Any:
        # An ID from a URL path is caller text: one that no ID could be (a NUL, which PostgreSQL
        # text cannot even hold, or any other control character) names nothing.
        row = (
            self.repo.get(spec.model, public_id, spec.kind, self._visible(spec))
            if could_be_id(public_id)
            else None
        )
        if row is None:
            raise NotFoundError(f"{spec.label} '{public_id}' does not exist.")
        return row

    def _server_fields(self, spec: ResourceSpec, now: datetime) -> dict[str, Any]:
        """Columns of a new row that the server manages (a new demand starts open)."""
        if spec.model is Demand:
            return {
                "status": "open",
                "status_changed_at": now,
                "status_reason": None,
                "expires_at": now + self.demand_lifetime,
            }
        return {}

    def _ensure_ref_free(self, spec: ResourceSpec, external_ref: str, owner: str | None) -> None:
        """external_ref is unique per resource, and for demands per owner."""
        owned_by = OwnedBy(owner) if spec.model is Demand else None
        if self.repo.get_by_external_ref(spec.model, external_ref, spec.kind, owned_by) is not None:
            raise ConflictError(
                f"A {spec.label.lower()} with external_ref '{external_ref}' already exists."
            )

    def _record(self, tx: _VersionedWrite, spec: ResourceSpec, row: Any) -> s._Stored:
        read = spec.read.model_validate(row)
        tx.record(spec.resource, row.id, read.model_dump(mode="json"), _owner(row))
        return read

    def _prepare(
        self, spec: ResourceSpec, values: dict[str, Any], existing: Any | None
    ) -> list[s.WriteWarning]:
        """Resource rules applied before a write; returns warnings for the caller."""
        warnings: list[s.WriteWarning] = []
        if spec.has_chains and "industry_chains" in values:
            tags = values.get("tags", existing.tags if existing is not None else [])
            values["industry_chains"], values["tags"], warnings = self.resolve_chains(
                values["industry_chains"], tags
            )
        if spec.model is Supplier and existing is not None and "equipment" in values:
            registered = [e.name for e in self.repo.equipment_of([existing.id])]
            missing = [name for name in registered if name not in values["equipment"]]
            if missing:
                values["equipment"] = values["equipment"] + _unique(missing)
                warnings.append(
                    s.WriteWarning(
                        code="registered_equipment_kept",
                        field="equipment",
                        value=", ".join(_unique(missing)),
                        message="Equipment registered under /v1/equipment stays listed; "
                        "delete the equipment record to remove it.",
                    )
                )
        broker_id = values.get("broker_id") if spec.model is Demand else None
        if broker_id is not None and self.repo.get(Broker, broker_id) is None:
            raise _missing_parent("broker_id", broker_id, "broker")
        if spec.model is Equipment and existing is None:
            owner = self.repo.get(Supplier, values["supplier_id"])
            if owner is None:
                raise _missing_parent("supplier_id", values["supplier_id"], "supplier")
        if spec.model is Solution:
            if existing is None:
                owner = self.repo.get(Supplier, values["platform_id"])
                if owner is None or owner.kind != "platform":
                    raise _missing_parent("platform_id", values["platform_id"], "platform")
            else:
                low = values.get("price_min_cny", existing.price_min_cny)
                high = values.get("price_max_cny", existing.price_max_cny)
                if low is not None and high is not None and low > high:
                    raise InvalidInputError(
                        "price_min_cny must not exceed price_max_cny.",
                        [FieldIssue(("price_min_cny",), "exceeds price_max_cny")],
                    )
        return warnings

    def resolve_chains(
        self, labels: Sequence[str], tags: Sequence[str]
    ) -> tuple[list[str], list[str], list[s.WriteWarning]]:
        """Canonical chains; labels that resolve to none are kept as tags and warned about."""
        resolutions = [self.taxonomy.resolve(label) for label in labels]
        chains = _unique([r.chain.name for r in resolutions if r.chain is not None])
        unresolved = [r for r in resolutions if r.chain is None]
        warnings = []
        for resolution in unresolved:
            warnings.append(
                s.WriteWarning(
                    code="unresolved_industry_chain",
                    field="industry_chains",
                    value=resolution.label,
                    message=f"'{resolution.label}' is not a known industry chain; "
                    "it was kept as a tag.",
                    suggestions=list(resolution.suggestions[:3]),
                )
            )
        for resolution in resolutions:
            if resolution.chain is not None and resolution.method == "fuzzy":
                warnings.append(
                    s.WriteWarning(
                        code="industry_chain_corrected",
                        field="industry_chains",
                        value=resolution.label,
                        message=f"'{resolution.label}' was read as '{resolution.chain.name}'.",
                        suggestions=[resolution.chain.name],
                    )
                )
        extra = [r.label for r in unresolved]
        return chains, _unique([*tags, *extra]), warnings

    def _after_equipment_change(
        self, tx: _VersionedWrite, spec: ResourceSpec, row: Any, old_name: str | None
    ) -> None:
        """Keep the owner's inline ``equipment`` names consistent with its equipment records."""
        if spec.model is not Equipment:
            return
        owner = self.repo.get(Supplier, row.supplier_id)
        assert owner is not None
        names = list(owner.equipment)
        if old_name is not None and old_name != row.name:
            others = [e for e in self.repo.equipment_of([owner.id]) if e.name == old_name]
            if not others and old_name in names:
                names.remove(old_name)
        if row.name not in names:
            names.append(row.name)
        self._set_owner_equipment(tx, owner, names)

    def _drop_equipment_name(self, tx: _VersionedWrite, supplier_id: str, name: str) -> None:
        owner = self.repo.get(Supplier, supplier_id)
        if owner is None:
            return
        if any(e.name == name for e in self.repo.equipment_of([supplier_id])):
            return
        self._set_owner_equipment(tx, owner, [n for n in owner.equipment if n != name])

    def _set_owner_equipment(self, tx: _VersionedWrite, owner: Supplier, names: list[str]) -> None:
        if names == owner.equipment:
            return
        owner.equipment = names
        owner.updated_at = tx.now
        owner.version = tx.current + 1
        self.repo.flush()
        self._record(tx, SPECS[cast(Resource, owner.kind)], owner)

    # ------------------------------------------------------------ import

    def import_catalog(self, request: s.ImportRequest) -> s.ImportReport:
        lists: dict[str, list[Any]] = {
            "platforms": request.platforms,
            "manufacturers": request.manufacturers,
            "demands": request.demands,
        }
        total = sum(len(items) for items in lists.values())
        if total > self.max_import_items:
            raise PayloadTooLargeError(
                f"An import takes at most {self.max_import_items} items; this one has {total}. "
                "Split it into several requests."
            )
        tx = _VersionedWrite(self.repo, self.clock(), self.new_id)
        report = s.ImportReport(
            version=tx.start,
            received=s.ImportCounts(**{name: len(items) for name, items in lists.items()}),
            created=s.ImportCounts(),
            updated=s.ImportCounts(),
            unchanged=s.ImportCounts(),
            rejected=[],
            warnings=[],
        )
        plan: tuple[tuple[str, Resource, type[BaseModel]], ...] = (
            ("platforms", "platform", s.SupplierCreate),
            ("manufacturers", "manufacturer", s.SupplierCreate),
            ("demands", "demand", s.DemandCreate),
        )
        for list_name, resource, schema in plan:
            self._import_list(tx, report, list_name, SPECS[resource], schema, lists[list_name])
        report.version = tx.finish()
        return report

    def _import_list(
        self,
        tx: _VersionedWrite,
        report: s.ImportReport,
        list_name: str,
        spec: ResourceSpec,
        schema: type[BaseModel],
        items: list[Any],
    ) -> None:
        accepted: dict[str, tuple[int, dict[str, Any]]] = {}
        brokers: dict[str, bool] = {}  # broker id -> exists, asked once per import
        for index, raw in enumerate(items):
            values, issues = self._validate_import_item(schema, raw)
            ref = values.get("external_ref") if values else _raw_ref(raw)
            if not issues and values is not None and not self._broker_exists(values, brokers):
                issues = [FieldIssue(("broker_id",), "no broker with this id", "not_found")]
            if not issues and ref in accepted:
                issues = [
                    FieldIssue(
                        ("external_ref",),
                        f"repeats item {accepted[ref][0]} of this list",
                        "duplicate",
                    )
                ]
            if issues:
                report.rejected.append(
                    s.RejectedItem(
                        list=list_name,  # type: ignore[arg-type]
                        index=index,
                        external_ref=ref if isinstance(ref, str) else None,
                        errors=[
                            s.ItemError(
                                field=i.field, loc=list(i.loc), message=i.message, type=i.type
                            )
                            for i in issues
                        ],
                    )
                )
                continue
            assert values is not None
            values["industry_chains"], values["tags"], warnings = self.resolve_chains(
                values["industry_chains"], values["tags"]
            )
            report.warnings.extend(
                s.ItemWarning(list=list_name, index=index, **w.model_dump())  # type: ignore[arg-type]
                for w in warnings
            )
            accepted[values["external_ref"]] = (index, values)

        # A caller's external_refs name its own demands only: importing another consumer's
        # external_ref creates the caller's own demand and leaves the other one alone.
        owner = self.caller.consumer_id if spec.model is Demand else None
        owned_by = OwnedBy(owner) if spec.model is Demand else None
        existing: dict[str, Any] = self.repo.rows_by_external_refs(
            spec.model, accepted, spec.kind, owned_by
        )
        registered: dict[str, list[str]] = {}
        if spec.model is Supplier and existing:
            for equipment in self.repo.equipment_of([row.id for row in existing.values()]):
                registered.setdefault(equipment.supplier_id, []).append(equipment.name)

        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        created = updated = unchanged = 0
        for ref, (_, values) in accepted.items():
            row = existing.get(ref)
            if row is None:
                version = tx.current + 1
                full = {
                    **values,
                    "id": self.new_id(spec.id_prefix),
                    "version": version,
                    "created_at": tx.now,
                    "updated_at": tx.now,
                    **({"kind": spec.kind} if spec.kind else {}),
                    **({"owner_consumer_id": owner} if spec.model is Demand else {}),
                    **self._server_fields(spec, tx.now),
                }
                inserts.append(full)
                tx.record(spec.resource, full["id"], _read_dict(spec, full), owner)
                created += 1
                continue
            kept = [n for n in registered.get(row.id, []) if n not in values.get("equipment", ())]
            if kept:
                values["equipment"] = values["equipment"] + _unique(kept)
            if all(getattr(row, key) == value for key, value in values.items()):
                unchanged += 1
                continue
            version = tx.current + 1
            updates.append({"pk": row.pk, **values, "version": version, "updated_at": tx.now})
            full = {
                **values,
                "id": row.id,
                "kind": spec.kind,
                "version": version,
                "created_at": row.created_at,
                "updated_at": tx.now,
                "owner_consumer_id": owner,
                # Server-managed columns are kept as stored: a re-import never changes them.
                **{name: getattr(row, name) for name in _SERVER_COLUMNS.get(spec.model, ())},
            }
            tx.record(spec.resource, row.id, _read_dict(spec, full), owner)
            updated += 1
        self.repo.bulk_insert(spec.model, inserts)
        self.repo.bulk_update(spec.model, updates)
        setattr(report.created, list_name, created)
        setattr(report.updated, list_name, updated)
        setattr(report.unchanged, list_name, unchanged)

    def _broker_exists(self, values: dict[str, Any], known: dict[str, bool]) -> bool:
        """Whether a demand's ``broker_id`` (when it names one) is an existing broker."""
        broker_id = values.get("broker_id")
        if broker_id is None:
            return True
        if broker_id not in known:
            known[broker_id] = self.repo.get(Broker, broker_id) is not None
        return known[broker_id]

    @staticmethod
    def _validate_import_item(
        schema: type[BaseModel], raw: Any
    ) -> tuple[dict[str, Any] | None, list[FieldIssue]]:
        if not isinstance(raw, dict):
            return None, [FieldIssue((), "each item must be a JSON object", "type_error")]
        try:
            model = schema.model_validate(raw)
        except ValidationError as exc:
            return None, _issues_from_validation(exc)
        values = model.model_dump()
        if not values.get("external_ref"):
            return values, [
                FieldIssue(
                    ("external_ref",),
                    "required for import: it is the key that makes a repeated import an update",
                    "missing",
                )
            ]
        return values, []


def _read_dict(spec: ResourceSpec, full: dict[str, Any]) -> dict[str, Any]:
    # The values were validated on the way in; construct skips validating them again.
    return spec.read.model_construct(**full).model_dump(mode="json")


def _owner(row: Any) -> str | None:
    """A demand's owner; None for other resources, which belong to no one."""
    return getattr(row, "owner_consumer_id", None)


def _raw_ref(raw: Any) -> str | None:
    if isinstance(raw, dict) and isinstance(raw.get("external_ref"), str):
        return raw["external_ref"]
    return None


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _missing_parent(field: str, value: str, what: str) -> InvalidInputError:
    return InvalidInputError(
        f"{field} '{value}' is not an existing {what}.",
        [FieldIssue((field,), f"no {what} with this id", "not_found")],
    )
