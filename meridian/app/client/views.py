"""The table form of each API answer: what a user reads first, in 80 columns. The full
answer is always one `-o json` or `-o yaml` away."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from meridian.app.client.render import NONE, age, fields, table, text, when

TASK_HEADERS = ("ID", "NAME", "UNIT", "KIND", "STATUS", "REGION", "ATTEMPT", "AGE")
EVENT_HEADERS = ("TIME", "STATUS", "ATTEMPT", "REGION", "REASON")
# Fixed widths for events printed one at a time (`task get --watch`, times of day): no
# later row can widen a column already printed.
WATCH_WIDTHS = [8, 10, 7, 19]


def task_rows(tasks: Sequence[Any], now: datetime | None = None) -> list[list[str]]:
    now = now or datetime.now(UTC)
    return [
        [
            t["id"],
            t["name"],
            t["business_unit"],
            t["kind"],
            t["status"],
            text(t.get("region")),
            text(t.get("attempt")),
            age(t.get("created_at"), now),
        ]
        for t in tasks
    ]


def task_list(tasks: Sequence[Any], width: int) -> str:
    if not tasks:
        return "no tasks"
    # The id (to copy), the status and the region read whole; the name and unit give way.
    return table(TASK_HEADERS, task_rows(tasks), width=width, keep=(0, 4, 5, 7))


def task_detail(task: Any, width: int) -> str:
    spec = task.get("spec") or {}
    job = spec.get("job") or {}
    pairs = [
        ("id", task["id"]),
        # For `temporal workflow ...` and the Temporal UI: unique across business units.
        ("workflow id", text(task.get("workflow_id"))),
        ("name", task["name"]),
        ("business unit", task["business_unit"]),
        ("kind", task["kind"]),
        ("status", task["status"]),
        ("region", text(task.get("region"))),
        ("attempt", text(task.get("attempt"))),
        ("job", text(task.get("job_name"))),
        ("image", text(job.get("image"))),
        ("data source", _data_source(spec.get("data_source"))),
    ]
    placement = task.get("placement")
    if placement:
        pairs.append(("placement", _placement_summary(placement)))
    if task.get("error"):
        pairs.append(("error", task["error"]))
    if task.get("exit_code") is not None:
        pairs.append(("exit code", str(task["exit_code"])))
    pairs += [("created", when(task.get("created_at"))), ("updated", when(task.get("updated_at")))]
    if task.get("finished_at"):
        pairs.append(("finished", when(task["finished_at"])))
    return fields(pairs, width=width)


def _data_source(source: Any) -> str:
    if not isinstance(source, dict):
        return NONE
    return f"{source.get('provider', '?')}/{source.get('region', '?')}"


def _placement_summary(placement: Any) -> str:
    region = text(placement.get("region"))
    reason = placement.get("reason")
    if reason and region in reason:
        return str(reason)  # "chose <region> (score ...): why"
    score = placement.get("score")
    scored = f" (score {score:.3f})" if isinstance(score, int | float) else ""
    return f"{region}{scored}" + (f": {reason}" if reason else "")


def event_row(event: Any, *, clock: bool = False) -> list[str]:
    """TIME (the time of day alone with `clock`), STATUS, ATTEMPT, REGION, REASON."""
    reason = event.get("reason") or ""
    if event.get("error") and event["error"] not in reason:
        reason += f" (error: {event['error']})"
    if event.get("exit_code") is not None:
        reason += f" (exit code {event['exit_code']})"
    at = when(event.get("at") or event.get("time"))
    return [
        at[-8:] if clock else at,
        event["status"],
        text(event.get("attempt")),
        text(event.get("region")),
        reason.strip() or NONE,
    ]


def event_list(events: Sequence[Any], width: int) -> str:
    if not events:
        return "no events"
    rows = [event_row(e) for e in events]
    return table(EVENT_HEADERS, rows, width=width, wrap_last=True, keep=(0, 1))


def placement_view(decision: Any, width: int) -> str:
    """A decision (a task's latest, or a dry run's): where, why, and every region's case."""
    pairs = [("chosen", text(decision.get("chosen"))), ("reason", text(decision.get("reason")))]
    history = decision.get("history")
    if history:
        attempts = ", ".join(str(h.get("attempt")) for h in history)
        pairs.append(("decisions", f"{len(history)} (attempts {attempts})"))
    parts = [fields(pairs, width=width)]
    candidates = decision.get("candidates") or []
    if candidates:
        rows = [
            [
                c.get("region", "?"),
                text(c.get("tier")),
                _score(c.get("total")),
                _score(c.get("locality")),
                _score(c.get("network")),
                _score(c.get("load")),
            ]
            for c in candidates
        ]
        headers = ("CANDIDATE", "TIER", "TOTAL", "LOCALITY", "NETWORK", "LOAD")
        parts.append(table(headers, rows, width=width))
    filtered = decision.get("filtered") or []
    if filtered:
        rows = [
            [f.get("region", "?"), text(f.get("code")), text(f.get("reason"))] for f in filtered
        ]
        parts.append(table(("FILTERED", "CODE", "REASON"), rows, width=width, wrap_last=True))
    return "\n\n".join(parts)


def _score(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else text(value)


REGION_HEADERS = ("NAME", "PROVIDER", "LOCATION", "STATE", "WATER", "NODES", "POLLERS")


def region_list(regions: Sequence[Any], width: int) -> str:
    rows = [
        [
            r["name"],
            r["provider"],
            r["location"],
            text(r.get("state")),
            _percent(r.get("water_level")),
            _nodes(r),
            text(r.get("pollers")),
        ]
        for r in regions
    ]
    return table(REGION_HEADERS, rows, width=width, keep=(0, 3))


def _percent(value: Any) -> str:
    return f"{value * 100:.0f}%" if isinstance(value, int | float) else NONE


def _nodes(region: Any) -> str:
    ready, total = region.get("nodes_ready"), region.get("nodes_total")
    return NONE if ready is None or total is None else f"{ready}/{total}"


def region_detail(region: Any, width: int) -> str:
    state = text(region.get("state"))
    if region.get("reason"):
        state += f" ({region['reason']})"
    pairs = [
        ("name", region["name"]),
        ("provider", f"{region['provider']} {region['location']}"),
        ("role", text(region.get("role"))),
        ("state", state),
        ("since", when(region.get("since"))),
        ("water level", _percent(region.get("water_level"))),
        ("nodes ready", _nodes(region)),
        ("cpu free", _millis(region.get("cpu_free_millis"))),
        ("memory free", _bytes(region.get("memory_free_bytes"))),
        ("pending pods", text(region.get("pending_pods"))),
        ("api errors", _percent(region.get("api_error_rate"))),
        ("api latency", _ms(region.get("api_latency_ms"))),
        ("pollers", f"{text(region.get('pollers'))} on {region.get('task_queue', '?')}"),
    ]
    if "scaling_mode" in region:
        mode = str(region["scaling_mode"])
        if region.get("draining"):
            mode += f", draining ({region.get('draining_reason') or 'no reason given'})"
        if region.get("burst_advised"):
            mode += f", bursting ({region.get('burst_reason') or 'no reason given'})"
        pairs.append(("scaling", mode))
    parts = [fields(pairs, width=width)]
    pools = region.get("pools") or []
    if pools:
        headers = ("POOL", "MIN", "DESIRED", "MAX", "CURRENT", "READY")
        rows = [
            [p["name"], *(text(p.get(k)) for k in ("min", "desired", "max", "current", "ready"))]
            for p in pools
        ]
        parts.append(table(headers, rows, width=width))
    events = (region.get("events") or [])[:5]
    if events:
        rows = [[when(e.get("at")), text(e.get("state")), text(e.get("reason"))] for e in events]
        parts.append(table(("CHANGED", "STATE", "REASON"), rows, width=width, wrap_last=True))
    return "\n\n".join(parts)


def _millis(value: Any) -> str:
    return f"{value / 1000:g} cores" if isinstance(value, int | float) else NONE


def _bytes(value: Any) -> str:
    if not isinstance(value, int | float):
        return NONE
    for unit, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}"


def _ms(value: Any) -> str:
    return f"{value:.0f} ms" if isinstance(value, int | float) else NONE
