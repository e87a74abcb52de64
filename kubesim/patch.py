"""Patch formats: JSON merge patch (RFC 7386), strategic merge (simplified) and JSON patch."""

from __future__ import annotations

from typing import Any

from kubesim import errors
from kubesim.util import clone

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = merge_patch(result.get(key), value)
        else:
            result[key] = clone(value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge as kubesim supports it: maps merge, lists are replaced.

    The real one merges some lists by key (containers by name, ...); the engine only
    patches maps and scalars (labels, annotations, spec.suspend, spec.unschedulable).
    Directives such as ``$patch: delete`` on a map are honoured; others are dropped.
    """
    if not isinstance(patch, dict):
        return clone(patch)
    if patch.get("$patch") == "delete":
        return None
    if patch.get("$patch") == "replace":
        return {k: clone(v) for k, v in patch.items() if not k.startswith("$")}
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = clone(value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise errors.bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> tuple[Any, str]:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise errors.ApiError(
                errors.status_failure(
                    422,
                    "Invalid",
                    "the server rejected our request due to an error in our request: "
                    f"missing path element {part!r}",
                )
            )
    return node, parts[-1]


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise errors.bad_request("json patch must be a list of operations")
    doc = clone(target)
    for op in operations:
        kind = op.get("op")
        parts = _pointer(op.get("path", ""))
        try:
            if kind in {"add", "replace"}:
                parent, last = _parent(doc, parts)
                value = clone(op.get("value"))
                if isinstance(parent, list):
                    if last == "-":
                        parent.append(value)
                    elif kind == "add":
                        parent.insert(int(last), value)
                    else:
                        parent[int(last)] = value
                else:
                    if kind == "replace" and last not in parent:
                        raise KeyError(last)
                    parent[last] = value
            elif kind == "remove":
                parent, last = _parent(doc, parts)
                if isinstance(parent, list):
                    parent.pop(int(last))
                else:
                    del parent[last]
            elif kind == "test":
                parent, last = _parent(doc, parts)
                current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
                if current != op.get("value"):
                    raise errors.ApiError(
                        errors.status_failure(422, "Invalid", "testing value failed")
                    )  # noqa: E501
            elif kind in {"move", "copy"}:
                src_parent, src_last = _parent(doc, _pointer(op.get("from", "")))
                value = (
                    src_parent[int(src_last)]
                    if isinstance(src_parent, list)
                    else src_parent[src_last]  # noqa: E501
                )
                if kind == "move":
                    if isinstance(src_parent, list):
                        src_parent.pop(int(src_last))
                    else:
                        del src_parent[src_last]
                parent, last = _parent(doc, parts)
                if isinstance(parent, list):
                    parent.insert(len(parent) if last == "-" else int(last), clone(value))
                else:
                    parent[last] = clone(value)
            else:
                raise errors.bad_request(f"unknown json patch operation {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise errors.ApiError(
                errors.status_failure(
                    422,
                    "Invalid",
                    f"the server rejected our request due to an error in our request: {exc}",  # noqa: E501
                )
            ) from exc
    return doc


def apply_patch(content_type: str, target: Any, patch: Any) -> Any:
    base = content_type.split(";")[0].strip().lower()
    if base == MERGE:
        return merge_patch(target, patch)
    if base == STRATEGIC:
        return strategic_merge_patch(target, patch)
    if base == JSON_PATCH:
        return json_patch(target, patch)
    if base == APPLY:
        # Server-side apply without managed fields: merge the applied config.
        return merge_patch(target, patch)
    raise errors.unsupported_media(content_type)
