"""Decode the Kubernetes protobuf request bodies kubectl sends for typed writes.

``kubectl create job`` and ``kubectl drain`` post ``application/vnd.kubernetes.protobuf``
bodies (a ``k8s\\0`` magic followed by a runtime.Unknown envelope). kubesim decodes the
subset of k8s.io/api generated.proto those commands produce and answers in JSON, which
the client accepts. Field numbers are from k8s.io/api/*/v1/generated.proto.
"""

from __future__ import annotations

from typing import Any

from kubesim import errors
from kubesim.types import Obj

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

# A field: (json name, type, repeated, keep zero/empty values)
Field = tuple[str, Any, bool, bool]
Schema = dict[int, Field]


def _f(name: str, type_: Any, repeated: bool = False, keep: bool = False) -> Field:
    return (name, type_, repeated, keep)


QUANTITY: Schema = {1: _f("string", "string")}
OWNER_REFERENCE: Schema = {
    1: _f("kind", "string"),
    3: _f("name", "string"),
    4: _f("uid", "string"),
    5: _f("apiVersion", "string"),
    6: _f("controller", "bool", keep=True),
    7: _f("blockOwnerDeletion", "bool", keep=True),
}
OBJECT_META: Schema = {
    1: _f("name", "string"),
    2: _f("generateName", "string"),
    3: _f("namespace", "string"),
    5: _f("uid", "string"),
    6: _f("resourceVersion", "string"),
    11: _f("labels", "map"),
    12: _f("annotations", "map"),
    13: _f("ownerReferences", OWNER_REFERENCE, repeated=True),
    14: _f("finalizers", "string", repeated=True),
}
SELECTOR_REQUIREMENT: Schema = {
    1: _f("key", "string"),
    2: _f("operator", "string"),
    3: _f("values", "string", True),
}
LABEL_SELECTOR: Schema = {
    1: _f("matchLabels", "map"),
    2: _f("matchExpressions", SELECTOR_REQUIREMENT, True),
}
ENV_VAR: Schema = {1: _f("name", "string"), 2: _f("value", "string", keep=True)}
CONTAINER_PORT: Schema = {
    1: _f("name", "string"),
    2: _f("hostPort", "int"),
    3: _f("containerPort", "int"),
    4: _f("protocol", "string"),
    5: _f("hostIP", "string"),
}
RESOURCES: Schema = {1: _f("limits", "quantities"), 2: _f("requests", "quantities")}
CONTAINER: Schema = {
    1: _f("name", "string"),
    2: _f("image", "string"),
    3: _f("command", "string", True),
    4: _f("args", "string", True),
    5: _f("workingDir", "string"),
    6: _f("ports", CONTAINER_PORT, True),
    7: _f("env", ENV_VAR, True),
    8: _f("resources", RESOURCES, keep=True),
    13: _f("terminationMessagePath", "string"),
    14: _f("imagePullPolicy", "string"),
    16: _f("stdin", "bool"),
    17: _f("stdinOnce", "bool"),
    18: _f("tty", "bool"),
    20: _f("terminationMessagePolicy", "string"),
}
TOLERATION: Schema = {
    1: _f("key", "string"),
    2: _f("operator", "string"),
    3: _f("value", "string"),
    4: _f("effect", "string"),
    5: _f("tolerationSeconds", "int", keep=True),
}
POD_SPEC: Schema = {
    2: _f("containers", CONTAINER, True),
    3: _f("restartPolicy", "string"),
    4: _f("terminationGracePeriodSeconds", "int", keep=True),
    5: _f("activeDeadlineSeconds", "int", keep=True),
    6: _f("dnsPolicy", "string"),
    7: _f("nodeSelector", "map"),
    8: _f("serviceAccountName", "string"),
    10: _f("nodeName", "string"),
    19: _f("schedulerName", "string"),
    20: _f("initContainers", CONTAINER, True),
    22: _f("tolerations", TOLERATION, True),
    24: _f("priorityClassName", "string"),
    25: _f("priority", "int", keep=True),
}
POD_TEMPLATE: Schema = {
    1: _f("metadata", OBJECT_META, keep=True),
    2: _f("spec", POD_SPEC, keep=True),
}  # noqa: E501
JOB_SPEC: Schema = {
    1: _f("parallelism", "int", keep=True),
    2: _f("completions", "int", keep=True),
    3: _f("activeDeadlineSeconds", "int", keep=True),
    4: _f("selector", LABEL_SELECTOR),
    5: _f("manualSelector", "bool", keep=True),
    6: _f("template", POD_TEMPLATE, keep=True),
    7: _f("backoffLimit", "int", keep=True),
    8: _f("ttlSecondsAfterFinished", "int", keep=True),
    9: _f("completionMode", "string"),
    10: _f("suspend", "bool", keep=True),
    14: _f("podReplacementPolicy", "string"),
}
JOB: Schema = {1: _f("metadata", OBJECT_META, keep=True), 2: _f("spec", JOB_SPEC, keep=True)}
POD: Schema = {1: _f("metadata", OBJECT_META, keep=True), 2: _f("spec", POD_SPEC, keep=True)}
NAMESPACE: Schema = {1: _f("metadata", OBJECT_META, keep=True)}
PRECONDITIONS: Schema = {1: _f("uid", "string"), 2: _f("resourceVersion", "string")}
DELETE_OPTIONS: Schema = {
    1: _f("gracePeriodSeconds", "int", keep=True),
    2: _f("preconditions", PRECONDITIONS),
    3: _f("orphanDependents", "bool", keep=True),
    4: _f("propagationPolicy", "string"),
    5: _f("dryRun", "string", True),
}
EVICTION: Schema = {
    1: _f("metadata", OBJECT_META, keep=True),
    2: _f("deleteOptions", DELETE_OPTIONS),
}
PDB_SPEC: Schema = {
    1: _f("minAvailable", "intorstring"),
    2: _f("selector", LABEL_SELECTOR),
    3: _f("maxUnavailable", "intorstring"),
}
PDB: Schema = {1: _f("metadata", OBJECT_META, keep=True), 2: _f("spec", PDB_SPEC, keep=True)}
INT_OR_STRING: Schema = {
    1: _f("type", "int", keep=True),
    2: _f("intVal", "int", keep=True),
    3: _f("strVal", "string"),
}

SCHEMAS: dict[str, Schema] = {
    "Job": JOB,
    "Pod": POD,
    "Namespace": NAMESPACE,
    "Eviction": EVICTION,
    "DeleteOptions": DELETE_OPTIONS,
    "PodDisruptionBudget": PDB,
}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value = data[pos : pos + length]
            pos += length
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _map_entry(raw: bytes) -> tuple[str, bytes]:
    key, value = "", b""
    for number, _, item in _fields(raw):
        if number == 1:
            key = item.decode()
        elif number == 2:
            value = item
    return key, value


def decode_message(data: bytes, schema: Schema) -> Obj:
    result: Obj = {}
    for number, _, raw in _fields(data):
        spec = schema.get(number)
        if spec is None:
            continue
        name, type_, repeated, keep = spec
        value: Any
        if type_ == "string":
            value = raw.decode()
        elif type_ == "int":
            value = _signed(raw)
        elif type_ == "bool":
            value = bool(raw)
        elif type_ == "map":
            key, item = _map_entry(raw)
            result.setdefault(name, {})[key] = item.decode()
            continue
        elif type_ == "quantities":
            key, item = _map_entry(raw)
            result.setdefault(name, {})[key] = decode_message(item, QUANTITY).get("string", "0")
            continue
        elif type_ == "intorstring":
            parsed = decode_message(raw, INT_OR_STRING)
            value = parsed.get("strVal", "") if parsed.get("type") == 1 else parsed.get("intVal", 0)  # noqa: E501
            keep = True
        else:
            value = decode_message(raw, type_)
        if repeated:
            result.setdefault(name, []).append(value)
        elif keep or value not in ("", False, 0, {}):
            result[name] = value
    return result


def decode(body: bytes) -> Obj:
    """A protobuf request body as the JSON object it stands for."""
    if not body.startswith(MAGIC):
        raise errors.bad_request("protobuf body without the k8s magic prefix")
    try:
        envelope = _fields(body[len(MAGIC) :])
        type_meta: Obj = {}
        raw = b""
        for number, _, value in envelope:
            if number == 1:
                type_meta = decode_message(
                    value, {1: _f("apiVersion", "string"), 2: _f("kind", "string")}
                )
            elif number == 2:
                raw = value
        kind = type_meta.get("kind", "")
        schema = SCHEMAS.get(kind)
        if schema is None:
            raise errors.unsupported_media(CONTENT_TYPE)
        obj = decode_message(raw, schema)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"cannot decode protobuf body: {exc}") from exc
    obj["kind"] = kind
    if type_meta.get("apiVersion"):
        obj["apiVersion"] = type_meta["apiVersion"]
    return obj
