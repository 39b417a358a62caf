"""API schemas of the matching service."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from typing_extensions import TypeAliasType

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
        "and `effect` (`score = base + sum(effects)`). The `outcomes` constraint, present "
        "when suppliers have outcomes of the demand's kind (its first industry chain), adds "
        "`kind`, `positive` and `declined`: the counts behind its factor."
    )


class MatchResponse(BaseModel):
    demand_id: str | None = Field(description="The stored demand, or null for `POST /v1/match`.")
    index_version: int = Field(description="Catalog version the index had when ranking.")
    index_stale: bool = Field(
        description="True when the catalog is unreachable and the last index is being served."
    )
    results: list[MatchResult]


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
    last_error: str | None
    suppliers: SupplierCounts
    demands: int
    built_at: datetime | None = Field(description="When the index was last fitted from scratch.")
    updated_at: datetime | None
    last_sync_at: datetime | None
    full_builds: int
    incremental_updates: int
    last_build_seconds: float | None
