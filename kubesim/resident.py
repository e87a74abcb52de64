"""WebSocket status endpoints of resident pods: ``ws://<podIP>:<port>/status``."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from http import HTTPStatus

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

log = logging.getLogger(__name__)

STATES = ("healthy", "degraded", "failing", "silent")
HEARTBEAT_INTERVAL = 1.0


class StatusServer:
    """Sends ``{"state": ..., "ts": ...}`` every second; "silent" keeps the socket quiet."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.state = "healthy"
        self._server: Server | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            return
        try:
            self._server = await serve(
                self._serve, self.host, self.port, process_request=self._check_path
            )
        except OSError as exc:
            log.warning("status endpoint %s:%s not started: %s", self.host, self.port, exc)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    @staticmethod
    def _check_path(connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] != "/status":
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        return None

    async def _serve(self, websocket: ServerConnection) -> None:
        try:
            while True:
                if self.state != "silent":
                    await websocket.send(json.dumps({"state": self.state, "ts": time.time()}))
                await asyncio.sleep(HEARTBEAT_INTERVAL)
        except ConnectionClosed:
            return
