"""Loading the demo catalog (built from the platforms the seed document names)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from services.catalog import schemas as s
from services.catalog.models import Equipment, Solution, Supplier
from services.catalog.service import CatalogService


@dataclass
class DemoSummary:
    version: int
    platforms: int
    manufacturers: int
    demands: int
    equipment: int
    solutions: int


def demo_catalog() -> dict[str, Any]:
    path = resources.files("services.catalog") / "demo" / "demo_catalog.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def load_demo(service: CatalogService) -> DemoSummary:
    """Upsert the demo catalog by external_ref: running it twice changes nothing."""
    data = demo_catalog()
    report = service.import_catalog(
        s.ImportRequest(
            platforms=data["platforms"],
            manufacturers=data["manufacturers"],
            demands=data["demands"],
        )
    )
    if report.rejected:
        raise ValueError(f"demo data rejected: {report.rejected[0].model_dump()}")
    repo = service.repo
    version = report.version
    for item in data.get("equipment", []):
        owner = repo.get_by_external_ref(
            Supplier, item["supplier"]["external_ref"], item["supplier"]["kind"]
        )
        assert owner is not None, item["external_ref"]
        fields = {k: v for k, v in item.items() if k != "supplier"}
        version = _upsert(service, "equipment", Equipment, fields, {"supplier_id": owner.id})
    for item in data.get("solutions", []):
        owner = repo.get_by_external_ref(Supplier, item["platform_external_ref"], "platform")
        assert owner is not None, item["external_ref"]
        fields = {k: v for k, v in item.items() if k != "platform_external_ref"}
        version = _upsert(service, "solution", Solution, fields, {"platform_id": owner.id})
    version = max(version, service.current_version())
    return DemoSummary(
        version=version,
        platforms=len(data["platforms"]),
        manufacturers=len(data["manufacturers"]),
        demands=len(data["demands"]),
        equipment=len(data.get("equipment", [])),
        solutions=len(data.get("solutions", [])),
    )


def _upsert(
    service: CatalogService,
    resource: str,
    model: type[Equipment] | type[Solution],
    fields: dict[str, Any],
    parent: dict[str, str],
) -> int:
    create_schema, update_schema = {
        "equipment": (s.EquipmentCreate, s.EquipmentUpdate),
        "solution": (s.SolutionCreate, s.SolutionUpdate),
    }[resource]
    existing = service.repo.get_by_external_ref(model, fields["external_ref"])
    if existing is None:
        _, version, _ = service.create(resource, create_schema(**fields, **parent))  # type: ignore[arg-type]
    else:
        _, version, _ = service.update(resource, existing.id, update_schema(**fields))  # type: ignore[arg-type]
    return version
