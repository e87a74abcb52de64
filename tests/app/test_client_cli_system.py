"""Every `meridian task|region|placement` command against one real `meridian up`, as a
user runs them: a subprocess per command, the token and address from the environment,
output parsed as the format it claims, and the exit code checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.harness import task_body
from tests.integration.test_up import Up

pytestmark = pytest.mark.integration


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def yaml(self) -> Any:
        return yaml.safe_load(self.out)


class Cli:
    def __init__(self, up: Up) -> None:
        self.up = up
        token = (up.state_dir / "admin.token").read_text().strip()
        self.env = {
            **os.environ,
            "MERIDIAN_API_URL": up.api,
            "MERIDIAN_TOKEN": token,
            "COLUMNS": "80",
        }

    def __call__(self, *argv: str, stdin: str | None = None, **env: str) -> Result:
        done = subprocess.run(
            [sys.executable, "-m", "meridian.app.cli", *argv],
            input=stdin,
            capture_output=True,
            text=True,
            env={**self.env, **env},
            timeout=120,
        )
        return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    up = Up(tmp_path_factory.mktemp("cli") / "state")
    try:
        up.start()
        yield Cli(up)
    finally:
        if up.proc is not None and up.proc.poll() is None:
            up.stop()


def _fits(text: str) -> bool:
    return all(len(line) <= 80 for line in text.splitlines())


def _field(text: str, key: str) -> str:
    """The value on a `key:  value` line of a detail block."""
    for line in text.splitlines():
        if line.startswith(f"{key}:"):
            return line[len(key) + 1 :].strip()
    raise AssertionError(f"no {key!r} in:\n{text}")


def _file(tmp_path: Path, name: str, body: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(body) if name.endswith(".yaml") else json.dumps(body))
    return str(path)


def test_up_named_each_component_as_it_became_ready(cli: Cli) -> None:
    ready = [line.split()[1] for line in cli.up.output if line.endswith("s)\n")]
    assert {"temporal", "kubesim", "central-worker", "unit-workers", "api"} <= set(ready)


def test_submit_watch_and_read_a_task(cli: Cli, tmp_path: Path) -> None:
    path = _file(tmp_path, "task.yaml", task_body(id="cli-ok"))
    submitted = cli("task", "submit", "-f", path)
    assert submitted.code == 0, submitted.err
    assert _field(submitted.out, "id") == "cli-ok" and _fits(submitted.out)
    again = cli("task", "submit", "-f", path)
    assert again.code == 0 and "already existed" in again.err

    watched = cli("task", "get", "cli-ok", "--watch")
    assert watched.code == 0, watched.out + watched.err
    assert watched.out.splitlines()[-1].startswith("cli-ok SUCCEEDED in aws-us-east-1")
    assert "RUNNING" in watched.out and _fits(watched.out)

    task = cli("task", "get", "cli-ok", "-o", "yaml").yaml()
    assert (task["status"], task["region"]) == ("SUCCEEDED", "aws-us-east-1")
    events = cli("task", "events", "cli-ok", "-o", "json").json()["items"]
    assert [e["status"] for e in events][-1] == "SUCCEEDED"
    table = cli("task", "events", "cli-ok").out
    assert table.splitlines()[0].split() == ["TIME", "STATUS", "ATTEMPT", "REGION", "REASON"]
    assert _fits(table)

    placement = cli("task", "placement", "cli-ok", "-o", "json").json()
    assert placement["chosen"] == "aws-us-east-1"
    table = cli("task", "placement", "cli-ok").out
    assert _field(table, "chosen") == "aws-us-east-1"
    assert "CANDIDATE" in table and _fits(table)


def test_submit_from_stdin_as_json(cli: Cli) -> None:
    body = json.dumps(task_body(id="cli-stdin"))
    submitted = cli("task", "submit", "-f", "-", "-o", "json", stdin=body)
    assert submitted.code == 0, submitted.err
    assert submitted.json()["id"] == "cli-stdin"


def test_list_filters_and_follows_the_cursor(cli: Cli) -> None:
    for i in range(3):
        body = json.dumps(task_body(id=f"cli-list-{i}", start=False, kind="batch"))
        assert cli("task", "submit", "-f", "-", stdin=body).code == 0
    pending = cli("task", "list", "--status", "pending", "--business-unit", "ads", "-o", "json")
    assert pending.code == 0, pending.err
    ids = {t["id"] for t in pending.json()["items"]}
    assert {"cli-list-0", "cli-list-1", "cli-list-2"} <= ids
    # Cut at the limit (following next_cursor across pages: test_client_cli_unit.py).
    two = cli("task", "list", "--status", "PENDING", "--limit", "2", "-o", "yaml").yaml()
    assert len(two["items"]) == 2
    table = cli("task", "list", "--kind", "batch")
    assert table.code == 0 and _fits(table.out)
    assert table.out.splitlines()[0].split()[:5] == ["ID", "NAME", "UNIT", "KIND", "STATUS"]
    assert any(line.startswith("cli-list-1 ") for line in table.out.splitlines())


def test_start_patch_and_stop_with_a_reason(cli: Cli, tmp_path: Path) -> None:
    body = task_body(id="cli-long", start=False)
    body["job"]["annotations"] = {"kubesim.io/duration": "120s"}
    assert cli("task", "submit", "-f", _file(tmp_path, "long.json", body)).code == 0

    patch = _file(tmp_path, "patch.json", {"name": "renamed", "labels": {"team": "cli"}})
    patched = cli("task", "patch", "cli-long", "-f", patch, "-o", "json")
    assert patched.code == 0, patched.err
    assert patched.json()["name"] == "renamed"
    assert patched.json()["spec"]["labels"] == {"team": "cli"}

    started = cli("task", "start", "cli-long", "-o", "json")
    assert started.code == 0, started.err
    assert started.json()["status"] in ("SCHEDULING", "RUNNING")
    again = cli("task", "start", "cli-long")
    assert again.code == 1 and "409 Conflict" in again.err

    stopped = cli("task", "stop", "cli-long", "--reason", "the CLI test is done with it")
    assert stopped.code == 0, stopped.err
    assert _field(stopped.out, "status") == "STOPPED"
    events = cli("task", "events", "cli-long", "-o", "json").json()["items"]
    assert events[-1]["reason"] == "the CLI test is done with it"
    watched = cli("task", "get", "cli-long", "--watch", "-o", "json")
    assert watched.code == 4
    assert json.loads(watched.out.splitlines()[-1])["status"] == "STOPPED"


def test_a_failed_task_is_watched_to_exit_3(cli: Cli) -> None:
    body = task_body(id="cli-fails", retry={"max_attempts": 1})
    body["job"]["annotations"] = {"kubesim.io/duration": "1s", "kubesim.io/exit-code": "3"}
    assert cli("task", "submit", "-f", "-", stdin=json.dumps(body)).code == 0
    watched = cli("task", "get", "cli-fails", "-w")
    assert watched.code == 3, watched.out + watched.err
    assert "cli-fails FAILED" in watched.out.splitlines()[-1]


def test_regions(cli: Cli) -> None:
    listed = cli("region", "list", "-o", "json")
    assert listed.code == 0, listed.err
    names = [r["name"] for r in listed.json()["items"]]
    assert "aws-us-east-1" in names
    table = cli("region", "list").out
    assert table.splitlines()[0].split() == [
        "NAME",
        "PROVIDER",
        "LOCATION",
        "STATE",
        "WATER",
        "NODES",
        "POLLERS",
    ]
    assert len(table.splitlines()) == len(names) + 1 and _fits(table)
    one = cli("region", "get", "aws-us-east-1")
    assert one.code == 0 and _field(one.out, "name") == "aws-us-east-1"
    assert "POOL" in one.out and _fits(one.out)
    assert cli("region", "get", "aws-us-east-1", "-o", "yaml").yaml()["name"] == "aws-us-east-1"
    missing = cli("region", "get", "mars-1")
    assert missing.code == 1 and "404 Not Found" in missing.err


def test_placement_dry_run(cli: Cli, tmp_path: Path) -> None:
    body = task_body(data_source={"provider": "azure", "region": "eastus"})
    path = _file(tmp_path, "task.yaml", body)
    decision = cli("placement", "dry-run", "-f", path, "-o", "json")
    assert decision.code == 0, decision.err
    assert decision.json()["chosen"] == "azure-eastus"
    table = cli("placement", "dry-run", "-f", path).out
    assert _field(table, "chosen") == "azure-eastus" and _fits(table)
    # Nothing was created under the id a dry run places as.
    assert cli("task", "get", "dry-run").code == 1


def test_errors_and_exit_codes(cli: Cli, tmp_path: Path) -> None:
    missing = cli("task", "get", "no-such-task")
    assert (missing.code, missing.out) == (1, "")
    assert missing.err.strip() == "meridian: 404 Not Found: task not found"

    bad = task_body(id="cli-bad")
    bad["job"]["image"] = ""
    bad["job"]["resources"] = {"cpu": "lots"}
    refused = cli("task", "submit", "-f", _file(tmp_path, "bad.yaml", bad))
    assert refused.code == 1
    lines = refused.err.splitlines()
    assert lines[0] == "meridian: 422 Unprocessable Entity:"
    assert any(line.startswith("  job.image: ") for line in lines), refused.err
    assert any(line.startswith("  job.resources.cpu: ") for line in lines), refused.err

    anonymous = cli("region", "list", MERIDIAN_TOKEN="")
    assert anonymous.code == 1 and "401 Unauthorized" in anonymous.err
    assert "MERIDIAN_TOKEN" in anonymous.err

    assert cli("task", "list", "--limit", "0").code == 2
    assert cli("task", "frobnicate").code == 2
    assert cli("task", "submit", "-f", str(tmp_path / "absent.yaml")).code == 2

    unreachable = cli("region", "list", MERIDIAN_API_URL="http://127.0.0.1:9")
    assert unreachable.code == 1 and "cannot reach the Meridian API" in unreachable.err
