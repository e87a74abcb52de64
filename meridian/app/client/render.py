"""What the CLI prints: aligned tables and key/value blocks that fit the terminal (80
columns when it is not one), or the API's own JSON as JSON or YAML."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

GAP = "  "
ELLIPSIS = "…"
# The narrowest a wrapped (last) column gets before the others are cut instead.
WRAP_FLOOR = 24
NONE = "-"


def terminal_width() -> int:
    """The terminal's width, or 80 when the output is a pipe or a file (COLUMNS wins)."""
    return shutil.get_terminal_size((80, 24)).columns


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000).rstrip("\n")


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS


@dataclass(frozen=True)
class Layout:
    """Column widths, and whether the last column wraps onto more lines or is cut."""

    widths: list[int]
    wrap_last: bool

    def lines(self, cells: Sequence[str]) -> list[str]:
        last = len(cells) - 1
        first = [
            cut(cell, width).ljust(width) if i < last else cell
            for i, (cell, width) in enumerate(zip(cells, self.widths, strict=True))
        ]
        tail = cells[last]
        if not self.wrap_last or len(tail) <= self.widths[last]:
            first[last] = cut(tail, self.widths[last])
            return [GAP.join(first).rstrip()]
        chunks = textwrap.wrap(tail, self.widths[last], break_long_words=True) or [""]
        indent = sum(self.widths[:last]) + len(GAP) * last
        first[last] = chunks[0]
        return [GAP.join(first).rstrip()] + [
            (" " * indent + chunk).rstrip() for chunk in chunks[1:]
        ]


def fit(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int,
    wrap_last: bool,
    keep: Collection[int] = (),
) -> Layout:
    """Natural widths, narrowed until the row fits `width`: the wrapped last column first
    (down to WRAP_FLOOR), then the widest of the columns not in `keep`, then the widest
    of those in `keep`, none below its header (cells cut with an ellipsis). A table that
    cannot fit overflows."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    floors = [min(w, max(len(h), 3)) for w, h in zip(widths, headers, strict=True)]
    last = len(headers) - 1
    if wrap_last:
        floors[last] = min(widths[last], max(WRAP_FLOOR, len(headers[last])))
    excess = sum(widths) + len(GAP) * last - width
    if wrap_last and excess > 0:
        give = min(excess, widths[last] - floors[last])
        widths[last] -= give
        excess -= give
    loose = [i for i in range(len(widths)) if i not in keep]
    for group in (loose, list(keep)):
        while excess > 0:
            shrinkable = [i for i in group if widths[i] > floors[i]]
            if not shrinkable:
                break
            widest = max(shrinkable, key=lambda i: widths[i] - floors[i])
            widths[widest] -= 1
            excess -= 1
    return Layout(widths, wrap_last)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int = 80,
    wrap_last: bool = False,
    keep: Collection[int] = (),
) -> str:
    """Aligned columns under their headers; `keep` names the columns (by index) that give
    way last, such as an id a user will copy."""
    layout = fit(headers, rows, width, wrap_last, keep)
    out = layout.lines(headers)
    for row in rows:
        out += layout.lines(row)
    return "\n".join(out)


def fields(pairs: Sequence[tuple[str, str]], *, width: int = 80) -> str:
    """`key:  value` lines, values aligned and wrapped under themselves."""
    if not pairs:
        return ""
    key_width = max(len(key) for key, _ in pairs) + 1
    value_width = max(width - key_width - len(GAP), 20)
    out = []
    for key, value in pairs:
        chunks = textwrap.wrap(value, value_width, break_long_words=True) or [""]
        out.append((f"{key + ':':<{key_width}}{GAP}{chunks[0]}").rstrip())
        out += [" " * (key_width + len(GAP)) + chunk for chunk in chunks[1:]]
    return "\n".join(out)


def text(value: Any) -> str:
    """A cell: None as "-", numbers as they are, the rest as str."""
    if value is None or value == "":
        return NONE
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def when(value: str | None) -> str:
    """An API timestamp in local time, to the second."""
    if not value:
        return NONE
    return parse_time(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def age(value: str | None, now: datetime | None = None) -> str:
    """How long ago, as kubectl says it: 45s, 12m, 3h, 5d."""
    if not value:
        return NONE
    seconds = ((now or datetime.now(UTC)) - parse_time(value)).total_seconds()
    seconds = max(seconds, 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
