"""What a task may ask for, beyond what its model accepts: checked by `check_spec` on
submit, modify and the placement dry run, each breach a FieldError naming the field.

- Every string of the spec is free of control characters (NUL, escapes, DEL, C1): they
  end up in logs, terminals, the Temporal UI and the container's own argv and env.
  Scripts keep tab, newline and carriage return in command, args, env and annotation
  values, where Kubernetes allows them and `sh -c` scripts need them.
- The image comes from a registry the business unit is allowed (settings).
- cpu and memory within the bounds of the settings, and within the largest node of the
  fleet: a pod larger than every node waits for ever, so it is refused up front.
- No annotation under meridian.io/ (Meridian's own) nor on the deny-list: AppArmor's and
  seccomp's per-pod overrides, and the settings' own prefixes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from meridian.placement.format import cpu_text, memory_text
from meridian.quantity import parse_cpu_millis, parse_memory_bytes
from meridian.regions.config import NodePoolConfig, RegionsFile
from meridian.settings import PolicySettings
from meridian.tasks.spec import FieldError, Loc, TaskSpec

RESERVED_ANNOTATION_PREFIXES = ("meridian.io/",)
DENIED_ANNOTATION_PREFIXES = (
    # Would replace the pod's AppArmor and seccomp profiles (the restricted profile's).
    "container.apparmor.security.beta.kubernetes.io/",
    "seccomp.security.alpha.kubernetes.io/",
)
# Fields whose values are free text (scripts, configuration): these three may stay.
TEXT_WHITESPACE = frozenset("\t\n\r")
TEXT_FIELDS = (("job", "command"), ("job", "args"), ("job", "env"), ("job", "annotations"))
DOCKER_HUB = "docker.io"


def string_errors(spec: TaskSpec) -> list[FieldError]:
    """Every string of the spec (keys included) holding a control character."""
    errors: list[FieldError] = []
    for loc, text, is_key in _strings(spec.model_dump(mode="python"), ()):
        allowed = TEXT_WHITESPACE if not is_key and loc[:2] in TEXT_FIELDS else frozenset()
        bad = next((c for c in text if _is_control(c) and c not in allowed), None)
        if bad is not None:
            what = "a key" if is_key else "the value"
            msg = f"{what} must not contain control characters (found U+{ord(bad):04X})"
            errors.append(FieldError(loc=loc, msg=msg, type="value_error"))
    return errors


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"


def _strings(value: Any, loc: Loc) -> Iterator[tuple[Loc, str, bool]]:
    """(loc, text, is_key) of every string in a dumped spec; a key's loc is its map's."""
    if isinstance(value, str):
        yield loc, value, False
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield loc, key, True
                # A key with a control character is reported once, at the map.
                if any(_is_control(c) for c in key):
                    continue
            yield from _strings(item, (*loc, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*loc, i))


def policy_errors(spec: TaskSpec, policy: PolicySettings, regions: RegionsFile) -> list[FieldError]:
    return [
        *image_errors(spec, policy),
        *size_errors(spec, policy, regions),
        *annotation_errors(spec, policy),
    ]


def image_errors(spec: TaskSpec, policy: PolicySettings) -> list[FieldError]:
    allowed = policy.registries_for(spec.business_unit)
    if not allowed:
        return []
    image = full_image_name(spec.job.image)
    if any(_under(image, prefix) for prefix in allowed):
        return []
    msg = (
        f"image {spec.job.image!r} ({image}) is not from a registry allowed for business unit "
        f"{spec.business_unit!r}; allowed: {', '.join(allowed)}"
    )
    return [FieldError(loc=("job", "image"), msg=msg, type="value_error")]


def full_image_name(image: str) -> str:
    """The image as the container runtime resolves it: "busybox" is
    "docker.io/library/busybox", "me/app" is "docker.io/me/app"."""
    if "/" not in image:
        return f"{DOCKER_HUB}/library/{image}"
    return image if _is_registry(image.split("/", 1)[0]) else f"{DOCKER_HUB}/{image}"


def _is_registry(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def _under(image: str, prefix: str) -> bool:
    """`prefix` is a registry host or a path in it ("ghcr.io", "registry.example.com/ads/",
    "myorg" for Docker Hub's myorg/). A whole component must match: "registry.example.com"
    does not allow "registry.example.com.evil.io/x", nor "registry.example.com/ads"
    "registry.example.com/ads-evil/x"."""
    prefix = prefix.rstrip("/")
    if not _is_registry(prefix.split("/", 1)[0]):
        prefix = f"{DOCKER_HUB}/{prefix}"
    return image.startswith(f"{prefix}/")


@dataclass(frozen=True)
class NodeSize:
    cpu_millis: int
    memory_bytes: int


def fleet_node_sizes(regions: RegionsFile) -> list[NodeSize] | None:
    """The machine sizes of every node pool that may hold a node, from the regions file;
    None when some pool's size is not known.

    The regions file, not the regions' latest snapshots: a pool scaled to zero has no
    node in any snapshot but gets one as soon as a task needs it, and the snapshots keep
    only each region's largest *free* node. kubesim makes nodes of exactly these sizes
    (allocatable = capacity). A cloud pool that leaves its machine size unsaid (the
    defaults of NodePoolConfig are kubesim's) makes the fleet's size unknown: nothing is
    then refused for size rather than refusing what might fit.
    """
    sizes: list[NodeSize] = []
    for region in regions.regions:
        for pool in region.node_pools:
            if max(pool.count, pool.max) == 0:
                continue  # can never hold a node
            if not _size_known(pool):
                return None
            sizes.append(NodeSize(parse_cpu_millis(pool.cpu), parse_memory_bytes(pool.memory)))
    return sizes or None


def _size_known(pool: NodePoolConfig) -> bool:
    return pool.driver == "kubesim" or {"cpu", "memory"} <= pool.model_fields_set


def size_errors(spec: TaskSpec, policy: PolicySettings, regions: RegionsFile) -> list[FieldError]:
    resources = spec.job.resources
    cpu, memory = resources.cpu_millis, resources.memory_bytes
    errors: list[FieldError] = []
    if policy.max_cpu is not None and cpu > parse_cpu_millis(policy.max_cpu):
        msg = f"cpu {resources.cpu} is above the most a task may request, {policy.max_cpu}"
        errors.append(FieldError(loc=("job", "resources", "cpu"), msg=msg, type="value_error"))
    if policy.max_memory is not None and memory > parse_memory_bytes(policy.max_memory):
        msg = f"memory {resources.memory} is above the most a task may request, {policy.max_memory}"
        errors.append(FieldError(loc=("job", "resources", "memory"), msg=msg, type="value_error"))
    if errors:
        return errors
    sizes = fleet_node_sizes(regions)
    if sizes is None:
        return []
    top_cpu = max(s.cpu_millis for s in sizes)
    top_memory = max(s.memory_bytes for s in sizes)
    if cpu > top_cpu:
        msg = (
            f"cpu {resources.cpu} is more than the largest node of the fleet has "
            f"({cpu_text(top_cpu)}): it would never run"
        )
        errors.append(FieldError(loc=("job", "resources", "cpu"), msg=msg, type="value_error"))
    if memory > top_memory:
        msg = (
            f"memory {resources.memory} is more than the largest node of the fleet has "
            f"({memory_text(top_memory)}): it would never run"
        )
        errors.append(FieldError(loc=("job", "resources", "memory"), msg=msg, type="value_error"))
    if not errors and not any(cpu <= s.cpu_millis and memory <= s.memory_bytes for s in sizes):
        msg = (
            f"no node of the fleet has both cpu {resources.cpu} and memory {resources.memory}: "
            "it would never run"
        )
        errors.append(FieldError(loc=("job", "resources"), msg=msg, type="value_error"))
    return errors


def annotation_errors(spec: TaskSpec, policy: PolicySettings) -> list[FieldError]:
    denied = (
        *RESERVED_ANNOTATION_PREFIXES,
        *DENIED_ANNOTATION_PREFIXES,
        *policy.denied_annotation_prefixes,
    )
    errors: list[FieldError] = []
    for key in spec.job.annotations:
        prefix = next((p for p in denied if key.startswith(p)), None)
        if prefix is not None:
            msg = f"annotations under {prefix} are not allowed"
            loc = ("job", "annotations", key)
            errors.append(FieldError(loc=loc, msg=msg, type="value_error"))
    return errors
