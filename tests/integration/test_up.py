"""`meridian up` as a user runs it: start, use over HTTP, restart mid-task, stop."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from kubesim.process import find_free_base_port
from tests.integration.harness import task_body
from tests.support import admin_headers

MERIDIAN = str(Path(sys.executable).parent / "meridian")


class Up:
    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        # One block below the ephemeral range: the second `meridian up` reuses these ports,
        # and a port from bind(0) may meanwhile go to some outgoing connection.
        base = find_free_base_port(24)
        self.ports = {"api": base, "temporal": base + 1, "ui": base + 2, "kubesim": base + 4}
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    @property
    def headers(self) -> dict[str, str]:
        return admin_headers(self.state_dir)

    def start(self, timeout: float = 120.0) -> float:
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                MERIDIAN,
                "up",
                "--state-dir",
                str(self.state_dir),
                "--api-port",
                str(self.ports["api"]),
                "--temporal-port",
                str(self.ports["temporal"]),
                "--ui-port",
                str(self.ports["ui"]),
                "--kubesim-base-port",
                str(self.ports["kubesim"]),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        stdout = self.proc.stdout

        def pump() -> None:
            # A thread, not select(): the text wrapper buffers lines select() cannot see.
            for line in stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        while time.monotonic() - started < timeout:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.output.append(line)
            if line.startswith("meridian ready"):
                return time.monotonic() - started
        raise AssertionError("meridian up did not get ready:\n" + "".join(self.output))

    def children(self) -> list[psutil.Process]:
        assert self.proc is not None
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> float:
        assert self.proc is not None
        children = self.children()
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        took = time.monotonic() - started
        _, alive = psutil.wait_procs(children, timeout=2)
        assert not alive, f"left behind: {alive}"
        return took


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    instance = Up(tmp_path / "state")
    yield instance
    if instance.proc is not None and instance.proc.poll() is None:
        for child in instance.children():
            child.kill()
        instance.proc.kill()


def wait_status(up: Up, task_id: str, *statuses: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    task: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = httpx.get(f"{up.api}/v1/tasks/{task_id}", timeout=10, headers=up.headers)
        if response.status_code == 200:
            task = response.json()
            if task["status"] in statuses:
                return task
        time.sleep(0.3)
    raise AssertionError(f"{task_id} not {statuses}: {task}")


def _client_addr(response: httpx.Response) -> Any:
    return response.extensions["network_stream"].get_extra_info("client_addr")


def test_up_serves_resumes_and_stops_cleanly(up: Up) -> None:
    up.start()
    assert any("Temporal Web UI" in line for line in up.output)
    assert (up.state_dir / "kubeconfig").exists()
    assert (up.state_dir / "kubesim.json").exists()
    assert httpx.get(f"{up.api}/readyz", timeout=5).status_code == 200
    # Everything under /v1 needs the token `meridian up` wrote (and printed where).
    assert any("admin token" in line and "admin.token" in line for line in up.output)
    refused = httpx.get(f"{up.api}/v1/tasks", timeout=5)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert httpx.get(f"{up.api}/v1/tasks", timeout=5, headers=up.headers).status_code == 200

    # A pooled connection left idle past a client's usual 5 s is still open: the API must
    # not be the side that closes first (a request sent as it closes would be reset).
    pooled = httpx.Client(base_url=up.api, limits=httpx.Limits(keepalive_expiry=60))
    first = _client_addr(pooled.get("/healthz"))
    idle_since = time.monotonic()

    quick = task_body(id="up-quick")
    assert (
        httpx.post(f"{up.api}/v1/tasks", json=quick, timeout=30, headers=up.headers).status_code
        == 201
    )
    assert wait_status(up, "up-quick", "SUCCEEDED")["region"] == "aws-us-east-1"

    time.sleep(max(0.0, 6.5 - (time.monotonic() - idle_since)))
    second = _client_addr(pooled.get("/healthz"))
    pooled.close()
    assert second == first, "the API closed an idle connection"

    # A task that outlives the first `meridian up`.
    slow = task_body(id="up-slow")
    slow["job"]["annotations"] = {"kubesim.io/duration": "8s"}
    assert (
        httpx.post(f"{up.api}/v1/tasks", json=slow, timeout=30, headers=up.headers).status_code
        == 201
    )
    wait_status(up, "up-slow", "RUNNING")
    took = up.stop()
    assert took < 10.0, f"stop took {took:.1f}s"

    # Same state directory: the task resumes where it was — its Job kept its place in
    # the cluster (kubesim's state file), so the same attempt completes, no second Job.
    up.start()
    done = wait_status(up, "up-slow", "SUCCEEDED", timeout=120)
    assert done["attempt"] == 1
    assert (
        httpx.get(f"{up.api}/v1/tasks/up-quick", timeout=10, headers=up.headers).json()["status"]
        == "SUCCEEDED"
    )
    took = up.stop()
    assert took < 10.0, f"stop took {took:.1f}s"
