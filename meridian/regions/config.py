"""The regions file: which regional clusters exist, shared with kubesim."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from meridian.regions.providers import Provider
from meridian.serverless.models import ServerlessConfig


class NodePoolConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = "general"
    count: Annotated[int, Field(ge=0)] = 3
    cpu: str = "8"
    memory: str = "32Gi"
    min: Annotated[int, Field(ge=0)] = 0
    max: Annotated[int, Field(ge=0)] = 10
    # Which adapter drives the pool: kubesim (default), eks, aks, gke, ack, tke, cce-baidu,
    # cce-huawei, idc. Cloud pools carry their provider ids in extra fields.
    driver: str = "kubesim"
    # What a node of the pool costs on demand per hour (in the region's serverless
    # currency when it declares one) and how long a new node takes to be Ready: what
    # growing the pool is weighed with against bursting. Unknown when not given.
    price_per_hour: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    boot_seconds: Annotated[float, Field(ge=0, le=3600, allow_inf_nan=False)] | None = None


class RegionConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    provider: Provider
    location: str
    role: str = "unit"
    node_pools: list[NodePoolConfig] = Field(default_factory=list)
    # Serverless pods the region can burst to (meridian.serverless); None: nodes only.
    serverless: ServerlessConfig | None = None

    @model_validator(mode="after")
    def _name_matches(self) -> RegionConfig:
        if self.name != f"{self.provider.value}-{self.location}":
            raise ValueError(f"region name {self.name!r} must be '<provider>-<location>'")
        if self.serverless is not None and not self.serverless.enabled:
            self.serverless = None  # declared, switched off: nodes only
        return self

    @property
    def task_queue(self) -> str:
        return f"region.{self.name}"


class NetworkPathConfig(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_region: str = Field(alias="from")
    to: str
    rtt_ms: float = Field(ge=0)
    loss: float = Field(0.0, ge=0, le=1)


class RegionsFile(BaseModel):
    model_config = ConfigDict(extra="allow")

    defaults: dict[str, object] = Field(default_factory=dict)
    regions: list[RegionConfig]
    network: list[NetworkPathConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> RegionsFile:
        names = [r.name for r in self.regions]
        if len(names) != len(set(names)):
            raise ValueError("region names must be unique")
        return self

    def get(self, name: str) -> RegionConfig:
        for region in self.regions:
            if region.name == name:
                return region
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.regions]


def load_regions(path: Path | str) -> RegionsFile:
    data = yaml.safe_load(Path(path).read_text())
    return RegionsFile.model_validate(data)
