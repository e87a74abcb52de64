"""What the control-plane components may use of the cluster that owns them.

The scheduler, the kubelet and the controllers are built by ``Cluster`` and keep a
reference back to it. Each types that reference with the protocol below that names only
what it uses, so a component's reach into its cluster is visible (and checked) here;
``Cluster`` satisfies all of them structurally.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any, Protocol

from kubesim.config import Defaults
from kubesim.nodes import NodeState
from kubesim.store import Store
from kubesim.types import Obj


class Recorder(Protocol):
    """Records a Kubernetes Event about an object (``kubesim.events.EventRecorder``)."""

    def record(
        self, involved: Obj, type_: str, reason: str, message: str, component: str
    ) -> None: ...


class StoreOwner(Protocol):
    @property
    def store(self) -> Store: ...


class PdbCluster(StoreOwner, Protocol):
    """The disruption controller only reads pods and writes PDB status."""


class GcCluster(StoreOwner, Protocol):
    """The garbage collector deletes dependents the way the API does (gracefully)."""

    def delete_pod(self, namespace: str, name: str, grace: int | None) -> Obj | None: ...


class JobCluster(GcCluster, Protocol):
    @property
    def defaults(self) -> Defaults: ...

    @property
    def events(self) -> Recorder: ...

    def delete_job(self, namespace: str, name: str, policy: str) -> tuple[Obj, bool]: ...


class SchedulerCluster(StoreOwner, Protocol):
    @property
    def name(self) -> str: ...

    @property
    def events(self) -> Recorder: ...

    @property
    def nodes(self) -> Mapping[str, NodeState]: ...


class KubeletCluster(StoreOwner, Protocol):
    @property
    def defaults(self) -> Defaults: ...

    @property
    def events(self) -> Recorder: ...

    @property
    def nodes(self) -> Mapping[str, NodeState]: ...

    def node_ip(self, node: str) -> str: ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None: ...
