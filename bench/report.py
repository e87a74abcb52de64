"""The bench's outputs: the table on stdout, bench/results/latest.json, the latency chart."""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

# (key in the figures, label, unit, target text, baseline key for a ratio or None)
ROWS: list[tuple[str, str, str, str, str | None]] = [
    ("throughput_tasks_per_s", "end-to-end throughput", "tasks/s", "≥ 0.7 × bare", None),
    ("ceiling_bare_per_s", "  ceiling: bare 1-activity workflow", "wf/s", "", None),
    ("ceiling_minimal_task_per_s", "  ceiling: 3 activities + 1 signal", "wf/s", "", None),
    ("ratio_to_bare", "  Meridian / bare", "×", "≥ 0.7", None),
    ("ratio_to_minimal_task", "  Meridian / minimal task", "×", "", None),
    (
        "meridian_cpu_ms_per_task",
        "CPU per task, all engine processes",
        "ms",
        "",
        "ceiling_bare_cpu_ms_per_wf",
    ),
    (
        "meridian_temporal_cpu_ms_per_task",
        "  of which Temporal server",
        "ms",
        "",
        "ceiling_bare_temporal_cpu_ms_per_wf",
    ),
    (
        "ceiling_minimal_task_cpu_ms_per_wf",
        "  minimal-task workflow, all",
        "ms",
        "",
        "ceiling_bare_cpu_ms_per_wf",
    ),
    ("submit_ms_p50", "submit latency p50", "ms", "", None),
    ("submit_ms_p99", "submit latency p99", "ms", "", None),
    ("submit_to_running_ms_p50", "submit → RUNNING p50", "ms", "", None),
    ("submit_to_running_ms_p99", "submit → RUNNING p99", "ms", "", None),
    ("completion_to_succeeded_ms_p50", "Job done → SUCCEEDED p50 (saturated)", "ms", "", None),
    ("completion_to_succeeded_ms_p99", "Job done → SUCCEEDED p99 (saturated)", "ms", "", None),
    ("fixed_load_tasks_per_s", "fixed offered load: achieved", "tasks/s", "20", None),
    ("fixed_load_completion_to_succeeded_ms_p50", "  Job done → SUCCEEDED p50", "ms", "", None),
    (
        "fixed_load_completion_to_succeeded_ms_p99",
        "  Job done → SUCCEEDED p99",
        "ms",
        "< 1000",
        None,
    ),
    (
        "fixed_load_completion_to_succeeded_polled_ms_p99",
        "  … p99, seen by API poll",
        "ms",
        "< 1000",
        None,
    ),
    ("failover_median_s", "failover median", "s", "", None),
    ("failover_worst_s", "failover worst", "s", "< 15", None),
    ("failover_duplicates", "failover duplicates", "", "0", None),
    ("running_sweep_s", "running-task sweep", "s", "< 5", None),
    (
        "running_sweep_k8s_requests",
        "  Kubernetes requests",
        "",
        "O(regions×pages)",
        "sweep_expected_list_requests",
    ),
    ("running_sweep_db_queries", "  database queries", "", "", None),
    ("job_sweep_s", "job sweep", "s", "< 5", None),
    (
        "job_sweep_k8s_requests",
        "  Kubernetes requests",
        "",
        "O(regions×pages)",
        "sweep_expected_list_requests",
    ),
    ("job_sweep_db_queries", "  database queries", "", "", None),
    ("placement_us_per_decision", "placement per decision", "µs", "< 100", "placement_baseline_us"),
    ("placement_cpu_us_per_decision", "  CPU time per decision", "µs", "< 100", None),
    ("rss_mib_central_worker", "RSS central worker", "MiB", "< 300", None),
    ("rss_mib_unit_worker", "RSS unit worker", "MiB", "", None),
    ("rss_mib_api", "RSS API", "MiB", "", None),
    ("rss_mib_kubesim", "RSS kubesim", "MiB", "", None),
    ("burst_nodes_all_running_s", "burst wave, nodes only: all running", "s", "", None),
    (
        "burst_auto_all_running_s",
        "  auto: all running",
        "s",
        "",
        "burst_nodes_all_running_s",
    ),
    ("burst_nodes_all_succeeded_s", "  nodes only: all SUCCEEDED", "s", "", None),
    (
        "burst_auto_all_succeeded_s",
        "  auto: all SUCCEEDED",
        "s",
        "",
        "burst_nodes_all_succeeded_s",
    ),
    ("burst_nodes_cost_usd", "  nodes only: cost (kubesim ledgers)", "$", "", None),
    ("burst_auto_cost_usd", "  auto: cost, nodes + serverless", "$", "", "burst_nodes_cost_usd"),
    ("burst_auto_cost_serverless_usd", "  auto: of which serverless", "$", "", None),
    ("burst_auto_burst_tasks", "  auto: tasks that burst", "", "", None),
    ("burst_auto_back_to_nodes", "  auto: burst tasks later on nodes", "", "", None),
    ("burst_after_on_nodes", "  follow-up wave on nodes", "", "", "burst_after_tasks"),
]


def machine(temporal_version: str, database: str) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "temporalio": metadata.version("temporalio"),
        "temporal_cli": temporal_version,
        "database": database,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def table(figures: dict[str, Any]) -> str:
    lines = [f"{'figure':44} {'value':>10} {'unit':8} {'target':18} ratio to baseline"]
    lines.append("-" * 100)
    for key, label, unit, target, baseline in ROWS:
        value = figures.get(key)
        ratio = ""
        if baseline and isinstance(value, int | float) and figures.get(baseline):
            ratio = f"{value / figures[baseline]:.2f} × {_fmt(figures[baseline])}"
        lines.append(f"{label:44} {_fmt(value):>10} {unit:8} {target:18} {ratio}")
    return "\n".join(lines)


def markdown_table(figures: dict[str, Any]) -> str:
    lines = [
        "| figure | value | unit | target | ratio to baseline |",
        "| --- | --: | --- | --- | --- |",
    ]
    for key, label, unit, target, baseline in ROWS:
        value = figures.get(key)
        ratio = ""
        if baseline and isinstance(value, int | float) and figures.get(baseline):
            ratio = f"{value / figures[baseline]:.2f} × {_fmt(figures[baseline])}"
        lines.append(f"| {label.strip()} | {_fmt(value)} | {unit} | {target} | {ratio} |")
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: Path | None = None) -> Path:
    path = path or RESULTS / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=False, default=str) + "\n")
    return path


def write_chart(distributions: dict[str, list[float]], path: Path | None = None) -> Path | None:
    """CDFs of the latency distributions (seconds in, ms on the axis)."""
    series = {k: sorted(v) for k, v in distributions.items() if v}
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = path or RESULTS / "latency.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for label, values in series.items():
        ms = [max(v * 1000, 0.1) for v in values]
        ys = [(i + 1) / len(ms) for i in range(len(ms))]
        ax.step(ms, ys, where="post", label=f"{label} (n={len(ms)})")
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of tasks")
    ax.axhline(0.99, color="grey", linewidth=0.6, linestyle=":")
    ax.axvline(1000, color="red", linewidth=0.6, linestyle=":", label="1 s target (fixed load)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Meridian latency distributions (CDF)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def say(text: str) -> None:
    print(text, flush=True)
    sys.stdout.flush()
