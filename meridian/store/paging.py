"""Opaque keyset cursors over (created_at, id).

A cursor is the position of the last row of a page, base64url-encoded JSON. Being a
position rather than an offset, paging neither skips nor repeats rows while tasks are
added or change status between requests.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from meridian.store.types import ensure_aware

INVALID_CURSOR = "invalid cursor"


def encode_cursor(created_at: datetime, task_id: str) -> str:
    raw = json.dumps([ensure_aware(created_at).isoformat(), task_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii"))
        value = json.loads(raw)
        if not (isinstance(value, list) and len(value) == 2):
            raise ValueError(INVALID_CURSOR)
        stamp, task_id = value
        if not (isinstance(stamp, str) and isinstance(task_id, str) and task_id):
            raise ValueError(INVALID_CURSOR)
        return ensure_aware(datetime.fromisoformat(stamp)), task_id
    except (ValueError, UnicodeError, binascii.Error, RecursionError) as exc:
        raise ValueError(INVALID_CURSOR) from exc
