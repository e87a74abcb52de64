"""Through the real dev server: what Temporal stores of a task is ciphertext, the
workers read it, the codec server shows it, and histories recorded before encryption
still replay with the encrypting converter."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import httpx
from google.protobuf.json_format import MessageToDict
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker

from api.main import create_app
from meridian.security.codec import data_converter
from meridian.settings import Settings
from meridian.tasks.contracts import TaskWorkflowInput
from meridian.tasks.service import start_task_workflow
from meridian.temporal import connect
from tests.security.samples import new_key, task_input
from tests.support import local_key, token_headers
from tests.workflows.test_replay import HISTORIES, WORKFLOWS
from workers.central import SANDBOX


@workflow.defn(name="SecurityEchoTask")
class EchoTask:
    @workflow.run
    async def run(self, given: TaskWorkflowInput) -> str:
        return given.task_id


def settings_for(env: WorkflowEnvironment, tmp_path: Path) -> Settings:
    local_key(tmp_path)
    return Settings(
        state_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path}/m.db",
        temporal_address=env.client.service_client.config.target_host,
        central_task_queue=f"security-{uuid.uuid4().hex[:8]}",  # polled by nobody
        codec={"keys": {"k1": new_key()}},
    )


async def raw_history(settings: Settings, workflow_id: str) -> WorkflowHistory:
    """The history as anyone with access to Temporal reads it: no codec."""
    plain = await Client.connect(settings.temporal_address)
    return await plain.get_workflow_handle(workflow_id).fetch_history()


async def test_a_started_task_is_ciphertext_in_history_and_the_codec_server_reads_it(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = settings_for(dev_env, tmp_path)
    client = await connect(settings)
    task_id = f"secret-{uuid.uuid4().hex[:8]}"
    spec = task_input().spec
    await start_task_workflow(client, settings, task_id, spec)
    try:
        history = await raw_history(settings, task_id)
        started = history.events[0].workflow_execution_started_event_attributes
        (payload,) = started.input.payloads
        assert payload.metadata["encoding"] == b"binary/encrypted"
        assert payload.metadata["encryption-key-id"] == b"k1"
        assert task_id.encode() not in payload.SerializeToString()
        assert b"hunter2" not in payload.SerializeToString()

        # What the Web UI sends for that event, and what it gets back.
        app = create_app(settings)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            answer = await http.post(
                "/codec/decode",
                json={"payloads": [MessageToDict(payload)]},
                headers=token_headers(tmp_path),
            )
        assert answer.status_code == 200, answer.text
        (shown,) = answer.json()["payloads"]
        assert base64.b64decode(shown["metadata"]["encoding"]) == b"json/plain"
        decoded = json.loads(base64.b64decode(shown["data"]))
        assert decoded["task_id"] == task_id
        assert decoded["spec"]["job"]["command"] == ["run", "--token", "hunter2"]
    finally:
        await client.get_workflow_handle(task_id).terminate("test over")


async def test_workers_read_encrypted_inputs_and_seal_their_results(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = settings_for(dev_env, tmp_path)
    client = await connect(settings)
    queue = settings.central_task_queue
    given = task_input().model_copy(update={"task_id": f"echo-{uuid.uuid4().hex[:8]}"})
    workflow_id = f"wf-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=queue, workflows=[EchoTask], workflow_runner=UnsandboxedWorkflowRunner()
    ):
        result = await client.execute_workflow(
            EchoTask.run, given, id=workflow_id, task_queue=queue
        )
    assert result == given.task_id
    history = await raw_history(settings, workflow_id)
    payloads: list[Payload] = [
        *history.events[0].workflow_execution_started_event_attributes.input.payloads,
        *history.events[-1].workflow_execution_completed_event_attributes.result.payloads,
    ]
    assert len(payloads) == 2
    for payload in payloads:
        assert payload.metadata["encoding"] == b"binary/encrypted"
        assert given.task_id.encode() not in payload.data


async def test_recorded_plain_histories_replay_with_the_encrypting_converter(
    tmp_path: Path,
) -> None:
    converter = data_converter(Settings(state_dir=tmp_path, codec={"keys": {"k1": new_key()}}))
    assert converter.payload_codec is not None
    replayer = Replayer(workflows=WORKFLOWS, workflow_runner=SANDBOX, data_converter=converter)
    for path in HISTORIES:
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        await replayer.replay_workflow(history)
