"""Import throughput of the catalog: suppliers per second on SQLite and PostgreSQL.

Paths measured, each into a fresh database built with the real Alembic migrations:

- ``ours``      ``CatalogService.import_catalog`` in batches of 10,000 items (the API's
                per-request maximum), one write transaction committed per batch, exactly as
                ``POST /v1/import`` does it: request parsing, pydantic validation, chain
                resolution, change-log writes.
- ``ours again`` the same batches imported a second time into the same database: the
                idempotent path, which must find every item unchanged and write nothing.
- ``http``      the same batches as ``POST /v1/import`` bodies through the catalog app
                (``TestClient``, lifespan included); bodies are serialised before the clock runs.
- ``peer``      a plain SQLAlchemy Core ``insert(Supplier)`` executemany of the same rows,
                already validated and resolved, one transaction per batch, no change log: the
                floor cost of writing the rows. ``ratio`` is a path's items/s over the peer's.

Run from the repository root::

    python bench/import.py                      # 10k and 100k, SQLite and PostgreSQL
    python bench/import.py --quick              # 10k only
    python bench/import.py --databases sqlite --sizes 10000 --paths ours,peer
    python bench/import.py --budget 600 --http-max 100000   # no early stops, ~8 minutes
    python bench/import.py --quick --with-webhook --paths ours   # with the webhook outbox

Each path stops after the batch that passes ``--budget`` seconds (default 60) and reports the
items it did, so that the default run stays near 5 minutes on a 2-core machine.

PostgreSQL: ``BENCH_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``)
must let us ``CREATE DATABASE``; each run creates its own database and drops it afterwards.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import secrets
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from services.catalog import migrate
from services.catalog import schemas as s
from services.catalog.db import Database
from services.catalog.models import ChangeLogEntry, Supplier
from services.catalog.repository import CatalogRepository
from services.catalog.service import CatalogService
from services.catalog.webhooks import Caller, WebhookService
from services.shared.taxonomy import Taxonomy, load_taxonomy

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BATCH = 10_000  # POST /v1/import takes at most this many items
GOAL = 5_000  # items/s, from the issue
SEED = 20_260_101
PLATFORM_SHARE = 0.4
PATHS = ("ours", "ours again", "http", "peer")

Item = dict[str, Any]


# ---------------------------------------------------------------- synthetic suppliers

DISTRICTS = (
    "松山湖",
    "滨海湾新区",
    "东城街道",
    "南城街道",
    "莞城街道",
    "长安镇",
    "虎门镇",
    "厚街镇",
    "大朗镇",
    "大岭山镇",
    "寮步镇",
    "塘厦镇",
    "清溪镇",
    "凤岗镇",
    "常平镇",
    "黄江镇",
    "水乡功能区",
)
ORG_PREFIXES = ("东莞", "广东", "粤港澳", "华南", "莞深", "湾区", "松湖", "南方")
ORG_CORES = (
    "华创",
    "智研",
    "精工",
    "新材",
    "恒达",
    "科瑞",
    "联芯",
    "汇能",
    "博远",
    "力拓",
    "中科",
    "鼎盛",
    "启明",
    "天工",
    "凯越",
    "宏图",
)
PLATFORM_ORG_SUFFIXES = ("研究院", "实验室", "技术研究院", "创新中心", "产业技术研究院")
MANUFACTURER_ORG_SUFFIXES = ("科技有限公司", "精密制造有限公司", "实业有限公司", "电子有限公司")
PLATFORM_NAME_SUFFIXES = (
    "中试平台",
    "中试验证平台",
    "概念验证中心",
    "中试基地",
    "公共技术服务平台",
)
MANUFACTURER_NAME_SUFFIXES = ("中试代工厂", "试产线", "小批量试产基地", "中试车间")
CAPABILITIES = (
    "工艺验证",
    "样品试制",
    "小批量试产",
    "可靠性测试",
    "失效分析",
    "材料表征",
    "配方开发",
    "结构设计",
    "模具开发",
    "精密加工",
    "表面处理",
    "电性能测试",
    "环境试验",
    "安全测试",
    "工艺放大",
    "质量检测",
    "认证辅导",
    "数字化仿真",
)
EQUIPMENT = (
    "扫描电子显微镜",
    "X射线衍射仪",
    "高低温试验箱",
    "盐雾试验箱",
    "三坐标测量机",
    "五轴加工中心",
    "激光焊接机",
    "SMT贴片线",
    "回流焊炉",
    "真空镀膜机",
    "注塑机",
    "3D打印机",
    "干法电极辊压机",
    "叠片机",
    "化成分容设备",
    "喷雾干燥塔",
    "冻干机",
    "发酵罐",
    "洁净车间",
    "万能材料试验机",
    "气相色谱仪",
    "液相色谱仪",
)
CERTIFICATIONS = (
    "CNAS",
    "CMA",
    "ISO 9001",
    "ISO 14001",
    "ISO 13485",
    "IATF 16949",
    "GMP",
    "ISO 45001",
)
SENTENCES = (
    "面向{chain}领域的中小企业，提供从实验室成果到量产之间的工艺放大与验证服务。",
    "平台拥有{equipment}等关键设备，可承接{tag}相关的{capability}需求。",
    "团队由多名博士和资深工程师组成，具备丰富的{tag}项目经验。",
    "已累计服务企业超过{number}家，帮助客户缩短研发周期、降低试错成本。",
    "支持{stage}阶段的样品制作与数据采集，出具具有公信力的检测报告。",
    "与高校及科研院所共建联合实验室，聚焦{chain}关键共性技术攻关。",
    "可提供{capability}、{capability2}等一站式服务，响应周期短。",
    "生产线符合相关质量体系要求，能够保障小批量产品的一致性与可追溯性。",
    "欢迎有{tag}中试需求的企业预约参观、洽谈合作，支持使用中试服务券。",
    "位于{district}，交通便利，周边配套完善，便于企业就近开展中试。",
)
UNRESOLVED_CHAIN_LABELS = ("低空经济", "数字创意", "现代农业", "海洋经济")


def _chain_label(rng: random.Random, chain: Any) -> str:
    """How outside platforms write a chain: mostly canonical, sometimes an alias or English."""
    roll = rng.random()
    if roll < 0.7 or not chain.aliases:
        return str(chain.name)
    if roll < 0.9:
        return str(rng.choice(chain.aliases[:4]))
    return str(chain.name_en)


def _description(rng: random.Random, fill: dict[str, Any]) -> str:
    target = rng.randint(80, 300)
    text = ""
    while len(text) < target:
        sentence = rng.choice(SENTENCES).format(
            capability2=rng.choice(CAPABILITIES),
            number=rng.randint(20, 800),
            **fill,
        )
        text += sentence
    return text[:300] if len(text) > 300 else text


def generate_suppliers(count: int, taxonomy: Taxonomy, seed: int = SEED) -> list[tuple[str, Item]]:
    """``count`` suppliers as ``(list name, item)``, deterministic for a seed and count."""
    rng = random.Random(seed)
    chains = taxonomy.chains
    out: list[tuple[str, Item]] = []
    for n in range(count):
        is_platform = rng.random() < PLATFORM_SHARE
        picked = rng.sample(chains, rng.choice((1, 1, 2, 2, 3)))
        subfields = [t for c in picked for t in c.subfields]
        tags = rng.sample(subfields, min(len(subfields), rng.randint(2, 6)))
        capabilities = rng.sample(CAPABILITIES, rng.randint(2, 5))
        equipment = rng.sample(EQUIPMENT, rng.randint(1, 6))
        stages = sorted(rng.sample(s.STAGES, rng.randint(1, 3)), key=s.STAGES.index)
        district = rng.choice(DISTRICTS)
        core = rng.choice(ORG_PREFIXES) + rng.choice(ORG_CORES)
        org_suffix = PLATFORM_ORG_SUFFIXES if is_platform else MANUFACTURER_ORG_SUFFIXES
        name_suffix = PLATFORM_NAME_SUFFIXES if is_platform else MANUFACTURER_NAME_SUFFIXES
        labels = [_chain_label(rng, c) for c in picked]
        if rng.random() < 0.02:  # now and then a label that is not a chain: kept as a tag
            labels.append(rng.choice(UNRESOLVED_CHAIN_LABELS))
        fill = {
            "chain": picked[0].name,
            "tag": tags[0],
            "equipment": equipment[0],
            "capability": capabilities[0],
            "stage": stages[0],
            "district": district,
        }
        item: Item = {
            "external_ref": f"bench-{'p' if is_platform else 'm'}-{n:07d}",
            "name": f"{district}{tags[0]}{rng.choice(name_suffix)}",
            "organization": f"{core}{rng.choice(org_suffix)}",
            "district": district,
            "description": _description(rng, fill),
            "industry_chains": labels,
            "tags": tags,
            "capabilities": capabilities,
            "equipment": equipment,
            "certifications": rng.sample(CERTIFICATIONS, rng.randint(0, 3)),
            "stages": stages,
            "accepts_vouchers": rng.random() < 0.6,
            "level": rng.choice((None, None, "市级", "市级", "省级", "国家级")),
        }
        out.append(("platforms" if is_platform else "manufacturers", item))
    return out


def import_bodies(suppliers: Sequence[tuple[str, Item]]) -> list[dict[str, list[Item]]]:
    """Request bodies of at most BATCH items, platforms and manufacturers mixed."""
    bodies = []
    for start in range(0, len(suppliers), BATCH):
        body: dict[str, list[Item]] = {"platforms": [], "manufacturers": []}
        for list_name, item in suppliers[start : start + BATCH]:
            body[list_name].append(item)
        bodies.append(body)
    return bodies


def peer_rows(bodies: Sequence[dict[str, list[Item]]], taxonomy: Taxonomy) -> list[list[Item]]:
    """The rows our import writes, validated and resolved ahead of time (not timed)."""
    now = datetime.now(UTC)
    service = CatalogService(None, taxonomy)  # type: ignore[arg-type]  # resolve_chains only
    batches = []
    version = 0
    for body in bodies:
        rows = []
        for list_name, kind, prefix in (
            ("platforms", "platform", "plt"),
            ("manufacturers", "manufacturer", "mfr"),
        ):
            for raw in body[list_name]:
                values = s.SupplierCreate.model_validate(raw).model_dump()
                values["industry_chains"], values["tags"], _ = service.resolve_chains(
                    values["industry_chains"], values["tags"]
                )
                version += 1
                rows.append(
                    {
                        **values,
                        "id": f"{prefix}_{secrets.token_hex(8)}",
                        "kind": kind,
                        "version": version,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        batches.append(rows)
    return batches


# ---------------------------------------------------------------- databases


def _psycopg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# ``--with-webhook``: each fresh database gets a webhook subscribed to catalog.changed, so every
# import batch also writes its event and delivery (the outbox's cost on the write path).
WITH_WEBHOOK = False


def _subscribe(url: str) -> None:
    db = Database(url)
    with db.transaction() as session:
        WebhookService(CatalogRepository(session), lambda: datetime.now(UTC), _bench_id).create(
            Caller("bench", True),
            s.WebhookCreate(url="https://hooks.example.com/bench", event_types=["catalog.changed"]),
        )
    db.dispose()


def _bench_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def _migrate(url: str) -> None:
    migrate.upgrade(url)
    if WITH_WEBHOOK:
        _subscribe(url)


@contextmanager
def fresh_database(backend: str, workdir: Path) -> Iterator[str]:
    """A new database at the latest migration; removed when the block ends."""
    if backend == "sqlite":
        path = workdir / f"bench_{uuid.uuid4().hex[:10]}.db"
        url = f"sqlite:///{path}"
        _migrate(url)
        try:
            yield url
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    admin_url = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    name = f"pilotmatch_bench_{uuid.uuid4().hex[:10]}"
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(_psycopg_dsn(admin_url), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        try:
            _migrate(url)
            yield url
        finally:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------- the paths

Body = dict[str, list[Item]]


@dataclass
class Result:
    database: str
    size: int
    path: str
    items: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("inf")


def _items(body: Body) -> int:
    return len(body["platforms"]) + len(body["manufacturers"])


def timed_batches(step: Callable[[Any], Any], batches: Sequence[Any], budget: float) -> list[Any]:
    """``step`` over ``batches`` under the clock, stopping early once ``budget`` seconds have
    passed; returns the step results and, last, the seconds taken."""
    gc.collect()
    out: list[Any] = []
    start = time.perf_counter()
    for batch in batches:
        out.append(step(batch))
        if time.perf_counter() - start > budget:
            break
    out.append(time.perf_counter() - start)
    return out


def _budget_note(done: int, total: int, budget: float) -> str:
    if done == total:
        return ""
    return f"stopped at the {budget:.0f} s budget after {done:,} of {total:,}"


def _import_once(db: Database, body: Body) -> s.ImportReport:
    """One request's worth of work, as the route does it."""
    with db.session(write=True) as session:
        service = CatalogService(
            CatalogRepository(session), load_taxonomy(), max_import_items=BATCH
        )
        report = service.import_catalog(s.ImportRequest.model_validate(body))
        session.commit()
    return report


def _check_report(report: s.ImportReport, body: Body, expect: str) -> None:
    sent = {name: len(body[name]) for name in ("platforms", "manufacturers")}
    got = {name: getattr(getattr(report, expect), name) for name in sent}
    if report.rejected or got != sent:
        raise SystemExit(
            f"import did not report every item {expect}: {got} of {sent}, "
            f"{len(report.rejected)} rejected (first: {report.rejected[:1]})"
        )


def _count(db: Database) -> tuple[int, int]:
    with db.session() as session:
        suppliers = session.execute(select(func.count()).select_from(Supplier)).scalar_one()
        changes = session.execute(select(func.count()).select_from(ChangeLogEntry)).scalar_one()
    return int(suppliers), int(changes)


def run_ours(
    url: str, bodies: Sequence[Body], budget: float, again: bool
) -> list[tuple[int, float]]:
    """(items, seconds) of the first import and, if ``again``, of importing the same batches
    once more (every item must come back unchanged, nothing written)."""
    db = Database(url)
    try:
        measured: list[tuple[int, float]] = []
        for expect in ("created", "unchanged") if again else ("created",):
            *reports, seconds = timed_batches(lambda body: _import_once(db, body), bodies, budget)
            for report, body in zip(reports, bodies, strict=False):
                _check_report(report, body, expect)
            if expect == "created":
                bodies = bodies[: len(reports)]  # the again run repeats what was imported
            measured.append((sum(_items(b) for b in bodies[: len(reports)]), seconds))
        imported = measured[0][0]
        if _count(db) != (imported, imported):
            raise SystemExit(f"expected {imported} suppliers and change-log entries: {_count(db)}")
        return measured
    finally:
        db.dispose()


def run_http(url: str, bodies: Sequence[Body], budget: float) -> tuple[int, float]:
    with warnings.catch_warnings():
        # starlette's TestClient warns about its httpx dependency; not ours to fix here
        warnings.filterwarnings("ignore", message="Using `httpx`")
        from fastapi.testclient import TestClient

    from services.catalog.app import create_app
    from services.catalog.settings import CatalogSettings

    payloads = [orjson.dumps(body) for body in bodies]  # the client's cost, not the server's
    app = create_app(CatalogSettings(database_url=url, environment="test"))
    headers = {"content-type": "application/json"}
    with TestClient(app) as client:

        def post(payload: bytes) -> Any:
            return client.post("/v1/import", content=payload, headers=headers)

        *responses, seconds = timed_batches(post, payloads, budget)
    for response, body in zip(responses, bodies, strict=False):
        if response.status_code != 200:
            raise SystemExit(f"POST /v1/import: {response.status_code} {response.text[:300]}")
        _check_report(s.ImportReport.model_validate(response.json()), body, "created")
    return sum(_items(b) for b in bodies[: len(responses)]), seconds


def run_peer(url: str, batches: Sequence[list[Item]], budget: float) -> tuple[int, float]:
    db = Database(url)
    try:

        def write(rows: list[Item]) -> None:
            with db.engine.begin() as conn:
                conn.execute(insert(Supplier), rows)

        *done, seconds = timed_batches(write, batches, budget)
        items = sum(len(rows) for rows in batches[: len(done)])
        if _count(db)[0] != items:
            raise SystemExit(f"peer: expected {items} suppliers, got {_count(db)[0]}")
        return items, seconds
    finally:
        db.dispose()


def warm_up(taxonomy: Taxonomy, workdir: Path) -> None:
    """Import caches (pydantic, SQLAlchemy, taxonomy) are filled before any clock runs."""
    bodies = import_bodies(generate_suppliers(200, taxonomy, seed=SEED + 1))
    with fresh_database("sqlite", workdir) as url:
        run_ours(url, bodies, budget=60, again=True)
    with fresh_database("sqlite", workdir) as url:
        run_peer(url, peer_rows(bodies, taxonomy), budget=60)


def postgres_server_note() -> str:
    admin_url = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    with psycopg.connect(_psycopg_dsn(admin_url), connect_timeout=5) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        autovacuum = conn.execute("SHOW autovacuum").fetchone()
    assert version is not None and autovacuum is not None
    return f"PostgreSQL {version[0]}, autovacuum={autovacuum[0]}"


# ---------------------------------------------------------------- the report


def print_table(results: Sequence[Result]) -> None:
    header = (
        f"{'database':<11}{'size':>8}  {'path':<11}{'items':>9}{'seconds':>9}"
        f"{'items/s':>9}{'vs peer':>9}  {'goal':<6}note"
    )
    print(header)
    print("-" * (len(header) + 30))
    peers = {(r.database, r.size): r.rate for r in results if r.path == "peer"}
    for r in results:
        peer = peers.get((r.database, r.size))
        ratio = f"{r.rate / peer:.2f}x" if peer else "-"
        goal = "" if r.path == "peer" else ("ok" if r.rate >= GOAL else "BELOW")
        print(
            f"{r.database:<11}{r.size:>8}  {r.path:<11}{r.items:>9}{r.seconds:>9.2f}"
            f"{r.rate:>9,.0f}{ratio:>9}  {goal:<6}{r.note}"
        )


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated item counts")
    parser.add_argument("--databases", default="sqlite,postgresql", help="sqlite,postgresql")
    parser.add_argument("--paths", default=",".join(PATHS), help=",".join(PATHS))
    parser.add_argument("--quick", action="store_true", help="only 10,000 items")
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds per measured path; a path stops after the batch that passes it and "
        "reports the items it did (default 60)",
    )
    parser.add_argument(
        "--http-max",
        type=int,
        default=10_000,
        help="largest size also run through HTTP (default 10000, to keep the run near 5 min)",
    )
    parser.add_argument(
        "--with-webhook",
        action="store_true",
        help="subscribe a webhook to catalog.changed in each database (outbox cost)",
    )
    args = parser.parse_args(argv)
    args.sizes = [10_000] if args.quick else [int(x) for x in args.sizes.split(",") if x]
    args.databases = [x.strip() for x in args.databases.split(",") if x.strip()]
    args.paths = [x.strip() for x in args.paths.split(",") if x.strip()]
    for name in args.databases:
        if name not in ("sqlite", "postgresql"):
            parser.error(f"unknown database {name!r}")
    for name in args.paths:
        if name not in PATHS:
            parser.error(f"unknown path {name!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    global WITH_WEBHOOK
    args = _parse_args(argv)
    WITH_WEBHOOK = args.with_webhook
    taxonomy = load_taxonomy()
    results: list[Result] = []
    budget = args.budget

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def add(database: str, size: int, path: str, measured: tuple[int, float]) -> None:
        items, seconds = measured
        results.append(
            Result(database, size, path, items, seconds, _budget_note(items, size, budget))
        )

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pilotmatch-bench-") as tmp:
        workdir = Path(tmp)
        warm_up(taxonomy, workdir)
        for size in args.sizes:
            bodies = import_bodies(generate_suppliers(size, taxonomy))
            rows = peer_rows(bodies, taxonomy) if "peer" in args.paths else []
            for database in args.databases:
                if "peer" in args.paths:
                    log(f"  {database} {size:,} peer ...")
                    with fresh_database(database, workdir) as url:
                        add(database, size, "peer", run_peer(url, rows, budget))
                if "ours" in args.paths or "ours again" in args.paths:
                    log(f"  {database} {size:,} ours, then ours again ...")
                    with fresh_database(database, workdir) as url:
                        measured = run_ours(url, bodies, budget, "ours again" in args.paths)
                    if "ours" in args.paths:
                        add(database, size, "ours", measured[0])
                    if "ours again" in args.paths:
                        add(database, size, "ours again", measured[-1])
                if "http" in args.paths and size <= args.http_max:
                    log(f"  {database} {size:,} http ...")
                    with fresh_database(database, workdir) as url:
                        add(database, size, "http", run_http(url, bodies, budget))
    total = time.perf_counter() - started

    print(
        f"\nSupplier import: batches of {BATCH:,} items, one committed transaction each; "
        f"goal {GOAL:,} items/s; 'ours again' re-imports the same items (all unchanged)"
    )
    print_table(results)
    skipped = [n for n in args.sizes if n > args.http_max] if "http" in args.paths else []
    if skipped:
        print(f"http not run for sizes {skipped} (--http-max {args.http_max:,})")
    if any(r.note for r in results):
        print("a stopped path reports the items it did; on a growing table the full run is slower")
    if "postgresql" in args.databases:
        print(postgres_server_note())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        f"peak RSS {peak:,.0f} MiB; wall time {total:,.0f} s (data and databases included); "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after on "
        f"{os.cpu_count()} CPUs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
