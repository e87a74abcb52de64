"""`python -m bench [--quick] [--database sqlite|mariadb]`: every figure of issue 6 in one run.

Two systems, each started as `meridian up` starts it (own ports, own state directory):
1. the dev regions — the bare-Temporal ceiling on its Temporal server, end-to-end
   throughput at saturation, latency at a fixed offered load of 20 tasks/s, failover;
2. the 15-region fleet — N active tasks seeded, one sweep of each kind, peak RSS;
3. two burst regions (issue 14) — a wave of one-CPU tasks at full nodes that take long to
   boot, nodes only vs `auto` (bench/burst.py);
4. live scale (issue 16), only with `--scale` or `--only scale`: N real tasks running on
   the fleet, a trickle on top, sweeps over them, then the biggest region fails
   (bench/scale.py; `--scale-tasks N`, default 10,000).
Placement runs in-process. Exit status: 1 only on errors, lost tasks or duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import psutil

from bench import report, throughput
from bench.burst import BurstPlan, engine_env, measure_burst, regions_file
from bench.ceiling import measure_ceiling
from bench.jobwatch import JobCompletionWatcher
from bench.memory import RssSampler, cpu_delta, cpu_seconds
from bench.placement import measure_placement
from bench.sweeps import expected_pages, run_sweeps, seed
from bench.system import REGIONS_DIR, System, temporal_version, wait_regions_up

FAILOVER_REGION = "azure-eastus"
# Sweeps must not fire on their own while the bench times one of each.
QUIET_SCHEDULES = {
    "MERIDIAN_SWEEPS__RUNNING_TASK_INTERVAL_SECONDS": "3600",
    "MERIDIAN_SWEEPS__JOB_INTERVAL_SECONDS": "3600",
}


@dataclass(frozen=True)
class Plan:
    tasks: int
    ceiling: int
    concurrency: int
    fixed_rate: float
    fixed_seconds: float
    failover_tasks: int
    active_tasks: int
    placement_decisions: int
    timeout: float
    burst: BurstPlan


# The burst wave: the 300 one-CPU tasks within 10 s at 3 full 8-CPU nodes that
# take 90 s to boot; quick: 16 tasks within 6 s at one node that takes 10 s (bursting
# after 5 s of waiting, so that the small version still bursts rather than waits). The
# arrival spans a few health probes: placements between two probes see the same load.
QUICK_BURST = BurstPlan(16, 6.0, 4.0, 10.0, 1, 5.0, 4, 2.0, 120.0)
FULL_BURST = BurstPlan(300, 10.0, 30.0, 90.0, 3, 60.0, 30, 8.0, 600.0)
QUICK = Plan(100, 100, 16, 20.0, 6.0, 10, 1_000, 2_000, 300.0, QUICK_BURST)
FULL = Plan(2_000, 2_000, 16, 20.0, 30.0, 100, 10_000, 20_000, 1_800.0, FULL_BURST)


class Bench:
    def __init__(self, plan: Plan, database: str):
        self.plan = plan
        self.database = database
        self.figures: dict[str, Any] = {}
        self.details: dict[str, Any] = {}
        self.errors: list[str] = []
        self.distributions: dict[str, list[float]] = {}
        self.processes: dict[str, psutil.Process] = {}
        self.scale_tasks = 10_000

    def timed_cpu(self, name: str, fn: Callable[[], None]) -> None:
        """Run a phase and record the CPU seconds each process spent in it."""
        before = cpu_seconds(self.processes)
        fn()
        self.details.setdefault("cpu_seconds", {})[name] = cpu_delta(
            before, cpu_seconds(self.processes)
        )

    def phase(self, name: str, fn: Callable[[], None]) -> None:
        report.say(f"bench: {name} ...")
        started = time.monotonic()
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - recorded; the other phases still run
            self.errors.append(f"{name}: {exc!r}")
            traceback.print_exc()
        report.say(f"bench: {name} done in {time.monotonic() - started:.1f}s")

    # -- system 1: dev regions ------------------------------------------------------------

    def dev_system(self) -> None:
        system = System(REGIONS_DIR / "dev.yaml", database=self.database)
        system.start()
        sampler = RssSampler(system.children).start()
        self.processes = {**system.children, "bench": psutil.Process()}
        watcher: JobCompletionWatcher | None = None
        try:
            regions = wait_regions_up(system.api_url, system.api_headers)
            watcher = JobCompletionWatcher(str(system.kubeconfig), regions).start()
            self.phase("ceiling", lambda: self.timed_cpu("ceiling", lambda: self.ceiling(system)))
            assert watcher is not None
            w = watcher
            self.phase(
                "throughput",
                lambda: self.timed_cpu("throughput", lambda: self.saturation(system, w)),
            )
            self.phase("fixed load", lambda: self.fixed_load(system, w))
            self.details["rss_mib_during_throughput"] = sampler.snapshot_mib()
            self.phase("failover", lambda: self.failover(system))
        finally:
            if watcher is not None:
                watcher.stop()
            sampler.stop()
            system.stop()
            system.cleanup()

    def ceiling(self, system: System) -> None:
        runs = asyncio.run(
            measure_ceiling(
                system.temporal_address, self.plan.ceiling, self.plan.concurrency, self.processes
            )
        )
        bare, minimal = runs
        for run in runs:
            if run.completed != run.n:
                self.errors.append(f"ceiling {run.workflow}: {run.n - run.completed} not completed")
        self.figures["ceiling_bare_per_s"] = round(bare.per_s, 2)
        self.figures["ceiling_minimal_task_per_s"] = round(minimal.per_s, 2)
        self.details["ceiling"] = [asdict(r) for r in runs]
        # CPU per workflow on this machine: robust where wall-clock rates are not (the
        # temporal server's share is what a Meridian task's share compares with).
        for run, key in ((bare, "bare"), (minimal, "minimal_task")):
            self.figures[f"ceiling_{key}_cpu_ms_per_wf"] = round(
                1000 * sum(run.cpu_s.values()) / max(1, run.n), 1
            )
            self.figures[f"ceiling_{key}_temporal_cpu_ms_per_wf"] = round(
                1000 * run.cpu_s.get("temporal", 0.0) / max(1, run.n), 1
            )

    def saturation(self, system: System, watcher: JobCompletionWatcher) -> None:
        before = cpu_seconds(self.processes)
        run = asyncio.run(
            throughput.saturate(
                system.api_url,
                self.plan.tasks,
                self.plan.concurrency,
                self.plan.timeout,
                until_done=lambda: self.details.__setitem__(
                    "throughput_cpu_s", cpu_delta(before, cpu_seconds(self.processes))
                ),
                headers=system.api_headers,
            )
        )
        cpu = self.details["throughput_cpu_s"]
        engine = {k: v for k, v in cpu.items() if k != "bench"}
        self.figures["meridian_cpu_ms_per_task"] = round(
            1000 * sum(engine.values()) / max(1, self.plan.tasks), 1
        )
        self.figures["meridian_temporal_cpu_ms_per_task"] = round(
            1000 * engine.get("temporal", 0.0) / max(1, self.plan.tasks), 1
        )
        figs = throughput.figures(run, watcher)
        self.details["throughput"] = figs
        self._check(run, figs, "throughput")
        rate = figs["tasks_per_s"]
        self.figures["throughput_tasks_per_s"] = rate
        for key in ("ceiling_bare_per_s", "ceiling_minimal_task_per_s"):
            if self.figures.get(key):
                name = key.removeprefix("ceiling_").removesuffix("_per_s")
                self.figures[f"ratio_to_{name}"] = round(rate / self.figures[key], 2)
        for name in ("submit_ms", "submit_to_running_ms", "completion_to_succeeded_ms"):
            self.figures[f"{name}_p50"] = figs[name]["p50"]
            self.figures[f"{name}_p99"] = figs[name]["p99"]
        lat = throughput.latencies(run, watcher)
        self.distributions["submit (saturated)"] = lat["submit"]
        self.distributions["submit → RUNNING (saturated)"] = lat["submit_to_running"]
        self.distributions["Job done → SUCCEEDED (saturated)"] = lat["completion_to_succeeded"]

    def fixed_load(self, system: System, watcher: JobCompletionWatcher) -> None:
        plan = self.plan
        run = asyncio.run(
            throughput.offered_load(
                system.api_url,
                plan.fixed_rate,
                plan.fixed_seconds,
                plan.timeout,
                watcher,
                headers=system.api_headers,
            )
        )
        figs = throughput.figures(run, watcher)
        self.details["fixed_load"] = {"offered_per_s": plan.fixed_rate, **figs}
        self._check(run, figs, "fixed load")
        # Achieved rate over the offered window: tasks finished per second of submitting.
        self.figures["fixed_load_tasks_per_s"] = round(
            len(run.samples) / max(1e-9, run.last_finished - run.first_sent - 1.0), 2
        )
        for name in ("completion_to_succeeded_ms", "completion_to_succeeded_polled_ms"):
            self.figures[f"fixed_load_{name}_p50"] = figs[name]["p50"]
            self.figures[f"fixed_load_{name}_p99"] = figs[name]["p99"]
        lat = throughput.latencies(run, watcher)
        self.distributions["Job done → SUCCEEDED @20/s (finished_at)"] = lat[
            "completion_to_succeeded"
        ]
        self.distributions["Job done → SUCCEEDED @20/s (API poll)"] = lat[
            "completion_to_succeeded_polled"
        ]

    def _check(self, run: throughput.RunResult, figs: dict[str, Any], name: str) -> None:
        if figs["errors"]:
            self.errors.append(f"{name}: {figs['errors']} submit errors, e.g. {run.errors[:3]}")
        if figs["lost"]:
            self.errors.append(f"{name}: {figs['lost']} tasks not SUCCEEDED: {run.lost[:5]}")
        if figs["duplicates"]:
            self.errors.append(
                f"{name}: {figs['duplicates']} tasks had two live Jobs at once: "
                f"{figs['duplicate_ids']}"
            )

    def failover(self, system: System) -> None:
        from bench.failover import measure_failover  # another engineer's module

        outcome: Any = measure_failover(
            system.api_url,
            system.control_url,
            FAILOVER_REGION,
            n_tasks=self.plan.failover_tasks,
            kubeconfig=system.kubeconfig,
            headers=system.api_headers,
        )
        if inspect.isawaitable(outcome):
            outcome = asyncio.run(_awaited(outcome))
        data = _as_dict(outcome)
        self.details["failover"] = data
        for figure, words in (
            ("failover_median_s", ("median",)),
            ("failover_worst_s", ("worst", "max")),
            ("failover_duplicates", ("duplicate",)),
        ):
            self.figures[figure] = _pick(data, words)
        duplicates = self.figures["failover_duplicates"]
        if duplicates != 0:
            # -1: the audit did not run, which is as bad as not knowing.
            self.errors.append(f"failover: duplicates {duplicates}")
        # Tasks that started in another region under the submission burst are not
        # measured; a measured task that did not move is lost.
        if data.get("not_moved") or not data.get("moved"):
            self.errors.append(
                f"failover: {data.get('moved')} moved, not moved: {data.get('not_moved')}"
            )

    # -- system 2: the 15-region fleet ------------------------------------------------------

    def fleet_system(self) -> None:
        system = System(
            REGIONS_DIR / "fleet-15.yaml", database=self.database, env=dict(QUIET_SCHEDULES)
        )
        system.start()
        sampler = RssSampler(system.children).start()
        try:
            regions = wait_regions_up(system.api_url, system.api_headers)
            n = self.plan.active_tasks
            self.details["seeding"] = seed(system, regions, n)
            report.say(f"bench: seeded {self.details['seeding']}")
            sweeps = run_sweeps(system, regions, page_size=500)
            self.details["sweeps"] = sweeps
            self.figures["sweep_active_tasks"] = n
            self.figures["sweep_expected_list_requests"] = expected_pages(n, len(regions), 500)
            kinds = (("running_task_sweep", "running_sweep"), ("job_sweep", "job_sweep"))
            for kind, prefix in kinds:
                one = sweeps[kind]
                self.figures[f"{prefix}_s"] = one["seconds"]
                self.figures[f"{prefix}_k8s_requests"] = one["k8s_job_requests"]
                self.figures[f"{prefix}_db_queries"] = one.get("db_queries")
                if one["errors"]:
                    self.errors.append(f"{kind}: {one['errors'][:3]}")
                if one["jobs_seen"] < n:
                    self.errors.append(f"{kind}: saw {one['jobs_seen']} of {n} Jobs")
            # Let the workers settle with the fleet loaded (watch, probes) before reading.
            time.sleep(3.0)
            peaks = sampler.snapshot_mib()
            self.details["rss_mib_at_active_tasks"] = peaks
            for role, mib in peaks.items():
                self.figures[f"rss_mib_{role}"] = mib
        finally:
            sampler.stop()
            system.stop()
            system.cleanup()

    # -- system 3: the burst regions --------------------------------------------------------

    def burst_system(self) -> None:
        plan = self.plan.burst
        directory = Path(tempfile.mkdtemp(prefix="meridian-bench-burst-"))
        system = System(regions_file(plan, directory), database=self.database, env=engine_env(plan))
        try:
            system.start()
            wait_regions_up(system.api_url, system.api_headers)
            result = asyncio.run(
                measure_burst(
                    system.api_url, system.api_headers, system.control_url, system.kubeconfig, plan
                )
            )
        finally:
            system.stop()
            system.cleanup()
            shutil.rmtree(directory, ignore_errors=True)
        self.details["burst"] = result
        nodes, auto, after = result["nodes_only"], result["auto"], result["after"]
        for key, mode in (("nodes", nodes), ("auto", auto)):
            self.figures[f"burst_{key}_all_running_s"] = mode["all_running_s"]
            self.figures[f"burst_{key}_all_succeeded_s"] = mode["all_succeeded_s"]
            self.figures[f"burst_{key}_cost_usd"] = mode["cost_total"]
        self.figures["burst_auto_cost_serverless_usd"] = auto["cost_serverless"]
        self.figures["burst_auto_burst_tasks"] = auto["burst_tasks"]
        self.figures["burst_auto_back_to_nodes"] = auto["back_to_nodes"]
        self.figures["burst_after_on_nodes"] = after["on_nodes"]
        self.figures["burst_after_tasks"] = after["tasks"]
        for name, mode in (("nodes only", nodes), ("auto", auto), ("after", after)):
            if mode["not_succeeded"]:
                self.errors.append(
                    f"burst {name}: {len(mode['not_succeeded'])} tasks not SUCCEEDED: "
                    f"{mode['not_succeeded'][:5]}"
                )
        for name, mode in (("nodes only", nodes), ("auto", auto)):
            if mode["all_running_s"] is None:
                self.errors.append(f"burst {name}: not all tasks seen running")

    # -- system 4: live scale (only when asked for) -------------------------------------------

    def scale_system(self) -> None:
        from bench.scale import ScalePlan, run_scale

        chart = report.RESULTS / f"scale-failover-{self.database}.png"
        run = run_scale(ScalePlan(tasks=self.scale_tasks), self.database, chart=chart)
        self.figures.update(run.figures)
        self.details["scale"] = run.details
        self.errors += run.errors

    def placement(self) -> None:
        result = measure_placement(self.plan.placement_decisions)
        self.details["placement"] = result
        self.figures["placement_us_per_decision"] = result["us_per_decision"]
        self.figures["placement_cpu_us_per_decision"] = result["cpu_us_per_decision"]
        self.figures["placement_baseline_us"] = result["baseline_nearest_healthy_us"]
        # The real path (place_task: reservations, summary, the stored dump), per decision
        # and as a ratio to the same baseline; issue 16's goal is <= 2.5x on shared sets.
        self.figures["placement_baseline_cpu_us"] = result["baseline_nearest_healthy_cpu_us"]
        self.figures["placement_cpu_ratio_to_baseline"] = result["cpu_ratio_to_baseline"]
        for sets in ("shared_sets", "fresh_sets"):
            for unit in ("us", "cpu_us", "ratio", "cpu_ratio"):
                key = f"real_path_{sets}_{unit}"
                self.figures[f"placement_{key}"] = result[key]
        report.say(
            "bench: placement real path (place_task) per decision: "
            f"{result['real_path_shared_sets_us']} us wall / "
            f"{result['real_path_shared_sets_cpu_us']} us CPU with 20 decisions a snapshot "
            f"set = {result['real_path_shared_sets_ratio']}x baseline "
            f"({result['baseline_nearest_healthy_us']} us); fresh sets "
            f"{result['real_path_fresh_sets_us']} us / {result['real_path_fresh_sets_cpu_us']} "
            f"us CPU = {result['real_path_fresh_sets_ratio']}x; place() alone "
            f"{result['ratio_to_baseline']}x"
        )


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _as_dict(value: Any) -> dict[str, Any]:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, dict):
        return dict(value)
    if hasattr(value, "model_dump"):
        return dict(value.model_dump())
    return dict(vars(value))


def _pick(data: dict[str, Any], words: tuple[str, ...]) -> Any:
    for key, value in data.items():
        if any(word in key.lower() for word in words) and isinstance(value, int | float):
            return round(value, 2) if isinstance(value, float) else value
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="CI-sized run (a few minutes)")
    parser.add_argument("--database", choices=["sqlite", "mariadb"], default="sqlite")
    parser.add_argument(
        "--only",
        choices=["placement", "dev", "fleet", "burst", "scale"],
        help="run one phase (its figures only; the results file is still written)",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="the live-scale phase alone (as --only scale; never part of --quick)",
    )
    parser.add_argument(
        "--scale-tasks", type=int, default=10_000, help="live tasks in the scale phase"
    )
    args = parser.parse_args(argv)
    if args.scale:
        if args.quick or args.only not in (None, "scale"):
            parser.error("--scale runs the scale phase alone")
        args.only = "scale"
    plan = QUICK if args.quick else FULL
    bench = Bench(plan, args.database)
    bench.scale_tasks = args.scale_tasks
    started = time.monotonic()
    machine = report.machine(temporal_version(), args.database)
    phases = {
        "placement": ("placement", bench.placement),
        "dev": ("dev system", bench.dev_system),
        "fleet": ("fleet system", bench.fleet_system),
        "burst": ("burst system", bench.burst_system),
        # Long (tens of minutes at 10,000 tasks): run only when asked for.
        "scale": ("live scale", bench.scale_system),
    }
    for key, (name, fn) in phases.items():
        if args.only == key or (args.only is None and key != "scale"):
            bench.phase(name, fn)
    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result = {
        "mode": "quick" if args.quick else "full",
        "command": "python -m bench"
        + (" --quick" if args.quick else "")
        + (f" --database {args.database}" if args.database != "sqlite" else "")
        + (f" --only {args.only}" if args.only else "")
        + (f" --scale-tasks {args.scale_tasks}" if args.only == "scale" else ""),
        "plan": asdict(plan),
        "duration_s": round(time.monotonic() - started, 1),
        "machine": machine,
        **bench.figures,
        "errors": bench.errors,
        "details": bench.details,
    }
    report.say("")
    if args.only == "scale":
        from bench.scale import scale_table

        report.say(scale_table(bench.figures))
    else:
        report.say(report.table(bench.figures))
    # One phase alone must not overwrite the whole run's results.
    # The scale phase keeps one file per database (SQLite and MariaDB runs side by side).
    name = f"scale-{args.database}.json" if args.only == "scale" else f"only-{args.only}.json"
    path = report.write_json(result, report.RESULTS / name if args.only else None)
    chart = None if args.only else report.write_chart(bench.distributions)
    if args.only == "scale" and bench.details.get("scale", {}).get("failover_chart"):
        chart = Path(bench.details["scale"]["failover_chart"])
    report.say(f"\nwrote {path}" + (f" and {chart}" if chart else ""))
    report.say(f"bench took {result['duration_s']}s; machine {machine}")
    if bench.errors:
        report.say("ERRORS:\n  " + "\n  ".join(bench.errors))
    return 1 if bench.errors else 0


def _exit(code: int) -> None:
    # The Temporal SDK can abort the interpreter at exit after the work is done; the
    # results are written by now, so skip finalisation (as meridian.app.cli does).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit(main())
