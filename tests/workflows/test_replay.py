"""Replay the checked-in histories: a change that breaks running workflows fails here.

Every workflow the central worker runs has at least one history, replayed with the same
sandbox runner and data converter as production. Re-record them (deliberately, after a
change meant to alter histories) with the scripts named in each recorder's docstring:
tests/workflows/record_histories.py, record_region_control.py, record_monitor_sweeps.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from meridian.regions.contracts import REGION_MONITOR_WORKFLOW
from meridian.scaling.contracts import REGION_CONTROL_WORKFLOW
from meridian.sweeps.contracts import JOB_SWEEP_WORKFLOW, RUNNING_SWEEP_WORKFLOW
from meridian.tasks.contracts import TASK_WORKFLOW
from workers.central import SANDBOX
from workflows.region_control import RegionControlWorkflow
from workflows.regions import RegionMonitorWorkflow
from workflows.sweeps import JobSweepWorkflow, RunningTaskSweepWorkflow
from workflows.task import TaskWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
WORKFLOWS = [
    TaskWorkflow,
    RegionMonitorWorkflow,
    RunningTaskSweepWorkflow,
    JobSweepWorkflow,
    RegionControlWorkflow,
]


def _workflow_type(path: Path) -> str:
    started = json.loads(path.read_text())["events"][0]
    return str(started["workflowExecutionStartedEventAttributes"]["workflowType"]["name"])


def test_histories_are_checked_in() -> None:
    names = {p.stem for p in HISTORIES}
    assert {
        "task_success",
        "task_retry_then_move",
        "task_resident_stopped",
        "task_settled_rollover",
        "task_settled_resumed",
        "region_control_rollover",
        "region_monitor_down_recover",
        "running_sweep_drift",
        "job_sweep_stale",
    } <= names


def test_every_workflow_has_a_history() -> None:
    recorded = {_workflow_type(p) for p in HISTORIES}
    assert recorded >= {
        TASK_WORKFLOW,
        REGION_MONITOR_WORKFLOW,
        RUNNING_SWEEP_WORKFLOW,
        JOB_SWEEP_WORKFLOW,
        REGION_CONTROL_WORKFLOW,
    }


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path) -> None:
    replayer = Replayer(
        workflows=WORKFLOWS,
        workflow_runner=SANDBOX,
        data_converter=pydantic_data_converter,
    )
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await replayer.replay_workflow(history)  # raises on any non-determinism
