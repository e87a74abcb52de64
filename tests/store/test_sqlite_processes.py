"""The API and the central worker are separate processes sharing one SQLite file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from meridian.store import Store

WRITER = """
import sys
from datetime import UTC, datetime
from meridian.tasks.spec import TaskSpec, TaskStatus
from meridian.store import Store, Transition

url, name = sys.argv[1], sys.argv[2]
store = Store(url)
store.migrate()  # both processes migrate at start-up, at the same moment
spec = TaskSpec.model_validate({
    "name": "n", "business_unit": "bu",
    "data_source": {"provider": "aws", "region": "us-east-1"},
    "job": {"image": "img"},
})
for i in range(40):
    task_id = f"{name}-{i}"
    store.create_task(task_id, spec, status=TaskStatus.SCHEDULING)
    store.create_task("shared", spec, status=TaskStatus.SCHEDULING)
    store.record_transition(Transition(
        task_id="shared", event_key=f"{name}:{i}", seq=i, status=TaskStatus.RUNNING,
        attempt=1, at=datetime.now(UTC),
    ))
    store.record_region_state("r1", "up" if i % 2 else "down", name, datetime.now(UTC))
store.close()
"""


def test_two_processes_migrate_and_write_one_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("api", "worker")
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr

    with Store(url) as store:
        counts = store.count_tasks_by_status()
        assert counts["SCHEDULING"] == 80 and counts["RUNNING"] == 1
        assert len(store.list_events("shared")) == 80
