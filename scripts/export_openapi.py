"""Write the committed OpenAPI documents in openapi/ from the apps themselves.

    python scripts/export_openapi.py          # rewrite openapi/*.json
    python scripts/export_openapi.py --check  # exit 1 if the committed files are stale

openapi/pilotmatch.json is the merged document the gateway serves at /openapi.json;
catalog.json and matching.json are the services' own (internal) documents.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OPENAPI_DIR = Path(__file__).resolve().parent.parent / "openapi"


def build_documents() -> dict[str, dict[str, Any]]:
    from services.catalog.app import create_app as create_catalog
    from services.catalog.settings import CatalogSettings
    from services.gateway.app import create_app as create_gateway
    from services.gateway.app import public_openapi
    from services.gateway.settings import GatewaySettings
    from services.matching.app import create_app as create_matching
    from services.matching.settings import MatchingSettings

    catalog = create_catalog(CatalogSettings(environment="test")).openapi()
    matching = create_matching(MatchingSettings(environment="test")).openapi()
    gateway = create_gateway(GatewaySettings(environment="test", admin_key="x" * 32))
    merged = public_openapi(gateway, {"catalog": catalog, "matching": matching})
    return {"catalog.json": catalog, "matching.json": matching, "pilotmatch.json": merged}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if openapi/ is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, document in build_documents().items():
        path = OPENAPI_DIR / name
        text = render(document)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale: {', '.join(stale)}; run python scripts/export_openapi.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
