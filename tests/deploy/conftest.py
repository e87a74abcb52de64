"""A one-region kubesim per test module, named like a fleet-15 region."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubesim.process import KubesimProcess, start_kubesim

from .support import FLEET

REGION = "aws-us-west-2"


@pytest.fixture(scope="module")
def sim_regions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fleet-15 cut down to one region."""
    regions = tmp_path_factory.mktemp("regions") / "regions.yaml"
    data = yaml.safe_load(FLEET.read_text())
    data["regions"] = [r for r in data["regions"] if r["name"] == REGION]
    data["network"] = []
    data["defaults"]["job_duration"] = "300ms"
    regions.write_text(yaml.safe_dump(data))
    return regions


@pytest.fixture(scope="module")
def kubesim(
    sim_regions: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KubesimProcess]:
    """Fresh per module: the RBAC test needs a cluster where the task namespace does not
    exist yet (the worker creates it), which the apply test would have created."""
    process = start_kubesim(sim_regions, tmp_path_factory.mktemp("kubesim"))
    yield process
    assert process.stop() == 0, process.log_path.read_text()
