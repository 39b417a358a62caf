"""The `pilotmatch` command, run as a real process the way operators run it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.catalog.conftest import platform_body

PILOTMATCH = str(Path(sys.executable).parent / "pilotmatch")


def run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PILOTMATCH, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "PILOTMATCH_ADMIN_KEY", "PORT", "CATALOG_URL", "MATCHING_URL")
    }
    environment["DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    environment["LOG_FORMAT"] = "text"
    return environment


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(base: str, process: subprocess.Popen[str], timeout: float) -> None:
    """Poll ``/readyz`` until it answers 200; fail with the process output if it dies."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.monotonic() < deadline, f"{base} did not become ready in {timeout} s"
        time.sleep(0.2)


def test_console_script_is_installed_with_every_command(env: dict[str, str]) -> None:
    result = run(["--help"], env)
    assert result.returncode == 0
    for command in ("up", "serve", "migrate", "load-demo", "import", "report"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("variable", "value", "command"),
    [
        ("DATABASE_URL", "mysql://nope", ["migrate"]),
        ("DATABASE_URL", "not a url", ["serve", "catalog"]),
        ("PORT", "eighty", ["serve", "matching"]),
        ("CATALOG_URL", "catalog:8001", ["serve", "gateway"]),
        ("LOG_LEVEL", "loud", ["serve", "catalog"]),
    ],
)
def test_bad_setting_fails_fast_with_one_line(
    env: dict[str, str], variable: str, value: str, command: list[str]
) -> None:
    env[variable] = value
    result = run(command, env, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]


def test_production_gateway_refuses_a_weak_admin_key(env: dict[str, str]) -> None:
    env.update(ENVIRONMENT="production", PILOTMATCH_ADMIN_KEY="changeme")
    result = run(["serve", "gateway"], env, timeout=30)
    assert result.returncode == 2
    assert "PILOTMATCH_ADMIN_KEY" in result.stderr


def test_load_demo_needs_migrate_first_then_is_idempotent(env: dict[str, str]) -> None:
    refused = run(["load-demo"], env)
    assert refused.returncode == 2
    assert "pilotmatch migrate" in refused.stderr
    assert run(["migrate"], env).returncode == 0
    first = run(["load-demo"], env)
    assert first.returncode == 0, first.stderr
    second = run(["load-demo"], env)
    assert second.returncode == 0
    version = first.stderr.rsplit("catalog version ", 1)[1].split(")")[0]
    assert f"catalog version {version})" in second.stderr.replace("\n", " ")


def test_report_coverage_from_the_database_as_json_and_csv(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert run(["migrate"], env).returncode == 0
    assert run(["load-demo"], env).returncode == 0
    as_json = run(["report", "coverage"], env)
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert {"纺织服装鞋帽", "下一代移动通信（6G）"} <= set(report["chains_without_platform"])
    assert report["threshold"] == 1.1
    target = tmp_path / "coverage.csv"
    as_csv = run(
        ["report", "coverage", "--format", "csv", "--threshold", "0.5", "--output", str(target)],
        env,
    )
    assert as_csv.returncode == 0, as_csv.stderr
    assert str(target) in as_csv.stderr
    lines = target.read_bytes().decode("utf-8").split("\r\n")
    assert lines[0].startswith("chain_code,chain,sub_field,platforms,")
    assert any(line.startswith("TEXTILE_APPAREL,纺织服装鞋帽,,0,") for line in lines)


def test_import_file_reports_counts_and_rejections(env: dict[str, str], tmp_path: Path) -> None:
    assert run(["migrate"], env).returncode == 0
    good = {"platforms": [platform_body(external_ref=f"p{i}") for i in range(5)]}
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(good, ensure_ascii=False), encoding="utf-8")
    result = run(["import", str(path), "--batch-size", "2"], env)
    assert result.returncode == 0, result.stderr
    assert "platforms" in result.stdout and "5" in result.stdout

    bad = {"demands": [{"external_ref": "d1", "title": ""}]}
    path.write_text(json.dumps(bad), encoding="utf-8")
    rejected = run(["import", str(path)], env)
    assert rejected.returncode == 1
    assert "demands[0]" in rejected.stdout and "title" in rejected.stdout


def test_import_of_unreadable_file_is_a_clear_error(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    result = run(["import", str(path)], env)
    assert result.returncode == 2
    assert "cannot read" in result.stderr


def test_up_serves_the_demo_through_the_gateway_and_stops_on_sigterm(
    env: dict[str, str], tmp_path: Path
) -> None:
    ports = {name: free_port() for name in ("gateway", "catalog", "matching")}
    env["PILOTMATCH_ADMIN_KEY"] = "cli-test-key-0123456789abcdef"
    process = subprocess.Popen(
        [
            PILOTMATCH,
            "up",
            "--demo",
            "--gateway-port",
            str(ports["gateway"]),
            "--catalog-port",
            str(ports["catalog"]),
            "--matching-port",
            str(ports["matching"]),
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{ports['gateway']}"
    try:
        wait_until_ready(base, process, timeout=60)
        headers = {"X-API-Key": env["PILOTMATCH_ADMIN_KEY"]}
        platforms = httpx.get(base + "/v1/platforms", params={"limit": 100}, headers=headers)
        names = [p["name"] for p in platforms.json()["items"]]
        assert "松山湖固态电池研发中试平台" in names
        assert httpx.get(base + "/v1/platforms").status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    for port in ports.values():
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, "every service stopped"


def test_keys_create_list_revoke(env: dict[str, str]) -> None:
    assert run(["migrate"], env).returncode == 0
    created = run(
        ["keys", "create", "--label", "municipal", "--scopes", "catalog:read,match:read"], env
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("pm_") and len(key.splitlines()) == 1, "stdout holds the key alone"
    key_id = key.split("_")[1]
    listed = run(["keys", "list"], env)
    assert key_id in listed.stdout and key not in listed.stdout
    assert run(["keys", "revoke", key_id], env).returncode == 0
    assert key_id not in run(["keys", "list"], env).stdout
    assert key_id in run(["keys", "list", "--all"], env).stdout
    missing = run(["keys", "revoke", "nope"], env)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_keys_create_refuses_an_unknown_scope(env: dict[str, str]) -> None:
    assert run(["migrate"], env).returncode == 0
    result = run(["keys", "create", "--label", "x", "--scopes", "catalog:read,root"], env)
    assert result.returncode == 2
    assert "scopes" in result.stderr and len(result.stderr.strip().splitlines()) == 1
