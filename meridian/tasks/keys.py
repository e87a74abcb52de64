"""A task's key: the one internal name of a task, derived from its business unit and its
public id.

Public ids (what a user chooses or is given, and names in API paths) are scoped per
business unit: two units may both have a task `nightly`. Everything that must be unique
across the whole deployment uses the key instead: the store's primary key, the Temporal
workflow id, the `meridian.io/task-id` label of the task's Jobs (and, through
`job_name_for`, their names).

The key is `<business_unit>.<public_id>`. A public id is a DNS-1123 label, so it has no
dot, and the last dot of a key separates the two halves unambiguously; still, nothing
parses a key back: the store keeps the unit and the public id in their own columns.
A key must stay a Kubernetes label value (63 characters at most): a longer one is cut
and followed by a hash of the whole, as `job_name_for` does for Job names.

Tasks created before ids were scoped keep the key they had (their public id): their
workflows and Jobs are left exactly as they were.
"""

from __future__ import annotations

import hashlib

TASK_KEY_MAX = 63  # a Kubernetes label value's limit
KEY_SEPARATOR = "."
# 12 hex digits (48 bits): two long keys sharing their first 50 characters stay distinct.
KEY_DIGEST_CHARS = 12


def task_key(business_unit: str, public_id: str) -> str:
    """The key of the task `public_id` of `business_unit` (both already validated: a
    label value and a DNS-1123 label). Deterministic: the same pair always gives the
    same key, which keeps a retried submit on the same workflow."""
    whole = f"{business_unit}{KEY_SEPARATOR}{public_id}"
    if len(whole) <= TASK_KEY_MAX:
        return whole
    digest = hashlib.sha256(whole.encode()).hexdigest()[:KEY_DIGEST_CHARS]
    keep = TASK_KEY_MAX - KEY_DIGEST_CHARS - 1
    # A label value must end with a letter or digit; the digest does, and the cut may
    # end on any character a label value allows inside it.
    return f"{whole[:keep]}-{digest}"
