"""Placement's decisions and every word of their explanations are what they were when
tests/placement/golden_decisions.json was recorded (before the per-decision cost work of
issue 16): optimisations must not change an answer or a reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.placement.golden import GOLDEN, record


@pytest.fixture(scope="module")
def recorded() -> dict[str, list[dict[str, Any]]]:
    loaded: dict[str, list[dict[str, Any]]] = json.loads(GOLDEN.read_text())
    return loaded


@pytest.fixture(scope="module")
def now() -> dict[str, list[dict[str, Any]]]:
    return record()


@pytest.mark.parametrize("part", ["place", "place_task"])
def test_decisions_and_explanations_unchanged(
    part: str, recorded: dict[str, list[dict[str, Any]]], now: dict[str, list[dict[str, Any]]]
) -> None:
    assert len(now[part]) == len(recorded[part])
    changed = [
        (i, field, was[field], got[field])
        for i, (was, got) in enumerate(zip(recorded[part], now[part], strict=True))
        for field in sorted(was)
        if was[field] != got.get(field)
    ]
    assert not changed, f"{len(changed)} changed field(s), first: {changed[:3]}"


def test_golden_inputs_reach_every_path(recorded: dict[str, list[dict[str, Any]]]) -> None:
    """The comparison above means something only if the cases cover what can change."""
    cases = recorded["place"] + recorded["place_task"]
    reasons = [c["reason"] for c in cases]
    assert sum(c["chosen"] is None for c in cases) >= 50
    assert sum("capacity" in c["summary"] for c in cases) >= 50
    assert sum(r.startswith("pinned region") for r in reasons) >= 10
    assert sum("preference tier" in r for r in reasons) >= 10
    assert sum("since the last probe reserved" in r for r in reasons) >= 50
    assert sum("the pod may queue for room" in r for r in reasons) >= 3
    assert sum(r.startswith("no healthy region with") for r in reasons) >= 10
    assert sum(r.startswith("no eligible region") for r in reasons) >= 1
