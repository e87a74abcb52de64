"""HTTP servers: one Kubernetes API server per region, plus the control API."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from kubesim import routes
from kubesim.cluster import Cluster
from kubesim.config import SimConfig
from kubesim.faults import fault_middleware
from kubesim.ipam import IpAllocator
from kubesim.state import DEFAULT_INTERVAL, StateKeeper, resume_rv, warn
from kubesim.watch import BOOKMARK_INTERVAL

log = logging.getLogger(__name__)

DEFAULT_BASE_PORT = 18100
MAX_BODY = 16 * 1024 * 1024


class RegionServer:
    """A region's API server; an outage closes its socket and every open connection."""

    def __init__(
        self, cluster: Cluster, host: str, port: int, bookmark_interval: float = BOOKMARK_INTERVAL
    ) -> None:
        self.cluster = cluster
        self.host = host
        self.port = port
        app = web.Application(
            middlewares=[fault_middleware(cluster.faults, cluster.stats)],
            client_max_size=MAX_BODY,
        )
        app["cluster"] = cluster
        app["bookmark_interval"] = bookmark_interval
        app.router.add_route("*", "/{tail:.*}", routes.handle)
        self.runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        self.site: web.TCPSite | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        await self.runner.setup()
        await self._bind()

    async def _bind(self) -> None:
        self.site = web.TCPSite(self.runner, self.host, self.port, reuse_address=True, backlog=1024)
        await self.site.start()

    def _abort_connections(self) -> None:
        server = self.runner.server
        connections: dict[Any, Any] = getattr(server, "_connections", {}) if server else {}
        for transport in list(connections.values()):
            if transport is not None:
                transport.abort()

    def drop_watches(self) -> int:
        watchers = self.cluster.store.all_watchers()
        for watcher in watchers:
            watcher.close(abort=True)
        return len(watchers)

    async def outage(self) -> None:
        if self.cluster.faults.outage:
            return
        self.cluster.faults.outage = True
        if self.site is not None:
            await self.site.stop()
            self.site = None
        self.drop_watches()
        # Give watch handlers a turn to cut their streams, then reset every connection
        # (idle keep-alive ones included) so clients see a dead server, not a slow one.
        await asyncio.sleep(0)
        self._abort_connections()
        await self.cluster.kubelet.pause()

    async def restore(self) -> None:
        if not self.cluster.faults.outage:
            return
        await self._bind()
        self.cluster.faults.outage = False
        await self.cluster.kubelet.resume()

    async def stop_http(self) -> None:
        self.drop_watches()
        await asyncio.sleep(0)
        self._abort_connections()
        await self.runner.cleanup()

    async def stop(self) -> None:
        await self.stop_http()
        await self.cluster.close()


class Simulator:
    def __init__(
        self,
        config: SimConfig,
        host: str = "127.0.0.1",
        base_port: int = DEFAULT_BASE_PORT,
        watch_window: int = 1000,
        bookmark_interval: float = BOOKMARK_INTERVAL,
        state_file: str | Path | None = None,
        state_interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.config = config
        self.host = host
        self.base_port = base_port
        self.watch_window = watch_window
        self.bookmark_interval = bookmark_interval
        # Pod addresses in a block of their own per base port: see IpAllocator.
        self.ips = IpAllocator(pod_block=base_port)
        self.clusters: dict[str, Cluster] = {}
        self.servers: dict[str, RegionServer] = {}
        for index in range(len(config.regions)):
            self._build_region(index)
        self.control_runner: web.AppRunner | None = None
        self.state = StateKeeper(self, state_file, state_interval) if state_file else None
        self.restored: dict[str, int] = {}  # region -> objects restored from the state file

    def _build_region(self, index: int) -> None:
        spec = self.config.regions[index]
        cluster = Cluster(
            spec,
            self.config.defaults,
            self.config.network,
            ips=self.ips,
            watch_window=self.watch_window,
        )
        self.clusters[spec.name] = cluster
        self.servers[spec.name] = RegionServer(
            cluster, self.host, self.base_port + 1 + index, self.bookmark_interval
        )

    @property
    def control_url(self) -> str:
        return f"http://{self.host}:{self.base_port}"

    def region_urls(self) -> dict[str, str]:
        return {name: server.url for name, server in self.servers.items()}

    async def start(self) -> None:
        from kubesim.control_api import build_control_app

        started, cpu = time.monotonic(), time.process_time()
        saved = self.state.load() if self.state is not None else None
        status_servers = []
        for index, spec in enumerate(self.config.regions):
            name = spec.name
            if saved is not None:
                region = saved["regions"][name]
                try:
                    status_servers += self.clusters[name].restore(region, resume_rv(saved, region))
                    self.restored[name] = sum(len(v) for v in region.get("objects", {}).values())
                except Exception as exc:  # a damaged snapshot: this region starts empty
                    log.exception("restoring %s", name)
                    warn(f"region {name} could not be restored ({exc!r}); starting it empty")
                    await self.clusters[name].close()
                    self._build_region(index)
                    self.clusters[name].bootstrap()
            else:
                self.clusters[name].bootstrap()
            await self.servers[name].start()
        # Resident pods' status endpoints answer again before kubesim reports ready.
        await asyncio.gather(*(server.start() for server in status_servers))
        if saved is not None:
            log.info(
                "restored %d objects in %.2fs (%.2fs CPU)",
                sum(self.restored.values()),
                time.monotonic() - started,
                time.process_time() - cpu,
            )
        self.control_runner = web.AppRunner(
            build_control_app(self), access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self.control_runner.setup()
        site = web.TCPSite(self.control_runner, self.host, self.base_port, reuse_address=True)
        await site.start()
        if self.state is not None:
            self.state.start()

    async def stop(self) -> None:
        # Stop serving first, then save (nothing can change what clients saw any more),
        # then stop the clusters' timers and resident endpoints.
        began = time.monotonic()
        if self.control_runner is not None:
            await self.control_runner.cleanup()
        log.info("stop: control api down after %.2fs", time.monotonic() - began)
        for server in self.servers.values():
            try:
                await server.stop_http()
            except Exception:  # shutting down: report and carry on with the rest
                log.exception("stopping %s", server.cluster.name)
        log.info("stop: region servers down after %.2fs", time.monotonic() - began)
        if self.state is not None:
            try:
                await self.state.stop()
            except Exception:
                log.exception("saving state to %s", self.state.path)
                warn(f"could not save state to {self.state.path}")
        log.info("stop: state saved after %.2fs", time.monotonic() - began)
        for cluster in self.clusters.values():
            try:
                await cluster.close()
            except Exception:
                log.exception("stopping %s", cluster.name)
        log.info("stop: clusters closed after %.2fs", time.monotonic() - began)
