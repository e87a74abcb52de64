"""Where the time goes under saturation: py-spy on the engine's processes.

    .venv/bin/python -m bench.profile [--tasks 600] [--seconds 20]

Starts the dev system, submits tasks as the throughput bench does and, meanwhile,
samples the central worker, the unit worker and the API with `py-spy record` (collapsed
stacks, idle threads excluded). Prints each process's CPU seconds and its top
functions by inclusive and self samples; the raw stacks stay in bench/results/profile/.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from bench import throughput
from bench.memory import cpu_delta, cpu_seconds
from bench.report import RESULTS
from bench.system import REGIONS_DIR, System, wait_regions_up

ROLES = ("central_worker", "unit_worker", "api")


def py_spy() -> str:
    found = Path(sys.executable).parent / "py-spy"
    if found.exists():
        return str(found)
    which = shutil.which("py-spy")
    if which is None:
        raise SystemExit("py-spy not found: .venv/bin/pip install py-spy")
    return which


Ranked = list[tuple[str, int]]


def summarise(path: Path, top: int = 25) -> tuple[int, Ranked, Ranked]:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    return total, inclusive.most_common(top), own.most_common(top)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--tasks", type=int, default=600)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    out = RESULTS / "profile"
    out.mkdir(parents=True, exist_ok=True)
    system = System(REGIONS_DIR / "dev.yaml").start()
    try:
        wait_regions_up(system.api_url, system.api_headers)
        procs = system.children
        recorders = [
            subprocess.Popen(
                [
                    py_spy(),
                    "record",
                    "--pid",
                    str(procs[role].pid),
                    "--duration",
                    str(args.seconds),
                    "--rate",
                    "100",
                    "--format",
                    "raw",
                    "--nonblocking",
                    "-o",
                    str(out / f"{role}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for role in ROLES
        ]
        before = cpu_seconds(procs)
        thread = threading.Thread(
            target=lambda: asyncio.run(
                throughput.saturate(system.api_url, args.tasks, 16, 300, headers=system.api_headers)
            ),
            daemon=True,
        )
        thread.start()
        for recorder in recorders:
            recorder.wait()
        print(f"CPU seconds in the first {args.seconds}s:", cpu_delta(before, cpu_seconds(procs)))
        thread.join()
    finally:
        system.stop()
        system.cleanup()
    for role in ROLES:
        path = out / f"{role}.txt"
        if not path.exists():
            print(f"{role}: no profile")
            continue
        total, inclusive, own = summarise(path)
        print(f"\n== {role}: {total} samples (100 Hz, active threads)")
        print("-- inclusive")
        for frame, count in inclusive:
            print(f"{100 * count / total:5.1f}%  {frame[:150]}")
        print("-- self")
        for frame, count in own[:15]:
            print(f"{100 * count / total:5.1f}%  {frame[:150]}")


if __name__ == "__main__":
    main()
