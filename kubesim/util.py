"""Small helpers shared by the API layer and the controllers."""

from __future__ import annotations

import random
import re
import string
import time
import uuid
from datetime import UTC, datetime
from typing import Any

_ALNUM = string.ascii_lowercase + string.digits
# The real name generator avoids vowels and confusable digits (names.SimpleNameGenerator).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def now_iso(ts: float | None = None) -> str:
    """RFC 3339 with second precision, as metav1.Time serialises."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> float:
    # fromisoformat is an order of magnitude faster than strptime (Job syncs call this).
    return datetime.fromisoformat(value[:19]).replace(tzinfo=UTC).timestamp()


# From the OS, not the `random` module's shared generator: a library that seeds or
# restores that one (hypothesis does around its tests) can make it replay suffixes it
# gave before, and a `generateName` create then meets 409 AlreadyExists (seen once in
# CI, in a kubesim serving tests from a thread of the test process).
_SUFFIX_RANDOM = random.SystemRandom()


def random_suffix(length: int = 5) -> str:
    return "".join(_SUFFIX_RANDOM.choices(_SUFFIX_ALPHABET, k=length))


def new_uid() -> str:
    return str(uuid.uuid4())


def clone(value: Any) -> Any:
    """Deep copy of JSON-shaped data; several times faster than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def dns1123_subdomain_errors(value: str) -> list[str]:
    errors = []
    if len(value) > 253:
        errors.append("must be no more than 253 characters")
    if not DNS1123_SUBDOMAIN.match(value):
        errors.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
            "characters, '-' or '.', and must start and end with an alphanumeric character "
            "(e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    return errors


def dns1123_label_errors(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not DNS1123_LABEL.match(value):
        errors.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
            "or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  "
            "or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        )
    return errors
