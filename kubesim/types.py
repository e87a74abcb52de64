"""Type aliases shared by every kubesim module."""

from __future__ import annotations

from typing import Any, TypeAlias

# A Kubernetes object (or any part of one) as decoded JSON.
Obj: TypeAlias = dict[str, Any]
# (namespace, name); namespace "" for cluster-scoped objects.
Key: TypeAlias = tuple[str, str]
