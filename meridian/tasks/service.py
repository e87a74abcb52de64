"""What the REST API does to tasks: the database and Temporal, kept in agreement.

The task row is written first (so nothing submitted is ever lost), then its workflow is
started with the task key as workflow id: starting twice is harmless, so a client that
retries after a timeout converges on one task, one workflow and one Job.

The public id a unit chooses (or is given) is scoped to that unit; the key, derived from
both (meridian/tasks/keys.py), is unique across units. Every method but `submit` takes
the key: the API resolves a public id to its task first (api/tenancy.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
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

from meridian.regions.catalog import Catalog, UnknownRegionError
from meridian.regions.config import RegionsFile
from meridian.settings import PolicySettings, Settings
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
from meridian.tasks.keys import task_key
from meridian.tasks.policy import policy_errors, string_errors
from meridian.tasks.spec import FieldError, TaskPatch, TaskSpec, TaskStatus, limit_errors
from meridian.tasks.timing import WorkflowTiming
from meridian.tenancy.quotas import TaskTooLarge

STOP_WAIT_SECONDS = 10.0
NULL_FIELD = (
    "null is not accepted for a field: leave it out to keep the current value, or give "
    "the new one (null removes a key only inside env, annotations and labels)"
)


class TaskNotFound(Exception):
    pass


class TaskStateConflict(Exception):
    """The request does not fit the task's state (e.g. modifying a finished task)."""


class TemporalUnavailable(Exception):
    pass


class SpecInvalid(Exception):
    """The body is not acceptable. `errors` name every bad field, each shaped like one of
    pydantic's errors (`loc` is the path within the body), so that the API answers them
    the way it answers a body that does not fit the model: a 422 naming the field."""

    def __init__(self, errors: Sequence[Mapping[str, Any]]) -> None:
        self.errors = [dict(error) for error in errors]
        super().__init__(
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in self.errors)
        )

    @classmethod
    def of(cls, errors: Sequence[FieldError]) -> SpecInvalid:
        return cls([{"loc": e.loc, "msg": e.msg, "type": e.type} for e in errors])


def check_spec(
    spec: TaskSpec,
    catalog: Catalog,
    regions: RegionsFile,
    *,
    policy: PolicySettings,
    before: TaskSpec | None = None,
) -> None:
    """What a task body must satisfy beyond its model; the one check behind submit, modify
    and the placement dry run. Its lists, maps and items within their bounds
    (`limit_errors`), no control characters in its strings, a data source the catalog
    knows, placement names this deployment has, and the policy (meridian/tasks/policy.py:
    registries, sizes, annotations). Raises SpecInvalid naming every bad field.

    With `before` (a modify), the data source and placement are looked up only when they
    changed: a region removed from the deployment since does not freeze the task. So
    with the policy: a modify is refused only for a breach it brings, not for one the
    task already had under settings tightened since (its running Job has it anyway).
    """
    errors = limit_errors(spec) + string_errors(spec)
    # Names are looked up (and echoed in messages) only once they are of a sane size.
    if errors:
        raise SpecInvalid.of(errors)
    looked_up = before is None or (
        (spec.data_source, spec.placement) != (before.data_source, before.placement)
    )
    if looked_up:
        errors = catalog_errors(spec, catalog, regions)
    breaches = policy_errors(spec, policy, regions)
    if before is not None:
        had = set(policy_errors(before, policy, regions))
        breaches = [e for e in breaches if e not in had]
    errors += breaches
    if errors:
        raise SpecInvalid.of(errors)


def catalog_errors(spec: TaskSpec, catalog: Catalog, regions: RegionsFile) -> list[FieldError]:
    errors: list[FieldError] = []
    try:
        catalog.require(spec.data_source.provider, spec.data_source.region)
    except UnknownRegionError as exc:
        errors.append(_value_error(("data_source", "region"), str(exc)))
    known = set(regions.names)
    listing = ", ".join(sorted(known))
    constraints = spec.placement
    if constraints.region is not None and constraints.region not in known:
        msg = f"unknown region {constraints.region!r}; known: {listing}"
        errors.append(_value_error(("placement", "region"), msg))
    for i, name in enumerate(constraints.regions):
        if name not in known:
            msg = f"unknown region {name!r}; known: {listing}"
            errors.append(_value_error(("placement", "regions", i), msg))
    providers = {p.value for p in constraints.providers} | {
        r.provider.value for r in regions.regions
    }
    for i, tier in enumerate(constraints.preferences):
        for j, name in enumerate(tier):
            if name not in known and name not in providers:
                msg = f"{name!r} is neither a region nor a provider of this deployment"
                errors.append(_value_error(("placement", "preferences", i, j), msg))
    return errors


def _value_error(loc: tuple[str | int, ...], msg: str) -> FieldError:
    return FieldError(loc=loc, msg=msg, type="value_error")


def new_task_id() -> str:
    return f"t-{uuid.uuid4().hex[:16]}"


def timing_from(settings: Settings) -> WorkflowTiming:
    return WorkflowTiming(
        backstop_seconds=settings.status_backstop_seconds,
        backstop_max_seconds=max(
            settings.status_backstop_seconds, settings.status_backstop_max_seconds
        ),
        region_call_seconds=max(5.0, settings.failover.region_grace_seconds),
        unschedulable_seconds=settings.failover.unschedulable_seconds,
        create_resend_seconds=settings.failover.create_resend_seconds,
        history_event_limit=settings.history_event_limit,
        settled_history_events=settings.settled_history_events,
    )


async def start_task_workflow(
    client: Client, settings: Settings, task_id: str, spec: TaskSpec
) -> bool:
    """Start the workflow of the task whose key is `task_id` (the workflow id), or find it
    running: safe to call any number of times. Its MeridianBusinessUnit search attribute
    is what the Temporal UI filters a unit's tasks by.

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


def _not_pending(task: TaskRecord) -> TaskStateConflict:
    return TaskStateConflict(f"task is {task.status.value}; only a PENDING task can be started")


def _user_transition(task_id: str, key: str, status: TaskStatus, reason: str) -> Transition:
    """The one transition a user's request makes: out of PENDING, before any workflow."""
    return Transition(
        task_id=task_id,
        event_key=key,
        seq=0,
        status=status,
        attempt=0,
        at=datetime.now(UTC),
        reason=reason,
    )


class TaskService:
    def __init__(
        self,
        store: Store,
        client: Client,
        settings: Settings,
        catalog: Catalog,
        regions: RegionsFile,
    ):
        self.store = store
        self.client = client
        self.settings = settings
        self.catalog = catalog
        self.regions = regions

    async def submit(
        self, spec: TaskSpec, *, task_id: str | None, start: bool, idempotency_key: str | None
    ) -> tuple[TaskRecord, bool]:
        """Create (or find) the task and start it; (task, created). `task_id` is the
        public id, within the spec's business unit (generated when None).

        Raises SpecInvalid, storing nothing, when the spec fails `check_spec` or the task
        alone asks for more than its unit's quotas; QuotaExceeded (from
        meridian.tenancy.quotas), storing nothing, when the unit is at a quota. A task
        that exists already is found, never refused by a quota.
        """
        check_spec(spec, self.catalog, self.regions, policy=self.settings.policy)
        unit = spec.business_unit
        if task_id is None and idempotency_key:
            existing = await asyncio.to_thread(
                self.store.get_by_idempotency_key, unit, idempotency_key
            )
            task_id = existing.public_id if existing is not None else None
        public_id = task_id or new_task_id()
        status = TaskStatus.SCHEDULING if start else TaskStatus.PENDING
        try:
            outcome = await asyncio.to_thread(
                self.store.create_task_within_quota,
                task_key(unit, public_id),
                spec,
                status=status,
                public_id=public_id,
                idempotency_key=idempotency_key,
                quotas=self.settings.quotas,
            )
        except TaskTooLarge as exc:
            raise SpecInvalid(
                [{"loc": e.loc, "msg": e.msg, "type": "value_error"} for e in exc.errors]
            ) from exc
        task = outcome.task
        if task.status is not TaskStatus.PENDING and not task.status.is_terminal:
            # Also on a repeated submit: the first one may have died before starting it.
            await self._start_workflow(task.id, task.spec)
        return task, outcome.created

    async def start(self, task_id: str) -> TaskRecord:
        task = await self.get(task_id)
        if task.status is not TaskStatus.PENDING:
            raise _not_pending(task)
        # Only the request whose write moves the task out of PENDING acts on it: a stop
        # that landed since the read above left the task STOPPED, and it stays so. The
        # same write checks the unit's active-task quotas (QuotaExceeded: still PENDING).
        try:
            moved = await asyncio.to_thread(
                self.store.start_within_quota,
                _user_transition(task_id, "start", TaskStatus.SCHEDULING, "started by user"),
                quotas=self.settings.quotas,
            )
        except TaskTooLarge as exc:
            raise TaskStateConflict(f"{exc}; modify the task to fit, then start it") from exc
        task = await self.get(task_id)
        if not moved:
            raise _not_pending(task)
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
            stopped = await asyncio.to_thread(
                self.store.transition_from,
                TaskStatus.PENDING,
                _user_transition(task_id, "stop-pending", TaskStatus.STOPPED, reason),
            )
            task = await self.get(task_id)
            if stopped or task.status.is_terminal:
                return task
            # A start won the race: its workflow runs (or is about to), so stop that.
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
        """Merge `patch` into the task. Raises SpecInvalid when the patch gives a field as
        null or the merged spec fails the model or `check_spec`."""
        nulls = patch.null_fields()
        if nulls:
            raise SpecInvalid(
                [
                    {"type": "value_error", "loc": loc, "msg": NULL_FIELD, "input": None}
                    for loc in nulls
                ]
            )
        task = await self.get(task_id)
        if task.status.is_terminal:
            raise TaskStateConflict(
                f"task is {task.status.value}; a finished task cannot be modified"
            )
        merged = self._patched(task.spec, patch)
        if task.status is TaskStatus.PENDING:
            await asyncio.to_thread(self.store.update_spec, task_id, merged)
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

    def _patched(self, spec: TaskSpec, patch: TaskPatch) -> TaskSpec:
        try:
            merged = patch.apply_to(spec)
        except ValidationError as exc:
            raise SpecInvalid(exc.errors(include_url=False)) from exc
        check_spec(merged, self.catalog, self.regions, policy=self.settings.policy, before=spec)
        return merged
