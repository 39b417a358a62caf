"""HTTP adapters of the catalog: parse, call one domain function, commit once, return.

No ``from __future__ import annotations`` here: FastAPI reads the annotations of the route
functions built in ``_collection_router`` at runtime.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.catalog import idempotency
from services.catalog import schemas as s
from services.catalog.idempotency import IdempotencyService, IdempotentRequest, StoredAnswer
from services.catalog.keys import KeyService
from services.catalog.lifecycle import DemandLifecycle, UnitFactory
from services.catalog.repository import CatalogRepository
from services.catalog.service import CatalogService, Clock, Resource, random_id, utcnow
from services.catalog.webhooks import WebhookService
from services.shared import caller
from services.shared.change_log import CURRENT_VERSION_HEADER, NEXT_AFTER_HEADER
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
    return service_for(
        request.app.state.settings,
        session,
        who=caller.from_headers(
            request.headers.get(caller.CONSUMER_HEADER), request.headers.get(caller.SCOPES_HEADER)
        ),
    )


def service_for(
    settings: Any, session: Any, clock: Clock = utcnow, who: caller.Caller = caller.INTERNAL
) -> CatalogService:
    """The catalog service for one unit of work; ``who`` narrows what it sees (default: the
    system itself, e.g. the expiry sweeper)."""
    return CatalogService(
        CatalogRepository(session),
        load_taxonomy(),
        clock=clock,
        max_import_items=settings.max_import_items,
        caller=who,
        demand_lifetime=timedelta(days=settings.demand_lifetime_days),
    )


def background_units(db: Any, settings: Any, clock: Clock = utcnow) -> UnitFactory:
    """``(session, service)`` units for work outside a request (the expiry sweeper)."""

    @contextmanager
    def unit(write: bool) -> Iterator[tuple[Any, CatalogService]]:
        with db.session(write=write) as session:
            yield session, service_for(settings, session, clock)

    return unit


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


_NOT_YOURS = (
    "A key without the `admin` scope reaches only its own consumer's demands: another "
    "consumer's demand is a 404, exactly as if it did not exist."
)
DEMAND_ACCESS = {
    "create": "The demand belongs to the consumer whose key created it (`owner`, set by the "
    "server; a body that sends `owner` is a 422). `external_ref` must be unique among that "
    "consumer's demands.",
    "list": "A key without the `admin` scope lists only its own consumer's demands; an admin "
    "key lists every consumer's.",
    "get": _NOT_YOURS,
    "update": _NOT_YOURS + " The owner never changes.",
    "delete": _NOT_YOURS,
}


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
    access: dict[str, str] | None = None,
) -> APIRouter:
    """``access``: per operation ("create", "list", "get", "update", "delete"), who may do it,
    for resources that belong to a consumer."""
    router = APIRouter(prefix=path, tags=[tag], route_class=StrictJSONRoute)
    access = access or {}

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        response_model=written,
        operation_id=f"create{singular}",
        summary=f"Create a {description}",
        description=access.get("create"),
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
        description=access.get("list"),
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
        description=access.get("get"),
        responses=ONE_ERRORS,
    )
    def get_item(item_id: str, service: ReadService) -> Any:
        return service.get(resource, item_id)

    @router.patch(
        "/{item_id}",
        response_model=written,
        operation_id=f"update{singular}",
        summary=f"Change fields of a {description}",
        description=access.get("update"),
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
        description=access.get("delete"),
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
            access=DEMAND_ACCESS,
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
    router.include_router(
        _collection_router(
            resource="broker",
            path="/brokers",
            tag="brokers",
            singular="Broker",
            plural="Brokers",
            description="technology broker (技术经纪人)",
            create=s.BrokerCreate,
            create_examples=s.BROKER_CREATE_EXAMPLES,
            update_examples=s.BROKER_UPDATE_EXAMPLES,
            update=s.BrokerUpdate,
            read=s.BrokerRead,
            written=s.BrokerWriteResult,
            page=s.BrokerPage,
            filters=s.BrokerFilters,
        )
    )
    router.include_router(_lifecycle_router())
    router.include_router(_misc_router())
    router.include_router(_webhook_router())
    router.include_router(_admin_router())
    return router


def _lifecycle_router() -> APIRouter:
    router = APIRouter(route_class=StrictJSONRoute)
    transition_errors = {
        **WRITE_ERRORS,
        **problem_responses(
            404,
            409,
            s409="The demand's status does not allow this transition; `detail` names it.",
        ),
    }

    @router.post(
        "/demands/{demand_id}/close",
        response_model=s.DemandWriteResult,
        operation_id="closeDemand",
        tags=["demands"],
        summary="Close a demand (optionally saying why)",
        description="Any demand that is not closed yet can be closed; a closed demand leaves "
        "matching's reverse direction and is no longer expired or moved by outcomes. "
        "Closing a closed demand is a 409.",
        responses=transition_errors,
    )
    def close_demand(
        demand_id: str,
        uow: IdempotentWriteUnit,
        body: Annotated[
            s.DemandClose | None, Body(openapi_examples=s.DEMAND_CLOSE_EXAMPLES)
        ] = None,
    ) -> Any:
        if (replayed := uow.replay()) is not None:
            return replayed
        reason = body.reason if body is not None else None
        demand, version = DemandLifecycle(uow.service).close(demand_id, reason)
        answer = s.DemandWriteResult(**{**demand.model_dump(), "version": version})
        return uow.finish(answer, status.HTTP_200_OK)

    @router.post(
        "/demands/{demand_id}/renew",
        response_model=s.DemandWriteResult,
        operation_id="renewDemand",
        tags=["demands"],
        summary="Renew a demand: re-open it if expired and move its expiry on",
        description="An open, matched or expired demand gets `expires_at` = the given time, or "
        "now plus `DEMAND_LIFETIME_DAYS`; an expired one is open again. Renewing a demand "
        "that is in progress or closed is a 409.",
        responses=transition_errors,
    )
    def renew_demand(
        demand_id: str,
        uow: IdempotentWriteUnit,
        body: Annotated[
            s.DemandRenew | None, Body(openapi_examples=s.DEMAND_RENEW_EXAMPLES)
        ] = None,
    ) -> Any:
        if (replayed := uow.replay()) is not None:
            return replayed
        body = body or s.DemandRenew()
        demand, version = DemandLifecycle(uow.service).renew(
            demand_id, body.expires_at, body.reason
        )
        answer = s.DemandWriteResult(**{**demand.model_dump(), "version": version})
        return uow.finish(answer, status.HTTP_200_OK)

    @router.post(
        "/demands/{demand_id}/outcomes",
        status_code=status.HTTP_201_CREATED,
        response_model=s.MatchOutcomeWriteResult,
        operation_id="recordMatchOutcome",
        tags=["outcomes"],
        summary="Record what happened to a match (viewed … completed, or declined)",
        description="The demand must exist (404) and `supplier_id` name a platform or "
        "manufacturer (422); `declined` needs a `reason`. An outcome moves an open, matched "
        "or in-progress demand forward: contacted or visited → matched, contracted → "
        "in_progress, completed → closed (`demand_status` says where it is now). Matching "
        "uses outcomes in ranking (the `outcomes` factor of a match's explanation).",
        responses={**WRITE_ERRORS, **ONE_ERRORS},
    )
    def record_outcome(
        demand_id: str,
        body: Annotated[s.MatchOutcomeCreate, Body(openapi_examples=s.OUTCOME_EXAMPLES)],
        uow: IdempotentWriteUnit,
    ) -> Any:
        if (replayed := uow.replay()) is not None:
            return replayed
        outcome, version = DemandLifecycle(uow.service).record_outcome(demand_id, body)
        answer = s.MatchOutcomeWriteResult(**{**outcome.model_dump(), "version": version})
        return uow.finish(answer, status.HTTP_201_CREATED)

    @router.get(
        "/demands/{demand_id}/outcomes",
        response_model=s.MatchOutcomePage,
        operation_id="listDemandOutcomes",
        tags=["outcomes"],
        summary="Outcomes of a demand's matches, newest first",
        responses={**LIST_ERRORS, **ONE_ERRORS},
    )
    def demand_outcomes(
        demand_id: str,
        query: Annotated[s.MatchOutcomeFilters, Query()],
        service: ReadService,
    ) -> s.MatchOutcomePage:
        items, next_cursor = DemandLifecycle(service).outcomes_of_demand(demand_id, query)
        return s.MatchOutcomePage(items=items, next_cursor=next_cursor)

    supplier_routes: tuple[tuple[Literal["platform", "manufacturer"], str, str], ...] = (
        ("platform", "/platforms/{supplier_id}/outcomes", "listPlatformOutcomes"),
        ("manufacturer", "/manufacturers/{supplier_id}/outcomes", "listManufacturerOutcomes"),
    )
    for kind, path, operation in supplier_routes:
        router.add_api_route(
            path,
            _supplier_outcomes_endpoint(kind),
            methods=["GET"],
            response_model=s.MatchOutcomePage,
            operation_id=operation,
            tags=["outcomes"],
            summary=f"Outcomes of this {kind}'s matches, newest first",
            responses={**LIST_ERRORS, **ONE_ERRORS},
        )
    return router


def _supplier_outcomes_endpoint(kind: Literal["platform", "manufacturer"]):  # type: ignore[no-untyped-def]
    def supplier_outcomes(
        supplier_id: str,
        query: Annotated[s.MatchOutcomeFilters, Query()],
        service: ReadService,
    ) -> s.MatchOutcomePage:
        items, next_cursor = DemandLifecycle(service).outcomes_of_supplier(kind, supplier_id, query)
        return s.MatchOutcomePage(items=items, next_cursor=next_cursor)

    return supplier_outcomes


def webhook_caller(request: Request) -> caller.Caller:
    """Who manages webhooks: the consumer and scopes the gateway vouches for."""
    return caller.from_headers(
        request.headers.get(caller.CONSUMER_HEADER), request.headers.get(caller.SCOPES_HEADER)
    )


CallerDep = Annotated[caller.Caller, Depends(webhook_caller)]


def _webhooks(request: Request, repo: CatalogRepository) -> WebhookService:
    settings = request.app.state.settings
    return WebhookService(
        repo,
        utcnow,
        random_id,
        allow_private_targets=settings.webhook_private_targets_allowed,
        max_per_owner=settings.webhook_max_per_consumer,
    )


WEBHOOK_OWNERSHIP = (
    " A webhook belongs to the consumer whose key registered it: other consumers get 404 for "
    "it. A key with scope `admin` sees and manages every webhook."
)


def _webhook_router() -> APIRouter:
    router = APIRouter(prefix="/webhooks", tags=["webhooks"], route_class=StrictJSONRoute)

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        response_model=s.WebhookCreated,
        operation_id="createWebhook",
        summary="Register a webhook endpoint (its signing secret is shown once)",
        description="Events of the listed types are POSTed to `url`, signed per Standard "
        "Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`). In production, "
        "URLs on loopback, private or link-local addresses are refused. A consumer may hold "
        "at most `WEBHOOK_MAX_PER_CONSUMER` webhooks (25 by default); past that, 409."
        + WEBHOOK_OWNERSHIP,
        responses=WRITE_ERRORS,
        dependencies=[Depends(no_idempotency_key)],
    )
    def create_webhook(
        body: Annotated[s.WebhookCreate, Body(openapi_examples=s.WEBHOOK_CREATE_EXAMPLES)],
        who: CallerDep,
        uow: WriteUnit,
        request: Request,
        response: Response,
    ) -> s.WebhookCreated:
        created = _webhooks(request, uow.service.repo).create(who, body)
        uow.commit()
        response.headers["Location"] = f"/v1/webhooks/{created.id}"
        return created

    @router.get(
        "",
        response_model=s.WebhookPage,
        operation_id="listWebhooks",
        summary="List your webhooks (never their secrets)",
        description="Paginated like every list." + WEBHOOK_OWNERSHIP,
        responses=LIST_ERRORS,
    )
    def list_webhooks(
        query: Annotated[s.WebhookFilters, Query()],
        who: CallerDep,
        service: ReadService,
        request: Request,
    ) -> s.WebhookPage:
        return _webhooks(request, service.repo).list_page(who, query)

    @router.get(
        "/{webhook_id}",
        response_model=s.WebhookRead,
        operation_id="getWebhook",
        summary="Get one webhook",
        description=WEBHOOK_OWNERSHIP.strip(),
        responses=ONE_ERRORS,
    )
    def get_webhook(
        webhook_id: str, who: CallerDep, service: ReadService, request: Request
    ) -> s.WebhookRead:
        return _webhooks(request, service.repo).get(who, webhook_id)

    @router.patch(
        "/{webhook_id}",
        response_model=s.WebhookRead,
        operation_id="updateWebhook",
        summary="Change a webhook's URL, event types, description, or enable/disable it",
        description="A disabled webhook gets no new events; deliveries already queued are "
        "still sent." + WEBHOOK_OWNERSHIP,
        responses={**WRITE_ERRORS, **ONE_ERRORS},
    )
    def update_webhook(
        webhook_id: str,
        body: Annotated[s.WebhookUpdate, Body(openapi_examples=s.WEBHOOK_UPDATE_EXAMPLES)],
        who: CallerDep,
        uow: WriteUnit,
        request: Request,
    ) -> s.WebhookRead:
        updated = _webhooks(request, uow.service.repo).update(who, webhook_id, body)
        uow.commit()
        return updated

    @router.delete(
        "/{webhook_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        operation_id="deleteWebhook",
        summary="Delete a webhook and its pending deliveries",
        description=WEBHOOK_OWNERSHIP.strip(),
        responses=ONE_ERRORS,
    )
    def delete_webhook(webhook_id: str, who: CallerDep, uow: WriteUnit, request: Request) -> None:
        _webhooks(request, uow.service.repo).delete(who, webhook_id)
        uow.commit()

    @router.post(
        "/{webhook_id}/rotate-secret",
        response_model=s.WebhookCreated,
        operation_id="rotateWebhookSecret",
        summary="Replace a webhook's signing secret (the new one is shown once)",
        description="Deliveries from now on are signed with the new secret only."
        + WEBHOOK_OWNERSHIP,
        responses=ONE_ERRORS,
        dependencies=[Depends(no_idempotency_key)],
    )
    def rotate_secret(
        webhook_id: str, who: CallerDep, uow: WriteUnit, request: Request
    ) -> s.WebhookCreated:
        rotated = _webhooks(request, uow.service.repo).rotate_secret(who, webhook_id)
        uow.commit()
        return rotated

    @router.get(
        "/{webhook_id}/deliveries",
        response_model=s.DeliveryPage,
        operation_id="listWebhookDeliveries",
        summary="The delivery log of a webhook: status, attempts, last error, next attempt",
        description="Oldest first, paginated; `status` narrows it." + WEBHOOK_OWNERSHIP,
        responses={**LIST_ERRORS, **ONE_ERRORS},
    )
    def list_deliveries(
        webhook_id: str,
        query: Annotated[s.DeliveryFilters, Query()],
        who: CallerDep,
        service: ReadService,
        request: Request,
    ) -> s.DeliveryPage:
        return _webhooks(request, service.repo).deliveries(who, webhook_id, query)

    @router.post(
        "/{webhook_id}/deliveries/{delivery_id}/redeliver",
        response_model=s.DeliveryRead,
        status_code=status.HTTP_202_ACCEPTED,
        operation_id="redeliverWebhookDelivery",
        summary="Send a delivery again now",
        description="Whatever its state (delivered, failed or pending), the delivery is due "
        "at once; the receiver sees the same `webhook-id` as before. A failed delivery gets "
        "one more attempt." + WEBHOOK_OWNERSHIP,
        responses=ONE_ERRORS,
    )
    def redeliver(
        webhook_id: str, delivery_id: str, who: CallerDep, uow: WriteUnit, request: Request
    ) -> s.DeliveryRead:
        delivery = _webhooks(request, uow.service.repo).redeliver(who, webhook_id, delivery_id)
        uow.commit()
        request.app.state.delivery_worker.wake()
        return delivery

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

    @router.post("/events", response_model=s.InternalEventsAccepted)
    def accept_events(
        body: s.InternalEventBatch, uow: WriteUnit, request: Request
    ) -> s.InternalEventsAccepted:
        """Events matching computed: stored in the outbox once each (by id)."""
        accepted = _webhooks(request, uow.service.repo).accept_events(body)
        uow.commit()
        if accepted.inserted:
            request.app.state.delivery_worker.wake()
        return accepted

    @router.get("/events/subscriptions", response_model=s.EventSubscriptions)
    def event_subscriptions(
        service: ReadService,
        request: Request,
        cursor: Annotated[s.CursorName | None, Query()] = None,
    ) -> s.EventSubscriptions:
        """Which event types have subscribers, and where the named producer's cursor is."""
        return _webhooks(request, service.repo).subscriptions(cursor)

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
        "Importing the same body twice changes nothing the second time.\n\n"
        "Demands are upserted by `external_ref` among the caller's own demands only: an "
        "`external_ref` that another consumer uses creates the caller's own demand and leaves "
        "the other one alone. An import spends `RATE_LIMIT_IMPORT_COST` (20) requests' worth "
        "of the key's rate limit.",
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
        description="Suppliers, equipment and solutions are shared: every key sees their "
        "changes. A key without the `admin` scope sees the changes of its own consumer's "
        "demands only (deletes included), so the versions in a page may have gaps; an admin key "
        "sees every change.\n\n"
        "The headers `X-Next-After` and `X-Current-Version` repeat the body's `next_after` and "
        "`current_version`, so that a reader can ask for the next page while it still parses "
        "this one.",
        responses={
            200: {
                "headers": {
                    NEXT_AFTER_HEADER: {
                        "description": "The body's `next_after`.",
                        "schema": {"type": "integer"},
                    },
                    CURRENT_VERSION_HEADER: {
                        "description": "The body's `current_version`.",
                        "schema": {"type": "integer"},
                    },
                }
            },
            **problem_responses(422, 500),
        },
    )
    def list_changes(
        query: Annotated[s.ChangeFilters, Query()], service: ReadService, response: Response
    ) -> Any:
        page = service.changes(query.after, query.limit)
        response.headers[NEXT_AFTER_HEADER] = str(page.next_after)
        response.headers[CURRENT_VERSION_HEADER] = str(page.current_version)
        return page

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
