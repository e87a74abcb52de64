"""`meridian up` as a subprocess, for scenarios that kill the engine's own processes."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

from kubesim.process import find_free_base_port

MERIDIAN = str(Path(sys.executable).parent / "meridian")


class UpSystem:
    """One `meridian up` on free ports and its own state dir; restartable in place."""

    def __init__(self, state_dir: Path, database_url: str, env: dict[str, str]):
        self.state_dir = state_dir
        self.database_url = database_url
        self.env = {**os.environ, **env}
        # One block below the ephemeral range: a restart reuses these ports, and a port
        # from bind(0) may meanwhile go to some outgoing connection.
        base = find_free_base_port(24)
        self.api_port, self.temporal_port, self.ui_port = base, base + 1, base + 2
        self.kubesim_base_port = base + 4
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    def start(self, timeout: float = 120.0) -> float:
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                MERIDIAN,
                "up",
                "--state-dir",
                str(self.state_dir),
                "--database-url",
                self.database_url,
                "--api-port",
                str(self.api_port),
                "--temporal-port",
                str(self.temporal_port),
                "--ui-port",
                str(self.ui_port),
                "--kubesim-base-port",
                str(self.kubesim_base_port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        stdout = self.proc.stdout
        assert stdout is not None

        def pump() -> None:
            # Keep draining for the process's life: a full pipe would block the supervisor.
            for line in stdout:
                lines.put(line)
                self.output.append(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        while time.monotonic() - started < timeout:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            if line.startswith("meridian ready"):
                return time.monotonic() - started
        raise AssertionError("meridian up did not get ready:\n" + "".join(self.output))

    def children(self) -> list[psutil.Process]:
        if self.proc is None:
            return []
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def child(self, *needles: str) -> psutil.Process:
        """The one child whose command line contains every needle."""
        found = []
        for proc in self.children():
            try:
                cmdline = " ".join(proc.cmdline())
            except psutil.NoSuchProcess:
                continue
            if all(n in cmdline for n in needles):
                found.append(proc)
        assert len(found) == 1, f"expected one child with {needles}, found {found}"
        return found[0]

    def kill_child(self, *needles: str) -> int:
        """SIGKILL a child (no clean shutdown: the crash the engine must survive)."""
        proc = self.child(*needles)
        pid = proc.pid
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        return pid

    def wait_child_restarted(self, old_pid: int, *needles: str, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                proc = self.child(*needles)
                if proc.pid != old_pid:
                    return proc.pid
            except AssertionError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{needles} not restarted after {timeout:.0f}s")

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.api_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError("API not ready")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        children = self.children()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        _, alive = psutil.wait_procs(children, timeout=5)
        for proc in alive:
            proc.kill()
