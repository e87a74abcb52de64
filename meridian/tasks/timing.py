"""Timeouts a TaskWorkflow runs by, fixed when the workflow starts.

They come from settings through the starter (the API), travel in the workflow input,
and so stay deterministic for the workflow's whole life, replays included.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

# Each backstop period an attempt waits out makes the next this much longer.
BACKOFF = 4.0


class WorkflowTiming(BaseModel):
    # How long the workflow waits for a signal before it reads the Job itself.
    backstop_seconds: float = Field(30.0, gt=0)
    # The longest backstop period, reached by growing it 4-fold while the Job runs on;
    # None (a workflow started before it existed): every period is `backstop_seconds`.
    backstop_max_seconds: float | None = Field(None, gt=0)
    # Bound on a call to a region's unit worker, including the wait for it to be polled:
    # past it the region is treated as unreachable for this attempt.
    region_call_seconds: float = Field(15.0, gt=0)
    # A pod left unschedulable this long moves the task elsewhere.
    unschedulable_seconds: float = Field(60.0, gt=0)
    # How long a create that failed without an answer is sent again to the same region
    # (while it is not down) before the task moves (`failover.create_resend_seconds`).
    create_resend_seconds: float = Field(120.0, ge=0)
    unplaced_backoff_seconds: float = Field(2.0, gt=0)
    unplaced_backoff_max_seconds: float = Field(30.0, gt=0)
    history_event_limit: int = Field(2000, ge=100)
    # A task RUNNING whose backstop read finds its Job running on continues as new once
    # its history is longer than this, so that a later wake-up on a worker that does not
    # cache it replays a short history. None (a workflow started before it existed):
    # only `history_event_limit` rolls the history over.
    settled_history_events: int | None = Field(None, ge=10)

    def backstop_period(self, waited: int) -> float:
        """The backstop period after `waited` periods of one attempt have passed."""
        ceiling = max(self.backstop_seconds, self.backstop_max_seconds or self.backstop_seconds)
        # 2**waited grows without bound; stop doubling once past the ceiling.
        return float(min(ceiling, self.backstop_seconds * BACKOFF ** min(waited, 16)))
