"""A bronze load killed in the middle of its COPY leaves nothing half-written.

The load runs in a child process; once PostgreSQL shows its COPY running, the child
is killed with SIGKILL (no cleanup, no exception handler). The batch must then have
no row at all (first load) or exactly its previous rows (a reload), and running the
load again must give the exact expected count.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from demo import generate
from include.etl.ingest.convert import convert_to_parquet
from include.etl.ingest.validation import validate_rows
from include.etl.warehouse.migrations import migrate
from tests.conftest import reset_client

ROWS = 400_000  # enough for the COPY to run for a moment
CHILD = """
import os
import sys
from pathlib import Path
from include.etl.ingest.bronze import load_bronze
from include.etl.config import config_for
from include.etl.warehouse.connection import connect
cfg = config_for("client1")
_, spec = cfg.file("sales_details")
skip = {int(n) for n in Path(sys.argv[2]).read_text().split()}
with connect(os.environ["WAREHOUSE_DSN"]) as conn:
    conn.autocommit = True
    print(load_bronze(conn, cfg, spec, Path(sys.argv[1]), sys.argv[3], "sales_details.csv", skip))
"""


@pytest.fixture(scope="module")
def sales(tmp_path_factory) -> tuple[Path, Path, int]:
    """A large sales Parquet, its rejected row numbers, and the rows that must load."""
    cfg_dir = tmp_path_factory.mktemp("crash")
    generate("client1", cfg_dir / "generated", rows=ROWS)
    from include.etl.config import config_for

    _, spec = config_for("client1").file("sales_details")
    parquet = cfg_dir / "sales.parquet"
    convert_to_parquet(cfg_dir / "generated" / "crm" / "sales_details.csv", parquet, spec)
    result = validate_rows(parquet, spec)
    rejected = cfg_dir / "rejected.txt"
    rejected.write_text(" ".join(str(r.row_number) for r in result.rejects))
    return parquet, rejected, result.total - result.rejected


def batch_rows(conn: psycopg.Connection, batch_id: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM bronze_client1.crm_sales_details WHERE dwh_batch_id = %s", (batch_id,)
    ).fetchone()[0]


def load(parquet: Path, rejected: Path, batch_id: str, kill_during_copy: bool) -> str | None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(parquet), str(rejected), batch_id],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    if not kill_during_copy:
        out, _ = child.communicate(timeout=300)
        assert child.returncode == 0
        return out.strip()
    with psycopg.connect(os.environ["WAREHOUSE_DSN"], autocommit=True) as watcher:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            copying = watcher.execute(
                """SELECT pid FROM pg_stat_activity
                   WHERE query ILIKE 'COPY%%crm_sales_details%%' AND pid <> pg_backend_pid()"""
            ).fetchone()
            if copying:
                time.sleep(0.3)  # let some rows through first
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=30)
                # The server notices the dead client and rolls its transaction back.
                while watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (copying[0],)
                ).fetchone()[0]:
                    time.sleep(0.1)
                return None
            if child.poll() is not None:
                pytest.fail("the load finished before it could be killed: raise ROWS")
            time.sleep(0.02)
    pytest.fail("the COPY never showed in pg_stat_activity")


def test_a_load_killed_during_copy_leaves_no_row_and_the_rerun_is_exact(conn, clients, sales) -> None:
    parquet, rejected, expected = sales
    cfg = clients["client1"]
    reset_client(conn, cfg)
    migrate(conn, [cfg])

    load(parquet, rejected, "BATCH000001", kill_during_copy=True)
    assert batch_rows(conn, "BATCH000001") == 0

    assert load(parquet, rejected, "BATCH000001", kill_during_copy=False) == str(expected)
    assert batch_rows(conn, "BATCH000001") == expected


def test_a_reload_killed_during_copy_keeps_the_previous_rows(conn, clients, sales) -> None:
    parquet, rejected, expected = sales
    cfg = clients["client1"]
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    load(parquet, rejected, "BATCH000001", kill_during_copy=False)

    load(parquet, rejected, "BATCH000001", kill_during_copy=True)

    assert batch_rows(conn, "BATCH000001") == expected  # the delete was rolled back with the COPY
    load(parquet, rejected, "BATCH000001", kill_during_copy=False)
    assert batch_rows(conn, "BATCH000001") == expected
