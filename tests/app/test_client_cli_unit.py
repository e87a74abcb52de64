"""The CLI without a server: tables that fit 80 columns, the API's errors made readable,
lists that follow the cursor, and the exit codes (httpx.MockTransport stands in)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from meridian.app.cli import build_parser
from meridian.app.client import views
from meridian.app.client.commands import execute
from meridian.app.client.http import ApiClient, ApiError, describe_error
from meridian.app.client.render import fields, table

LONG = "a-task-name-that-goes-on-and-on-well-past-what-any-column-could-hold-at-all"


def _task(i: int, **over: Any) -> dict[str, Any]:
    task = {
        "id": f"nightly-etl-{i}",
        "name": LONG if i % 2 else "etl",
        "business_unit": "advertising-analytics",
        "kind": "batch",
        "status": "RUNNING",
        "region": "alibaba-cn-hangzhou",
        "job_name": f"nightly-etl-{i}-1",
        "attempt": 1,
        "placement": {"region": "alibaba-cn-hangzhou", "reason": "data-local", "score": 0.9},
        "error": None,
        "exit_code": None,
        "created_at": "2025-01-01T12:00:00Z",
        "updated_at": "2025-01-01T12:00:05Z",
        "finished_at": None,
        "spec": {"job": {"image": "busybox"}, "data_source": {"provider": "alibaba"}},
    }
    return {**task, **over}


def _columns(line: str, headers: list[str], header_line: str) -> list[str]:
    starts = [header_line.index(h) for h in headers]
    ends = [*starts[1:], None]
    return [line[s:e].strip() for s, e in zip(starts, ends, strict=True)]


def test_a_task_table_fits_80_columns_and_stays_aligned() -> None:
    tasks = [_task(i) for i in range(4)]
    out = views.task_list(tasks, 80)
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    header = lines[0]
    assert header.split() == list(views.TASK_HEADERS)
    # Every row's cells sit under their headers: the id, status and region read whole.
    for task, line in zip(tasks, lines[1:], strict=True):
        cells = _columns(line, list(views.TASK_HEADERS), header)
        assert cells[0] == task["id"]
        assert cells[4] == "RUNNING"
        assert cells[7].endswith(("d", "h", "m", "s"))
    # The long name is what gave way, with a mark that it was cut.
    assert "…" in lines[2] and LONG not in out


def test_a_wrapped_last_column_loses_nothing() -> None:
    reason = "placed in aws-us-east-1 because " + " ".join(f"word{i}" for i in range(40))
    out = table(["TIME", "STATUS", "REASON"], [["12:00:00", "RUNNING", reason]], wrap_last=True)
    lines = out.splitlines()
    assert len(lines) > 2 and all(len(line) <= 80 for line in lines)
    start = lines[0].index("REASON")
    assert " ".join(line[start:].strip() for line in lines[1:]) == reason
    assert all(line[:start].strip() == "" for line in lines[2:])


def test_detail_blocks_wrap_under_their_values() -> None:
    out = fields([("id", "t-1"), ("error", "x " * 100)], width=80)
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[1].startswith("error:") and len(lines) > 2
    indent = lines[1].index("x")
    assert all(line[:indent].strip() == "" for line in lines[2:])


def test_every_table_view_fits_80_columns() -> None:
    candidate = {
        "region": "tencent-ap-guangzhou",
        "tier": 0,
        "total": 0.812,
        "locality": 1.0,
        "network": 0.5,
        "load": 0.25,
    }
    placement = {
        "chosen": "tencent-ap-guangzhou",
        "reason": "best score " + "because " * 20,
        "candidates": [candidate],
        "filtered": [{"region": "aws-us-east-1", "code": "provider", "reason": "x " * 60}],
    }
    region = {
        "name": "huawei-cn-north-4",
        "provider": "huawei",
        "location": "cn-north-4",
        "role": "worker",
        "state": "DEGRADED",
        "reason": "api error rate 12% " * 6,
        "water_level": 0.73,
        "nodes_ready": 3,
        "nodes_total": 4,
        "pollers": 1,
        "task_queue": "region.huawei-cn-north-4",
        "scaling_mode": "auto",
        "pools": [{"name": "general", "min": 1, "desired": 3, "max": 10, "current": 3, "ready": 3}],
        "events": [{"at": "2025-01-01T12:00:00Z", "state": "DEGRADED", "reason": "slow " * 30}],
    }
    event = {
        "at": "2025-01-01T12:00:00Z",
        "status": "FAILED",
        "attempt": 2,
        "region": "azure-eastus",
        "reason": "job failed " * 10,
        "exit_code": 3,
    }
    for out in (
        views.placement_view(placement, 80),
        views.region_list([region] * 3, 80),
        views.region_detail(region, 80),
        views.event_list([event], 80),
        views.task_detail(_task(1, error="boom " * 40), 80),
    ):
        assert all(len(line) <= 80 for line in out.splitlines()), out


# -- errors ----------------------------------------------------------------------------------


def _answer(status: int, body: Any) -> httpx.Response:
    if isinstance(body, str):
        return httpx.Response(status, text=body)
    return httpx.Response(status, json=body)


def test_a_422_lists_each_field_readably() -> None:
    message = describe_error(
        _answer(
            422,
            {
                "detail": [
                    {"loc": ["body", "job", "image"], "msg": "String should have at least 1 char"},
                    {"loc": ["body", "job", "command", 2], "msg": "too long"},
                    {"loc": ["query", "cursor"], "msg": "bad cursor"},
                ]
            },
        )
    )
    assert message.splitlines() == [
        "422 Unprocessable Entity:",
        "  job.image: String should have at least 1 char",
        "  job.command[2]: too long",
        "  cursor (query parameter): bad cursor",
    ]


def test_other_errors_show_the_apis_detail() -> None:
    assert describe_error(_answer(404, {"detail": "task not found"})) == (
        "404 Not Found: task not found"
    )
    unauthorized = describe_error(
        _answer(401, {"detail": {"error": "missing", "message": "no bearer token"}})
    )
    assert unauthorized.startswith("401 Unauthorized: no bearer token")
    assert "MERIDIAN_TOKEN" in unauthorized
    assert describe_error(_answer(502, "<html>bad gateway</html>")) == (
        "502 Bad Gateway: <html>bad gateway</html>"
    )


def test_an_unreachable_api_is_named() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    api = ApiClient("http://127.0.0.1:9", None, transport=httpx.MockTransport(refuse))
    with pytest.raises(ApiError, match="cannot reach the Meridian API at http://127.0.0.1:9"):
        api.get("/v1/regions")


def test_list_follows_the_cursor_up_to_the_limit() -> None:
    asked: list[dict[str, str]] = []

    def pages(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        asked.append(params)
        start = int(params.get("cursor", "0"))
        items = [_task(i) for i in range(start, start + int(params["limit"]))]
        return httpx.Response(200, json={"items": items, "next_cursor": str(start + len(items))})

    api = ApiClient("http://api", "t", transport=httpx.MockTransport(pages))
    got = api.list_tasks(1200, status="RUNNING")
    assert [t["id"] for t in got] == [f"nightly-etl-{i}" for i in range(1200)]
    assert [a["limit"] for a in asked] == ["500", "500", "200"]
    assert all(a["status"] == "RUNNING" for a in asked)


# -- commands and exit codes --------------------------------------------------------------------


def _run(
    argv: list[str], answer: Callable[[httpx.Request], httpx.Response], stdin: str = ""
) -> tuple[int, str, str]:
    args = build_parser().parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    code = execute(
        args,
        transport=httpx.MockTransport(answer),
        out=out,
        err=err,
        stdin=io.StringIO(stdin),
    )
    return code, out.getvalue(), err.getvalue()


def test_a_404_is_exit_1_with_the_detail() -> None:
    code, out, err = _run(
        ["task", "get", "nope", "--token", "t"],
        lambda r: httpx.Response(404, json={"detail": "task not found"}),
    )
    assert (code, out) == (1, "")
    assert err == "meridian: 404 Not Found: task not found\n"


def test_the_token_comes_from_the_flag_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str | None] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(200, json={"items": []})

    monkeypatch.setenv("MERIDIAN_TOKEN", "from-env")
    monkeypatch.setenv("MERIDIAN_API_URL", "http://elsewhere:9000")
    assert _run(["region", "list"], record)[0] == 0
    assert _run(["region", "list", "--token", "from-flag"], record)[0] == 0
    assert seen == ["Bearer from-env", "Bearer from-flag"]


def test_submit_reads_yaml_from_stdin_and_sends_json() -> None:
    sent: list[Any] = []

    def created(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(201, json=_task(7))

    body = "id: nightly-etl-7\nname: etl\njob:\n  image: busybox\n"
    code, out, _ = _run(["task", "submit", "-f", "-", "-o", "yaml"], created, stdin=body)
    assert code == 0
    assert sent == [{"id": "nightly-etl-7", "name": "etl", "job": {"image": "busybox"}}]
    assert yaml.safe_load(out)["id"] == "nightly-etl-7"


@pytest.mark.parametrize(
    "content, complaint",
    [(None, "cannot read"), ("[1, 2]", "must hold a mapping"), ("a: [", "neither JSON nor YAML")],
)
def test_a_bad_task_file_is_a_usage_error(
    tmp_path: Path, content: str | None, complaint: str
) -> None:
    path = tmp_path / "task.yaml"
    if content is not None:
        path.write_text(content)

    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing should be sent")

    code, _, err = _run(["task", "submit", "-f", str(path)], never)
    assert code == 2 and complaint in err, err


def test_watch_prints_each_new_event_and_exits_with_the_outcome() -> None:
    events = [
        {"at": "2025-01-01T12:00:00Z", "status": "SCHEDULING", "attempt": 0, "reason": "sub"},
        {"at": "2025-01-01T12:00:01Z", "status": "RUNNING", "attempt": 1, "reason": "placed"},
        {"at": "2025-01-01T12:00:09Z", "status": "FAILED", "attempt": 1, "reason": "exit 3"},
    ]
    polls = iter([1, 2, 2, 3])
    shown: list[int] = []

    def progress(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(200, json={"task_id": "t", "items": events[: shown[-1]]})
        count = next(polls)
        shown.append(count)
        status = events[count - 1]["status"]
        return httpx.Response(200, json=_task(1, id="t", status=status, error="exit 3"))

    code, out, _ = _run(["task", "get", "t", "--watch", "--interval", "0", "-o", "json"], progress)
    assert code == 3
    assert [json.loads(line)["status"] for line in out.splitlines()] == [
        "SCHEDULING",
        "RUNNING",
        "FAILED",
    ]


def test_a_watched_table_fits_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    reason = "Job t-a1 created in alibaba-cn-hangzhou after the placement weighed four regions"
    events = [
        {"at": "2025-01-01T12:00:00Z", "status": "SCHEDULING", "attempt": 1, "reason": reason},
        {"at": "2025-01-01T12:00:03Z", "status": "STOPPED", "attempt": 1, "reason": "ops"},
    ]
    for event in events:
        event["region"] = "alibaba-cn-hangzhou"
    polls = iter(["SCHEDULING", "STOPPED"])

    def progress(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(200, json={"task_id": "t", "items": events[: len(seen)]})
        seen.append(next(polls))
        return httpx.Response(200, json=_task(1, id="t", status=seen[-1]))

    seen: list[str] = []
    code, out, _ = _run(["task", "get", "t", "-w", "--interval", "0"], progress)
    assert code == 4
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    assert lines[0].split() == list(views.EVENT_HEADERS)
    assert lines[1].split()[1:4] == ["SCHEDULING", "1", "alibaba-cn-hangzhou"]
    assert lines[-1] == "t STOPPED in alibaba-cn-hangzhou (attempt 1)"


def test_watching_a_pending_task_says_it_waits_for_a_start() -> None:
    statuses = iter(["PENDING", "PENDING", "STOPPED"])

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(200, json={"task_id": "t", "items": []})
        return httpx.Response(200, json=_task(1, id="t", status=next(statuses)))

    code, _, err = _run(["task", "get", "t", "-w", "--interval", "0", "-o", "json"], answer)
    assert code == 4
    assert err.count("meridian task start t") == 1


@pytest.mark.parametrize(
    "argv, method, path",
    [
        (["task", "get", "nightly"], "GET", "/v1/tasks/nightly"),
        (["task", "events", "nightly"], "GET", "/v1/tasks/nightly/events"),
        (["task", "placement", "nightly"], "GET", "/v1/tasks/nightly/placement"),
        (["task", "stop", "nightly", "--reason", "why"], "POST", "/v1/tasks/nightly/stop"),
        (["task", "start", "nightly"], "POST", "/v1/tasks/nightly/start"),
        (["task", "patch", "nightly", "-f", "-"], "PATCH", "/v1/tasks/nightly"),
    ],
)
def test_an_admin_names_the_tasks_unit(argv: list[str], method: str, path: str) -> None:
    asked: list[tuple[str, str, dict[str, str]]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append((request.method, request.url.path, dict(request.url.params)))
        if request.url.path.endswith("/events"):
            return httpx.Response(200, json={"task_id": "nightly", "items": []})
        if request.url.path.endswith("/placement"):
            return httpx.Response(200, json={"region": None, "candidates": []})
        return httpx.Response(200, json=_task(1, id="nightly"))

    code, _, err = _run(
        [*argv, "--business-unit", "ads", "-o", "json"], answer, stdin='{"name": "x"}'
    )
    assert code == 0, err
    assert asked == [(method, path, {"business_unit": "ads"})]
    # Without the flag the id is sent as given, with no unit.
    asked.clear()
    assert _run([*argv, "-o", "json"], answer, stdin='{"name": "x"}')[0] == 0
    assert asked == [(method, path, {})]
