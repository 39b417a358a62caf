"""Concurrency and no-loss check: many clients write through the gateway, and nothing is lost.

Starts the three real services (``pilotmatch serve catalog|matching|gateway``) as processes on
free loopback ports against a fresh database, then lets ``--clients`` concurrent httpx clients
send ``--ops`` write requests through the gateway: create, update and delete platforms,
manufacturers and demands, some creates with an ``Idempotency-Key`` and deliberate repeats of the
same key (one after the other, or two at once). Every answer is recorded. Then it checks:

a. the catalog (listed through the API) equals the state built from the acknowledged writes,
   applied in the order of the versions they were answered with;
b. the change log has gapless versions, one entry per acknowledged write (a repeated key is one
   write), no entry that no write accounts for, and replaying it gives the catalog's state;
c. the matching index, once it has the catalog's last version, holds exactly the live suppliers
   and demands: its counts agree, every live one is found and no deleted one ever is.

A write whose outcome the client cannot know (no answer, a timeout, 500, 502 or 504) is
reconciled honestly: it is looked for in the change log by the unique value it wrote and
reported as applied or not applied, never counted as acknowledged. A refused write (4xx, or a
503 for an upstream the gateway could not reach) must have left no trace.

It prints operations attempted, acknowledged, found afterwards, unknown, errors by HTTP status,
throughput and latency, and exits 1 if anything disagrees or any request got a 5xx. Every run
stays on 127.0.0.1 and stops its processes at the end. ``tests/test_load.py`` and
``tests/test_faults.py`` use the same functions.

Run from the repository root::

    .venv/bin/python bench/load.py --clients 32 --ops 2000
    .venv/bin/python bench/load.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `services` importable
    sys.path.insert(0, str(ROOT))

SERVICES = ("catalog", "matching", "gateway")
RESOURCES = ("platform", "manufacturer", "demand")
COLLECTIONS = {
    "platform": "/v1/platforms",
    "manufacturer": "/v1/manufacturers",
    "demand": "/v1/demands",
}
SUPPLIERS = ("platform", "manufacturer")
# The field each update sets to a value of its own, so its change-log entry can be recognised.
MARKER_FIELD = {"platform": "name", "manufacturer": "name", "demand": "title"}
# Answers that leave the client not knowing whether the write happened.
UNKNOWN_STATUSES = frozenset({500, 502, 504})
# Refusals the load provokes on purpose: a target another client deleted first (404), a
# duplicate idempotent request while the first is still in flight (409).
EXPECTED_REFUSALS = frozenset({404, 409})

CHAINS = [
    "新一代电子信息",
    "高端装备制造",
    "新能源",
    "新材料",
    "生物医药及高端医疗器械",
    "食品饮料",
]
DISTRICTS = ["松山湖", "滨海湾新区", "水乡功能区", "银瓶合作创新区", "莞城"]
CERTIFICATIONS = ["CNAS", "CMA", "ISO 9001", "IATF 16949"]
STAGES = ["概念验证", "小试", "中试", "小批量试产"]


# --- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    """The three services as real processes on loopback, started and stopped one by one.

    Each keeps its port for its whole life, so a killed service restarts where the others
    expect it. Output goes to ``<workdir>/<service>.log`` (appended across restarts).
    """

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        *,
        env: dict[str, dict[str, str]] | None = None,
        upstreams: dict[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.admin_key = secrets.token_urlsafe(32)
        self.ports = {name: free_port() for name in SERVICES}
        self.extra_env = env or {}
        # Services found elsewhere (a test's fake upstream), by name: these are not started.
        self.elsewhere = upstreams or {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def url(self, service: str) -> str:
        if service in self.elsewhere:
            return self.elsewhere[service]
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def gateway_url(self) -> str:
        return self.url("gateway")

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.admin_key}

    def _env(self, service: str) -> dict[str, str]:
        inherited = ("DATABASE_URL", "PORT", "CATALOG_URL", "MATCHING_URL", "PILOTMATCH_ADMIN_KEY")
        env = {k: v for k, v in os.environ.items() if k not in inherited}
        env.update(
            ENVIRONMENT="test",
            LOG_FORMAT="text",
            LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),
            DATABASE_URL=self.database_url,
            CATALOG_URL=self.url("catalog"),
            MATCHING_URL=self.url("matching"),
            PILOTMATCH_ADMIN_KEY=self.admin_key,
        )
        env.update(self.extra_env.get(service, {}))
        return env

    def start(self, service: str, timeout: float = 60.0) -> None:
        """Start ``service`` on its port and wait until its ``/readyz`` answers 200."""
        log = (self.workdir / f"{service}.log").open("ab")
        command = [sys.executable, "-m", "services.cli", "serve", service]
        command += ["--host", "127.0.0.1", "--port", str(self.ports[service])]
        self.processes[service] = subprocess.Popen(
            command, env=self._env(service), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.wait_ready(service, timeout)

    def wait_ready(self, service: str, timeout: float = 60.0) -> None:
        process = self.processes[service]
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url(service) + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                raise RuntimeError(
                    f"{service} exited with {process.returncode}:\n{self.log(service)}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{service} not ready in {timeout:g} s:\n{self.log(service)}")
            time.sleep(0.1)

    def kill(self, service: str) -> None:
        """SIGKILL: no shutdown, no goodbye, as when a machine or a container dies."""
        process = self.processes.pop(service)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self) -> None:
        for service in reversed(SERVICES):
            process = self.processes.pop(service, None)
            if process is None:
                continue
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def cpu_seconds(self, service: str) -> float:
        """User + system CPU time the running ``service`` has used (Linux ``/proc``; else 0)."""
        process = self.processes.get(service)
        if process is None:
            return 0.0
        try:
            stat = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")

    def log(self, service: str, lines: int = 40) -> str:
        path = self.workdir / f"{service}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Stack:
        try:
            for service in SERVICES:
                if service not in self.elsewhere:
                    self.start(service)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@contextmanager
def fresh_database(url: str | None) -> Iterator[str]:
    """A migrated database for one run: a temporary SQLite file by default; with a PostgreSQL
    URL, a new database on that server, dropped afterwards. A SQLite URL is used as given."""
    from services.catalog import migrate

    if url is None:
        with tempfile.TemporaryDirectory(prefix="pilotmatch-load-") as tmp:
            sqlite_url = f"sqlite:///{Path(tmp) / 'catalog.db'}"
            migrate.upgrade(sqlite_url)
            yield sqlite_url
        return
    if not url.startswith(("postgresql", "postgres:")):
        migrate.upgrade(url)
        yield url
        return
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(url).set(drivername="postgresql+psycopg")
    name = f"pilotmatch_load_{uuid.uuid4().hex[:12]}"
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        try:
            run_url = server.set(database=name).render_as_string(hide_password=False)
            migrate.upgrade(run_url)
            yield run_url
        finally:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the load -------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One write request and what its client was told."""

    kind: str  # create, update or delete
    resource: str
    marker: str  # the unique value it writes: external_ref (create) or name/title (update)
    target: str | None  # the id written; for a create, learnt from its answer
    idempotency_key: str | None = None
    status: int | None = None  # None: no answer (timeout, connection error)
    latency: float = 0.0
    sent_at: float = 0.0  # time.monotonic() when it was sent
    version: int | None = None
    data: dict[str, Any] | None = None  # the resource as the answer gave it
    replayed: bool = False
    problem_json: bool = False
    error: str | None = None

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def unknown(self) -> bool:
        return self.status is None or self.status in UNKNOWN_STATUSES

    @property
    def refused(self) -> bool:
        return not self.acknowledged and not self.unknown


@dataclass
class LoadRecord:
    outcomes: list[Outcome] = field(default_factory=list)
    start_version: int = 0
    seconds: float = 0.0

    def count(self, predicate: Callable[[Outcome], bool]) -> int:
        return sum(1 for o in self.outcomes if predicate(o))

    def statuses(self) -> Counter[str]:
        return Counter(
            "no answer" if o.status is None else str(o.status)
            for o in self.outcomes
            if not o.acknowledged
        )


class Load:
    """``clients`` concurrent clients sharing ``ops`` write requests and one pool of live ids.

    Clients pick targets from the shared pool, so updates and deletes of one resource race
    between clients; the versions in the answers say in which order they took effect.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        clients: int = 32,
        ops: int = 2000,
        seed: int = 1,
        pause_after_failure: float = 0.05,
    ) -> None:
        self.client = client
        self.clients = clients
        self.ops = ops
        self.seed = seed
        self.run_id = f"ld{seed}-{secrets.token_hex(3)}"
        self.pause_after_failure = pause_after_failure
        self.record = LoadRecord()
        self.live: dict[str, list[str]] = {r: [] for r in RESOURCES}
        self._reserved = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """End the run early: every client finishes the operation it is in, then returns."""
        self._stop.set()

    async def run(self) -> LoadRecord:
        self.record.start_version = await catalog_version(self.client)
        started = time.perf_counter()
        await asyncio.gather(*(self._client(n) for n in range(self.clients)))
        self.record.seconds = time.perf_counter() - started
        return self.record

    def _take(self, requests: int) -> bool:
        if self._stop.is_set() or self._reserved + requests > self.ops:
            return False
        self._reserved += requests
        return True

    async def _client(self, number: int) -> None:
        rng = random.Random(f"{self.seed}-{number}")
        sequence = 0
        while not self._stop.is_set() and self._reserved < self.ops:
            sequence += 1
            marker = f"{self.run_id}-c{number}-{sequence}"
            resource = rng.choice(RESOURCES)
            pool = self.live[resource]
            roll = rng.random()
            if len(pool) < 4 or roll < 0.45:
                outcomes = await self._create(rng, resource, marker)
            elif roll < 0.82:
                outcomes = await self._update(rng, resource, marker, rng.choice(pool))
            else:
                outcomes = await self._delete(resource, marker, rng.choice(pool))
            if any(o.status is None or o.status >= 500 for o in outcomes):
                await asyncio.sleep(self.pause_after_failure)

    async def _create(self, rng: random.Random, resource: str, marker: str) -> list[Outcome]:
        body = _new_body(rng, resource, marker)
        url = COLLECTIONS[resource]
        style = rng.random()
        key = None if style < 0.6 else f"{marker}-key"
        sends = 2 if style >= 0.7 and self._take(2) else 1
        if sends == 1 and not self._take(1):
            return []  # every request slot is taken: the run is over

        def send() -> Awaitable[Outcome]:
            planned = Outcome("create", resource, marker, None, idempotency_key=key)
            return self._send(planned, "POST", url, body)

        if sends == 1:
            outcomes = [await send()]
        elif style < 0.88:
            # A deliberate retry, as a client sends when it is unsure the first one arrived.
            outcomes = [await send(), await send()]
        else:
            # The same key twice at once: one write; the other gets its answer or a 409.
            outcomes = list(await asyncio.gather(send(), send()))
        created = next((o.target for o in outcomes if o.acknowledged), None)
        if created is not None:
            self.live[resource].append(created)
        return outcomes

    async def _update(
        self, rng: random.Random, resource: str, marker: str, target: str
    ) -> list[Outcome]:
        if not self._take(1):
            return []
        body: dict[str, Any] = {MARKER_FIELD[resource]: _label(resource, marker)}
        body["description"] = f"负载测试更新 {marker}：{rng.choice(CHAINS)}方向中试。"
        if rng.random() < 0.5:
            body["industry_chains"] = rng.sample(CHAINS, 2)
        planned = Outcome("update", resource, marker, target)
        outcome = await self._send(planned, "PATCH", f"{COLLECTIONS[resource]}/{target}", body)
        if outcome.status == 404:
            self._forget(resource, target)
        return [outcome]

    async def _delete(self, resource: str, marker: str, target: str) -> list[Outcome]:
        if not self._take(1):
            return []
        planned = Outcome("delete", resource, marker, target)
        outcome = await self._send(planned, "DELETE", f"{COLLECTIONS[resource]}/{target}", None)
        if not outcome.refused or outcome.status == 404:
            self._forget(resource, target)
        return [outcome]

    def _forget(self, resource: str, target: str) -> None:
        if target in self.live[resource]:
            self.live[resource].remove(target)

    async def _send(
        self, planned: Outcome, method: str, url: str, body: dict[str, Any] | None
    ) -> Outcome:
        """Send one request and record what the client was told, in ``planned``."""
        outcome = planned
        headers = {"Idempotency-Key": outcome.idempotency_key} if outcome.idempotency_key else {}
        outcome.sent_at = time.monotonic()
        started = time.perf_counter()
        try:
            response = await self.client.request(method, url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
        else:
            outcome.status = response.status_code
            outcome.replayed = response.headers.get("Idempotent-Replayed") == "true"
            content_type = response.headers.get("content-type", "")
            outcome.problem_json = content_type.startswith("application/problem+json")
            if outcome.acknowledged:
                answer = response.json()
                # A written resource's own `version` is the write's: it stays in the data.
                outcome.version = int(answer["version"])
                answer.pop("warnings", None)
                if outcome.kind != "delete":
                    outcome.data = answer
                    outcome.target = answer["id"]
        outcome.latency = time.perf_counter() - started
        self.record.outcomes.append(outcome)
        return outcome


def _label(resource: str, marker: str) -> str:
    return f"负载需求 {marker}" if resource == "demand" else f"负载平台 {marker}"


def _new_body(rng: random.Random, resource: str, marker: str) -> dict[str, Any]:
    chains = rng.sample(CHAINS, rng.randint(1, 2))
    if resource == "demand":
        return {
            "external_ref": marker,
            "title": _label(resource, marker),
            "description": f"{chains[0]}方向的中试需求 {marker}，需要小批量试产与检测。",
            "industry_chains": chains,
            "tags": ["负载测试"],
            "stage": rng.choice(STAGES),
            "district": rng.choice(DISTRICTS),
            "needs_voucher": rng.random() < 0.3,
            "required_certifications": [],
        }
    return {
        "external_ref": marker,
        "name": _label(resource, marker),
        "organization": "负载测试研究院",
        "district": rng.choice(DISTRICTS),
        "description": f"{chains[0]}中试平台 {marker}：工艺验证、试制与检测。",
        "industry_chains": chains,
        "tags": ["负载测试"],
        "capabilities": ["工艺验证"],
        "equipment": [],
        "certifications": rng.sample(CERTIFICATIONS, rng.randint(0, 2)),
        "stages": rng.sample(STAGES, 2),
        "accepts_vouchers": rng.random() < 0.5,
        "level": rng.choice(["国家级", "省级", "市级", None]),
    }


# --- reading back -----------------------------------------------------------------------------


async def catalog_version(client: httpx.AsyncClient) -> int:
    response = await client.get("/v1/changes", params={"after": 0, "limit": 1})
    response.raise_for_status()
    return int(response.json()["current_version"])


async def fetch_changes(client: httpx.AsyncClient) -> tuple[list[dict[str, Any]], int]:
    """The whole change log, and the catalog's version when the last page was read."""
    entries: list[dict[str, Any]] = []
    after = 0
    while True:
        response = await client.get("/v1/changes", params={"after": after, "limit": 1000})
        response.raise_for_status()
        page = response.json()
        entries.extend(page["items"])
        if not page["items"] or page["next_after"] >= page["current_version"]:
            return entries, int(page["current_version"])
        after = page["next_after"]


async def fetch_catalog(client: httpx.AsyncClient) -> dict[tuple[str, str], dict[str, Any]]:
    """Every platform, manufacturer and demand, listed page by page through the API."""
    state: dict[tuple[str, str], dict[str, Any]] = {}
    for resource, path in COLLECTIONS.items():
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if cursor:
                params["cursor"] = cursor
            response = await client.get(path, params=params)
            response.raise_for_status()
            page = response.json()
            for item in page["items"]:
                state[(resource, item["id"])] = item
            cursor = page["next_cursor"]
            if not cursor:
                break
    return state


# --- checking ---------------------------------------------------------------------------------


@dataclass
class Write:
    """One intended write: a request, or every request sent with one idempotency key."""

    outcomes: list[Outcome]

    @property
    def first(self) -> Outcome:
        return self.outcomes[0]

    @property
    def acknowledged(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.acknowledged]


@dataclass
class Verification:
    disagreements: list[str] = field(default_factory=list)
    found: int = 0  # acknowledged requests whose write is in the change log and the state
    unknown_applied: int = 0
    unknown_not_applied: int = 0
    unknown_resolved_by_retry: int = 0
    change_entries: int = 0
    catalog_version: int = 0
    live: dict[str, int] = field(default_factory=dict)
    index: dict[str, Any] = field(default_factory=dict)
    probes: int = 0

    def disagree(self, message: str) -> None:
        self.disagreements.append(message)


def _group(outcomes: list[Outcome]) -> list[Write]:
    by_key: dict[str, Write] = {}
    writes: list[Write] = []
    for outcome in outcomes:
        if outcome.idempotency_key is None:
            writes.append(Write([outcome]))
        elif outcome.idempotency_key in by_key:
            by_key[outcome.idempotency_key].outcomes.append(outcome)
        else:
            by_key[outcome.idempotency_key] = Write([outcome])
            writes.append(by_key[outcome.idempotency_key])
    return writes


def _replay(entries: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    state: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in entries:
        key = (entry["resource"], entry["id"])
        if entry["data"] is None:
            state.pop(key, None)
        else:
            state[key] = entry["data"]
    return state


def _differing(one: dict[str, Any] | None, other: dict[str, Any] | None) -> list[str]:
    one, other = one or {}, other or {}
    return sorted(f for f in set(one) | set(other) if one.get(f) != other.get(f))


def _compare(
    result: Verification,
    what: str,
    expected: dict[tuple[str, str], dict[str, Any]],
    actual: dict[tuple[str, str], dict[str, Any]],
) -> None:
    keys = sorted(set(expected) | set(actual))
    wrong = [key for key in keys if expected.get(key) != actual.get(key)]
    for resource, item_id in wrong[:10]:
        key = (resource, item_id)
        if key not in actual:
            result.disagree(f"{what}: {resource} {item_id} expected but missing from the catalog")
        elif key not in expected:
            result.disagree(f"{what}: {resource} {item_id} in the catalog but not expected")
        else:
            fields = ", ".join(_differing(expected[key], actual[key]))
            result.disagree(f"{what}: {resource} {item_id} differs in {fields}")
    if len(wrong) > 10:
        result.disagree(f"{what}: … and {len(wrong) - 10} more items differ")


def check_writes(
    record: LoadRecord,
    entries: list[dict[str, Any]],
    catalog: dict[tuple[str, str], dict[str, Any]],
    current_version: int,
) -> Verification:
    """Checks (a) and (b): the change log and the catalog against what the clients were told."""
    result = Verification(change_entries=len(entries), catalog_version=current_version)
    versions = [e["version"] for e in entries]
    if versions != list(range(1, current_version + 1)):
        missing = sorted(set(range(1, current_version + 1)) - set(versions))[:10]
        result.disagree(f"change log versions are not gapless 1..{current_version}: {missing}")
    _compare(result, "change-log replay", _replay(entries), catalog)

    by_version = {e["version"]: e for e in entries}
    claimed: dict[int, str] = {}
    applied: list[tuple[int, str, str, dict[str, Any] | None]] = []
    writes = _group(record.outcomes)

    def claim(version: int, write: Write, data: dict[str, Any] | None) -> None:
        who = f"{write.first.kind} {write.first.resource} {write.first.marker}"
        if version in claimed:
            result.disagree(f"version {version} answered to two writes: {claimed[version]}, {who}")
            return
        claimed[version] = who
        entry = by_version[version]
        applied.append((version, entry["resource"], entry["id"], data))

    # Acknowledged writes first: they own their versions.
    for write in writes:
        acks = write.acknowledged
        if not acks:
            continue
        first = acks[0]
        for other in acks[1:]:
            if (other.version, other.target, other.data) != (
                first.version,
                first.target,
                first.data,
            ):
                result.disagree(f"key {first.idempotency_key}: repeated answers differ")
        if sum(1 for o in acks if not o.replayed) > 1:
            result.disagree(f"key {first.idempotency_key}: two answers not marked as replays")
        entry = by_version.get(first.version or -1)
        expected_op = "delete" if first.kind == "delete" else "upsert"
        if entry is None:
            result.disagree(
                f"{first.kind} {first.target} acknowledged at v{first.version}: no entry"
            )
            continue
        if (entry["resource"], entry["id"], entry["op"]) != (
            first.resource,
            first.target,
            expected_op,
        ):
            result.disagree(
                f"{first.kind} {first.resource} {first.target} acknowledged at v{first.version}, "
                f"but that entry is {entry['op']} {entry['resource']} {entry['id']}"
            )
            continue
        if first.kind != "delete" and entry["data"] != first.data:
            result.disagree(
                f"{first.kind} {first.target} at v{first.version}: the change log holds other "
                f"values for {', '.join(_differing(entry['data'], first.data))}"
            )
            continue
        claim(entry["version"], write, first.data)
        result.found += len(acks)
        result.unknown_resolved_by_retry += sum(1 for o in write.outcomes if o.unknown)

    # Unacknowledged writes: unknown ones are looked for in the log (before refused ones, which
    # must find nothing left that they could have made).
    unacknowledged = [w for w in writes if not w.acknowledged]
    unknown = [w for w in unacknowledged if any(o.unknown for o in w.outcomes)]
    refused = [w for w in unacknowledged if not any(o.unknown for o in w.outcomes)]
    for write in unknown:
        entry = _find_entry(write.first, entries, claimed)
        if entry is None:
            result.unknown_not_applied += 1
        else:
            result.unknown_applied += 1
            claim(entry["version"], write, entry["data"])
    for write in refused:
        first = write.first
        if (entry := _find_entry(first, entries, claimed)) is not None:
            statuses = sorted({o.status for o in write.outcomes if o.status is not None})
            result.disagree(
                f"{first.kind} {first.resource} {first.target or first.marker} was refused "
                f"({statuses}) but is in the change log at v{entry['version']}"
            )
        if (
            any(o.status == 404 for o in write.outcomes)
            and (first.resource, first.target) in catalog
        ):
            result.disagree(f"{first.kind} of {first.target} got 404, but it is in the catalog")

    # Entries up to the start belong to whatever was there before the run.
    during = {v for v in by_version if v > record.start_version}
    for version in sorted(during - set(claimed))[:10]:
        entry = by_version[version]
        result.disagree(
            f"change log v{version} ({entry['op']} {entry['resource']} {entry['id']}) "
            "matches no write a client made"
        )

    # (a) The catalog equals the acknowledged (and reconciled) writes applied in version order.
    model = _replay([e for e in entries if e["version"] <= record.start_version])
    for _version, resource, item_id, data in sorted(applied, key=lambda a: a[0]):
        if data is None:
            model.pop((resource, item_id), None)
        else:
            model[(resource, item_id)] = data
    _compare(result, "acknowledged writes", model, catalog)
    result.live = {r: sum(1 for key in catalog if key[0] == r) for r in RESOURCES}
    return result


def _find_entry(
    outcome: Outcome, entries: list[dict[str, Any]], claimed: dict[int, str]
) -> dict[str, Any] | None:
    """The change-log entry this unacknowledged write would have made, if it made one."""
    for entry in entries:
        if entry["version"] in claimed or entry["resource"] != outcome.resource:
            continue
        data = entry["data"]
        if outcome.kind == "create":
            if data is not None and data.get("external_ref") == outcome.marker:
                return entry
        elif entry["id"] == outcome.target:
            if outcome.kind == "delete" and data is None:
                return entry
            marker = _label(outcome.resource, outcome.marker)
            if (
                outcome.kind == "update"
                and data
                and data.get(MARKER_FIELD[outcome.resource]) == marker
            ):
                return entry
    return None


async def check_index(
    client: httpx.AsyncClient,
    result: Verification,
    entries: list[dict[str, Any]],
    catalog: dict[tuple[str, str], dict[str, Any]],
    *,
    concurrency: int = 16,
    ranked_sample: int = 20,
) -> None:
    """Check (c): the matching index holds exactly the live suppliers and demands."""
    version = result.catalog_version
    # Waits (up to matching's min_version timeout) until the index has every write.
    response = await client.post(
        "/v1/match",
        params={"min_version": version, "kind": "all", "limit": 100},
        json={"title": "负载测试 中试平台 工艺验证", "industry_chains": CHAINS[:3]},
    )
    if response.status_code != 200:
        result.disagree(f"match with min_version={version}: {response.status_code} {response.text}")
        return
    live_suppliers = {item_id for (resource, item_id) in catalog if resource in SUPPLIERS}
    ghosts = [
        r["supplier_id"]
        for r in response.json()["results"]
        if r["supplier_id"] not in live_suppliers
    ]
    if ghosts:
        result.disagree(f"matches return suppliers that are not live: {ghosts[:5]}")

    status = (await client.get("/v1/index")).json()
    result.index = status
    if status["version"] < version:
        result.disagree(f"index version {status['version']} behind the catalog's {version}")
    expected = {r: result.live.get(r, 0) for r in RESOURCES}
    counted = {
        "platform": status["suppliers"]["platform"],
        "manufacturer": status["suppliers"]["manufacturer"],
        "demand": status["demands"],
    }
    if counted != expected:
        result.disagree(f"index counts {counted} differ from the catalog's {expected}")

    # Every id the log ever named: live ones must be found in the index, deleted ones never.
    ever = {(e["resource"], e["id"]) for e in entries if e["resource"] in RESOURCES}
    semaphore = asyncio.Semaphore(concurrency)

    async def probe(resource: str, item_id: str) -> None:
        if resource == "demand":
            path = f"/v1/demands/{item_id}/matches"
        else:
            path = f"{COLLECTIONS[resource]}/{item_id}/similar"
        async with semaphore:
            answer = await client.get(path, params={"limit": 1, "min_version": version})
        want = 200 if (resource, item_id) in catalog else 404
        if answer.status_code != want:
            state = "live" if want == 200 else "deleted"
            result.disagree(f"index: {state} {resource} {item_id} answered {answer.status_code}")

    await asyncio.gather(*(probe(resource, item_id) for resource, item_id in sorted(ever)))

    # Ranking finds live suppliers by their own words, and never ranks a deleted one.
    sample = sorted(key for key in catalog if key[0] in SUPPLIERS)[:ranked_sample]

    async def rank(resource: str, item_id: str) -> None:
        supplier = catalog[(resource, item_id)]
        body = {"title": supplier["name"], "description": supplier["description"]}
        params = {"kind": resource, "limit": 10, "min_version": version}
        async with semaphore:
            answer = await client.post("/v1/match", params=params, json=body)
        found = [r["supplier_id"] for r in answer.json().get("results", [])]
        if answer.status_code != 200 or item_id not in found:
            result.disagree(f"index: ranking by its own text does not find {resource} {item_id}")
        if set(found) - live_suppliers:
            result.disagree(
                f"index: ranking returns deleted suppliers {set(found) - live_suppliers}"
            )

    await asyncio.gather(*(rank(resource, item_id) for resource, item_id in sample))
    result.probes = len(ever) + len(sample) + 1


async def verify(
    client: httpx.AsyncClient, record: LoadRecord, *, index: bool = True
) -> Verification:
    entries, current_version = await fetch_changes(client)
    catalog = await fetch_catalog(client)
    result = check_writes(record, entries, catalog, current_version)
    if index:
        await check_index(client, result, entries, catalog)
    return result


# --- figures ----------------------------------------------------------------------------------


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def server_errors(record: LoadRecord) -> int:
    return record.count(lambda o: o.status is None or o.status >= 500)


def unexpected_refusals(record: LoadRecord) -> Counter[int]:
    return Counter(
        o.status
        for o in record.outcomes
        if o.status is not None and 400 <= o.status < 500 and o.status not in EXPECTED_REFUSALS
    )


def figures(record: LoadRecord, result: Verification, clients: int) -> list[tuple[str, str]]:
    latencies = [o.latency for o in record.outcomes]
    attempted = len(record.outcomes)
    acknowledged = record.count(lambda o: o.acknowledged)
    unknown = record.count(lambda o: o.unknown)
    by_kind = Counter(o.kind for o in record.outcomes)
    statuses = record.statuses()
    return [
        ("clients", str(clients)),
        (
            "operations attempted",
            f"{attempted} ({by_kind['create']} create, {by_kind['update']} update, "
            f"{by_kind['delete']} delete; {record.count(lambda o: o.idempotency_key is not None)} "
            f"with Idempotency-Key, {record.count(lambda o: o.replayed)} answered as replays)",
        ),
        ("acknowledged (2xx)", str(acknowledged)),
        ("found afterwards", f"{result.found} of {acknowledged} acknowledged"),
        ("refused (4xx, 503)", str(record.count(lambda o: o.refused))),
        (
            "unknown outcome",
            f"{unknown} (applied {result.unknown_applied}, not applied "
            f"{result.unknown_not_applied}, settled by a retry {result.unknown_resolved_by_retry})",
        ),
        ("errors by status", ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())) or "none"),
        (
            "change-log entries",
            f"{result.change_entries} (catalog version {result.catalog_version})",
        ),
        ("live afterwards", ", ".join(f"{k} {v}" for k, v in result.live.items())),
        (
            "matching index",
            f"version {result.index.get('version')}, {result.probes} probes"
            if result.index
            else "not checked",
        ),
        ("throughput", f"{attempted / record.seconds:.0f} requests/s over {record.seconds:.1f} s"),
        (
            "latency",
            f"p50 {_percentile(latencies, 0.5) * 1000:.1f} ms, "
            f"p99 {_percentile(latencies, 0.99) * 1000:.1f} ms",
        ),
        ("disagreements", str(len(result.disagreements))),
    ]


# --- the command ------------------------------------------------------------------------------


async def run_and_verify(
    gateway_url: str, admin_key: str, *, clients: int, ops: int, seed: int, timeout: float
) -> tuple[LoadRecord, Verification]:
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    async with httpx.AsyncClient(
        base_url=gateway_url,
        headers={"X-API-Key": admin_key},
        timeout=timeout,
        limits=limits,
    ) as client:
        record = await Load(client, clients=clients, ops=ops, seed=seed).run()
        result = await verify(client, record)
    return record, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument("--ops", type=int, default=2000, help="write requests in all (2000)")
    parser.add_argument(
        "--database-url",
        default=None,
        help="default: a fresh SQLite file in a temporary directory; a PostgreSQL URL names "
        "the server, on which a fresh database is created for the run and dropped afterwards",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the clients (1)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (30)")
    args = parser.parse_args(argv)

    with fresh_database(args.database_url) as url, tempfile.TemporaryDirectory() as workdir:
        backend = url.split(":", 1)[0]
        print(f"starting catalog, matching and gateway on {backend} …", flush=True)
        with Stack(url, Path(workdir)) as stack:
            load_average = os.getloadavg()[0]
            record, result = asyncio.run(
                run_and_verify(
                    stack.gateway_url,
                    stack.admin_key,
                    clients=args.clients,
                    ops=args.ops,
                    seed=args.seed,
                    timeout=args.timeout,
                )
            )
            cpu = {name: stack.cpu_seconds(name) for name in SERVICES}
    rows = figures(record, result, args.clients)
    rows.append(("service CPU", ", ".join(f"{name} {sec:.1f} s" for name, sec in cpu.items())))
    rows.append(("load average", f"{load_average:.1f} at the start ({os.cpu_count()} CPUs)"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    problems = [f"DISAGREES: {message}" for message in result.disagreements]
    if server_errors(record):
        problems.append(f"FAILED: {server_errors(record)} requests got a 5xx or no answer")
    if unexpected_refusals(record):
        problems.append(f"FAILED: unexpected refusals {dict(unexpected_refusals(record))}")
    print("\n".join(problems) or "OK: every acknowledged write is there, and nothing else")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
