"""End to end: client1 delivers its reference files in full every day; silver keeps only
what changed, and gold is what the latest files say.

Day one is the demo delivery. Day two is the same files with one customer's last name
changed and another customer's ERP birth date changed (the CRM row unchanged); the files
it delivers as they were are recorded as day one's, not compared, and the customers and
the birth dates are compared by the changed customer's key alone. Day three is day two again without one
customer. Each day is a run of the client DAG with
``dag.test()`` against the test warehouse.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from include.etl.orchestration.factory import build_dag
from include.etl.warehouse.migrations import migrate
from tests.conftest import complete, deliver_demo, reset_client
from tests.e2e.test_pipeline import assert_same_values
from tests.expected_client1 import expected_values, gold_values

ROWS = 1500


def rewrite(path: Path, change) -> None:
    """Rewrite a CSV file, ``change(row)`` called on each data row (a list, edited in place)."""
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    for row in rows[1:]:
        change(row)
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def deliver(folder: Path, landing) -> None:
    for path in sorted(folder.rglob("*.csv")):
        target = landing.raw("client1", path.parent.name, "incoming")
        target.mkdir(parents=True, exist_ok=True)
        complete(Path(shutil.copy2(path, target / path.name)))


def run_day(cfg) -> str:
    run = build_dag(cfg).test(run_conf={"mode": "start"})
    assert run.state == "success"
    return run.run_id


def day_one(clients, conn, landing, tmp_path) -> tuple:
    """client1 reset and migrated, the demo delivery loaded as its first batch: its config
    and the folder of the day's files."""
    cfg = clients["client1"]
    reset_client(conn, cfg)
    migrate(conn, [cfg])
    day1 = tmp_path / "day1"
    deliver_demo("client1", landing, day1, rows=ROWS)
    run_day(cfg)
    return cfg, day1


def silver_rows(conn, table: str, batch: str) -> list[tuple]:
    key = {"crm_cust_info": "cst_id", "erp_cust_az12": "cid"}[table]
    return conn.execute(
        f"SELECT {key} FROM silver_client1.{table} WHERE dwh_batch_id = %s ORDER BY 1", (batch,)
    ).fetchall()


def test_next_days_add_their_changes_only_and_gold_follows_the_files(
    clients, conn, landing, tmp_path
) -> None:
    cfg, day1 = day_one(clients, conn, landing, tmp_path)

    # The customers as the first batch left them: pick two plain ones (one CRM row each,
    # a key, an ERP birth row).
    plain = conn.execute(
        """SELECT c.cst_id, c.cst_key FROM silver_client1.crm_cust_info AS c
           JOIN silver_client1.erp_cust_az12 AS e ON e.cid = c.cst_key
           WHERE c.cst_lastname IS NOT NULL AND e.bdate IS NOT NULL
           ORDER BY c.cst_id LIMIT 2"""
    ).fetchall()
    (renamed, _), (reborn, reborn_key) = plain

    day2 = tmp_path / "day2"
    shutil.copytree(day1, day2)

    def rename(row: list[str]) -> None:
        if row[0].strip() == str(renamed):
            row[3] = "Renamed"

    def new_birthdate(row: list[str]) -> None:
        if row[0].strip().removeprefix("NAS").replace("-", "") == reborn_key:
            row[1] = "1961-02-03"

    rewrite(day2 / "crm" / "cust_info.csv", rename)
    rewrite(day2 / "erp" / "CUST_AZ12.csv", new_birthdate)
    deliver(day2, landing)
    run_day(cfg)

    # Silver: the second batch added the renamed customer and the one ERP row, nothing else.
    assert silver_rows(conn, "crm_cust_info", "BATCH000002") == [(renamed,)]
    assert silver_rows(conn, "erp_cust_az12", "BATCH000002") == [(reborn_key,)]
    for table in ("erp_loc_a101", "erp_px_cat_g1v2"):
        assert conn.execute(
            f"SELECT count(*) FROM silver_client1.{table} WHERE dwh_batch_id = 'BATCH000002'"
        ).fetchone() == (0,)
    # The files that came again as they were were not cleaned or compared: their delivery
    # is day one's (the same files, the same bronze rows). The customers and the ERP birth
    # dates were compared by the key of their one changed row only (no birth date of the
    # demo lies between yesterday and tomorrow, the only ones that clean differently today).
    assert conn.execute(
        """SELECT table_name, same_as_batch, compared_keys FROM tools.snapshot_delivery
           WHERE client_schema = 'client1' AND batch_id = 'BATCH000002' ORDER BY 1"""
    ).fetchall() == [
        ("silver_client1.crm_cust_info", None, 1),
        ("silver_client1.crm_prd_info", "BATCH000001", 0),
        ("silver_client1.erp_cust_az12", None, 1),
        ("silver_client1.erp_loc_a101", "BATCH000001", 0),
        ("silver_client1.erp_px_cat_g1v2", "BATCH000001", 0),
    ]
    # Gold: every figure as the day-two files alone say (the ERP-only change included).
    assert_same_values(gold_values(conn), expected_values(day2))
    assert conn.execute(
        "SELECT last_name, dwh_batch_id FROM gold_client1.dim_customers WHERE customer_id = %s", (renamed,)
    ).fetchone() == ("Renamed", "BATCH000002")
    assert conn.execute(
        "SELECT birthdate::text, dwh_batch_id FROM gold_client1.dim_customers WHERE customer_id = %s",
        (reborn,),
    ).fetchone() == ("1961-02-03", "BATCH000002")

    # Day three: day two without the renamed customer. Nothing is added; the key is
    # recorded as vanished; gold keeps the customer (facts may point at it).
    day3 = tmp_path / "day3"
    shutil.copytree(day2, day3)
    cust = day3 / "crm" / "cust_info.csv"
    with cust.open(newline="") as f:
        rows = [r for r in csv.reader(f) if r[0].strip() != str(renamed)]
    with cust.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    deliver(day3, landing)
    run_day(cfg)

    for table in ("crm_cust_info", "erp_cust_az12"):
        assert silver_rows(conn, table, "BATCH000003") == []
    assert conn.execute(
        """SELECT table_name, key FROM tools.snapshot_vanished
           WHERE client_schema = 'client1' AND batch_id = 'BATCH000003'"""
    ).fetchall() == [("silver_client1.crm_cust_info", [renamed])]
    delivered = dict(
        conn.execute(
            """SELECT batch_id, (delivered_rows, changed_rows, vanished_keys)::text
               FROM tools.snapshot_delivery
               WHERE client_schema = 'client1' AND table_name = 'silver_client1.crm_cust_info'"""
        ).fetchall()
    )
    first = conn.execute(
        "SELECT count(*) FROM silver_client1.crm_cust_info WHERE dwh_batch_id = 'BATCH000001'"
    ).fetchone()[0]
    assert delivered == {
        "BATCH000001": f"({first},{first},0)",
        "BATCH000002": f"({first},1,0)",
        "BATCH000003": f"({first - 1},0,1)",
    }
    assert conn.execute(
        "SELECT last_name FROM gold_client1.dim_customers WHERE customer_id = %s", (renamed,)
    ).fetchone() == ("Renamed",)


def test_restarting_an_earlier_day_with_another_file_leaves_gold_as_the_latest_files_say(
    clients, conn, landing, tmp_path
) -> None:
    """Two days delivered and loaded; then day one is restarted with another customer file,
    in which a customer day two delivered unchanged has another last name. The restart
    compares day two's snapshot again and runs day two's gold steps again: gold is still
    what the day-two files say, and silver holds the customer's row as each day
    delivered it."""
    cfg, day1 = day_one(clients, conn, landing, tmp_path)
    day2 = tmp_path / "day2"
    shutil.copytree(day1, day2)
    deliver(day2, landing)
    run_day(cfg)
    (customer,) = conn.execute(
        """SELECT cst_id FROM silver_client1.crm_cust_info
           WHERE cst_lastname IS NOT NULL ORDER BY cst_id LIMIT 1"""
    ).fetchone()

    def older_name(row: list[str]) -> None:
        if row[0].strip() == str(customer):
            row[3] = "Older"

    fixed = tmp_path / "fixed_cust_info.csv"
    shutil.copy2(day1 / "crm" / "cust_info.csv", fixed)
    rewrite(fixed, older_name)
    shutil.copy2(fixed, landing.raw("client1", "crm", "incoming") / "cust_info_BATCH000001.csv")
    run = build_dag(cfg).test(run_conf={"mode": "restart", "batch_id": "BATCH000001"})
    assert run.state == "success"

    assert conn.execute(
        """SELECT cst_lastname, dwh_batch_id FROM silver_client1.crm_cust_info
           WHERE cst_id = %s ORDER BY dwh_batch_id""",
        (customer,),
    ).fetchall() == [("Older", "BATCH000001"), (gold_last_name(day2, customer), "BATCH000002")]
    assert conn.execute(
        "SELECT last_name, dwh_batch_id FROM gold_client1.dim_customers WHERE customer_id = %s", (customer,)
    ).fetchone() == (gold_last_name(day2, customer), "BATCH000002")
    assert_same_values(gold_values(conn), expected_values(day2))
    # Each step that ran again for day two logged it under day two, naming day one: the
    # restart loaded each of day one's files again, so every snapshot step ran (not the
    # sales lines, an increment), then every gold and view step.
    assert conn.execute(
        """SELECT layer || '.' || step_name FROM tools.sql_step_log
           WHERE client_schema = 'client1' AND batch_id = 'BATCH000002' AND again_after = 'BATCH000001'
             AND status = 'SUCCESS'
           ORDER BY 1"""
    ).fetchall() == [
        ("gold.dim_customers",),
        ("gold.dim_products",),
        ("gold.fact_sales",),
        ("silver.crm_cust_info",),
        ("silver.crm_prd_info",),
        ("silver.erp_cust_az12",),
        ("silver.erp_loc_a101",),
        ("silver.erp_px_cat_g1v2",),
        ("views.mv_customer_lifetime_value",),
        ("views.mv_monthly_sales_by_product_line",),
    ]


def gold_last_name(folder: Path, customer: int) -> str:
    """The customer's last name as the customer file in ``folder`` spells it, trimmed."""
    with (folder / "crm" / "cust_info.csv").open(newline="") as f:
        return next(row[3].strip() for row in csv.reader(f) if row[0].strip() == str(customer))
