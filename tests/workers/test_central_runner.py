"""Which runner the central worker's workflows get: plain in production, sandboxed in
every test (tests/conftest.py), so the sandbox's run-time determinism checks see every
workflow run of the suite."""

from __future__ import annotations

from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from meridian.settings import Settings, WorkerSettings
from workers.central import workflow_runner


def test_production_runs_the_central_workflows_without_the_sandbox() -> None:
    assert WorkerSettings().central_sandbox is False
    settings = Settings(workers=WorkerSettings(central_sandbox=False))
    assert isinstance(workflow_runner(settings), UnsandboxedWorkflowRunner)


def test_the_suite_runs_every_central_workflow_sandboxed() -> None:
    # From the environment, as every worker the suite starts reads it.
    assert Settings().workers.central_sandbox is True
    assert isinstance(workflow_runner(Settings()), SandboxedWorkflowRunner)
