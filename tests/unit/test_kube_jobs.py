"""Building an attempt's Job and reading Jobs and pods back (pure, no cluster)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client

from activities.regions import next_state
from meridian.kube.contracts import FailureKind, JobPhase
from meridian.kube.jobs import build_job, observe_job
from meridian.regions.contracts import ProbeOutcome
from meridian.regions.load import compute_load, water_level
from meridian.settings import FailoverSettings
from meridian.tasks.spec import TaskSpec

SPEC = TaskSpec.model_validate(
    {
        "name": "svc",
        "business_unit": "ads",
        "kind": "resident",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "job": {
            "image": "busybox",
            "env": {"B": "2", "A": "1"},
            "status_port": 8080,
            "resources": {"cpu": "250m", "memory": "64Mi"},
            "annotations": {"kubesim.io/duration": "5s"},
        },
        "labels": {"team": "growth"},
    }
)


def job_json(**status: Any) -> dict[str, Any]:
    job = build_job("t1", SPEC, 2, "meridian")
    data: dict[str, Any] = client.ApiClient().sanitize_for_serialization(job)
    data["metadata"]["resourceVersion"] = "42"
    data["status"] = status
    return data


def test_job_carries_fencing_token_labels_and_resident_port() -> None:
    job = build_job("t1", SPEC, 2, "meridian")
    assert job.metadata.name == "t1-a2"
    assert job.metadata.labels["meridian.io/task-id"] == "t1"
    assert job.metadata.labels["meridian.io/attempt"] == "2"
    assert job.metadata.labels["team"] == "growth"
    assert job.spec.backoff_limit == 0  # Meridian's own retry policy owns retries
    container = job.spec.template.spec.containers[0]
    env = {e.name: e.value for e in container.env}
    assert env["MERIDIAN_ATTEMPT"] == "2" and env["A"] == "1"
    assert container.resources.requests == {"cpu": "250m", "memory": "64Mi"}
    assert container.ports[0].name == "status"
    annotations = job.spec.template.metadata.annotations
    assert annotations["kubesim.io/resident"] == "true"
    assert annotations["kubesim.io/duration"] == "5s"


def test_observe_phases() -> None:
    assert observe_job(job_json(active=1), "r", source="t").phase is JobPhase.PENDING
    running = observe_job(job_json(active=1, ready=1), "r", source="t")
    assert running.phase is JobPhase.RUNNING and running.status_port == 8080
    done = observe_job(
        job_json(conditions=[{"type": "Complete", "status": "True"}]), "r", source="t"
    )
    assert done.phase is JobPhase.SUCCEEDED and done.resource_version == 42
    assert (done.task_id, done.attempt, done.job_name) == ("t1", 2, "t1-a2")
    assert observe_job({"metadata": {"name": "x", "labels": {}}}, "r", source="t") is None


def pod(phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"nodeName": "n1"},
        "status": {"phase": phase, **status},
    }


def test_failed_job_tells_crash_from_lost_node() -> None:
    failed = job_json(
        conditions=[{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    )
    crash = pod("Failed", containerStatuses=[{"state": {"terminated": {"exitCode": 3}}}])
    obs = observe_job(failed, "r", [crash], source="t")
    assert obs.failure_kind is FailureKind.APPLICATION and obs.exit_code == 3
    lost = pod("Failed", reason="NodeLost", message="node n1 lost")
    obs = observe_job(failed, "r", [lost], source="t")
    assert obs.failure_kind is FailureKind.INFRASTRUCTURE and obs.reason == "NodeLost"


def test_unschedulable_pod_is_reported_with_its_time() -> None:
    since = "2026-01-01T00:00:05Z"
    stuck = pod(
        "Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "lastTransitionTime": since,
                "message": "0/3 nodes: Insufficient cpu",
            }
        ],
    )
    stuck["spec"] = {}
    obs = observe_job(job_json(active=1), "r", [stuck], source="t")
    assert obs.unschedulable_since == datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert "Insufficient cpu" in (obs.message or "")


def node(name: str, cpu: str = "8", ready: bool = True, cordoned: bool = False) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"unschedulable": cordoned},
        "status": {
            "allocatable": {"cpu": cpu, "memory": "32Gi"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def task_pod(node_name: str | None, cpu: str, phase: str = "Running") -> dict[str, Any]:
    return {
        "spec": {
            "nodeName": node_name,
            "containers": [{"resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}],
        },
        "status": {"phase": phase},
    }


def test_load_counts_only_schedulable_nodes_and_live_pods() -> None:
    nodes = [node("a"), node("b"), node("c", ready=False), node("d", cordoned=True)]
    pods = [
        task_pod("a", "6"),
        task_pod("b", "1"),
        task_pod("b", "4", phase="Succeeded"),
        task_pod(None, "2", phase="Pending"),
    ]
    load = compute_load(nodes, pods)
    assert load["nodes_total"] == 4 and load["nodes_ready"] == 3 and load["nodes_cordoned"] == 1
    assert load["cpu_allocatable_millis"] == 16000
    assert load["cpu_requested_millis"] == 7000
    assert load["largest_free_cpu_millis"] == 7000  # node b
    assert load["pending_pods"] == 1
    assert abs(water_level(load) - 7 / 16) < 1e-9
    assert water_level({}) == 1.0


def test_region_goes_down_only_after_the_grace_period() -> None:
    failover = FailoverSettings(region_grace_seconds=10)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ok = ProbeOutcome(region="r", reachable=True, worker_answered=True, snapshot={"nodes_ready": 3})
    bad = ProbeOutcome(region="r", reachable=False, worker_answered=False, error="timeout")
    state, _, details = next_state(None, {}, ok, t0, failover)
    assert state == "up" and details["load"] == {"nodes_ready": 3}
    state, reason, details = next_state(state, details, bad, t0 + timedelta(seconds=1), failover)
    assert state == "degraded" and "not polling" in reason
    state, reason, details = next_state(state, details, bad, t0 + timedelta(seconds=12), failover)
    assert state == "down" and "11s" in reason
    state, _, details = next_state(state, details, ok, t0 + timedelta(seconds=13), failover)
    assert state in ("up", "degraded") and details["bad_since"] is None


def test_no_poller_on_the_region_queue_counts_as_a_worker_not_polling() -> None:
    failover = FailoverSettings(region_grace_seconds=10)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ok = ProbeOutcome(region="r", reachable=True, worker_answered=True, snapshot={"nodes_ready": 3})
    # The probe is answered, but Temporal lists nobody polling region.r: a unit process
    # alive without its Job worker.
    state, reason, details = next_state("up", {}, ok, t0, failover, pollers=0)
    assert state == "degraded" and details["worker_polling"] is False
    assert "region.r" in reason and "not polling" in reason
    state, _, details = next_state(state, details, ok, t0 + timedelta(seconds=11), failover, 0)
    assert state == "down"
    # Pollers back (or unknown: Temporal did not answer) and it is the probe that counts.
    for pollers in (1, None):
        state, _, after = next_state("up", {}, ok, t0, failover, pollers)
        assert state == "up" and after["worker_polling"] is True


def _probes(
    rates: list[float], failover: FailoverSettings, every: float = 2.0
) -> list[tuple[str, str]]:
    """Feed answered probes with these per-probe API error rates; (state, reason) each."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    state: str | None = "up"
    details: dict[str, Any] = {}
    seen = []
    for i, rate in enumerate(rates):
        probe = ProbeOutcome(
            region="r",
            reachable=True,
            worker_answered=True,
            api_error_rate=rate,
            snapshot={"nodes_ready": 3},
        )
        state, reason, details = next_state(
            state, details, probe, t0 + timedelta(seconds=i * every), failover
        )
        seen.append((state, reason))
    return seen


def test_flaky_api_that_answers_is_degraded_never_down() -> None:
    failover = FailoverSettings(region_grace_seconds=10)
    seen = _probes([0.4] * 30 + [0.0] * 5, failover)
    states = [s for s, _ in seen]
    assert "down" not in states
    assert states[0] == "up" and states[2] == "degraded"  # smoothed: not on one bad probe
    assert "recent API error rate" in seen[10][1]
    assert states[-1] == "up"  # errors gone: the rate decays below the mark


def test_api_failing_beyond_the_down_rate_is_down_after_the_grace_period() -> None:
    failover = FailoverSettings(region_grace_seconds=10, down_error_rate=0.8)
    seen = _probes([0.95] * 20, failover)
    states = [s for s, _ in seen]
    first_failing = next(i for i, (_, r) in enumerate(seen) if r.startswith("API failing"))
    first_down = states.index("down")
    # Down once failing has lasted the grace period (probes every 2 s), not before.
    assert (first_down - first_failing) * 2.0 >= 10
    assert all(s == "degraded" for s in states[first_failing:first_down])
    assert "API failing: recent error rate" in seen[first_down][1]


def test_slow_api_that_answers_is_degraded_never_down() -> None:
    failover = FailoverSettings(region_grace_seconds=10, degraded_latency_ms=1000)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    state: str | None = "up"
    details: dict[str, Any] = {}
    seen = []
    for i, latency in enumerate([2000.0] * 20 + [20.0] * 8):
        probe = ProbeOutcome(
            region="r",
            reachable=True,
            worker_answered=True,
            api_latency_ms=latency,
            snapshot={"nodes_ready": 3},
        )
        state, reason, details = next_state(
            state, details, probe, t0 + timedelta(seconds=2 * i), failover
        )
        seen.append((state, reason))
    states = [s for s, _ in seen]
    assert "down" not in states
    assert states[0] == "up" and states[2] == "degraded"  # smoothed: not on one slow probe
    assert "API slow: 2.0s" in seen[19][1]
    assert states[-1] == "up" and details["api_latency_ms"] < 1000


def test_a_probe_without_an_answer_keeps_the_last_latency() -> None:
    failover = FailoverSettings()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    bad = ProbeOutcome(region="r", reachable=False, worker_answered=True, error="no answer")
    _, _, details = next_state("up", {"api_latency_ms": 1500.0}, bad, t0, failover)
    assert details["api_latency_ms"] == 1500.0
