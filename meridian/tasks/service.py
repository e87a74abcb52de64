"""What the REST API does to tasks: the database and Temporal, kept in agreement.

The task row is written first (so nothing submitted is ever lost), then its workflow is
started with the task id as workflow id: starting twice is harmless, so a client that
retries after a timeout converges on one task, one workflow and one Job.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from meridian.regions.catalog import Catalog
from meridian.settings import Settings
from meridian.store import Store, Transition
from meridian.store.records import TaskRecord
from meridian.tasks.contracts import (
    SA_BUSINESS_UNIT,
    SA_KIND,
    SA_REGION,
    SA_STATUS,
    SIGNAL_STOP,
    TASK_WORKFLOW,
    UPDATE_MODIFY,
    ModifyInput,
    StopRequest,
    TaskWorkflowInput,
)
from meridian.tasks.spec import TaskPatch, TaskSpec, TaskStatus
from meridian.tasks.timing import WorkflowTiming

STOP_WAIT_SECONDS = 10.0


class TaskNotFound(Exception):
    pass


class TaskStateConflict(Exception):
    """The request does not fit the task's state (e.g. modifying a finished task)."""


class TemporalUnavailable(Exception):
    pass


def new_task_id() -> str:
    return f"t-{uuid.uuid4().hex[:16]}"


def timing_from(settings: Settings) -> WorkflowTiming:
    return WorkflowTiming(
        backstop_seconds=settings.status_backstop_seconds,
        region_call_seconds=max(5.0, settings.failover.region_grace_seconds),
        unschedulable_seconds=settings.failover.unschedulable_seconds,
        history_event_limit=settings.history_event_limit,
    )


async def start_task_workflow(
    client: Client, settings: Settings, task_id: str, spec: TaskSpec
) -> bool:
    """Start the task's workflow, or find it running: safe to call any number of times.

    False when a workflow with this id already ran and closed (it is not run again)."""
    attributes = TypedSearchAttributes(
        [
            SearchAttributePair(
                SearchAttributeKey.for_keyword(SA_STATUS), TaskStatus.SCHEDULING.value
            ),
            SearchAttributePair(SearchAttributeKey.for_keyword(SA_REGION), ""),
            SearchAttributePair(
                SearchAttributeKey.for_keyword(SA_BUSINESS_UNIT), spec.business_unit
            ),
            SearchAttributePair(SearchAttributeKey.for_keyword(SA_KIND), spec.kind.value),
        ]
    )
    try:
        await client.start_workflow(
            TASK_WORKFLOW,
            TaskWorkflowInput(task_id=task_id, spec=spec, timing=timing_from(settings)),
            id=task_id,
            task_queue=settings.central_task_queue,
            # One workflow per task id, ever: a finished task is not run again.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=attributes,
        )
    except WorkflowAlreadyStartedError:
        return False
    except RPCError as exc:
        raise TemporalUnavailable(str(exc)) from exc
    return True


class TaskService:
    def __init__(self, store: Store, client: Client, settings: Settings, catalog: Catalog):
        self.store = store
        self.client = client
        self.settings = settings
        self.catalog = catalog

    async def submit(
        self, spec: TaskSpec, *, task_id: str | None, start: bool, idempotency_key: str | None
    ) -> tuple[TaskRecord, bool]:
        """Create (or find) the task and start it; (task, created)."""
        if task_id is None and idempotency_key:
            existing = await asyncio.to_thread(self.store.get_by_idempotency_key, idempotency_key)
            task_id = existing.id if existing is not None else None
        task_id = task_id or new_task_id()
        status = TaskStatus.SCHEDULING if start else TaskStatus.PENDING
        outcome = await asyncio.to_thread(
            self.store.create_task, task_id, spec, status=status, idempotency_key=idempotency_key
        )
        task = outcome.task
        if task.status is not TaskStatus.PENDING and not task.status.is_terminal:
            # Also on a repeated submit: the first one may have died before starting it.
            await self._start_workflow(task.id, task.spec)
        return task, outcome.created

    async def start(self, task_id: str) -> TaskRecord:
        task = await self.get(task_id)
        if task.status is not TaskStatus.PENDING:
            raise TaskStateConflict(
                f"task is {task.status.value}; only a PENDING task can be started"
            )
        await asyncio.to_thread(
            self.store.record_transition,
            Transition(
                task_id=task_id,
                event_key="start",
                seq=0,
                status=TaskStatus.SCHEDULING,
                attempt=0,
                at=datetime.now(UTC),
                reason="started by user",
            ),
        )
        await self._start_workflow(task_id, task.spec)
        return await self.get(task_id)

    async def _start_workflow(self, task_id: str, spec: TaskSpec) -> None:
        await start_task_workflow(self.client, self.settings, task_id, spec)

    async def get(self, task_id: str) -> TaskRecord:
        task = await asyncio.to_thread(self.store.get_task, task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    async def stop(self, task_id: str, reason: str = "stopped by user") -> TaskRecord:
        task = await self.get(task_id)
        if task.status.is_terminal:
            return task  # idempotent
        if task.status is TaskStatus.PENDING:
            await asyncio.to_thread(
                self.store.record_transition,
                Transition(
                    task_id=task_id,
                    event_key="stop-pending",
                    seq=0,
                    status=TaskStatus.STOPPED,
                    attempt=0,
                    at=datetime.now(UTC),
                    reason=reason,
                ),
            )
            return await self.get(task_id)
        handle = self.client.get_workflow_handle(task_id)
        try:
            await handle.signal(SIGNAL_STOP, StopRequest(reason=reason))
        except RPCError as exc:
            raise TemporalUnavailable(str(exc)) from exc
        # Stop deletes the Job, records STOPPED, then the workflow closes: waiting for it
        # (bounded) lets the answer say STOPPED without polling the database.
        try:
            await asyncio.wait_for(handle.result(), timeout=STOP_WAIT_SECONDS)
        except (TimeoutError, WorkflowFailureError, RPCError):
            pass  # still stopping (the answer says so), or it had already failed/closed
        return await self.get(task_id)

    async def modify(self, task_id: str, patch: TaskPatch) -> TaskRecord:
        task = await self.get(task_id)
        if task.status.is_terminal:
            raise TaskStateConflict(
                f"task is {task.status.value}; a finished task cannot be modified"
            )
        patch.apply_to(task.spec)  # raises ValueError naming the field
        if task.status is TaskStatus.PENDING:
            await asyncio.to_thread(self.store.update_spec, task_id, patch.apply_to(task.spec))
            return await self.get(task_id)
        handle = self.client.get_workflow_handle(task_id)
        try:
            await handle.execute_update(UPDATE_MODIFY, ModifyInput(patch=patch))
        except WorkflowUpdateFailedError as exc:
            raise TaskStateConflict(str(exc.cause or exc)) from exc
        except RPCError as exc:
            # An update to a closed workflow: the task finished meanwhile.
            current = await self.get(task_id)
            if current.status.is_terminal:
                raise TaskStateConflict(
                    f"task is {current.status.value}; a finished task cannot be modified"
                ) from exc
            raise TemporalUnavailable(str(exc)) from exc
        return await self.get(task_id)
