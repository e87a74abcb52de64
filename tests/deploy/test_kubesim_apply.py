"""The runbook's unit step, `kubectl apply -k` of a rendered overlay, against kubesim."""

from __future__ import annotations

import subprocess
from pathlib import Path

from kubernetes import client, config

from kubesim.process import KubesimProcess
from meridian.deploy.render import render

from .conftest import REGION
from .support import FLEET, tool


def _kubectl(kubesim: KubesimProcess, home: Path, *args: str) -> str:
    result = subprocess.run(
        [tool("kubectl"), "--kubeconfig", kubesim.kubeconfig, "--context", REGION, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


def test_the_rendered_unit_overlay_applies_as_the_runbook_says(
    kubesim: KubesimProcess, tmp_path: Path
) -> None:
    render(FLEET, tmp_path / "deploy")
    overlay = tmp_path / "deploy" / "k8s" / f"unit-{REGION}"
    out = _kubectl(kubesim, tmp_path, "apply", "--validate=false", "-k", str(overlay))
    for created in (
        "namespace/meridian",
        "serviceaccount/meridian-unit",
        "clusterrole.rbac.authorization.k8s.io/meridian-unit",
        "clusterrolebinding.rbac.authorization.k8s.io/meridian-unit",
        "deployment.apps/meridian-unit",
        "poddisruptionbudget.policy/meridian-unit",
        "networkpolicy.networking.k8s.io/meridian-unit",
    ):
        assert created in out, out

    api = config.new_client_from_config(config_file=kubesim.kubeconfig, context=REGION)
    try:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        rbac = client.RbacAuthorizationV1Api(api)
        deployment = apps.read_namespaced_deployment("meridian-unit", "meridian")
        pod = deployment.spec.template.spec
        assert pod.service_account_name == "meridian-unit"
        env = {e.name: e.value for e in pod.containers[0].env}
        assert env["MERIDIAN_REGION"] == REGION
        assert deployment.metadata.labels["meridian.io/region"] == REGION
        # The ServiceAccount the Deployment names exists, and the bindings bind it.
        assert core.read_namespaced_service_account("meridian-unit", "meridian")
        # Task namespaces are made at run time (one per business unit): the worker's
        # rights are a ClusterRole, bound to its ServiceAccount.
        binding = rbac.read_cluster_role_binding("meridian-unit")
        assert (binding.role_ref.kind, binding.role_ref.name) == ("ClusterRole", "meridian-unit")
        assert [(s.kind, s.name, s.namespace) for s in binding.subjects] == [
            ("ServiceAccount", "meridian-unit", "meridian")
        ]
        assert rbac.read_cluster_role("meridian-unit").rules
        volumes = {v.name: v for v in pod.volumes}
        regions = core.read_namespaced_config_map(volumes["regions"].config_map.name, "meridian")
        assert f"name: {REGION}" in regions.data["regions.yaml"]
    finally:
        api.close()

    # Applying again changes nothing: the runbook's steps are safe to repeat.
    again = _kubectl(kubesim, tmp_path, "apply", "--validate=false", "-k", str(overlay))
    assert "deployment.apps/meridian-unit unchanged" in again, again
