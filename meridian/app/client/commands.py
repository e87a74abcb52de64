"""`meridian task|region|placement ...`: the REST API from a terminal, as armadactl and
kueuectl are for theirs.

Exit codes: 0 done; 1 the API refused or failed (its detail is printed) or could not be
reached; 2 a usage error (bad flags, a task file that cannot be read or parsed).
`task get ID --watch` follows the task until it ends and exits with its outcome:
0 SUCCEEDED, 3 FAILED, 4 STOPPED (130 when interrupted; the task goes on).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx
import yaml

from meridian.app.client import views
from meridian.app.client.http import ApiClient, ApiError, segment
from meridian.app.client.render import GAP, WRAP_FLOOR, Layout, dump, terminal_width
from meridian.app.client.settings import ClientSettings

OK, API_ERROR, USAGE, INTERRUPTED = 0, 1, 2, 130
WATCH_EXIT = {"SUCCEEDED": 0, "FAILED": 3, "STOPPED": 4}
WATCH_INTERVAL_SECONDS = 1.0
# Consecutive failed polls (API unreachable or 5xx: say, restarting) a watch rides out.
WATCH_RETRIES = 15
STATUSES = ("PENDING", "SCHEDULING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED")
KINDS = ("batch", "resident")
EPILOG = __doc__.split("\n\n", 1)[1] if __doc__ else ""


class UsageError(Exception):
    """The command cannot be sent as given (exit 2)."""


@dataclass
class Context:
    api: ApiClient
    fmt: str
    out: TextIO
    err: TextIO
    stdin: TextIO
    width: int

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def show(self, data: Any, as_table: Callable[[Any, int], str]) -> None:
        self.say(as_table(data, self.width) if self.fmt == "table" else dump(data, self.fmt))


Handler = Callable[[Context, argparse.Namespace], int]


# -- the commands ---------------------------------------------------------------------


def _unit(args: argparse.Namespace) -> dict[str, str | None]:
    """`?business_unit=`: which unit's task an admin means (ids are unique per unit)."""
    return {"business_unit": getattr(args, "business_unit", None)}


def task_submit(ctx: Context, args: argparse.Namespace) -> int:
    response = ctx.api.request("POST", "/v1/tasks", body=read_body(args.file, ctx.stdin))
    task = response.json()
    if response.status_code == 200:
        ctx.err.write(f"task {task['id']} already existed with this body; nothing changed\n")
    ctx.show(task, views.task_detail)
    return OK


def task_list(ctx: Context, args: argparse.Namespace) -> int:
    tasks = ctx.api.list_tasks(
        args.limit,
        status=args.status,
        region=args.region,
        business_unit=args.business_unit,
        kind=args.kind,
    )
    ctx.show({"items": tasks}, lambda data, width: views.task_list(data["items"], width))
    return OK


def task_get(ctx: Context, args: argparse.Namespace) -> int:
    if args.watch:
        return watch(ctx, args.id, args.interval, args.business_unit)
    ctx.show(ctx.api.get(f"/v1/tasks/{segment(args.id)}", **_unit(args)), views.task_detail)
    return OK


def task_events(ctx: Context, args: argparse.Namespace) -> int:
    events = ctx.api.get(f"/v1/tasks/{segment(args.id)}/events", **_unit(args))
    ctx.show(events, lambda data, width: views.event_list(data["items"], width))
    return OK


def task_placement(ctx: Context, args: argparse.Namespace) -> int:
    placement = ctx.api.get(f"/v1/tasks/{segment(args.id)}/placement", **_unit(args))
    ctx.show(placement, views.placement_view)
    return OK


def task_stop(ctx: Context, args: argparse.Namespace) -> int:
    body = {"reason": args.reason} if args.reason else None
    path = f"/v1/tasks/{segment(args.id)}/stop"
    ctx.show(ctx.api.request("POST", path, body=body, params=_unit(args)).json(), views.task_detail)
    return OK


def task_start(ctx: Context, args: argparse.Namespace) -> int:
    path = f"/v1/tasks/{segment(args.id)}/start"
    ctx.show(ctx.api.request("POST", path, params=_unit(args)).json(), views.task_detail)
    return OK


def task_patch(ctx: Context, args: argparse.Namespace) -> int:
    body = read_body(args.file, ctx.stdin)
    path = f"/v1/tasks/{segment(args.id)}"
    task = ctx.api.request("PATCH", path, body=body, params=_unit(args)).json()
    ctx.show(task, views.task_detail)
    return OK


def region_list(ctx: Context, args: argparse.Namespace) -> int:
    regions = ctx.api.get("/v1/regions")
    ctx.show(regions, lambda data, width: views.region_list(data["items"], width))
    return OK


def region_get(ctx: Context, args: argparse.Namespace) -> int:
    ctx.show(ctx.api.get(f"/v1/regions/{segment(args.name)}"), views.region_detail)
    return OK


def placement_dry_run(ctx: Context, args: argparse.Namespace) -> int:
    body = read_body(args.file, ctx.stdin)
    decision = ctx.api.request("POST", "/v1/placement:dry-run", body=body).json()
    ctx.show(decision, views.placement_view)
    return OK


# -- following a task -------------------------------------------------------------------


def watch(ctx: Context, task_id: str, interval: float, business_unit: str | None = None) -> int:
    """Print each new event until the task ends; its outcome is the exit code."""
    path = f"/v1/tasks/{segment(task_id)}"
    unit = {"business_unit": business_unit}
    rest = ctx.width - sum(views.WATCH_WIDTHS) - len(GAP) * len(views.WATCH_WIDTHS)
    layout = Layout([*views.WATCH_WIDTHS, max(rest, WRAP_FLOOR)], wrap_last=True)
    seen, failures, told_pending = 0, 0, False
    if ctx.fmt == "table":
        ctx.err.write(f"following {task_id} until it ends (Ctrl-C stops following, not the task)\n")
        ctx.say("\n".join(layout.lines(views.EVENT_HEADERS)))
    while True:
        try:
            task = ctx.api.get(path, **unit)
            # Read after the task, so that a finished task's last event is among these.
            events = ctx.api.get(f"{path}/events", **unit)["items"]
        except ApiError as exc:
            failures += 1
            if (exc.status is not None and exc.status < 500) or failures > WATCH_RETRIES:
                raise
            ctx.err.write(f"meridian: {exc}; retrying\n")
            time.sleep(interval)
            continue
        failures = 0
        for event in events[seen:]:
            if ctx.fmt == "table":
                ctx.say("\n".join(layout.lines(views.event_row(event, clock=True))))
            elif ctx.fmt == "json":
                ctx.say(json.dumps(event, ensure_ascii=False))
            else:
                ctx.say("---\n" + dump(event, "yaml"))
        seen = len(events)
        status = task["status"]
        if status == "PENDING" and not told_pending:
            told_pending = True
            ctx.err.write(
                f"{task_id} is PENDING: it waits until started (meridian task start {task_id})\n"
            )
        if status in WATCH_EXIT:
            if ctx.fmt == "table":
                ctx.say(_outcome(task))
            return WATCH_EXIT[status]
        time.sleep(interval)


def _outcome(task: Any) -> str:
    where = f" in {task['region']}" if task.get("region") else ""
    line = f"{task['id']} {task['status']}{where} (attempt {task.get('attempt', '?')})"
    return line + (f": {task['error']}" if task.get("error") else "")


# -- input ------------------------------------------------------------------------------


def read_body(source: str, stdin: TextIO) -> dict[str, Any]:
    """A JSON or YAML mapping from a file, or from stdin for `-`."""
    name = "stdin" if source == "-" else source
    try:
        raw = stdin.read() if source == "-" else Path(source).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {name}: {getattr(exc, 'strerror', None) or exc}") from exc
    try:
        data = yaml.safe_load(raw)  # JSON is YAML
    except yaml.YAMLError as exc:
        raise UsageError(f"{name} is neither JSON nor YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{name} must hold a mapping (a JSON object), not {type(data).__name__}")
    # YAML reads some scalars as dates; the API takes them as the strings they were.
    loaded: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return loaded


# -- wiring -----------------------------------------------------------------------------


def execute(
    args: argparse.Namespace,
    *,
    transport: httpx.BaseTransport | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run the command `args` names; the exit code (see the module docstring)."""
    settings = ClientSettings()
    err = err or sys.stderr
    api = ApiClient(
        args.api_url or settings.api_url,
        args.token or settings.bearer(),
        transport=transport,
    )
    ctx = Context(
        api=api,
        fmt=args.output,
        out=out or sys.stdout,
        err=err,
        stdin=stdin or sys.stdin,
        width=terminal_width(),
    )
    handler: Handler = args.handler
    try:
        return handler(ctx, args)
    except ApiError as exc:
        err.write(f"meridian: {exc}\n")
        return API_ERROR
    except UsageError as exc:
        err.write(f"meridian: {exc}\n")
        return USAGE
    except KeyboardInterrupt:
        return INTERRUPTED
    finally:
        api.close()


def _entry(args: argparse.Namespace) -> None:
    sys.exit(execute(args))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-o",
        "--output",
        choices=("table", "json", "yaml"),
        default="table",
        help="table (default), or the API's answer as json or yaml",
    )
    common.add_argument("--token", help="bearer token (default: $MERIDIAN_TOKEN)")
    common.add_argument(
        "--api-url", dest="api_url", help="the API (default: $MERIDIAN_API_URL or 127.0.0.1:8000)"
    )
    return common


def register(sub: Any) -> None:
    """Add the `task`, `region` and `placement` groups to `meridian`'s subcommands."""
    common = _options()

    def group(name: str, help_: str) -> Any:
        parser = sub.add_parser(
            name, help=help_, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")

    def command(group_: Any, name: str, handler: Handler, help_: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = group_.add_parser(
            name, parents=[common], help=help_, description=help_
        )
        parser.set_defaults(func=_entry, handler=handler)
        return parser

    tasks = group("task", "submit, list, follow, stop and change tasks (over the REST API)")
    p = command(tasks, "submit", task_submit, "submit a task")
    p.add_argument("-f", "--file", required=True, help="the task body, YAML or JSON; - for stdin")
    p = command(tasks, "list", task_list, "list tasks, newest first")
    p.add_argument("--status", type=str.upper, choices=STATUSES)
    p.add_argument("--region")
    p.add_argument("--business-unit", dest="business_unit")
    p.add_argument("--kind", type=str.lower, choices=KINDS)
    p.add_argument("--limit", type=_positive, default=100, help="at most this many (100)")
    single = []
    p = command(tasks, "get", task_get, "show a task")
    p.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="print each transition until the task ends; exit 0 SUCCEEDED, 3 FAILED, 4 STOPPED",
    )
    p.add_argument("--interval", type=float, default=WATCH_INTERVAL_SECONDS, help=argparse.SUPPRESS)
    single.append(p)
    single.append(command(tasks, "events", task_events, "every transition of a task"))
    single.append(
        command(
            tasks, "placement", task_placement, "the latest placement decision: every region's case"
        )
    )
    p = command(tasks, "stop", task_stop, "stop a task (deletes its Job; idempotent)")
    p.add_argument("--reason", help="why, as the task's STOPPED event will say")
    single.append(p)
    single.append(command(tasks, "start", task_start, "start a PENDING task"))
    p = command(tasks, "patch", task_patch, "merge a partial body into a task (JSON merge patch)")
    p.add_argument("-f", "--file", required=True, help="the patch, JSON or YAML; - for stdin")
    single.append(p)
    for p in single:
        p.add_argument("id", help="the task's id (or, for an admin, its workflow id)")
        p.add_argument(
            "--business-unit",
            dest="business_unit",
            help="the task's business unit, for an admin: ids are unique only within a unit",
        )

    regions = group("region", "regions: health, water level, pools (over the REST API)")
    command(regions, "list", region_list, "every region's health and load")
    command(regions, "get", region_get, "one region in detail").add_argument("name")

    placement = group("placement", "where a task would go, and why (over the REST API)")
    p = command(placement, "dry-run", placement_dry_run, "place a task body, creating nothing")
    p.add_argument("-f", "--file", required=True, help="the task body, YAML or JSON; - for stdin")
