"""HTTP adapters of the matching service.

No ``from __future__ import annotations``: FastAPI reads these annotations at runtime.
"""

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response

from services.matching.coverage import CSV_COLUMNS, csv_headers, report_csv
from services.matching.messages import LANGUAGES, Language, negotiate
from services.matching.schemas import (
    MATCH_DEMAND_EXAMPLES,
    CoverageParams,
    CoverageReport,
    IndexStatus,
    MatchDemand,
    MatchParams,
    MatchResponse,
    SimilarParams,
    SimilarResponse,
)
from services.matching.service import EncodedResults, MatchingService
from services.shared import caller
from services.shared.json_body import StrictJSONRoute
from services.shared.problems import problem_responses

STALE_HEADER = "X-Index-Stale"


def get_service(request: Request) -> MatchingService:
    service: MatchingService = request.app.state.matching
    return service


def get_caller(request: Request) -> caller.Caller:
    return caller.from_headers(
        request.headers.get(caller.CONSUMER_HEADER), request.headers.get(caller.SCOPES_HEADER)
    )


def get_language(
    accept_language: Annotated[
        str | None,
        Header(
            description="The language of the explanations' `reason` texts: "
            + " or ".join(f"`{code}`" for code in LANGUAGES)
            + " (`zh-CN`, `zh-Hans` and the like are `zh`), by weight as RFC 9110 reads "
            "the header; English when absent or when it names neither. The answer's "
            "`Content-Language` says which was used. Everything else in the answer is the "
            "same in every language."
        ),
    ] = None,
) -> Language:
    return negotiate(accept_language)


Service = Annotated[MatchingService, Depends(get_service)]
Caller = Annotated[caller.Caller, Depends(get_caller)]
Reasons = Annotated[Language, Depends(get_language)]
# What the matching service itself answers; the gateway's document adds 401, 403, 429, 502, 504.
_NOT_CAUGHT_UP = problem_responses(
    503,
    s503="The index has not reached `min_version` within 5 s, or is still being built; retry "
    "after `Retry-After` seconds.",
)
_AHEAD = (
    "Validation failed, or `min_version` is ahead of the catalog's version; `errors` lists "
    "every field at fault."
)
_IN_LANGUAGE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Successful Response",
        "headers": {
            "Content-Language": {
                "description": "The language of the `reason` texts: "
                + " or ".join(f"`{code}`" for code in LANGUAGES)
                + " (see `Accept-Language`).",
                "schema": {"type": "string", "enum": list(LANGUAGES)},
            },
            "Vary": {
                "description": "`Accept-Language`: the reasons follow it.",
                "schema": {"type": "string"},
            },
        },
    }
}
STORED_ERRORS = {**problem_responses(404, 422, 500, s422=_AHEAD), **_NOT_CAUGHT_UP}
AD_HOC_ERRORS = {
    **problem_responses(
        400, 415, 422, 500, s400="The request body is not valid JSON.", s422=_AHEAD
    ),
    **_NOT_CAUGHT_UP,
}


def _encoded(result: EncodedResults, language: Language) -> Response:
    """The body as the service encoded it. ``response_model`` still documents it, but a
    ``Response`` returned as is skips FastAPI's re-validation and re-encoding. The answer
    depends on ``Accept-Language`` (its reasons), which ``Vary`` tells caches."""
    headers = {"Content-Language": language, "Vary": "Accept-Language"}
    if result.index_stale:
        headers[STALE_HEADER] = "true"
    return Response(result.body, media_type="application/json", headers=headers)


def matching_router() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["matching"], route_class=StrictJSONRoute)

    @router.get(
        "/demands/{demand_id}/matches",
        response_model=MatchResponse,
        operation_id="matchDemand",
        summary="Rank platforms and manufacturers for a stored demand",
        description="A key without the `admin` scope gets matches for its own consumer's "
        "demands only: another consumer's demand is a 404, exactly as if it did not exist. "
        "A ranking call spends `RATE_LIMIT_MATCH_COST` (2) requests' worth of the key's rate "
        "limit.",
        responses={**_IN_LANGUAGE, **STORED_ERRORS},
    )
    async def demand_matches(
        demand_id: str,
        params: Annotated[MatchParams, Query()],
        service: Service,
        who: Caller,
        language: Reasons,
    ) -> Response:
        result = await service.matches_for_demand(
            demand_id, params.kind, params.limit, params.min_version, who, language
        )
        return _encoded(result, language)

    @router.post(
        "/match",
        response_model=MatchResponse,
        operation_id="matchAdHoc",
        summary="Rank suppliers for a demand given in the body (not stored)",
        responses={**_IN_LANGUAGE, **AD_HOC_ERRORS},
    )
    async def match(
        body: Annotated[MatchDemand, Body(openapi_examples=MATCH_DEMAND_EXAMPLES)],
        params: Annotated[MatchParams, Query()],
        service: Service,
        language: Reasons,
    ) -> Response:
        result = await service.match(body, params.kind, params.limit, params.min_version, language)
        return _encoded(result, language)

    similar_routes: tuple[tuple[Literal["platform", "manufacturer"], str, str], ...] = (
        ("platform", "/platforms/{supplier_id}/similar", "similarPlatforms"),
        ("manufacturer", "/manufacturers/{supplier_id}/similar", "similarManufacturers"),
    )
    for kind, path, operation in similar_routes:
        router.add_api_route(
            path,
            _similar_endpoint(kind),
            methods=["GET"],
            response_model=SimilarResponse,
            operation_id=operation,
            summary=f"Suppliers like this {kind}",
            description="Platforms and manufacturers like this one, best first, never itself: "
            "the text, industry-chain and tag scores of a match, with this supplier's own "
            "profile (what it affirms) as the query. A supplier that says it does not do what "
            "this one does is no substitute for it: it is lowered and capped as for a demand "
            "and shows a `disclaimer` constraint; no other constraint applies.",
            responses={**_IN_LANGUAGE, **STORED_ERRORS},
        )

    @router.get(
        "/reports/coverage",
        response_model=CoverageReport,
        operation_id="getCoverageReport",
        tags=["reports"],
        summary="Coverage and gap report: suppliers and demands per industry chain and sub-field",
        description="Per industry chain and sub-field: platforms and manufacturers by level and "
        "district, open demands, open demands without a result scoring at least `threshold`, "
        "open demands that can use a voucher, and the median hours to a first contact; plus "
        "the chains without any platform or manufacturer. JSON by default; CSV (one row per "
        "chain and sub-field) with `?format=csv` or `Accept: text/csv`, the report's header "
        "fields then in `X-Index-Version`, `X-Report-Generated-At` and `X-Report-Threshold`. "
        "CSV columns: " + ", ".join(f"`{c}`" for c in CSV_COLUMNS) + " (`sub_field` empty on "
        "the chain's own row; levels: national 国家级, provincial 省级, municipal 市级; "
        "`*_by_district` is `district=count` pairs joined by `; `, most first).",
        responses={
            200: {
                "content": {
                    "text/csv": {
                        "schema": {"type": "string"},
                        "example": "chain_code,chain,sub_field,platforms,…\r\n"
                        "NEW_ENERGY,新能源,,3,…\r\nNEW_ENERGY,新能源,固态电池,1,…\r\n",
                    }
                }
            },
            **problem_responses(422, 500),
            **_NOT_CAUGHT_UP,
        },
    )
    async def coverage_report(
        request: Request,
        params: Annotated[CoverageParams, Query()],
        service: Service,
    ) -> Response:
        report = await service.coverage(params.threshold, params.min_version)
        wants_csv = params.format == "csv" or (
            params.format is None and "text/csv" in request.headers.get("accept", "")
        )
        if wants_csv:
            return Response(
                report_csv(report).encode(),
                media_type="text/csv; charset=utf-8",
                headers=csv_headers(report),
            )
        return Response(orjson.dumps(report), media_type="application/json")

    @router.get(
        "/index",
        response_model=IndexStatus,
        operation_id="getIndexStatus",
        summary="Status of the matching index: version, lag, counts, last build",
        responses=problem_responses(500),
    )
    async def index_status(service: Service, who: Caller) -> IndexStatus:
        return service.status(who)

    return router


def _similar_endpoint(kind: Literal["platform", "manufacturer"]):  # type: ignore[no-untyped-def]
    async def similar(
        supplier_id: str,
        params: Annotated[SimilarParams, Query()],
        service: Service,
        language: Reasons,
    ) -> Response:
        result = await service.similar(
            kind, supplier_id, params.limit, params.min_version, language
        )
        return _encoded(result, language)

    return similar
