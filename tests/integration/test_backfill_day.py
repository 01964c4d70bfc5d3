"""Backfill days and queued runs, on the real PostgreSQL and a landing folder.

A backfill run for day D takes the deliveries stamped D (``*_YYYYMMDD.*``) and nothing
else; with none, it is skipped; with part of them, it fails. Runs wait for the client
(its lease) instead of failing when another run of it is active.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from include.etl.batches import BatchError, close_batch, open_batch
from include.etl.ingest.landing import Landing, delivery_date
from include.etl.orchestration import tasks
from tests.integration.test_batch import deliver, raw_names, scalar

DAY = date(2026, 1, 5)


def run(run_id: str, day: date | None = DAY, active: tuple[str, ...] = ()) -> tasks.RunContext:
    return tasks.RunContext(
        dag_run_id=run_id,
        task_id="wait_for_files",
        run_is_active=lambda other: other in active,
        backfill_day=day,
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sales_details_20260105.csv", date(2026, 1, 5)),
        ("sales_details_20260105_BATCH000003.csv", date(2026, 1, 5)),  # claimed: the suffix is ignored
        ("LOC_A101_20251231.csv", date(2025, 12, 31)),
        ("export_20260101_to_20260105.csv", date(2026, 1, 5)),  # the last stamp counts
        ("sales_details.csv", None),  # undated
        ("sales_details_20261340.csv", None),  # not a real day
        ("sales_details_202601051.csv", None),  # nine digits are no stamp
    ],
)
def test_the_delivery_day_is_the_last_date_stamp_in_the_name(name: str, expected: date | None) -> None:
    assert delivery_date(name) == expected


def test_a_backfill_day_claims_only_the_files_stamped_with_it(conn, cfg, landing: Landing) -> None:
    deliver(landing, cfg)  # undated: for the live runs
    deliver(landing, cfg, stamp="20260104")
    deliver(landing, cfg, stamp="20260105")

    opened = open_batch(conn, cfg, landing, "backfill-1", day=DAY)

    assert sorted(opened.files.values()) == sorted(f"{f.name}_20260105_BATCH000001.csv" for _, f in cfg.files)
    left = raw_names(landing, cfg, "incoming") - set(opened.files.values())
    assert left == {f"{f.name}{stamp}.csv" for _, f in cfg.files for stamp in ("", "_20260104")}
    assert (
        scalar(
            conn,
            "SELECT delivery_date FROM tools.batch WHERE client_schema = 'client1' AND batch_id = %s",
            opened.batch_id,
        )
        == DAY
    )
    manifest = json.loads(Path(opened.manifest_path).read_text(encoding="utf-8"))
    assert manifest["delivery_date"] == "2026-01-05"


def test_a_live_run_still_claims_undated_files_first(conn, cfg, landing: Landing) -> None:
    deliver(landing, cfg, stamp="20260105")
    deliver(landing, cfg)
    opened = open_batch(conn, cfg, landing, "live-1")
    assert sorted(opened.files.values()) == sorted(f"{f.name}_BATCH000001.csv" for _, f in cfg.files)
    assert (
        scalar(
            conn,
            "SELECT delivery_date FROM tools.batch WHERE client_schema = 'client1' AND batch_id = %s",
            opened.batch_id,
        )
        is None
    )


def test_a_backfill_day_with_nothing_delivered_is_skipped(cfg, landing: Landing) -> None:
    deliver(landing, cfg)  # undated files are not that day's delivery
    deliver(landing, cfg, stamp="20260104")
    with pytest.raises(tasks.Skip) as skipped:
        tasks.files_ready(cfg.client, "start", run("backfill-1"))
    assert str(skipped.value) == (
        "client1: nothing delivered for 2026-01-05 (no file stamped 20260105 in incoming)"
    )


def test_an_incomplete_backfill_day_fails_and_claims_nothing(conn, cfg, landing: Landing) -> None:
    deliver(landing, cfg, stamp="20260105", skip=("sales_details",))
    with pytest.raises(tasks.FailFast) as failed:
        tasks.files_ready(cfg.client, "start", run("backfill-1"))
    assert str(failed.value) == (
        "client1: the delivery of 2026-01-05 is incomplete: no crm/sales_details stamped 20260105 in "
        "incoming; put it there and clear wait_for_files"
    )
    refused = r"required file\(s\) stamped 20260105 missing in incoming: crm/sales_details"
    with pytest.raises(BatchError, match=refused):
        open_batch(conn, cfg, landing, "backfill-1", day=DAY)  # forced through: refused, nothing claimed
    assert all(name.endswith("_20260105.csv") for name in raw_names(landing, cfg, "incoming"))
    assert scalar(conn, "SELECT count(*) FROM tools.batch WHERE client_schema = 'client1'") == 0


@pytest.mark.parametrize("mode", ["restart", "reprocessing"])
def test_a_backfill_run_in_another_mode_is_refused(cfg, landing: Landing, mode: str) -> None:
    refused = f"client1: a backfill run takes the deliveries of its day; mode {mode} is for a manual trigger"
    with pytest.raises(tasks.FailFast, match=refused):
        tasks.files_ready(cfg.client, mode, run("backfill-1"))


def test_runs_that_start_together_queue_for_the_client(conn, cfg, landing: Landing) -> None:
    deliver(landing, cfg, stamp="20260105")
    deliver(landing, cfg, stamp="20260106")
    first, second = run("backfill-1"), run("backfill-2", day=date(2026, 1, 6), active=("backfill-1",))

    assert tasks.files_ready(cfg.client, "start", first) is None  # reserved for backfill-1
    assert tasks.files_ready(cfg.client, "start", first) is None  # a poke again: still its own
    assert tasks.files_ready(cfg.client, "start", second) == (
        "client1 is busy: DAG run backfill-1 is still working on its files (batch not open yet)"
    )
    opened = open_batch(conn, cfg, landing, "backfill-1", day=DAY)
    assert tasks.files_ready(cfg.client, "start", second) == (
        "client1 is busy: DAG run backfill-1 is still working on BATCH000001"
    )
    close_batch(conn, cfg, landing, opened.batch_id, [], "backfill-1")

    assert tasks.files_ready(cfg.client, "start", second) is None
    assert scalar(conn, "SELECT dag_run_id FROM tools.client_lease WHERE client_schema = 'client1'") == (
        "backfill-2"
    )
    again = open_batch(conn, cfg, landing, "backfill-2", day=date(2026, 1, 6))
    assert again.batch_id == "BATCH000002"
    assert set(again.files.values()) == {f"{f.name}_20260106_BATCH000002.csv" for _, f in cfg.files}


def test_a_live_run_waits_for_its_files_then_reserves_the_client(conn, cfg, landing: Landing) -> None:
    live = run("live-1", day=None)
    assert tasks.files_ready(cfg.client, "start", live).startswith("still waiting for: crm/cust_info, ")
    assert scalar(conn, "SELECT count(*) FROM tools.client_lease WHERE client_schema = 'client1'") == 0
    deliver(landing, cfg)
    assert tasks.files_ready(cfg.client, "start", live) is None
    holder = scalar(conn, "SELECT dag_run_id FROM tools.client_lease WHERE client_schema = 'client1'")
    assert holder == "live-1"


def test_a_run_that_never_opened_its_batch_gives_the_client_back(conn, cfg, landing: Landing) -> None:
    deliver(landing, cfg)
    assert tasks.files_ready(cfg.client, "start", run("live-1", day=None)) is None
    with pytest.raises(tasks.FailFast, match="no batch was opened in this run; failed: open_batch"):
        tasks.close_batch(cfg.client, None, ["open_batch"], run("live-1", day=None))
    assert scalar(conn, "SELECT count(*) FROM tools.client_lease WHERE client_schema = 'client1'") == 0
    with pytest.raises(tasks.Skip, match="no batch was opened in this run: nothing to close"):
        tasks.close_batch(cfg.client, None, [], run("backfill-9"))
