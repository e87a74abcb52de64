"""Peak RSS of the system's processes, sampled on a thread while the bench runs."""

from __future__ import annotations

import threading

import psutil

MIB = 1 << 20
# The roles the issue asks about, as the bench's System names them.
ROLES = ("central_worker", "unit_worker", "api", "kubesim", "temporal")


class RssSampler:
    """Peak RSS per role since `reset()`; a process that is gone keeps its last peak."""

    def __init__(self, processes: dict[str, psutil.Process], interval: float = 0.25):
        self.processes = {k: v for k, v in processes.items() if k in ROLES}
        self.interval = interval
        self.peak: dict[str, int] = dict.fromkeys(self.processes, 0)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for role, process in self.processes.items():
            try:
                rss = process.memory_info().rss
            except psutil.Error:
                continue
            with self._lock:
                self.peak[role] = max(self.peak[role], rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def reset(self) -> None:
        with self._lock:
            self.peak = dict.fromkeys(self.processes, 0)

    def snapshot_mib(self) -> dict[str, float]:
        self._sample()
        with self._lock:
            return {role: round(rss / MIB, 1) for role, rss in self.peak.items()}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def cpu_seconds(processes: dict[str, psutil.Process]) -> dict[str, float]:
    """User + system CPU seconds each process (with its threads) has used so far."""
    out: dict[str, float] = {}
    for role, process in processes.items():
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        out[role] = times.user + times.system
    return out


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {role: round(after[role] - before.get(role, 0.0), 1) for role in after}
