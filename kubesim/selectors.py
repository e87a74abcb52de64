"""Label and field selectors with the grammar of apimachinery's ``labels.Parse``."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubesim.errors import ApiError, bad_request
from kubesim.types import Obj

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")
_CMP_RE = re.compile(rf"^\s*({_KEY})\s*(==|=|!=|>|<)\s*({_VALUE})\s*$")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists", ">", "<"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.op
        if op == "=":
            return labels.get(self.key) == self.values[0]
        if op == "!=":
            return labels.get(self.key) != self.values[0]
        if op == "in":
            return labels.get(self.key) in self.values
        if op == "notin":
            return labels.get(self.key) not in self.values
        if op == "exists":
            return self.key in labels
        if op == "!exists":
            return self.key not in labels
        value = labels.get(self.key)
        if value is None:
            return False
        try:
            number = int(value)
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if op == ">" else number < bound


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside a ``(...)`` value set."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


class LabelSelector:
    def __init__(self, requirements: list[Requirement]) -> None:
        self.requirements = requirements

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        if not text or not text.strip():
            return cls([])
        requirements: list[Requirement] = []
        for part in _split_top_level(text):
            if not part.strip():
                raise _invalid_selector(text)
            requirements.append(_parse_requirement(part, text))
        return cls(requirements)

    @classmethod
    def from_label_selector(cls, selector: Obj | None) -> LabelSelector:
        """Convert a metav1.LabelSelector (matchLabels + matchExpressions)."""
        if not selector:
            return cls([])
        requirements = [
            Requirement(k, "=", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()
        ]
        ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
        for expr in selector.get("matchExpressions") or []:
            op = ops.get(expr.get("operator", ""))
            if op is None:
                raise bad_request(f"{expr.get('operator')!r} is not a valid selector operator")
            values = tuple(str(v) for v in expr.get("values") or [])
            requirements.append(Requirement(str(expr["key"]), op, values))
        return cls(requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def equality_hints(self) -> list[tuple[str, str]]:
        """(key, value) pairs every match must carry; used to narrow lists by index."""
        return [
            (r.key, r.values[0])
            for r in self.requirements
            if r.op == "=" or (r.op == "in" and len(r.values) == 1)
        ]


def _invalid_selector(text: str) -> ApiError:
    return bad_request(f"unable to parse requirement: invalid label selector: {text!r}")


def _parse_requirement(part: str, whole: str) -> Requirement:
    match = _SET_RE.match(part)
    if match:
        values = tuple(v.strip() for v in match.group(3).split(",") if v.strip())
        return Requirement(match.group(1), match.group(2), values)
    match = _EXISTS_RE.match(part)
    if match:
        return Requirement(match.group(2), "!exists" if match.group(1) else "exists")
    match = _CMP_RE.match(part)
    if match:
        op = "=" if match.group(2) == "==" else match.group(2)
        if op in {">", "<"} and not match.group(3).lstrip("-").isdigit():
            raise _invalid_selector(whole)
        return Requirement(match.group(1), op, (match.group(3),))
    raise _invalid_selector(whole)


FieldGetter = Callable[[Obj], str]


def _path(*keys: str) -> FieldGetter:
    def get(obj: Obj) -> str:
        value: Any = obj
        for key in keys:
            if not isinstance(value, dict):
                return ""
            value = value.get(key)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return get


_COMMON_FIELDS: dict[str, FieldGetter] = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
}

# Field labels each resource supports, as registered by its REST strategy
# (GetAttrs / AddFieldLabelConversionFunc). Others are rejected with 400 as upstream.
FIELDS: dict[str, dict[str, FieldGetter]] = {
    "pods": {
        "spec.nodeName": _path("spec", "nodeName"),
        "spec.restartPolicy": _path("spec", "restartPolicy"),
        "spec.schedulerName": _path("spec", "schedulerName"),
        "spec.serviceAccountName": _path("spec", "serviceAccountName"),
        "status.phase": _path("status", "phase"),
        "status.podIP": _path("status", "podIP"),
        "status.nominatedNodeName": _path("status", "nominatedNodeName"),
    },
    "jobs": {"status.successful": _path("status", "succeeded")},
    "nodes": {"spec.unschedulable": _path("spec", "unschedulable")},
    "namespaces": {"status.phase": _path("status", "phase")},
    "events": {
        "involvedObject.kind": _path("involvedObject", "kind"),
        "involvedObject.namespace": _path("involvedObject", "namespace"),
        "involvedObject.name": _path("involvedObject", "name"),
        "involvedObject.uid": _path("involvedObject", "uid"),
        "involvedObject.apiVersion": _path("involvedObject", "apiVersion"),
        "involvedObject.resourceVersion": _path("involvedObject", "resourceVersion"),
        "involvedObject.fieldPath": _path("involvedObject", "fieldPath"),
        "reason": _path("reason"),
        "reportingComponent": _path("reportingComponent"),
        "source": _path("source", "component"),
        "type": _path("type"),
    },
    "poddisruptionbudgets": {},
}


class FieldSelector:
    def __init__(self, terms: list[tuple[str, FieldGetter, bool, str]]) -> None:
        # (field, getter, equal?, value)
        self.terms = terms

    @classmethod
    def parse(cls, text: str | None, resource: str) -> FieldSelector:
        if not text or not text.strip():
            return cls([])
        supported = {**_COMMON_FIELDS, **FIELDS.get(resource, {})}
        terms: list[tuple[str, FieldGetter, bool, str]] = []
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "!=" in part:
                name, value = part.split("!=", 1)
                equal = False
            elif "==" in part:
                name, value = part.split("==", 1)
                equal = True
            elif "=" in part:
                name, value = part.split("=", 1)
                equal = True
            else:
                raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
            name = name.strip()
            getter = supported.get(name)
            if getter is None:
                raise bad_request(f"field label not supported: {name}")
            terms.append((name, getter, equal, value.strip()))
        return cls(terms)

    @property
    def empty(self) -> bool:
        return not self.terms

    def matches(self, obj: Obj) -> bool:
        for _, getter, equal, value in self.terms:
            if (getter(obj) == value) != equal:
                return False
        return True

    def exact(self, field: str) -> str | None:
        for name, _, equal, value in self.terms:
            if name == field and equal:
                return value
        return None
