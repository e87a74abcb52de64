"""Start kubesim as a real subprocess (for tests, benchmarks and ``meridian up``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

READY_LINE = "kubesim ready"


def _ports_free(host: str, ports: range) -> bool:
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def _ephemeral_low(default: int = 32768) -> int:
    """The lowest port the kernel hands out for outgoing connections and bind(0)."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text(encoding="ascii")
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return default


def find_free_base_port(
    count: int, host: str = "127.0.0.1", start: int = 20000, stop: int | None = None
) -> int:
    """A base port such that base..base+count are all free right now.

    By default the search stays below the kernel's ephemeral range: a port there that is
    free now can be taken a moment later by any outgoing connection or ``bind(0)``, and a
    process started on it then fails with "address in use".
    """
    if stop is None:
        stop = _ephemeral_low()
        if stop - start < 10 * (count + 1):
            stop = 60000
    # Start from a pid-dependent offset so that parallel test runs rarely collide.
    span = stop - start
    offset = (os.getpid() * 97) % span
    for attempt in range(0, span, count + 1):
        base = start + (offset + attempt) % span
        if base + count < stop and _ports_free(host, range(base, base + count + 1)):
            return base
    raise RuntimeError("no free port range for kubesim")


def _count_regions(regions_file: Path) -> int:
    import yaml

    data = yaml.safe_load(regions_file.read_text(encoding="utf-8")) or {}
    return len(data.get("regions") or [])


class KubesimProcess:
    """A running kubesim; ``stop()`` (or leaving the ``with`` block) ends it."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        state_dir: Path,
        info: dict[str, object],
        log_path: Path,
    ) -> None:
        self.process = process
        self.state_dir = state_dir
        self.log_path = log_path
        self.kubeconfig = str(state_dir / "kubeconfig")
        self.control_url = str(info["control_url"])
        regions = info["regions"]
        assert isinstance(regions, dict)
        self.region_urls: dict[str, str] = {str(k): str(v) for k, v in regions.items()}

    @property
    def regions(self) -> list[str]:
        return list(self.region_urls)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return int(self.process.returncode)

    def __enter__(self) -> KubesimProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_kubesim(
    regions_file: str | Path,
    state_dir: str | Path,
    base_port: int | None = None,
    extra_args: list[str] | None = None,
    timeout: float = 30.0,
    host: str = "127.0.0.1",
    state_file: str | Path | None = None,
) -> KubesimProcess:
    """Spawn ``python -m kubesim``, wait for ``kubesim ready`` and read kubesim.json.

    With ``state_file`` kubesim restores its regions from that file if it exists and
    keeps it up to date (``--state-file``); a restart on the same file and ``base_port``
    resumes where the previous process stopped.
    """
    regions_path = Path(regions_file).resolve()
    state = Path(state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    if base_port is None:
        base_port = find_free_base_port(_count_regions(regions_path) + 1, host)
    kubeconfig = state / "kubeconfig"
    info_path = state / "kubesim.json"
    info_path.unlink(missing_ok=True)
    log_path = state / "kubesim.log"
    command = [
        sys.executable,
        "-m",
        "kubesim",
        "--regions",
        str(regions_path),
        "--kubeconfig",
        str(kubeconfig),
        "--host",
        host,
        "--base-port",
        str(base_port),
        *(["--state-file", str(Path(state_file).resolve())] if state_file else []),
        *(extra_args or []),
    ]
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child, closed below
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=state, env=env)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"kubesim exited with {process.returncode}: {log_path.read_text(errors='replace')}"
            )
        if READY_LINE in log_path.read_text(errors="replace") and info_path.exists():
            info = json.loads(info_path.read_text(encoding="utf-8"))
            return KubesimProcess(process, state, info, log_path)
        time.sleep(0.05)
    process.kill()
    process.wait()
    output = log_path.read_text(errors="replace")
    raise TimeoutError(f"kubesim not ready after {timeout}s: {output}")
