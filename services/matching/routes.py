"""HTTP adapters of the matching service.

No ``from __future__ import annotations``: FastAPI reads these annotations at runtime.
"""

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Body, Depends, Query, Request, Response

from services.matching.coverage import CSV_COLUMNS, csv_headers, report_csv
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


Service = Annotated[MatchingService, Depends(get_service)]
Caller = Annotated[caller.Caller, Depends(get_caller)]
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
STORED_ERRORS = {**problem_responses(404, 422, 500, s422=_AHEAD), **_NOT_CAUGHT_UP}
AD_HOC_ERRORS = {
    **problem_responses(
        400, 415, 422, 500, s400="The request body is not valid JSON.", s422=_AHEAD
    ),
    **_NOT_CAUGHT_UP,
}


def _encoded(result: EncodedResults) -> Response:
    """The body as the service encoded it. ``response_model`` still documents it, but a
    ``Response`` returned as is skips FastAPI's re-validation and re-encoding."""
    headers = {STALE_HEADER: "true"} if result.index_stale else None
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
        responses=STORED_ERRORS,
    )
    async def demand_matches(
        demand_id: str,
        params: Annotated[MatchParams, Query()],
        service: Service,
        who: Caller,
    ) -> Response:
        result = await service.matches_for_demand(
            demand_id, params.kind, params.limit, params.min_version, who
        )
        return _encoded(result)

    @router.post(
        "/match",
        response_model=MatchResponse,
        operation_id="matchAdHoc",
        summary="Rank suppliers for a demand given in the body (not stored)",
        responses=AD_HOC_ERRORS,
    )
    async def match(
        body: Annotated[MatchDemand, Body(openapi_examples=MATCH_DEMAND_EXAMPLES)],
        params: Annotated[MatchParams, Query()],
        service: Service,
    ) -> Response:
        result = await service.match(body, params.kind, params.limit, params.min_version)
        return _encoded(result)

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
            responses=STORED_ERRORS,
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
    ) -> Response:
        result = await service.similar(kind, supplier_id, params.limit, params.min_version)
        return _encoded(result)

    return similar
