"""Batch health by value: which closed batch is unhealthy against its history
(include/etl/warehouse/health.py's ``judge``), no database needed."""

from __future__ import annotations

from include.etl.config import Health
from include.etl.warehouse.health import BatchFigures, judge

RULES = Health(
    history=10,
    min_history=3,
    max_duration_ratio=3.0,
    max_rows_change=0.5,
    max_reject_ratio_increase=3.0,
    reject_ratio_floor=0.01,
)
USUAL = [BatchFigures(f"B{i}", 60.0, 10_000, 10) for i in range(3)]  # 60 s, 10,000 rows, 0.1% rejected


def test_a_batch_like_its_history_is_healthy_and_a_short_history_is_not_judged() -> None:
    assert judge(BatchFigures("B9", 70.0, 11_000, 12), USUAL, RULES) == []
    assert judge(BatchFigures("B9", 900.0, 10, 5_000), USUAL[:2], RULES) == []  # min_history 3


def test_each_rule_says_why_with_its_figures() -> None:
    assert judge(BatchFigures("B9", 181.0, 10_000, 10), USUAL, RULES) == [
        "took 181 s, 3.0x the median 60 s of the last 3 successful batches (at most 3x)"
    ]
    assert judge(BatchFigures("B9", 60.0, 4_000, 4), USUAL, RULES) == [
        "loaded 4,000 rows, 60% fewer than the median 10,000 of the last 3 successful batches "
        "(at most 50% off)"
    ]
    # three times the usual 0.1% is still under the 1% floor; 2% is not
    assert judge(BatchFigures("B9", 60.0, 10_000, 30), USUAL, RULES) == []
    assert judge(BatchFigures("B9", 60.0, 10_000, 205), USUAL, RULES) == [
        "rejected 2.0% of its rows, against a median of 0.1% over the last 3 successful batches "
        "(at most 1.0%)"
    ]
