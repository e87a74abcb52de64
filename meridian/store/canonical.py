"""Canonical JSON and spec hashing, free of database imports (usable from workflows)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from meridian.tasks.spec import TaskSpec


def canonical_json(value: Any) -> str:
    """Key-sorted, whitespace-free JSON: equal values always give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def spec_hash(spec: TaskSpec) -> str:
    """sha256 of the spec's canonical JSON: equal specs hash equal, defaults included."""
    return hashlib.sha256(canonical_json(spec.model_dump(mode="json")).encode()).hexdigest()
