"""API schemas of the catalog: what callers send (Create/Update) and get back (Read/Page).

Schemas are not models: the ORM classes in ``models.py`` never leave the data layer.
"""

from __future__ import annotations

import builtins
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from typing_extensions import TypeAliasType

STAGES = ("概念验证", "小试", "中试", "小批量试产")
LEVELS = ("国家级", "省级", "市级")

# Named (type aliases), so the OpenAPI document has one `Stage`, `Level`, … schema that client
# generators turn into one enum each, instead of one per field.
Stage = TypeAliasType("Stage", Literal["概念验证", "小试", "中试", "小批量试产"])
Level = TypeAliasType("Level", Literal["国家级", "省级", "市级"])
BROKER_LEVELS = ("初级", "中级", "高级")
BrokerLevel = TypeAliasType("BrokerLevel", Literal["初级", "中级", "高级"])
"""Title of a technology broker (技术经纪人): 初级 (junior), 中级 (intermediate) or 高级 (senior)
技术经纪人, the three grades of the national technology-broker title."""
SupplierKind = TypeAliasType("SupplierKind", Literal["platform", "manufacturer"])
DemandStatus = TypeAliasType(
    "DemandStatus", Literal["open", "matched", "in_progress", "closed", "expired"]
)
OutcomeKind = TypeAliasType(
    "OutcomeKind",
    Literal["viewed", "contacted", "visited", "contracted", "completed", "declined"],
)

# C0/C1 controls (newline and tab allowed only in long text), zero-width and bidi overrides:
# they make names that look equal but are not, and hide text in UIs.
_CONTROL_SHORT = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_CONTROL_LONG = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff]")


def _clean_short(value: str) -> str:
    if _CONTROL_SHORT.search(value):
        raise ValueError("must not contain control, zero-width or bidi-override characters")
    return value


def _clean_long(value: str) -> str:
    if _CONTROL_LONG.search(value):
        raise ValueError("must not contain control or bidi-override characters")
    return value


def _dedupe(values: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for value in values:
        if value not in seen:
            seen.add(value)
            out.append(value)
    return out


Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_clean_short),
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_clean_short),
]
OptionalText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(_clean_short)
]
LongText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=5000), AfterValidator(_clean_long)
]
ExternalRef = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_clean_short),
]
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=500), AfterValidator(_clean_long)
]

LabelList = Annotated[list[Label], Field(max_length=50), AfterValidator(_dedupe)]
StageList = Annotated[list[Stage], Field(max_length=4), AfterValidator(_dedupe)]
ChainList = Annotated[list[Label], Field(max_length=20), AfterValidator(_dedupe)]


class _Input(BaseModel):
    # Strict: a body says what the document says, e.g. `true`, not `0` or `"yes"`, for a boolean.
    model_config = ConfigDict(extra="forbid", strict=True)


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time, e.g. 2026-01-31T08:00:00+08:00")
    return value


# What the document promises (`format: date-time`) and nothing else: no Unix timestamps, no
# bare dates, no times without an offset. (Strict models would refuse JSON's strings instead.)
DateTimeText = Annotated[datetime, Field(strict=False), BeforeValidator(_rfc3339)]


def _refuse_nulls(model: BaseModel, nullable: set[str]) -> None:
    """PATCH: omitting a field keeps it; sending null is only allowed for nullable fields."""
    for name in model.model_fields_set:
        if getattr(model, name) is None and name not in nullable:
            raise ValueError(f"{name} cannot be null")


def _patch_config(nullable: set[str]) -> ConfigDict:
    """A PATCH body's config: its document says null only where `_refuse_nulls` allows it.

    The fields are optional (``None`` means "not sent") but, apart from ``nullable``, null is
    not a value a caller may send, so the JSON schema must not offer it.
    """

    def not_null(schema: dict[str, Any]) -> None:
        for name, field in schema.get("properties", {}).items():
            if name in nullable:
                continue
            branches = [b for b in field.pop("anyOf", []) if b != {"type": "null"}]
            if len(branches) == 1:
                field.update(branches[0])
            elif branches:
                field["anyOf"] = branches
            if "default" in field and field["default"] is None:
                del field["default"]

    return ConfigDict(extra="forbid", strict=True, json_schema_extra=not_null)


# ---------------------------------------------------------------- suppliers


class SupplierCreate(_Input):
    """A pilot-test platform (中试平台) or contract manufacturer (中试代工厂)."""

    external_ref: ExternalRef | None = Field(
        default=None, description="The caller's own ID; unique per resource."
    )
    name: Name
    organization: OptionalText = ""
    district: OptionalText = Field(default="", description="Town or park (镇街/园区), e.g. 松山湖.")
    description: LongText = ""
    industry_chains: ChainList = Field(
        default_factory=list,
        description="Chain names; aliases, English and traditional forms are stored canonically.",
    )
    tags: LabelList = Field(default_factory=list)
    capabilities: LabelList = Field(default_factory=list)
    equipment: LabelList = Field(default_factory=list)
    certifications: LabelList = Field(default_factory=list)
    stages: StageList = Field(default_factory=list)
    accepts_vouchers: bool = Field(default=False, description="Accepts 中试服务券 vouchers.")
    level: Level | None = Field(default=None, description="Recognition level, or null.")


_SUPPLIER_UPDATE_NULLABLE = {"external_ref", "level"}


class SupplierUpdate(_Input):
    """Fields to change; omitted fields keep their value."""

    model_config = _patch_config(_SUPPLIER_UPDATE_NULLABLE)

    external_ref: ExternalRef | None = None
    name: Name | None = None
    organization: OptionalText | None = None
    district: OptionalText | None = None
    description: LongText | None = None
    industry_chains: ChainList | None = None
    tags: LabelList | None = None
    capabilities: LabelList | None = None
    equipment: LabelList | None = None
    certifications: LabelList | None = None
    stages: StageList | None = None
    accepts_vouchers: bool | None = None
    level: Level | None = None

    @model_validator(mode="after")
    def _nulls(self) -> SupplierUpdate:
        _refuse_nulls(self, _SUPPLIER_UPDATE_NULLABLE)
        return self


class WriteWarning(BaseModel):
    """Input that was accepted but not as sent, e.g. an industry chain kept as a tag."""

    code: str = Field(examples=["unresolved_industry_chain"])
    field: str = Field(examples=["industry_chains"])
    value: str = Field(examples=["低空经济"])
    message: str
    suggestions: list[str] = Field(default_factory=list, examples=[["高端装备制造"]])


class _Stored(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    external_ref: str | None
    version: int = Field(description="Catalog version at which this resource last changed.")
    created_at: datetime
    updated_at: datetime


class SupplierRead(_Stored):
    kind: SupplierKind
    name: str
    organization: str
    district: str
    description: str
    industry_chains: list[str]
    tags: list[str]
    capabilities: list[str]
    equipment: list[str]
    certifications: list[str]
    stages: list[str]
    accepts_vouchers: bool
    level: str | None


class _WriteResult(BaseModel):
    version: int = Field(description="The catalog's change sequence number after this write.")
    warnings: list[WriteWarning] = Field(default_factory=list)


class SupplierWriteResult(_WriteResult, SupplierRead):
    pass


class SupplierPage(BaseModel):
    items: list[SupplierRead]
    next_cursor: str | None


# ---------------------------------------------------------------- demands

BrokerId = Annotated[
    str, StringConstraints(min_length=1, max_length=40), AfterValidator(_clean_short)
]


class DemandCreate(_Input):
    """A pilot-test demand (中试需求)."""

    external_ref: ExternalRef | None = Field(
        default=None,
        description="The caller's own ID; unique among the caller's demands (another consumer "
        "may use the same one).",
    )
    title: Name
    description: LongText = ""
    industry_chains: ChainList = Field(default_factory=list)
    tags: LabelList = Field(default_factory=list)
    stage: Stage | None = None
    district: OptionalText | None = None
    needs_voucher: bool = Field(
        default=False, description="Wants to pay with a 中试服务券 voucher."
    )
    required_certifications: LabelList = Field(
        default_factory=list, description="Hard requirement: suppliers lacking any are excluded."
    )
    broker_id: BrokerId | None = Field(
        default=None, description="The technology broker (技术经纪人) assigned, or null."
    )


_DEMAND_UPDATE_NULLABLE = {"external_ref", "stage", "district", "broker_id"}


class DemandUpdate(_Input):
    model_config = _patch_config(_DEMAND_UPDATE_NULLABLE)

    external_ref: ExternalRef | None = None
    title: Name | None = None
    description: LongText | None = None
    industry_chains: ChainList | None = None
    tags: LabelList | None = None
    stage: Stage | None = None
    district: OptionalText | None = None
    needs_voucher: bool | None = None
    required_certifications: LabelList | None = None
    broker_id: BrokerId | None = Field(
        default=None, description="Assign a broker by id; null unassigns."
    )

    @model_validator(mode="after")
    def _nulls(self) -> DemandUpdate:
        _refuse_nulls(self, _DEMAND_UPDATE_NULLABLE)
        return self


class DemandRead(_Stored):
    owner: str | None = Field(
        validation_alias=AliasChoices("owner_consumer_id", "owner"),
        description="The consumer whose API key created the demand; null for demands loaded "
        "from inside (demo catalog, CLI import). Set by the server, never by a request: a "
        "consumer that is not admin sees and changes only its own demands.",
    )
    title: str
    description: str
    industry_chains: list[str]
    tags: list[str]
    stage: str | None
    district: str | None
    needs_voucher: bool
    required_certifications: list[str]
    broker_id: str | None
    status: DemandStatus = Field(
        default="open",
        description="Server-managed: open → matched (a supplier contacted or visited) → "
        "in_progress (contracted) → closed (completed, or `POST …/close`); open or matched "
        "demands past `expires_at` become expired (`POST …/renew` re-opens them).",
    )
    status_changed_at: datetime | None = Field(
        default=None, description="When `status` last changed."
    )
    status_reason: str | None = Field(
        default=None,
        description="Why `status` last changed, when the caller of close or renew said so.",
    )
    expires_at: datetime | None = Field(
        default=None,
        description="When an open or matched demand expires: creation (or renewal) time plus "
        "`DEMAND_LIFETIME_DAYS`.",
    )


class DemandWriteResult(_WriteResult, DemandRead):
    pass


class DemandPage(BaseModel):
    items: list[DemandRead]
    next_cursor: str | None


# ---------------------------------------------------------------- brokers

# The pattern only excludes whitespace and a second @: the control, zero-width and bidi check
# is what keeps NUL (which PostgreSQL text cannot hold) and look-alike addresses out.
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    AfterValidator(_clean_short),
]
Phone = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=40, pattern=r"^[0-9+()\- ]+$"
    ),
]


class BrokerCreate(_Input):
    """A technology broker (技术经纪人): the industry chains they cover and their title.

    Contact data is kept to a work email and phone, both optional: no other personal data.
    """

    external_ref: ExternalRef | None = Field(
        default=None, description="The caller's own ID; unique among brokers."
    )
    name: Name
    organization: OptionalText = Field(default="", description="Employer, e.g. a 技术转移机构.")
    district: OptionalText = Field(default="", description="Town or park (镇街/园区) served.")
    industry_chains: ChainList = Field(
        default_factory=list,
        description="Chains covered; aliases, English and traditional forms are stored "
        "canonically, unknown labels are kept as tags and named in `warnings`.",
    )
    tags: LabelList = Field(default_factory=list, description="Sub-fields and other specialities.")
    certification_level: BrokerLevel | None = Field(
        default=None, description="技术经纪人 title: 初级, 中级 or 高级; null when not certified."
    )
    work_email: Email | None = None
    work_phone: Phone | None = None
    active: bool = Field(default=True, description="Inactive brokers are never suggested.")


_BROKER_UPDATE_NULLABLE = {"external_ref", "certification_level", "work_email", "work_phone"}


class BrokerUpdate(_Input):
    model_config = _patch_config(_BROKER_UPDATE_NULLABLE)

    external_ref: ExternalRef | None = None
    name: Name | None = None
    organization: OptionalText | None = None
    district: OptionalText | None = None
    industry_chains: ChainList | None = None
    tags: LabelList | None = None
    certification_level: BrokerLevel | None = None
    work_email: Email | None = None
    work_phone: Phone | None = None
    active: bool | None = None

    @model_validator(mode="after")
    def _nulls(self) -> BrokerUpdate:
        _refuse_nulls(self, _BROKER_UPDATE_NULLABLE)
        return self


class BrokerRead(_Stored):
    name: str
    organization: str
    district: str
    industry_chains: list[str]
    tags: list[str]
    certification_level: str | None
    work_email: str | None
    work_phone: str | None
    active: bool


class BrokerWriteResult(_WriteResult, BrokerRead):
    pass


class BrokerPage(BaseModel):
    items: list[BrokerRead]
    next_cursor: str | None


class DemandClose(_Input):
    """Closing a demand: why, optionally."""

    reason: Reason | None = Field(
        default=None, description="Why the demand is closed, e.g. 已找到合作方."
    )


class DemandRenew(_Input):
    """Renewing a demand: until when and why, optionally."""

    expires_at: DateTimeText | None = Field(
        default=None,
        description="The new expiry, in the future; default: now plus `DEMAND_LIFETIME_DAYS`.",
    )
    reason: Reason | None = Field(
        default=None, description="Why the demand is renewed, e.g. 仍在寻找中试合作方."
    )


# ---------------------------------------------------------------- match outcomes

OUTCOMES: tuple[str, ...] = (
    "viewed",
    "contacted",
    "visited",
    "contracted",
    "completed",
    "declined",
)


class MatchOutcomeCreate(_Input):
    """What happened to the match of this demand with one supplier."""

    supplier_id: Annotated[
        str, StringConstraints(min_length=1, max_length=40), AfterValidator(_clean_short)
    ] = Field(description="ID of the platform or manufacturer.")
    outcome: OutcomeKind = Field(
        description="viewed, contacted, visited, contracted, completed, or declined (with a "
        "`reason`)."
    )
    reason: (
        Annotated[
            str,
            StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
            AfterValidator(_clean_long),
        ]
        | None
    ) = Field(default=None, description="Required when `outcome` is declined.")
    recorded_at: DateTimeText | None = Field(
        default=None, description="When it happened (not in the future); default: now."
    )

    @model_validator(mode="after")
    def _reason_for_declined(self) -> MatchOutcomeCreate:
        if self.outcome == "declined" and self.reason is None:
            raise ValueError("reason is required when outcome is declined")
        return self


class MatchOutcomeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    demand_id: str
    supplier_id: str
    supplier_kind: SupplierKind
    outcome: OutcomeKind
    reason: str | None
    recorded_at: datetime = Field(description="When it happened.")
    created_at: datetime = Field(description="When it was recorded.")
    version: int = Field(description="Catalog version of the write that recorded it.")


class MatchOutcomeWriteResult(MatchOutcomeRead):
    version: int = Field(
        description="The catalog's change sequence number after this write (the outcome, "
        "and the demand's change of status if any): pass it as `min_version`."
    )
    demand_status: DemandStatus = Field(description="The demand's status after this outcome.")


class MatchOutcomePage(BaseModel):
    items: list[MatchOutcomeRead] = Field(description="Newest (last recorded) first.")
    next_cursor: str | None


# ---------------------------------------------------------------- equipment

HttpUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=500, pattern=r"^https?://[^\s]+$"),
    # The pattern lets a NUL or a bidi override through: PostgreSQL text cannot hold the one,
    # a UI would render the other misleadingly.
    AfterValidator(_clean_short),
]


class EquipmentCreate(_Input):
    """Pilot-test equipment (中试设备) of a platform or manufacturer."""

    external_ref: ExternalRef | None = None
    supplier_id: Annotated[
        str, StringConstraints(min_length=1, max_length=40), AfterValidator(_clean_short)
    ] = Field(description="ID of the owning platform or manufacturer.")
    name: Name
    model: OptionalText | None = None
    specs: LabelList = Field(default_factory=list, description="Key specifications.")
    availability: LongText = Field(default="", max_length=500)
    sharing_url: HttpUrl | None = Field(
        default=None, description="Listing on the city's instrument-sharing platform (莞仪在线)."
    )


_EQUIPMENT_UPDATE_NULLABLE = {"external_ref", "model", "sharing_url"}


class EquipmentUpdate(_Input):
    model_config = _patch_config(_EQUIPMENT_UPDATE_NULLABLE)

    external_ref: ExternalRef | None = None
    name: Name | None = None
    model: OptionalText | None = None
    specs: LabelList | None = None
    availability: Annotated[LongText, Field(max_length=500)] | None = None
    sharing_url: HttpUrl | None = None

    @model_validator(mode="after")
    def _nulls(self) -> EquipmentUpdate:
        _refuse_nulls(self, _EQUIPMENT_UPDATE_NULLABLE)
        return self


class EquipmentRead(_Stored):
    supplier_id: str
    name: str
    model: str | None
    specs: list[str]
    availability: str
    sharing_url: str | None


class EquipmentWriteResult(_WriteResult, EquipmentRead):
    pass


class EquipmentPage(BaseModel):
    items: list[EquipmentRead]
    next_cursor: str | None


# ---------------------------------------------------------------- solutions

Money = Annotated[int, Field(ge=0, le=10_000_000_000)]


class SolutionCreate(_Input):
    """A pilot-test solution (中试解决方案) offered by a platform."""

    external_ref: ExternalRef | None = None
    platform_id: Annotated[
        str, StringConstraints(min_length=1, max_length=40), AfterValidator(_clean_short)
    ]
    title: Name
    description: LongText = ""
    industry_chains: ChainList = Field(default_factory=list)
    tags: LabelList = Field(default_factory=list)
    stages: StageList = Field(default_factory=list)
    typical_duration_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    price_min_cny: Money | None = None
    price_max_cny: Money | None = None

    @model_validator(mode="after")
    def _price_range(self) -> SolutionCreate:
        _check_price_range(self.price_min_cny, self.price_max_cny)
        return self


def _check_price_range(low: int | None, high: int | None) -> None:
    if low is not None and high is not None and low > high:
        raise ValueError("price_min_cny must not exceed price_max_cny")


_SOLUTION_UPDATE_NULLABLE = {
    "external_ref",
    "typical_duration_days",
    "price_min_cny",
    "price_max_cny",
}


class SolutionUpdate(_Input):
    model_config = _patch_config(_SOLUTION_UPDATE_NULLABLE)

    external_ref: ExternalRef | None = None
    title: Name | None = None
    description: LongText | None = None
    industry_chains: ChainList | None = None
    tags: LabelList | None = None
    stages: StageList | None = None
    typical_duration_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    price_min_cny: Money | None = None
    price_max_cny: Money | None = None

    @model_validator(mode="after")
    def _nulls(self) -> SolutionUpdate:
        _refuse_nulls(self, _SOLUTION_UPDATE_NULLABLE)
        _check_price_range(self.price_min_cny, self.price_max_cny)
        return self


class SolutionRead(_Stored):
    platform_id: str
    title: str
    description: str
    industry_chains: list[str]
    tags: list[str]
    stages: list[str]
    typical_duration_days: int | None
    price_min_cny: int | None
    price_max_cny: int | None


class SolutionWriteResult(_WriteResult, SolutionRead):
    pass


class SolutionPage(BaseModel):
    items: list[SolutionRead]
    next_cursor: str | None


# ---------------------------------------------------------------- deletes, filters


class DeleteResult(BaseModel):
    id: str
    deleted: Literal[True] = True
    version: int = Field(description="The catalog's change sequence number after this write.")


# Filters are compared with stored text, which never holds control, zero-width or bidi-override
# characters (and PostgreSQL text cannot hold NUL at all): such a filter is a 422, not a query.
FilterLabel = Annotated[str, Field(max_length=100), AfterValidator(_clean_short)]
FilterId = Annotated[str, Field(max_length=40), AfterValidator(_clean_short)]
Limit = Annotated[int, Field(ge=1, le=100, description="Page size (1–100).")]
Cursor = Annotated[
    str | None, Field(max_length=200, description="`next_cursor` of the previous page.")
]
Query_ = Annotated[
    str | None,
    Field(max_length=200, description="Text to look for."),
    AfterValidator(lambda v: None if v is None else _clean_long(v)),
]


class _Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: Limit = 20
    cursor: Cursor = None


class SupplierFilters(_Filters):
    chain: FilterLabel | None = Field(
        default=None, description="Industry chain: canonical name, alias or English name."
    )
    district: FilterLabel | None = None
    stage: Stage | None = None
    accepts_vouchers: bool | None = None
    level: Level | None = None
    certification: FilterLabel | None = None
    tag: FilterLabel | None = None
    updated_since: DateTimeText | None = None
    q: Query_ = None


class DemandFilters(_Filters):
    status: DemandStatus | None = Field(default=None, description="Only demands in this status.")
    chain: FilterLabel | None = None
    district: FilterLabel | None = None
    stage: Stage | None = None
    needs_voucher: bool | None = None
    broker_id: FilterId | None = Field(default=None, description="Demands assigned this broker.")
    tag: FilterLabel | None = None
    updated_since: DateTimeText | None = None
    q: Query_ = None


class BrokerFilters(_Filters):
    chain: FilterLabel | None = Field(
        default=None, description="Industry chain covered: canonical name, alias or English name."
    )
    district: FilterLabel | None = None
    certification_level: BrokerLevel | None = None
    active: bool | None = None
    tag: FilterLabel | None = None
    updated_since: DateTimeText | None = None
    q: Query_ = None


class MatchOutcomeFilters(_Filters):
    outcome: OutcomeKind | None = Field(default=None, description="Only this outcome.")


class EquipmentFilters(_Filters):
    supplier_id: FilterId | None = None
    updated_since: DateTimeText | None = None
    q: Query_ = None


class SolutionFilters(_Filters):
    platform_id: FilterId | None = None
    chain: FilterLabel | None = None
    stage: Stage | None = None
    updated_since: DateTimeText | None = None
    q: Query_ = None


# ---------------------------------------------------------------- import, changes, taxonomy


class ImportRequest(_Input):
    """Items as for POST, each with an `external_ref` (the upsert key)."""

    platforms: list[Any] = Field(default_factory=list, max_length=1_000_000)
    manufacturers: list[Any] = Field(default_factory=list, max_length=1_000_000)
    demands: list[Any] = Field(default_factory=list, max_length=1_000_000)


class ItemError(BaseModel):
    field: str
    loc: list[str | int]
    message: str
    type: str


class RejectedItem(BaseModel):
    list: Literal["platforms", "manufacturers", "demands"]
    index: int
    external_ref: str | None
    errors: builtins.list[ItemError]


class ItemWarning(WriteWarning):
    list: Literal["platforms", "manufacturers", "demands"]
    index: int


class ImportCounts(BaseModel):
    platforms: int = 0
    manufacturers: int = 0
    demands: int = 0


class ImportReport(BaseModel):
    version: int = Field(description="The catalog's change sequence number after this import.")
    received: ImportCounts
    created: ImportCounts
    updated: ImportCounts
    unchanged: ImportCounts
    rejected: list[RejectedItem]
    warnings: list[ItemWarning]


ChangeResource = Literal[
    "platform", "manufacturer", "demand", "equipment", "solution", "broker", "match_outcome"
]


class Change(BaseModel):
    version: int
    resource: ChangeResource
    id: str
    op: Literal["upsert", "delete"]
    changed_at: datetime
    data: dict[str, Any] | None = Field(
        description="The resource as `GET` would return it after the change; null for deletes."
    )


class ChangePage(BaseModel):
    items: list[Change]
    next_after: int = Field(description="Pass as `after` to read on.")
    current_version: int = Field(description="The catalog's version now.")


class ChangeFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Versions are 64-bit integers in the database; a larger one names no version.
    after: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class IndustryChainRead(BaseModel):
    code: str
    name: str
    name_en: str
    category: str
    aliases: list[str]
    traditional: list[str]
    subfields: list[str]
    related: dict[str, float] = Field(description="Related chain codes with partial-credit weight.")
    subfield_aliases: dict[str, list[str]] = Field(
        description="Other names of a sub-field (abbreviation, full name, English, former name): "
        "matching treats each as the sub-field it names. Keys are entries of `subfields`."
    )


class IndustryChainList(BaseModel):
    items: list[IndustryChainRead]


class CatalogVersion(BaseModel):
    version: int


# ---------------------------------------------------------------- API keys (admin)

Scope = TypeAliasType("Scope", Literal["catalog:read", "catalog:write", "match:read", "admin"])
SCOPES: tuple[str, ...] = ("catalog:read", "catalog:write", "match:read", "admin")


class ApiKeyCreate(_Input):
    label: Name = Field(description="What the key is for, e.g. 市级企业综合服务平台 production.")
    scopes: Annotated[builtins.list[Scope], Field(min_length=1, max_length=4)] = Field(
        description="Permissions: catalog:read, catalog:write, match:read, admin."
    )
    consumer: Name | None = Field(
        default=None,
        description="The consumer the key belongs to (created if new); defaults to the label.",
    )
    expires_at: DateTimeText | None = Field(default=None, description="When the key stops working.")
    rate_limit_per_minute: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(
        default=None,
        description="Requests per minute for the consumer's keys; null keeps the consumer's "
        "limit (or the gateway default).",
    )


class ApiKeyRead(BaseModel):
    id: str
    label: str
    consumer_id: str
    consumer: str
    scopes: builtins.list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    rate_limit_per_minute: int | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The API key. It is shown once and cannot be recovered.")


class ApiKeyPage(BaseModel):
    items: builtins.list[ApiKeyRead]
    next_cursor: str | None


class ApiKeyFilters(_Filters):
    include_revoked: bool = False


class KeyVerifyRequest(_Input):
    key: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class KeyVerification(BaseModel):
    """What the gateway needs to authorise a request; never includes the hash."""

    valid: bool
    reason: str | None = None
    key_id: str | None = None
    consumer_id: str | None = None
    scopes: builtins.list[str] = Field(default_factory=builtins.list)
    rate_limit_per_minute: int | None = None
    expires_at: datetime | None = None


# ---------------------------------------------------------------- request-body examples
# One Chinese and one English example per request body, shown in the docs (OpenAPI media-type
# `examples`). Each is a valid body: a client can send it as it is.

Examples = dict[str, dict[str, Any]]


def bilingual(zh: dict[str, Any], en: dict[str, Any], *, what: str) -> Examples:
    return {
        "zh": {"summary": f"中文示例: {what}", "value": zh},
        "en": {"summary": f"English example: {what}", "value": en},
    }


_PLATFORM_ZH = {
    "external_ref": "dg-2026-0042",
    "name": "松山湖固态电池研发中试平台",
    "organization": "松山湖材料实验室",
    "district": "松山湖",
    "description": "面向固态电池材料与电芯的中试验证，提供干法电极、叠片与化成分容。",
    "industry_chains": ["新能源", "New Materials"],
    "tags": ["固态电池", "干法电极"],
    "capabilities": ["电芯试制", "安全测试"],
    "equipment": ["干法电极辊压机"],
    "certifications": ["CNAS"],
    "stages": ["小试", "中试"],
    "accepts_vouchers": True,
    "level": "省级",
}
_PLATFORM_EN = {
    "external_ref": "dg-2026-0107",
    "name": "Dongguan Precision Injection Moulding Pilot Line",
    "organization": "Dongguan Institute of Advanced Manufacturing",
    "district": "长安镇",
    "description": "Mould trials and small-batch injection moulding of precision plastic parts, "
    "with CMM inspection.",
    "industry_chains": ["High-end Equipment Manufacturing"],
    "tags": ["injection moulding", "mould trial"],
    "capabilities": ["mould trial", "small-batch production"],
    "equipment": ["280 t injection moulding machine", "CMM"],
    "certifications": ["ISO 9001"],
    "stages": ["中试", "小批量试产"],
    "accepts_vouchers": False,
    "level": None,
}
SUPPLIER_CREATE_EXAMPLES = bilingual(_PLATFORM_ZH, _PLATFORM_EN, what="a supplier")
SUPPLIER_UPDATE_EXAMPLES = bilingual(
    {"description": "新增硫化物固态电解质中试线，可做10Ah电芯。", "accepts_vouchers": True},
    {
        "description": "Now also runs IATF 16949 process audits.",
        "certifications": ["ISO 9001", "IATF 16949"],
        "level": "市级",
    },
    what="change some fields",
)
DEMAND_CREATE_EXAMPLES = bilingual(
    {
        "external_ref": "ent-7781",
        "title": "固态电池电芯中试放大",
        "description": "实验室已完成硫化物固态电解质小试，需要中试线做10Ah电芯试制。",
        "industry_chains": ["New Energy"],
        "tags": ["固态电池"],
        "stage": "中试",
        "district": "松山湖",
        "needs_voucher": True,
        "required_certifications": [],
    },
    {
        "external_ref": "ent-7790",
        "title": "Small-batch PCBA for a wearable sensor",
        "description": "We need SMT assembly of 500 boards with functional testing.",
        "industry_chains": ["Electronic Information"],
        "stage": "小批量试产",
        "required_certifications": ["ISO 9001"],
    },
    what="a demand",
)
DEMAND_UPDATE_EXAMPLES = bilingual(
    {"stage": "小批量试产", "needs_voucher": False},
    {
        "description": "Volume raised to 2,000 boards; the sensor is now a medical device.",
        "required_certifications": ["ISO 13485"],
        "district": None,
    },
    what="change some fields",
)
BROKER_CREATE_EXAMPLES = bilingual(
    {
        "external_ref": "tb-0042",
        "name": "李敏",
        "organization": "东莞市技术转移中心",
        "district": "松山湖",
        "industry_chains": ["新能源", "新材料"],
        "tags": ["固态电池", "储能"],
        "certification_level": "高级",
        "work_email": "limin@example.org",
    },
    {
        "external_ref": "tb-0107",
        "name": "Chen Jie",
        "organization": "Dongguan Technology Transfer Centre",
        "district": "长安镇",
        "industry_chains": ["Electronic Information"],
        "tags": ["SMT"],
        "certification_level": "中级",
        "work_phone": "+86 769 0000 0000",
    },
    what="a technology broker",
)
BROKER_UPDATE_EXAMPLES = bilingual(
    {"certification_level": "高级", "industry_chains": ["新能源"]},
    {"organization": "Songshan Lake Technology Transfer Office", "work_phone": None},
    what="change some fields",
)
EQUIPMENT_CREATE_EXAMPLES = bilingual(
    {
        "external_ref": "eq-0042-01",
        "supplier_id": "plt_0123456789abcdef",
        "name": "干法电极辊压机",
        "model": "DR-600",
        "specs": ["辊宽600 mm", "线压力≤3 t/cm"],
        "availability": "工作日可预约，提前3天",
    },
    {
        "external_ref": "eq-0107-01",
        "supplier_id": "mfr_0123456789abcdef",
        "name": "Coordinate measuring machine",
        "model": "Global S 9.15.8",
        "specs": ["900 × 1500 × 800 mm", "MPE 1.5 µm"],
        "availability": "Weekdays, book a week ahead",
        "sharing_url": "https://example.org/instruments/cmm-0107",
    },
    what="a piece of equipment of an existing supplier",
)
EQUIPMENT_UPDATE_EXAMPLES = bilingual(
    {"availability": "周末也可预约"},
    {"availability": "Weekends too, on request", "sharing_url": None},
    what="change some fields",
)
SOLUTION_CREATE_EXAMPLES = bilingual(
    {
        "external_ref": "sol-0042-01",
        "platform_id": "plt_0123456789abcdef",
        "title": "固态电池电芯中试打样",
        "description": "从材料评估到10Ah软包电芯试制与安全测试的一站式方案。",
        "industry_chains": ["新能源"],
        "tags": ["固态电池"],
        "stages": ["中试"],
        "typical_duration_days": 45,
        "price_min_cny": 80000,
        "price_max_cny": 200000,
    },
    {
        "external_ref": "sol-0107-01",
        "platform_id": "plt_0123456789abcdef",
        "title": "Mould trial and first-article inspection",
        "description": "Three mould trials with a CMM report for each.",
        "industry_chains": ["High-end Equipment Manufacturing"],
        "stages": ["中试"],
        "typical_duration_days": 14,
    },
    what="a solution of an existing platform",
)
SOLUTION_UPDATE_EXAMPLES = bilingual(
    {"description": "新增失效分析报告，周期缩短。", "typical_duration_days": 30},
    {
        "description": "Now with a full PPAP package.",
        "price_min_cny": 50000,
        "price_max_cny": None,
    },
    what="change some fields",
)
IMPORT_EXAMPLES = bilingual(
    {"platforms": [_PLATFORM_ZH], "manufacturers": [], "demands": []},
    {"platforms": [_PLATFORM_EN], "manufacturers": []},
    what="upsert by external_ref",
)
OUTCOME_EXAMPLES = bilingual(
    {
        "supplier_id": "plt_0123456789abcdef",
        "outcome": "declined",
        "reason": "产能已满，三个月内无法排期",
    },
    {
        "supplier_id": "mfr_0123456789abcdef",
        "outcome": "contacted",
        "reason": "Phone call with the plant manager",
        "recorded_at": "2026-11-30T09:30:00+08:00",
    },
    what="an outcome of a match",
)
DEMAND_CLOSE_EXAMPLES = bilingual(
    {"reason": "已与松山湖固态电池平台签约"},
    {"reason": "Found a pilot line elsewhere"},
    what="close with a reason",
)
DEMAND_RENEW_EXAMPLES = bilingual(
    {"reason": "仍在寻找中试合作方"},
    {"expires_at": "2027-06-30T00:00:00+08:00", "reason": "Still looking for a partner"},
    what="renew, optionally until a given time",
)
API_KEY_CREATE_EXAMPLES = bilingual(
    {
        "label": "市级企业综合服务平台 生产环境",
        "scopes": ["catalog:read", "match:read"],
        "consumer": "市级企业综合服务平台",
        "rate_limit_per_minute": 600,
    },
    {
        "label": "Integrator sandbox",
        "scopes": ["catalog:read", "catalog:write"],
        "expires_at": "2030-01-01T00:00:00Z",
    },
    what="a key with scopes",
)


# ---------------------------------------------------------------- webhooks

EventType = TypeAliasType(
    "EventType", Literal["demand.matched", "supplier.matches_open_demand", "catalog.changed"]
)
EVENT_TYPES: tuple[str, ...] = ("demand.matched", "supplier.matches_open_demand", "catalog.changed")
DEMAND_EVENT_TYPES = frozenset({"demand.matched", "supplier.matches_open_demand"})

WebhookUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=8, max_length=2000),
    AfterValidator(_clean_short),
    Field(
        description="Where events are POSTed: an `http://` or `https://` URL.",
        examples=["https://qiye.example.gov.cn/hooks/pilotmatch"],
    ),
]
EventTypeList = Annotated[
    builtins.list[EventType],
    Field(min_length=1, max_length=3, description="The event types to receive."),
    AfterValidator(_dedupe),
]
WebhookDescription = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=500), AfterValidator(_clean_short)
]


class WebhookCreate(_Input):
    url: WebhookUrl
    event_types: EventTypeList
    description: WebhookDescription = ""


class WebhookUpdate(_Input):
    url: WebhookUrl | None = None
    event_types: EventTypeList | None = None
    description: WebhookDescription | None = None
    enabled: bool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> WebhookUpdate:
        _refuse_nulls(self, set())
        return self


class WebhookRead(BaseModel):
    id: str
    url: str
    event_types: builtins.list[str]
    description: str
    enabled: bool
    owner_id: str = Field(description="The consumer that registered the webhook.")
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="The signing secret (`whsec_…`) for verifying `webhook-signature`. Shown "
        "only here and when rotated."
    )


class WebhookPage(BaseModel):
    items: builtins.list[WebhookRead]
    next_cursor: str | None


class WebhookFilters(_Filters):
    pass


DeliveryStatus = TypeAliasType("DeliveryStatus", Literal["pending", "delivered", "failed"])


class DeliveryRead(BaseModel):
    id: str
    webhook_id: str
    event_id: str = Field(description="The `webhook-id` header the receiver saw.")
    event_type: str
    status: DeliveryStatus = Field(
        description="`pending` (due at `next_attempt_at`), `delivered` (a 2xx answer) or "
        "`failed` (every scheduled attempt failed; redeliver to try again)."
    )
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None = Field(description="HTTP status of the last attempt, if any.")
    last_error: str | None = Field(description="Why the last attempt failed, if it did.")
    last_duration_ms: int | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryPage(BaseModel):
    items: builtins.list[DeliveryRead]
    next_cursor: str | None


class DeliveryFilters(_Filters):
    status: DeliveryStatus | None = None


class InternalEvent(_Input):
    """An event matching computed; ``id`` is deterministic, so a repeat is a no-op."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    type: EventType
    data: dict[str, Any]
    owner: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="The demand's owner (consumer id), when it has one."
    )


CursorName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
Version = Annotated[int, Field(ge=0, le=2**63 - 1)]


class CursorMove(_Input):
    """Move the producer's cursor from ``expected`` to ``version`` with the events."""

    name: CursorName
    expected: Version
    version: Version


class InternalEventBatch(_Input):
    events: Annotated[builtins.list[InternalEvent], Field(max_length=10_000)]
    cursor: CursorMove | None = None


class InternalEventsAccepted(BaseModel):
    accepted: bool = Field(description="False: the cursor had moved; nothing was written.")
    inserted: int
    duplicates: int
    cursor: int | None = Field(description="The cursor's position now, when one was named.")
    subscribed_event_types: builtins.list[str]


class EventSubscriptions(BaseModel):
    subscribed_event_types: builtins.list[str]
    cursor: int | None = None


WEBHOOK_CREATE_EXAMPLES = bilingual(
    {
        "url": "https://qiye.example.gov.cn/hooks/pilotmatch",
        "event_types": ["demand.matched", "supplier.matches_open_demand"],
        "description": "市级企业综合服务平台：需求匹配结果推送",
    },
    {
        "url": "https://integrator.example.com/webhooks/catalog",
        "event_types": ["catalog.changed"],
        "description": "Mirror catalog changes into our search index",
    },
    what="a webhook for events",
)
WEBHOOK_UPDATE_EXAMPLES = bilingual(
    {"enabled": False, "description": "接收端维护中，暂停推送"},
    {"event_types": ["demand.matched"], "description": "Only matching results from now on"},
    what="pause or narrow a webhook",
)
