"""One interface over every node-pool backend Meridian can grow and shrink.

The methods are synchronous on purpose: every cloud SDK used here is blocking, and the
engine calls them from Temporal *sync* activities on a thread pool.

Rules every adapter inherits from `NodePoolProvider` rather than re-implementing:

- Errors are mapped once, at this boundary, to the types below and raised `from` the SDK
  exception, so activities never import a cloud SDK to decide whether to retry.
- One owner per pool: when the pool's own autoscaler is on, `set_desired` raises
  `NodePoolOwnedByAutoscaler`; the caller may only move the bounds (`set_bounds`).
- A desired size outside [min, max] is refused before any call is made.
- Logs name pools and nodes, never clients, credentials or full response bodies.

Pool identifiers: an adapter is built from one pool's config (the regions file's
`NodePoolConfig` with its provider ids as extra fields). The `pool` argument of every
method is either that pool's Meridian name (`config["name"]`, translated to the
provider id) or a provider pool id in the same cluster, used as is.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger("meridian.nodepools")

# Response bodies can carry request ids and account names; logs keep only the start.
BODY_LOG_LIMIT = 200


class PoolState(BaseModel):
    """What a provider reports about one pool. `current` counts nodes that exist (ready
    or not); `desired` is the provider's target size."""

    model_config = ConfigDict(frozen=True)

    name: str
    min: int = Field(ge=0)
    desired: int = Field(ge=0)
    max: int = Field(ge=0)
    current: int = Field(ge=0)
    autoscaler_enabled: bool = False
    nodes: list[str] = Field(default_factory=list)


class NodePoolError(Exception):
    """Any failure of a node-pool call. `retryable` tells the activity whether a retry
    can help (server errors, timeouts) or not (bad request, permissions)."""

    retryable: bool = True

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class NodePoolThrottled(NodePoolError):
    """The provider asked us to slow down; `retry_after` in seconds when it said so."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message, retryable=True)
        self.retry_after = retry_after


class NodePoolNotFound(NodePoolError):
    retryable = False


class NodePoolOwnedByAutoscaler(NodePoolError):
    """The pool's own autoscaler owns its size; change its bounds instead."""

    retryable = False


class NodePoolInvalidRequest(NodePoolError):
    """A size or node list the pool cannot take (outside bounds, node not in pool)."""

    retryable = False


def retryable_status(status: int | None) -> bool:
    """HTTP statuses worth retrying: none (connection trouble), 408, 429 and 5xx."""
    return status is None or status in (408, 429) or status >= 500


def parse_retry_after(value: object) -> float | None:
    """Retry-After as seconds; HTTP-date forms are rare from cloud APIs and ignored."""
    if value is None:
        return None
    try:
        seconds = float(str(value).strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def short(text: object) -> str:
    value = str(text)
    return value if len(value) <= BODY_LOG_LIMIT else value[:BODY_LOG_LIMIT] + "..."


class NodePoolProvider(ABC):
    """Template for adapters: public methods validate, guard and map errors; adapters
    implement the `_`-prefixed primitives and `_map_error`."""

    driver: str = ""
    # Extra config key that holds the provider's own pool id (nodegroup, agent pool...).
    pool_id_key: str = ""

    def __init__(self, pool_config: Mapping[str, Any]) -> None:
        self.config: dict[str, Any] = dict(pool_config)
        self.name: str = str(self.config.get("name", ""))

    # ----------------------------------------------------------------- public API
    def describe(self, pool: str) -> PoolState:
        with self._errors("describe", pool):
            return self._describe(self.pool_id(pool))

    def list_nodes(self, pool: str) -> list[str]:
        with self._errors("list_nodes", pool):
            return self._list_nodes(self.pool_id(pool))

    def set_desired(self, pool: str, desired: int) -> PoolState:
        """Set the pool's target size. Returns the state it was changed from."""
        state = self.describe(pool)
        if state.autoscaler_enabled:
            raise NodePoolOwnedByAutoscaler(
                f"pool {pool}: its autoscaler owns the size; use set_bounds"
            )
        if not state.min <= desired <= state.max:
            raise NodePoolInvalidRequest(
                f"pool {pool}: desired {desired} outside [{state.min}, {state.max}]"
            )
        if desired == state.desired:
            return state
        log.info("pool %s (%s): desired %d -> %d", pool, self.driver, state.desired, desired)
        with self._errors("set_desired", pool):
            self._set_desired(self.pool_id(pool), desired, state)
        return state

    def set_bounds(self, pool: str, min_size: int, max_size: int) -> PoolState:
        """Set min and max. Adapters whose API requires min <= desired <= max clamp the
        current desired size into the new bounds in the same call."""
        if min_size < 0 or min_size > max_size:
            raise NodePoolInvalidRequest(f"pool {pool}: bounds [{min_size}, {max_size}]")
        state = self.describe(pool)
        log.info(
            "pool %s (%s): bounds [%d, %d] -> [%d, %d]",
            pool,
            self.driver,
            state.min,
            state.max,
            min_size,
            max_size,
        )
        with self._errors("set_bounds", pool):
            self._set_bounds(self.pool_id(pool), min_size, max_size, state)
        return state

    def remove_nodes(self, pool: str, node_names: list[str]) -> None:
        """Remove the named nodes and shrink the pool's target by as many. Nodes must
        belong to the pool and the target must stay at or above min."""
        if not node_names:
            return
        state = self.describe(pool)
        unknown = sorted(set(node_names) - set(state.nodes))
        if unknown:
            raise NodePoolInvalidRequest(f"pool {pool}: nodes not in pool: {unknown}")
        if state.desired - len(set(node_names)) < state.min:
            raise NodePoolInvalidRequest(
                f"pool {pool}: removing {len(node_names)} would go below min {state.min}"
            )
        log.info("pool %s (%s): removing nodes %s", pool, self.driver, sorted(node_names))
        with self._errors("remove_nodes", pool):
            self._remove_nodes(self.pool_id(pool), sorted(set(node_names)), state)

    # ------------------------------------------------------------- for adapters
    def pool_id(self, pool: str) -> str:
        if pool == self.name and self.pool_id_key and self.config.get(self.pool_id_key):
            return str(self.config[self.pool_id_key])
        return pool

    def _list_nodes(self, pool_id: str) -> list[str]:
        return self._describe(pool_id).nodes

    @abstractmethod
    def _describe(self, pool_id: str) -> PoolState: ...

    @abstractmethod
    def _set_desired(self, pool_id: str, desired: int, state: PoolState) -> None: ...

    @abstractmethod
    def _set_bounds(self, pool_id: str, min_size: int, max_size: int, state: PoolState) -> None: ...

    @abstractmethod
    def _remove_nodes(self, pool_id: str, node_names: list[str], state: PoolState) -> None: ...

    @abstractmethod
    def _map_error(self, exc: Exception, pool: str) -> NodePoolError | None:
        """The project error for an SDK exception, or None to let it propagate."""

    @contextmanager
    def _errors(self, operation: str, pool: str) -> Iterator[None]:
        try:
            yield
        except NodePoolError:
            raise
        except Exception as exc:
            mapped = self._map_error(exc, pool)
            if mapped is None:
                raise
            log.warning(
                "pool %s (%s) %s failed: %s: %s",
                pool,
                self.driver,
                operation,
                type(mapped).__name__,
                short(mapped),
            )
            raise mapped from exc


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def require(config: Mapping[str, Any], *keys: str) -> None:
    missing = [key for key in keys if not config.get(key)]
    if missing:
        raise ValueError(f"node pool config lacks {', '.join(missing)}")
