"""Builders for policy inputs: whole-CPU nodes of 8 CPU / 32 GiB unless told."""

from __future__ import annotations

from typing import Any

from meridian.scaling import NodeObservation, PoolObservation, Request

GIB = 1024**3
CPU = 8000
MEM = 32 * GIB


def node(
    name: str,
    used: float = 0.0,
    *,
    pool: str = "general",
    ready: bool = True,
    tasks: list[str] | None = None,
    **extra: Any,
) -> NodeObservation:
    return NodeObservation(
        name=name,
        pool=pool,
        ready=ready,
        cpu_allocatable=CPU,
        mem_allocatable=MEM,
        cpu_requested=int(CPU * used),
        mem_requested=int(MEM * used * 0.5),
        task_ids=tasks or [],
        **extra,
    )


def pool(
    name: str = "general", *, min: int = 1, desired: int = 3, max: int = 10, **extra: Any
) -> PoolObservation:
    return PoolObservation(
        name=name,
        min=min,
        desired=desired,
        max=max,
        current=desired,
        ready=desired,
        node_cpu=CPU,
        node_mem=MEM,
        **extra,
    )


def request(id: str, cpu: float, mem_gib: float = 1) -> Request:
    return Request(id=id, cpu=int(cpu * 1000), mem=int(mem_gib * GIB))
