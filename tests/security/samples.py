"""Keys, settings and a task for the security tests."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from meridian.settings import Settings
from meridian.tasks.contracts import TaskWorkflowInput
from meridian.tasks.spec import TaskSpec

TASK_ID = "nightly-etl-7f3a"


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def codec_settings(tmp_path: Path, **keys: str) -> Settings:
    """Settings whose codec has exactly `keys` (id=base64 key), first one encrypting."""
    return Settings(state_dir=tmp_path, codec={"keys": keys})


def task_input() -> TaskWorkflowInput:
    """A task whose command carries a secret-looking argument."""
    spec = TaskSpec.model_validate(
        {
            "name": "etl",
            "business_unit": "payments",
            "data_source": {"provider": "aws", "region": "us-east-1"},
            "job": {"image": "registry.example/etl:1.4", "command": ["run", "--token", "hunter2"]},
        }
    )
    return TaskWorkflowInput(task_id=TASK_ID, spec=spec)
