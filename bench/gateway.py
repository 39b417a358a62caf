"""The gateway's hop: latency and throughput through the gateway beside a direct call.

Starts, as real processes on loopback, a cheap upstream (a minimal ASGI app under uvicorn that
answers every path with a small JSON body) and the gateway in front of it exactly as a container
runs it (``pilotmatch serve gateway``: uvicorn, production settings, JSON access log). Then it
drives both with a load generator in its own process and prints, side by side:

- one client: p50 and p99 latency, direct and through the gateway (the hop's added latency);
- 16 concurrent clients: requests/s and p99, direct and through the gateway.

The load generator is ``wrk`` when it is installed (``apt-get install wrk``), otherwise an aiohttp
client in a separate process (slower: it then caps what can be measured). Every run is bounded in
time (``--seconds``), targets only 127.0.0.1, and the processes are stopped at the end.

Targets (issue 4): the hop adds at most 1 ms at p50 with one client; with 16 clients at least
2,000 requests/s through the gateway, p99 at most 20 ms.

Run from the repository root::

    python bench/gateway.py                 # 5 s per run, wrk if available
    python bench/gateway.py --seconds 3 --loadgen python
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PATH = "/v1/bench/ping"
CONCURRENT = 16

# --- the cheap upstream ---------------------------------------------------------------------

_BODY = b'{"status":"ok","service":"bench-upstream"}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]


async def cheap_upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every HTTP request with a small JSON body; ignores lifespan events."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})


# --- processes ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"process for {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up within {timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _running(cmd: list[str], env: dict[str, str], health_url: str) -> Iterator[int]:
    process = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_until_up(health_url, process)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def upstream_and_gateway(admin_key: str) -> Iterator[tuple[str, str, int]]:
    upstream_port, gateway_port = _free_port(), _free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    gateway = f"http://127.0.0.1:{gateway_port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    upstream_cmd = [
        sys.executable, "-m", "uvicorn", "bench.gateway:cheap_upstream",
        "--host", "127.0.0.1", "--port", str(upstream_port),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    gateway_env = {
        **env,
        "ENVIRONMENT": "production",
        "PILOTMATCH_ADMIN_KEY": admin_key,
        "CATALOG_URL": upstream,
        "MATCHING_URL": upstream,
    }
    gateway_cmd = [sys.executable, "-m", "services.cli", "serve", "gateway"]
    gateway_cmd += ["--host", "127.0.0.1", "--port", str(gateway_port)]
    with (
        _running(upstream_cmd, env, upstream + PATH),
        _running(gateway_cmd, gateway_env, gateway + "/healthz") as gateway_pid,
    ):
        yield upstream, gateway, gateway_pid


# --- load generators ------------------------------------------------------------------------


@dataclass
class Result:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


_WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(url: str, clients: int, seconds: float, headers: dict[str, str]) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_REPORT)
    try:
        cmd = ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "5s"]
        cmd += ["-s", script.name]
        for name, value in headers.items():
            cmd += ["-H", f"{name}: {value}"]
        out = subprocess.run(
            [*cmd, url], check=True, capture_output=True, text=True, timeout=seconds + 30
        ).stdout
    finally:
        os.unlink(script.name)
    data = json.loads(out.strip().splitlines()[-1])
    return Result(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=data["errors"],
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


async def _python_load(url: str, clients: int, seconds: float, headers: dict[str, str]) -> str:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            nonlocal errors
            while (now := time.perf_counter()) < deadline:
                try:
                    async with session.get(url) as response:
                        await response.read()
                        ok = response.status == 200
                except aiohttp.ClientError:
                    ok = False
                latencies.append(time.perf_counter() - now)
                errors += not ok

        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return json.dumps(
        {
            "requests": len(latencies),
            "duration_us": int(elapsed * 1e6),
            "errors": errors,
            "p50_us": int(pick(0.50) * 1e6),
            "p99_us": int(pick(0.99) * 1e6),
        }
    )


def run_python(url: str, clients: int, seconds: float, headers: dict[str, str]) -> Result:
    """The aiohttp load generator, in its own process so it does not share our event loop."""
    cmd = [sys.executable, __file__, "--_loadgen", url, str(clients), str(seconds)]
    env = {**os.environ, "BENCH_HEADERS": json.dumps(headers)}
    out = subprocess.run(
        cmd, check=True, capture_output=True, text=True, timeout=seconds + 30, env=env
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return Result(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=data["errors"],
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


# --- the report -----------------------------------------------------------------------------


def _row(label: str, direct: float, via: float, unit: str, target: str, ok: bool) -> str:
    ratio = via / direct if direct else float("nan")
    delta = f"{via - direct:+.2f} ms" if unit == "ms" else f"{via - direct:+,.0f}/s"
    return (
        f"{label:<26}{direct:>10,.2f}{via:>12,.2f}{ratio:>9.2f}x{delta:>12}  "
        f"{target:<16}{'ok' if ok else 'MISSED'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run (≤ 20)")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    args = parser.parse_args(argv)
    seconds = min(max(args.seconds, 1.0), 20.0)
    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk"))
    if args.loadgen == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    load = run_wrk if use_wrk else run_python

    load_before = os.getloadavg()[0]
    admin_key = "bench_" + secrets.token_urlsafe(30)
    headers = {"X-API-Key": admin_key}
    with upstream_and_gateway(admin_key) as (upstream, gateway, gateway_pid):
        direct_url, via_url = upstream + PATH, gateway + PATH
        # Warm up both paths (connection pools, first-request imports) before measuring.
        load(direct_url, 4, 1.0, headers)
        load(via_url, 4, 1.0, headers)
        one_direct = load(direct_url, 1, seconds, headers)
        one_via = load(via_url, 1, seconds, headers)
        many_direct = load(direct_url, CONCURRENT, seconds, headers)
        cpu_before = cpu_seconds(gateway_pid)
        many_via = load(via_url, CONCURRENT, seconds, headers)
        gateway_cpu = cpu_seconds(gateway_pid) - cpu_before

    errors = sum(r.errors for r in (one_direct, one_via, many_direct, many_via))
    added_p50 = one_via.p50_ms - one_direct.p50_ms
    print(
        f"gateway hop, {'wrk' if use_wrk else 'aiohttp'} load generator, {seconds:g} s per run, "
        f"{os.cpu_count()} cores shared by load generator, gateway and upstream "
        f"(load average before the run: {load_before:.2f})"
    )
    print(
        f"upstream: minimal ASGI app under uvicorn; gateway: pilotmatch serve gateway; GET {PATH}"
    )
    print()
    print(
        f"{'measure':<26}{'direct':>10}{'gateway':>12}{'ratio':>10}{'added':>12}  "
        f"{'target':<16}result"
    )
    print(
        _row("1 client p50 (ms)", one_direct.p50_ms, one_via.p50_ms, "ms", "added <= 1 ms",
             added_p50 <= 1.0)
    )  # fmt: skip
    print(_row("1 client p99 (ms)", one_direct.p99_ms, one_via.p99_ms, "ms", "-", True))
    print(
        _row(f"{CONCURRENT} clients req/s", many_direct.rps, many_via.rps, "/s", ">= 2,000/s",
             many_via.rps >= 2000)
    )  # fmt: skip
    print(
        _row(f"{CONCURRENT} clients p99 (ms)", many_direct.p99_ms, many_via.p99_ms, "ms",
             "<= 20 ms", many_via.p99_ms <= 20.0)
    )  # fmt: skip
    cpu_us = gateway_cpu / many_via.requests * 1e6 if many_via.requests else float("nan")
    print(
        f"gateway CPU per request under {CONCURRENT} clients: {cpu_us:,.0f} µs "
        f"({gateway_cpu / many_via.seconds:.0%} of one core)"
    )
    print(
        f"requests: {one_direct.requests + many_direct.requests:,} direct, "
        f"{one_via.requests + many_via.requests:,} through the gateway; errors: {errors}"
    )
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--_loadgen":
        _url, _clients, _seconds = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
        _headers = json.loads(os.environ.get("BENCH_HEADERS", "{}"))
        print(asyncio.run(_python_load(_url, _clients, _seconds, _headers)))
        sys.exit(0)
    sys.exit(main())
