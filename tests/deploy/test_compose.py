"""docker-compose.temporal.yml: what `docker compose config` sees is a Temporal that sets up
its MySQL schema, starts, registers Meridian's namespace and search attributes, then
serves the UI, in that order, as a non-root database user, with pinned images."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from meridian.tasks.contracts import SEARCH_ATTRIBUTES

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.temporal.yml"
ENV_EXAMPLE = REPO / "infra" / "temporal" / ".env.example"
SCRIPTS = REPO / "infra" / "temporal" / "scripts"
TEMPORAL_IMAGES = ("temporalio/server", "temporalio/admin-tools", "temporalio/ui")


@cache
def compose_cli() -> tuple[str, ...] | None:
    """Compose v2 (`docker compose`), else the standalone `docker-compose`."""
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return ("docker", "compose")
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    return None


def run_config(*env_file: str) -> subprocess.CompletedProcess[str]:
    cli = compose_cli()
    if cli is None:
        pytest.skip("no Compose CLI: install the docker compose plugin or docker-compose")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "COMPOSE_"))}
    argv = [*cli, *(["--env-file", *env_file] if env_file else []), "-f", str(COMPOSE), "config"]
    return subprocess.run(
        argv, capture_output=True, text=True, cwd=REPO, env=env, check=False, timeout=120
    )


def _env_example() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    return {k.strip(): v.strip() for k, v in pairs}


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Just enough of Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} and $$ for this file."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise AssertionError(f"{name} is required: {arg}")
        return arg

    text = re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", one, text)
    return text.replace("$$", "$")


@cache
def config() -> dict[str, Any]:
    """The model as Compose resolves it with .env.example; without a Compose CLI, the
    file with the same interpolation, so these checks still run."""
    if compose_cli() is not None:
        done = run_config(str(ENV_EXAMPLE))
        assert done.returncode == 0, done.stderr
        loaded = yaml.safe_load(done.stdout)
    else:
        loaded = yaml.safe_load(_interpolate(COMPOSE.read_text(), _env_example()))
    assert isinstance(loaded, dict)
    return loaded


def services() -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = config()["services"]
    return result


def env_of(service: str) -> dict[str, str]:
    environment = services()[service].get("environment") or {}
    if isinstance(environment, list):  # KEY=VALUE form
        environment = dict(item.split("=", 1) for item in environment)
    return {k: str(v) for k, v in environment.items()}


def depends(service: str) -> dict[str, str]:
    raw = services()[service].get("depends_on") or {}
    assert isinstance(raw, dict), f"{service}: depends_on needs conditions, not a bare list"
    return {name: spec["condition"] for name, spec in raw.items()}


def mounts(service: str) -> list[tuple[Path, str]]:
    """(host path, container path) of each bind mount, in either output form."""
    found = []
    for volume in services()[service].get("volumes") or []:
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        if source.startswith(("/", ".")):
            found.append((REPO / source, target))  # an absolute source stays absolute
    return found


def test_compose_cli_accepts_the_file_with_the_example_env() -> None:
    done = run_config(str(ENV_EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert set(yaml.safe_load(done.stdout)["services"]) == {
        "mysql",
        "temporal-schema",
        "temporal",
        "temporal-create-namespace",
        "temporal-ui",
    }


def test_no_default_password_compose_refuses_without_one() -> None:
    done = run_config()
    assert done.returncode != 0
    assert "TEMPORAL_DB_PASSWORD" in done.stderr


def test_services_start_in_order_schema_server_namespace_ui() -> None:
    assert depends("temporal-schema") == {"mysql": "service_healthy"}
    assert depends("temporal")["temporal-schema"] == "service_completed_successfully"
    assert depends("temporal-create-namespace") == {"temporal": "service_healthy"}
    assert depends("temporal-ui") == {
        "temporal": "service_healthy",
        "temporal-create-namespace": "service_completed_successfully",
    }


def test_schema_job_sets_up_both_databases_with_admin_tools() -> None:
    job = services()["temporal-schema"]
    assert job["image"].startswith("temporalio/admin-tools:")
    script = (SCRIPTS / "setup-schema.sh").read_text()
    assert "/scripts/setup-schema.sh" in job["command"]
    for db in ("temporal", "temporal_visibility"):
        assert db in script
    assert "setup-schema" in script and "update-schema" in script


def test_images_are_pinned_and_temporal_images_share_one_release() -> None:
    versions: dict[str, str] = {}
    for name, service in services().items():
        image, _, tag = service["image"].rpartition(":")
        assert image and tag and tag != "latest", f"{name}: {service['image']} is not pinned"
        if image in TEMPORAL_IMAGES:
            assert re.match(r"^\d+\.\d+\.\d+", tag), f"{name}: {tag} is not a release tag"
            versions[image] = tag
    assert set(versions) == set(TEMPORAL_IMAGES)
    server = versions["temporalio/server"]
    assert versions["temporalio/admin-tools"].startswith(f"{server}-") or (
        versions["temporalio/admin-tools"] == server
    )
    assert not any(s["image"].startswith("temporalio/auto-setup") for s in services().values())


def test_server_runs_with_mounted_dynamic_config() -> None:
    path = env_of("temporal")["DYNAMIC_CONFIG_FILE_PATH"]
    host_dir = next(h for h, t in mounts("temporal") if t == "/etc/temporal/config/dynamicconfig")
    dynamic = yaml.safe_load((host_dir / Path(path).name).read_text())
    assert isinstance(dynamic, dict) and "limit.maxIDLength" in dynamic


def test_healthchecks_use_the_temporal_cli_never_tctl() -> None:
    test = services()["temporal"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "temporal"] and "health" in test
    for name, service in services().items():
        check = " ".join(service.get("healthcheck", {}).get("test", []))
        assert "tctl" not in check, f"{name} health-checks with tctl"
    for script in SCRIPTS.iterdir():
        assert not re.search(r"^\s*tctl\b|[;&|]\s*tctl\b", script.read_text(), re.M), script


def test_temporal_connects_as_the_user_mysql_creates_not_root() -> None:
    mysql = env_of("mysql")
    user = mysql["MYSQL_USER"]
    assert user and user != "root"
    assert "MYSQL_ROOT_PASSWORD" not in mysql  # root's password is random and unused
    assert env_of("temporal")["MYSQL_USER"] == user
    assert env_of("temporal-schema")["SQL_USER"] == user
    assert env_of("temporal")["MYSQL_PWD"] == mysql["MYSQL_PASSWORD"]


def test_namespace_job_registers_exactly_meridians_search_attributes() -> None:
    job = env_of("temporal-create-namespace")
    pairs = dict(p.split("=", 1) for p in job["MERIDIAN_SEARCH_ATTRIBUTES"].split())
    assert sorted(pairs) == sorted(SEARCH_ATTRIBUTES)
    assert set(pairs.values()) == {"Keyword"}
    script = (SCRIPTS / "create-namespace.sh").read_text()
    assert "$MERIDIAN_SEARCH_ATTRIBUTES" in script
    assert "temporal operator search-attribute create" in script
    assert "temporal operator namespace create" in script


def test_bind_mounts_point_at_files_in_the_repo() -> None:
    for name in services():
        for host, _ in mounts(name):
            assert host.exists(), f"{name}: {host} does not exist"
