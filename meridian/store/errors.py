"""Errors the store raises on purpose; callers map them (409, 404, non-retryable)."""

from __future__ import annotations


class StoreError(Exception):
    """Base class for the store's own errors."""


class TaskConflictError(StoreError):
    """The id or idempotency key is taken by a task with a different spec."""

    def __init__(self, task_id: str, message: str) -> None:
        super().__init__(message)
        self.task_id = task_id


class TaskNotFoundError(StoreError, LookupError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id!r} not found")
        self.task_id = task_id
