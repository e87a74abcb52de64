"""The timing the API starts each TaskWorkflow with, taken from settings."""

from __future__ import annotations

from meridian.settings import Settings
from meridian.tasks.service import timing_from


def test_settled_roll_over_threshold_comes_from_settings() -> None:
    assert timing_from(Settings()).settled_history_events == 25
    assert timing_from(Settings(settled_history_events=60)).settled_history_events == 60
    # Off: only the history limit rolls a history over, as before the threshold existed.
    assert timing_from(Settings(settled_history_events=None)).settled_history_events is None


def test_backstop_timing_comes_from_settings() -> None:
    timing = timing_from(Settings(status_backstop_seconds=20.0, status_backstop_max_seconds=900.0))
    assert (timing.backstop_seconds, timing.backstop_max_seconds) == (20.0, 900.0)
    assert timing_from(Settings(history_event_limit=500)).history_event_limit == 500


def test_create_resend_budget_comes_from_settings() -> None:
    assert timing_from(Settings()).create_resend_seconds == 120.0
    settings = Settings.model_validate({"failover": {"create_resend_seconds": 0}})
    # 0: a create without an answer is not sent again; the task moves at once, as before.
    assert timing_from(settings).create_resend_seconds == 0.0
