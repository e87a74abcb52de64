"""Driver name -> adapter. Adapters import their SDK lazily, so a deployment that only
runs on one cloud needs only that cloud's SDK installed."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from meridian.nodepools.base import NodePoolProvider

DRIVERS: dict[str, str] = {
    "eks": "meridian.nodepools.eks:EksNodeGroupProvider",
    "aks": "meridian.nodepools.aks:AksAgentPoolProvider",
    "gke": "meridian.nodepools.gke:GkeNodePoolProvider",
    "ack": "meridian.nodepools.ack:AckNodePoolProvider",
    "tke": "meridian.nodepools.tke:TkeNodePoolProvider",
    "cce-baidu": "meridian.nodepools.cce_baidu:BaiduCceInstanceGroupProvider",
    "cce-huawei": "meridian.nodepools.cce_huawei:HuaweiCceNodePoolProvider",
    "idc": "meridian.nodepools.idc:IdcStaticPoolProvider",
    "kubesim": "meridian.nodepools.kubesim:KubesimPoolProvider",
}


def provider_for(driver: str, pool_config: Mapping[str, Any], **clients: Any) -> NodePoolProvider:
    """Build the adapter for `driver` from one pool's config (a `NodePoolConfig` dump with
    the provider ids as extra fields). `clients` are the adapter's injectable SDK clients
    (e.g. `eks=`, `http_client=`): tests pass mocks, deployments pass clients built for a
    custom endpoint. Without them each adapter builds its SDK's default client, which reads
    credentials from that SDK's standard sources."""
    try:
        target = DRIVERS[driver]
    except KeyError:
        raise ValueError(f"unknown node pool driver {driver!r}; known: {sorted(DRIVERS)}") from None
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    provider = cls(pool_config, **clients)
    if not isinstance(provider, NodePoolProvider):
        raise TypeError(f"{target} is not a NodePoolProvider")
    return provider
