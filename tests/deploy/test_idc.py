"""infra/idc: the Ansible playbook passes its offline checks, and what it renders gives
Meridian an IDC region it can use: nodes labelled like the cloud pools, an air-gap switch
that moves every download and image pull to the local mirror, a fleet-file pool that the
IDC adapter accepts, and a kubeconfig whose context is the region's name."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from meridian.nodepools.idc import HttpPowerHook, IdcStaticPoolProvider
from meridian.regions.config import NodePoolConfig, RegionsFile

REPO = Path(__file__).resolve().parents[2]
IDC = REPO / "infra" / "idc"
INVENTORY = IDC / "inventory.example.yml"
FLEET = REPO / "infra" / "regions" / "fleet-15.yaml"
REGION, POOL = "idc-shanghai-1", "rack-a"


@cache
def tool_dirs() -> tuple[Path, ...]:
    """PATH, then the tools venv (.venv-tools) of this checkout or of the main checkout
    this worktree belongs to."""
    common = subprocess.run(
        ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    roots = [REPO, *([Path(common).parent] if common else [])]
    return tuple(root / ".venv-tools" / "bin" for root in roots)


def tool(name: str) -> str:
    found = shutil.which(name) or next(
        (str(d / name) for d in tool_dirs() if (d / name).exists()), None
    )
    if found is None:
        pytest.skip(f"{name} is not installed (tools venv: .venv-tools, see infra/idc/README.md)")
    return found


def run(argv: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_ROLES_PATH": str(IDC / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "NO_COLOR": "1",
        "PY_COLORS": "0",
        **env,
    }
    return subprocess.run(
        argv, cwd=IDC, env=environment, capture_output=True, text=True, check=False, timeout=300
    )


def test_playbook_syntax_check(tmp_path: Path) -> None:
    done = run(
        [tool("ansible-playbook"), "--syntax-check", "-i", str(INVENTORY), "site.yml"], tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ansible_lint_production_profile_offline(tmp_path: Path) -> None:
    config = yaml.safe_load((IDC / ".ansible-lint").read_text())
    assert config["profile"] == "production" and config["offline"] is True
    done = run([tool("ansible-lint")], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_yamllint(tmp_path: Path) -> None:
    done = run([tool("yamllint"), "--strict", "."], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


RENDER_PLAYBOOK = """
- name: Render the RKE2 configuration of one server, one joining server, one agent
  hosts: rke2_servers[0]:rke2_servers[1]:rack_a[0]
  gather_facts: false
  vars:
    rke2_config_dir: "{{ out }}/{{ inventory_hostname }}"
    rke2_restart_on_change: false
  tasks:
    - name: Write the configuration files
      ansible.builtin.import_role:
        name: rke2
        tasks_from: config.yml
    - name: Record where the artifacts come from
      ansible.builtin.copy:
        content: "{{ rke2_artifact_url }}"
        dest: "{{ rke2_config_dir }}/artifact-url"
        mode: "0600"
- name: Write what Meridian needs
  hosts: localhost
  gather_facts: false
  roles:
    - role: meridian_idc
      meridian_idc_output_dir: "{{ out }}"
      meridian_idc_admin_kubeconfig_path: "{{ out }}/rke2.yaml"
"""

RKE2_KUBECONFIG = {  # the shape RKE2 writes to /etc/rancher/rke2/rke2.yaml
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [
        {
            "name": "default",
            "cluster": {
                "server": "https://127.0.0.1:6443",
                "certificate-authority-data": base64.b64encode(b"ca").decode(),
            },
        }
    ],
    "users": [
        {
            "name": "default",
            "user": {
                "client-certificate-data": base64.b64encode(b"cert").decode(),
                "client-key-data": base64.b64encode(b"key").decode(),
            },
        }
    ],
    "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
    "current-context": "default",
}


def render(tmp_path: Path, airgap: bool) -> Path:
    out = tmp_path / ("airgap" if airgap else "online")
    out.mkdir()
    (out / "rke2.yaml").write_text(yaml.safe_dump(RKE2_KUBECONFIG))
    playbook = tmp_path / "render.yml"
    playbook.write_text(RENDER_PLAYBOOK)
    ansible = tool("ansible-playbook")
    python = Path(ansible).parent / "python"
    extra = {
        "out": str(out),
        "vault_rke2_token": "test-token",
        "rke2_airgap": airgap,
        # Everything runs here: no SSH, no sudo.
        "ansible_connection": "local",
        "ansible_become": False,
        "ansible_python_interpreter": str(python if python.exists() else "auto_silent"),
    }
    done = run([ansible, "-i", str(INVENTORY), str(playbook), "-e", json.dumps(extra)], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def online(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("idc"), airgap=False)


@pytest.fixture(scope="module")
def airgap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("idc"), airgap=True)


def test_pool_nodes_carry_the_region_and_pool_labels(online: Path) -> None:
    agent = load(online / "idc-sh1-a01" / "config.yaml")
    assert agent["node-label"] == [f"meridian.io/region={REGION}", f"meridian.io/node-pool={POOL}"]
    assert agent["node-name"] == "idc-sh1-a01"
    assert agent["server"].endswith(":9345") and agent["token"] == "test-token"


def test_servers_are_in_the_region_but_in_no_pool(online: Path) -> None:
    first = load(online / "idc-sh1-cp01" / "config.yaml")
    joining = load(online / "idc-sh1-cp02" / "config.yaml")
    assert first["node-label"] == [f"meridian.io/region={REGION}"]
    assert "server" not in first  # it bootstraps the cluster
    assert joining["server"].endswith(":9345")
    assert first["node-taint"] == ["CriticalAddonsOnly=true:NoExecute"]
    assert first["profile"] == "cis"


def test_online_mode_downloads_releases_and_pulls_public_images(online: Path) -> None:
    url = (online / "idc-sh1-a01" / "artifact-url").read_text()
    assert url == "https://github.com/rancher/rke2/releases/download/v1.31.9%2Brke2r1"
    assert not (online / "idc-sh1-a01" / "registries.yaml").exists()


def test_airgap_switch_moves_downloads_and_image_pulls_to_the_local_mirror(airgap: Path) -> None:
    defaults = load(IDC / "roles" / "rke2" / "defaults" / "main.yml")
    assert defaults["rke2_airgap"] is False and defaults["rke2_airgap_source"] == "mirror"
    group = load(IDC / "group_vars" / "all.yml")
    url = (airgap / "idc-sh1-a01" / "artifact-url").read_text()
    assert url == f"{group['rke2_airgap_mirror_url']}/{group['rke2_version']}"
    registries = load(airgap / "idc-sh1-a01" / "registries.yaml")
    mirror = group["rke2_registry_mirror_url"]
    assert {"docker.io", "registry.k8s.io"} <= set(registries["mirrors"])
    assert all(m["endpoint"] == [mirror] for m in registries["mirrors"].values())
    host = mirror.removeprefix("https://")
    assert registries["configs"][host]["tls"]["ca_file"] == group["rke2_registry_ca_file"]


def test_pool_snippet_is_what_the_idc_adapter_and_fleet_file_expect(online: Path) -> None:
    pools = load(online / f"{REGION}-node-pools.yaml")
    inventory = load(INVENTORY)
    region_group = inventory["all"]["children"]["idc_shanghai_1"]["children"]
    machines = region_group["rke2_agents"]["children"]["rack_a"]["hosts"]
    [pool] = pools
    fleet_pool = next(
        p for p in RegionsFile.model_validate(load(FLEET)).get(REGION).node_pools if p.name == POOL
    )
    config = NodePoolConfig.model_validate(pool)
    assert (config.name, config.driver) == (POOL, "idc")
    assert (config.min, config.max, config.count) == (fleet_pool.min, fleet_pool.max, 8)
    assert pool["nodes"] == list(machines)
    # The adapter builds its power hook from the snippet and reaches each node's BMC.
    cordoned: list[tuple[str, bool]] = []
    adapter = IdcStaticPoolProvider(
        config.model_dump(), cordon=lambda node, off: cordoned.append((node, off))
    )
    assert isinstance(adapter.power, HttpPowerHook)
    bmc = {k: str(v) for k, v in pool["bmc"]["idc-sh1-a03"].items()}
    assert adapter.power.url.format_map({"node": "idc-sh1-a03", **bmc}) == (
        f"https://{machines['idc-sh1-a03']['bmc_host']}/redfish/v1/Systems/1/Actions/"
        "ComputerSystem.Reset"
    )
    assert not any("cp" in node for node in pool["nodes"])  # servers are never powered off


def test_kubeconfig_context_is_the_region_and_points_at_the_api(online: Path) -> None:
    path = online / f"kubeconfig-{REGION}.yaml"
    assert path.stat().st_mode & 0o077 == 0  # admin credentials: owner-only
    kubeconfig = load(path)
    group = load(IDC / "group_vars" / "idc_shanghai_1.yml")
    assert kubeconfig["current-context"] == REGION
    [context] = kubeconfig["contexts"]
    assert context["name"] == REGION and context["context"]["cluster"] == REGION
    [cluster] = kubeconfig["clusters"]
    assert cluster["cluster"]["server"] == f"https://{group['rke2_api_host']}:6443"
    source = RKE2_KUBECONFIG["clusters"][0]["cluster"]  # type: ignore[index]
    assert cluster["cluster"]["certificate-authority-data"] == source["certificate-authority-data"]
