"""What the fleet root's `terraform output -json` says about each region."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RegionOutputs(BaseModel):
    """One entry of the fleet root's `regions` output (infra/terraform/fleet/outputs.tf)."""

    model_config = ConfigDict(extra="allow")

    cluster_name: str | None = None
    cluster_endpoint: str
    cluster_ca_certificate: str  # base64 PEM, as kubeconfig's certificate-authority-data
    node_pool_ids: dict[str, str] = Field(default_factory=dict)
    unit_worker_identity: Any = None


def load_outputs(path: Path | str) -> dict[str, RegionOutputs]:
    """Region name => outputs, from `terraform output -json` of the fleet root (or just its
    `regions` value)."""
    data = json.loads(Path(path).read_text())
    regions = data.get("regions", data) if isinstance(data, dict) else None
    if isinstance(regions, dict) and "value" in regions and "type" in regions:
        regions = regions["value"]  # `terraform output -json` wraps each output
    if not isinstance(regions, dict):
        raise ValueError(f"{path}: no `regions` output (terraform output -json of the fleet root)")
    return {name: RegionOutputs.model_validate(value) for name, value in sorted(regions.items())}
