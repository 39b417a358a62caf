"""Deployment files, checked without a Docker engine or a cluster.

``compose.yaml`` is resolved by Debian's ``docker-compose`` (``docker-compose config`` needs no
engine; ``.ci/run`` installs it). A missing ``docker-compose`` fails these tests, never skips
them. The Kubernetes base under ``deploy/`` is parsed with PyYAML and checked object by object.
Both are held to the services' settings classes: every environment variable they set must be
one the service reads, and the values they set must load.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from services.catalog.settings import CatalogSettings
from services.gateway.settings import GatewaySettings
from services.matching.settings import MatchingSettings
from services.shared.settings import ServiceSettings, load_settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "compose.yaml"
DEPLOY = ROOT / "deploy"
SECRET_TEMPLATE = "secret.example.yaml"

SETTINGS: dict[str, type[ServiceSettings]] = {
    "catalog": CatalogSettings,
    "matching": MatchingSettings,
    "gateway": GatewaySettings,
    "migrate": CatalogSettings,  # `pilotmatch migrate` reads the catalog's settings
}
PORTS = {"gateway": 8000, "catalog": 8001, "matching": 8002}
APP_SERVICES = ("migrate", "catalog", "matching", "gateway")
# `pilotmatch serve` lets uvicorn drain in-flight requests for this long after SIGTERM.
DRAIN_SECONDS = 20

# Values for the secrets compose.yaml requires; only used to render the file.
COMPOSE_SECRETS = {
    "POSTGRES_PASSWORD": "0123456789abcdef0123456789abcdef",
    "PILOTMATCH_ADMIN_KEY": "test-admin-key-of-more-than-24-characters",
}


def env_names(cls: type[ServiceSettings]) -> set[str]:
    """The environment variables a settings class reads (field names and aliases)."""
    names = set()
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice).upper() for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(name.upper())
    return names


def load_with(
    cls: type[ServiceSettings], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> ServiceSettings:
    """Load a settings class from exactly ``env`` (the test runner's own environment aside)."""
    with monkeypatch.context() as patch:
        for name in env_names(cls):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        return load_settings(cls)


def project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def dockerfile_uid() -> int:
    match = re.search(r"^USER\s+(\d+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert match, "the Dockerfile runs as a numeric non-root USER"
    return int(match.group(1))


def seconds(duration: str) -> float:
    """A Compose duration such as ``30s``, ``1m30s`` or ``2m``."""
    total = 0.0
    for value, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration):
        total += float(value) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[unit]
    return total


def memory_bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G)?", str(quantity))
    assert match, f"not a memory quantity: {quantity!r}"
    return int(float(match.group(1)) * units.get(match.group(2) or "", 1))


# --------------------------------------------------------------------------------------------
# compose.yaml, as docker-compose resolves it


def run_compose_config(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose is not installed: `apt-get install docker-compose` (.ci/run does it)"
        )
    # An empty env file: a developer's own .env must not fill in what the file demands.
    empty_env = tmp_path_factory.mktemp("compose") / "empty.env"
    empty_env.write_text("")
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in COMPOSE_SECRETS
        and not k.startswith(("COMPOSE_", "DOCKER_"))
        and k not in ("PILOTMATCH_IMAGE", "GATEWAY_PORT")
    }
    return subprocess.run(
        [binary, "--env-file", str(empty_env), "-f", str(COMPOSE), "config"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    result = run_compose_config(COMPOSE_SECRETS, tmp_path_factory)
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment is a mapping"
    return {k: "" if v is None else str(v) for k, v in env.items()}


def compose_role(name: str, service: dict[str, Any]) -> str:
    command = service["command"]
    if command == ["migrate"]:
        return "migrate"
    assert command[0] == "serve" and len(command) == 2, f"{name}: command {command}"
    return str(command[1])


def test_compose_config_parses_with_every_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "postgres",
        "redis",
        "migrate",
        "catalog",
        "matching",
        "gateway",
    }
    assert "pgdata" in compose["volumes"]
    assert any(
        v.startswith("pgdata:/var/lib/postgresql/data")
        for v in compose["services"]["postgres"]["volumes"]
    )


def test_compose_images_are_pinned_and_one_image_serves_everything(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in ("postgres", "redis"):
        image = services[name]["image"]
        tag = image.partition(":")[2]
        assert re.match(r"\d+\.\d+(\.\d+)?", tag), f"{name}: pin a version, not {image!r}"
    images = {services[name]["image"] for name in APP_SERVICES}
    assert images == {f"pilotmatch:{project_version()}"}
    for name in APP_SERVICES:
        assert Path(services[name]["build"]["context"]) == ROOT, name
        assert compose_role(name, services[name]) == name


def test_compose_runs_two_matching_replicas(compose: dict[str, Any]) -> None:
    matching = compose["services"]["matching"]
    assert matching["deploy"]["replicas"] == 2
    assert "container_name" not in matching and "ports" not in matching
    # Compose sizes are binary: 1536M is 1.5 GiB.
    limit = re.fullmatch(
        r"(\d+)([kmg])b?", str(matching["deploy"]["resources"]["limits"]["memory"]).lower()
    )
    assert limit, "a memory limit for the index"
    assert int(limit.group(1)) * {"k": 2**10, "m": 2**20, "g": 2**30}[limit.group(2)] >= 1.5 * 2**30


def test_compose_health_checks_and_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    # Readiness where a dependent waits on it; liveness for the gateway, which nothing waits on.
    expected_path = {"catalog": "/readyz", "matching": "/readyz", "gateway": "/healthz"}
    for name, path in expected_path.items():
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD" and test[1] == "python", f"{name}: {test}"
        assert f"http://127.0.0.1:{PORTS[name]}{path}" in test[-1], f"{name}: {test}"
    # The one-shot job must not run the image's HEALTHCHECK (it probes a server that never runs).
    assert services["migrate"]["healthcheck"]["test"] == ["NONE"]
    assert services["migrate"]["restart"] == "no"

    def needs(name: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in services[name]["depends_on"].items()}

    assert needs("migrate") == {"postgres": "service_healthy"}
    assert needs("catalog") == {"migrate": "service_completed_successfully"}
    assert needs("matching") == {"catalog": "service_healthy"}
    assert needs("gateway") == {
        "catalog": "service_healthy",
        "matching": "service_healthy",
        "redis": "service_healthy",
    }


@pytest.mark.parametrize("missing", sorted(COMPOSE_SECRETS))
def test_compose_has_no_default_secrets(
    missing: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {k: v for k, v in COMPOSE_SECRETS.items() if k != missing}
    result = run_compose_config(env, tmp_path_factory)
    assert result.returncode != 0, f"compose.yaml renders without {missing}"
    assert missing in result.stderr


def test_compose_admin_key_comes_only_from_the_operator(compose: dict[str, Any]) -> None:
    gateway_env = compose_env(compose["services"]["gateway"])
    assert gateway_env["PILOTMATCH_ADMIN_KEY"] == COMPOSE_SECRETS["PILOTMATCH_ADMIN_KEY"]
    raw = yaml.safe_load(COMPOSE.read_text())
    assert raw["services"]["gateway"]["environment"]["PILOTMATCH_ADMIN_KEY"].startswith(
        "${PILOTMATCH_ADMIN_KEY:?"
    )
    for name in ("catalog", "matching", "migrate"):
        assert "PILOTMATCH_ADMIN_KEY" not in compose_env(compose["services"][name]), name


def test_compose_environment_is_real_settings_that_load(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = compose["services"]
    for name in APP_SERVICES:
        env = compose_env(services[name])
        cls = SETTINGS[name]
        unknown = set(env) - env_names(cls)
        assert not unknown, f"{name}: {sorted(unknown)} are not {cls.__name__} settings"
        assert env["ENVIRONMENT"] == "production", name
        settings = load_with(cls, env, monkeypatch)
        if name != "migrate":
            assert settings.host == "0.0.0.0", name
            assert settings.port == PORTS[name], name
    for name in ("migrate", "catalog"):
        url = compose_env(services[name])["DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url, name
    assert compose_env(services["matching"])["CATALOG_URL"] == "http://catalog:8001"
    gateway = compose_env(services["gateway"])
    assert gateway["CATALOG_URL"] == "http://catalog:8001"
    assert gateway["MATCHING_URL"] == "http://matching:8002"  # every replica, by service DNS
    assert gateway["REDIS_URL"] == "redis://redis:6379/0"
    assert [(p["published"], p["target"]) for p in services["gateway"]["ports"]] == [(8000, 8000)]


def test_compose_containers_are_hardened_and_drain(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["read_only"] is True, name
        assert "/tmp" in service["tmpfs"], name
        assert seconds(service["stop_grace_period"]) > DRAIN_SECONDS, name


# --------------------------------------------------------------------------------------------
# deploy/: the Kubernetes base


def manifest_files() -> list[Path]:
    return sorted(p for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert data["kind"] == "Kustomization"
    return data


@pytest.fixture(scope="module")
def objects(kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object the base applies, in the order kustomization.yaml lists the files."""
    found = []
    for resource in kustomization["resources"]:
        for doc in yaml.safe_load_all((DEPLOY / resource).read_text()):
            if doc is not None:
                assert {"apiVersion", "kind", "metadata"} <= set(doc), resource
                found.append(doc)
    return found


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_every_manifest_parses_and_kustomization_lists_them(
    kustomization: dict[str, Any],
) -> None:
    for path in manifest_files():
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert docs, path.name
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    # The Secret template is documentation: applying it would overwrite the real Secret.
    assert set(listed) == {p.name for p in manifest_files()} - {SECRET_TEMPLATE}
    assert SECRET_TEMPLATE not in listed


def test_base_has_the_expected_objects(
    kustomization: dict[str, Any], objects: list[dict[str, Any]]
) -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objects)
    assert kinds == sorted(
        [
            ("Namespace", "pilotmatch"),
            ("ConfigMap", "pilotmatch-config"),
            ("Job", "pilotmatch-migrate"),
            *[(kind, name) for kind in ("Deployment", "Service") for name in PORTS],
            *[("PodDisruptionBudget", name) for name in PORTS],
        ]
    )
    assert kustomization["namespace"] == "pilotmatch"
    assert not any(o["kind"] == "Secret" for o in objects), "no Secret in the base"
    images = {i["name"]: i for i in kustomization["images"]}
    assert images["pilotmatch"]["newTag"] == project_version()


def pod_specs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    specs = {
        name: d["spec"]["template"]["spec"] for name, d in by_kind(objects, "Deployment").items()
    }
    specs["migrate"] = by_kind(objects, "Job")["pilotmatch-migrate"]["spec"]["template"]["spec"]
    return specs


def container_env(container: dict[str, Any], objects: list[dict[str, Any]]) -> dict[str, str]:
    """Names the container's environment gets, with literal values (secret refs as '<secret>')."""
    env: dict[str, str] = {}
    config_maps = by_kind(objects, "ConfigMap")
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", "<secret>")
    return env


def test_deployments_run_the_image_with_probes_and_resources(
    objects: list[dict[str, Any]],
) -> None:
    deployments = by_kind(objects, "Deployment")
    assert deployments["matching"]["spec"]["replicas"] == 2
    assert deployments["gateway"]["spec"]["replicas"] == 2
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        (container,) = spec["template"]["spec"]["containers"]
        assert container["image"] == "pilotmatch", name
        assert container["command"] + container["args"] == ["pilotmatch", "serve", name]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": PORTS[name]}, name
        assert container_env(container, objects)["PORT"] == str(PORTS[name]), name
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = container[probe]["httpGet"]
            assert get["path"] == path, f"{name} {probe}"
            assert ports.get(get["port"], get["port"]) == PORTS[name], f"{name} {probe}"
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), name
        assert "memory" in resources["limits"], name
        assert memory_bytes(resources["requests"]["memory"]) <= memory_bytes(
            resources["limits"]["memory"]
        )
        assert (
            spec["selector"]["matchLabels"].items()
            <= spec["template"]["metadata"]["labels"].items()
        )
    matching_limit = deployments["matching"]["spec"]["template"]["spec"]["containers"][0][
        "resources"
    ]["limits"]["memory"]
    assert memory_bytes(matching_limit) >= 1.5 * 2**30


def test_pods_are_non_root_read_only_and_drain(objects: list[dict[str, Any]]) -> None:
    uid = dockerfile_uid()
    for name, pod in pod_specs(objects).items():
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security["runAsUser"] == uid, name
        assert security["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        volumes = {v["name"]: v for v in pod["volumes"]}
        (container,) = pod["containers"]
        hardening = container["securityContext"]
        assert hardening["readOnlyRootFilesystem"] is True, name
        assert hardening["allowPrivilegeEscalation"] is False, name
        assert hardening["capabilities"]["drop"] == ["ALL"], name
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts, f"{name}: a writable /tmp"
        for path, volume in mounts.items():
            assert "emptyDir" in volumes[volume], f"{name}: {path}"
        if name == "migrate":
            continue
        pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
        assert pre_stop[0] == "sleep", name
        assert pod["terminationGracePeriodSeconds"] > int(pre_stop[1]) + DRAIN_SECONDS, name


def test_environment_is_real_settings_from_config_and_secrets(
    objects: list[dict[str, Any]],
) -> None:
    template = yaml.safe_load((DEPLOY / SECRET_TEMPLATE).read_text())
    assert template["kind"] == "Secret"
    assert template["stringData"]["PILOTMATCH_ADMIN_KEY"] == "", "a template, not a secret"
    for name, pod in pod_specs(objects).items():
        (container,) = pod["containers"]
        env = container_env(container, objects)
        unknown = set(env) - env_names(SETTINGS[name])
        assert not unknown, f"{name}: {sorted(unknown)} are not settings"
        assert env["ENVIRONMENT"] == "production" and env["HOST"] == "0.0.0.0", name
        for item in container.get("env", []):
            if "valueFrom" in item:
                ref = item["valueFrom"]["secretKeyRef"]
                assert ref["name"] == template["metadata"]["name"], name
                assert ref["key"] in template["stringData"], f"{name}: {ref['key']}"
    env_of = {n: container_env(p["containers"][0], objects) for n, p in pod_specs(objects).items()}
    assert env_of["migrate"]["DATABASE_URL"] == env_of["catalog"]["DATABASE_URL"] == "<secret>"
    assert env_of["matching"]["CATALOG_URL"] == "http://catalog:8001"
    assert env_of["gateway"]["CATALOG_URL"] == "http://catalog:8001"
    assert env_of["gateway"]["MATCHING_URL"] == "http://matching:8002"
    assert env_of["gateway"]["PILOTMATCH_ADMIN_KEY"] == "<secret>"
    assert env_of["gateway"]["REDIS_URL"] == "<secret>"


def test_migration_job(objects: list[dict[str, Any]]) -> None:
    job = by_kind(objects, "Job")["pilotmatch-migrate"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "pilotmatch"
    assert container["command"] + container["args"] == ["pilotmatch", "migrate"]
    assert pod["restartPolicy"] in ("OnFailure", "Never")
    assert job["spec"]["backoffLimit"] >= 1
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])


def test_services_and_disruption_budgets_select_their_pods(
    objects: list[dict[str, Any]],
) -> None:
    deployments = by_kind(objects, "Deployment")
    services = by_kind(objects, "Service")
    budgets = by_kind(objects, "PodDisruptionBudget")
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        service = services[name]["spec"]
        assert service["selector"].items() <= labels.items(), name
        assert [(p["port"], p["targetPort"]) for p in service["ports"]] == [(PORTS[name], "http")]
        budget = budgets[name]["spec"]
        assert budget["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        # Voluntary evictions (node drains) always leave a replica serving.
        assert budget.get("maxUnavailable") == 1 or budget.get("minAvailable", 0) >= 1, name
        assert deployment["spec"].get("replicas", 1) >= 2, f"{name}: one replica blocks drains"
