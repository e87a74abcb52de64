"""Record placement's decisions and explanations for the golden inputs.

    PYTHONPATH=. python -m tests.placement.golden   # rewrites golden_decisions.json

Regenerate only when a change is meant to alter decisions or their text; the file
recorded before an optimisation is what proves the optimisation changed nothing.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from meridian.placement import place
from meridian.placement.reservations import Reservations
from meridian.placement.task_placement import place_for_task, task_result
from meridian.placement.types import PlacementDecision, PlacementRequest
from meridian.regions.catalog import Catalog
from meridian.settings import BurstSettings, PlacementWeights
from meridian.tasks.contracts import PlaceTaskResult
from tests.placement import golden_inputs as gi

GOLDEN = Path(__file__).resolve().parent / "golden_decisions.json"
SEED = 16
PLACE_CASES = 300
SESSIONS = 8
SETS_PER_SESSION = 3
DECISIONS_PER_SET = 20
BURSTS = [BurstSettings(), BurstSettings(max_wait_for_nodes_seconds=60)]


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _case(decision: PlacementDecision, result: PlaceTaskResult) -> dict[str, Any]:
    summary = result.model_dump(mode="json")["summary"]
    # The summary repeats the reason: kept once, in "reason".
    summary["reason"] = summary["reason"] == decision.reason
    return {
        "chosen": decision.chosen,
        "reason": decision.reason,
        "fingerprint": decision.snapshot_fingerprint,
        "summary": summary,
        # Everything else: scores, every region's details, filtered reasons, burst plans.
        "decision_digest": _digest(decision.model_dump(mode="json")),
        "result_digest": _digest(result.model_dump(mode="json")),
    }


def record() -> dict[str, list[dict[str, Any]]]:
    rnd = random.Random(SEED)
    catalog = Catalog.default()
    weights = PlacementWeights()
    keys, names = gi.data_keys(catalog), gi.region_names()

    fleets = [gi.fleet(rnd, keys, gi.at(0)) for _ in range(40)]
    single = []
    for i in range(PLACE_CASES):
        inp = gi.task_input(rnd, keys, names, f"p-{i}")
        request = PlacementRequest.for_task(
            inp.task_id,
            inp.spec,
            excluded_regions=sorted(inp.excluded_regions),
            exclusion_reasons=dict(inp.excluded_regions),
        )
        decision = place(request, fleets[i % 40], weights, catalog, burst=BURSTS[i % 2])
        single.append(_case(decision, task_result(decision)))

    # The real path: a ledger per session, snapshot sets two seconds apart (so the next
    # set's probes have not yet seen the previous set's reservations), twenty decisions
    # on each set, as place_task makes them.
    ledgered = []
    for session in range(SESSIONS):
        ledger = Reservations()
        burst = BURSTS[session % 2]
        for set_index in range(SETS_PER_SESSION):
            set_time = 2.0 * set_index
            snaps = gi.fleet(rnd, keys, gi.at(set_time - 0.5))
            for k in range(DECISIONS_PER_SET):
                inp = gi.task_input(rnd, keys, names, f"s{session}-{set_index}-{k}")
                placed = place_for_task(
                    inp,
                    snaps,
                    ledger,
                    weights,
                    catalog,
                    at=gi.at(set_time + 0.05 * k),
                    burst=burst,
                )
                ledgered.append(_case(placed.decision, placed.result))
    return {"place": single, "place_task": ledgered}


if __name__ == "__main__":
    cases = record()
    # One case a line: a diff names the cases that changed.
    lines = [
        f'  "{part}": [\n'
        + ",\n".join(json.dumps(c, sort_keys=True) for c in cases[part])
        + "\n  ]"
        for part in sorted(cases)
    ]
    GOLDEN.write_text("{\n" + ",\n".join(lines) + "\n}\n")
