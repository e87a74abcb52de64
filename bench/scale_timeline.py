"""The 1,000-task move of the live-scale phase, task by task: pure helpers and the plot.

Each moved task gets one `TaskTimeline` of wall-clock marks (time.time() seconds; the
engine's own timestamps are on the same clock on this machine):
outage (the bench took the region down) → detected (the region's `since` when the API
first showed it down) → signalled (the task's workflow got `infra_failure`) → placed
(its new attempt's placement was recorded) → job_created (the bench's Job watch first saw
the new Job) → running (the task's RUNNING event of the new attempt).
A mark can be missing (a task that noticed the outage through its own backstop read has
no signal); a phase then runs from the latest mark before it that is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.stats import percentile

MARKS = ("outage", "detected", "signalled", "placed", "job_created", "running")
# (phase name, the mark it ends at); it starts at the latest known mark before that.
PHASES = (
    ("detection", "detected"),
    ("signals", "signalled"),
    ("re-placement", "placed"),
    ("Job creates", "job_created"),
    ("Job running", "running"),
)


@dataclass
class TaskTimeline:
    task_id: str
    outage: float
    detected: float | None = None
    signalled: float | None = None
    placed: float | None = None
    job_created: float | None = None
    running: float | None = None
    to_region: str | None = None

    def mark(self, name: str) -> float | None:
        value: float | None = getattr(self, name)
        return value

    def moved_seconds(self) -> float | None:
        """Outage until the task ran elsewhere: the figure the 30 s goal is about."""
        return None if self.running is None else self.running - self.outage


def phase_seconds(timeline: TaskTimeline) -> dict[str, float | None]:
    """Each phase's length for one task; None where its end mark is missing."""
    out: dict[str, float | None] = {}
    for name, end_mark in PHASES:
        end = timeline.mark(end_mark)
        if end is None:
            out[name] = None
            continue
        earlier = MARKS[: MARKS.index(end_mark)]
        start = next(
            value for mark in reversed(earlier) if (value := timeline.mark(mark)) is not None
        )
        out[name] = end - start
    return out


def _spread(values: Sequence[float]) -> dict[str, float | int | None]:
    def rounded(v: float | None) -> float | None:
        return None if v is None else round(v, 2)

    return {
        "p50": rounded(percentile(values, 50)),
        "p99": rounded(percentile(values, 99)),
        "max": rounded(max(values) if values else None),
        "n": len(values),
    }


def phase_summary(timelines: Sequence[TaskTimeline]) -> dict[str, dict[str, float | int | None]]:
    """p50, p99 and max seconds of each phase over the tasks that have it."""
    per_phase: dict[str, list[float]] = {name: [] for name, _ in PHASES}
    for timeline in timelines:
        for name, seconds in phase_seconds(timeline).items():
            if seconds is not None:
                per_phase[name].append(seconds)
    return {name: _spread(values) for name, values in per_phase.items()}


def move_summary(timelines: Sequence[TaskTimeline]) -> dict[str, float | int | None]:
    """Outage → running elsewhere over the moved tasks: median, p99, worst, count."""
    times = [t for tl in timelines if (t := tl.moved_seconds()) is not None]
    spread = _spread(times)
    return {
        "median_s": spread["p50"],
        "p99_s": spread["p99"],
        "worst_s": spread["max"],
        "moved": len(times),
        "not_moved": len(timelines) - len(times),
    }


def plot_timeline(
    timelines: Sequence[TaskTimeline], path: Path, title: str, goal_s: float = 30.0
) -> Path | None:
    """CDF per mark: the fraction of the moved tasks past each mark, seconds since outage."""
    if not timelines:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    n = len(timelines)
    for mark in MARKS[1:]:
        xs = sorted(v - tl.outage for tl in timelines if (v := tl.mark(mark)) is not None)
        if not xs:
            continue
        ys = [(i + 1) / n for i in range(len(xs))]
        ax.step(xs, ys, where="post", label=f"{mark.replace('_', ' ')} (n={len(xs)})")
    ax.axvline(goal_s, color="red", linewidth=0.8, linestyle=":", label=f"{goal_s:.0f} s goal")
    ax.axvline(40.0, color="grey", linewidth=0.8, linestyle="--", label="Karmada: ~40 s detection")
    ax.set_xlabel("seconds since the region went down")
    ax.set_ylabel(f"fraction of the {n} tasks in the region")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
