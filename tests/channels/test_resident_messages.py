"""A resident channel outlives a pod's malformed messages: it says so and keeps reading.

The pod is a real WebSocket server on 127.0.0.1; the Kubernetes API and Temporal are
stand-ins at the channel's two edges (the pod lookup and the workflow handle).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from temporalio.client import Client
from websockets.asyncio.server import ServerConnection, serve

from meridian.channels.resident import ResidentChannels
from meridian.kube.contracts import JobObservation, JobPhase
from meridian.kube.gateway import JobGateway
from meridian.settings import FailoverSettings
from meridian.tasks.contracts import SIGNAL_RESIDENT_STATUS, ResidentStatus

GOOD = json.dumps({"state": "degraded", "ts": 1.0})


@dataclass
class _Pod:
    """A resident pod's status endpoint: sends `script` on each connection, then idles."""

    script: list[str | bytes]
    connections: int = 0
    port: int = 0

    async def serve(self, websocket: ServerConnection) -> None:
        self.connections += 1
        for message in self.script:
            await websocket.send(message)
        await websocket.wait_closed()


class _Api:
    """The pod lookup: one running pod on localhost."""

    def job_pods(self, region: str, namespace: str, job_name: str) -> list[dict[str, Any]]:
        return [{"status": {"phase": "Running", "podIP": "127.0.0.1"}}]


@dataclass
class _Temporal:
    """The workflow handle's signal, recorded."""

    signals: list[tuple[str, str, Any]] = field(default_factory=list)

    def get_workflow_handle(self, task_id: str) -> _Temporal._Handle:
        return _Temporal._Handle(self, task_id)

    @dataclass
    class _Handle:
        temporal: _Temporal
        task_id: str

        async def signal(self, name: str, arg: Any) -> None:
            self.temporal.signals.append((self.task_id, name, arg))


@pytest.fixture
async def pod() -> AsyncIterator[_Pod]:
    pod = _Pod(script=[])
    async with serve(pod.serve, "127.0.0.1", 0) as server:
        pod.port = server.sockets[0].getsockname()[1]
        yield pod


async def _statuses_after(pod: _Pod, want: int) -> list[ResidentStatus]:
    temporal = _Temporal()
    channels = ResidentChannels(
        cast(Client, temporal), cast(JobGateway, _Api()), "meridian", FailoverSettings()
    )
    obs = JobObservation(
        task_id="res-1",
        attempt=1,
        region="r1",
        job_name="res-1-a1",
        phase=JobPhase.RUNNING,
        status_port=pod.port,
    )
    channels.observe(obs)
    try:
        for _ in range(200):
            if len(temporal.signals) >= want:
                break
            await asyncio.sleep(0.02)
        assert channels.open_channels == 1, "the channel died"
    finally:
        await channels.close()
    assert {(task, name) for task, name, _ in temporal.signals} <= {
        ("res-1", SIGNAL_RESIDENT_STATUS)
    }
    return [arg for _, _, arg in temporal.signals]


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("not json at all", id="not-json"),
        pytest.param("[1, 2, 3]", id="json-array"),
        pytest.param('"healthy"', id="json-string"),
        pytest.param("null", id="json-null"),
        pytest.param('{"state": "exploded"}', id="unknown-state"),
        pytest.param('{"state": "suspect"}', id="channel-only-state"),
        pytest.param('{"state": 5}', id="state-a-number"),
        pytest.param('{"state": null}', id="state-null"),
        pytest.param('{"state": ["failing"]}', id="state-a-list"),
        pytest.param(b"\xff\xfe\x00garbage", id="binary-not-utf8"),
    ],
)
async def test_a_malformed_message_is_logged_and_the_next_good_one_still_signals(
    pod: _Pod, bad: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    pod.script = [bad, GOOD]
    with caplog.at_level(logging.WARNING, logger="meridian.channels.resident"):
        statuses = await _statuses_after(pod, want=1)
    assert [(s.attempt, s.state) for s in statuses] == [(1, "degraded")]
    assert pod.connections == 1  # read on, not reconnected
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "res-1-a1" in warnings[0].getMessage()


async def test_a_long_malformed_message_is_cut_short_in_the_log(
    pod: _Pod, caplog: pytest.LogCaptureFixture
) -> None:
    pod.script = ["x" * 100_000, json.dumps({"state": "failing"})]
    with caplog.at_level(logging.WARNING, logger="meridian.channels.resident"):
        statuses = await _statuses_after(pod, want=1)
    assert [s.state for s in statuses] == ["failing"]
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning.getMessage()) < 500


async def test_good_messages_between_bad_ones_all_signal(pod: _Pod) -> None:
    pod.script = [
        json.dumps({"state": "healthy"}),
        "{",
        json.dumps({"state": "degraded"}),
        json.dumps([{"state": "failing"}]),
        json.dumps({"ts": 2.0}),  # no state: a plain heartbeat, healthy as before
    ]
    statuses = await _statuses_after(pod, want=3)
    assert [s.state for s in statuses] == ["healthy", "degraded", "healthy"]
    assert pod.connections == 1


async def test_a_run_of_malformed_messages_warns_once(
    pod: _Pod, caplog: pytest.LogCaptureFixture
) -> None:
    # A pod that talks nonsense every heartbeat must not flood the log: one warning for
    # each run of bad messages, the rest at debug level.
    pod.script = ["bad 1", "bad 2", "bad 3", GOOD, "bad 4", json.dumps({"state": "failing"})]
    with caplog.at_level(logging.DEBUG, logger="meridian.channels.resident"):
        statuses = await _statuses_after(pod, want=2)
    assert [s.state for s in statuses] == ["degraded", "failing"]
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert [r.levelno for r in skipped] == [
        logging.WARNING,
        logging.DEBUG,
        logging.DEBUG,
        logging.WARNING,
    ]
