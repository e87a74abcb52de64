"""Flapping load (full, empty, full...) causes at most one scale action per cooldown."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from meridian.settings import ScalingSettings
from tests.scaling_loop import load
from tests.scaling_loop.world import world

COOLDOWN = 8.0
SLOW_TO_ACT = ScalingSettings(
    tick_seconds=1.0,
    high_water=0.8,
    low_water=0.4,
    scale_up_cooldown_seconds=COOLDOWN,
    scale_down_window_seconds=1.0,
    scale_down_cooldown_seconds=COOLDOWN,
)


async def test_flapping_load_causes_at_most_one_action_per_cooldown(tmp_path: Path) -> None:
    async with world(tmp_path, scaling=SLOW_TO_ACT) as w:
        loop = asyncio.get_running_loop()
        end = loop.time() + 30.0
        round_ = 0
        while loop.time() < end:
            # Full: 90 % of every schedulable node, so high water whatever the pool size.
            for node in await load.ready_nodes(w):
                await load.create(w, load.pod(f"flap-{round_}-{node[-1]}", "3600m", node))
            await asyncio.sleep(2.0)
            await load.delete_all(w)
            await asyncio.sleep(2.0)
            round_ += 1
        actions = sorted(
            (d for d in await w.decisions() if d["kind"] in ("scale_up", "scale_down")),
            key=lambda d: d["at"],
        )
        applied = [d for d in actions if d["applied"]]
        # The load did push the loop to act, or this test would prove nothing.
        assert applied, await w.decisions()
        times = [datetime.fromisoformat(d["at"]) for d in applied]
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
        assert all(gap >= COOLDOWN - 0.01 for gap in gaps), (gaps, applied)
        assert len(applied) <= 30.0 / COOLDOWN + 1
