"""The `pilotmatch` command: run the services, migrate, load data."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncGenerator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from services.shared.settings import SettingsError

app = typer.Typer(
    help="pilotmatch: match pilot-test demands with platforms and contract manufacturers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)
out = Console()

ADMIN_KEY_FILE = Path("var/admin.key")


class ServiceName(StrEnum):
    catalog = "catalog"
    matching = "matching"
    gateway = "gateway"


def _fail(message: str, code: int = 2) -> typer.Exit:
    # Plain write, not rich: an error must stay one line however narrow the terminal.
    sys.stderr.write(f"pilotmatch: {message}\n")
    return typer.Exit(code)


def _catalog_settings() -> Any:
    from services.catalog.settings import CatalogSettings
    from services.shared.settings import load_settings

    try:
        return load_settings(CatalogSettings)
    except SettingsError as exc:
        raise _fail(str(exc)) from None


@app.command()
def serve(
    service: Annotated[ServiceName, typer.Argument(help="Which service to run.")],
    port: Annotated[
        int | None, typer.Option(help="Port (default: $PORT or the service's).")
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Interface (default: $HOST or 127.0.0.1).")
    ] = None,
) -> None:
    """Start one service (what a container runs)."""
    import uvicorn

    from services.shared.logging import configure_logging
    from services.shared.settings import load_settings

    overrides: dict[str, Any] = {}
    if port is not None:
        overrides["port"] = port
    if host is not None:
        overrides["host"] = host
    try:
        if service is ServiceName.catalog:
            from services.catalog.app import create_app as create_catalog
            from services.catalog.settings import CatalogSettings

            settings: Any = load_settings(CatalogSettings, **overrides)
            application = create_catalog(settings)
        elif service is ServiceName.matching:
            from services.matching.app import create_app as create_matching
            from services.matching.settings import MatchingSettings

            settings = load_settings(MatchingSettings, **overrides)
            application = create_matching(settings)
        else:
            from services.gateway.app import create_app as create_gateway
            from services.gateway.settings import GatewaySettings

            settings = load_settings(GatewaySettings, **overrides)
            application = create_gateway(settings)
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    configure_logging(service.value, settings.log_level, settings.log_format)
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )


@app.command()
def migrate() -> None:
    """Apply the Alembic migrations in migrations/ to $DATABASE_URL."""
    from services.catalog import migrate as migrations

    settings = _catalog_settings()
    try:
        migrations.upgrade(settings.database_url)
    except Exception as exc:
        raise _fail(f"migration failed: {type(exc).__name__}: {exc}".splitlines()[0], 1) from None
    console.print(f"database at revision {migrations.head_revision()}", highlight=False)


@app.command()
def backup(
    dest: Annotated[Path, typer.Argument(help="The backup file to write (must not exist).")],
) -> None:
    """Copy the SQLite database to DEST, safely while the services run (PostgreSQL: pg_dump)."""
    import sqlite3

    from services.catalog.backup import BackupError, backup_sqlite

    settings = _catalog_settings()
    try:
        result = backup_sqlite(settings.database_url, dest)
    except (BackupError, OSError, sqlite3.Error) as exc:
        raise _fail(f"backup failed: {exc}", 1) from None
    console.print(
        f"backed up {result.source} to {result.destination} ({result.size_bytes} bytes)",
        highlight=False,
    )


def _service_session(settings: Any) -> tuple[Any, Any]:
    from datetime import timedelta

    from services.catalog.db import Database
    from services.catalog.repository import CatalogRepository
    from services.catalog.service import CatalogService
    from services.shared.taxonomy import load_taxonomy

    db = Database(settings.database_url)
    session = db.session(write=True)
    service = CatalogService(
        CatalogRepository(session),
        load_taxonomy(),
        max_import_items=10**9,
        demand_lifetime=timedelta(days=settings.demand_lifetime_days),
    )
    return db, (session, service)


@app.command("load-demo")
def load_demo() -> None:
    """Load the demo catalog (the seed's platforms, ~20 manufacturers, 10 demands)."""
    from services.catalog.demo_loader import load_demo as load

    settings = _catalog_settings()
    _require_schema(settings.database_url)
    db, (session, service) = _service_session(settings)
    try:
        summary = load(service)
        session.commit()
    finally:
        session.close()
        db.dispose()
    console.print(
        f"demo catalog loaded: {summary.platforms} platforms, {summary.manufacturers} "
        f"manufacturers, {summary.demands} demands, {summary.equipment} equipment, "
        f"{summary.solutions} solutions (catalog version {summary.version})",
        highlight=False,
    )


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="JSON file shaped like the POST /v1/import body.")],
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = 2_000,
) -> None:
    """Import platforms, manufacturers and demands from a file, upserting by external_ref."""
    from services.catalog import schemas as s

    settings = _catalog_settings()
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(f"cannot read {file}: {exc}") from None
    if not isinstance(body, dict) or not set(body) <= {"platforms", "manufacturers", "demands"}:
        raise _fail(f"{file} must be an object with platforms, manufacturers and/or demands")
    _require_schema(settings.database_url)
    db, (session, service) = _service_session(settings)
    totals: dict[str, dict[str, int]] = {}
    rejected: list[Any] = []
    total = sum(len(body.get(name) or []) for name in ("platforms", "manufacturers", "demands"))
    version = 0
    try:
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("importing", total=total)
            for name in ("platforms", "manufacturers", "demands"):
                items = body.get(name) or []
                for start in range(0, len(items), batch_size):
                    chunk = items[start : start + batch_size]
                    report = service.import_catalog(s.ImportRequest(**{name: chunk}))
                    session.commit()
                    version = report.version
                    counts = totals.setdefault(
                        name, {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0}
                    )
                    for key in ("created", "updated", "unchanged"):
                        counts[key] += getattr(getattr(report, key), name)
                    for item in report.rejected:
                        item.index += start
                        rejected.append(item)
                    counts["rejected"] += len(report.rejected)
                    progress.advance(task, len(chunk))
    finally:
        session.close()
        db.dispose()
    table = Table(title=f"import of {file} (catalog version {version})")
    for column in ("list", "created", "updated", "unchanged", "rejected"):
        table.add_column(column)
    for name, counts in totals.items():
        table.add_row(
            name, *(str(counts[k]) for k in ("created", "updated", "unchanged", "rejected"))
        )
    out.print(table)
    for item in rejected[:20]:
        fields = ", ".join(f"{e.field}: {e.message}" for e in item.errors)
        out.print(
            f"rejected {item.list}[{item.index}] ({item.external_ref}): {fields}",
            markup=False,
            highlight=False,
        )
    if len(rejected) > 20:
        out.print(f"… and {len(rejected) - 20} more rejected items")
    if rejected:
        raise typer.Exit(1)


def _require_schema(database_url: str) -> None:
    from services.catalog import migrate as migrations
    from services.catalog.db import create_db_engine

    engine = create_db_engine(database_url)
    try:
        current = migrations.current_revision(engine)
    except Exception as exc:
        raise _fail(f"cannot reach the database: {type(exc).__name__}") from None
    finally:
        engine.dispose()
    if current != migrations.head_revision():
        raise _fail("the database schema is not up to date: run `pilotmatch migrate` first")


@app.command()
def up(
    gateway_port: Annotated[int, typer.Option(help="Gateway port.")] = 8000,
    catalog_port: Annotated[int, typer.Option(help="Catalog port.")] = 8001,
    matching_port: Annotated[int, typer.Option(help="Matching port.")] = 8002,
    host: Annotated[str, typer.Option(help="Interface the gateway listens on.")] = "127.0.0.1",
    demo: Annotated[bool, typer.Option(help="Migrate and load the demo catalog first.")] = False,
) -> None:
    """Start gateway, catalog and matching as separate processes; Ctrl-C stops them all."""
    settings = _catalog_settings()
    if demo:
        migrate()
        load_demo()
    env = dict(os.environ)
    env["DATABASE_URL"] = settings.database_url
    env.setdefault("CATALOG_URL", f"http://127.0.0.1:{catalog_port}")
    env.setdefault("MATCHING_URL", f"http://127.0.0.1:{matching_port}")
    if not env.get("PILOTMATCH_ADMIN_KEY"):
        env["PILOTMATCH_ADMIN_KEY"] = _development_admin_key()
    plan = [
        ("catalog", catalog_port, "127.0.0.1"),
        ("matching", matching_port, "127.0.0.1"),
        ("gateway", gateway_port, host),
    ]
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    for name, port, bind in plan:
        command = [
            sys.executable,
            "-m",
            "services.cli",
            "serve",
            name,
            "--port",
            str(port),
            "--host",
            bind,
        ]
        children.append((name, subprocess.Popen(command, env=env)))
    console.print(
        f"pilotmatch is up: gateway http://{host}:{gateway_port} "
        f"(docs at /docs, spec at /openapi.json); Ctrl-C stops it",
        highlight=False,
    )
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for _, child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while any(child.poll() is None for _, child in children):
        for name, child in children:
            code = child.poll()
            if code is not None and not stopping:
                console.print(f"pilotmatch: {name} exited with {code}; stopping the others")
                exit_code = code or 1
                stop(signal.SIGTERM, None)
        time.sleep(0.2)
    raise typer.Exit(exit_code)


report_app = typer.Typer(help="Reports computed from the catalog database.", no_args_is_help=True)
app.add_typer(report_app, name="report")


class ReportFormat(StrEnum):
    json = "json"
    csv = "csv"


class _DatabaseChanges:
    """The catalog's change log read straight from the database, in the shape matching's
    index syncer reads it over HTTP: the report is built exactly as the service builds it."""

    def __init__(self, service: Any) -> None:
        self.service = service

    async def changes(self, after: int, limit: int = 1000) -> Any:
        from services.matching.catalog_client import CatalogChangePage

        page = self.service.changes(after, limit)
        return CatalogChangePage.model_validate(page.model_dump())

    async def pages(self, after: int, limit: int = 1000) -> AsyncGenerator[Any, None]:
        """As ``CatalogClient.pages``, one page after the other."""
        from services.matching.catalog_client import is_last_page

        while True:
            page = await self.changes(after, limit)
            yield page
            if is_last_page(page):
                return
            after = page.next_after


@report_app.command("coverage")
def report_coverage(
    format: Annotated[ReportFormat, typer.Option(help="json or csv.")] = ReportFormat.json,
    threshold: Annotated[
        float | None,
        typer.Option(min=0, max=10, help="Lowest score that serves a demand (default 1.1)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write to this file instead of standard output.")
    ] = None,
) -> None:
    """The coverage and gap report (as GET /v1/reports/coverage), from $DATABASE_URL."""
    import asyncio

    from services.matching.coverage import DEFAULT_THRESHOLD, CoverageReporter, report_csv
    from services.matching.index import IndexSyncer
    from services.matching.ranking import MatchIndex
    from services.shared.taxonomy import load_taxonomy

    settings = _catalog_settings()
    _require_schema(settings.database_url)
    taxonomy = load_taxonomy()
    db, (session, service) = _service_session(settings)
    try:
        syncer = IndexSyncer(
            _DatabaseChanges(service),  # type: ignore[arg-type]
            lambda docs: MatchIndex.build(docs, taxonomy),
        )
        asyncio.run(syncer.sync_once())
    finally:
        session.close()
        db.dispose()
    assert syncer.snapshot is not None
    report = CoverageReporter(taxonomy).report(
        syncer.snapshot, DEFAULT_THRESHOLD if threshold is None else threshold
    )
    text = (
        report_csv(report)
        if format is ReportFormat.csv
        else json.dumps(report, ensure_ascii=False, indent=2) + "\n"
    )
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc}", 1) from None
    console.print(
        f"coverage report written to {output} (catalog version {report['index_version']}, "
        f"{len(report['chains_without_platform'])} chains without platforms)",
        highlight=False,
    )


keys_app = typer.Typer(
    help="Manage API keys (stored hashed in the catalog database).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")


def _key_service(session: Any) -> Any:
    from services.catalog.keys import KeyService
    from services.catalog.repository import CatalogRepository
    from services.catalog.service import random_id, utcnow

    return KeyService(CatalogRepository(session), utcnow, random_id)


@keys_app.command("create")
def keys_create(
    label: Annotated[str, typer.Option(help="What the key is for.")],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated: catalog:read,catalog:write,match:read,admin")
    ],
    consumer: Annotated[str | None, typer.Option(help="Owner (default: the label).")] = None,
    expires_in_days: Annotated[int | None, typer.Option(min=1, help="Expire after N days.")] = None,
    rate_limit: Annotated[
        int | None, typer.Option(min=1, help="Requests per minute for this consumer.")
    ] = None,
) -> None:
    """Issue a key and print it once (on stdout, alone, so scripts can capture it)."""
    from datetime import timedelta

    from pydantic import ValidationError

    from services.catalog import schemas as s
    from services.catalog.service import utcnow

    settings = _catalog_settings()
    _require_schema(settings.database_url)
    try:
        request = s.ApiKeyCreate(
            label=label,
            scopes=[scope.strip() for scope in scopes.split(",") if scope.strip()],  # type: ignore[misc]
            consumer=consumer,
            expires_at=utcnow() + timedelta(days=expires_in_days) if expires_in_days else None,
            rate_limit_per_minute=rate_limit,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _fail(f"invalid {where}: {first['msg']} (scopes: {', '.join(s.SCOPES)})") from None
    db, (session, _service) = _service_session(settings)
    try:
        created = _key_service(session).create(request)
        session.commit()
    finally:
        session.close()
        db.dispose()
    console.print(
        f"created key {created.id} for {created.consumer} with scopes "
        f"{','.join(created.scopes)}; it is shown once:",
        highlight=False,
    )
    out.print(created.key, markup=False, highlight=False)


@keys_app.command("list")
def keys_list(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
) -> None:
    """List keys (never their secrets)."""
    from services.catalog import schemas as s

    settings = _catalog_settings()
    _require_schema(settings.database_url)
    db, (session, _service) = _service_session(settings)
    table = Table(title="API keys")
    table.add_column("id", no_wrap=True)
    for column in ("label", "consumer", "scopes", "created", "expires", "revoked"):
        table.add_column(column, overflow="fold")
    try:
        cursor = None
        while True:
            items, cursor = _key_service(session).list_keys(
                s.ApiKeyFilters(limit=100, cursor=cursor, include_revoked=include_revoked)
            )
            for key in items:
                table.add_row(
                    key.id,
                    key.label,
                    key.consumer,
                    ",".join(key.scopes),
                    key.created_at.isoformat(timespec="seconds"),
                    key.expires_at.isoformat(timespec="seconds") if key.expires_at else "-",
                    key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "-",
                )
            if cursor is None:
                break
    finally:
        session.close()
        db.dispose()
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from keys list).")],
) -> None:
    """Revoke a key; the gateway refuses it within seconds."""
    from services.shared.errors import NotFoundError

    settings = _catalog_settings()
    _require_schema(settings.database_url)
    db, (session, _service) = _service_session(settings)
    try:
        revoked = _key_service(session).revoke(key_id)
        session.commit()
    except NotFoundError as exc:
        raise _fail(exc.detail, 1) from None
    finally:
        session.close()
        db.dispose()
    console.print(f"revoked key {revoked.id} ({revoked.label})", highlight=False)


def _development_admin_key() -> str:
    """A key for local runs: reused from var/admin.key, or made and saved there once."""
    if ADMIN_KEY_FILE.is_file():
        return ADMIN_KEY_FILE.read_text().strip()
    key = "pm_" + secrets.token_urlsafe(32)
    ADMIN_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    ADMIN_KEY_FILE.write_text(key + "\n")
    ADMIN_KEY_FILE.chmod(0o600)
    console.print(
        f"PILOTMATCH_ADMIN_KEY was not set: generated one and saved it in {ADMIN_KEY_FILE}",
        highlight=False,
    )
    return key


def main() -> None:
    app()


if __name__ == "__main__":
    main()
