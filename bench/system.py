"""Start and stop a whole Meridian system exactly as `meridian up` does, on free ports.

The system is `python -m meridian.app.cli up` in a subprocess with its own temporary state
directory (SQLite file, kubeconfig, logs) or a throw-away MariaDB database; the bench
finds the Temporal server, kubesim, the workers and the API among its children.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench import report
from kubesim.process import find_free_base_port

REPO = Path(__file__).resolve().parent.parent
REGIONS_DIR = REPO / "infra" / "regions"
READY_LINE = "meridian ready"
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def region_count(regions_file: Path) -> int:
    import yaml

    return len((yaml.safe_load(regions_file.read_text()) or {}).get("regions") or [])


class ThrowAwayMariaDB:
    """A fresh database on the local MariaDB, dropped again when the bench ends."""

    def __init__(self) -> None:
        self.name = f"meridian_bench_{uuid.uuid4().hex[:10]}"

    def _run(self, sql: str) -> None:
        import pymysql

        conn = pymysql.connect(**MARIADB)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
            conn.commit()
        finally:
            conn.close()

    def create(self) -> str:
        self._run(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4")
        return f"mysql+pymysql://root@127.0.0.1:3306/{self.name}"

    def drop(self) -> None:
        self._run(f"DROP DATABASE IF EXISTS `{self.name}`")


@dataclass
class System:
    """One running `meridian up`; `start()` blocks until the API answers /readyz."""

    regions_file: Path
    database: str = "sqlite"
    env: dict[str, str] = field(default_factory=dict)
    state_dir: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="meridian-bench-"))
    )
    api_port: int = 0
    temporal_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    database_url: str = ""
    control_url: str = ""
    _mariadb: ThrowAwayMariaDB | None = None
    _children: dict[str, psutil.Process] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def api_headers(self) -> dict[str, str]:
        """The admin token `meridian up` wrote into the state dir."""
        return bearer_from_file(self.state_dir / "admin.token")

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "up.log"

    def start(self, timeout: float = 120.0, attempts: int = 3) -> System:
        """Start; on a failure (e.g. a port taken by another process meanwhile) try anew."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start(timeout)
            except RuntimeError:
                self.stop()
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> System:
        span = region_count(self.regions_file) + 1
        kubesim_base = find_free_base_port(span)
        ports: list[int] = []
        while len(ports) < 3:
            port = free_port()
            if not kubesim_base <= port <= kubesim_base + span and port not in ports:
                ports.append(port)
        self.api_port, self.temporal_port, ui_port = ports
        if self.database == "mariadb":
            self._mariadb = ThrowAwayMariaDB()
            self.database_url = self._mariadb.create()
        else:
            self.database_url = f"sqlite:///{self.state_dir / 'meridian.db'}"
        argv = [
            sys.executable,
            "-m",
            "meridian.app.cli",
            "up",
            "--state-dir",
            str(self.state_dir),
            "--regions-file",
            str(self.regions_file),
            "--database-url",
            self.database_url,
            "--api-port",
            str(self.api_port),
            "--temporal-port",
            str(self.temporal_port),
            "--ui-port",
            str(ui_port),
            "--kubesim-base-port",
            str(kubesim_base),
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO), **self.env}
        log = open(self.log_path, "wb")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"meridian up exited: {self.log_path.read_text()[-2000:]}")
            if READY_LINE in self.log_path.read_text(errors="replace"):
                break
            time.sleep(0.2)
        else:
            self.stop()
            raise TimeoutError(f"meridian up not ready after {timeout:.0f}s ({self.log_path})")
        info = json.loads((self.state_dir / "kubesim.json").read_text())
        self.control_url = str(info["control_url"])
        self._children = self._find_children()
        return self

    def _find_children(self) -> dict[str, psutil.Process]:
        assert self.process is not None
        roles: dict[str, psutil.Process] = {}
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                cmd = " ".join(child.cmdline())
            except psutil.Error:
                continue
            if "start-dev" in cmd:
                roles["temporal"] = child
            elif "-m kubesim" in cmd:
                roles["kubesim"] = child
            elif "--role central" in cmd:
                roles["central_worker"] = child
            elif "--role unit" in cmd:
                roles["unit_worker"] = child
            elif "meridian.app.cli api" in cmd:
                roles["api"] = child
        return roles

    @property
    def children(self) -> dict[str, psutil.Process]:
        return dict(self._children)

    def stop(self) -> None:
        """SIGTERM to `meridian up` (which stops its children); any straggler by its pid."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for child in self._children.values():
            try:
                if child.is_running():
                    child.kill()
            except psutil.Error:
                pass
        if self._mariadb is not None:
            self._mariadb.drop()
            self._mariadb = None

    def cleanup(self) -> None:
        # MERIDIAN_BENCH_KEEP=1 keeps the SQLite file and up.log to look into a run after.
        if os.environ.get("MERIDIAN_BENCH_KEEP"):
            report.say(f"bench: kept {self.state_dir}")
            return
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> System:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def temporal_version() -> str:
    from meridian.app.supervisor import find_temporal

    try:
        out = subprocess.run(
            [find_temporal(), "--version"], capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"


def bearer_from_file(path: Path) -> dict[str, str]:
    return {"Authorization": f"Bearer {path.read_text().strip()}"}


def cli_headers(token: str | None, state_dir: Path) -> dict[str, str]:
    """A bench CLI's token: `--token`, else $MERIDIAN_TOKEN, else the state dir's admin token."""
    token = token or os.environ.get("MERIDIAN_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    return bearer_from_file(state_dir / "admin.token")


def wait_regions_up(api_url: str, headers: dict[str, str], timeout: float = 60.0) -> list[str]:
    """Block until the region monitor reports every region up; their names."""
    import httpx

    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        items = httpx.get(f"{api_url}/v1/regions", timeout=5, headers=headers).json()["items"]
        states = {r["name"]: r["state"] for r in items}
        if states and all(s == "up" for s in states.values()):
            return sorted(states)
        time.sleep(0.3)
    raise TimeoutError(f"regions not up after {timeout:.0f}s: {states}")
