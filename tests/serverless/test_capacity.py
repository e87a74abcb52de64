"""`placement.capacity`: nodes, serverless or auto; resident tasks stay on nodes under
auto."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from meridian.tasks.spec import Capacity, TaskSpec, capacity_for


def _spec(**extra: Any) -> TaskSpec:
    body: dict[str, Any] = {
        "name": "t",
        "business_unit": "bu",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "job": {"image": "busybox"},
        **extra,
    }
    return TaskSpec.model_validate(body)


def test_default_is_auto_and_left_out_of_the_dump() -> None:
    # Specs stored before capacity existed must dump (and hash) as they did.
    spec = _spec()
    assert spec.placement.capacity is Capacity.AUTO
    assert "capacity" not in spec.model_dump(mode="json")["placement"]
    assert _spec(placement={"capacity": "auto"}).model_dump() == spec.model_dump()


@pytest.mark.parametrize("value", ["nodes", "serverless"])
def test_an_explicit_choice_is_kept(value: str) -> None:
    spec = _spec(placement={"capacity": value})
    assert spec.model_dump(mode="json")["placement"]["capacity"] == value
    assert capacity_for(spec) == Capacity(value)


def test_resident_tasks_do_not_burst_unless_they_ask() -> None:
    assert capacity_for(_spec(kind="resident")) is Capacity.NODES
    asked = _spec(kind="resident", placement={"capacity": "serverless"})
    assert capacity_for(asked) is Capacity.SERVERLESS
    assert capacity_for(_spec()) is Capacity.AUTO


def test_an_unknown_capacity_names_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        _spec(placement={"capacity": "spot"})
    assert err.value.errors()[0]["loc"] == ("placement", "capacity")
