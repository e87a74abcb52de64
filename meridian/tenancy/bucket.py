"""The submission rate as a token bucket: `rate` tokens a second, saved up to `burst`.

Pure, so that the store can keep the bucket in a row (tokens, refilled_at) and update it
in the transaction that admits the task: every API replica then draws from one bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Bucket:
    tokens: float
    refilled_at: datetime


@dataclass(frozen=True)
class Take:
    allowed: bool
    bucket: Bucket  # the bucket to store: unchanged when refused
    retry_after_seconds: int  # 0 when allowed


def take(bucket: Bucket, now: datetime, *, rate: float, burst: int) -> Take:
    """Take one token at `now`. A `now` before the last refill (another replica's clock
    runs a little ahead) refills nothing rather than draining the bucket."""
    elapsed = max(0.0, (now - bucket.refilled_at).total_seconds())
    tokens = min(float(burst), bucket.tokens + elapsed * rate)
    refilled = Bucket(tokens=tokens, refilled_at=max(now, bucket.refilled_at))
    if tokens >= 1.0:
        return Take(True, Bucket(tokens - 1.0, refilled.refilled_at), 0)
    wait = math.ceil((1.0 - tokens) / rate)
    return Take(False, bucket, max(1, wait))
