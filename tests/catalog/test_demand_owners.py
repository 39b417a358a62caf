"""Demand owners in the catalog's domain and database, without the gateway."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.catalog import schemas as s
from services.catalog.db import Database
from services.catalog.repository import CatalogRepository
from services.catalog.service import CatalogService
from services.shared.caller import INTERNAL, Caller
from services.shared.errors import ConflictError, NotFoundError
from services.shared.taxonomy import load_taxonomy
from tests.catalog.conftest import demand_body


def _row(owner: str | None, ref: str, n: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": f"dmd_{n:016x}",
        "owner_consumer_id": owner,
        "external_ref": ref,
        "title": "t",
        "description": "",
        "industry_chains": [],
        "tags": [],
        "needs_voucher": False,
        "required_certifications": [],
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "status": "open",
        "status_changed_at": now,
    }


@pytest.mark.parametrize(
    ("first", "second", "conflict"),
    [
        ("csm_a", "csm_b", False),  # two owners may use one external_ref
        ("csm_a", None, False),
        ("csm_a", "csm_a", True),
        (None, None, True),  # NULL owners are not "all different" here (partial index)
    ],
)
def test_the_database_keeps_external_ref_unique_per_owner(
    database_url: str, first: str | None, second: str | None, conflict: bool
) -> None:
    from services.catalog.models import Demand

    db = Database(database_url)
    try:
        with db.session(write=True) as session:
            repo = CatalogRepository(session)
            repo.bulk_insert(Demand, [_row(first, "D-1", 1)])
            if conflict:
                with pytest.raises(ConflictError):
                    repo.bulk_insert(Demand, [_row(second, "D-1", 2)])
            else:
                repo.bulk_insert(Demand, [_row(second, "D-1", 2)])
                assert repo.count(Demand) == 2
    finally:
        db.dispose()


def test_the_service_narrows_demands_to_the_callers_own(database_url: str) -> None:
    db = Database(database_url)
    taxonomy = load_taxonomy()
    try:
        with db.session(write=True) as session:

            def as_(caller: Caller) -> CatalogService:
                return CatalogService(CatalogRepository(session), taxonomy, caller=caller)

            alice, bob = Caller("csm_a"), Caller("csm_b")
            created, _, _ = as_(alice).create("demand", s.DemandCreate(**demand_body()))
            assert created.owner == "csm_a"  # type: ignore[attr-defined]
            internal, _, _ = as_(INTERNAL).create("demand", s.DemandCreate(**demand_body()))
            assert internal.owner is None  # type: ignore[attr-defined]
            with pytest.raises(NotFoundError):
                as_(bob).get("demand", created.id)
            with pytest.raises(NotFoundError):
                as_(alice).get("demand", internal.id)
            assert as_(Caller("csm_b", is_admin=True)).get("demand", created.id).id == created.id
            everything = s.DemandFilters()
            assert [d.id for d in as_(alice).list_page("demand", everything)[0]] == [created.id]
            assert as_(bob).list_page("demand", everything)[0] == []
            assert len(as_(INTERNAL).list_page("demand", everything)[0]) == 2
    finally:
        db.dispose()
