"""The deploy view of the fleet file: what Terraform, kustomize and kubeconfig need.

The fleet file (infra/regions/fleet-15.yaml) is also a regions file: kubesim simulates it
and the engine places tasks on it. This view reads the same YAML more strictly, adding
what a deployment needs (cloud pool shapes, network, serverless, Kubernetes version) and
refusing what cannot be deployed (min > desired, an unknown cloud).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from meridian.regions.config import RegionsFile
from meridian.regions.providers import Provider

KUBERNETES_VERSION = re.compile(r"^1\.\d{2}$")


@dataclass(frozen=True)
class Cloud:
    """How one provider is deployed: its Terraform module and provider, its node-pool
    adapter, and how kubectl gets a token for its clusters."""

    module: str  # infra/terraform/modules/<module>
    tf_provider: str  # the provider's local name in Terraform
    tf_source: str  # its registry source
    driver: str  # meridian/nodepools driver for the pools' resize


CLOUDS: dict[Provider, Cloud] = {
    Provider.AWS: Cloud("aws-eks", "aws", "hashicorp/aws", "eks"),
    Provider.AZURE: Cloud("azure-aks", "azurerm", "hashicorp/azurerm", "aks"),
    Provider.GCP: Cloud("gcp-gke", "google", "hashicorp/google", "gke"),
    Provider.ALIBABA: Cloud("alicloud-ack", "alicloud", "aliyun/alicloud", "ack"),
    Provider.TENCENT: Cloud("tencent-tke", "tencentcloud", "tencentcloudstack/tencentcloud", "tke"),
    Provider.BAIDU: Cloud("baidu-cce", "baiducloud", "baidubce/baiducloud", "cce-baidu"),
    Provider.HUAWEI: Cloud("huawei-cce", "huaweicloud", "huaweicloud/huaweicloud", "cce-huawei"),
}
IDC_DRIVER = "idc"


class FleetPool(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    machine_type: str
    cpu: str
    memory: str
    min: Annotated[int, Field(ge=0)]
    desired: Annotated[int, Field(ge=0)]
    max: Annotated[int, Field(ge=1)]
    count: Annotated[int, Field(ge=0)]

    @model_validator(mode="after")
    def _bounds(self) -> FleetPool:
        if not self.min <= self.desired <= self.max:
            raise ValueError(
                f"pool {self.name}: need min <= desired <= max, got "
                f"{self.min} <= {self.desired} <= {self.max}"
            )
        # kubesim starts the pool at `count`: the simulation and the cloud must agree.
        if self.count != self.desired:
            raise ValueError(f"pool {self.name}: count ({self.count}) must equal desired")
        return self


class FleetNetwork(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vpc_id: str | None = None
    subnet_ids: list[str] = Field(default_factory=list)
    cidr: str | None = None


class FleetServerless(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: str | None = None
    enabled: bool = True


class FleetRegion(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    provider: Provider
    location: str
    role: Literal["central", "unit"] = "unit"
    kubernetes_version: str | None = None
    network: FleetNetwork = Field(default_factory=FleetNetwork)
    serverless: FleetServerless | None = None
    node_pools: list[FleetPool] = Field(default_factory=list)

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None and not KUBERNETES_VERSION.match(value):
            raise ValueError(f"kubernetes_version {value!r}: write it as 1.NN, e.g. 1.31")
        return value

    @property
    def is_idc(self) -> bool:
        return self.provider is Provider.IDC

    @property
    def cloud(self) -> Cloud:
        if self.is_idc:
            raise ValueError(f"{self.name} is an IDC region: Ansible builds it, not Terraform")
        return CLOUDS[self.provider]

    @property
    def driver(self) -> str:
        return IDC_DRIVER if self.is_idc else self.cloud.driver

    @property
    def tf_alias(self) -> str:
        """The Terraform provider alias: the region name as an identifier."""
        return self.name.replace("-", "_")

    @property
    def runs_unit_worker(self) -> bool:
        """As `ensure_region_monitor` decides: a central region with pools takes tasks, so
        it is monitored and needs a unit worker too."""
        return self.role != "central" or bool(self.node_pools)


class FleetDefaults(BaseModel):
    model_config = ConfigDict(extra="allow")

    kubernetes_version: str = "1.31"

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not KUBERNETES_VERSION.match(value):
            raise ValueError(f"kubernetes_version {value!r}: write it as 1.NN, e.g. 1.31")
        return value


class Fleet(BaseModel):
    model_config = ConfigDict(extra="allow")

    defaults: FleetDefaults = Field(default_factory=FleetDefaults)
    regions: list[FleetRegion]

    @model_validator(mode="after")
    def _one_central(self) -> Fleet:
        centrals = [r.name for r in self.regions if r.role == "central"]
        if len(centrals) != 1:
            raise ValueError(f"a fleet has exactly one central region, found {centrals}")
        return self

    def version_of(self, region: FleetRegion) -> str:
        return region.kubernetes_version or self.defaults.kubernetes_version

    @property
    def central(self) -> FleetRegion:
        return next(r for r in self.regions if r.role == "central")

    @property
    def cloud_regions(self) -> list[FleetRegion]:
        """The regions Terraform builds (every one but the IDC sites), by name."""
        return sorted((r for r in self.regions if not r.is_idc), key=lambda r: r.name)

    @property
    def unit_regions(self) -> list[FleetRegion]:
        return sorted((r for r in self.regions if r.runs_unit_worker), key=lambda r: r.name)

    @property
    def kubernetes_versions(self) -> list[str]:
        return sorted({self.version_of(r) for r in self.regions})


def load_fleet(path: Path | str) -> tuple[Fleet, str]:
    """The fleet and its text. The text must also be a valid regions file: the same bytes
    become the pods' regions ConfigMap."""
    text = Path(path).read_text()
    data = yaml.safe_load(text)
    RegionsFile.model_validate(data)
    return Fleet.model_validate(data), text
