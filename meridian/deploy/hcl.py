"""A small HCL writer whose output `terraform fmt` leaves as it is.

Only what the fleet root needs: blocks, attributes, literals and raw expressions.
`terraform fmt` aligns the `=` of consecutive single-line attributes; a multi-line
attribute or a nested block ends such a run. Output is deterministic: the caller orders.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

INDENT = "  "


@dataclass(frozen=True)
class Raw:
    """An expression written as is: `var.x`, `module.a.b`, `aws.alias`."""

    text: str


@dataclass
class Block:
    type: str
    labels: list[str] = field(default_factory=list)
    body: list[Attr | Block | Blank] = field(default_factory=list)


@dataclass(frozen=True)
class Attr:
    key: str
    value: object


@dataclass(frozen=True)
class Blank:
    """An empty line inside a body: it also ends an alignment run, as in fmt."""


def literal(value: object, depth: int = 0) -> str:
    """HCL for a Python value; lists of scalars and small objects stay on one line."""
    if isinstance(value, Raw):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value)  # HCL strings escape as JSON's do (and `${` is absent)
    if isinstance(value, Mapping):
        return _object(value, depth) if value else "{}"
    if isinstance(value, Sequence):
        return _list(value, depth)
    raise TypeError(f"no HCL literal for {type(value).__name__}")


def _key(key: str) -> str:
    # Bare identifiers where HCL allows them, quoted otherwise (dots, slashes).
    ok = key and (key[0].isalpha() or key[0] == "_")
    ok = ok and all(c.isalnum() or c in "_-" for c in key)
    return key if ok else json.dumps(key)


def _inline_object(value: Mapping[str, object]) -> str | None:
    if any(isinstance(v, Mapping) and v for v in value.values()):
        return None
    parts = [f"{_key(k)} = {literal(v)}" for k, v in value.items()]
    return "{ " + ", ".join(parts) + " }" if parts else "{}"


def _object(value: Mapping[str, object], depth: int) -> str:
    lines = _attributes([Attr(k, v) for k, v in value.items()], depth + 1, quote=True)
    return "{\n" + "".join(lines) + INDENT * depth + "}"


def _list(value: Sequence[object], depth: int) -> str:
    if not value:
        return "[]"
    if all(not isinstance(v, Mapping) for v in value):
        return "[" + ", ".join(literal(v, depth) for v in value) + "]"
    items = []
    for item in value:
        inline = _inline_object(item) if isinstance(item, Mapping) else None
        items.append(INDENT * (depth + 1) + (inline or literal(item, depth + 1)) + ",\n")
    return "[\n" + "".join(items) + INDENT * depth + "]"


def _attributes(attrs: Sequence[Attr], depth: int, *, quote: bool = False) -> list[str]:
    """Lines for a run of attributes, aligned as fmt aligns them."""
    rendered = [(_key(a.key) if quote else a.key, literal(a.value, depth)) for a in attrs]
    lines: list[str] = []
    run: list[tuple[str, str]] = []

    def flush() -> None:
        width = max((len(k) for k, _ in run), default=0)
        lines.extend(f"{INDENT * depth}{k.ljust(width)} = {v}\n" for k, v in run)
        run.clear()

    for key, text in rendered:
        if "\n" in text:
            flush()
            lines.append(f"{INDENT * depth}{key} = {text}\n")
        else:
            run.append((key, text))
    flush()
    return lines


def render_block(block: Block, depth: int = 0) -> str:
    head = " ".join([block.type, *(json.dumps(label) for label in block.labels)])
    if not block.body:
        return f"{INDENT * depth}{head} {{}}\n"
    lines = [f"{INDENT * depth}{head} {{\n"]
    run: list[Attr] = []
    for item in block.body:
        if isinstance(item, Attr):
            run.append(item)
            continue
        lines.extend(_attributes(run, depth + 1))
        run = []
        if isinstance(item, Block):
            lines.append(render_block(item, depth + 1))
        else:
            lines.append("\n")
    lines.extend(_attributes(run, depth + 1))
    lines.append(f"{INDENT * depth}}}\n")
    return "".join(lines)


def render_file(blocks: Sequence[Block], header: str = "") -> str:
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return comment + (comment and "\n") + "\n".join(render_block(b) for b in blocks)
