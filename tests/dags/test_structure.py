"""Snapshot of the generated graph: a change to it shows up as a reviewable diff.

Regenerate after an intended change: UPDATE_SNAPSHOTS=1 make test
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from include.etl.orchestration.factory import build_dag

SNAPSHOTS = Path(__file__).parent / "snapshots"


def structure(dag) -> dict[str, list[str]]:
    return {t.task_id: sorted(t.downstream_task_ids) for t in sorted(dag.tasks, key=lambda t: t.task_id)}


@pytest.mark.parametrize("client", ["client1", "client2"])
def test_structure_matches_snapshot(clients: dict, client: str) -> None:
    actual = structure(build_dag(clients[client]))
    path = SNAPSHOTS / f"{client}.json"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        path.write_text(json.dumps(actual, indent=2) + "\n")
    if not path.exists():
        pytest.fail(f"no snapshot {path.name}: create it with UPDATE_SNAPSHOTS=1 make test")
    assert actual == json.loads(path.read_text())


def test_gold_dimensions_before_facts(clients: dict) -> None:
    dag = build_dag(clients["client1"])
    fact = dag.get_task("gold.fact_sales")
    assert fact.upstream_task_ids == {"gold.dim_customers", "gold.dim_products"}


def test_every_file_group_has_the_four_steps_in_order(clients: dict) -> None:
    cfg = clients["client1"]
    dag = build_dag(cfg)

    def after(task_id: str) -> set[str]:
        return dag.get_task(task_id).downstream_task_ids - {"close_batch"}  # close_batch follows all

    for _, spec in cfg.files:
        g = spec.name
        assert after(f"{g}.convert") == {f"{g}.validate_mapping"}
        assert after(f"{g}.validate_mapping") == {f"{g}.validate_rows"}
        assert after(f"{g}.validate_rows") == {f"{g}.load_bronze"}
        assert after(f"{g}.load_bronze") == {f"silver.{s.name}" for s in cfg.silver}
