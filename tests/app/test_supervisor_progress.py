"""`meridian up` says what it is doing: a line per component as it becomes ready, and a
component that dies or hangs while starting is named, with its log's last lines and path,
before `meridian up` gives up with a non-zero exit. Real child processes, stand-in
programs."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from kubesim.process import find_free_base_port
from meridian.app.supervisor import Child, Supervisor
from meridian.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def _settings(tmp_path: Path) -> Settings:
    base = find_free_base_port(8)
    return Settings(
        state_dir=tmp_path / "state",
        regions_file=REPO / "infra/regions/dev.yaml",
        kubesim_base_port=base,
        temporal_port=base + 5,
        temporal_ui_port=base + 6,
        api_port=base + 7,
    )


def _program(code: str) -> list[str]:
    return [sys.executable, "-c", code]


SLEEPER = _program("import time; print('up', flush=True); time.sleep(60)")


def _after(seconds: float) -> Callable[[], Awaitable[bool]]:
    loop = asyncio.get_running_loop()
    at = loop.time() + seconds

    async def check() -> bool:
        return loop.time() >= at

    return check


async def _never() -> bool:
    return False


class Staged(Supervisor):
    """The real supervisor over a plan of stand-in children."""

    def __init__(self, settings: Settings, infra: list[Child], engine: list[Child]) -> None:
        super().__init__(settings)
        self._plan = (infra, engine)

    def plan(self) -> tuple[list[Child], list[Child]]:
        return self._plan


def _child(tmp_path: Path, name: str, argv: list[str], **kw: object) -> Child:
    return Child(name, argv, tmp_path / "state" / "logs" / f"{name}.log", **kw)  # type: ignore[arg-type]


async def _run_until_ready(supervisor: Supervisor) -> int:
    running = asyncio.create_task(supervisor.run())
    for _ in range(300):
        await asyncio.sleep(0.1)
        if supervisor.ready_at is not None or running.done():
            break
    supervisor._stopping.set()
    return await running


async def test_each_component_is_named_as_it_becomes_ready(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    infra = [
        _child(tmp_path, "temporal", SLEEPER, ready=_after(0.2)),
        _child(tmp_path, "kubesim", SLEEPER, ready=_after(0.4)),
    ]
    engine = [
        _child(tmp_path, "central-worker", SLEEPER, ready=_after(0.6)),
        _child(tmp_path, "api", SLEEPER, ready=_after(0.1)),
    ]
    assert await _run_until_ready(Staged(_settings(tmp_path), infra, engine)) == 0
    lines = capsys.readouterr().out.splitlines()
    progress = [line for line in lines if line.startswith("meridian: ") and " ready " in line]
    assert [line.split()[1] for line in progress] == [
        "temporal",
        "kubesim",
        "api",
        "central-worker",
    ], lines
    # Each with the time since `meridian up` began, rising.
    elapsed = [float(line.split("(")[1].rstrip("s)")) for line in progress]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0
    # The lines users and scripts already rely on are still there, last.
    assert lines.index("meridian ready") > lines.index(progress[-1])
    assert any(line.startswith("API ") for line in lines)


async def test_a_child_that_dies_at_once_is_named_with_its_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    infra = [_child(tmp_path, "temporal", SLEEPER, ready=_after(0.1))]
    crash = _program("print('config error: no such region eu-mars-1', flush=True); exit(3)")
    engine = [
        _child(tmp_path, "api", SLEEPER, ready=_after(0.1)),
        _child(tmp_path, "unit-workers", crash, ready=_never),
    ]
    supervisor = Staged(_settings(tmp_path), infra, engine)
    assert await _run_until_ready(supervisor) == 1
    assert supervisor.ready_at is None
    captured = capsys.readouterr()
    assert "meridian ready" not in captured.out
    log = tmp_path / "state" / "logs" / "unit-workers.log"
    assert "meridian: failed to start: unit-workers exited with 3" in captured.err
    assert str(log) in captured.err
    assert "config error: no such region eu-mars-1" in captured.err


async def test_a_slow_child_is_named_with_its_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stuck = _program(
        "import time\nfor i in range(30):\n    print(f'waiting for the database {i}', flush=True)"
        "\ntime.sleep(60)"
    )
    infra = [_child(tmp_path, "kubesim", stuck, ready=_never, ready_timeout=2.0)]
    supervisor = Staged(_settings(tmp_path), infra, [])
    assert await _run_until_ready(supervisor) == 1
    err = capsys.readouterr().err
    assert "meridian: failed to start: kubesim not ready after 2s" in err, err
    assert str(tmp_path / "state" / "logs" / "kubesim.log") in err
    # The last lines, not the first.
    assert "waiting for the database 29" in err and "waiting for the database 0\n" not in err
