"""A unit's quota as the Kubernetes ResourceQuota written into its namespace per region."""

from __future__ import annotations

from meridian.tenancy.quotas import UnitQuota
from meridian.tenancy.resource_quota import resource_quota


def test_renders_requests_and_pods_of_the_unit_quota() -> None:
    quota = UnitQuota(max_active_tasks=50, cpu="64", memory="256Gi", submissions_per_second=5)
    manifest = resource_quota("ads", quota, namespace="meridian-ads")
    assert manifest == {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {
            "name": "meridian-quota",
            "namespace": "meridian-ads",
            "labels": {"meridian.io/managed": "true", "meridian.io/business-unit": "ads"},
        },
        # Only non-terminal pods count against `pods`: finished Jobs free their slot, as
        # finished tasks do in the database.
        "spec": {"hard": {"requests.cpu": "64", "requests.memory": "256Gi", "pods": "50"}},
    }


def test_leaves_out_what_is_unlimited() -> None:
    manifest = resource_quota("ads", UnitQuota(cpu="8"), namespace="ns")
    assert manifest is not None
    assert manifest["spec"] == {"hard": {"requests.cpu": "8"}}
    # The submission rate has no Kubernetes counterpart; nothing else: nothing to write.
    assert resource_quota("ads", UnitQuota(submissions_per_second=3), namespace="ns") is None
