"""Kubernetes labels, annotations and env on every Job Meridian creates.

One module for all of them: the watch, the sweeps, the scaling loop and the Job
builder select and fence by these keys, so they must agree to the letter.
"""

from __future__ import annotations

# Kubernetes labels, annotations and env on every Job Meridian creates
LABEL_MANAGED = "meridian.io/managed"
LABEL_TASK_ID = "meridian.io/task-id"
LABEL_ATTEMPT = "meridian.io/attempt"
LABEL_BUSINESS_UNIT = "meridian.io/business-unit"
ANNOTATION_STATUS_PORT = "meridian.io/status-port"
ENV_ATTEMPT = "MERIDIAN_ATTEMPT"
ENV_TASK_ID = "MERIDIAN_TASK_ID"
MANAGED_SELECTOR = f"{LABEL_MANAGED}=true"
