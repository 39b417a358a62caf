"""HTTP adapters of the catalog: parse, call one domain function, commit once, return.

No ``from __future__ import annotations`` here: FastAPI reads the annotations of the route
functions built in ``_collection_router`` at runtime.
"""

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.catalog import idempotency
from services.catalog import schemas as s
from services.catalog.idempotency import IdempotencyService, IdempotentRequest, StoredAnswer
from services.catalog.keys import KeyService
from services.catalog.repository import CatalogRepository
from services.catalog.service import CatalogService, Resource, random_id, utcnow
from services.shared.errors import BadRequestError
from services.shared.json_body import StrictJSONRoute
from services.shared.problems import problem_responses
from services.shared.taxonomy import load_taxonomy


class UnitOfWork:
    """A write session and the service bound to it; the route commits once, at the end.

    With an ``Idempotency-Key`` (POST routes only) the route first asks ``replay()`` for a stored
    answer, and ends with ``finish()``, which stores its answer in the same transaction.
    """

    def __init__(
        self,
        session: Any,
        service: CatalogService,
        idempotent: IdempotentRequest | None = None,
        idempotency_ttl_seconds: float = 86_400,
    ) -> None:
        self.session = session
        self.service = service
        self.idempotent = idempotent
        self._idempotency = IdempotencyService(service.repo, idempotency_ttl_seconds, utcnow)

    def commit(self) -> None:
        self.session.commit()

    def replay(self) -> Response | None:
        """The stored answer to a repeated request, or None when this one must be carried out."""
        if self.idempotent is None:
            return None
        answer = self._idempotency.lookup(self.idempotent)
        return None if answer is None else _replayed(answer)

    def finish(self, answer: BaseModel, status_code: int, location: str | None = None) -> Any:
        """Commit the write and return its answer, stored first when the request has a key."""
        if self.idempotent is None:
            self.commit()
            return answer
        response = JSONResponse(jsonable_encoder(answer), status_code=status_code)
        if location is not None:
            response.headers["Location"] = location
        body = bytes(response.body).decode()
        earlier = self._idempotency.store(self.idempotent, status_code, body, location)
        if earlier is not None:
            return _replayed(earlier)
        self.commit()
        return response


def _replayed(answer: StoredAnswer) -> Response:
    headers = {idempotency.REPLAYED_HEADER: "true"}
    if answer.location is not None:
        headers["Location"] = answer.location
    return Response(
        answer.body,
        status_code=answer.status_code,
        media_type="application/json",
        headers=headers,
    )


def _service(request: Request, session: Any) -> CatalogService:
    settings = request.app.state.settings
    return CatalogService(
        CatalogRepository(session),
        load_taxonomy(),
        max_import_items=settings.max_import_items,
    )


def read_service(request: Request) -> Iterator[CatalogService]:
    with request.app.state.db.session(write=False) as session:
        yield _service(request, session)


def write_unit(request: Request) -> Iterator[UnitOfWork]:
    # Leaving the block without commit() rolls back: a failed request writes nothing.
    with request.app.state.db.session(write=True) as session:
        yield UnitOfWork(session, _service(request, session))


IDEMPOTENCY_KEY_DESCRIPTION = (
    "1–200 printable ASCII characters, unique per request you mean to make once. A repeat with "
    "the same key and body gets the first answer again (with `Idempotent-Replayed: true`) "
    "without a second write; the same key with another body is a 422. Keys expire after "
    "`IDEMPOTENCY_TTL_SECONDS` (24 h)."
)


async def idempotent_request(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=idempotency.HEADER,
            description=IDEMPOTENCY_KEY_DESCRIPTION,
            min_length=1,
            max_length=200,
            # Printable ASCII, no space at either end (HTTP would strip it anyway).
            pattern=idempotency.KEY_PATTERN,
        ),
    ] = None,
) -> IdempotentRequest | None:
    if idempotency_key is None:
        return None
    return idempotency.request_for(
        idempotency_key,
        request.headers.get(idempotency.CONSUMER_HEADER),
        request.method,
        request.url.path,
        await request.body(),
    )


def idempotent_write_unit(
    request: Request,
    idempotent: Annotated[IdempotentRequest | None, Depends(idempotent_request)],
) -> Iterator[UnitOfWork]:
    ttl = request.app.state.settings.idempotency_ttl_seconds
    with request.app.state.db.session(write=True) as session:
        yield UnitOfWork(session, _service(request, session), idempotent, ttl)


def no_idempotency_key(request: Request) -> None:
    # The answer to key creation holds the secret, which is never stored: nothing to replay.
    if idempotency.HEADER in request.headers:
        raise BadRequestError(
            f"{idempotency.HEADER} is not accepted here: the answer holds a secret that is "
            "never stored, so it could not be replayed. Send the request without it."
        )


ReadService = Annotated[CatalogService, Depends(read_service)]
WriteUnit = Annotated[UnitOfWork, Depends(write_unit)]
IdempotentWriteUnit = Annotated[UnitOfWork, Depends(idempotent_write_unit)]

# What the catalog itself answers; the gateway's document adds 401, 403, 429, 502, 503, 504.
LIST_ERRORS = problem_responses(
    422,
    500,
    s422="Validation failed, e.g. a `cursor` this service did not issue or a `chain` that names "
    "no industry chain; `errors` lists every field at fault.",
)
ONE_ERRORS = problem_responses(404, 500)
WRITE_ERRORS = problem_responses(
    400,
    409,
    413,
    415,
    422,
    500,
    s400="The request body is not valid JSON: malformed, not UTF-8, duplicate member names, "
    "NaN or Infinity, or nested too deeply.",
    s422="Validation failed, or a domain rule was broken (e.g. a parent that does not exist); "
    "`errors` lists every field at fault.",
)


def _collection_router(
    *,
    resource: Resource,
    path: str,
    tag: str,
    singular: str,
    plural: str,
    create: type[BaseModel],
    update: type[BaseModel],
    create_examples: s.Examples,
    update_examples: s.Examples,
    read: type[BaseModel],
    written: type[BaseModel],
    page: type[BaseModel],
    filters: type[BaseModel],
    description: str,
) -> APIRouter:
    router = APIRouter(prefix=path, tags=[tag], route_class=StrictJSONRoute)

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        response_model=written,
        operation_id=f"create{singular}",
        summary=f"Create a {description}",
        responses=WRITE_ERRORS,
    )
    def create_item(
        body: Annotated[create, Body(openapi_examples=create_examples)],  # type: ignore[valid-type]
        uow: IdempotentWriteUnit,
        response: Response,
    ) -> Any:
        if (replayed := uow.replay()) is not None:
            return replayed
        item, version, warnings = uow.service.create(resource, body)
        location = f"/v1{path}/{item.id}"
        response.headers["Location"] = location
        answer = written(**{**item.model_dump(), "version": version, "warnings": warnings})
        return uow.finish(answer, status.HTTP_201_CREATED, location)

    @router.get(
        "",
        response_model=page,
        operation_id=f"list{plural}",
        summary=f"List {description}s, filtered and paginated",
        responses=LIST_ERRORS,
    )
    def list_items(query: Annotated[filters, Query()], service: ReadService) -> Any:  # type: ignore[valid-type]
        items, next_cursor = service.list_page(resource, query)
        return page(items=items, next_cursor=next_cursor)

    @router.get(
        "/{item_id}",
        response_model=read,
        operation_id=f"get{singular}",
        summary=f"Get one {description}",
        responses=ONE_ERRORS,
    )
    def get_item(item_id: str, service: ReadService) -> Any:
        return service.get(resource, item_id)

    @router.patch(
        "/{item_id}",
        response_model=written,
        operation_id=f"update{singular}",
        summary=f"Change fields of a {description}",
        responses={**WRITE_ERRORS, **ONE_ERRORS},
    )
    def update_item(
        item_id: str,
        body: Annotated[update, Body(openapi_examples=update_examples)],  # type: ignore[valid-type]
        uow: WriteUnit,
    ) -> Any:
        item, version, warnings = uow.service.update(resource, item_id, body)
        uow.commit()
        return written(**{**item.model_dump(), "version": version, "warnings": warnings})

    @router.delete(
        "/{item_id}",
        response_model=s.DeleteResult,
        operation_id=f"delete{singular}",
        summary=f"Delete a {description}",
        responses=ONE_ERRORS,
    )
    def delete_item(item_id: str, uow: WriteUnit) -> s.DeleteResult:
        version = uow.service.delete(resource, item_id)
        uow.commit()
        return s.DeleteResult(id=item_id, version=version)

    return router


def catalog_router() -> APIRouter:
    router = APIRouter(prefix="/v1")
    supplier: dict[str, Any] = dict(
        create=s.SupplierCreate,
        create_examples=s.SUPPLIER_CREATE_EXAMPLES,
        update_examples=s.SUPPLIER_UPDATE_EXAMPLES,
        update=s.SupplierUpdate,
        read=s.SupplierRead,
        written=s.SupplierWriteResult,
        page=s.SupplierPage,
        filters=s.SupplierFilters,
    )
    router.include_router(
        _collection_router(
            resource="platform",
            path="/platforms",
            tag="platforms",
            singular="Platform",
            plural="Platforms",
            description="pilot-test platform (中试平台)",
            **supplier,
        )
    )
    router.include_router(
        _collection_router(
            resource="manufacturer",
            path="/manufacturers",
            tag="manufacturers",
            singular="Manufacturer",
            plural="Manufacturers",
            description="contract manufacturer (中试代工厂)",
            **supplier,
        )
    )
    router.include_router(
        _collection_router(
            resource="demand",
            path="/demands",
            tag="demands",
            singular="Demand",
            plural="Demands",
            description="pilot-test demand (中试需求)",
            create=s.DemandCreate,
            create_examples=s.DEMAND_CREATE_EXAMPLES,
            update_examples=s.DEMAND_UPDATE_EXAMPLES,
            update=s.DemandUpdate,
            read=s.DemandRead,
            written=s.DemandWriteResult,
            page=s.DemandPage,
            filters=s.DemandFilters,
        )
    )
    router.include_router(
        _collection_router(
            resource="equipment",
            path="/equipment",
            tag="equipment",
            singular="Equipment",
            plural="Equipment",
            description="piece of pilot-test equipment (中试设备)",
            create=s.EquipmentCreate,
            create_examples=s.EQUIPMENT_CREATE_EXAMPLES,
            update_examples=s.EQUIPMENT_UPDATE_EXAMPLES,
            update=s.EquipmentUpdate,
            read=s.EquipmentRead,
            written=s.EquipmentWriteResult,
            page=s.EquipmentPage,
            filters=s.EquipmentFilters,
        )
    )
    router.include_router(
        _collection_router(
            resource="solution",
            path="/solutions",
            tag="solutions",
            singular="Solution",
            plural="Solutions",
            description="pilot-test solution (中试解决方案)",
            create=s.SolutionCreate,
            create_examples=s.SOLUTION_CREATE_EXAMPLES,
            update_examples=s.SOLUTION_UPDATE_EXAMPLES,
            update=s.SolutionUpdate,
            read=s.SolutionRead,
            written=s.SolutionWriteResult,
            page=s.SolutionPage,
            filters=s.SolutionFilters,
        )
    )
    router.include_router(_misc_router())
    router.include_router(_admin_router())
    return router


def _keys(uow: UnitOfWork) -> KeyService:
    return KeyService(uow.service.repo, utcnow, random_id)


def _admin_router() -> APIRouter:
    router = APIRouter(prefix="/admin/keys", tags=["admin"], route_class=StrictJSONRoute)

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        response_model=s.ApiKeyCreated,
        operation_id="createApiKey",
        summary="Issue an API key (shown once) — scope admin",
        description=f"Refuses `{idempotency.HEADER}` with a 400: the answer holds the secret, "
        "which is never stored, so it cannot be replayed.",
        responses=WRITE_ERRORS,
        dependencies=[Depends(no_idempotency_key)],
    )
    def create_key(
        body: Annotated[s.ApiKeyCreate, Body(openapi_examples=s.API_KEY_CREATE_EXAMPLES)],
        uow: WriteUnit,
    ) -> s.ApiKeyCreated:
        created = _keys(uow).create(body)
        uow.commit()
        return created

    @router.get(
        "",
        response_model=s.ApiKeyPage,
        operation_id="listApiKeys",
        summary="List API keys (never their secrets) — scope admin",
        responses=LIST_ERRORS,
    )
    def list_keys(query: Annotated[s.ApiKeyFilters, Query()], uow: WriteUnit) -> s.ApiKeyPage:
        items, next_cursor = _keys(uow).list_keys(query)
        return s.ApiKeyPage(items=items, next_cursor=next_cursor)

    @router.delete(
        "/{key_id}",
        response_model=s.ApiKeyRead,
        operation_id="revokeApiKey",
        summary="Revoke an API key — scope admin",
        responses=ONE_ERRORS,
    )
    def revoke_key(key_id: str, uow: WriteUnit) -> s.ApiKeyRead:
        revoked = _keys(uow).revoke(key_id)
        uow.commit()
        return revoked

    return router


def internal_router() -> APIRouter:
    """Endpoints for the other services only; the gateway never forwards these paths."""
    router = APIRouter(prefix="/internal", include_in_schema=False, route_class=StrictJSONRoute)

    @router.post("/keys/verify", response_model=s.KeyVerification)
    def verify_key(body: s.KeyVerifyRequest, service: ReadService) -> s.KeyVerification:
        return KeyService(service.repo, utcnow, random_id).verify(body.key)

    return router


def _misc_router() -> APIRouter:
    router = APIRouter(route_class=StrictJSONRoute)

    @router.post(
        "/import",
        response_model=s.ImportReport,
        operation_id="importCatalog",
        tags=["import"],
        summary="Upsert many platforms, manufacturers and demands by external_ref",
        description="Up to 10,000 items in one request. Valid items are kept when others fail; "
        "each rejected item is reported with its list, index and the fields at fault. "
        "Importing the same body twice changes nothing the second time.",
        responses=WRITE_ERRORS,
    )
    def import_catalog(
        body: Annotated[s.ImportRequest, Body(openapi_examples=s.IMPORT_EXAMPLES)],
        uow: IdempotentWriteUnit,
    ) -> Any:
        if (replayed := uow.replay()) is not None:
            return replayed
        return uow.finish(uow.service.import_catalog(body), status.HTTP_200_OK)

    @router.get(
        "/changes",
        response_model=s.ChangePage,
        operation_id="listChanges",
        tags=["changes"],
        summary="Page through the catalog's change log (for sync)",
        responses=problem_responses(422, 500),
    )
    def list_changes(query: Annotated[s.ChangeFilters, Query()], service: ReadService) -> Any:
        return service.changes(query.after, query.limit)

    @router.get(
        "/industry-chains",
        response_model=s.IndustryChainList,
        operation_id="listIndustryChains",
        tags=["industry-chains"],
        summary="The industry-chain taxonomy (产业链): codes, names and aliases",
        responses=problem_responses(500),
    )
    def list_industry_chains() -> s.IndustryChainList:
        return s.IndustryChainList(
            items=[
                s.IndustryChainRead(
                    code=chain.code,
                    name=chain.name,
                    name_en=chain.name_en,
                    category=chain.category,
                    aliases=list(chain.aliases),
                    traditional=list(chain.traditional),
                    subfields=list(chain.subfields),
                    related=dict(chain.related),
                    subfield_aliases={k: list(v) for k, v in chain.subfield_aliases.items()},
                )
                for chain in load_taxonomy().chains
            ]
        )

    return router
