"""A unit's quota as a Kubernetes ResourceQuota for its namespace in each region.

The database check is the one that counts (it sees every region at once); the
ResourceQuota is the cluster's own backstop, so that nothing scheduled around Meridian
exceeds the unit's share either.
"""

from __future__ import annotations

from typing import Any

from meridian.kube.labels import LABEL_BUSINESS_UNIT, LABEL_MANAGED
from meridian.tenancy.quotas import UnitQuota

QUOTA_NAME = "meridian-quota"


def resource_quota(
    business_unit: str, quota: UnitQuota, *, namespace: str, name: str = QUOTA_NAME
) -> dict[str, Any] | None:
    """The manifest, or None when the unit has no limit Kubernetes can enforce.

    `pods`, not `count/jobs.batch`: a finished Job still exists (until its TTL) and would
    hold a slot, whereas only non-terminal pods count against `pods`, as only active
    tasks count against `max_active_tasks`.
    """
    hard: dict[str, str] = {}
    if quota.cpu is not None:
        hard["requests.cpu"] = quota.cpu
    if quota.memory is not None:
        hard["requests.memory"] = quota.memory
    if quota.max_active_tasks is not None:
        hard["pods"] = str(quota.max_active_tasks)
    if not hard:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {LABEL_MANAGED: "true", LABEL_BUSINESS_UNIT: business_unit},
        },
        "spec": {"hard": hard},
    }
