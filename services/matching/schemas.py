"""API schemas of the matching service."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from typing_extensions import TypeAliasType

from services.matching.coverage import DEFAULT_THRESHOLD

# Named, as in the catalog's schemas: one enum each for client generators.
MatchKind = TypeAliasType("MatchKind", Literal["platform", "manufacturer", "all"])
Stage = TypeAliasType("Stage", Literal["概念验证", "小试", "中试", "小批量试产"])
SupplierKind = TypeAliasType("SupplierKind", Literal["platform", "manufacturer"])

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff]")


def _clean(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control or bidi-override characters")
    return value


Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_clean),
]
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=5000), AfterValidator(_clean)
]


class MatchDemand(BaseModel):
    """A demand to match without storing it; the fields of a `POST /v1/demands` body."""

    # Strict, as the catalog's bodies: `true`, not `0`, for a boolean.
    model_config = ConfigDict(extra="forbid", strict=True)

    external_ref: Label | None = None
    title: Label
    description: Text = ""
    industry_chains: Annotated[list[Label], Field(max_length=20)] = Field(default_factory=list)
    tags: Annotated[list[Label], Field(max_length=50)] = Field(default_factory=list)
    stage: Stage | None = None
    district: Label | None = None
    needs_voucher: bool = False
    required_certifications: Annotated[list[Label], Field(max_length=20)] = Field(
        default_factory=list
    )
    broker_id: Annotated[str, StringConstraints(max_length=40), AfterValidator(_clean)] | None = (
        Field(
            default=None,
            description="A broker to list first in `brokers`, marked `assigned` (as a stored "
            "demand's `broker_id`); an id the index does not know is ignored.",
        )
    )


MATCH_DEMAND_EXAMPLES: dict[str, dict[str, Any]] = {
    "zh": {
        "summary": "中文示例: 固态电池电芯中试",
        "value": {
            "title": "固态电池电芯中试放大",
            "description": "硫化物固态电解质已完成小试，需要中试线试制10Ah软包电芯并做安全测试。",
            "industry_chains": ["New Energy"],
            "tags": ["固态电池"],
            "stage": "中试",
            "district": "松山湖",
            "needs_voucher": True,
        },
    },
    "en": {
        "summary": "English example: small-batch PCBA",
        "value": {
            "title": "Small-batch PCBA for a wearable sensor",
            "description": "SMT assembly of 500 boards with functional test; ISO 9001 required.",
            "stage": "小批量试产",
            "required_certifications": ["ISO 9001"],
        },
    },
}


# Catalog versions are 64-bit integers.
Version = Annotated[int, Field(ge=0, le=2**63 - 1)]


class MatchParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: MatchKind = Field(default="all", description="Which suppliers to rank.")
    limit: Annotated[int, Field(ge=1, le=100)] = Field(default=10, description="Results (1–100).")
    min_version: Version | None = Field(
        default=None,
        description="Wait (up to 5 s) until the index includes this catalog version, so a "
        "caller reads its own writes. Use the `version` of a write response.",
    )


class SimilarParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Field(ge=1, le=100)] = 10
    min_version: Version | None = None


class MatchResult(BaseModel):
    rank: int = Field(description="1 is the best match.")
    kind: SupplierKind
    supplier_id: str
    name: str
    score: float = Field(
        description="Final score, higher is better (about 0 to 1.7): the base (relative text "
        "similarity plus industry-chain and tag parts, at most 1.5) times each constraint's "
        "factor; `explanation` gives every part."
    )
    explanation: dict[str, Any] = Field(
        description="Why, in data: text and industry-chain parts, matched terms, chains and "
        "tags, and every constraint that raised, lowered or excluded, each with its `factor` "
        "and `effect` (`score = base + sum(effects)`). The text part's `matched_terms` name "
        "the demand's words as written, each with the contribution of all its pieces (燃料电池 "
        "with 燃料 and 电池); a piece a supplier matched alone is listed as itself, and a bigram "
        "across two words (芯小 of 电芯小批量) counts in the score without being listed. The chain part's `source` says where "
        "the demand's chains came from: `given` (named), `inferred` (chain words in its "
        "text), `neighbours` (voted by the suppliers whose text is most like the demand's, "
        "when it names no chain and its text holds no chain word) or `none`. The `outcomes` "
        "constraint, present when suppliers have outcomes of the demand's kind (its first "
        "industry chain), adds "
        "`kind`, `positive` and `declined`: the counts behind its factor. The `disclaimer` "
        "constraint, present when a supplier's description rules out some of what the demand "
        "asks (不能…, 没有…, 尚未…), adds `terms` (the demand's terms it rules out), "
        "`statements` (its own words) and `capped`: true when it rules out enough of the "
        "demand to count as a partial match at best, its score capped near half the best "
        "score of the suppliers ruling out nothing. The `stage` and `kind` constraints carry "
        "`capped` too: true when a supplier missing the demand's stage, or of the kind it does "
        "not lean to, had its score capped near 0.9 times the best of those that fit. The `batch` constraint, present when the demand states "
        "a quantity (200只, 500升, 20 sets), compares it with the batch limits the supplier "
        "states (5片起做, 单批100至2000只, 单批最低3吨) and lowers a supplier they miss."
    )


class BrokerSuggestion(BaseModel):
    """A technology broker (技术经纪人) who covers the demand's industry chains."""

    broker_id: str
    name: str
    organization: str
    district: str
    certification_level: str | None = Field(description="初级, 中级, 高级 or null.")
    work_email: str | None
    work_phone: str | None
    assigned: bool = Field(description="The broker assigned to the demand (listed first).")
    matched_chains: list[str] = Field(
        description="The demand's industry chains (named, or inferred from its text or its "
        "nearest suppliers) this broker covers: why it is suggested."
    )
    same_district: bool = Field(description="The broker serves the demand's district.")


class MatchResponse(BaseModel):
    demand_id: str | None = Field(description="The stored demand, or null for `POST /v1/match`.")
    index_version: int = Field(description="Catalog version the index had when ranking.")
    index_stale: bool = Field(
        description="True when the catalog is unreachable and the last index is being served."
    )
    results: list[MatchResult]
    brokers: list[BrokerSuggestion] = Field(
        description="Up to 3 brokers: the assigned one first, then active brokers covering "
        "the most of the demand's chains, higher title, same district, then by id."
    )


class SimilarResponse(BaseModel):
    supplier_id: str
    index_version: int
    index_stale: bool
    results: list[MatchResult]


class SupplierCounts(BaseModel):
    platform: int
    manufacturer: int


class IndexStatus(BaseModel):
    ready: bool
    version: int = Field(description="Catalog version included in the served index.")
    catalog_version: int = Field(description="Latest catalog version the syncer has seen.")
    lag: int = Field(description="catalog_version − version.")
    catalog_reachable: bool
    last_error: str | None = Field(
        description="The syncer's last error reading the catalog (admin keys only; null for "
        "other keys)."
    )
    suppliers: SupplierCounts
    demands: int = Field(
        description="Demands in the index: every consumer's for an admin key, your own for "
        "any other key (demands are private to their owner)."
    )
    built_at: datetime | None = Field(description="When the index was last fitted from scratch.")
    updated_at: datetime | None
    last_sync_at: datetime | None
    full_builds: int
    incremental_updates: int
    last_build_seconds: float | None


# ------------------------------------------------------------------ coverage report


_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _plain_decimal(value: object) -> object:
    # A query parameter is text, and Python's float() also reads 1_0 (as 10) and surrounding
    # spaces: only a plain decimal number is a threshold.
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):
        if value.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise ValueError("must be a finite number")
        raise ValueError("must be a decimal number such as 1.1")
    return value


class CoverageParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: Annotated[
        float, Field(ge=0, le=10, allow_inf_nan=False), BeforeValidator(_plain_decimal)
    ] = Field(
        default=DEFAULT_THRESHOLD,
        description="Lowest score of a result that serves a demand (scores run about 0 to "
        "1.5; the best text match alone scores 1.0, so the default 1.1 also asks for "
        "industry-chain or sub-field agreement).",
    )
    format: Literal["json", "csv"] | None = Field(
        default=None,
        description="`csv` for one CSV row per chain and sub-field; without it, "
        "`Accept: text/csv` asks for CSV too, anything else gets JSON.",
    )
    min_version: Version | None = Field(
        default=None,
        description="Wait (up to 5 s) until the index includes this catalog version.",
    )


class SupplierCoverage(BaseModel):
    total: int
    by_level: dict[str, int] = Field(
        description="Per recognition level: 国家级, 省级, 市级, and `none` for no level."
    )
    by_district: dict[str, int] = Field(
        description="Per district, most first; `none` for suppliers naming no district."
    )


class DemandCoverage(BaseModel):
    open: int = Field(description="Demands with status open, matched or in_progress.")
    without_result: int = Field(
        description="Open demands without any result scoring at least `threshold`."
    )
    voucher_matchable: int = Field(
        description="Open demands needing a voucher with a result scoring at least "
        "`threshold` from a supplier that accepts vouchers."
    )
    contacted: int = Field(description="Demands (any status) with a first contact recorded.")
    median_hours_to_first_contact: float | None = Field(
        description="Median hours from a demand's creation to its first match outcome of "
        "`contacted` or later; null when none."
    )


class SubfieldCoverage(BaseModel):
    name: str
    platforms: SupplierCoverage
    manufacturers: SupplierCoverage
    demands: DemandCoverage


class ChainCoverage(BaseModel):
    code: str
    name: str
    platforms: SupplierCoverage
    manufacturers: SupplierCoverage
    demands: DemandCoverage
    subfields: list[SubfieldCoverage] = Field(description="Every sub-field of the chain.")


class CoverageReport(BaseModel):
    index_version: int = Field(description="Catalog version of the index the report read.")
    generated_at: datetime
    threshold: float
    rank_depth: int = Field(description="Results looked at per open demand.")
    chains_without_platform: list[str] = Field(
        description="Chains that no platform lists, in taxonomy order."
    )
    chains_without_manufacturer: list[str]
    demands_without_chain: DemandCoverage = Field(
        description="Demands that name no chain and whose text suggests none."
    )
    chains: list[ChainCoverage]
