"""The Temporal Web UI of a real `meridian up` shows a task's input decoded: Debian's
Chromium, headless and driven over the DevTools protocol, opens the task's workflow
page, and the page reads the task's name and id, which Temporal's history holds only
encrypted (the UI decodes through the API's /codec endpoint).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import websockets
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from meridian.tasks.contracts import SA_BUSINESS_UNIT
from tests.integration.harness import task_body
from tests.integration.test_up import Up

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
# How long the Web UI may take to show the decoded input.
PAGE_SECONDS = 60
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",  # any free port; DevToolsActivePort names it
]


class DevTools:
    """The few DevTools protocol commands the test needs, over one browser connection
    (flat sessions: a page's commands carry its sessionId)."""

    def __init__(self, socket: websockets.ClientConnection) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    async def send(self, method: str, session: str | None = None, **params: Any) -> Any:
        message_id = next(self.ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self.socket.send(json.dumps(message))
        while True:  # events arrive in between; the test polls the page instead
            answer = json.loads(await self.socket.recv())
            if answer.get("id") == message_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    async def open_page(self, url: str) -> str:
        target = await self.send("Target.createTarget", url="about:blank")
        attached = await self.send(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        session: str = attached["sessionId"]
        await self.send("Page.enable", session)
        await self.send("Page.navigate", session, url=url)
        return session

    async def page_text(self, session: str) -> str:
        result = await self.send(
            "Runtime.evaluate",
            session,
            expression="document.body ? document.body.innerText : ''",
            returnByValue=True,
        )
        return str(result.get("result", {}).get("value") or "")


@asynccontextmanager
async def chromium(workdir: Path) -> AsyncIterator[DevTools]:
    """Headless Chromium with a throw-away profile; its log goes to workdir/chromium.log."""
    profile = workdir / "profile"
    log = workdir / "chromium.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = await _devtools_url(proc, profile, log)
        async with websockets.connect(url, max_size=None) as socket:
            yield DevTools(socket)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _devtools_url(proc: subprocess.Popen[bytes], profile: Path, log: Path) -> str:
    """The browser's DevTools endpoint, from the file Chromium writes once it listens:
    its port, then its path."""
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"Chromium exited ({proc.returncode}):\n{log.read_text()}")
        lines = active.read_text().split() if active.exists() else []
        if len(lines) == 2:
            return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        await asyncio.sleep(0.1)
    raise AssertionError(f"Chromium did not listen within 60 s:\n{log.read_text()}")


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    instance = Up(tmp_path / "state")
    yield instance
    if instance.proc is not None and instance.proc.poll() is None:
        instance.stop()


async def workflow_of(client: Client, business_unit: str) -> str:
    """The id of the one workflow of `business_unit` (a unit made for this test), found
    the way an operator filters the Web UI, whatever the id is derived from."""
    query = f"{SA_BUSINESS_UNIT} = '{business_unit}'"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [w.id async for w in client.list_workflows(query)]
        if found:
            (workflow_id,) = found
            return workflow_id
        await asyncio.sleep(0.5)
    raise AssertionError(f"no workflow has {query}")


async def raw_history(client: Client, workflow_id: str) -> list[HistoryEvent]:
    """The workflow's history as Temporal stores it, read without the codec."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return list(history.events)


async def wait_for_text(devtools: DevTools, session: str, *wanted: str) -> str:
    deadline = time.monotonic() + PAGE_SECONDS
    text = ""
    while time.monotonic() < deadline:
        text = await devtools.page_text(session)
        if all(w in text for w in wanted):
            return text
        await asyncio.sleep(0.5)
    raise AssertionError(f"the page never showed {wanted}; it reads:\n{text}")


async def test_the_web_ui_shows_a_tasks_input_decoded(up: Up, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: Debian's chromium package (.ci/run installs it)")
    await asyncio.to_thread(up.start)
    unit = f"ui-{uuid.uuid4().hex[:8]}"
    body = task_body(name=f"decoded-{unit}", business_unit=unit)
    async with httpx.AsyncClient(base_url=up.api, headers=up.headers, timeout=30) as api:
        submitted = await api.post("/v1/tasks", json=body)
    assert submitted.status_code == 201, submitted.text
    # The workflow's input names the task by its key (`<unit>.<id>`, the workflow id).
    task_key = submitted.json()["workflow_id"]

    # What Temporal holds, read without the codec: the input is there, encrypted.
    temporal = await Client.connect(f"127.0.0.1:{up.ports['temporal']}", namespace="default")
    workflow_id = await workflow_of(temporal, unit)
    events = await raw_history(temporal, workflow_id)
    started = events[0].workflow_execution_started_event_attributes
    assert [p.metadata["encoding"] for p in started.input.payloads] == [b"binary/encrypted"]
    stored = b"".join(event.SerializeToString() for event in events)
    assert body["name"].encode() not in stored

    # The UI's page for that workflow: it shows the input through the codec endpoint.
    page = f"http://127.0.0.1:{up.ports['ui']}/namespaces/default/workflows/{quote(workflow_id)}"
    async with chromium(tmp_path) as devtools:
        session = await devtools.open_page(page)
        text = await wait_for_text(devtools, session, body["name"], f'"task_id": "{task_key}"')
    assert "Input" in text
