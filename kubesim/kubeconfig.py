"""The kubeconfig (one context per region) and kubesim.json written at start."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml


def build_kubeconfig(region_urls: dict[str, str]) -> dict[str, Any]:
    names = list(region_urls)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": n, "cluster": {"server": region_urls[n]}} for n in names],
        # No credentials: kubesim serves plain HTTP on loopback and authorises everyone.
        "users": [{"name": n, "user": {}} for n in names],
        "contexts": [
            {"name": n, "context": {"cluster": n, "user": n, "namespace": "default"}} for n in names
        ],
        "current-context": names[0] if names else "",
    }


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_files(kubeconfig: str | Path, control_url: str, region_urls: dict[str, str]) -> Path:
    """Write the kubeconfig and kubesim.json beside it; returns the kubesim.json path."""
    path = Path(kubeconfig)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, yaml.safe_dump(build_kubeconfig(region_urls), sort_keys=False))
    info = path.parent / "kubesim.json"
    _atomic_write(
        info, json.dumps({"control_url": control_url, "regions": region_urls}, indent=2) + "\n"
    )
    return info
