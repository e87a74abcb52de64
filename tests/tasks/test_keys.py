"""Task keys: a public id is scoped to its business unit; the key (workflow id, Job label
value, start of Job names) is unique across units and stays within Kubernetes' limits."""

from __future__ import annotations

import pytest

from meridian.tasks.keys import TASK_KEY_MAX, task_key
from meridian.tasks.spec import DNS1123_LABEL, LABEL_VALUE, job_name_for


def test_a_short_key_reads_unit_dot_id() -> None:
    assert task_key("payments", "nightly") == "payments.nightly"
    assert task_key("risk", "nightly") != task_key("payments", "nightly")


def test_units_with_dots_cannot_collide_with_ids() -> None:
    # Public ids have no dots: "a.b" + "c" and "a" + "b-c" differ, as do their Job names.
    assert task_key("a.b", "c") != task_key("a", "b-c")
    assert job_name_for(task_key("a.b", "c"), 1) != job_name_for(task_key("a", "b-c"), 1)


@pytest.mark.parametrize(
    ("unit", "public_id"),
    [
        ("u" * 63, "x" * 63),  # both at their longest
        ("Finance_EMEA", "y" * 60),  # upper case and '_' are label-value characters
        ("a" * 55, "n"),
    ],
)
def test_long_keys_are_cut_hashed_and_stay_label_values(unit: str, public_id: str) -> None:
    key = task_key(unit, public_id)
    assert len(key) <= TASK_KEY_MAX
    assert LABEL_VALUE.match(key), key
    assert key == task_key(unit, public_id)  # deterministic: retries meet one workflow
    assert key != task_key(unit, public_id[:-1] + "z")
    name = job_name_for(key, 7)
    assert len(name) <= 63 and DNS1123_LABEL.match(name), name


def test_job_names_of_keys_are_dns_labels_and_distinct() -> None:
    # All three read "payments-nightly" once made a label: the hash keeps them apart.
    keys = [task_key(unit, "nightly") for unit in ("payments", "Payments", "PAYMENTS")]
    names = {job_name_for(key, 1) for key in keys}
    assert len(names) == 3
    for name in names:
        assert DNS1123_LABEL.match(name), name
        assert name.startswith("payments-") and name.endswith("-a1")
    # Keys of tasks from before ids were scoped (plain labels) keep their Job names.
    assert job_name_for("nightly", 2) == "nightly-a2"
