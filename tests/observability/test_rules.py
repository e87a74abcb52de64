"""The alert rules under infra/observability/alerts: valid for Prometheus, each one
documented for the person it pages, and each proven by `promtool test rules` to fire on
a bad series and stay quiet beside it on a healthy one (meridian.rules.test.yml)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

ALERTS = REPO / "infra/observability/alerts"
RULES = ALERTS / "meridian.rules.yml"
RULE_TESTS = ALERTS / "meridian.rules.test.yml"

# What the issue asks the rules to cover, by the alert that covers it.
EXPECTED = {
    "MeridianRegionDown",
    "MeridianRegionDegradedLong",
    "MeridianTasksStuckScheduling",
    "MeridianFailoverSlow",
    "MeridianSweepDriftPersistent",
    "MeridianRegionWaterHigh",
    "MeridianUnitWorkerNotPolling",
    "MeridianKubeApiErrors",
    "MeridianResumeFailures",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: Debian's prometheus package has it (.ci/run installs it)")
    return found


def run_promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_rules_pass_promtool_check() -> None:
    result = run_promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(EXPECTED)} rules found" in result.stdout


def test_rule_unit_tests_pass() -> None:
    result = run_promtool("test", "rules", RULE_TESTS.name, cwd=ALERTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_documented_for_whoever_it_pages() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == EXPECTED
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        for field in ("summary", "description", "runbook"):
            assert rule["annotations"].get(field, "").strip(), f"{rule['alert']}: no {field}"


def test_every_alert_has_a_case_that_fires_and_one_that_stays_quiet() -> None:
    cases = [
        case
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert fires == EXPECTED
    assert quiet == EXPECTED


def test_a_broken_expectation_fails_the_unit_tests(tmp_path: Path) -> None:
    # The unit tests can fail: 404s counted as Kubernetes API errors would fire the
    # quiet region beside the failing one.
    broken = RULES.read_text().replace('code=~"5..|429|error"', 'code=~"5..|429|error|404"')
    assert broken != RULES.read_text()
    (tmp_path / RULES.name).write_text(broken)
    (tmp_path / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    result = run_promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0
    assert 'region="azure-eastus"' in result.stdout + result.stderr
