"""Build a task attempt's Job and read a Job (plus its pods) back as an observation.

Reads work on the JSON the API server sends (not the client's models): a list of
thousands of Jobs deserialises several times faster that way, and the sweeps read a lot.
They need no `kubernetes` import either: the client's models are imported where a Job is
built, so that the central worker, which imports the reads (through the activities its
workflows name), does not import the client (10 MiB of RSS).
"""

from __future__ import annotations

import fnmatch
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from meridian.kube.contracts import FailureKind, JobObservation, JobPhase
from meridian.kube.labels import (
    ANNOTATION_STATUS_PORT,
    ENV_ATTEMPT,
    ENV_TASK_ID,
    LABEL_ATTEMPT,
    LABEL_BUSINESS_UNIT,
    LABEL_MANAGED,
    LABEL_TASK_ID,
)
from meridian.serverless.kinds import (
    ANNOTATION_BILLED_CPU,
    ANNOTATION_BILLED_MEMORY,
    ANNOTATION_SERVERLESS_KIND,
)
from meridian.serverless.plan import BurstPlan
from meridian.settings import PolicySettings
from meridian.tasks.spec import SecretEnv, TaskKind, TaskSpec, job_name_for

if TYPE_CHECKING:
    from kubernetes import client

# Pod-level reasons that mean the infrastructure, not the task, failed.
INFRA_POD_REASONS = frozenset({"NodeLost", "Evicted", "NodeShutdown", "Preempting", "Terminated"})
RESIDENT_ANNOTATION = "kubesim.io/resident"
DEFAULT_POLICY = PolicySettings()


def build_job(
    task_id: str,
    spec: TaskSpec,
    attempt: int,
    namespace: str,
    *,
    policy: PolicySettings = DEFAULT_POLICY,
    burst: BurstPlan | None = None,
) -> client.V1Job:
    """The attempt's Job. Its pod passes Pod Security `restricted` whatever the task
    asked (no field of a task body can loosen it), carries no service-account token,
    and is stopped after the task's deadline (`policy` gives the kind's default and the
    finished Job's TTL).

    With `burst`, the pod is steered onto the region's serverless capacity (the plan's
    labels, selector and tolerations), requests the size the cloud bills (so that what it
    gets is what it pays for), and the Job and pod record that size as annotations."""
    from kubernetes import client

    name = job_name_for(task_id, attempt)
    labels = {
        **spec.labels,
        **(burst.steering.labels if burst is not None else {}),
        LABEL_MANAGED: "true",
        LABEL_TASK_ID: task_id,
        LABEL_ATTEMPT: str(attempt),
        LABEL_BUSINESS_UNIT: spec.business_unit,
    }
    annotations = dict(spec.job.annotations)
    job_annotations: dict[str, str] = {}
    if burst is not None:
        _check_namespace(burst, namespace)
        job_annotations = _billed_annotations(burst)
        annotations.update({**burst.steering.annotations, **job_annotations})
    ports: list[client.V1ContainerPort] = []
    if spec.kind is TaskKind.RESIDENT:
        annotations[RESIDENT_ANNOTATION] = "true"
        if spec.job.status_port is not None:
            annotations[ANNOTATION_STATUS_PORT] = str(spec.job.status_port)
            ports.append(client.V1ContainerPort(name="status", container_port=spec.job.status_port))
    # The attempt is the fencing token: a process of a stale attempt can tell it is stale.
    env = [_env_var(k, v) for k, v in sorted(spec.job.env.items())]
    env += [
        client.V1EnvVar(name=ENV_TASK_ID, value=task_id),
        client.V1EnvVar(name=ENV_ATTEMPT, value=str(attempt)),
    ]
    requests = {"cpu": spec.job.resources.cpu, "memory": spec.job.resources.memory}
    if burst is not None:
        requests = {"cpu": burst.cpu_request, "memory": burst.memory_request}
    container = client.V1Container(
        name="task",
        image=spec.job.image,
        command=spec.job.command or None,
        args=spec.job.args or None,
        env=env,
        ports=ports or None,
        resources=client.V1ResourceRequirements(requests=requests, limits=requests),
        security_context=client.V1SecurityContext(
            allow_privilege_escalation=False,
            capabilities=client.V1Capabilities(drop=["ALL"]),
            run_as_non_root=True,
        ),
    )
    # runAsNonRoot makes the kubelet refuse an image whose user is root, or a name it
    # cannot check: job.run_as_user gives such an image a uid to run as.
    pod_security = client.V1PodSecurityContext(
        run_as_non_root=True,
        run_as_user=spec.job.run_as_user,
        seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
    )
    return client.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=client.V1ObjectMeta(
            name=name, namespace=namespace, labels=labels, annotations=job_annotations or None
        ),
        spec=client.V1JobSpec(
            # One pod per attempt: Meridian's retry policy decides about retries, so that
            # every retry is a new, fenced attempt it can see and place.
            backoff_limit=0,
            completions=1,
            parallelism=1,
            active_deadline_seconds=timeout_seconds(spec, policy),
            # Finished Jobs stay for the sweeps to reconcile; the TTL is only a safety net.
            ttl_seconds_after_finished=policy.finished_job_ttl_seconds,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels, annotations=annotations or None),
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    containers=[container],
                    security_context=pod_security,
                    # A task has no business with the Kubernetes API of the region.
                    automount_service_account_token=False,
                    node_selector=(dict(burst.steering.node_selector) or None) if burst else None,
                    tolerations=_tolerations(burst),
                ),
            ),
        ),
    )


def _billed_annotations(burst: BurstPlan) -> dict[str, str]:
    return {
        ANNOTATION_SERVERLESS_KIND: burst.kind.value,
        ANNOTATION_BILLED_CPU: burst.billed.cpu,
        ANNOTATION_BILLED_MEMORY: burst.billed.memory,
    }


def _tolerations(burst: BurstPlan | None) -> list[client.V1Toleration] | None:
    from kubernetes import client

    if burst is None or not burst.steering.tolerations:
        return None
    return [
        client.V1Toleration(key=t.key, operator=t.operator, value=t.value, effect=t.effect)
        for t in burst.steering.tolerations
    ]


def _check_namespace(burst: BurstPlan, namespace: str) -> None:
    allowed = burst.steering.namespaces
    if allowed and not any(fnmatch.fnmatchcase(namespace, pattern) for pattern in allowed):
        # A Fargate profile selects pods by namespace: anywhere else the pod would wait
        # for a node instead of bursting.
        raise ValueError(
            f"{burst.kind.value} capacity selects pods in {', '.join(allowed)}, "
            f"not in namespace {namespace!r}"
        )


def timeout_seconds(spec: TaskSpec, policy: PolicySettings) -> int | None:
    """The task's own deadline, else its kind's (a resident task has none by default)."""
    if spec.job.timeout_seconds is not None:
        return spec.job.timeout_seconds
    if spec.kind is TaskKind.RESIDENT:
        return policy.resident_timeout_seconds
    return policy.batch_timeout_seconds


def _env_var(name: str, value: str | SecretEnv) -> client.V1EnvVar:
    from kubernetes import client

    if isinstance(value, str):
        return client.V1EnvVar(name=name, value=value)
    ref = value.secret_ref
    # The kubelet reads the Secret when the pod starts: the value never leaves the region.
    source = client.V1EnvVarSource(
        secret_key_ref=client.V1SecretKeySelector(name=ref.name, key=ref.key)
    )
    return client.V1EnvVar(name=name, value_from=source)


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def observe_job(
    job: dict[str, Any], region: str, pods: list[dict[str, Any]] | None = None, *, source: str
) -> JobObservation | None:
    """Turn a Job (JSON) and optionally its pods into an observation; None if unmanaged."""
    meta = job.get("metadata") or {}
    labels = meta.get("labels") or {}
    task_id = labels.get(LABEL_TASK_ID)
    if not task_id:
        return None
    try:
        attempt = int(labels.get(LABEL_ATTEMPT, "0"))
        resource_version = int(meta.get("resourceVersion") or 0)
    except ValueError:
        return None
    status = job.get("status") or {}
    obs = JobObservation(
        task_id=task_id,
        attempt=attempt,
        region=region,
        job_name=str(meta.get("name")),
        phase=JobPhase.PENDING,
        resource_version=resource_version,
        source=source,
        observed_at=datetime.now(UTC),
        namespace=meta.get("namespace") or None,
    )
    complete = _condition(status, "Complete")
    failed = _condition(status, "Failed")
    if complete:
        obs.phase = JobPhase.SUCCEEDED
        obs.exit_code = 0
    elif failed:
        obs.phase = JobPhase.FAILED
        obs.reason = failed.get("reason")
        obs.message = failed.get("message")
        # Without pods we cannot tell a crash from a lost node; the caller reads pods
        # for failed Jobs. A deadline is the task's own fault.
        obs.failure_kind = FailureKind.APPLICATION
    elif int(status.get("ready") or 0) > 0:
        # `active` counts pending pods too; only a ready pod means the task runs. (A
        # zero count may be left out of the status, as the API server does.)
        obs.phase = JobPhase.RUNNING
    template_annotations = (
        ((job.get("spec") or {}).get("template") or {}).get("metadata") or {}
    ).get("annotations") or {}
    port = template_annotations.get(ANNOTATION_STATUS_PORT)
    if port and str(port).isdigit():
        obs.status_port = int(port)
    if pods:
        _apply_pods(obs, pods)
    if (
        pods is not None
        and obs.phase is JobPhase.FAILED
        and obs.exit_code is None
        and obs.failure_kind is not FailureKind.INFRASTRUCTURE
        and obs.reason != "DeadlineExceeded"
    ):
        # The pods were read and none says how the task ended: its pod was removed
        # (deleted, its node gone) before it could exit. Nothing blames the task, so
        # this is the infrastructure's failure, and the task moves instead of retrying.
        obs.failure_kind = FailureKind.INFRASTRUCTURE
        obs.message = f"pod gone before it exited ({obs.reason or 'no reason given'})"
        obs.reason = "PodGone"
    return obs


def _apply_pods(obs: JobObservation, pods: list[dict[str, Any]]) -> None:
    # The newest pod tells the current story.
    pods = sorted(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
    pod = pods[-1]
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    obs.node_name = spec.get("nodeName")
    phase = status.get("phase")
    if phase == "Running" and obs.phase is JobPhase.PENDING:
        obs.phase = JobPhase.RUNNING
    for cond in status.get("conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            obs.unschedulable_since = _parse_time(cond.get("lastTransitionTime"))
            obs.message = cond.get("message")
    for cstatus in status.get("containerStatuses") or []:
        terminated = (cstatus.get("state") or {}).get("terminated")
        if terminated is not None:
            obs.exit_code = int(terminated.get("exitCode", 0))
            obs.reason = obs.reason or terminated.get("reason")
    pod_reason = status.get("reason")
    if obs.phase is JobPhase.FAILED or phase == "Failed":
        if pod_reason in INFRA_POD_REASONS:
            obs.failure_kind = FailureKind.INFRASTRUCTURE
            obs.reason = pod_reason
            obs.message = status.get("message") or obs.message
        elif obs.exit_code not in (None, 0):
            obs.failure_kind = FailureKind.APPLICATION
